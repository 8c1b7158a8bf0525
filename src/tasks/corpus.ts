// Seeded synthetic pretraining corpus for the base model.
//
// It teaches every format the tasks use, and text messaging, but never communication through
// latents: each sequence is one ordinary context. Kinds (proportions configurable through `mix`):
//
//   skyline     <bos>{all parts}<answer><eos>                         one context holding everything
//   transcript  <bos>{part i}\nmsg:<content i>\n ... {final part}<answer><eos>
//                                                                     senders' parts and their text
//                                                                     messages, then the receiver
//   send        <bos>{msg lines received}{part i}\nmsg:<content i>\n  what a text sender says
//   receive     <bos>{msg lines received}{final part}<answer><eos>    a receiver reading messages
//   single      <bos>{part i}\n                                       one agent's prompt format
//
// Quiz (`quiz`, default 4): after the answer of a skyline, transcript or receive sequence come up to
// that many more questions of the final role about the same context, each then its answer and <eos>
// ("...ask:k7<eos>ask:a3<eos>"): multi-query associative recall in the tasks' own format. Splits are
// keyed by the senders' content (tasks.ts SPLITS), so every question about a train episode's context
// is a train episode too: heldout and ood content stays unseen. Several retrievals per
// context is what makes the lookup circuit form early and reliably (bench/recipe/README.md).
//
// Messages follow the task's minimum topology with ideal senders (tasks.ts idealIncoming). Episodes
// come from the train split only (train-partition content at every difficulty): heldout and ood stay unseen. Each sequence is a next-token
// prediction pair: inputs = tokens[0..L-2], targets = tokens[1..L-1], padded with <pad> to seqLen
// and the padding ignored (target 0xFFFFFFFF, the cross-entropy's ignore label).
//
// Loss mask (`maskRandom`, on by default): tokens that no model can predict are ignored too: the
// random content of every part (the table, the secret, the operands, the query key) and the message
// lines a receiver reads (to it they are as random as the parts they copy). What stays is what
// follows from the context: cues and line ends, the answer and <eos>, and a sender's message (a copy
// of its own part). Without the mask, ~9 in 10 supervised tokens are coin flips whose gradient is
// noise, and the retrieval circuit forms thousands of steps later (bench/recipe/README.md).
//
// Pure TypeScript: no DOM, no Node API.

import { Rng, deriveSeed } from './rng';
import {
  MAX_DIFFICULTY,
  MIN_DIFFICULTY,
  PART_END,
  TASK_NAMES,
  idealIncoming,
  makeTask,
  textMessageFormat,
  type Episode,
  type Task,
  type TaskName,
} from './tasks';
import { BOS, EOS } from '../tokenizers/markers';
import { defaultTokenizer } from '../tokenizers/char';
import type { TextTokenizer } from '../tokenizers/types';

/** Target label of positions the loss ignores (padding). */
export const IGNORE_INDEX = 0xffffffff;

export type CorpusKind = 'skyline' | 'transcript' | 'send' | 'receive' | 'single';
export const CORPUS_KINDS: readonly CorpusKind[] = ['skyline', 'transcript', 'send', 'receive', 'single'];

export type CorpusMix = Record<CorpusKind, number>;
// Copying (send) trains the same induction step that lookup's answer needs ("k" -> the digit after
// "k" in the table), with a supervised token per copied character: the densest retrieval signal in
// the corpus. `single` teaches nothing the other kinds do not (its content is random): weight 0.
/** Questions the quiz adds after an answer, at most. */
export const DEFAULT_QUIZ = 4;

export const DEFAULT_MIX: Readonly<CorpusMix> = Object.freeze({
  skyline: 0.4,
  transcript: 0.15,
  send: 0.3,
  receive: 0.15,
  single: 0,
});

export interface CorpusOptions {
  /** task names (see TASK_NAMES); sequences pick a task uniformly */
  tasks: readonly string[];
  /** one difficulty for every task, or a list to draw from uniformly per sequence */
  difficulty: number | readonly number[];
  seed: number;
  /** tokens per row of a batch (inputs and targets) */
  seqLen: number;
  /** relative weights of the kinds (missing kinds weigh 0 when mix is given); default DEFAULT_MIX */
  mix?: Partial<CorpusMix>;
  /** ignore the tokens no model can predict (random part contents, received messages); default true */
  maskRandom?: boolean;
  /** relative weight of each task and difficulty, keyed "task:difficulty" (e.g. "arith:1"); default 1 each */
  weights?: Record<string, number>;
  /** at most this many more questions after an answer (the quiz); default DEFAULT_QUIZ */
  quiz?: number;
  tokenizer?: TextTokenizer;
}

