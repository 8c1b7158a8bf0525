// A GGUF model (llama.cpp) as the Hugging Face files this engine, export, PEFT and the companion read:
// config.json from the {arch}.* metadata, tokenizer.json / tokenizer_config.json from tokenizer.ggml.*
// (./gguf-tokenizer.ts), and every tensor dequantized to float32 (./gguf-quants.ts) under its Hugging
// Face name. Architectures "llama" (Llama, SmolLM2, Mistral), "qwen2" and "qwen3". llama.cpp's
// converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders the rows of a Llama q_proj / k_proj
// from Hugging Face's rotate-half RoPE layout to interleaved pairs; it is undone here, as transformers'
// GGUF loader undoes it. Qwen files are written unpermuted. Pure TypeScript.
import { ARCHITECTURES, type LlamaConfig, type ModelType } from '../model/config';
import { encodeCheckpoint, expectedTensors, validateConfig } from './checkpoint';
import { GgufError, GgufMeta, parseGguf, tensorData, type GgufFile, type GgufTensorInfo } from './gguf';
import { dequantize, SUPPORTED_TYPES, UnsupportedTypeError } from './gguf-quants';
import { ggufTokenizer } from './gguf-tokenizer';
import { llama3FromRopeFreqs } from './gguf-rope';
import { listShort, printableName } from './text';
import { zipStore } from './zip';

export { GgufError } from './gguf';

/** GGUF general.architecture to the model type it is imported as. */
const ARCH_TYPES: Record<string, ModelType> = { llama: 'llama', qwen2: 'qwen2', qwen3: 'qwen3' };

/** llama.cpp's per-layer tensor names (blk.N.<name>) to Hugging Face's (model.layers.N.<name>). */
const LAYER_NAMES: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'attn_output.bias': 'self_attn.o_proj.bias',
  'attn_q_norm.weight': 'self_attn.q_norm.weight',
  'attn_k_norm.weight': 'self_attn.k_norm.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
  'ffn_gate.bias': 'mlp.gate_proj.bias',
  'ffn_up.bias': 'mlp.up_proj.bias',
  'ffn_down.bias': 'mlp.down_proj.bias',
};
const GLOBAL_NAMES: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};
/** Tensors read for the config, not stored. */
const ROPE_FREQS = 'rope_freqs.weight';

/** The Hugging Face name of a GGUF tensor, or null when it is not part of these architectures. */
export function hfTensorName(name: string): string | null {
  if (Object.hasOwn(GLOBAL_NAMES, name)) return GLOBAL_NAMES[name];
  const m = /^blk\.(0|[1-9]\d*)\.(.+)$/.exec(name);
  if (m && Object.hasOwn(LAYER_NAMES, m[2])) return `model.layers.${m[1]}.${LAYER_NAMES[m[2]]}`;
  return null;
}

/**
 * Undoes llama.cpp's permute of q_proj / k_proj rows: within each of `heads` heads of `hd` rows, GGUF
 * row 2i + a holds Hugging Face row a * hd/2 + i (a = 0, 1; i < hd/2). `cols` values per row (1 for a bias).
 */
