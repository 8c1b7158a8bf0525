// What a message holds: linear probes from received K/V vectors to the parts of the senders' content.
//
// Targets (probeTargets): every character of every sender-side part of an episode (every role but the
// final one), by slot: lookup 'key i' / 'value i' (table entry i, in the table's order), relay
// 'source letter i' (the secret) and 'relay letter i' (the relay's useless distractor: a message that
// holds it spent capacity on nothing), arith '<role> digit i' (the operand's characters from the left).
// A slot an episode does not have (a shorter operand) is the class '' (absent).
//
// The probe (fitProbe): closed-form ridge regression onto the targets' one-hot codes, one linear map
// per target, prediction = the class of the largest output. Features are standardised by the training
// rows' mean and standard deviation (a constant feature becomes 0), outputs centred on the training
// class frequencies (the intercept); W = (Xs^T Xs + lambda N I)^-1 Xs^T Yc, so lambda is per row and
// scale-free. lambda is chosen per target from LAMBDAS on a fold of the training rows (fit on the first
// 80%, score on the last 20%; the largest lambda among the best accuracies, i.e. the simplest map), then
// the map is refit on every training row with it and scored on the held-out rows.
// Chance per target: the held-out accuracy of always answering the training rows' most frequent class
// (beside it, 1 / the number of classes seen in training).
//
// Pure TypeScript in float64: no GPU, no DOM.
import type { Episode, Task } from '../tasks/tasks';

/** Ridge strengths tried (per training row, on standardised features). */
export const LAMBDAS: readonly number[] = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100];
/** Fraction of the training rows that selects lambda. */
export const FOLD_FRACTION = 0.2;

export interface ProbeTarget {
  /** e.g. 'key 1', 'value 2', 'source letter 3' */
  name: string;
  /** Index into Episode.contents (the role's part). */
  part: number;
  /** Character index in that content. */
  char: number;
}

/** The probe's targets for a task: every character slot of every non-final role's content, up to the longest in `episodes`. */
export function probeTargets(task: Task, episodes: readonly Episode[]): ProbeTarget[] {
  const out: ProbeTarget[] = [];
  task.roles.forEach((role, r) => {
    if (r === task.finalRole) return;
    const len = Math.max(0, ...episodes.map((ep) => ep.contents[role.part].length));
    for (let c = 0; c < len; c++) {
      let name: string;
      if (task.name === 'lookup') name = `${c % 2 === 0 ? 'key' : 'value'} ${Math.floor(c / 2) + 1}`;
      else if (task.name === 'relay') name = `${role.name} letter ${c + 1}`;
      else name = `${role.name} digit ${c + 1}`;
      out.push({ name, part: role.part, char: c });
    }
  });
  return out;
}

/** The class of a target in an episode: its character, or '' where the content is shorter. */
export function targetValue(t: ProbeTarget, ep: Episode): string {
  return ep.contents[t.part][t.char] ?? '';
}

/** Cholesky factor of a symmetric positive definite n x n (row-major, lower); throws when not SPD. */
function cholesky(A: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = A[j * n + j];
    for (let k = 0; k < j; k++) d -= L[j * n + k] ** 2;
    if (!(d > 0)) throw new Error(`probe: the ridge system is not positive definite (pivot ${j} is ${d})`);
    const ljj = Math.sqrt(d);
    L[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = A[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = s / ljj;
    }
  }
  return L;
}

/** Solves L L^T X = B for X (B row-major n x c, overwritten). */
function cholSolve(L: Float64Array, n: number, B: Float64Array, c: number): void {
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < i; k++) {
      const l = L[i * n + k];
      if (l !== 0) for (let j = 0; j < c; j++) B[i * c + j] -= l * B[k * c + j];
    }
    const d = L[i * n + i];
    for (let j = 0; j < c; j++) B[i * c + j] /= d;
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let k = i + 1; k < n; k++) {
      const l = L[k * n + i];
      if (l !== 0) for (let j = 0; j < c; j++) B[i * c + j] -= l * B[k * c + j];
    }
    const d = L[i * n + i];
    for (let j = 0; j < c; j++) B[i * c + j] /= d;
  }
}

