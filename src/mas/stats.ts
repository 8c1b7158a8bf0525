// Statistics of an experiment: how sure a method's accuracy and a paired difference between two
// methods are, from per-episode outcomes over several seeds. Plain TypeScript, no GPU, deterministic.
//
// THE SCHEME. An experiment evaluates every trained seed of every method on ONE evaluation set
// (RunConfig.evalSeed): its outcomes form a crossed seeds x episodes table of 0/1, and two methods
// share the episode axis. Two sources of variation decide what a repeat of the experiment would
// show: which training run a seed gives (seed axis) and which episodes the set happens to hold
// (episode axis). A bootstrap that resamples only one of them ignores the other: over 3 seeds, seeds
// alone call 0.34 / 0.34 / 0.35 exact; episodes alone ignore that another seed lands elsewhere. For a
// crossed design the standard answer is to resample both axes independently with replacement (the
// "pigeonhole" bootstrap of Owen, Ann. Appl. Stat. 2007), which is mildly conservative. For a
// difference A - B the episode indices of a replicate are drawn ONCE and used by both methods: that
// is the pairing, it cancels how hard each episode is, the main source of noise between methods on
// the same set; the seeds of A and of B are independent training runs and are resampled apart. Each
// replicate's statistic is a mean of 0/1 (or a difference of two), so the percentile interval lies
// inside [0, 1] (or [-1, 1]) by construction, never beyond the scale.
//
// Limits, stated where they are used: below MIN_SEEDS seeds a seed resample has too few distinct
// draws to say anything (2 seeds: 3 multisets), so no interval is given at all; with 3-5 seeds the
// percentile interval still undercovers somewhat (the seed variance is scaled by (n-1)/n). Where the
// seeds split into modes (a gap in the sorted per-seed accuracies above MODE_GAP) a mean and interval
// describe neither mode: we say "k of n seeds reach >= x" instead.
//
// A report without per-episode outcomes (written before they existed, when every seed drew its own
// episodes) falls back to the seed axis alone: a bootstrap of the per-seed accuracies, unpaired.
// Each seed's accuracy there already holds its own episode noise, so the seed resample covers both.
import { Rng } from '../tasks/rng';

/** Fewest seeds for which an interval is given at all. */
export const MIN_SEEDS = 3;
/** Bootstrap replicates. */
export const REPLICATES = 4000;
/** Gap between consecutive sorted per-seed accuracies that splits the seeds into modes: a fifth of
 * the scale, over six binomial standard errors of one seed's accuracy at 256 episodes (<= 0.031). */
export const MODE_GAP = 0.2;
/** Seed of the bootstrap's stream: the same outcomes give the same interval. */
export const BOOT_SEED = 0x5eed19;

/** Per-seed outcomes of one method on one split: correct[s][e] is 0 or 1, episodes aligned across seeds. */
export type OutcomeTable = readonly (readonly number[] | Uint8Array)[];

/** Where seeds split into modes: k of n seeds reach at least `at` (the lowest accuracy above the widest gap). */
export interface Modes {
  k: number;
  n: number;
  at: number;
  /** The highest accuracy below the gap. */
  below: number;
}

export interface Interval {
  /** Point estimate: mean over seeds of each seed's accuracy (or of the difference of the means). */
  mean: number;
  /** 95% percentile interval; null below MIN_SEEDS seeds (on either side of a difference). */
  lo: number | null;
  hi: number | null;
  seeds: number;
  /** Episodes per seed (0 on the seeds-only fallback). */
  episodes: number;
  /** 'episodes': the seeds x episodes bootstrap; 'seeds': per-seed accuracies only (no outcomes). */
  basis: 'episodes' | 'seeds';
}

/** Parses a '0'/'1' outcome string (as reports store it) to 0/1 numbers; throws on any other character. */
export function parseOutcomes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 48 && c !== 49) throw new Error(`outcomes: character ${i} is ${JSON.stringify(s[i])}, expected '0' or '1'`);
    out[i] = c - 48;
  }
  return out;
}

/** 0/1 outcomes as the report's compact string. */
export function outcomeString(correct: readonly boolean[]): string {
  return correct.map((c) => (c ? '1' : '0')).join('');
}

const mean = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
};

/** The q-quantile of sorted values (linear interpolation between order statistics). */
function quantile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

