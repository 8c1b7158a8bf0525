// What the engine needs of a tokenizer: text (with the markers of ./markers.ts) to ids and back, the
// ids of its special tokens, and a label per id for displays. Implemented by the character tokenizer
// of the toys (./char.ts) and by tokenizer.json through @huggingface/tokenizers (./hf.ts).
export interface TextTokenizer {
  readonly kind: 'char' | 'hf';
  /** Ids it can produce are 0..vocabSize-1 (a model's vocab_size may be larger: padded embeddings). */
  readonly vocabSize: number;
  readonly padId: number;
  /** The id "<bos>" becomes, or null when the model has no beginning-of-sequence token (Qwen). */
  readonly bosId: number | null;
  readonly eosId: number;
  /** Text to ids; the markers <bos>, <eos>, <pad> become their ids. Throws on what it cannot encode. */
  encode(text: string): number[];
  /**
   * The ids of `continuation` as they come after `context` in one text (a BPE merges across the
   * boundary differently from encoding each alone): what a model that read `context` must produce.
   */
  encodeContinuation(context: string, continuation: string): number[];
  /** Ids to text; special tokens as their text unless skipSpecials. */
  decode(ids: ArrayLike<number>, opts?: { skipSpecials?: boolean }): string;
  /** A display label of one id (its text; a special's name). */
  tokenOf(id: number): string;
  isSpecial(id: number): boolean;
  /** The object stored as tokenizer.json. */
  toJSON(): Record<string, unknown>;
}
