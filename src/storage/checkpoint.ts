// A Hugging Face checkpoint as files: config.json (LlamaConfig, Qwen2Config or Qwen3Config),
// model.safetensors (LlamaForCausalLM's / Qwen2ForCausalLM's / Qwen3ForCausalLM's tensors, F32,
// Linear weights (out, in)) and, optionally, tokenizer.json and tokenizer_config.json (opaque JSON
// objects owned by src/tokenizers). What we write loads with transformers' from_pretrained; what
// save_pretrained writes for these architectures (F32, F16 or BF16, single file or sharded with
// model.safetensors.index.json, with or without a tokenizer) loads here. Pure TypeScript: no DOM, no
// Node APIs. The config's shape (LlamaConfig) is src/model's; this module reads and writes it.
import { ARCHITECTURES, MODEL_TYPES, biasedProjs, type LlamaConfig, type ModelType } from '../model/config';
import { readRope } from './rope-config';
import { decodeSafetensors, encodeSafetensors, readSafetensorsHeader, type TensorToWrite } from './safetensors';
import { filesPresent } from './text';

export type { LlamaConfig } from '../model/config';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

const fail = (msg: string): never => {
  throw new CheckpointError(msg);
};
/** A value as it reads in config.json (Infinity, which JSON.parse makes of 1e999, is not "null"). */
const show = (v: unknown): string =>
  v === undefined ? 'missing' : typeof v === 'number' && !Number.isFinite(v) ? String(v) : clip(JSON.stringify(v) ?? String(v));
const clip = (s: string): string => (s.length > 120 ? `${s.slice(0, 117)}...` : s);
/** The largest finite float32: the engine computes in f32, so a config number beyond it cannot be used. */
const F32_MAX = 3.4028234663852886e38;
const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** transformers' defaults per architecture for the fields older or smaller configs omit. */
const TYPE_DEFAULTS: Record<ModelType, { eps: number; maxPos: number; bos: number | null; eos: number | null; headDim: number | null }> = {
  // LlamaConfig: rms_norm_eps 1e-6, max_position_embeddings 2048, bos 1, eos 2, head_dim hidden / heads
  llama: { eps: 1e-6, maxPos: 2048, bos: 1, eos: 2, headDim: null },
  // Qwen2Config: no head_dim field (always hidden / heads), no default bos/eos
  qwen2: { eps: 1e-6, maxPos: 32768, bos: null, eos: null, headDim: null },
  // Qwen3Config: head_dim 128 by default
  qwen3: { eps: 1e-6, maxPos: 32768, bos: null, eos: null, headDim: 128 },
};

/**
 * Checks a parsed config.json and returns it normalized to LlamaConfig (HF defaults filled in for
 * fields older configs omit: head_dim = hidden_size / num_attention_heads (Qwen3: 128),
 * num_key_value_heads = num_attention_heads, ...). Throws naming the bad field and its value.
 */