function checkTable(t: OutcomeTable, what: string): number {
  if (!t.length) throw new Error(`${what}: no seeds`);
  const E = t[0].length;
  if (!E) throw new Error(`${what}: no episodes`);
  t.forEach((row, s) => {
    if (row.length !== E) throw new Error(`${what}: seed ${s} has ${row.length} episodes, seed 0 has ${E}: the outcomes are not aligned`);
    for (let e = 0; e < E; e++) if (row[e] !== 0 && row[e] !== 1) throw new Error(`${what}: seed ${s} episode ${e} is ${row[e]}, expected 0 or 1`);
  });
  return E;
}

/** Episode weights of one replicate: how often each of E indices is drawn in E draws with replacement. */
function episodeWeights(rng: Rng, E: number, w: Float64Array): void {
  w.fill(0);
  for (let i = 0; i < E; i++) w[Math.floor(rng.next() * E)]++;
}

/** The episodes each seed got right (indices), so a replicate sums only those. */
function rightEpisodes(t: OutcomeTable): Int32Array[] {
  return t.map((row) => {
    const idx: number[] = [];
    for (let e = 0; e < row.length; e++) if (row[e]) idx.push(e);
    return Int32Array.from(idx);
  });
}

/** Weighted accuracy of every seed under the episode weights (their sum is E). */
function seedAccuracies(right: Int32Array[], w: Float64Array, out: Float64Array): void {
  const E = w.length;
  for (let s = 0; s < right.length; s++) {
    const idx = right[s];
    let acc = 0;
    for (let i = 0; i < idx.length; i++) acc += w[idx[i]];
    out[s] = acc / E;
  }
}

/** Mean of n seed values drawn with replacement. */
function seedResample(rng: Rng, vals: Float64Array): number {
  const n = vals.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += vals[rng.int(0, n)];
  return s / n;
}

function percentile(stats: Float64Array): { lo: number; hi: number } {
  stats.sort();
  return { lo: quantile(stats, 0.025), hi: quantile(stats, 0.975) };
}

/** One method's accuracy over seeds x episodes, with its hierarchical bootstrap interval. */
export function accuracyInterval(t: OutcomeTable, opts: { replicates?: number; seed?: number } = {}): Interval {
  const E = checkTable(t, 'accuracy');
  const S = t.length;
  const point = mean(t.map((r) => mean(r)));
  if (S < MIN_SEEDS) return { mean: point, lo: null, hi: null, seeds: S, episodes: E, basis: 'episodes' };
  const R = opts.replicates ?? REPLICATES;
  const rng = new Rng(opts.seed ?? BOOT_SEED);
  const w = new Float64Array(E);
  const acc = new Float64Array(S);
  const stats = new Float64Array(R);
  const right = rightEpisodes(t);
  for (let r = 0; r < R; r++) {
    episodeWeights(rng, E, w);
    seedAccuracies(right, w, acc);
    stats[r] = seedResample(rng, acc);
  }
  return { mean: point, ...percentile(stats), seeds: S, episodes: E, basis: 'episodes' };
}

/**
 * The paired difference A - B of two methods evaluated on the same episodes: each replicate draws
 * the episode indices once for both, and the seeds of each apart.
 */
export function pairedDifference(a: OutcomeTable, b: OutcomeTable, opts: { replicates?: number; seed?: number } = {}): Interval {
  const E = checkTable(a, 'paired difference (A)');
  const Eb = checkTable(b, 'paired difference (B)');
  if (Eb !== E) throw new Error(`paired difference: A has ${E} episodes per seed and B ${Eb}: they were not evaluated on the same set`);
  const point = mean(a.map((r) => mean(r))) - mean(b.map((r) => mean(r)));
  const seeds = Math.min(a.length, b.length);
  if (seeds < MIN_SEEDS) return { mean: point, lo: null, hi: null, seeds, episodes: E, basis: 'episodes' };
  const R = opts.replicates ?? REPLICATES;
  const rng = new Rng(opts.seed ?? BOOT_SEED);
  const w = new Float64Array(E);
  const accA = new Float64Array(a.length);
  const accB = new Float64Array(b.length);
  const stats = new Float64Array(R);
  const rightA = rightEpisodes(a);
  const rightB = rightEpisodes(b);
  for (let r = 0; r < R; r++) {
    episodeWeights(rng, E, w);
    seedAccuracies(rightA, w, accA);
    seedAccuracies(rightB, w, accB);
    stats[r] = seedResample(rng, accA) - seedResample(rng, accB);
  }
  return { mean: point, ...percentile(stats), seeds, episodes: E, basis: 'episodes' };
}

