// What a message of B tokens can carry, per task: the ceiling any protocol can reach and the floor
// the receiver reaches alone, to set beside every measured accuracy (issue 19, point 5). Plain
// TypeScript, no GPU; every number is computed (by enumeration or a bisection), none assumed.
//
// THE CEILING. A sender never sees the query, so its message must carry the content itself. A
// message of at most B tokens from a vocabulary of V takes at most N = sum_{l=0..B} V^l distinct
// values (the text channel stops early at "\n", so every length up to B counts), and carries at most
// C = log2 N bits (just above B log2 V). Per task, the entropy the receiver still lacks about its
// answer Y given the message M and its own part Q is at least (subadditivity of entropy, the asked
// entry, letter or operator being uniform and independent of the content):
//   lookup (n entries, values uniform digits given the keys K): H(Y | M, Q) >= (1/n) sum_i
//     H(V_i | M, K) >= (H(V | K) - C) / n, i.e. log2 10 - C / n on the training distribution;
//   relay (L letters): per letter (H(secret) - C) / L. The asker reads only the relay's message, a
//     function of the source's, so the chain is bottlenecked at C per hop: the same bound;
//   index (n digits, no keys): per digit log2 10 - C / n, lookup's bound without the keys to carry;
//   arith (operands a, b over N_op values, one sender each, each B tokens): a + b and a - b together
//     give (a, b), so the mean over the two operators of H(a op b | M) >= (H(a, b) - 2C) / 2, i.e.
//     log2 N_op - C on the training distribution.
// Held-out and ood contents are a fixed fifth of the universe, picked by a hash of the sender's
// content (src/tasks/tasks.ts splitOfContent): uniform over that fifth, their entropy is the
// universe's less log2 5 = 2.3 bits, which we subtract (a message may use that the content is held out).
// Fano: h(Pe) + Pe log2(|Y| - 1) >= H(Y | M, Q) bounds the error of ANY receiver; the largest
// accuracy 1 - Pe it allows is the bound. It is exact (reachable) where the message can name the
// sender's whole content (N >= the number of contents, each a distinct message): there the optimum
// is 1, and we say so ('exact'). Elsewhere it is an upper bound, not a protocol.
//
// THE HAMMING-SPHERE CEILING (index and relay, issue 22). Where the content is a uniform string of n
// independent symbols from q and the receiver asks one uniform position of it, a protocol is, without
// loss, a codebook: the receiver's guess of every position given message m is a string c_m, and the
// sender sends the m whose c_m agrees most with its string (any other choice scores less; a random
// guess scores its mean). So the accuracy is 1 - E[d] / n, d the Hamming distance from the string
// to its nearest codeword. At most N * ball(r) strings lie within r of one of N codewords (ball(r) =
// sum_{j<=r} C(n, j) (q - 1)^j), so over M equally likely strings P(d > r) >= 1 - N ball(r) / M and
// accuracy <= 1 - (1/n) sum_{r<n} max(0, 1 - N ball(r) / M). It is tighter than Fano at the tight
// budgets (index n = 8, B = 1: 0.413 against 0.495) and reached where perfect codes exist; held-out
// contents count M = q^n / 5, the same selection Fano subtracts. tests/bounds.test.ts checks it
// against the exact optimum by enumeration of every codebook on small alphabets. It holds for lookup
// given its keys too; lookup's reports leave it out so that they stay as they were.
//
// THE FLOOR. The best constant message is no message: the receiver guesses from its own part alone,
// sum_q P(q) max_y P(y | q). Where the split can be listed (Task.enumerate: the evaluation then holds
// each of its episodes once) it is counted over exactly those episodes; otherwise over the task's
// distribution (lookup and relay: the asked value is a uniform draw independent of the question).
//
// THE VALUES-ONLY FLOOR (lookup). A receiver told the multiset of the table's values but not which
// key holds which predicts value v with probability count(v)/n: its expected cross-entropy
// E[-ln(count(Y)/n)] and its accuracy E[max_v count(v)/n], exact over every multiset of n digits
// (multinomial probabilities). The 1-token message "the most frequent value" reaches that same
// accuracy. The run's loss is per answer token with <eos> (which such a receiver gets free), so the
// per-token floor is the per-answer one over (answer length + 1).
//
// The task shapes below (table sizes, secret lengths, operand ranges) are those of src/tasks/tasks.ts;
// tests/bounds.test.ts checks them against the task's own episodes.
import { Rng } from '../tasks/rng';
import { HELDOUT_FRACTION, makeTask, type Split, type TaskName } from '../tasks/tasks';

