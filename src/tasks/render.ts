// How an episode becomes text. The task layer writes text; the model's tokenizer encodes it
// (src/tokenizers). Two renderings of the same episodes (same keys, splits and answers):
//
// char: the compact format of tasks.ts, for the shipped character-level toys (byte-identical to
//       formatPrompt / formatTarget / formatSkyline / textMessageFormat, which it calls).
//         final prompt  <bos>tbl:a3k7\nask:k                target  7<eos>
//
// word: plain words for real models with a BPE vocabulary, each answer a short span after "Answer:".
//         lookup  part 0  "Table: apple=3, key=7."    part 1  "Question: key?"            answer " 7"
//         relay   part 0  "Secret: q b x z."          part 1  "Relay: m p o a."
//                 part 2  "Question: letter 3 of the secret?"                            answer " x"
//         arith   part 0  "a = 37."   part 1  "b = 5."   part 2  "Question: a + b?"      answer " 42"
//         index   part 0  "Digits: 3 0 5 7."   part 1  "Question: digit 3?"                answer " 5"
//       agent prompt    <bos>{Message:<content>\n}*{part}\n             (+ "Message:" when it sends text)
//       final prompt    <bos>{Message:<content>\n}*{part}\nAnswer:      target " <answer><eos>"
//       skyline prompt  <bos>{part 0}\n{part 1}\n...{final part}\nAnswer:
//       A sender decodes after "Message:" until a line end; the receiver reads "Message:" + what it
//       wrote + "\n". The answer is scored on the decoded text: up to the first line end or special
//       token, trimmed, a final "." dropped.
//
// chat: the word text through the model's chat template (./chat-render.ts, its own extraction rule).
//
// Pure TypeScript: no DOM, no Node API.
import {
  extractAnswer, formatPrompt, formatSkyline, formatTarget, textMessageFormat, type Episode, type PromptOptions, type Task,
  type TaskName,
} from './tasks';
import { BOS, EOS } from '../tokenizers/markers';
import type { TextTokenizer } from '../tokenizers/types';
import { chatRendering } from './chat-render';

export const RENDERINGS = ['char', 'word', 'chat'] as const;
export type RenderingName = (typeof RENDERINGS)[number];

export interface MessageFormat {
  /** what a sender's prompt ends with before it decodes its message */
  open: string;
  close: string;
  /** the line a receiver sees for one message; content must not contain a newline */
  wrap(content: string): string;
  /** what a sender decoded after `open`, cut at the first newline or special token */
  cut(decoded: string): string;
}

export interface TaskRendering {
  /** chat: ./chat-render.ts, made from a model's chat template */
  readonly name: RenderingName | 'chat';
  /** The text of part i of the episode (what the agent holding role i knows). */
  part(ep: Episode, i: number): string;
  /** An agent's prompt (starts with <bos>); part: the episode part it holds, or 'none'. */
  prompt(ep: Episode, part: number | 'none', opts?: PromptOptions): string;
  /** The final agent's target: what follows its prompt, answer then <eos>. */
  target(ep: Episode): string;
  /** Every part in one context, the final part last; the answer follows. */
  skyline(ep: Episode): string;
  readonly message: MessageFormat;
  /** The answer inside a decoded continuation of the final prompt. */
  extractAnswer(decoded: string): string;
  isCorrect(ep: Episode, decoded: string): boolean;
  /** Longest target of the task in characters, <eos> not counted (a bound on its tokens for an ASCII-covering BPE). */
  maxAnswerChars(task: Task): number;
}

export const CHAR_RENDERING: TaskRendering = Object.freeze({
  name: 'char' as const,
  part: (ep: Episode, i: number) => partAt(ep, i, ep.parts[i]),
  prompt: formatPrompt,
  target: formatTarget,
  skyline: formatSkyline,
  message: textMessageFormat,
  extractAnswer,
  isCorrect: (ep: Episode, decoded: string) => extractAnswer(decoded) === ep.answer,
  maxAnswerChars: (task: Task) => task.maxAnswerLength,
});

function partAt(ep: Episode, i: number, text: string | undefined): string {
  if (!Number.isInteger(i) || i < 0 || i >= ep.parts.length || text === undefined) {
    throw new Error(`part ${i} is out of range for task ${ep.task} (0..${ep.parts.length - 1})`);
  }
  return text;
}

/**
 * One word per key letter of lookup: distinct, lowercase, short and common (each one token with its
 * leading space in the usual English BPE vocabularies), so prompt lengths vary little with the keys.
 */
