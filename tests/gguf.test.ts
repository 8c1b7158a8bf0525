// The GGUF reader's refusals (truncated files, a foreign file, lying counts, types it does not read,
// named), the Q/K un-permutation, Llama 3's RoPE factors, and the import of a tiny model written here
// byte by byte. The dequantization of every type against gguf-py's is python/tests/test_gguf_import.py.
import { describe, expect, it } from 'vitest';
import { GgufError, parseGguf } from '../src/storage/gguf';
import { dequantize, UnsupportedTypeError } from '../src/storage/gguf-quants';
import { ggufToFiles, importGguf, unpermuteRows } from '../src/storage/gguf-import';
import { llama3FromRopeFreqs, llama3RopeFactors } from '../src/storage/gguf-rope';
import { decodeCheckpoint } from '../src/storage/checkpoint';
import { loadTokenizer } from '../src/tokenizers';

import { ggufFromFixture, T, writeGguf, type Kv, type Tensor } from './gguf-writer';
import { byteLevelBpe, hfCheckpoint, trainingText } from './hf-fixtures';

const f32 = (a: number[]) => new Uint8Array(new Float32Array(a).buffer);
const f32Tensor = (name: string, shape: number[], fill: (i: number) => number): Tensor => {
  const n = shape.reduce((x, y) => x * y, 1);
  return { name, dims: [...shape].reverse(), type: 0, data: f32(Array.from({ length: n }, (_, i) => fill(i))) };
};

// ---- a tiny Llama: D 8, 2 heads of 4, 1 kv head, I 12, 2 layers, a byte-level BPE vocabulary of 6

const D = 8, I = 12, L = 2, H = 2, KV = 1, HD = 4;
const TOKENS = ['<|endoftext|>', 'a', 'b', 'ab', 'Ġ', 'Ġab'];
const META: Kv[] = [
  ['general.architecture', T.string, 'llama'],
  ['general.name', T.string, 'tiny'],
  ['general.alignment', T.u32, 32],
  ['llama.context_length', T.u32, 64],
  ['llama.embedding_length', T.u32, D],
  ['llama.block_count', T.u32, L],
  ['llama.feed_forward_length', T.u32, I],
  ['llama.attention.head_count', T.u32, H],
  ['llama.attention.head_count_kv', T.u32, KV],
  ['llama.rope.freq_base', T.f32, 10000],
  ['llama.attention.layer_norm_rms_epsilon', T.f32, 1e-5],
  ['tokenizer.ggml.model', T.string, 'gpt2'],
  ['tokenizer.ggml.pre', T.string, 'smollm'],
  ['tokenizer.ggml.tokens', T.array, TOKENS, T.string],
  ['tokenizer.ggml.token_type', T.array, [3, 1, 1, 1, 1, 1], T.i32],
  ['tokenizer.ggml.merges', T.array, ['a b', 'Ġ ab'], T.string],
  ['tokenizer.ggml.bos_token_id', T.u32, 0],
  ['tokenizer.ggml.eos_token_id', T.u32, 0],
];

function modelTensors(opts: { untied?: boolean } = {}): Tensor[] {
  const out: Tensor[] = [f32Tensor('token_embd.weight', [TOKENS.length, D], (i) => i / 100), f32Tensor('output_norm.weight', [D], () => 1)];
  if (opts.untied) out.push(f32Tensor('output.weight', [TOKENS.length, D], (i) => -i / 100));
  for (let l = 0; l < L; l++) {
    const p = `blk.${l}.`;
    out.push(
      f32Tensor(`${p}attn_norm.weight`, [D], () => 1), f32Tensor(`${p}ffn_norm.weight`, [D], () => 1),
      f32Tensor(`${p}attn_q.weight`, [H * HD, D], (i) => i), f32Tensor(`${p}attn_k.weight`, [KV * HD, D], (i) => i),
      f32Tensor(`${p}attn_v.weight`, [KV * HD, D], (i) => i / 7), f32Tensor(`${p}attn_output.weight`, [D, H * HD], (i) => i / 9),
      f32Tensor(`${p}ffn_gate.weight`, [I, D], (i) => i / 11), f32Tensor(`${p}ffn_up.weight`, [I, D], (i) => i / 13),
      f32Tensor(`${p}ffn_down.weight`, [D, I], (i) => i / 17),
    );
  }
  return out;
}

