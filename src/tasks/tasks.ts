// Synthetic tasks where the information is split between agents, so communication is necessary:
// the final agent alone is at chance, one context holding every part (the skyline) can solve it.
//
// FORMATS (all text is lowercase ASCII from the default tokenizer)
//
// Every agent's prompt starts with <bos>, then (text-MAS baseline only) one line per message
// received, then its own part: its role's cue and its private content, then "\n" — except in the
// final agent's prompt, which ends right after its part: the answer follows it directly, then <eos>.
// So the position that reads the query token is the one that answers (for lookup: "...k7" in the
// table, "ask:k" then "7": one induction step, which small models learn far sooner than a retrieval
// whose query sits several tokens back behind a separate answer cue: bench/recipe/README.md). Non-final agents' prompts end after their part (their latent steps or, in the
// text baseline, "msg:" and the message they decode follow).
//
//   agent prompt      <bos>{msg:<content>\n}*{part}\n            (+ "msg:" when it sends text)
//   final prompt      <bos>{msg:<content>\n}*{part}              target  <answer><eos>
//   skyline prompt    <bos>{part 0}\n{part 1}\n...{final part}    target  <answer><eos>
//
// lookup (split-key lookup), roles: table -> query (final)
//   part 0  "tbl:a3k7q1"     a table of single-letter keys (distinct) and single-digit values
//   part 1  "ask:k"          the query key (always one of the table's keys)
//   answer  "7"              chance 1/10: values are independent and uniform
//   difficulty 1..5 = table of 2, 3, 4, 6, 8 entries; ood = 2 entries more than train
//   message content of the table holder: the table body "a3k7q1"
//
// relay (two hops), roles: source -> relay -> asker (final), a chain
//   part 0  "key:qbxz"       the secret: random letters
//   part 1  "rly:mpoa"       the relay's own distractor (random letters, same length): useless
//   part 2  "pos:3"          which character of the secret is asked (1-based)
//   answer  "x"              chance 1/26
//   difficulty 1..5 = secret of 2..6 letters; ood = secret 2 letters longer (unseen lengths and
//   positions)
//   message content of source and relay: the secret "qbxz" (the relay forwards what it received)
//
// arith (split arithmetic), roles: left, right -> op (final), a star
//   part 0  "a=37"   part 1  "b=5"   part 2  "op=+"  (op is + or -)
//   skyline "<bos>a=37\nb=5\nop=+42<eos>"
//   answer  "42"  ("-12" for negative results)
//   difficulty 1..5 = operands in [0, 10^d); ood = operands of exactly d+1 digits
//   chance 10^-d: from op alone the most likely result has probability 10^-d (ood: 1/(9*10^d))
//   message contents: "a=37", "b=5"
//
// index (dense array), roles: array -> asker (final): src/tasks/index-task.ts (issue 22)
//   part 0  "arr:3057"   part 1  "idx:3"   answer  "5"; difficulty 1..5 = arrays of 2, 3, 4, 6, 8
//   digits, ood = 2 more; no shipped base was pretrained on it (PRETRAINED_TASK_NAMES)
//
// Text messages (text-MAS baseline): a message appears in the receiver's prompt as "msg:<content>\n"
// (textMessageFormat); a sender's prompt ends with "msg:" and it decodes until "\n" or its budget.
//
// SPLITS are keyed by what the senders see. Each episode has a contentKey, the canonical content of
// its senders' parts (lookup: the table as a sorted set of entries; relay: the secret; arith: the
// ordered operand pair "37,5"), and a fixed hash of it puts that content in the train or the heldout
// partition (20% heldout), independent of seed and difficulty. train draws only train-partition
// content and heldout only heldout-partition content, so every question about a train table is a
// train episode and no held-out episode shows a sender anything the training stream (or the
// pretraining corpus, which draws train content at every difficulty) ever showed it. The episode's
// `key` (content and query) stays its identity: evaluation sets never repeat one (evaluationEpisodes),
// and where a split holds fewer distinct episodes than asked (arith d1 heldout, relay d1 heldout) each
// is evaluated once, in a fixed order.
//
// ood draws from a larger or longer distribution AND only heldout-partition content, so neither a
// run's training stream nor the pretraining corpus ever drew an ood episode's content. In what sense
// it is out of distribution, per task (the default pretraining recipe covers difficulties 1..5):
//   lookup  tables of 2 more entries: d1 4, d2 5, d3 6, d4 8, d5 10. For the run's adapters (trained at
//           d) always an unseen size; for the base d1, d3, d4 are sizes it pretrained on at a higher
//           difficulty (new tables at a seen size), d2 (5) and d5 (10) are sizes it never saw.
//   relay   secrets 2 letters longer (d+3): unseen lengths and positions for the adapters; for the base
//           d1-d3 (4-6 letters) are lengths of d3-d5 (new secrets at a seen length), d4-d5 (7, 8) unseen.
//   arith   operands of exactly d+1 digits: unseen magnitudes for the adapters; for the base d1-d4 lie
//           inside difficulty d+1's range (new operand pairs of a seen size), d5 (6 digits) is unseen.
//   index   arrays 2 digits longer: unseen lengths and positions for the adapters; for the base every
//           split is new (its pretraining never drew an index sequence).
//
// Pure TypeScript: no DOM, no Node API.