export const KEY_WORDS: Readonly<Record<string, string>> = Object.freeze({
  a: 'apple', b: 'bird', c: 'cat', d: 'dog', e: 'egg', f: 'fish', g: 'gold', h: 'hat', i: 'ice', j: 'jar',
  k: 'key', l: 'lamp', m: 'moon', n: 'nose', o: 'oil', p: 'pen', q: 'queen', r: 'rain', s: 'sun', t: 'tree',
  u: 'unit', v: 'van', w: 'wind', x: 'box', y: 'yard', z: 'zoo',
});

const keyWord = (k: string): string => {
  const w = KEY_WORDS[k];
  if (!w) throw new Error(`lookup key ${JSON.stringify(k)} has no word`);
  return w;
};
const spaced = (s: string) => [...s].join(' ');

const WORD_PARTS: Record<TaskName, (contents: readonly string[], i: number) => string> = {
  lookup(c, i) {
    if (i === 0) {
      const entries: string[] = [];
      for (let j = 0; j < c[0].length; j += 2) entries.push(`${keyWord(c[0][j])}=${c[0][j + 1]}`);
      return `Table: ${entries.join(', ')}.`;
    }
    return `Question: ${keyWord(c[1])}?`;
  },
  relay(c, i) {
    if (i === 0) return `Secret: ${spaced(c[0])}.`;
    if (i === 1) return `Relay: ${spaced(c[1])}.`;
    return `Question: letter ${c[2]} of the secret?`;
  },
  arith(c, i) {
    if (i === 0) return `a = ${c[0]}.`;
    if (i === 1) return `b = ${c[1]}.`;
    return `Question: a ${c[2]} b?`;
  },
  index(c, i) {
    if (i === 0) return `Digits: ${spaced(c[0])}.`;
    return `Question: digit ${c[1]}?`;
  },
};

const WORD_MESSAGE: MessageFormat = Object.freeze({
  open: 'Message:',
  close: '\n',
  wrap(content: string): string {
    if (content.includes('\n')) throw new Error(`text message ${JSON.stringify(content)} contains a newline`);
    return `Message:${content}\n`;
  },
  cut: (decoded: string) => textMessageFormat.cut(decoded),
});

const ANSWER_CUE = 'Answer:';

function wordExtract(decoded: string): string {
  let a = textMessageFormat.cut(decoded).trim();
  if (a.endsWith('.')) a = a.slice(0, -1).trimEnd();
  return a;
}

export const WORD_RENDERING: TaskRendering = Object.freeze({
  name: 'word' as const,
  part: (ep: Episode, i: number) => partAt(ep, i, i >= 0 && i < ep.parts.length ? WORD_PARTS[ep.task](ep.contents, i) : undefined),
  prompt(ep: Episode, part: number | 'none', opts: PromptOptions = {}): string {
    if (opts.final && opts.send) throw new Error('prompt: an agent is either final or a sender');
    let s = BOS;
    for (const m of opts.messages ?? []) s += WORD_MESSAGE.wrap(m);
    if (part !== 'none') s += WORD_RENDERING.part(ep, part) + '\n';
    if (opts.final) s += ANSWER_CUE;
    if (opts.send) s += WORD_MESSAGE.open;
    return s;
  },
  target: (ep: Episode) => ` ${ep.answer}${EOS}`,
  skyline: (ep: Episode) => BOS + ep.parts.map((_, i) => WORD_RENDERING.part(ep, i) + '\n').join('') + ANSWER_CUE,
  message: WORD_MESSAGE,
  extractAnswer: wordExtract,
  isCorrect: (ep: Episode, decoded: string) => wordExtract(decoded) === ep.answer,
  maxAnswerChars: (task: Task) => task.maxAnswerLength + 1,
});

/** A rendering by name; chat needs the model's tokenizer, whose tokenizer_config.json holds the template. */
export function rendering(name: RenderingName | 'chat', tokenizer?: TextTokenizer): TaskRendering {
  if (name === 'chat') {
    if (!tokenizer) throw new Error("the chat rendering is made from the model's tokenizer (its chat template); none was given");
    return chatRendering(tokenizer);
  }
  if (name === 'char') return CHAR_RENDERING;
  if (name === 'word') return WORD_RENDERING;
  throw new Error(`unknown rendering ${JSON.stringify(name)} (known: ${RENDERINGS.join(', ')})`);
}

/** The rendering a model reads by default: char for the character tokenizer of the toys, word for a real vocabulary. */
export function defaultRendering(tokenizerKind: 'char' | 'hf'): RenderingName {
  return tokenizerKind === 'char' ? 'char' : 'word';
}