const DIGITS = 10;
const LETTERS = 26;

/** log2 of the number of messages of at most B tokens from V: log2(sum_{l=0..B} V^l). */
export function messageBits(B: number, V: number): number {
  if (!Number.isInteger(B) || B < 0) throw new Error(`bounds: budget ${B} is not a non-negative integer`);
  if (!Number.isInteger(V) || V < 2) throw new Error(`bounds: vocabulary ${V} must be an integer >= 2`);
  // sum = (V^(B+1) - 1) / (V - 1) = V^B (1 - V^-(B+1)) / (1 - 1/V)
  return B * Math.log2(V) + Math.log2((1 - V ** -(B + 1)) / (1 - 1 / V));
}

/** Binary entropy in bits. */
export function h2(p: number): number {
  if (p <= 0 || p >= 1) return 0;
  return -p * Math.log2(p) - (1 - p) * Math.log2(1 - p);
}

/**
 * The largest accuracy Fano's inequality allows when the receiver lacks `bits` of entropy about an
 * answer with `M` possible values: 1 - Pe for the smallest Pe with h(Pe) + Pe log2(M - 1) >= bits.
 */
export function fanoAccuracy(bits: number, M: number): number {
  if (!(M >= 2)) throw new Error(`bounds: an answer needs at least 2 values, got ${M}`);
  if (bits <= 0) return 1;
  if (bits >= Math.log2(M)) return 1 / M;
  // the left side rises from 0 at Pe = 0 to log2 M at Pe = (M - 1)/M
  const f = (pe: number) => h2(pe) + pe * Math.log2(M - 1);
  let lo = 0;
  let hi = (M - 1) / M;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) >= bits) hi = mid;
    else lo = mid;
  }
  return 1 - hi;
}

/** log2 of n choose k. */
function log2Choose(n: number, k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s += Math.log2(n - i) - Math.log2(i + 1);
  return s;
}

/** The task's shape on a split: what decides its bounds. */
export interface TaskShape {
  task: TaskName;
  difficulty: number;
  split: Split;
  /** Possible answers of one query (|Y|). */
  answers: number;
  /** Senders whose messages the receiver needs (each with the budget B). */
  senders: number;
  /** Messages that cross per episode (relay: two hops), to turn bits crossing into bits per message. */
  messages: number;
  /** log2 of the number of distinct contents of one sender in the universe (what a message must name to be exact). */
  contentBits: number;
  /** Entropy of what the receiver needs (lookup: the values given the keys; relay: the secret; arith: the operand pair), after the split's selection. */
  neededBits: number;
  /** Pieces the needed entropy spreads over, one of which is asked (entries, letters, the two operators). */
  pieces: number;
}

/** Bits the split's selection of contents takes off their entropy: 0 for train, log2 5 for the hash-picked fifth. */
export function selectionBits(split: Split): number {
  return split === 'train' ? 0 : Math.log2(1 / HELDOUT_FRACTION);
}

