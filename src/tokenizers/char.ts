// Character-level tokenizer of the shipped toy models (src/tokenizers/index.ts has the common
// interface; real models' tokenizer.json goes through ./hf.ts).
//
// Ids: the special tokens first (<pad>=0, <bos>=1, <eos>=2), then one id per character. The default
// vocabulary holds digits, lowercase letters, space, newline and the punctuation the task formats
// use: 54 symbols in all (the model's vocab_size), below the 64 the design allows.
//
// Special tokens may be written inside text as their names ("<bos>tbl:a3k7\nask:k"): encode turns each
// name into its id, decode writes it back, so a formatted prompt round-trips through text.
//
// toJSON() is the content of a checkpoint's tokenizer.json:
//   { "type": "char", "version": 1,
//     "specials": { "pad": 0, "bos": 1, "eos": 2 },
//     "vocab": ["<pad>", "<bos>", "<eos>", "0", "1", ..., "|"] }      // vocab[id] = token text
// fromJSON accepts exactly that shape and refuses anything else with a message naming the problem.

import { BOS, EOS, PAD } from './markers';
import type { TextTokenizer } from './types';

export { BOS, EOS, PAD } from './markers';

/** Every character the default vocabulary holds, in id order after the specials. */
export const DEFAULT_CHARS = '0123456789abcdefghijklmnopqrstuvwxyz \n=;:?,.+-*/#_|';

export interface TokenizerJSON {
  type: 'char';
  version: 1;
  specials: { pad: number; bos: number; eos: number };
  vocab: string[];
}

const REQUIRED_SPECIALS = ['pad', 'bos', 'eos'] as const;
const SPECIAL_NAME = /^<[a-z0-9_]+>$/;
const MAX_VOCAB = 256;

function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = cp.toString(16).toUpperCase().padStart(4, '0');
  const shown = ch === '\n' ? '\\n' : ch === '\t' ? '\\t' : cp < 32 ? '' : ch;
  return shown ? `'${shown}' (U+${hex})` : `U+${hex}`;
}

export class CharTokenizer implements TextTokenizer {
  readonly kind = 'char' as const;
  /** vocab[id] is the token's text (a special's name such as "<bos>", or one character). */
  readonly vocab: readonly string[];
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  private readonly charIds = new Map<string, number>();
  private readonly specialIds = new Map<string, number>();

