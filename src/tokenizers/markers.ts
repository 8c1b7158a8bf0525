// The special-token markers the task layer writes inside its text (src/tasks): "<bos>" opens every
// sequence, "<eos>" ends an answer, "<pad>" fills. Each tokenizer maps them to its own ids (the char
// tokenizer has tokens of these names; a tokenizer.json maps them to the model's bos/eos/pad tokens,
// and drops <bos> where the model has none, as Qwen). Text is otherwise plain: nothing else in it is special.
export const PAD = '<pad>';
export const BOS = '<bos>';
export const EOS = '<eos>';
export const MARKERS = [PAD, BOS, EOS] as const;
export type Marker = (typeof MARKERS)[number];
