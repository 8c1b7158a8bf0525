// Tiny random Hugging Face checkpoints, written by the tests themselves in the layout transformers'
// save_pretrained produces (config.json with its extra fields, safetensors in F32/F16/BF16, single or
// sharded with model.safetensors.index.json, tied or untied), for Llama, Qwen2 and Qwen3, with a BPE
// tokenizer.json trained here on the tasks' word rendering: byte-level (GPT-2 / SmolLM2 / Qwen style) or
// sentencepiece-style with byte fallback (Llama 2 / llama2.c tinyllamas style). No network, no Python.
import { paramShapes, type ModelConfig, type ModelType } from '../src/model/config';
import { encodeSafetensors } from '../src/storage/safetensors';
import { makeTask, sampleEpisodes, PRETRAINED_TASK_NAMES } from '../src/tasks/tasks';
import { WORD_RENDERING } from '../src/tasks/render';
import { Rng } from '../src/tasks/rng';

/** Seeded normal draws (the e2e specs import this file too, so it does not use ./helpers, which loads Dawn). */
function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(Math.max(r.next(), 1e-12))) * Math.cos(2 * Math.PI * r.next());
  return out;
}

// ------------------------------------------------------------------------------------ tokenizers

/** GPT-2's bytes_to_unicode: every byte as a printable character (what byte-level BPE vocabularies hold). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/** Learns `n` BPE merges over words given as symbol lists (most frequent pair first, ties by text). */
function learnMerges(words: Map<string, { syms: string[]; count: number }>, n: number): [string, string][] {
  const merges: [string, string][] = [];
  for (let m = 0; m < n; m++) {
    const pairs = new Map<string, number>();
    for (const { syms, count } of words.values()) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]}\u0000${syms[i + 1]}`;
        pairs.set(k, (pairs.get(k) ?? 0) + count);
      }
    }
    let best: string | null = null;
    let bestN = 1;
    for (const [k, c] of pairs) if (c > bestN || (c === bestN && best !== null && k < best)) [best, bestN] = [k, c];
    if (!best) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    for (const w of words.values()) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.syms[i]);
      }
      w.syms = out;
    }
  }
  return merges;
}

/** Text the tokenizers are trained on: word-rendered prompts and targets of every task. */
export function trainingText(n = 40): string[] {
  const out: string[] = [];
  // the tasks the fixtures' tokenizers were first trained on: a task added later must not change them
  for (const name of PRETRAINED_TASK_NAMES) {
    for (const ep of sampleEpisodes(makeTask(name, 2), 'train', n, 5)) {
      out.push(WORD_RENDERING.skyline(ep).replace('<bos>', '') + WORD_RENDERING.target(ep).replace('<eos>', ''));
      out.push(WORD_RENDERING.prompt(ep, 0, { send: true }).replace('<bos>', ''));
    }
  }
  return out;
}

export interface MadeTokenizer {
  json: Record<string, unknown>;
  config: Record<string, unknown>;
  vocabSize: number;
  bos: number | null;
  eos: number;
  pad: number | null;
}

/** A byte-level BPE tokenizer.json (as SmolLM2 and Qwen use), Qwen-style: no bos, <|endoftext|> ends. */
export function byteLevelBpe(merges = 120, text = trainingText()): MadeTokenizer {
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  const words = new Map<string, { syms: string[]; count: number }>();
  // GPT-2's split, approximately: a word with its leading space, digits, punctuation, line ends
  for (const t of text) {
    for (const w of t.match(/ ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+/g) ?? []) {
      const syms = [...enc.encode(w)].map((b) => b2u[b]);
      const key = syms.join('');
      const e = words.get(key);
      if (e) e.count++;
      else words.set(key, { syms, count: 1 });
    }
  }
  const learned = learnMerges(words, merges);
  const vocab: Record<string, number> = {};
  b2u.forEach((c, i) => (vocab[c] = i));
  let id = 256;
  for (const [a, b] of learned) if (!(a + b in vocab)) vocab[a + b] = id++;
  const eos = id++;
  const imStart = id++;
  return {
    json: {
      version: '1.0', truncation: null, padding: null,
      added_tokens: [
        { id: eos, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
        { id: imStart, content: '<|im_start|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      ],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: learned.map(([a, b]) => `${a} ${b}`),
      },
    },
    config: { eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', bos_token: null, clean_up_tokenization_spaces: false, model_max_length: 2048 },
    vocabSize: id, bos: null, eos, pad: eos,
  };
}

/** A sentencepiece-style BPE tokenizer.json (Llama 2, llama2.c tinyllamas): "▁" for spaces, byte fallback, <s> opens. */
export function sentencepieceBpe(merges = 120, text = trainingText()): MadeTokenizer {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  let id = 3;
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = id++;
  const norm = (t: string) => '▁' + t.replace(/ /g, '▁');
  const words = new Map<string, { syms: string[]; count: number }>();
  for (const t of text) {
    // sentencepiece treats the text as one sequence; split before each "▁" so merges stay inside words
    for (const w of norm(t).match(/▁?[^▁]+|▁/g) ?? []) {
      const syms = [...w];
      const e = words.get(w);
      if (e) e.count++;
      else words.set(w, { syms, count: 1 });
    }
  }
  const chars = new Set<string>();
  for (const { syms } of words.values()) for (const s of syms) chars.add(s);
  chars.delete('\n'); // a line end goes through byte fallback (<0x0A>), as in Llama 2's vocabulary
  for (const c of [...chars].sort()) vocab[c] = id++;
  for (const w of words.values()) w.syms = w.syms.filter((s) => s !== '\n');
  const learned = learnMerges(words, merges);
  for (const [a, b] of learned) if (!(a + b in vocab)) vocab[a + b] = id++;
  return {
    json: {
      version: '1.0', truncation: null, padding: null,
      added_tokens: [
        { id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
        { id: 1, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
        { id: 2, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      ],
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      pre_tokenizer: null,
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
      },
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      },
      model: {
        type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: learned.map(([a, b]) => `${a} ${b}`),
      },
    },
    config: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null, add_bos_token: true, legacy: false, clean_up_tokenization_spaces: false },
    vocabSize: id, bos: 1, eos: 2, pad: null,
  };
}

// ------------------------------------------------------------------------------------ checkpoints

export type Dtype = 'F32' | 'F16' | 'BF16';

/** IEEE half from a float (round to nearest even; tiny test weights never overflow). */
function toF16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  if (exp >= 31) return sign | 0x7c00;
  let h = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

function fromF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16: the top 16 bits, rounded to nearest even. */
function toBf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

function fromBf16(h: number): number {
  return new Float32Array(new Uint32Array([h << 16]).buffer)[0];
}

/** The value a weight has after a round trip through the dtype (what the loader must give back). */
export function roundTo(dtype: Dtype, a: Float32Array): Float32Array {
  if (dtype === 'F32') return a.slice();
  return a.map((x) => (dtype === 'F16' ? fromF16(toF16(x)) : fromBf16(toBf16(x))));
}

/** A safetensors file in a dtype (the project's encoder writes F32 only, as the engine does). */
export function safetensorsIn(dtype: Dtype, tensors: Map<string, { shape: number[]; data: Float32Array }>): Uint8Array {
  if (dtype === 'F32') return encodeSafetensors(new Map([...tensors].map(([k, t]) => [k, t])), { format: 'pt' });
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = new Uint8Array(t.data.length * 2);
    const dv = new DataView(bytes.buffer);
    t.data.forEach((x, i) => dv.setUint16(i * 2, dtype === 'F16' ? toF16(x) : toBf16(x), true));
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export interface FixtureOptions {
  type: ModelType;
  dtype?: Dtype;
  /** Number of safetensors shards (1: a single model.safetensors). */
  shards?: number;
  tied?: boolean;
  tokenizer?: MadeTokenizer | null;
  /** Extra config fields (head_dim, attention_bias, sizes). */
  config?: Partial<ModelConfig> & Record<string, unknown>;
  seed?: number;
  /** config.json as transformers 5 writes it: RoPE only inside rope_parameters, no top-level rope_theta. */
  transformers5?: boolean;
}

export interface Fixture {
  files: Map<string, Uint8Array>;
  /** The engine's config (as the loader should read it). */
  config: ModelConfig;
  /** The weights as stored (after the dtype's rounding), by HF name. */
  weights: Map<string, Float32Array>;
}

const ARCH: Record<ModelType, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' };

/** A tiny random checkpoint as transformers would save it (random biases and norms too, so every path carries a value). */
export function hfCheckpoint(o: FixtureOptions): Fixture {
  const dtype = o.dtype ?? 'F32';
  const tk = o.tokenizer === undefined ? null : o.tokenizer;
  const V = Math.max(tk?.vocabSize ?? 0, 37) + 3; // padded beyond the tokenizer, as Qwen's embeddings are
  const config: ModelConfig = {
    model_type: o.type, hidden_size: 24, intermediate_size: 37, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    vocab_size: V, rope_theta: 10000, rms_norm_eps: 1e-6, tie_word_embeddings: o.tied ?? false, max_position_embeddings: 512,
    ...(o.type === 'qwen3' ? { head_dim: 8 } : {}),
    ...(o.config ?? {}),
  } as ModelConfig;
  let seed = o.seed ?? 1;
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of paramShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let a = name.endsWith('norm.weight') ? randn(n, seed++, 0.2).map((x) => 1 + x) : randn(n, seed++, name.endsWith('.bias') ? 0.2 : 0.15);
    a = roundTo(dtype, a);
    weights.set(name, a);
  }
  const json: Record<string, unknown> = {
    architectures: [ARCH[o.type]], model_type: o.type, attention_dropout: 0, hidden_act: 'silu', initializer_range: 0.02,
    ...config, torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16',
    bos_token_id: tk ? tk.bos : 1, eos_token_id: tk ? tk.eos : 2, ...(tk && tk.pad !== null ? { pad_token_id: tk.pad } : {}),
    transformers_version: '4.51.0', use_cache: true, rope_scaling: null,
    ...(o.type !== 'llama' ? { use_sliding_window: false, sliding_window: null, max_window_layers: 2 } : { pretraining_tp: 1 }),
  };
  if (o.transformers5) {
    json.rope_parameters ??= { rope_type: 'default', rope_theta: config.rope_theta };
    delete json.rope_theta;
    delete json.rope_scaling;
    json.transformers_version = '5.23.0';
  }
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>([['config.json', enc.encode(JSON.stringify(json, null, 2))]]);
  const tensors = [...weights].map(([k, v]) => [k, { shape: paramShapes(config).get(k)!, data: v }] as const);
  const shards = o.shards ?? 1;
  if (shards === 1) files.set('model.safetensors', safetensorsIn(dtype, new Map(tensors)));
  else {
    const per = Math.ceil(tensors.length / shards);
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = tensors.slice(s * per, (s + 1) * per);
      for (const [k] of part) weightMap[k] = name;
      files.set(name, safetensorsIn(dtype, new Map(part)));
    }
    files.set('model.safetensors.index.json', enc.encode(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap })));
  }
  if (tk) {
    files.set('tokenizer.json', enc.encode(JSON.stringify(tk.json)));
    files.set('tokenizer_config.json', enc.encode(JSON.stringify(tk.config)));
  }
  files.set('generation_config.json', enc.encode(JSON.stringify({ bos_token_id: json.bos_token_id, eos_token_id: json.eos_token_id })));
  return { files, config, weights };
}