/** A piece of a sequence's text, and whether its tokens are prediction targets under the loss mask. */
export interface Segment {
  text: string;
  learn: boolean;
}

export interface CorpusBatch {
  /** [B*S] token ids, row-major, padded with <pad> */
  inputs: Uint32Array;
  /** [B*S] next-token ids; IGNORE_INDEX where there is no next token (padding) */
  targets: Uint32Array;
  batchSize: number;
  seqLen: number;
}

export interface CorpusSequence {
  text: string;
  /** the text in pieces with their loss-mask flag (their concatenation is text) */
  segments: Segment[];
  kind: CorpusKind;
  task: TaskName;
  difficulty: number;
  /** the canonical key of the episode it came from (always of train-partition content) */
  key: string;
  /** that episode */
  episode: Episode;
}

function normaliseDifficulties(d: number | readonly number[]): number[] {
  const list = typeof d === 'number' ? [d] : Array.from(d);
  if (list.length === 0) throw new Error('Corpus: difficulty list is empty');
  for (const x of list) {
    if (!Number.isInteger(x) || x < MIN_DIFFICULTY || x > MAX_DIFFICULTY) {
      throw new Error(`Corpus: difficulty must be an integer in ${MIN_DIFFICULTY}..${MAX_DIFFICULTY}, got ${x}`);
    }
  }
  return list;
}

function buildTasks(names: readonly string[], difficulties: readonly number[]): Task[][] {
  if (!Array.isArray(names) || names.length === 0) {
    throw new Error(`Corpus: tasks must be a non-empty list (known: ${TASK_NAMES.join(', ')})`);
  }
  return names.map((name) => difficulties.map((d) => makeTask(name, d)));
}

/** The smallest seqLen that holds every sequence the corpus can produce for these tasks (quiz included). */
export function requiredSeqLen(tasks: readonly string[], difficulty: number | readonly number[], quiz = DEFAULT_QUIZ): number {
  const ds = normaliseDifficulties(difficulty);
  checkQuiz(quiz);
  let max = 0;
  for (const row of buildTasks(tasks, ds)) {
    for (const t of row) max = Math.max(max, t.maxTokens('train') + Math.min(quiz, t.maxQueries('train') - 1) * t.maxQueryTokens('train'));
  }
  return max - 1; // inputs drop the last token
}

function checkQuiz(quiz: number): void {
  if (!Number.isInteger(quiz) || quiz < 0 || quiz > 64) throw new Error(`Corpus: quiz must be an integer in 0..64, got ${quiz}`);
}

export class Corpus {
  readonly options: Readonly<CorpusOptions>;
  readonly tokenizer: TextTokenizer;
  readonly seqLen: number;
  readonly mix: Readonly<CorpusMix>;
  readonly maskRandom: boolean;
  readonly quiz: number;
  /** every (task, difficulty) the corpus draws from, and its weight */
  private readonly settings: Task[];
  private readonly settingWeights: number[];
  private readonly weights: number[];
  private readonly rng: Rng;

  constructor(opts: CorpusOptions) {
    const difficulties = normaliseDifficulties(opts.difficulty);
    this.settings = buildTasks(opts.tasks, difficulties).flat();
    this.quiz = opts.quiz ?? DEFAULT_QUIZ;
    checkQuiz(this.quiz);
    const weights = opts.weights ?? {};
    const names = new Set(this.settings.map((t) => `${t.name}:${t.difficulty}`));
    for (const [k, w] of Object.entries(weights)) {
      if (!names.has(k)) throw new Error(`Corpus: weight ${JSON.stringify(k)} names no task:difficulty of this corpus (have: ${[...names].join(', ')})`);
      if (typeof w !== 'number' || !(w >= 0) || !Number.isFinite(w)) throw new Error(`Corpus: weight ${k} must be a number >= 0, got ${w}`);
    }
    this.settingWeights = this.settings.map((t) => weights[`${t.name}:${t.difficulty}`] ?? 1);
    if (this.settingWeights.every((w) => w === 0)) throw new Error('Corpus: every task weight is zero');
    if (!Number.isInteger(opts.seqLen) || opts.seqLen < 1) {
      throw new Error(`Corpus: seqLen must be a positive integer, got ${opts.seqLen}`);
    }
    const need = requiredSeqLen(opts.tasks, difficulties, this.quiz);
    if (opts.seqLen < need) {
      throw new Error(
        `Corpus: seqLen ${opts.seqLen} is too short for tasks [${opts.tasks.join(', ')}] at difficulty ${difficulties.join('/')}: need at least ${need}`,
      );
    }
    const mix: CorpusMix = { ...DEFAULT_MIX };
    if (opts.mix) {
      for (const k of Object.keys(opts.mix)) {
        if (!(CORPUS_KINDS as readonly string[]).includes(k)) {
          throw new Error(`Corpus: unknown mix kind ${JSON.stringify(k)} (known: ${CORPUS_KINDS.join(', ')})`);
        }
      }
      for (const k of CORPUS_KINDS) mix[k] = opts.mix[k] ?? 0;
    }
    for (const k of CORPUS_KINDS) {
      if (!(mix[k] >= 0) || !Number.isFinite(mix[k])) throw new Error(`Corpus: mix.${k} must be >= 0, got ${mix[k]}`);
    }
    if (CORPUS_KINDS.every((k) => mix[k] === 0)) throw new Error('Corpus: every mix weight is zero');
    this.mix = Object.freeze(mix);
    this.weights = CORPUS_KINDS.map((k) => mix[k]);
    this.tokenizer = opts.tokenizer ?? defaultTokenizer();
    this.seqLen = opts.seqLen;
    this.options = Object.freeze({
      ...opts,
      tasks: opts.tasks.slice(),
      difficulty: typeof opts.difficulty === 'number' ? opts.difficulty : opts.difficulty.slice(),
      mix: opts.mix ? { ...opts.mix } : undefined,
      weights: opts.weights ? { ...opts.weights } : undefined,
    });
    this.maskRandom = opts.maskRandom ?? true;
    this.rng = new Rng(deriveSeed(opts.seed, 'corpus'));
  }

