// The tokenizers: the character tokenizer of the shipped toys (./char.ts) and any Hugging Face
// tokenizer.json (./hf.ts), behind one interface (./types.ts). A checkpoint's tokenizer.json says which:
// {"type": "char", ...} is ours, anything with a "model" is Hugging Face's.
import type { LlamaConfig } from '../model/config';
import { CharTokenizer } from './char';
import { HfTokenizer, TokenizerError } from './hf';
import type { TextTokenizer } from './types';

export type { TextTokenizer } from './types';
export { CharTokenizer, DEFAULT_CHARS, defaultTokenizer } from './char';
export { HfTokenizer, TokenizerError } from './hf';
export { BOS, EOS, PAD, MARKERS } from './markers';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const firstId = (v: number | number[] | null): number | null => (Array.isArray(v) ? v[0] : v);

/**
 * The tokenizer of a checkpoint (null when it has no tokenizer.json), checked against its config: every
 * id it produces must be below vocab_size (the char tokenizer's count must equal it exactly).
 */
export function loadTokenizer(ck: {
  config: Pick<LlamaConfig, 'vocab_size' | 'bos_token_id' | 'eos_token_id' | 'pad_token_id'>;
  tokenizer: Record<string, unknown> | null;
  tokenizerConfig?: Record<string, unknown> | null;
}): TextTokenizer | null {
  const json = ck.tokenizer;
  if (json === null) return null;
  const V = ck.config.vocab_size;
  if (isObject(json) && json.type === 'char') {
    let tk: CharTokenizer;
    try {
      tk = CharTokenizer.fromJSON(json);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json: ${(e as Error).message}`);
    }
    if (tk.vocabSize !== V) throw new TokenizerError(`tokenizer.json has ${tk.vocabSize} symbols but config.json says vocab_size ${V}`);
    return tk;
  }
  const tk = new HfTokenizer(json, ck.tokenizerConfig ?? {}, {
    bos: 'bos_token_id' in ck.config ? ck.config.bos_token_id : undefined,
    eos: firstId(ck.config.eos_token_id) ?? undefined,
    pad: ck.config.pad_token_id ?? undefined,
  });
  if (tk.vocabSize > V) {
    // name the tokens past the embedding, not only the largest id
    const over = tk.tokensFrom(V);
    const shown = over.slice(0, 5).map(({ id, token }) => `${JSON.stringify(token).slice(0, 40)} (id ${id})`).join(', ');
    throw new TokenizerError(
      `tokenizer.json has ${over.length} token(s) with an id at or above config.json's vocab_size ${V}, which the embedding has no row for: ` +
        `${shown}${over.length > 5 ? ` and ${over.length - 5} more` : ''}`,
    );
  }
  return tk;
}

/** Whether decoding should stop at this id: a special token, or one whose text holds a line end. */
export function stopsText(tk: TextTokenizer, id: number): boolean {
  return tk.isSpecial(id) || tk.tokenOf(id).includes('\n');
}