import { Rng, deriveSeed, hashString } from './rng';
import { BOS, EOS } from '../tokenizers/markers';
import { indexSpec } from './index-task';

export type Split = 'train' | 'heldout' | 'ood';
export const SPLITS: readonly Split[] = ['train', 'heldout', 'ood'];

export type TaskName = 'lookup' | 'relay' | 'arith' | 'index';
export const TASK_NAMES: readonly TaskName[] = ['lookup', 'relay', 'arith', 'index'];
/** The tasks the default pretraining corpus and a base's evaluation cover: those the shipped bases
 * learned. A task added later (index) is not among them, so adding it changes no corpus and no base. */
export const PRETRAINED_TASK_NAMES: readonly TaskName[] = ['lookup', 'relay', 'arith'];

export const MIN_DIFFICULTY = 1;
export const MAX_DIFFICULTY = 5;
/** What ends a part in a prompt, except in the final agent's (whose answer follows its part directly). */
export const PART_END = '\n';
/** Fraction of sender contents (contentKey) that belong to heldout rather than train. */
export const HELDOUT_FRACTION = 0.2;
/** answerSet is given when the label space holds at most this many answers. */
export const ANSWER_SET_LIMIT = 1000;
/** Task.enumerate lists a split when its distribution holds at most this many distinct episodes (all
 * partitions together); larger ones are sampled without replacement. Above it, every split holds far
 * more distinct episodes than the largest evaluation set (LIMITS.evalSize, 10,000). */
export const ENUMERATE_LIMIT = 100_000;
/** The evaluation seed of a run that sets none (RunConfig.evalSeed). */
export const DEFAULT_EVAL_SEED = 1;

export interface Episode {
  task: TaskName;
  difficulty: number;
  split: Split;
  /** canonical identity (content and query: what decides the answer); an evaluation set never repeats one */
  key: string;
  /** canonical content of the senders' parts (lookup: sorted table; relay: secret; arith: "a,b"): its
   * hash decides the train/heldout partition, so train and heldout never share one (SPLITS above) */
  contentKey: string;
  /** the private input of each role, in role order: its cue then its content (no "\n"); the last belongs to the final agent */
  parts: string[];
  /** the private content of each part (the part without its role's cue): what is random in it */
  contents: string[];
  /** the target text, without <eos> */
  answer: string;
  /** every part, each but the last ended by "\n": the skyline's single context (without <bos>) */
  fullContext: string;
  /** the content an ideal sender in each role puts in a text message ('' for the final role) */
  messages: string[];
  /** the possible answers of this task and split (shared, do not mutate), when not too many */
  answerSet?: readonly string[];
}

export interface TaskRole {
  name: string;
  /** index into episode.parts */
  part: number;
  /** the fixed text its part starts with, e.g. "tbl:" */
  cue: string;
  description: string;
}