export function validateConfig(c: unknown): LlamaConfig {
  if (!isObject(c)) fail(`config.json must be a JSON object, got ${show(c)}`);
  const cfg = c as Record<string, unknown>;
  const arch = cfg.architectures;
  const type = cfg.model_type;
  const known = (MODEL_TYPES as readonly unknown[]).includes(type);
  const archName = known ? ARCHITECTURES[type as ModelType] : '';
  if (!known || (arch !== undefined && !(Array.isArray(arch) && arch.includes(archName)))) {
    const what = Array.isArray(arch) && arch.length ? arch.join(', ') : `a model of type ${show(type)}`;
    fail(
      `config.json describes ${what} (model_type ${show(type)}), not a causal LM this engine runs: only ` +
        MODEL_TYPES.map((t) => `architectures ["${ARCHITECTURES[t]}"] with model_type "${t}"`).join(', ') + ' can be loaded',
    );
  }
  const modelType = type as ModelType;
  const defaults = TYPE_DEFAULTS[modelType];
  const int = (field: string, min: number, fallback?: number): number => {
    const v = cfg[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      fail(`config.json: ${field} must be an integer >= ${min}, got ${show(cfg[field])}`);
    }
    return v as number;
  };
  const positive = (field: string, fallback: number, max = F32_MAX, why = 'the engine computes in float32'): number => {
    const v = cfg[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
      fail(`config.json: ${field} must be a positive number${v !== undefined && typeof v === 'number' && v > max ? ` at most ${max} (${why})` : ''}, got ${show(cfg[field])}`);
    }
    return v as number;
  };
  const flag = (field: string): boolean => {
    const v = cfg[field] ?? false;
    if (typeof v !== 'boolean') fail(`config.json: ${field} must be true or false, got ${show(v)}`);
    return v as boolean;
  };
  const hidden = int('hidden_size', 1);
  const inter = int('intermediate_size', 1);
  const layers = int('num_hidden_layers', 1);
  const heads = int('num_attention_heads', 1);
  const kvHeads = int('num_key_value_heads', 1, heads);
  const vocab = int('vocab_size', 1);
  const maxPos = int('max_position_embeddings', 1, defaults.maxPos);
  if (heads % kvHeads !== 0) {
    fail(`config.json: num_attention_heads ${heads} is not divisible by num_key_value_heads ${kvHeads}`);
  }
  // Qwen2 has no head_dim field: its heads are always hidden_size / num_attention_heads
  const explicitHead = modelType !== 'qwen2' && cfg.head_dim !== undefined && cfg.head_dim !== null;
  const fallbackHead = defaults.headDim ?? (hidden % heads === 0 ? hidden / heads : undefined);
  if (!explicitHead && fallbackHead === undefined) {
    fail(`config.json: hidden_size ${hidden} is not divisible by num_attention_heads ${heads} (and no head_dim is given)`);
  }
  const headDim = explicitHead ? int('head_dim', 1) : (fallbackHead as number);
  if (headDim % 2 !== 0) fail(`config.json: head_dim ${headDim} must be even (RoPE rotates pairs)`);
  const rope = readRope(cfg, maxPos, fail, show);
  const eps = positive('rms_norm_eps', defaults.eps, 1, 'it is added to the mean square of the activations; Llama uses 1e-5 or 1e-6');
  const tie = cfg.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') fail(`config.json: tie_word_embeddings must be true or false, got ${show(tie)}`);
  const dtype = cfg.torch_dtype ?? cfg.dtype ?? 'float32';
  if (typeof dtype !== 'string') fail(`config.json: torch_dtype must be a string, got ${show(dtype)}`);
  const tokenId = (field: string, fallback: number | null, list = false): number | number[] | null => {
    const v = field in cfg ? cfg[field] : fallback;
    if (v === null || v === undefined) return null;
    const ok = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < vocab;
    if (ok(v)) return v as number;
    if (list && Array.isArray(v) && v.length && v.every(ok)) return [...(v as number[])];
    return fail(`config.json: ${field} must be ${list ? 'a token id or a list of token ids' : 'a token id'} in [0, ${vocab}) or null, got ${show(v)}`);
  };
  // Features of these architectures this engine does not implement: refuse rather than compute wrongly.
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu') fail(`config.json: hidden_act ${show(act)} is not supported (only "silu", the SwiGLU of Llama and Qwen)`);
  let attentionBias = false;
  let mlpBias = false;
  if (modelType === 'qwen2') {
    // Qwen2's q/k/v always carry biases and its o_proj and MLP never do; it has no switch for them
  } else {
    attentionBias = flag('attention_bias');
    if (modelType === 'llama') mlpBias = flag('mlp_bias');
    else if (cfg.mlp_bias !== undefined && cfg.mlp_bias !== false) fail(`config.json: mlp_bias ${show(cfg.mlp_bias)} is not a Qwen3 setting (its MLP has no bias)`);
  }
  if (modelType !== 'llama' && cfg.use_sliding_window === true) {
    fail('config.json: use_sliding_window true is not supported (every layer attends over the whole sequence here)');
  }
  const out: LlamaConfig = {
    architectures: [ARCHITECTURES[modelType]],
    model_type: modelType,
    hidden_size: hidden,
    intermediate_size: inter,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    vocab_size: vocab,
    rope_theta: rope.theta,
    ...(rope.llama3 ? { rope_parameters: rope.llama3 } : {}),
    rms_norm_eps: eps,
    tie_word_embeddings: tie as boolean,
    max_position_embeddings: maxPos,
    head_dim: headDim,
    torch_dtype: dtype as string,
    bos_token_id: tokenId('bos_token_id', defaults.bos) as number | null,
    eos_token_id: tokenId('eos_token_id', defaults.eos, true),
    pad_token_id: tokenId('pad_token_id', null) as number | null,
  };
  // written only when set, so a checkpoint without biases keeps the config.json it had
  if (attentionBias) out.attention_bias = true;
  if (mlpBias) out.mlp_bias = true;
  return out;
}