/** Standardisation of F features by rows [0, n) of X (row-major [rows, F]). */
function standardiser(X: ArrayLike<number>, n: number, F: number): { mean: Float64Array; inv: Float64Array } {
  const mean = new Float64Array(F);
  const inv = new Float64Array(F);
  for (let i = 0; i < n; i++) for (let f = 0; f < F; f++) mean[f] += X[i * F + f];
  for (let f = 0; f < F; f++) mean[f] /= n;
  for (let i = 0; i < n; i++) for (let f = 0; f < F; f++) inv[f] += (X[i * F + f] - mean[f]) ** 2;
  for (let f = 0; f < F; f++) {
    const sd = Math.sqrt(inv[f] / n);
    // a feature constant on the training rows (to rounding) carries nothing: it becomes 0
    inv[f] = sd > 1e-12 * (Math.abs(mean[f]) + 1e-30) && sd > 0 ? 1 / sd : 0;
  }
  return { mean, inv };
}

/** One design: rows of features and, per target, each row's class index. */
interface Design {
  X: ArrayLike<number>;
  F: number;
  /** labels[t][row] */
  labels: readonly (readonly number[])[];
  classes: readonly number[];
}

/**
 * Ridge fits of every target over training rows `rows` at each lambda: returns, per lambda, a
 * predictor of (row of X) -> class per target. One Gram matrix and one factorisation per lambda serve
 * every target (their one-hot columns solved together).
 */
function fitAll(d: Design, rows: readonly number[], lambdas: readonly number[]): ((X: ArrayLike<number>, row: number) => number[])[] {
  const { F, labels, classes } = d;
  const n = rows.length;
  if (n < 2) throw new Error(`probe: ${n} training rows are too few to fit`);
  const sub = new Float64Array(n * F);
  rows.forEach((r, i) => {
    for (let f = 0; f < F; f++) sub[i * F + f] = d.X[r * F + f];
  });
  const { mean, inv } = standardiser(sub, n, F);
  for (let i = 0; i < n; i++) for (let f = 0; f < F; f++) sub[i * F + f] = (sub[i * F + f] - mean[f]) * inv[f];
  // centred one-hot outputs of every target side by side: C columns in all
  const offs: number[] = [];
  let C = 0;
  for (const c of classes) (offs.push(C), (C += c));
  const prior = new Float64Array(C);
  labels.forEach((lab, t) => rows.forEach((r) => (prior[offs[t] + lab[r]] += 1 / n)));
  const XtY = new Float64Array(F * C);
  const G = new Float64Array(F * F);
  for (let i = 0; i < n; i++) {
    const x = sub.subarray(i * F, i * F + F);
    for (let a = 0; a < F; a++) {
      if (x[a] === 0) continue;
      for (let b = 0; b <= a; b++) G[a * F + b] += x[a] * x[b];
      labels.forEach((lab, t) => {
        const o = offs[t];
        for (let k = 0; k < classes[t]; k++) XtY[a * C + o + k] += x[a] * ((lab[rows[i]] === k ? 1 : 0) - prior[o + k]);
      });
    }
  }
  for (let a = 0; a < F; a++) for (let b = 0; b < a; b++) G[b * F + a] = G[a * F + b];
  return lambdas.map((lambda) => {
    const A = G.slice();
    for (let a = 0; a < F; a++) A[a * F + a] += lambda * n;
    const Wt = XtY.slice();
    cholSolve(cholesky(A, F), F, Wt, C);
    return (X: ArrayLike<number>, row: number) => {
      const out = prior.slice();
      for (let a = 0; a < F; a++) {
        const x = (X[row * F + a] - mean[a]) * inv[a];
        if (x !== 0) for (let k = 0; k < C; k++) out[k] += x * Wt[a * C + k];
      }
      return classes.map((c, t) => {
        let best = 0;
        for (let k = 1; k < c; k++) if (out[offs[t] + k] > out[offs[t] + best]) best = k;
        return best;
      });
    };
  });
}