/** How the minimum topology routes information: chain = 0 -> 1 -> ... -> final; star = all -> final. */
export type TaskFlow = 'chain' | 'star';

export interface Task {
  readonly name: TaskName;
  readonly difficulty: number;
  readonly description: string;
  /** one role per part; the last one (finalRole) answers. Their number is the minimum agent count. */
  readonly roles: readonly TaskRole[];
  readonly finalRole: number;
  readonly flow: TaskFlow;
  /** best accuracy the final agent reaches from its own part alone (train/heldout distribution) */
  readonly chance: number;
  /** longest answer in characters (without <eos>) over every split */
  readonly maxAnswerLength: number;
  chanceFor(split: Split): number;
  answerSet(split: Split): readonly string[] | undefined;
  /** upper bound on the tokens of any sequence of this split in any format (skyline, prompts, text
   * transcripts of the corpus), <bos> and <eos> included */
  maxTokens(split: Split): number;
  /** upper bound on the tokens of one more query of the final role and its answer: its part, the answer, <eos> */
  maxQueryTokens(split: Split): number;
  /** most questions the final role can be asked about one episode (queries(ep).length) */
  maxQueries(split: Split): number;
  /** one episode of the split, drawn from rng */
  sample(rng: Rng, split: Split): Episode;
  /**
   * Every distinct episode (by key) of the split, in a fixed order (content, then query), the parts
   * outside the key (relay's distractor) drawn from rng in that order; null when the split's
   * distribution holds more than ENUMERATE_LIMIT episodes.
   */
  enumerate(split: Split, rng: Rng): Episode[] | null;
  /**
   * Every question the final role could have been asked about this episode's other parts (lookup:
   * each key of the table; relay: each position; arith: each operator), with its answer and the
   * canonical key of the episode it makes (the episode's own question among them). They share the
   * episode's contentKey, so all of them are in its split.
   */
  queries(ep: Episode): TaskQuery[];
}

/** One question of the final role about an episode's other parts (Task.queries). */
export interface TaskQuery {
  /** the final part's content, e.g. "k" (its part is the role's cue then this) */
  content: string;
  answer: string;
  /** the canonical key of the episode with this question */
  key: string;
}

/** One drawn episode before its parts are written (a Spec's draw; exported for index-task.ts). */
export interface Draw {
  key: string;
  contentKey: string;
  /** the content of each part, without cue and end */
  contents: string[];
  messages: string[];
  answer: string;
}

export interface Bounds {
  /** longest content of each part (without the role's cue) */
  contents: number[];
  /** most questions the final role can be asked about one episode (Task.queries) */
  queries: number;
  messages: number[];
  answer: number;
}

/** A task's definition (exported for the tasks kept in their own files: index-task.ts). */
export interface Spec {
  name: TaskName;
  description: string;
  flow: TaskFlow;
  roles: TaskRole[];
  chance(d: number, split: Split): number;
  answerSet(d: number, split: Split): string[] | undefined;
  bounds(d: number, split: Split): Bounds;
  draw(rng: Rng, d: number, ood: boolean): Draw;
  /** distinct episodes of the distribution (keys), all partitions together */
  universe(d: number, ood: boolean): number;
  /** every episode of the distribution whose content `keep` accepts, in a fixed order (Task.enumerate) */
  enumerate(d: number, ood: boolean, keep: (contentKey: string) => boolean, rng: Rng): Draw[];
  /** every question of the final role given the other parts' contents (Task.queries) */
  queries(contents: readonly string[]): TaskQuery[];
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz'.split('');
const DIGITS = '0123456789'.split('');
const LOOKUP_SIZES = [2, 3, 4, 6, 8];
const LOOKUP_OOD_EXTRA = 2;
const RELAY_OOD_EXTRA = 2;
const ARITH_OPS = ['+', '-'] as const;

/** Canonical content of a lookup table: its entries as a sorted set ("k7a3" -> "a3k7"). */
function lookupContent(table: string): string {
  const entries: string[] = [];
  for (let i = 0; i < table.length; i += 2) entries.push(table.slice(i, i + 2));
  return entries.sort().join('');
}

/** Canonical key of a lookup episode: the table as a set of entries, then the query. */
function lookupKey(table: string, query: string): string {
  return `${lookupContent(table)}?${query}`;
}

function lookupSize(d: number, ood: boolean): number {
  return LOOKUP_SIZES[d - 1] + (ood ? LOOKUP_OOD_EXTRA : 0);
}

function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1);
  return Math.round(c);
}