/** (in, out) of each Linear of a Llama decoder layer, by module name. */
export function linearShapes(c: LlamaConfig): Record<string, { in: number; out: number }> {
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const D = c.hidden_size;
  const I = c.intermediate_size;
  return {
    q_proj: { in: D, out: q },
    k_proj: { in: D, out: kv },
    v_proj: { in: D, out: kv },
    o_proj: { in: q, out: D },
    gate_proj: { in: D, out: I },
    up_proj: { in: D, out: I },
    down_proj: { in: I, out: D },
  };
}

/** Every tensor of the architecture with its shape, in Hugging Face's order (lm_head only if untied). */
export function expectedTensors(config: LlamaConfig): Map<string, number[]> {
  const c = validateConfig(config);
  const D = c.hidden_size;
  const lin = linearShapes(c);
  const biased = new Set<string>(biasedProjs(c));
  const out = new Map<string, number[]>();
  out.set('model.embed_tokens.weight', [c.vocab_size, D]);
  const linear = (p: string, m: string) => {
    out.set(`${p}.${m}.weight`, [lin[m].out, lin[m].in]);
    if (biased.has(m)) out.set(`${p}.${m}.bias`, [lin[m].out]);
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    out.set(`${p}.input_layernorm.weight`, [D]);
    for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) linear(`${p}.self_attn`, m);
    if (c.model_type === 'qwen3') {
      out.set(`${p}.self_attn.q_norm.weight`, [c.head_dim]);
      out.set(`${p}.self_attn.k_norm.weight`, [c.head_dim]);
    }
    out.set(`${p}.post_attention_layernorm.weight`, [D]);
    for (const m of ['gate_proj', 'up_proj', 'down_proj']) linear(`${p}.mlp`, m);
  }
  out.set('model.norm.weight', [D]);
  if (!c.tie_word_embeddings) out.set('lm_head.weight', [c.vocab_size, D]);
  return out;
}

export interface Checkpoint {
  config: LlamaConfig;
  /** Flat row-major F32 data, by HF tensor name; shapes are those of expectedTensors(config). */
  tensors: Map<string, Float32Array>;
  /** tokenizer.json as parsed JSON (owned by src/tokenizers), or null when the checkpoint has none. */
  tokenizer: Record<string, unknown> | null;
  /** tokenizer_config.json as parsed JSON, when present (special-token settings a tokenizer.json leaves out). */
  tokenizerConfig?: Record<string, unknown> | null;
  /** The dtypes the weights were stored in (F32, F16, BF16), for provenance and memory estimates. */
  storedDtypes?: string[];
}

function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

const LIST_MAX = 5;
function listNames(names: string[]): string {
  return names.length <= LIST_MAX ? names.join(', ') : `${names.slice(0, LIST_MAX).join(', ')} and ${names.length - LIST_MAX} more`;
}

/**
 * The parameters a config implies, by part, computed without building anything (a config.json
 * claiming a billion layers must fail in microseconds, not after allocating gigabytes).
 */
