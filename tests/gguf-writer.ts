// Writes GGUF files in the tests (little-endian, as llama.cpp writes them): the reader's refusals
// (tests/gguf.test.ts) and a tiny Llama for the page (e2e/gguf.spec.ts), made from tests/hf-fixtures.ts's
// checkpoints as llama.cpp's convert_hf_to_gguf.py writes one: q/k rows permuted to interleaved pairs,
// 1-D tensors in F32, the matrices in F32 or Q8_0 (quantized as ggml's quantize_row_q8_0_ref, but for
// ties, which Math.round sends up and roundf away from zero).
import type { Fixture, MadeTokenizer } from './hf-fixtures';

export type Kv = [key: string, type: number, value: unknown, itemType?: number];
export type Tensor = { name: string; dims: number[]; type: number; data: Uint8Array };
export const T = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 };

class Bytes {
  parts: number[] = [];
  u8(v: number) { this.parts.push(v & 255); }
  u32(v: number) { for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 255); }
  u64(v: number | bigint) {
    let b = BigInt(v);
    for (let i = 0; i < 8; i++) { this.parts.push(Number(b & 255n)); b >>= 8n; }
  }
  raw(a: ArrayLike<number>) { for (let i = 0; i < a.length; i++) this.parts.push(a[i]); }
  str(s: string) { const e = new TextEncoder().encode(s); this.u64(e.length); this.raw(e); }
  value(type: number, v: unknown, itemType?: number) {
    const dv = new DataView(new ArrayBuffer(8));
    switch (type) {
      case T.u8: case T.i8: case T.bool: this.u8(Number(v)); break;
      case T.u16: case T.i16: dv.setUint16(0, Number(v), true); this.raw(new Uint8Array(dv.buffer, 0, 2)); break;
      case T.u32: case T.i32: this.u32(Number(v)); break;
      case T.f32: dv.setFloat32(0, Number(v), true); this.raw(new Uint8Array(dv.buffer, 0, 4)); break;
      case T.f64: dv.setFloat64(0, Number(v), true); this.raw(new Uint8Array(dv.buffer, 0, 8)); break;
      case T.u64: case T.i64: this.u64(v as number); break;
      case T.string: this.str(v as string); break;
      case T.array: {
        const a = v as unknown[];
        this.u32(itemType!);
        this.u64(a.length);
        for (const x of a) this.value(itemType!, x);
        break;
      }
    }
  }
  get bytes() { return new Uint8Array(this.parts); }
}

export function writeGguf(kvs: Kv[], tensors: Tensor[], opts: { version?: number; alignment?: number } = {}): Uint8Array {
  const align = opts.alignment ?? 32;
  const b = new Bytes();
  b.raw([0x47, 0x47, 0x55, 0x46]);
  b.u32(opts.version ?? 3);
  b.u64(tensors.length);
  b.u64(kvs.length);
  for (const [k, type, v, it] of kvs) { b.str(k); b.u32(type); b.value(type, v, it); }
  let rel = 0;
  for (const t of tensors) {
    b.str(t.name);
    b.u32(t.dims.length);
    for (const d of t.dims) b.u64(d);
    b.u32(t.type);
    b.u64(rel);
    rel += Math.ceil(t.data.length / align) * align;
  }
  while (b.parts.length % align) b.u8(0);
  tensors.forEach((t) => {
    while (b.parts.length % align) b.u8(0);
    b.raw(t.data);
  });
  return b.bytes;
}


const f16 = (x: number): number => {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x);
  const b = v.getUint32(0);
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 255) - 127 + 15;
  const frac = b & 0x7fffff;
  if (exp <= 0) {
    // subnormal halves (the Q8_0 scales of small blocks): round to nearest
    return sign | Math.round((Math.abs(x) / 2 ** -24));
  }
  if (exp >= 31) return sign | 0x7c00;
  let h = sign | (exp << 10) | (frac >>> 13);
  const rest = frac & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return h;
};