  /** The next sequence as text (advances the stream exactly as nextBatch does per row). */
  nextSequence(): CorpusSequence {
    const rng = this.rng;
    const task = this.settings[rng.weighted(this.settingWeights)];
    const kind = CORPUS_KINDS[rng.weighted(this.weights)];
    const ep = task.sample(rng, 'train');
    const final = task.finalRole;
    const segs: Segment[] = [{ text: BOS, learn: false }];
    // a part: its cue (predictable), its content (random), then "\n" unless the answer follows
    const part = (i: number, answered: boolean) => {
      segs.push({ text: task.roles[i].cue, learn: true }, { text: ep.contents[i], learn: false });
      if (!answered) segs.push({ text: PART_END, learn: true });
    };
    // a message line a receiver reads: cue and end predictable, content (a copy of a part it never saw) random
    const received = (content: string) =>
      segs.push({ text: textMessageFormat.open, learn: true }, { text: content, learn: false }, { text: textMessageFormat.close, learn: true });
    // a message line a sender writes after its own part: all of it follows from the context
    const sent = (content: string) => segs.push({ text: textMessageFormat.open + content + textMessageFormat.close, learn: true });
    // the answer, then the quiz: more questions about the same context (its content is train, so are they)
    const answer = () => {
      segs.push({ text: ep.answer + EOS, learn: true });
      if (!this.quiz) return;
      const more = rng.shuffled(task.queries(ep).filter((q) => q.key !== ep.key));
      for (const q of more.slice(0, this.quiz)) {
        segs.push({ text: task.roles[final].cue, learn: true }, { text: q.content, learn: false }, { text: q.answer + EOS, learn: true });
      }
    };
    switch (kind) {
      case 'skyline':
        for (let i = 0; i < final; i++) part(i, false);
        part(final, true);
        answer();
        break;
      case 'transcript':
        for (let i = 0; i < final; i++) {
          part(i, false);
          sent(ep.messages[i]);
        }
        part(final, true);
        answer();
        break;
      case 'send': {
        const role = rng.int(0, final);
        for (const m of idealIncoming(task, ep, role)) received(m);
        part(role, false);
        sent(ep.messages[role]);
        break;
      }
      case 'receive':
        for (const m of idealIncoming(task, ep, final)) received(m);
        part(final, true);
        answer();
        break;
      case 'single':
        part(rng.int(0, task.roles.length), false);
        break;
    }
    return { text: segs.map((x) => x.text).join(''), segments: segs, kind, task: task.name, difficulty: task.difficulty, key: ep.key, episode: ep };
  }

  /** The next batch of next-token prediction pairs, [batchSize * seqLen] each. */
  nextBatch(batchSize: number): CorpusBatch {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`Corpus.nextBatch: batchSize must be a positive integer, got ${batchSize}`);
    }
    const S = this.seqLen;
    const inputs = new Uint32Array(batchSize * S).fill(this.tokenizer.padId);
    const targets = new Uint32Array(batchSize * S).fill(IGNORE_INDEX);
    for (let b = 0; b < batchSize; b++) {
      const seq = this.nextSequence();
      const { ids, learn } = encodeSegments(this.tokenizer, seq.segments);
      if (ids.length - 1 > S) {
        throw new Error(`Corpus: a ${seq.kind} sequence of ${seq.task} has ${ids.length} tokens, more than seqLen + 1 = ${S + 1}`);
      }
      const off = b * S;
      for (let t = 0; t < ids.length - 1; t++) {
        inputs[off + t] = ids[t];
        targets[off + t] = learn[t + 1] || !this.maskRandom ? ids[t + 1] : IGNORE_INDEX;
      }
    }
    return { inputs, targets, batchSize, seqLen: S };
  }
}