export function impliedParams(c: LlamaConfig): { total: number; perLayer: number; embeddings: number; tensors: number } {
  const D = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const I = c.intermediate_size;
  const lin = linearShapes(c);
  const biased = biasedProjs(c);
  const qkNorm = c.model_type === 'qwen3' ? 2 : 0;
  const perLayer = 2 * D + D * q + 2 * D * kv + q * D + 3 * D * I +
    biased.reduce((n, p) => n + lin[p].out, 0) + qkNorm * c.head_dim;
  const embeddings = (c.tie_word_embeddings ? 1 : 2) * c.vocab_size * D;
  return {
    total: c.num_hidden_layers * perLayer + embeddings + D,
    perLayer,
    embeddings,
    tensors: (9 + biased.length + qkNorm) * c.num_hidden_layers + 2 + (c.tie_word_embeddings ? 0 : 1),
  };
}

/**
 * Refuses a config whose implied size the weight files cannot hold: more tensors than the files list,
 * or more parameters than their bytes at 16 bits each (the smallest dtype read). Names the field.
 */
export function checkConfigFitsWeights(c: LlamaConfig, fileBytes: number, tensorCount: number, where: string): void {
  const p = impliedParams(c);
  const dims = `num_hidden_layers=${c.num_hidden_layers}, hidden_size=${c.hidden_size}, intermediate_size=${c.intermediate_size}, vocab_size=${c.vocab_size}`;
  if (p.tensors > tensorCount + 1) {
    fail(`config.json: num_hidden_layers ${c.num_hidden_layers} implies ${p.tensors} tensors, but ${where} holds ${tensorCount}; num_hidden_layers is wrong for these weights`);
  }
  if (p.total * 2 > fileBytes) {
    // the field whose size is most to blame: the one that, set to 1, shrinks the count the most
    const fields = ['num_hidden_layers', 'hidden_size', 'intermediate_size', 'vocab_size'] as const;
    const blame = fields
      .map((f) => ({ f, rest: impliedParams({ ...c, [f]: 1, head_dim: f === 'hidden_size' ? 1 : c.head_dim }).total }))
      .sort((a, b) => a.rest - b.rest)[0].f;
    fail(
      `config.json: ${blame} ${c[blame]} implies ${p.total.toExponential(3)} parameters (${dims}), at least ` +
        `${(p.total * 2).toExponential(3)} bytes even at 16 bits, but ${where} holds ${fileBytes} bytes; ${blame} is wrong for these weights`,
    );
  }
}

/**
 * Before an archive is inflated (issue 20 item 9): the safetensors files beside each config.json in it
 * may claim no more than that config's model takes as float32, plus 1 KiB of header per tensor and
 * 64 KiB per file. `entries` is the archive's listing and `read` inflates one (small) entry; a
 * config.json that does not parse is left for decodeCheckpoint to report. Throws CheckpointError.
 */
export function checkArchiveWeights(entries: readonly { name: string; size: number }[], read: (name: string) => Uint8Array): void {
  const dirOf = (n: string) => n.slice(0, n.lastIndexOf('/') + 1);
  for (const cfgEntry of entries.filter((e) => e.name === CONFIG_FILE || e.name.endsWith(`/${CONFIG_FILE}`))) {
    const dir = dirOf(cfgEntry.name);
    const weights = entries.filter((e) => dirOf(e.name) === dir && e.name.endsWith('.safetensors'));
    if (!weights.length) continue;
    let config: LlamaConfig;
    try {
      config = validateConfig(JSON.parse(new TextDecoder().decode(read(cfgEntry.name))));
    } catch {
      continue;
    }
    const p = impliedParams(config);
    // (a tied model may also store lm_head.weight, a copy of the embeddings)
    const tiedHead = config.tie_word_embeddings ? config.vocab_size * config.hidden_size : 0;
    const cap = 4 * (p.total + tiedHead) + 1024 * (p.tensors + 1) + 65536 * weights.length;
    const claimed = weights.reduce((n, e) => n + e.size, 0);
    if (claimed > cap) {
      const what = weights.length === 1 ? weights[0].name : `the ${weights.length} safetensors files beside it`;
      fail(
        `${what} claim${weights.length === 1 ? 's' : ''} ${claimed} bytes, but the model ${cfgEntry.name} describes (${p.total} parameters in ` +
          `${p.tensors} tensors) takes at most ${cap} as float32 with its headers; nothing was extracted`,
      );
    }
  }
}