/** ggml's quantize_row_q8_0_ref: per 32 values d = max|x| / 127 (stored as f16), q = round(x / d). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 34);
  const v = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    v.setUint16(b * 34, f16(d), true);
    for (let j = 0; j < 32; j++) v.setInt8(b * 34 + 2 + j, Math.round(x[b * 32 + j] * id));
  }
  return out;
}

/** convert_hf_to_gguf.py's LlamaModel.permute: HF row (head h, half a, i) goes to GGUF row (h, i, a). */
export function permuteRows(w: Float32Array, heads: number, cols: number): Float32Array {
  const hd = w.length / cols / heads;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) for (let a = 0; a < 2; a++) for (let i = 0; i < hd / 2; i++) {
    out.set(w.subarray((h * hd + a * (hd / 2) + i) * cols, (h * hd + a * (hd / 2) + i + 1) * cols), (h * hd + 2 * i + a) * cols);
  }
  return out;
}

const LAYER: Record<string, string> = {
  input_layernorm: 'attn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
  post_attention_layernorm: 'ffn_norm', 'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
};

function ggufName(hf: string): string {
  if (hf === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hf === 'model.norm.weight') return 'output_norm.weight';
  if (hf === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hf)!;
  return `blk.${m[1]}.${LAYER[m[2]]}.${m[3]}`;
}

/** A Llama fixture (tests/hf-fixtures.ts) with a byte-level BPE tokenizer as a GGUF file. */
export function ggufFromFixture(fx: Fixture, tk: MadeTokenizer, opts: { quant: 'F32' | 'Q8_0'; name?: string }): Uint8Array {
  const c = fx.config;
  const model = tk.json.model as { vocab: Record<string, number>; merges: string[] };
  const added = tk.json.added_tokens as { id: number; content: string; special: boolean }[];
  const tokens: string[] = new Array(tk.vocabSize);
  for (const [t, id] of Object.entries(model.vocab)) tokens[id] = t;
  const types = new Array(tk.vocabSize).fill(1);
  for (const a of added) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  const hd = c.hidden_size / c.num_attention_heads;
  const kvs: Kv[] = [
    ['general.architecture', T.string, 'llama'], ['general.name', T.string, opts.name ?? 'tiny'],
    ['llama.context_length', T.u32, c.max_position_embeddings], ['llama.embedding_length', T.u32, c.hidden_size],
    ['llama.block_count', T.u32, c.num_hidden_layers], ['llama.feed_forward_length', T.u32, c.intermediate_size],
    ['llama.attention.head_count', T.u32, c.num_attention_heads], ['llama.attention.head_count_kv', T.u32, c.num_key_value_heads],
    ['llama.rope.dimension_count', T.u32, hd], ['llama.rope.freq_base', T.f32, c.rope_theta],
    ['llama.attention.layer_norm_rms_epsilon', T.f32, c.rms_norm_eps],
    ['tokenizer.ggml.model', T.string, 'gpt2'], ['tokenizer.ggml.pre', T.string, 'gpt-2'],
    ['tokenizer.ggml.tokens', T.array, tokens, T.string], ['tokenizer.ggml.token_type', T.array, types, T.i32],
    ['tokenizer.ggml.merges', T.array, model.merges, T.string], ['tokenizer.ggml.eos_token_id', T.u32, tk.eos],
    ...(tk.pad !== null ? [['tokenizer.ggml.padding_token_id', T.u32, tk.pad] as Kv] : []),
  ];
  const tensors: Tensor[] = [];
  for (const [hf, data] of fx.weights) {
    const flat = hf.endsWith('.bias') || hf.endsWith('norm.weight');
    const cols = flat ? 1 : hf.includes('down_proj') ? c.intermediate_size : hf.includes('o_proj') ? c.num_attention_heads * hd : c.hidden_size;
    const rows = data.length / cols;
    let a = data;
    if (hf.includes('q_proj')) a = permuteRows(a, c.num_attention_heads, cols);
    if (hf.includes('k_proj')) a = permuteRows(a, c.num_key_value_heads, cols);
    const dims = flat ? [data.length] : [cols, rows];
    if (opts.quant === 'Q8_0' && dims.length === 2) tensors.push({ name: ggufName(hf), dims, type: 8, data: quantizeQ8_0(a) });
    else tensors.push({ name: ggufName(hf), dims, type: 0, data: new Uint8Array(a.slice().buffer) });
  }
  return writeGguf(kvs, tensors);
}