/** Token ids of segments and, per token, whether it is a target under the loss mask. */
export function encodeSegments(tokenizer: TextTokenizer, segments: readonly Segment[]): { ids: number[]; learn: boolean[] } {
  const ids: number[] = [];
  const learn: boolean[] = [];
  for (const s of segments) {
    for (const id of tokenizer.encode(s.text)) {
      ids.push(id);
      learn.push(s.learn);
    }
  }
  return { ids, learn };
}

/**
 * Entropy in nats of the unigram distribution of the target tokens of nSamples sequences (those the
 * loss mask keeps): the loss of the best model that ignores context, which pretraining must beat.
 * Draws from a fresh corpus with the same options, so the given corpus's stream is not advanced.
 */
export function unigramEntropy(corpus: Corpus, nSamples: number): number {
  if (!Number.isInteger(nSamples) || nSamples < 1) {
    throw new Error(`unigramEntropy: nSamples must be a positive integer, got ${nSamples}`);
  }
  const fresh = new Corpus(corpus.options);
  const counts = new Float64Array(fresh.tokenizer.vocabSize);
  let total = 0;
  for (let i = 0; i < nSamples; i++) {
    const { ids, learn } = encodeSegments(fresh.tokenizer, fresh.nextSequence().segments);
    for (let t = 1; t < ids.length; t++) {
      if (fresh.maskRandom && !learn[t]) continue;
      counts[ids[t]]++;
      total++;
    }
  }
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / total) * Math.log(c / total);
  return h;
}

/**
 * Batches whose rows have similar lengths: each sequence of the corpus stream goes to the smallest
 * bucket (a row length, ascending, the last one the corpus's seqLen) that holds it, and the first
 * bucket to hold batchSize sequences is emitted, its rows padded to the bucket's length. Every drawn
 * sequence is used, in stream order within a bucket. A model pass per bucket then computes on
 * ~the real tokens instead of padding every row to the longest sequence the corpus can make.
 */
export class BucketedBatches {
  readonly buckets: readonly number[];
  private readonly pools: { ids: number[]; learn: boolean[] }[][];

  constructor(
    readonly corpus: Corpus,
    readonly batchSize: number,
    buckets: readonly number[] = [corpus.seqLen],
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`BucketedBatches: batchSize must be a positive integer, got ${batchSize}`);
    const b = [...buckets];
    if (!b.length || b.some((x, i) => !Number.isInteger(x) || x < 2 || (i > 0 && x <= b[i - 1]))) {
      throw new Error(`BucketedBatches: buckets must be ascending integers >= 2, got [${b.join(', ')}]`);
    }
    if (b[b.length - 1] !== corpus.seqLen) throw new Error(`BucketedBatches: the last bucket must be the corpus's seqLen ${corpus.seqLen}, got ${b[b.length - 1]}`);
    this.buckets = Object.freeze(b);
    this.pools = b.map(() => []);
  }

  next(): CorpusBatch {
    const tk = this.corpus.tokenizer;
    for (;;) {
      const seq = this.corpus.nextSequence();
      const enc = encodeSegments(tk, seq.segments);
      const n = enc.ids.length - 1;
      const i = this.buckets.findIndex((S) => S >= n);
      if (i < 0) throw new Error(`Corpus: a ${seq.kind} sequence of ${seq.task} has ${n + 1} tokens, more than seqLen + 1 = ${this.corpus.seqLen + 1}`);
      const pool = this.pools[i];
      pool.push(enc);
      if (pool.length < this.batchSize) continue;
      this.pools[i] = [];
      const S = this.buckets[i];
      const B = this.batchSize;
      const inputs = new Uint32Array(B * S).fill(tk.padId);
      const targets = new Uint32Array(B * S).fill(IGNORE_INDEX);
      pool.forEach(({ ids, learn }, b) => {
        for (let t = 0; t < ids.length - 1; t++) {
          inputs[b * S + t] = ids[t];
          targets[b * S + t] = learn[t + 1] || !this.corpus.maskRandom ? ids[t + 1] : IGNORE_INDEX;
        }
      });
      return { inputs, targets, batchSize: B, seqLen: S };
    }
  }
}