/** Largest buffer (bytes) and largest storage binding a device allows (GPUSupportedLimits' names). */
export interface DeviceLimitsLike {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/**
 * Refuses a model whose largest tensor (as f32, with its Adam moments and gradient the same size)
 * does not fit one buffer of the device, naming the fields behind it. Call before uploading weights.
 */
export function checkConfigFitsDevice(c: LlamaConfig, limits: DeviceLimitsLike): void {
  const limit = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  const q = c.num_attention_heads * c.head_dim;
  const biggest: [string, number][] = [
    ['vocab_size x hidden_size (the embeddings)', c.vocab_size * c.hidden_size],
    ['intermediate_size x hidden_size (an MLP projection)', c.intermediate_size * c.hidden_size],
    ['num_attention_heads x head_dim x hidden_size (q_proj)', q * c.hidden_size],
  ];
  for (const [what, n] of biggest) {
    if (n * 4 > limit) {
      fail(`config.json: ${what} = ${n} values is ${n * 4} bytes as float32, more than the ${limit} bytes one buffer of this device can hold`);
    }
  }
}

/**
 * What this engine cannot run although the checkpoint is a valid Hugging Face one (null when it can):
 * heads wider than the attention kernels hold.
 */
export function engineConfigProblem(c: LlamaConfig): string | null {
  if (c.head_dim > 128) return `config.json: head_dim ${c.head_dim} is above the 128 this engine's attention kernels hold`;
  return null;
}

/**
 * Checks tensors (with their shapes) against the config: every expected tensor present with its
 * shape, no extra ones, all values finite. A tied model may also carry lm_head.weight if it equals
 * model.embed_tokens.weight. Returns the tensors to keep, in expectedTensors order.
 */
function checkTensors(
  config: LlamaConfig, found: Map<string, { shape: readonly number[]; data: Float32Array }>, where: string,
): Map<string, Float32Array> {
  const expected = expectedTensors(config);
  const missing = [...expected.keys()].filter((n) => !found.has(n));
  if (missing.length) {
    fail(`${where} is missing ${missing.length} tensor(s) that config.json implies: ${listNames(missing)}`);
  }
  const extra = [...found.keys()].filter(
    // Old transformers versions saved RoPE's inv_freq buffers; they are recomputed from rope_theta.
    (n) => !expected.has(n) && !/^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(n),
  );
  const tiedHead = config.tie_word_embeddings && extra.includes('lm_head.weight');
  const unexpected = extra.filter((n) => !(tiedHead && n === 'lm_head.weight'));
  if (unexpected.length) {
    fail(
      `${where} has ${unexpected.length} tensor(s) that a LlamaForCausalLM with this config.json does not have: ` +
        `${listNames(unexpected)}`,
    );
  }
  const dims = `hidden_size=${config.hidden_size}, intermediate_size=${config.intermediate_size}, vocab_size=${config.vocab_size}, ` +
    `num_attention_heads=${config.num_attention_heads}, num_key_value_heads=${config.num_key_value_heads}, head_dim=${config.head_dim}`;
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of expected) {
    const t = found.get(name)!;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      fail(`${where}: tensor ${name} has shape ${fmtShape(t.shape)}, expected ${fmtShape(shape)} from config.json (${dims})`);
    }
    const bad = firstNonFinite(t.data);
    if (bad >= 0) fail(`${where}: tensor ${name} contains ${t.data[bad]} at index ${bad}; weights must be finite`);
    out.set(name, t.data);
  }
  if (tiedHead) {
    const head = found.get('lm_head.weight')!;
    const emb = out.get('model.embed_tokens.weight')!;
    const same = head.data.length === emb.length && head.data.every((v, i) => Object.is(v, emb[i]) || v === emb[i]);
    if (!same) {
      fail(
        `${where}: tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight; ` +
          'set tie_word_embeddings to false in config.json to keep a separate output layer',
      );
    }
  }
  return out;
}

