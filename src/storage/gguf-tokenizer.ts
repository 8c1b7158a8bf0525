// A Hugging Face tokenizer.json and tokenizer_config.json from a GGUF file's tokenizer metadata
// (tokenizer.ggml.*), as transformers' GGUF loader builds them (integrations/gguf/
// gguf_tokenizer_mapping.py) and as the original repos ship them:
// - "gpt2": byte-level BPE, tokens and merges as stored; the pre-tokenizer from tokenizer.ggml.pre
//   (llama.cpp's name for the split the merges were learned with; those with a known Hugging Face
//   equivalent are read, others refused by name);
// - "llama": SentencePiece BPE with byte fallback (Llama 2, TinyLlama), merges recovered from the
//   scores as transformers' generate_merges does; Metaspace with the prefix space as
//   tokenizer.ggml.add_space_prefix says (default true).
// Control tokens (token_type 3) become special added tokens, user-defined ones (4) plain added
// tokens. Pure TypeScript.
import { GgufError, GgufMeta } from './gguf';
import { printableName } from './text';

/** llama.cpp's token types (llama-vocab.h). */
const CONTROL = 3;
const USER_DEFINED = 4;

const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const split = (pattern: string) => ({
  type: 'Sequence',
  pretokenizers: [{ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false }, byteLevel(false)],
});

/**
 * The pre-tokenizers of llama.cpp's tokenizer.ggml.pre values that have a Hugging Face equivalent, with
 * whether the BPE takes a whole word found in the vocabulary without merging (Llama 3's ignore_merges).
 */
const PRE_TOKENIZERS: Record<string, { pre: Record<string, unknown>; ignoreMerges: boolean }> = {
  // GPT-2's own split (ByteLevel's built-in regex)
  'gpt-2': { pre: byteLevel(true), ignoreMerges: false },
  default: { pre: byteLevel(true), ignoreMerges: false },
  // SmolLM / SmolLM2: every digit alone, then GPT-2's split (their tokenizer.json's Digits + ByteLevel)
  smollm: { pre: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] }, ignoreMerges: false },
  'llama-bpe': { pre: split(LLAMA3_SPLIT), ignoreMerges: true },
  llama3: { pre: split(LLAMA3_SPLIT), ignoreMerges: true },
  'llama-v3': { pre: split(LLAMA3_SPLIT), ignoreMerges: true },
  qwen2: { pre: split(QWEN2_SPLIT), ignoreMerges: false },
  'deepseek-r1-qwen': { pre: split(QWEN2_SPLIT), ignoreMerges: false },
};

export interface GgufTokenizerFiles {
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** The special ids the metadata names (null: none). */
  bos: number | null;
  eos: number | null;
  pad: number | null;
  vocabSize: number;
}

const fail = (msg: string): never => {
  throw new GgufError(msg);
};