/** Table size (lookup), secret length (relay) or operand values (arith) on a split, from the task itself. */
export function shapeOf(task: TaskName, difficulty: number, split: Split): TaskShape & { size: number } {
  const t = makeTask(task, difficulty);
  if (task === 'lookup') {
    const n = t.maxQueries(split);
    return {
      task, difficulty, split, answers: DIGITS, senders: 1, messages: 1, size: n, contentBits: log2Choose(LETTERS, n) + n * Math.log2(DIGITS),
      neededBits: n * Math.log2(DIGITS) - selectionBits(split), pieces: n,
    };
  }
  if (task === 'index') {
    const n = t.maxQueries(split);
    return { task, difficulty, split, answers: DIGITS, senders: 1, messages: 1, size: n, contentBits: n * Math.log2(DIGITS), neededBits: n * Math.log2(DIGITS) - selectionBits(split), pieces: n };
  }
  if (task === 'relay') {
    const L = t.maxQueries(split);
    return { task, difficulty, split, answers: LETTERS, senders: 1, messages: 2, size: L, contentBits: L * Math.log2(LETTERS), neededBits: L * Math.log2(LETTERS) - selectionBits(split), pieces: L };
  }
  // arith: operands in [0, 10^d) (train, heldout) or of exactly d + 1 digits (ood)
  const ops = split === 'ood' ? 9 * 10 ** difficulty : 10 ** difficulty;
  return { task, difficulty, split, answers: 2 * ops - 1, senders: 2, messages: 2, size: ops, contentBits: Math.log2(ops), neededBits: 2 * Math.log2(ops) - selectionBits(split), pieces: 2 };
}

export interface BudgetBound {
  task: TaskName;
  difficulty: number;
  split: Split;
  /** Tokens per message (per sender; per hop for relay). */
  budget: number;
  vocab: number;
  /** Bits one message can carry: log2 sum_{l<=B} V^l. */
  messageBits: number;
  /** Entropy (bits) about the answer no message of this budget can remove. */
  missingBits: number;
  /** The best accuracy any protocol of this budget can reach (Fano), or the exact optimum. */
  ceiling: number;
  /** True where ceiling is the exact optimum (the message can name the whole content: 1). */
  exact: boolean;
  /** index and relay: the Hamming-sphere ceiling (header), at most Fano's; absent for other tasks. */
  sphere?: number;
  /** The receiver alone (best constant message). */
  floor: number;
}

const floors = new Map<string, number>();

/** Accuracy of the receiver alone: sum_q P(q) max_y P(y | q), counted over the split's episodes where
 * Task.enumerate lists them, else over the distribution (distributionFloor). Cached: a listing is long. */
export function constantFloor(task: TaskName, difficulty: number, split: Split): number {
  const key = `${task}/${difficulty}/${split}`;
  if (!floors.has(key)) floors.set(key, countFloor(task, difficulty, split));
  return floors.get(key)!;
}

function countFloor(task: TaskName, difficulty: number, split: Split): number {
  const listed = makeTask(task, difficulty).enumerate(split, new Rng(1));
  if (listed) {
    // the final part is the question; count the likeliest answer per question
    const counts = new Map<string, Map<string, number>>();
    for (const ep of listed) {
      const q = ep.parts[ep.parts.length - 1];
      const m = counts.get(q) ?? new Map<string, number>();
      m.set(ep.answer, (m.get(ep.answer) ?? 0) + 1);
      counts.set(q, m);
    }
    let hit = 0;
    for (const m of counts.values()) hit += Math.max(...m.values());
    return hit / listed.length;
  }
  return distributionFloor(task, difficulty, split);
}

/** The floor over the task's whole distribution of a split's shape (before the split's selection of contents). */
export function distributionFloor(task: TaskName, difficulty: number, split: Split): number {
  const s = shapeOf(task, difficulty, split);
  if (task === 'lookup' || task === 'relay' || task === 'index') {
    // the asked value (letter, digit) is one uniform draw, independent of the key (position) asked
    const p = new Array<number>(s.answers).fill(1 / s.answers);
    return Math.max(...p);
  }
  // arith: for each operator (equally likely) the likeliest result; the pairs giving result r are
  // counted per r (a in [lo, hi] with b = r - a, or b = a - r, also in [lo, hi])
  const lo = split === 'ood' ? 10 ** difficulty : 0;
  const hi = lo + s.size - 1;
  let best = 0;
  for (const op of ['+', '-'] as const) {
    let top = 0;
    const [min, max] = op === '+' ? [2 * lo, 2 * hi] : [lo - hi, hi - lo];
    for (let r = min; r <= max; r++) {
      const [aLo, aHi] = op === '+' ? [Math.max(lo, r - hi), Math.min(hi, r - lo)] : [Math.max(lo, r + lo), Math.min(hi, r + hi)];
      top = Math.max(top, aHi - aLo + 1);
    }
    best += 0.5 * (top / (s.size * s.size));
  }
  return best;
}

