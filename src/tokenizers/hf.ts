// A Hugging Face tokenizer.json (byte-level BPE as SmolLM2, Qwen2/3 and Llama 3 use; the
// sentencepiece-style BPE with byte fallback of Llama 2 and the llama2.c tinyllamas; any other model the
// library reads) through @huggingface/tokenizers, the official pure JS/TS implementation: the same code
// runs in Node, the page and the worker. This module only adds what the engine needs around it: the
// markers of the task text (./markers.ts) mapped to the model's own special tokens, encoding without
// the post-processor's automatic specials (the task text says where <bos> goes), and the ids of a
// continuation as the whole text would tokenize them.
import { Tokenizer } from '@huggingface/tokenizers';
import { BOS, EOS, PAD } from './markers';
import { checkPatterns } from './regex-check';
import type { TextTokenizer } from './types';

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

const MARKER_RE = /<bos>|<eos>|<pad>/g;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The content of a special-token setting of tokenizer_config.json ("<s>" or {content: "<s>", ...}). */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

const quote = (t: string): string => {
  const s = JSON.stringify(t);
  return s.length > 60 ? `${s.slice(0, 57)}..."` : s;
};

/**
 * What @huggingface/tokenizers lets through although the tokenizer it describes is broken (Hugging
 * Face's Rust tokenizers refuses the merges; two tokens on one id decode wrongly there too): an id given
 * to two tokens (the vocabulary's, or an added token's against the vocabulary's), an id that is not an
 * integer >= 0, and a BPE merge naming a token, or making one, that the vocabulary does not hold.
 */
function checkVocabulary(json: Record<string, unknown>): void {
  const model = json.model as Record<string, unknown>;
  const fail = (m: string): never => {
    throw new TokenizerError(`tokenizer.json: ${m}`);
  };
  const byId = new Map<number, string>();
  const vocab = isObject(model.vocab) ? model.vocab : null;
  const checkId = (id: unknown, token: string, what: string) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) fail(`${what} ${quote(token)} has id ${JSON.stringify(id)}; a token id is an integer >= 0`);
  };
  if (vocab) {
    for (const [token, id] of Object.entries(vocab)) {
      checkId(id, token, 'the vocabulary\'s token');
      const other = byId.get(id as number);
      if (other !== undefined) {
        fail(`the vocabulary gives id ${id} to both ${quote(other)} and ${quote(token)}; an id names one token (decoding ${id} would give ${quote(other)} for either)`);
      }
      byId.set(id as number, token);
    }
  }
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens) {
      if (!isObject(t) || typeof t.content !== 'string') continue; // the library reports malformed entries itself
      checkId(t.id, t.content, 'added token');
      const other = byId.get(t.id as number);
      if (other !== undefined && other !== t.content) {
        fail(`added token ${quote(t.content)} has id ${t.id}, which ${vocab && vocab[other] === t.id ? 'the vocabulary' : 'another added token'} gives to ${quote(other)}; an id names one token`);
      }
      byId.set(t.id as number, t.content);
    }
  }
  if (model.type === 'BPE' && vocab && Array.isArray(model.merges)) {
    const prefix = typeof model.continuing_subword_prefix === 'string' ? model.continuing_subword_prefix : '';
    model.merges.forEach((m, k) => {
      const pair = typeof m === 'string' ? m.split(' ') : m;
      const shown = typeof m === 'string' ? quote(m) : JSON.stringify(m);
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((x) => typeof x === 'string')) {
        fail(`merge ${k + 1} (${shown}) is not two tokens ("a b" or ["a", "b"])`);
      }
      const [a, b] = pair as string[];
      for (const t of [a, b]) if (!Object.hasOwn(vocab, t)) fail(`merge ${k + 1} (${shown}) names ${quote(t)}, which is not in the vocabulary`);
      const made = a + (prefix && b.startsWith(prefix) ? b.slice(prefix.length) : b);
      if (!Object.hasOwn(vocab, made)) fail(`merge ${k + 1} (${shown}) makes ${quote(made)}, which is not in the vocabulary`);
    });
  }
}

export interface HfSpecialIds {
  /** config.json's bos_token_id (null: none; undefined: take tokenizer_config.json's bos_token). */
  bos?: number | null;
  eos?: number | null;
  pad?: number | null;
}