/**
 * Encodes a checkpoint as its files: config.json, model.safetensors (F32), and tokenizer.json (with
 * tokenizer_config.json) when it has a tokenizer.
 */
export function encodeCheckpoint(ck: {
  config: LlamaConfig;
  tensors: ReadonlyMap<string, Float32Array>;
  tokenizer: Record<string, unknown> | null;
  tokenizerConfig?: Record<string, unknown> | null;
}): Map<string, Uint8Array> {
  const config = validateConfig({ ...ck.config, torch_dtype: 'float32' });
  if (ck.tokenizer !== null && !isObject(ck.tokenizer)) fail(`the tokenizer must be a JSON object or null, got ${show(ck.tokenizer)}`);
  if (ck.tokenizerConfig != null && !isObject(ck.tokenizerConfig)) fail(`the tokenizer config must be a JSON object, got ${show(ck.tokenizerConfig)}`);
  const expected = expectedTensors(config);
  const found = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const [name, data] of ck.tensors) {
    const shape = expected.get(name) ?? (name === 'lm_head.weight' ? [config.vocab_size, config.hidden_size] : null);
    if (shape && data.length !== shape.reduce((a, b) => a * b, 1)) {
      fail(`tensor ${name} has ${data.length} values, expected shape ${fmtShape(shape)} (${shape.reduce((a, b) => a * b, 1)} values)`);
    }
    found.set(name, { shape: shape ?? [data.length], data });
  }
  const tensors = checkTensors(config, found, 'the model');
  const toWrite = new Map<string, TensorToWrite>();
  for (const [name, data] of tensors) toWrite.set(name, { shape: expected.get(name)!, data });
  const enc = new TextEncoder();
  const out = new Map<string, Uint8Array>([
    [CONFIG_FILE, enc.encode(JSON.stringify(config, null, 2) + '\n')],
    // transformers refuses safetensors files without metadata format "pt".
    [WEIGHTS_FILE, encodeSafetensors(toWrite, { format: 'pt' })],
  ]);
  if (ck.tokenizer) out.set(TOKENIZER_FILE, enc.encode(JSON.stringify(ck.tokenizer)));
  if (ck.tokenizer && ck.tokenizerConfig) out.set(TOKENIZER_CONFIG_FILE, enc.encode(JSON.stringify(ck.tokenizerConfig, null, 2) + '\n'));
  return out;
}

function parseJsonFile(files: ReadonlyMap<string, Uint8Array>, name: string): unknown {
  const bytes = files.get(name);
  if (!bytes) fail(`the checkpoint has no ${name} (files present: ${filesPresent(files)})`);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    return fail(`${name} is not valid JSON: ${(e as Error).message}`);
  }
}