/** The ceiling when each sender's message carries at most C bits (any channel: a latent one measured in bits too). */
export function ceilingAtBits(task: TaskName, difficulty: number, split: Split, C: number): { ceiling: number; exact: boolean; missingBits: number } {
  const s = shapeOf(task, difficulty, split);
  const missingBits = Math.max(0, (s.neededBits - s.senders * C) / s.pieces);
  const exact = C >= s.contentBits - 1e-9;
  return { ceiling: exact ? 1 : fanoAccuracy(missingBits, s.answers), exact, missingBits };
}

/** Strings of n symbols from q within Hamming distance r of a given one: sum_{j<=r} C(n, j) (q - 1)^j. */
export function hammingBall(q: number, n: number, r: number): number {
  let sum = 0;
  let choose = 1;
  for (let j = 0; j <= Math.min(r, n); j++) {
    sum += choose * (q - 1) ** j;
    choose = (choose * (n - j)) / (j + 1);
  }
  return sum;
}

/**
 * The Hamming-sphere ceiling (header): the best accuracy any protocol of `messages` distinct messages
 * can reach when the receiver asks one uniform position of a string of n symbols from q, drawn uniformly
 * from `contents` strings.
 */
export function sphereCeiling(q: number, n: number, messages: number, contents: number): number {
  if (!Number.isInteger(q) || q < 2 || !Number.isInteger(n) || n < 1) throw new Error(`bounds: a string of ${n} symbols from ${q} is not one the sphere ceiling covers`);
  if (!(messages >= 1) || !(contents >= 1)) throw new Error(`bounds: ${messages} messages over ${contents} contents`);
  let missed = 0;
  for (let r = 0; r < n; r++) missed += Math.max(0, 1 - (messages * hammingBall(q, n, r)) / contents);
  return 1 - missed / n;
}

/** The sphere ceiling of a task where it applies (index, relay) at C bits per message; undefined elsewhere. */
export function sphereAtBits(task: TaskName, difficulty: number, split: Split, C: number): number | undefined {
  if (task !== 'index' && task !== 'relay') return undefined;
  const s = shapeOf(task, difficulty, split);
  return sphereCeiling(s.answers, s.size, 2 ** C, 2 ** (s.contentBits - selectionBits(split)));
}

/** The ceiling and floor of one task, split and budget with a vocabulary of V tokens. */
export function budgetBound(task: TaskName, difficulty: number, split: Split, budget: number, vocab: number): BudgetBound {
  const C = messageBits(budget, vocab);
  const { ceiling, exact, missingBits } = ceilingAtBits(task, difficulty, split, C);
  const out: BudgetBound = { task, difficulty, split, budget, vocab, messageBits: C, missingBits, ceiling, exact, floor: constantFloor(task, difficulty, split) };
  const sphere = sphereAtBits(task, difficulty, split, C);
  if (sphere !== undefined) out.sphere = exact ? 1 : Math.min(sphere, ceiling);
  return out;
}

export interface ValuesOnly {
  /** Table entries. */
  entries: number;
  /** Expected cross-entropy (nats) of the answer for a receiver that knows the values but not the keys. */
  nats: number;
  /** The same per answer token with <eos> (as the runs' loss is reported). */
  natsPerToken: number;
  /** Accuracy of that receiver (= that of the 1-token message "the most frequent value"). */
  accuracy: number;
}

/** Lookup's values-only floor for a table of n entries (exact enumeration over every multiset of n digits). */
export function valuesOnly(n: number): ValuesOnly {
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new Error(`bounds: a lookup table of ${n} entries is outside 1..20`);
  const fact = [1];
  for (let i = 1; i <= n; i++) fact.push(fact[i - 1] * i);
  let nats = 0;
  let acc = 0;
  let total = 0;
  const counts: number[] = [];
  // every count vector over the 10 digits summing to n, with its multinomial probability n!/prod c! / 10^n
  const walk = (digit: number, left: number) => {
    if (digit === DIGITS - 1) {
      counts.push(left);
      let p = fact[n] / DIGITS ** n;
      for (const c of counts) p /= fact[c];
      let ce = 0;
      for (const c of counts) if (c) ce -= (c / n) * Math.log(c / n);
      nats += p * ce;
      acc += (p * Math.max(...counts)) / n;
      total += p;
      counts.pop();
      return;
    }
    for (let c = 0; c <= left; c++) {
      counts.push(c);
      walk(digit + 1, left - c);
      counts.pop();
    }
  };
  walk(0, n);
  if (Math.abs(total - 1) > 1e-9) throw new Error(`bounds: the multiset probabilities sum to ${total}, not 1`);
  return { entries: n, nats, natsPerToken: nats / 2, accuracy: acc };
}