const parseError = (bytes: Uint8Array): string => {
  try {
    parseGguf(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(GgufError);
    return (e as Error).message;
  }
  throw new Error('parsed');
};

describe('GGUF reader', () => {
  it('reads every metadata type, arrays, the alignment and the tensor table (versions 2 and 3)', () => {
    const kvs: Kv[] = [
      ['u8', T.u8, 200], ['i8', T.i8, -5], ['u16', T.u16, 60000], ['i16', T.i16, -300], ['u32', T.u32, 4e9], ['i32', T.i32, -7],
      ['f32', T.f32, 0.5], ['bool', T.bool, 1], ['s', T.string, 'héllo'], ['u64', T.u64, 2n ** 60n], ['i64', T.i64, 12], ['f64', T.f64, 0.1],
      ['arr', T.array, ['x', 'yz'], T.string], ['nums', T.array, [1, 2, 3], T.i32], ['general.alignment', T.u32, 64],
    ];
    for (const version of [2, 3]) {
      const f = parseGguf(writeGguf(kvs, [f32Tensor('a', [2, 3], (i) => i), f32Tensor('b', [5], (i) => -i)], { version, alignment: 64 }));
      const v = (k: string) => f.metadata.get(k)!.value;
      expect([v('u8'), v('i8'), v('u16'), v('i16'), v('u32'), v('i32'), v('f32'), v('bool'), v('s'), v('u64'), v('i64'), v('f64')])
        .toEqual([200, -5, 60000, -300, 4e9, -7, 0.5, true, 'héllo', 2n ** 60n, 12, 0.1]);
      expect(v('arr')).toEqual(['x', 'yz']);
      expect(f.metadata.get('nums')).toEqual({ type: 'array', itemType: 'i32', value: [1, 2, 3] });
      expect(f.alignment).toBe(64);
      expect(f.dataOffset % 64).toBe(0);
      expect(f.tensors.map((t) => [t.name, t.shape, t.typeName, t.offset - f.dataOffset])).toEqual([['a', [2, 3], 'F32', 0], ['b', [5], 'F32', 64]]);
      const b = f.tensors[1];
      expect(Array.from(dequantize(b.type, f.bytes.subarray(b.offset, b.offset + b.byteLength), b.elements, 'b'))).toEqual([-0, -1, -2, -3, -4]);
    }
  });

  it('refuses a foreign file, an old or big-endian version, with what it is', () => {
    expect(parseError(new TextEncoder().encode('{"a": 1}'))).toMatch(/not a GGUF file.*looks like JSON/);
    expect(parseError(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0]))).toMatch(/zip/);
    expect(parseError(new Uint8Array([1, 2]))).toMatch(/too short/);
    const good = writeGguf(META, []);
    const v = (n: number) => { const b = good.slice(); new DataView(b.buffer).setUint32(4, n, true); return b; };
    expect(parseError(v(1))).toMatch(/version 1/);
    expect(parseError(v(0x03000000))).toMatch(/big-endian/);
    expect(parseError(v(9))).toMatch(/version 9 is not supported/);
  });

  it('refuses every truncation of a file with a GgufError (never a RangeError), naming what was cut', () => {
    const full = writeGguf(META, modelTensors());
    parseGguf(full);
    const messages = new Set<string>();
    for (let n = 0; n < full.length; n += n < 2000 ? 1 : 7) {
      const m = parseError(full.subarray(0, n));
      messages.add(m.replace(/\d+/g, 'N'));
    }
    expect([...messages].some((m) => /truncated: tensor "blk\.N\.ffn_down\.weight"/.test(m))).toBe(true);
    expect([...messages].some((m) => /truncated: the length of metadata key/.test(m) || /more than the N bytes left/.test(m))).toBe(true);
  });

  it('holds lying counts against the file length before allocating', () => {
    const good = writeGguf(META, modelTensors());
    const at = (off: number, v: bigint) => { const b = good.slice(); new DataView(b.buffer).setBigUint64(off, v, true); return b; };
    expect(parseError(at(8, 1n << 40n))).toMatch(/tensor count is 1099511627776, which is more tensors than the/);
    expect(parseError(at(16, 1n << 62n))).toMatch(/metadata count is 4611686018427387904/);
    expect(parseError(at(24, 1n << 50n))).toMatch(/length of metadata key 1 .* is 1125899906842624/);
    // the token array's count: its offset is after the key and the types
    const arr = writeGguf([['tokenizer.ggml.tokens', T.array, ['a'], T.string]], []);
    const lie = arr.slice();
    new DataView(lie.buffer).setBigUint64(24 + 8 + 'tokenizer.ggml.tokens'.length + 4 + 4, 10n ** 12n, true);
    const t0 = performance.now();
    expect(parseError(lie)).toMatch(/claims more string items than the \d+ bytes left/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(0); // (no timing asserted; it returns at all)
    const dims = writeGguf([], [f32Tensor('t', [4], () => 0)]);
    const big = dims.slice();
    // name length 8 + "t" + n_dims 4: the first dim
    new DataView(big.buffer).setBigUint64(24 + 8 + 1 + 4, 1n << 45n, true);
    expect(parseError(big)).toMatch(/dimension 0 of "t" is 35184372088832, which is more than a/);
  });

  it('refuses a bad alignment, duplicate names, misaligned offsets, unknown types, too many dimensions', () => {
    expect(parseError(writeGguf([['general.alignment', T.u32, 48]], []))).toMatch(/general.alignment must be a u32 power of two, got 48/);
    expect(parseError(writeGguf([['k', T.u8, 1], ['k', T.u8, 2]], []))).toMatch(/metadata key "k" appears twice/);
    expect(parseError(writeGguf([], [f32Tensor('t', [4], () => 0), f32Tensor('t', [4], () => 0)]))).toMatch(/tensor "t" appears twice/);
    expect(parseError(writeGguf([], [{ name: 't', dims: [32], type: 99, data: new Uint8Array(32) }]))).toMatch(/ggml type 99.*unknown type 99/);
    expect(parseError(writeGguf([], [{ name: 't', dims: [1, 1, 1, 1, 1], type: 0, data: new Uint8Array(4) }]))).toMatch(/5 dimensions/);
    expect(parseError(writeGguf([], [{ name: 't', dims: [16], type: 2, data: new Uint8Array(18) }]))).toMatch(/Q4_0 \(blocks of 32\) but its rows have 16 values/);
    expect(parseError(writeGguf([['b', T.bool, 2]], []))).toMatch(/bool stored as 2/);
    const f = writeGguf([], [f32Tensor('t', [4], () => 0)]);
    new DataView(f.buffer).setBigUint64(24 + 8 + 1 + 4 + 8 + 4, 4n, true);
    expect(parseError(f)).toMatch(/starts at data offset 4, which is not a multiple of the alignment 32/);
  });

  it('refuses the types it does not dequantize by name, listing those it reads', () => {
    const e = (() => { try { dequantize(11, new Uint8Array(110), 256, 'tensor "x"'); } catch (err) { return err as Error; } return null; })();
    expect(e).toBeInstanceOf(UnsupportedTypeError);
    expect(e!.message).toMatch(/tensor "x" is stored as Q3_K, which this importer does not dequantize \(it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K\)/);
    const tensors = modelTensors();
    tensors[2] = { name: tensors[2].name, dims: [256, 1], type: 23, data: new Uint8Array(136) };
    expect(() => importGguf(writeGguf(META, tensors))).toThrow(/"blk\.0\.attn_norm\.weight" is stored as IQ4_XS/);
  });

  it('dequantizes hand-made Q4_0, Q4_1 and Q8_0 blocks', () => {
    const block = (head: number[], qs: number[]) => new Uint8Array([...head, ...qs]);
    // d = 0.5 (f16 0x3800), nibbles: low j, high 15 - j
    const q40 = block([0x00, 0x38], Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4)));
    const want = [...Array.from({ length: 16 }, (_, j) => (j - 8) * 0.5), ...Array.from({ length: 16 }, (_, j) => (7 - j) * 0.5)];
    expect(Array.from(dequantize(2, q40, 32, 'q'))).toEqual(want);
    // Q4_1: d 0.5, m -1 (0xbc00)
    const q41 = block([0x00, 0x38, 0x00, 0xbc], Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4)));
    expect(Array.from(dequantize(3, q41, 32, 'q'))).toEqual([...Array.from({ length: 16 }, (_, j) => j * 0.5 - 1), ...Array.from({ length: 16 }, (_, j) => (15 - j) * 0.5 - 1)]);
    const q80 = block([0x00, 0x40], Array.from({ length: 32 }, (_, j) => (j - 16) & 255)); // d = 2
    expect(Array.from(dequantize(8, q80, 32, 'q'))).toEqual(Array.from({ length: 32 }, (_, j) => (j - 16) * 2));
    expect(() => dequantize(8, q80.subarray(0, 33), 32, 'q')).toThrow(/takes 34 bytes, got 33/);
  });
});