/** Every k-subset of 0..n-1 as increasing index lists, in lexicographic order. */
function combinations(n: number, k: number): number[][] {
  const out: number[][] = [];
  const pick = (from: number, acc: number[]) => {
    if (acc.length === k) {
      out.push(acc.slice());
      return;
    }
    for (let i = from; i <= n - (k - acc.length); i++) {
      acc.push(i);
      pick(i + 1, acc);
      acc.pop();
    }
  };
  pick(0, []);
  return out;
}

const lookupSpec: Spec = {
  name: 'lookup',
  description:
    'Split-key lookup: the table holder knows key->value pairs, the final agent knows which key is asked.',
  flow: 'star',
  roles: [
    { name: 'table', part: 0, cue: 'tbl:', description: 'holds the key->value table, e.g. tbl:a3k7q1' },
    { name: 'query', part: 1, cue: 'ask:', description: 'holds the query key, e.g. ask:k; answers the value' },
  ],
  chance: () => 1 / 10,
  answerSet: () => DIGITS.slice(),
  bounds(d, split) {
    const s = LOOKUP_SIZES[d - 1] + (split === 'ood' ? LOOKUP_OOD_EXTRA : 0);
    return { contents: [2 * s, 1], messages: [2 * s, 0], answer: 1, queries: s };
  },
  draw(rng, d, ood) {
    const size = lookupSize(d, ood);
    const keys = rng.sample(LETTERS, size);
    const values = keys.map(() => rng.int(0, 10));
    const q = rng.int(0, size);
    const table = keys.map((k, i) => `${k}${values[i]}`).join('');
    return {
      key: lookupKey(table, keys[q]),
      contentKey: lookupContent(table),
      contents: [table, keys[q]],
      messages: [table, ''],
      answer: String(values[q]),
    };
  },
  universe(d, ood) {
    const s = lookupSize(d, ood);
    return binomial(LETTERS.length, s) * 10 ** s * s;
  },
  enumerate(d, ood, keep) {
    // key sets in lexicographic order, values counting up (first key most significant), then queries
    const s = lookupSize(d, ood);
    const out: Draw[] = [];
    for (const idx of combinations(LETTERS.length, s)) {
      const keys = idx.map((i) => LETTERS[i]);
      for (let v = 0; v < 10 ** s; v++) {
        const digits = String(v).padStart(s, '0');
        const table = keys.map((k, i) => k + digits[i]).join('');
        if (!keep(table)) continue;
        keys.forEach((k, i) => out.push({ key: `${table}?${k}`, contentKey: table, contents: [table, k], messages: [table, ''], answer: digits[i] }));
      }
    }
    return out;
  },
  queries([table]) {
    const out: TaskQuery[] = [];
    for (let i = 0; i < table.length; i += 2) out.push({ content: table[i], answer: table[i + 1], key: lookupKey(table, table[i]) });
    return out;
  },
};

function relayLength(d: number, split: Split): number {
  return d + 1 + (split === 'ood' ? RELAY_OOD_EXTRA : 0);
}