/** The tokenizer the metadata describes; throws GgufError naming what cannot be built. */
export function ggufTokenizer(meta: GgufMeta): GgufTokenizerFiles {
  const model = meta.str('tokenizer.ggml.model', false);
  if (model === undefined) fail('the file has no tokenizer (no tokenizer.ggml.model metadata); a model without one cannot run the tasks');
  const tokens = meta.array<string>('tokenizer.ggml.tokens', ['string'])!;
  if (!tokens.length) fail('tokenizer.ggml.tokens is empty');
  const types = meta.array<number>('tokenizer.ggml.token_type', ['i32', 'u32', 'i8', 'u8', 'i16', 'u16'], false);
  if (types && types.length !== tokens.length) fail(`tokenizer.ggml.token_type has ${types.length} entries but tokenizer.ggml.tokens has ${tokens.length}`);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => {
    if (Object.hasOwn(vocab, t)) fail(`tokenizer.ggml.tokens holds ${printableName(t)} twice (ids ${vocab[t]} and ${id}); a token must have one id`);
    vocab[t] = id;
  });
  const id = (key: string): number | null => {
    const v = meta.int(`tokenizer.ggml.${key}`, false, 0, tokens.length - 1);
    return v === undefined ? null : v;
  };
  const bos = id('bos_token_id');
  const eos = id('eos_token_id');
  const pad = id('padding_token_id');
  const unk = id('unknown_token_id');
  const addBos = meta.bool('tokenizer.ggml.add_bos_token') ?? (model === 'llama');
  const addEos = meta.bool('tokenizer.ggml.add_eos_token') ?? false;
  const added = tokens.flatMap((content, i) => {
    const ty = types?.[i];
    if (ty !== CONTROL && ty !== USER_DEFINED) return [];
    return [{ id: i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: ty === CONTROL }];
  });
  // the ids the engine treats as special must be among them even if the file typed them "normal"
  for (const s of [bos, eos, pad, unk]) {
    if (s !== null && !added.some((a) => a.id === s)) added.push({ id: s, content: tokens[s], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  added.sort((a, b) => a.id - b.id);
  let body: Record<string, unknown>;
  if (model === 'gpt2') {
    const pre = meta.str('tokenizer.ggml.pre', false) ?? 'default';
    const known = PRE_TOKENIZERS[pre];
    if (!known) {
      fail(`the tokenizer's pre-tokenizer is ${JSON.stringify(pre)} (tokenizer.ggml.pre), which this importer cannot reproduce; it reads ${Object.keys(PRE_TOKENIZERS).join(', ')}`);
    }
    const mergeList = meta.array<string>('tokenizer.ggml.merges', ['string'], false);
    if (!mergeList) fail('the byte-level BPE tokenizer has no tokenizer.ggml.merges');
    const merges = splitMerges(mergeList!);
    body = {
      normalizer: null,
      pre_tokenizer: known.pre,
      post_processor: postProcessor(tokens, addBos ? bos : null, addEos ? eos : null, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }),
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: known.ignoreMerges, vocab, merges,
      },
    };
  } else if (model === 'llama') {
    const scores = meta.array<number>('tokenizer.ggml.scores', ['f32'])!;
    if (scores.length !== tokens.length) fail(`tokenizer.ggml.scores has ${scores.length} entries but tokenizer.ggml.tokens has ${tokens.length}`);
    const prefix = meta.bool('tokenizer.ggml.add_space_prefix') ?? true;
    const stored = meta.array<string>('tokenizer.ggml.merges', ['string'], false);
    const merges = stored ? splitMerges(stored) : sentencePieceMerges(tokens, scores, vocab);
    const decoders: Record<string, unknown>[] = [
      { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
    ];
    if (prefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
    body = {
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: prefix ? 'first' : 'never', split: false },
      post_processor: postProcessor(tokens, addBos ? bos : null, addEos ? eos : null, null),
      decoder: { type: 'Sequence', decoders },
      model: {
        type: 'BPE', dropout: null, unk_token: unk === null ? null : tokens[unk], continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges,
      },
    };
  } else {
    body = fail(`the tokenizer is ${JSON.stringify(model)} (tokenizer.ggml.model); this importer builds "gpt2" (byte-level BPE) and "llama" (SentencePiece BPE) tokenizers`);
  }
  const tokenizer = { version: '1.0', truncation: null, padding: null, added_tokens: added, ...body };
  const name = (i: number | null) => (i === null ? null : tokens[i]);
  const tokenizerConfig: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: name(bos), eos_token: name(eos), unk_token: name(unk), pad_token: name(pad),
    add_bos_token: addBos, add_eos_token: addEos, clean_up_tokenization_spaces: false,
  };
  const template = meta.str('tokenizer.chat_template', false);
  if (template !== undefined) tokenizerConfig.chat_template = template;
  const ctx = meta.metadata.get(`${meta.str('general.architecture', false) ?? ''}.context_length`);
  if (ctx && typeof ctx.value === 'number') tokenizerConfig.model_max_length = ctx.value;
  return { tokenizer, tokenizerConfig, bos, eos, pad, vocabSize: tokens.length };
}

/** tokenizer.ggml.merges ("a b" strings) as pairs; anything else is refused naming the entry. */
function splitMerges(list: string[]): string[][] {
  return list.map((m, k) => {
    const parts = m.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) fail(`tokenizer.ggml.merges[${k}] is ${printableName(m)}, not two tokens separated by one space`);
    return parts;
  });
}

/** TemplateProcessing adding bos / eos as the file's add_bos_token / add_eos_token say, after `base` (or alone). */
function postProcessor(tokens: string[], bos: number | null, eos: number | null, base: Record<string, unknown> | null): Record<string, unknown> | null {
  if (bos === null && eos === null) return base;
  const spec = (id: number) => ({ SpecialToken: { id: tokens[id], type_id: 0 } });
  const seq = (s: string) => ({ Sequence: { id: s, type_id: 0 } });
  const wrap = (s: string) => [...(bos !== null ? [spec(bos)] : []), seq(s), ...(eos !== null ? [spec(eos)] : [])];
  const special: Record<string, unknown> = {};
  for (const i of [bos, eos]) if (i !== null) special[tokens[i]] = { id: tokens[i], ids: [i], tokens: [tokens[i]] };
  const template = { type: 'TemplateProcessing', single: wrap('A'), pair: [...wrap('A'), ...wrap('B')], special_tokens: special };
  return base ? { type: 'Sequence', processors: [base, template] } : template;
}

/**
 * SentencePiece's merges recovered from the vocabulary (transformers' generate_merges with scores):
 * every split of every token into two tokens of the vocabulary, those of one token ordered by the ids
 * of their halves, then all by the merged token's score, best first (then longer left, longer right;
 * ties kept in vocabulary order, as Python's stable sort with reverse=True keeps them).
 */
function sentencePieceMerges(tokens: string[], scores: number[], vocab: Record<string, number>): string[][] {
  const all: { l: string; r: string; score: number; ll: number; lr: number }[] = [];
  for (let t = 0; t < tokens.length; t++) {
    const cps = Array.from(tokens[t]);
    const local: { l: string; r: string; score: number; ll: number; lr: number }[] = [];
    for (let i = 1; i < cps.length; i++) {
      const l = cps.slice(0, i).join('');
      const r = cps.slice(i).join('');
      if (Object.hasOwn(vocab, l) && Object.hasOwn(vocab, r)) local.push({ l, r, score: scores[t], ll: i, lr: cps.length - i });
    }
    local.sort((a, b) => vocab[a.l] - vocab[b.l] || vocab[a.r] - vocab[b.r]);
    all.push(...local);
  }
  all.sort((a, b) => b.score - a.score || b.ll - a.ll || b.lr - a.lr);
  return all.map((m) => [m.l, m.r]);
}