export class HfTokenizer implements TextTokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly padId: number;
  readonly bosId: number | null;
  readonly eosId: number;
  private readonly tk: Tokenizer;
  private readonly specials = new Set<number>();
  private readonly labels = new Map<number, string>();

  constructor(
    readonly json: Record<string, unknown>,
    readonly config: Record<string, unknown> = {},
    ids: HfSpecialIds = {},
  ) {
    if (!isObject(json) || !isObject(json.model)) throw new TokenizerError('tokenizer.json: no "model" object (is this a Hugging Face tokenizer.json?)');
    checkVocabulary(json);
    checkPatterns(json, (m) => {
      throw new TokenizerError(m);
    });
    try {
      // the library reads added_tokens unconditionally
      this.tk = new Tokenizer({ added_tokens: [], ...json }, config);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json cannot be read by @huggingface/tokenizers: ${(e as Error).message}`);
    }
    const vocab = this.tk.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    if (max < 0) throw new TokenizerError('tokenizer.json: the vocabulary is empty');
    this.vocabSize = max + 1;
    for (const [id, t] of this.tk.get_added_tokens_decoder()) if (t.special) this.specials.add(id);
    const fromConfig = (field: string): number | null => {
      const c = tokenContent(config[field]);
      return c === null ? null : (this.tk.token_to_id(c) ?? null);
    };
    const pick = (given: number | null | undefined, field: string): number | null => (given === undefined ? fromConfig(field) : given);
    this.bosId = pick(ids.bos, 'bos_token');
    const eos = pick(ids.eos, 'eos_token');
    if (eos === null) throw new TokenizerError('the model names no end-of-sequence token (eos_token_id in config.json, eos_token in tokenizer_config.json): answers could not end');
    this.eosId = eos;
    this.padId = pick(ids.pad, 'pad_token') ?? eos;
    for (const [what, id] of [['bos', this.bosId], ['eos', this.eosId], ['pad', this.padId]] as const) {
      if (id !== null && (id < 0 || id >= this.vocabSize)) throw new TokenizerError(`the ${what} token id ${id} is outside the tokenizer's vocabulary 0..${this.vocabSize - 1}`);
      if (id !== null) this.specials.add(id);
    }
  }

  /** The tokens whose id is `n` or more, by id (what an embedding of n rows cannot hold). */
  tokensFrom(n: number): { id: number; token: string }[] {
    const out: { id: number; token: string }[] = [];
    // (the library's vocabulary is an array by id: ids no token has are holes, listed as undefined)
    for (const [token, id] of this.tk.get_vocab(true)) if (id >= n && typeof token === 'string') out.push({ id, token });
    return out.sort((a, b) => a.id - b.id);
  }

  private encodePlain(text: string): number[] {
    if (!text) return [];
    return this.tk.encode(text, { add_special_tokens: false }).ids;
  }

  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TokenizerError(`encode: expected a string, got ${typeof text}`);
    const out: number[] = [];
    let at = 0;
    for (const m of text.matchAll(MARKER_RE)) {
      out.push(...this.encodePlain(text.slice(at, m.index)));
      if (m[0] === BOS) {
        if (this.bosId !== null) out.push(this.bosId);
      } else out.push(m[0] === EOS ? this.eosId : m[0] === PAD ? this.padId : -1);
      at = m.index + m[0].length;
    }
    out.push(...this.encodePlain(text.slice(at)));
    return out;
  }

  encodeContinuation(context: string, continuation: string): number[] {
    // the whole text's ids minus the context's, when the context's are a prefix of them (the usual
    // case: the boundary sits before a space or after punctuation); else the continuation alone
    const ctx = this.encode(context);
    const all = this.encode(context + continuation);
    if (all.length >= ctx.length && ctx.every((id, i) => all[i] === id)) return all.slice(ctx.length);
    return this.encode(continuation);
  }

  /**
   * Ids to text. An id past the tokenizer's vocabulary but inside the model's (Qwen pads its embedding
   * beyond the tokens it has) has no text: it decodes to nothing, and counts as special (a decoding
   * that reaches one stops there).
   */
  decode(ids: ArrayLike<number>, opts: { skipSpecials?: boolean } = {}): string {
    const list: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0) throw new TokenizerError(`decode: id ${id} at position ${i} is not a token id`);
      if (id < this.vocabSize) list.push(id);
    }
    if (!list.length) return ''; // the library refuses an empty list
    return this.tk.decode(list, { skip_special_tokens: opts.skipSpecials ?? false, clean_up_tokenization_spaces: false });
  }

  tokenOf(id: number): string {
    if (id >= this.vocabSize) return `#${id}`;
    let s = this.labels.get(id);
    if (s === undefined) {
      s = this.decode([id]);
      // a piece of a multi-byte character decodes to nothing readable: show the vocabulary entry
      if (!s || s.includes('\uFFFD')) s = this.tk.id_to_token(id) ?? `#${id}`;
      this.labels.set(id, s);
    }
    return s;
  }

  isSpecial(id: number): boolean {
    return this.specials.has(id) || id >= this.vocabSize;
  }

  toJSON(): Record<string, unknown> {
    return this.json;
  }
}