const relaySpec: Spec = {
  name: 'relay',
  description:
    'Relay: the source knows a secret, the relay knows only a distractor and must pass the secret on, the asker knows which character is asked.',
  flow: 'chain',
  roles: [
    { name: 'source', part: 0, cue: 'key:', description: 'holds the secret, e.g. key:qbxz' },
    { name: 'relay', part: 1, cue: 'rly:', description: 'holds a useless distractor, e.g. rly:mpoa; must forward the secret' },
    { name: 'asker', part: 2, cue: 'pos:', description: 'holds the position asked, e.g. pos:3; answers that character' },
  ],
  chance: () => 1 / 26,
  answerSet: () => LETTERS.slice(),
  bounds(d, split) {
    const L = relayLength(d, split);
    return { contents: [L, L, 1], messages: [L, L, 0], answer: 1, queries: L };
  },
  draw(rng, d, ood) {
    const L = relayLength(d, ood ? 'ood' : 'train');
    let secret = '';
    let distractor = '';
    for (let i = 0; i < L; i++) secret += rng.choice(LETTERS);
    for (let i = 0; i < L; i++) distractor += rng.choice(LETTERS);
    const k = rng.int(1, L + 1);
    return {
      key: `${secret}@${k}`,
      contentKey: secret,
      contents: [secret, distractor, String(k)],
      messages: [secret, secret, ''],
      answer: secret[k - 1],
    };
  },
  universe(d, ood) {
    const L = relayLength(d, ood ? 'ood' : 'train');
    return LETTERS.length ** L * L;
  },
  enumerate(d, ood, keep, rng) {
    // secrets in lexicographic order, then positions; each episode's distractor drawn from rng
    const L = relayLength(d, ood ? 'ood' : 'train');
    const out: Draw[] = [];
    for (let n = 0; n < LETTERS.length ** L; n++) {
      let secret = '';
      for (let i = 0, r = n; i < L; i++, r = Math.floor(r / LETTERS.length)) secret = LETTERS[r % LETTERS.length] + secret;
      if (!keep(secret)) continue;
      for (let k = 1; k <= L; k++) {
        let distractor = '';
        for (let i = 0; i < L; i++) distractor += rng.choice(LETTERS);
        out.push({ key: `${secret}@${k}`, contentKey: secret, contents: [secret, distractor, String(k)], messages: [secret, secret, ''], answer: secret[k - 1] });
      }
    }
    return out;
  },
  queries([secret]) {
    return [...secret].map((ch, i) => ({ content: String(i + 1), answer: ch, key: `${secret}@${i + 1}` }));
  },
};

function arithDigits(d: number, split: Split): number {
  return split === 'ood' ? d + 1 : d;
}

/** The operand range [lo, hi) of a difficulty's distribution. */
function arithRange(d: number, ood: boolean): [number, number] {
  const D = arithDigits(d, ood ? 'ood' : 'train');
  return [ood ? 10 ** (D - 1) : 0, 10 ** D];
}

function arithDraw(a: number, b: number, op: (typeof ARITH_OPS)[number]): Draw {
  return {
    key: `${a}${op}${b}`,
    contentKey: `${a},${b}`,
    contents: [String(a), String(b), op],
    messages: [`a=${a}`, `b=${b}`, ''],
    answer: String(op === '+' ? a + b : a - b),
  };
}

const arithSpec: Spec = {
  name: 'arith',
  description:
    'Split arithmetic: one agent holds a, another b, the final agent holds the operator (+ or -) and answers the result.',
  flow: 'star',
  roles: [
    { name: 'left', part: 0, cue: 'a=', description: 'holds the left operand, e.g. a=37' },
    { name: 'right', part: 1, cue: 'b=', description: 'holds the right operand, e.g. b=5' },
    { name: 'op', part: 2, cue: 'op=', description: 'holds the operator, e.g. op=+; answers the result' },
  ],
  // from op alone the likeliest result (a sum or difference near the middle) has probability
  // 1 / (number of operand values): 1/10^d in train, 1/(9 * 10^d) in ood
  chance: (d, split) => 1 / (split === 'ood' ? 9 * 10 ** d : 10 ** d),
  answerSet(d, split) {
    const D = arithDigits(d, split);
    const lo = split === 'ood' ? 10 ** (D - 1) : 0;
    const hi = 10 ** D - 1;
    const min = lo - hi;
    const max = 2 * hi;
    if (max - min + 1 > ANSWER_SET_LIMIT) return undefined;
    const out: string[] = [];
    for (let v = min; v <= max; v++) {
      // ood sums cover [2 lo, 2 hi] and differences [lo - hi, hi - lo]: the gap between is unreachable
      if (split === 'ood' && v > hi - lo && v < 2 * lo) continue;
      out.push(String(v));
    }
    return out;
  },
  bounds(d, split) {
    const D = arithDigits(d, split);
    return { contents: [D, D, 1], messages: [2 + D, 2 + D, 0], answer: D + 1, queries: ARITH_OPS.length };
  },
  draw(rng, d, ood) {
    const [lo, hi] = arithRange(d, ood);
    const a = rng.int(lo, hi);
    const b = rng.int(lo, hi);
    return arithDraw(a, b, rng.choice(ARITH_OPS));
  },
  universe(d, ood) {
    const [lo, hi] = arithRange(d, ood);
    return (hi - lo) ** 2 * ARITH_OPS.length;
  },
  enumerate(d, ood, keep) {
    // a, then b, counting up, then the operators
    const [lo, hi] = arithRange(d, ood);
    const out: Draw[] = [];
    for (let a = lo; a < hi; a++) {
      for (let b = lo; b < hi; b++) if (keep(`${a},${b}`)) for (const op of ARITH_OPS) out.push(arithDraw(a, b, op));
    }
    return out;
  },
  queries([a, b]) {
    return ARITH_OPS.map((op) => ({ content: op, answer: String(op === '+' ? Number(a) + Number(b) : Number(a) - Number(b)), key: `${a}${op}${b}` }));
  },
};