export function unpermuteRows(data: Float32Array, heads: number, cols: number): Float32Array {
  const rows = data.length / cols;
  if (!Number.isInteger(rows) || rows % heads !== 0 || (rows / heads) % 2 !== 0) {
    throw new GgufError(`cannot undo llama.cpp's q/k permutation: ${rows} rows are not ${heads} heads of an even size`);
  }
  const hd = rows / heads;
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let a = 0; a < 2; a++) {
        const from = (h * hd + 2 * i + a) * cols;
        const to = (h * hd + a * half + i) * cols;
        out.set(data.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

export interface GgufImport {
  config: LlamaConfig;
  tensors: Map<string, Float32Array>;
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** What the file was: for provenance and the CLI's summary. */
  info: { architecture: string; name: string | null; version: number; types: Record<string, number>; tensors: number };
}

/** Reads, checks and converts a GGUF file; throws GgufError (or the checkpoint's own error) naming the problem. */
export function importGguf(bytes: Uint8Array, onTensor?: (done: number, total: number) => void): GgufImport {
  const file = parseGguf(bytes);
  const meta = new GgufMeta(file.metadata);
  const arch = meta.str('general.architecture')!;
  const type = Object.hasOwn(ARCH_TYPES, arch) ? ARCH_TYPES[arch] : null;
  if (!type) fail(`the file's architecture is ${JSON.stringify(arch)} (general.architecture); this importer reads ${Object.keys(ARCH_TYPES).join(', ')}`);
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const unknown = file.tensors.filter((t) => t.name !== ROPE_FREQS && hfTensorName(t.name) === null).map((t) => printableName(t.name));
  if (unknown.length) fail(`the file holds tensors that are not part of a ${arch} model this engine runs: ${listShort(unknown)}`);
  const embd = byName.get('token_embd.weight') ?? fail('the file has no token_embd.weight (the token embedding)');
  if (embd.shape.length !== 2) fail(`token_embd.weight has shape [${embd.shape.join(', ')}]; it must be [vocab, hidden]`);
  const tk = ggufTokenizer(meta);
  const config = configFrom(meta, arch, type!, embd, tk, file);
  checkTable(config, stored(file));
  const tensors = new Map<string, Float32Array>();
  const types: Record<string, number> = {};
  const list = stored(file);
  list.forEach((t, k) => {
    const hf = hfTensorName(t.name)!;
    let data = dequantize(t.type, tensorData(file, t), t.elements, `tensor ${printableName(t.name)}`);
    if (type === 'llama') {
      const cols = t.shape.length === 2 ? t.shape[1] : 1;
      if (/\.q_proj\./.test(hf)) data = unpermuteRows(data, config.num_attention_heads, cols);
      if (/\.k_proj\./.test(hf)) data = unpermuteRows(data, config.num_key_value_heads, cols);
    }
    tensors.set(hf, data);
    types[t.typeName] = (types[t.typeName] ?? 0) + 1;
    onTensor?.(k + 1, list.length);
  });
  return {
    config, tensors, tokenizer: tk.tokenizer, tokenizerConfig: tk.tokenizerConfig,
    info: { architecture: arch, name: meta.str('general.name', false) ?? null, version: file.version, types, tensors: list.length },
  };
}

/** importGguf's result as the Hugging Face files (config.json, model.safetensors F32, tokenizer.json, tokenizer_config.json). */
export function ggufToFiles(bytes: Uint8Array, onTensor?: (done: number, total: number) => void): { files: Map<string, Uint8Array>; info: GgufImport['info'] } {
  const g = importGguf(bytes, onTensor);
  return { files: encodeCheckpoint(g), info: g.info };
}

const stored = (file: GgufFile) => file.tensors.filter((t) => t.name !== ROPE_FREQS);

/** Every tensor the config implies is there with its shape, before anything is dequantized. */
function checkTable(config: LlamaConfig, tensors: GgufTensorInfo[]): void {
  const want = expectedTensors(config);
  const have = new Map(tensors.map((t) => [hfTensorName(t.name)!, t]));
  const ggName = (hf: string) => [...Object.entries(GLOBAL_NAMES), ...Object.entries(LAYER_NAMES).map(([g, h]) => [`blk.N.${g}`, `model.layers.N.${h}`])]
    .find(([, h]) => h === hf.replace(/^model\.layers\.\d+\./, 'model.layers.N.'))?.[0].replace('blk.N.', `blk.${/\d+/.exec(hf)?.[0]}.`) ?? hf;
  const missing = [...want.keys()].filter((n) => !have.has(n)).map((n) => `${ggName(n)} (${n})`);
  if (missing.length) fail(`the file lacks tensors a ${config.model_type} model of this config has: ${listShort(missing)}`);
  const extra = [...have.keys()].filter((n) => !want.has(n)).map((n) => printableName(have.get(n)!.name));
  if (extra.length) fail(`the file holds tensors a ${config.model_type} model of this config does not have: ${listShort(extra)}`);
  const unread = tensors.filter((t) => !(SUPPORTED_TYPES as readonly string[]).includes(t.typeName));
  if (unread.length) {
    const others = unread.length > 1 ? ` (and ${unread.length - 1} more tensors of types ${[...new Set(unread.map((t) => t.typeName))].join(', ')})` : '';
    throw new UnsupportedTypeError(unread[0].typeName, `tensor ${printableName(unread[0].name)}${others}`);
  }
  for (const [hf, shape] of want) {
    const t = have.get(hf)!;
    if (t.shape.join() !== shape.join()) fail(`tensor ${printableName(t.name)} is [${t.shape.join(', ')}] but the metadata implies [${shape.join(', ')}] for ${hf}`);
  }
}

/**
 * A GGUF file as the page's library imports a model: its Hugging Face files in one stored zip named
 * after the file (the library names the model by it), with what the file was in training_args.json
 * (the entry's provenance).
 */
export function ggufImportZip(
  fileName: string, bytes: Uint8Array, onTensor?: (done: number, total: number) => void,
): { name: string; bytes: Uint8Array } {
  const { files, info } = ggufToFiles(bytes, onTensor);
  const base = fileName.replace(/^.*[\\/]/, '').replace(/\.gguf$/i, '');
  const provenance = { source: `GGUF file ${base}.gguf`, gguf: info };
  files.set('training_args.json', new TextEncoder().encode(JSON.stringify(provenance, null, 2) + '\n'));
  return { name: `${base}.zip`, bytes: zipStore(files) };
}

function fail(msg: string): never {
  throw new GgufError(msg);
}

function configFrom(
  meta: GgufMeta, arch: string, type: ModelType, embd: GgufTensorInfo, tk: ReturnType<typeof ggufTokenizer>, file: GgufFile,
): LlamaConfig {
  const k = (s: string) => `${arch}.${s}`;
  const hidden = meta.int(k('embedding_length'), true, 1)!;
  const heads = meta.int(k('attention.head_count'), true, 1)!;
  const kvHeads = meta.int(k('attention.head_count_kv'), false, 1) ?? heads;
  const layers = meta.int(k('block_count'), true, 1)!;
  const headDim = meta.int(k('attention.key_length'), false, 1) ?? (hidden % heads === 0 ? hidden / heads : fail(`${k('embedding_length')} ${hidden} is not divisible by ${k('attention.head_count')} ${heads} and no ${k('attention.key_length')} is given`));
  const valueDim = meta.int(k('attention.value_length'), false, 1);
  if (valueDim !== undefined && valueDim !== headDim) fail(`${k('attention.value_length')} ${valueDim} differs from the key length ${headDim}; this engine's heads have one size`);
  const ropeDim = meta.int(k('rope.dimension_count'), false, 1);
  if (ropeDim !== undefined && ropeDim !== headDim) fail(`${k('rope.dimension_count')} is ${ropeDim} but the heads have ${headDim} dimensions: partial RoPE is not supported`);
  const [vocab, embdHidden] = embd.shape;
  if (embdHidden !== hidden) fail(`token_embd.weight is [${embd.shape.join(', ')}] but ${k('embedding_length')} is ${hidden}`);
  const metaVocab = meta.int(k('vocab_size'), false, 1);
  if (metaVocab !== undefined && metaVocab !== vocab) fail(`${k('vocab_size')} is ${metaVocab} but token_embd.weight has ${vocab} rows`);
  const theta = meta.num(k('rope.freq_base'), false) ?? 10000;
  const scaling = meta.str(k('rope.scaling.type'), false);
  if (scaling !== undefined && scaling !== 'none') {
    fail(`the file's RoPE scaling is ${JSON.stringify(scaling)} (${k('rope.scaling.type')}); this engine runs plain RoPE and Llama 3's scaling only`);
  }
  const maxPos = meta.int(k('context_length'), false, 1) ?? 2048;
  const cfg: Record<string, unknown> = {
    architectures: [ARCHITECTURES[type]],
    model_type: type,
    hidden_size: hidden,
    intermediate_size: meta.int(k('feed_forward_length'), true, 1),
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    vocab_size: vocab,
    max_position_embeddings: maxPos,
    rms_norm_eps: meta.num(k('attention.layer_norm_rms_epsilon')),
    rope_theta: theta,
    tie_word_embeddings: !file.tensors.some((t) => t.name === 'output.weight'),
    bos_token_id: tk.bos,
    eos_token_id: tk.eos,
    pad_token_id: tk.pad,
    torch_dtype: 'float32',
  };
  const ropeFreqs = file.tensors.find((t) => t.name === ROPE_FREQS);
  if (ropeFreqs) {
    const factors = dequantize(ropeFreqs.type, tensorData(file, ropeFreqs), ropeFreqs.elements, `tensor ${ROPE_FREQS}`);
    const llama3 = llama3FromRopeFreqs(factors, theta, headDim);
    cfg.rope_parameters = llama3;
  }
  if (type === 'llama') {
    const has = (n: string) => file.tensors.some((t) => t.name === `blk.0.${n}`);
    if (has('attn_q.bias')) cfg.attention_bias = true;
    if (has('ffn_up.bias')) cfg.mlp_bias = true;
  }
  if (type === 'qwen3' && file.tensors.some((t) => t.name === 'blk.0.attn_q.bias')) cfg.attention_bias = true;
  try {
    return validateConfig(cfg);
  } catch (e) {
    return fail(`the config the metadata gives is not usable: ${(e as Error).message.replace(/^config\.json: /, '')}`);
  }
}