  /**
   * vocab: token text by id; specials: which ids are <pad>, <bos>, <eos>. Every entry of vocab is
   * either a special name ("<name>") or exactly one character; no duplicates.
   */
  constructor(vocab: readonly string[], specials: { pad: number; bos: number; eos: number }) {
    if (!Array.isArray(vocab)) throw new Error('CharTokenizer: vocab must be an array of strings');
    if (vocab.length === 0 || vocab.length > MAX_VOCAB) {
      throw new Error(`CharTokenizer: vocab must hold 1..${MAX_VOCAB} tokens, got ${vocab.length}`);
    }
    vocab.forEach((tok, id) => {
      if (typeof tok !== 'string') throw new Error(`CharTokenizer: vocab[${id}] is not a string`);
      if (SPECIAL_NAME.test(tok)) {
        if (this.specialIds.has(tok)) throw new Error(`CharTokenizer: duplicate special ${tok} at id ${id}`);
        this.specialIds.set(tok, id);
        return;
      }
      if ([...tok].length !== 1) {
        throw new Error(
          `CharTokenizer: vocab[${id}] = ${JSON.stringify(tok)} is neither one character nor a special name like <bos>`,
        );
      }
      if (this.charIds.has(tok)) {
        throw new Error(`CharTokenizer: duplicate character ${describeChar(tok)} at id ${id}`);
      }
      this.charIds.set(tok, id);
    });
    const ids: Record<string, number> = {};
    for (const name of REQUIRED_SPECIALS) {
      const id = (specials as Record<string, unknown> | null)?.[name];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab.length) {
        throw new Error(`CharTokenizer: specials.${name} must be an id in 0..${vocab.length - 1}, got ${String(id)}`);
      }
      if (vocab[id] !== `<${name}>`) {
        throw new Error(`CharTokenizer: specials.${name} = ${id} but vocab[${id}] is ${JSON.stringify(vocab[id])}, expected "<${name}>"`);
      }
      ids[name] = id;
    }
    this.vocab = Object.freeze(vocab.slice());
    this.padId = ids.pad;
    this.bosId = ids.bos;
    this.eosId = ids.eos;
  }

  /** Number of ids (the model's vocab_size). */
  get vocabSize(): number {
    return this.vocab.length;
  }

  /** The id of one token (a character or a special name), or undefined. */
  idOf(token: string): number | undefined {
    return this.specialIds.get(token) ?? this.charIds.get(token);
  }

  /** The text of one id. Throws on an id outside the vocabulary. */
  tokenOf(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.length) {
      throw new Error(`CharTokenizer: id ${id} is outside the vocabulary (0..${this.vocab.length - 1})`);
    }
    return this.vocab[id];
  }

  isSpecial(id: number): boolean {
    return id >= 0 && id < this.vocab.length && this.specialIds.has(this.vocab[id]);
  }

  /** The ids of a continuation written after `context` (characters do not merge: its own encoding). */
  encodeContinuation(_context: string, continuation: string): number[] {
    return this.encode(continuation);
  }

  /**
   * Text to ids. Special names written in the text ("<bos>") become their ids; any other character
   * outside the vocabulary throws, naming the character and its position (a UTF-16 index).
   */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new Error(`CharTokenizer.encode: expected a string, got ${typeof text}`);
    const out: number[] = [];
    let i = 0;
    while (i < text.length) {
      if (text[i] === '<') {
        const close = text.indexOf('>', i + 1);
        if (close > i) {
          const id = this.specialIds.get(text.slice(i, close + 1));
          if (id !== undefined) {
            out.push(id);
            i = close + 1;
            continue;
          }
        }
      }
      const cp = text.codePointAt(i) as number;
      const ch = String.fromCodePoint(cp);
      const id = this.charIds.get(ch);
      if (id === undefined) {
        throw new Error(
          `CharTokenizer.encode: character ${describeChar(ch)} at position ${i} of ${JSON.stringify(
            text.length > 60 ? text.slice(0, 57) + '...' : text,
          )} is not in the vocabulary`,
        );
      }
      out.push(id);
      i += ch.length;
    }
    return out;
  }

  /** Ids to text; specials are written as their names unless skipSpecials. Throws on a bad id. */
  decode(ids: ArrayLike<number>, opts: { skipSpecials?: boolean } = {}): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab.length) {
        throw new Error(`CharTokenizer.decode: id ${id} at position ${i} is outside the vocabulary (0..${this.vocab.length - 1})`);
      }
      if (opts.skipSpecials && this.specialIds.has(this.vocab[id])) continue;
      s += this.vocab[id];
    }
    return s;
  }

  /** The self-describing object stored as tokenizer.json. */
  toJSON(): TokenizerJSON & Record<string, unknown> {
    return {
      type: 'char',
      version: 1,
      specials: { pad: this.padId, bos: this.bosId, eos: this.eosId },
      vocab: this.vocab.slice(),
    };
  }

  /** Rebuilds a tokenizer from toJSON()'s object (or its JSON text); refuses anything else. */
  static fromJSON(obj: unknown): CharTokenizer {
    const where = 'tokenizer.json';
    if (typeof obj === 'string') {
      try {
        obj = JSON.parse(obj);
      } catch (e) {
        throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
      }
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new Error(`${where}: expected an object {type: 'char', version: 1, specials, vocab}`);
    }
    const o = obj as Record<string, unknown>;
    if (o.type !== 'char') {
      throw new Error(`${where}: unsupported tokenizer type ${JSON.stringify(o.type)} (only 'char' is supported)`);
    }
    if (o.version !== 1) {
      throw new Error(`${where}: unsupported version ${JSON.stringify(o.version)} of the char tokenizer (expected 1)`);
    }
    if (!Array.isArray(o.vocab) || !o.vocab.every((t) => typeof t === 'string')) {
      throw new Error(`${where}: 'vocab' must be an array of strings`);
    }
    if (o.specials === null || typeof o.specials !== 'object' || Array.isArray(o.specials)) {
      throw new Error(`${where}: 'specials' must be an object {pad, bos, eos}`);
    }
    const sp = o.specials as Record<string, unknown>;
    for (const name of REQUIRED_SPECIALS) {
      if (!(name in sp)) throw new Error(`${where}: 'specials' lacks '${name}'`);
    }
    try {
      return new CharTokenizer(o.vocab as string[], sp as { pad: number; bos: number; eos: number });
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
  }
}

/** The tokenizer every task, the corpus and the default checkpoints use (54 ids). */
export function defaultTokenizer(): CharTokenizer {
  return new CharTokenizer([PAD, BOS, EOS, ...DEFAULT_CHARS], { pad: 0, bos: 1, eos: 2 });
}