const SPECS: Record<TaskName, Spec> = { lookup: lookupSpec, relay: relaySpec, arith: arithSpec, index: indexSpec };

/** Which partition, train or heldout, a sender content (Episode.contentKey) belongs to (fixed: depends
 * on neither seed nor difficulty). ood episodes hold heldout-partition content too. */
export function splitOfContent(task: TaskName, contentKey: string): 'train' | 'heldout' {
  const h = hashString(contentKey, hashString(`split:${task}`));
  return h % 1000 < HELDOUT_FRACTION * 1000 ? 'heldout' : 'train';
}

function checkSplit(split: Split): void {
  if (!SPLITS.includes(split)) {
    throw new Error(`unknown split ${JSON.stringify(split)} (expected one of ${SPLITS.join(', ')})`);
  }
}

const MAX_REJECTIONS = 100_000;

/** Builds a task. Throws on an unknown name or a difficulty outside 1..5. */
export function makeTask(name: string, difficulty: number): Task {
  if (!(TASK_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown task ${JSON.stringify(name)} (known: ${TASK_NAMES.join(', ')})`);
  }
  if (!Number.isInteger(difficulty) || difficulty < MIN_DIFFICULTY || difficulty > MAX_DIFFICULTY) {
    throw new Error(`task ${name}: difficulty must be an integer in ${MIN_DIFFICULTY}..${MAX_DIFFICULTY}, got ${difficulty}`);
  }
  const spec = SPECS[name as TaskName];
  const d = difficulty;
  const n = spec.roles.length;
  const answerSets = new Map<Split, readonly string[] | undefined>();
  for (const split of SPLITS) {
    const set = spec.answerSet(d, split);
    answerSets.set(split, set ? Object.freeze(set) : undefined);
  }

  const maxTokens = (split: Split): number => {
    checkSplit(split);
    const b = spec.bounds(d, split);
    const part = (i: number) => spec.roles[i].cue.length + b.contents[i];
    const end = PART_END.length;
    const msgLine = (i: number) => textMessageFormat.open.length + b.messages[i] + textMessageFormat.close.length;
    const target = b.answer + 1;
    let transcript = 1;
    for (let i = 0; i < n - 1; i++) transcript += part(i) + end + msgLine(i);
    transcript += part(n - 1) + target;
    // message lines role i receives with ideal senders (idealIncoming)
    const incoming = (i: number): number => {
      if (spec.flow === 'chain') return i > 0 ? msgLine(i - 1) : 0;
      let sum = 0;
      if (i === n - 1) for (let j = 0; j < n - 1; j++) sum += msgLine(j);
      return sum;
    };
    let send = 0;
    for (let i = 0; i < n - 1; i++) send = Math.max(send, 1 + incoming(i) + part(i) + end + msgLine(i));
    const receive = 1 + incoming(n - 1) + part(n - 1) + target;
    let skyline = 1 + target;
    for (let i = 0; i < n; i++) skyline += part(i) + (i < n - 1 ? end : 0);
    return Math.max(transcript, receive, send, skyline);
  };

  const episodeOf = (draw: Draw, split: Split): Episode => {
    const parts = draw.contents.map((c, i) => spec.roles[i].cue + c);
    const ep: Episode = {
      task: spec.name,
      difficulty: d,
      split,
      key: draw.key,
      contentKey: draw.contentKey,
      parts,
      contents: draw.contents,
      answer: draw.answer,
      fullContext: parts.map((p, i) => (i < n - 1 ? p + PART_END : p)).join(''),
      messages: draw.messages,
    };
    const set = answerSets.get(split);
    if (set) ep.answerSet = set;
    return ep;
  };

  const task: Task = {
    name: spec.name,
    difficulty: d,
    description: spec.description,
    roles: Object.freeze(spec.roles.map((r) => Object.freeze({ ...r }))),
    finalRole: n - 1,
    flow: spec.flow,
    chance: spec.chance(d, 'train'),
    maxAnswerLength: Math.max(...SPLITS.map((s) => spec.bounds(d, s).answer)),
    chanceFor(split) {
      checkSplit(split);
      return spec.chance(d, split);
    },
    answerSet(split) {
      checkSplit(split);
      return answerSets.get(split);
    },
    maxTokens,
    maxQueryTokens(split) {
      checkSplit(split);
      const b = spec.bounds(d, split);
      return spec.roles[n - 1].cue.length + b.contents[n - 1] + b.answer + 1;
    },
    maxQueries(split) {
      checkSplit(split);
      return spec.bounds(d, split).queries;
    },
    queries(ep) {
      if (ep.task !== spec.name) throw new Error(`task ${spec.name}: queries of a ${ep.task} episode`);
      return spec.queries(ep.contents);
    },
    sample(rng, split) {
      checkSplit(split);
      const partition = split === 'train' ? 'train' : 'heldout';
      let draw: Draw | undefined;
      for (let t = 0; t < MAX_REJECTIONS && !draw; t++) {
        const c = spec.draw(rng, d, split === 'ood');
        if (splitOfContent(spec.name, c.contentKey) === partition) draw = c;
      }
      if (!draw) throw new Error(`task ${spec.name}: no ${split} episode found in ${MAX_REJECTIONS} draws`);
      return episodeOf(draw, split);
    },
    enumerate(split, rng) {
      checkSplit(split);
      const ood = split === 'ood';
      if (spec.universe(d, ood) > ENUMERATE_LIMIT) return null;
      const partition = split === 'train' ? 'train' : 'heldout';
      return spec.enumerate(d, ood, (c) => splitOfContent(spec.name, c) === partition, rng).map((dr) => episodeOf(dr, split));
    },
  };
  return Object.freeze(task);
}

/** n episodes of a split, deterministic in (task, difficulty, split, seed). */
export function sampleEpisodes(task: Task, split: Split, n: number, seed: number): Episode[] {
  checkSplit(split);
  if (!Number.isInteger(n) || n < 0) throw new Error(`sampleEpisodes: n must be a non-negative integer, got ${n}`);
  const rng = new Rng(deriveSeed(seed, 'episodes', task.name, task.difficulty, split));
  const out: Episode[] = [];
  for (let i = 0; i < n; i++) out.push(task.sample(rng, split));
  return out;
}

/**
 * An evaluation set: n distinct episodes (by key) of a split, deterministic in (task, difficulty,
 * split, seed). A split with at most n distinct episodes gives each of them once, in Task.enumerate's
 * fixed order (fewer than n: the caller reports the real count); otherwise n are drawn without
 * replacement from the seeded stream of sampleEpisodes.
 */
export function evaluationEpisodes(task: Task, split: Split, n: number, seed: number): Episode[] {
  checkSplit(split);
  if (!Number.isInteger(n) || n < 1) throw new Error(`evaluationEpisodes: n must be a positive integer, got ${n}`);
  const s = deriveSeed(seed, 'episodes', task.name, task.difficulty, split);
  const all = task.enumerate(split, new Rng(s));
  if (all && all.length <= n) return all;
  const rng = new Rng(s);
  const seen = new Set<string>();
  const out: Episode[] = [];
  const maxDraws = 100 * n + MAX_REJECTIONS;
  for (let draws = 0; out.length < n; draws++) {
    if (draws >= maxDraws) throw new Error(`evaluationEpisodes: ${task.name} d${task.difficulty} ${split}: only ${out.length} distinct episodes in ${maxDraws} draws, ${n} asked`);
    const ep = task.sample(rng, split);
    if (seen.has(ep.key)) continue;
    seen.add(ep.key);
    out.push(ep);
  }
  return out;
}

/** How a text message appears in a receiver's prompt: "msg:<content>\n". */
export const textMessageFormat = Object.freeze({
  open: 'msg:',
  close: '\n',
  /** the line a receiver sees for one message; content must not contain a newline */
  wrap(content: string): string {
    if (content.includes('\n')) throw new Error(`text message ${JSON.stringify(content)} contains a newline`);
    return `msg:${content}\n`;
  },
  /** what a sender decoded after "msg:", cut at the first newline or special token */
  cut(decoded: string): string {
    let end = decoded.length;
    const nl = decoded.indexOf('\n');
    if (nl >= 0) end = nl;
    const sp = decoded.indexOf('<');
    if (sp >= 0 && sp < end) end = sp;
    return decoded.slice(0, end);
  },
});

export interface PromptOptions {
  /** the final agent: its part is not ended by "\n", the answer follows it directly */
  final?: boolean;
  /** text-MAS baseline: message contents received, in predecessor order, written before the part */
  messages?: readonly string[];
  /** text-MAS baseline: end with "msg:" so the agent decodes its message next */
  send?: boolean;
}

/**
 * An agent's prompt text (tokenizer-ready, starts with "<bos>"). part: the index of the episode
 * part this agent holds, or 'none' for an agent without private input.
 */
export function formatPrompt(ep: Episode, part: number | 'none', opts: PromptOptions = {}): string {
  if (opts.final && opts.send) throw new Error('formatPrompt: an agent is either final or a sender');
  let s = BOS;
  for (const m of opts.messages ?? []) s += textMessageFormat.wrap(m);
  if (part !== 'none') {
    if (!Number.isInteger(part) || part < 0 || part >= ep.parts.length) {
      throw new Error(`formatPrompt: part ${part} is out of range for task ${ep.task} (0..${ep.parts.length - 1})`);
    }
    s += ep.parts[part];
    if (!opts.final) s += PART_END;
  }
  if (opts.send) s += textMessageFormat.open;
  return s;
}

/** The final agent's target: answer then <eos>. */
export function formatTarget(ep: Episode): string {
  return ep.answer + EOS;
}

/** The skyline's prompt: every part in one context, the final part last (the answer follows it). */
export function formatSkyline(ep: Episode): string {
  return BOS + ep.fullContext;
}

/**
 * The messages the agent holding `role` receives in the task's minimum topology when every sender
 * is ideal (chain: the previous role's message; star: the final role gets every other role's).
 */
export function idealIncoming(task: Task, ep: Episode, role: number): string[] {
  if (!Number.isInteger(role) || role < 0 || role >= task.roles.length) {
    throw new Error(`idealIncoming: role ${role} is out of range for task ${task.name}`);
  }
  if (task.flow === 'chain') return role > 0 ? [ep.messages[role - 1]] : [];
  return role === task.finalRole ? ep.messages.slice(0, task.finalRole) : [];
}

/**
 * The answer inside a decoded continuation of the final prompt: the text before the first <eos>,
 * other special or newline. Accuracy compares it with episode.answer.
 */
export function extractAnswer(decoded: string): string {
  let end = decoded.length;
  for (const stop of [EOS, '<', '\n']) {
    const i = decoded.indexOf(stop);
    if (i >= 0 && i < end) end = i;
  }
  return decoded.slice(0, end);
}

export function isCorrect(ep: Episode, decoded: string): boolean {
  return extractAnswer(decoded) === ep.answer;
}