/** Fallback without per-episode outcomes: a bootstrap of per-seed accuracies (one method). */
export function seedsInterval(accs: readonly number[], opts: { replicates?: number; seed?: number } = {}): Interval {
  if (!accs.length) throw new Error('accuracy: no seeds');
  const point = mean(accs);
  if (accs.length < MIN_SEEDS) return { mean: point, lo: null, hi: null, seeds: accs.length, episodes: 0, basis: 'seeds' };
  const R = opts.replicates ?? REPLICATES;
  const rng = new Rng(opts.seed ?? BOOT_SEED);
  const v = Float64Array.from(accs);
  const stats = new Float64Array(R);
  for (let r = 0; r < R; r++) stats[r] = seedResample(rng, v);
  return { mean: point, ...percentile(stats), seeds: accs.length, episodes: 0, basis: 'seeds' };
}

/** Fallback difference without per-episode outcomes: seeds of A and B resampled apart (unpaired). */
export function seedsDifference(a: readonly number[], b: readonly number[], opts: { replicates?: number; seed?: number } = {}): Interval {
  if (!a.length || !b.length) throw new Error('difference: a side has no seeds');
  const point = mean(a) - mean(b);
  const seeds = Math.min(a.length, b.length);
  if (seeds < MIN_SEEDS) return { mean: point, lo: null, hi: null, seeds, episodes: 0, basis: 'seeds' };
  const R = opts.replicates ?? REPLICATES;
  const rng = new Rng(opts.seed ?? BOOT_SEED);
  const va = Float64Array.from(a);
  const vb = Float64Array.from(b);
  const stats = new Float64Array(R);
  for (let r = 0; r < R; r++) stats[r] = seedResample(rng, va) - seedResample(rng, vb);
  return { mean: point, ...percentile(stats), seeds, episodes: 0, basis: 'seeds' };
}

/** Whether the per-seed accuracies split into modes: the widest gap between sorted values above MODE_GAP. */
export function detectModes(accs: readonly number[], gap = MODE_GAP): Modes | null {
  if (accs.length < 2) return null;
  const s = [...accs].sort((x, y) => x - y);
  let best = -1;
  let at = 0;
  for (let i = 1; i < s.length; i++) if (s[i] - s[i - 1] > best) [best, at] = [s[i] - s[i - 1], i];
  if (!(best > gap)) return null;
  return { k: s.length - at, n: s.length, at: s[at], below: s[at - 1] };
}

/** 'A beats B' iff the paired interval excludes 0: 'a', 'b', 'tie' (it holds 0), or 'no-interval'. */
export function verdictOf(d: Pick<Interval, 'lo' | 'hi'>): 'a' | 'b' | 'tie' | 'no-interval' {
  if (d.lo === null || d.hi === null) return 'no-interval';
  if (d.lo > 0) return 'a';
  if (d.hi < 0) return 'b';
  return 'tie';
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const signed = (x: number) => (x >= 0 ? '+' : '') + f3(x);

/** "0.436 [0.401, 0.470]", "2 seeds: no interval (mean 0.250)", or with modes "3 of 6 seeds reach >= 0.800 (the others <= 0.355)". */
export function formatAccuracy(iv: Interval, modes: Modes | null = null): string {
  if (modes) return `${modes.k} of ${modes.n} seeds reach >= ${f3(modes.at)} (the others <= ${f3(modes.below)})`;
  if (iv.lo === null || iv.hi === null) return `${iv.seeds} seed${iv.seeds === 1 ? '' : 's'}: no interval (mean ${f3(iv.mean)})`;
  return `${f3(iv.mean)} [${f3(iv.lo)}, ${f3(iv.hi)}]`;
}

/** "+0.040 [+0.012, +0.069]" or "+0.040 (2 seeds: no interval)". */
export function formatDifference(iv: Interval): string {
  if (iv.lo === null || iv.hi === null) return `${signed(iv.mean)} (${iv.seeds} seed${iv.seeds === 1 ? '' : 's'}: no interval)`;
  return `${signed(iv.mean)} [${signed(iv.lo)}, ${signed(iv.hi)}]`;
}