/** Everything a report carries about what its messages could hold. */
export interface ReportBounds {
  task: TaskName;
  difficulty: number;
  vocab: number;
  /** At the text budget and at the latent positions per sender (as that many tokens would carry). */
  rows: (BudgetBound & { basis: 'text budget' | 'latent positions' })[];
  /** Lookup only: the values-only floor per split. */
  valuesOnly?: Partial<Record<Split, ValuesOnly>>;
}

/**
 * The bounds of an experiment: its text budget and, where latent senders run m steps, m as a token
 * budget (a latent position holds floats, not a token: beside it, the bound says what m tokens could).
 */
export function reportBounds(task: TaskName, difficulty: number, vocab: number, textBudget: number, latentSteps: readonly number[], splits: readonly Split[]): ReportBounds {
  const rows: ReportBounds['rows'] = [];
  for (const split of splits) {
    rows.push({ ...budgetBound(task, difficulty, split, textBudget, vocab), basis: 'text budget' });
    for (const m of [...new Set(latentSteps)].filter((x) => x > 0)) rows.push({ ...budgetBound(task, difficulty, split, m, vocab), basis: 'latent positions' });
  }
  const out: ReportBounds = { task, difficulty, vocab, rows };
  if (task === 'lookup') out.valuesOnly = Object.fromEntries(splits.map((s) => [s, valuesOnly(shapeOf(task, difficulty, s).size)]));
  return out;
}

const f3 = (x: number) => x.toFixed(3);

/** One bound in words: "B = 4 tokens (23.0 bits): any protocol <= 0.412 (Fano), the receiver alone 0.100". */
export function formatBound(b: BudgetBound & { basis?: string }): string {
  const what = b.basis === 'latent positions' ? `${b.budget} latent position${b.budget === 1 ? '' : 's'} as tokens` : `B = ${b.budget} token${b.budget === 1 ? '' : 's'}`;
  const bound = b.exact ? '= 1.000 (exact: the message can name the whole content)' : b.sphere !== undefined ? `<= ${f3(b.sphere)} (Hamming sphere; Fano ${f3(b.ceiling)})` : `<= ${f3(b.ceiling)} (Fano)`;
  return `${b.split}, ${what} (V = ${b.vocab}, ${b.messageBits.toFixed(1)} bits): any protocol ${bound}, the receiver alone ${f3(b.floor)}`;
}

/** The bounds as a Markdown table, with lookup's values-only floor below it. */
export function formatBounds(b: ReportBounds): string {
  const lines = [
    `| split | budget | bits (V = ${b.vocab}) | any protocol | receiver alone |`,
    '|---|---|---:|---:|---:|',
    ...b.rows.map((r) => `| ${r.split} | ${r.basis === 'latent positions' ? `${r.budget} latent positions as tokens` : `B = ${r.budget} tokens`} | ${r.messageBits.toFixed(1)} | ${r.exact ? '1.000 (exact)' : r.sphere !== undefined ? `<= ${f3(r.sphere)} (Hamming sphere; Fano ${f3(r.ceiling)})` : `<= ${f3(r.ceiling)} (Fano)`} | ${f3(r.floor)} |`),
  ];
  for (const [split, v] of Object.entries(b.valuesOnly ?? {})) {
    lines.push(`${split}: a message of the values without their keys (${v!.entries} entries) reaches ${f3(v!.accuracy)}, as does the 1-token message "the most frequent value"; its loss floor is ${f3(v!.nats)} nats per answer, ${f3(v!.natsPerToken)} per answer token with <eos>`);
  }
  return lines.join('\n');
}