function decodeWeights(
  files: ReadonlyMap<string, Uint8Array>, config: LlamaConfig,
): { where: string; tensors: Map<string, { shape: readonly number[]; data: Float32Array; dtype: string }> } {
  const header = (name: string) => {
    try {
      return readSafetensorsHeader(files.get(name)!);
    } catch (e) {
      return fail(`${name}: ${(e as Error).message}`);
    }
  };
  const read = (name: string) => {
    try {
      return decodeSafetensors(files.get(name)!).tensors;
    } catch (e) {
      return fail(`${name}: ${(e as Error).message}`);
    }
  };
  if (files.has(WEIGHTS_FILE)) {
    // the config's implied size against the file's, before anything the size of the config is built
    checkConfigFitsWeights(config, files.get(WEIGHTS_FILE)!.length, header(WEIGHTS_FILE).entries.length, WEIGHTS_FILE);
    return { where: WEIGHTS_FILE, tensors: read(WEIGHTS_FILE) };
  }
  if (!files.has(WEIGHTS_INDEX_FILE)) {
    fail(`the checkpoint has no ${WEIGHTS_FILE} (files present: ${filesPresent(files)})`);
  }
  // Sharded: the index maps each tensor name to the shard file holding it.
  const index = parseJsonFile(files, WEIGHTS_INDEX_FILE);
  const map = isObject(index) ? index.weight_map : undefined;
  if (!isObject(map)) fail(`${WEIGHTS_INDEX_FILE} has no weight_map object`);
  const weightMap = map as Record<string, unknown>;
  const shards = [...new Set(Object.values(weightMap))];
  for (const shard of shards) {
    if (typeof shard !== 'string' || !files.has(shard)) fail(`${WEIGHTS_INDEX_FILE} names shard ${show(shard)}, which is not among the files`);
  }
  // every tensor where the index says (transformers reads each one from the shard the index names)
  const holds = new Map<string, Set<string>>();
  const namesIn = (shard: string) => {
    let set = holds.get(shard);
    if (!set) holds.set(shard, (set = new Set(header(shard).entries.map((e) => e.name))));
    return set;
  };
  let bytes = 0;
  let count = 0;
  for (const shard of shards as string[]) {
    bytes += files.get(shard)!.length;
    count += namesIn(shard).size;
  }
  const otherShards = [...files.keys()].filter((f) => f.endsWith('.safetensors') && !shards.includes(f)).sort();
  const misplaced: string[] = [];
  for (const [name, shard] of Object.entries(weightMap)) {
    if (namesIn(shard as string).has(name)) continue;
    const actual = [...shards as string[], ...otherShards].find((f) => namesIn(f).has(name));
    misplaced.push(actual ? `${name} (mapped to ${shard}, held by ${actual})` : `${name} (mapped to ${shard}; no shard holds it)`);
  }
  if (misplaced.length) {
    const unnamed = otherShards.length ? `; the index's weight_map names no tensor in ${listNames(otherShards)}` : '';
    fail(`${WEIGHTS_INDEX_FILE} maps ${misplaced.length} tensor(s) to a shard that does not hold them: ${listNames(misplaced)}${unnamed}`);
  }
  const unlisted: string[] = [];
  for (const shard of shards as string[]) for (const name of namesIn(shard)) if (!Object.hasOwn(weightMap, name)) unlisted.push(`${name} (in ${shard})`);
  if (unlisted.length) {
    fail(`${WEIGHTS_INDEX_FILE}'s weight_map does not list ${unlisted.length} tensor(s) its shards hold: ${listNames(unlisted)}`);
  }
  checkConfigFitsWeights(config, bytes, count, 'the sharded weights');
  const tensors = new Map<string, { shape: readonly number[]; data: Float32Array; dtype: string }>();
  for (const shard of shards as string[]) {
    for (const [name, t] of read(shard)) {
      if (tensors.has(name)) fail(`tensor ${name} appears in more than one shard`);
      tensors.set(name, t);
    }
  }
  return { where: 'the sharded weights', tensors };
}

function optionalJsonObject(files: ReadonlyMap<string, Uint8Array>, name: string): Record<string, unknown> | null {
  if (!files.has(name)) return null;
  const v = parseJsonFile(files, name);
  if (!isObject(v)) fail(`${name} must hold a JSON object, got ${show(v)}`);
  return v as Record<string, unknown>;
}

/**
 * Decodes and checks a checkpoint's files; throws CheckpointError with a message a user can act on.
 * tokenizer.json is optional (token ids work without it); the weights may be F32, F16 or BF16.
 */
export function decodeCheckpoint(files: ReadonlyMap<string, Uint8Array>): Checkpoint {
  const config = validateConfig(parseJsonFile(files, CONFIG_FILE));
  const tokenizer = optionalJsonObject(files, TOKENIZER_FILE);
  const tokenizerConfig = optionalJsonObject(files, TOKENIZER_CONFIG_FILE);
  const { where, tensors } = decodeWeights(files, config);
  const storedDtypes = [...new Set([...tensors.values()].map((t) => t.dtype))].sort();
  return { config, tensors: checkTensors(config, tensors, where), tokenizer, tokenizerConfig, storedDtypes };
}