export interface ProbeFit {
  /** Per target: held-out accuracy of the probe. */
  accuracy: number[];
  /** Per target: the lambda the training fold chose. */
  lambda: number[];
}

/**
 * Fits one probe per target on training rows and scores it on held-out rows. X: row-major [N, F] with
 * the training rows first (trainRows of them), then the held-out ones. labels[t][row]: class index of
 * target t (0 .. classes[t] - 1), for every row.
 */
export function fitProbe(X: ArrayLike<number>, F: number, trainRows: number, labels: readonly (readonly number[])[], classes: readonly number[], lambdas: readonly number[] = LAMBDAS): ProbeFit {
  const N = X.length / F;
  if (!Number.isInteger(N) || N <= trainRows) throw new Error(`probe: ${X.length} values are not ${F}-wide rows with held-out rows after the ${trainRows} training ones`);
  if (labels.length !== classes.length) throw new Error('probe: one class count per target');
  for (const lab of labels) if (lab.length !== N) throw new Error(`probe: ${lab.length} labels for ${N} rows`);
  const d: Design = { X, F, labels, classes };
  const cut = Math.round(trainRows * (1 - FOLD_FRACTION));
  if (cut < 2 || cut >= trainRows) throw new Error(`probe: ${trainRows} training rows leave no fold to choose lambda`);
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  const fold = fitAll(d, range(0, cut), lambdas);
  const T = labels.length;
  const foldHits = lambdas.map(() => new Array<number>(T).fill(0));
  for (let r = cut; r < trainRows; r++) {
    fold.forEach((pred, li) => pred(X, r).forEach((k, t) => (foldHits[li][t] += k === labels[t][r] ? 1 : 0)));
  }
  const lambda = range(0, T).map((t) => {
    let best = 0;
    for (let li = 1; li < lambdas.length; li++) if (foldHits[li][t] >= foldHits[best][t]) best = li;
    return best;
  });
  const chosen = [...new Set(lambda)];
  const full = fitAll(d, range(0, trainRows), chosen.map((li) => lambdas[li]));
  const hits = new Array<number>(T).fill(0);
  for (let r = trainRows; r < N; r++) {
    const preds = full.map((p) => p(X, r));
    for (let t = 0; t < T; t++) hits[t] += preds[chosen.indexOf(lambda[t])][t] === labels[t][r] ? 1 : 0;
  }
  return { accuracy: hits.map((h) => h / (N - trainRows)), lambda: lambda.map((li) => lambdas[li]) };
}

/** Class indices of string labels, in first-seen order over the training rows (a class only seen held-out gets an index no probe predicts). */
export function encodeLabels(values: readonly string[], trainRows: number): { labels: number[]; classes: number; names: string[] } {
  const index = new Map<string, number>();
  for (let i = 0; i < trainRows; i++) if (!index.has(values[i])) index.set(values[i], index.size);
  const names = [...index.keys()];
  const classes = Math.max(1, index.size);
  let unseen = classes;
  const labels = values.map((v) => {
    const k = index.get(v);
    // a held-out class never seen in training: an index beyond every output, always wrong
    return k ?? unseen++;
  });
  return { labels, classes, names };
}

/** Held-out accuracy of always answering the training rows' most frequent class. */
export function majorityChance(labels: readonly number[], trainRows: number): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < trainRows; i++) counts.set(labels[i], (counts.get(labels[i]) ?? 0) + 1);
  let best = -1;
  let bestCount = -1;
  for (const [k, c] of counts) if (c > bestCount || (c === bestCount && k < best)) (best = k), (bestCount = c);
  const held = labels.length - trainRows;
  let hits = 0;
  for (let i = trainRows; i < labels.length; i++) hits += labels[i] === best ? 1 : 0;
  return held ? hits / held : NaN;
}