describe('GGUF import', () => {
  it('undoes llama.cpp\'s q/k permutation (rotate-half rows from interleaved pairs)', () => {
    // convert_hf_to_gguf.py's permute of 2 heads of 4 rows, 3 columns: HF row (h, a, i) goes to (h, i, a)
    const hf = Float32Array.from({ length: 24 }, (_, i) => i);
    const gg = new Float32Array(24);
    for (let h = 0; h < 2; h++) for (let a = 0; a < 2; a++) for (let i = 0; i < 2; i++) {
      gg.set(hf.subarray((h * 4 + a * 2 + i) * 3, (h * 4 + a * 2 + i) * 3 + 3), (h * 4 + i * 2 + a) * 3);
    }
    expect(Array.from(unpermuteRows(gg, 2, 3))).toEqual(Array.from(hf));
    expect(() => unpermuteRows(new Float32Array(6), 2, 1)).toThrow(/6 rows are not 2 heads of an even size/);
  });

  it('writes config.json, float32 weights under Hugging Face names and a tokenizer the engine loads', () => {
    const { files, info } = ggufToFiles(writeGguf(META, modelTensors()));
    expect(info).toMatchObject({ architecture: 'llama', name: 'tiny', version: 3, types: { F32: 20 } });
    const ck = decodeCheckpoint(files);
    expect(ck.config).toMatchObject({
      model_type: 'llama', hidden_size: D, intermediate_size: I, num_hidden_layers: L, num_attention_heads: H, num_key_value_heads: KV,
      head_dim: HD, vocab_size: TOKENS.length, max_position_embeddings: 64, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
    });
    expect(ck.config.rms_norm_eps).toBeCloseTo(1e-5, 10);
    // q rows un-permuted: GGUF row 1 (head 0, pair 0, second) is HF row 2
    const q = ck.tensors.get('model.layers.0.self_attn.q_proj.weight')!;
    expect(q[2 * D]).toBe(1 * D);
    const tk = loadTokenizer(ck)!;
    expect(tk.encode('ab ab')).toEqual([3, 5]);
    expect(tk.encode('<eos>')).toEqual([0]);
    expect(tk.decode([3, 5])).toBe('ab ab');
    expect(new TextDecoder().decode(files.get('tokenizer_config.json'))).toContain('"eos_token": "<|endoftext|>"');
    // untied: output.weight becomes lm_head.weight
    const untied = decodeCheckpoint(ggufToFiles(writeGguf(META, modelTensors({ untied: true }))).files);
    expect(untied.config.tie_word_embeddings).toBe(false);
    expect(untied.tensors.get('lm_head.weight')![1]).toBeCloseTo(-0.01, 7);
  });

  it('refuses what it cannot convert, by name', () => {
    const meta = (patch: Kv[]) => [...META.filter(([k]) => !patch.some(([p]) => p === k)), ...patch];
    const imp = (kvs: Kv[], tensors = modelTensors()) => () => importGguf(writeGguf(kvs, tensors));
    expect(imp(meta([['general.architecture', T.string, 'gemma2']]))).toThrow(/architecture is "gemma2".*reads llama, qwen2, qwen3/);
    expect(imp(meta([['tokenizer.ggml.pre', T.string, 'chatglm-bpe']]))).toThrow(/pre-tokenizer is "chatglm-bpe"/);
    expect(imp(meta([['tokenizer.ggml.model', T.string, 't5']]))).toThrow(/tokenizer is "t5"/);
    expect(imp(meta([['llama.rope.scaling.type', T.string, 'yarn']]))).toThrow(/RoPE scaling is "yarn"/);
    expect(imp(meta([['llama.rope.dimension_count', T.u32, 2]]))).toThrow(/partial RoPE/);
    expect(imp(meta([['llama.attention.head_count', T.array, [2, 2], T.u32]]))).toThrow(/is an array/);
    expect(imp(META.filter(([k]) => k !== 'llama.embedding_length'))).toThrow(/no llama.embedding_length metadata/);
    expect(imp(meta([['tokenizer.ggml.tokens', T.array, ['a', 'a', 'b', 'ab', 'Ġ', 'Ġab'], T.string]]))).toThrow(/holds "a" twice/);
    expect(imp(META, [...modelTensors(), f32Tensor('blk.0.ssm_a', [4], () => 0)])).toThrow(/tensors that are not part of a llama model.*"blk\.0\.ssm_a"/);
    expect(imp(META, modelTensors().filter((t) => t.name !== 'blk.1.ffn_up.weight'))).toThrow(/lacks tensors a llama model of this config has: blk\.1\.ffn_up\.weight \(model\.layers\.1\.mlp\.up_proj\.weight\)/);
    const wrong = modelTensors();
    wrong[3] = f32Tensor('blk.0.ffn_norm.weight', [D + 1], () => 1);
    expect(imp(META, wrong)).toThrow(/"blk\.0\.ffn_norm\.weight" is \[9\] but the metadata implies \[8\]/);
  });

  it('recovers Llama 3.x\'s RoPE scaling from rope_freqs and refuses other factors', () => {
    const p = { rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const factors = llama3RopeFactors(p, 64);
    expect(factors[0]).toBe(1);
    expect(factors[31]).toBe(32);
    expect(llama3FromRopeFreqs(factors, 500000, 64)).toEqual({ rope_type: 'llama3', ...p });
    const off = factors.slice();
    off[20] *= 1.01;
    expect(() => llama3FromRopeFreqs(off, 500000, 64)).toThrow(/not Llama 3\.x's scaling/);
    const tensors = [...modelTensors(), { name: 'rope_freqs.weight', dims: [2], type: 0, data: f32([1, 1]) }];
    const g = importGguf(writeGguf(META, tensors));
    expect(g.config.rope_parameters).toMatchObject({ rope_type: 'llama3', factor: 1 });
  });

  it('gives back a transformers-style checkpoint written as llama.cpp writes it: weights, config and tokenizer', () => {
    const tkMade = byteLevelBpe();
    const fx = hfCheckpoint({ type: 'llama', tokenizer: tkMade, config: { hidden_size: 32, intermediate_size: 64 } });
    const orig = decodeCheckpoint(fx.files);
    const origTk = loadTokenizer(orig)!;
    for (const quant of ['F32', 'Q8_0'] as const) {
      const ck = decodeCheckpoint(ggufToFiles(ggufFromFixture(fx, tkMade, { quant })).files);
      expect(ck.config).toMatchObject({ hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, vocab_size: fx.config.vocab_size, tie_word_embeddings: false });
      for (const [name, want] of fx.weights) {
        const got = ck.tensors.get(name)!;
        // Q8_0: each value within half a step (d / 2, d = max|block| / 127) plus the scale's f16
        // rounding carried by up to 127 steps (127 * d * 2^-11), bounded here with the tensor's max|x|
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
        if (quant === 'F32' || name.endsWith('norm.weight')) expect(worst, name).toBe(0);
        else expect(worst, name).toBeLessThanOrEqual(Math.max(...want.map(Math.abs)) * (1 / 254 + 2 ** -11));
      }
      const tk = loadTokenizer(ck)!;
      for (const text of [...trainingText(5), 'Hello, world! 123 <|endoftext|>', '  two  spaces\n\nlines']) {
        expect(tk.encode(text), text).toEqual(origTk.encode(text));
      }
      expect(tk.eosId).toBe(origTk.eosId);
    }
  });
});
