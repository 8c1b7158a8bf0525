// The host-side arithmetic of the two evaluation controls that replace what a receiver reads through
// the latent channel (run.ts applies them to every received K/V prefix, rollout.ts reads the prefix
// back and writes the replacement before the receiver's passes run):
//
//   noise   every received prefix is replaced by Gaussian noise with the received K/V's own first and
//           second moments: per receiver, per layer, and separately for K and for V, the mean vector
//           and the full W x W covariance (W = Hkv * hd, the K/V width: 8..64 here) of the prefix
//           rows, pooled over every position of the prefix and every episode of the split's
//           evaluation set, measured on the uncontrolled traces (a forward pass of the whole set
//           before the controlled one). Each position of each episode is an independent draw
//           mean + L z (z standard normal, L L^T = covariance, a Cholesky factor that tolerates a
//           rank-deficient covariance). So the noise keeps the trace's scale, offset and feature
//           correlations and carries nothing about the episode.
//   rotate  the K and V of every received position are turned, head by head, by a random rotation:
//           per receiver, per layer, per K/V head, one hd x hd matrix drawn from the Haar measure on
//           SO(hd) (QR of a Gaussian matrix with the sign fix, then det +1), the same one for every
//           position and episode, and the same one for that head's K and its V. Rotating K and the
//           receiver's queries together would leave every attention score unchanged; here only the
//           received K/V turn, so the information is all there (an invertible map, norms and every
//           inner product between received keys, and between received values, are kept) but no
//           longer in the basis the receiver's queries and output projection read. One matrix for K
//           and V keeps it a single change of basis per head (the smallest perturbation of that
//           kind); independent ones would also decouple K from V, a second effect.
//
// Pure TypeScript in float64: no GPU, no DOM.
import { Rng } from '../tasks/rng';
import { derangement } from './data';

/** Running mean and covariance of rows of width W (float64, Welford's update: no cancellation when the mean is large next to the spread). */
export class Moments {
  n = 0;
  private readonly mu: Float64Array;
  /** Sum of (x - mean)(x - mean)^T so far, lower triangle of a row-major W x W. */
  private readonly m2: Float64Array;

  constructor(readonly W: number) {
    this.mu = new Float64Array(W);
    this.m2 = new Float64Array(W * W);
  }

  /** Adds `rows` rows of data (row-major [rows, W], starting at element `offset`). */
  add(data: ArrayLike<number>, rows: number, offset = 0): void {
    const W = this.W;
    const d = new Float64Array(W);
    for (let r = 0; r < rows; r++) {
      const o = offset + r * W;
      this.n++;
      for (let i = 0; i < W; i++) {
        d[i] = data[o + i] - this.mu[i];
        this.mu[i] += d[i] / this.n;
      }
      for (let i = 0; i < W; i++) {
        const after = data[o + i] - this.mu[i];
        const row = i * W;
        for (let j = 0; j <= i; j++) this.m2[row + j] += after * d[j];
      }
    }
  }

  mean(): Float64Array {
    if (this.n === 0) throw new Error('moments: no rows were added');
    return this.mu.slice();
  }

  /** The (biased, 1/n) covariance, symmetric W x W; 0 for a single row. */
  covariance(): Float64Array {
    if (this.n === 0) throw new Error('moments: no rows were added');
    const W = this.W;
    const c = new Float64Array(W * W);
    for (let i = 0; i < W; i++) {
      for (let j = 0; j <= i; j++) {
        const v = this.m2[i * W + j] / this.n;
        c[i * W + j] = v;
        c[j * W + i] = v;
      }
    }
    return c;
  }
}

/**
 * A lower-triangular L with L L^T = C for a symmetric positive semi-definite C (row-major n x n).
 * A pivot at or below a relative tolerance (a rank-deficient C: fewer rows than features, or a
 * constant feature) gets a zero column, which is exact for a PSD matrix; a clearly negative pivot
 * (not PSD) throws.
 */
export function choleskyPsd(C: ArrayLike<number>, n: number): Float64Array {
  const L = new Float64Array(n * n);
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(C[i * n + i]));
  const tol = 1e-12 * Math.max(scale, 1e-300) * n;
  for (let j = 0; j < n; j++) {
    let d = C[j * n + j];
    for (let k = 0; k < j; k++) d -= L[j * n + k] ** 2;
    if (d < -1e-6 * Math.max(scale, 1e-300) * n) throw new Error(`cholesky: the matrix is not positive semi-definite (pivot ${j} is ${d})`);
    if (d <= tol) continue; // zero column
    const ljj = Math.sqrt(d);
    L[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = C[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = s / ljj;
    }
  }
  return L;
}

/** Draws rows from N(mean, L L^T). */
export class GaussianRows {
  readonly W: number;
  readonly mean: Float64Array;
  readonly L: Float64Array;

  constructor(m: Moments) {
    this.W = m.W;
    this.mean = m.mean();
    this.L = choleskyPsd(m.covariance(), m.W);
  }

  /** Fills `rows` rows of out (row-major [rows, W] from element `offset`) with independent draws. */
  fill(out: Float32Array, rows: number, rng: Rng, offset = 0): void {
    const W = this.W;
    const z = new Float64Array(W);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < W; i++) z[i] = rng.normal();
      const o = offset + r * W;
      for (let i = 0; i < W; i++) {
        let s = this.mean[i];
        const row = i * W;
        for (let k = 0; k <= i; k++) s += this.L[row + k] * z[k];
        out[o + i] = s;
      }
    }
  }
}

/**
 * A random rotation of R^n, row-major n x n, Haar-distributed on SO(n): Q of the QR decomposition
 * of a matrix of standard normals, with R's diagonal made positive (Mezzadri's sign fix: without it
 * Q is not Haar), then, when det Q = -1, its last column negated.
 */
export function randomRotation(n: number, rng: Rng): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new Error(`randomRotation: n must be a positive integer, got ${n}`);
  // columns of G, orthonormalised by modified Gram-Schmidt (twice, for orthogonality to rounding):
  // this is the QR decomposition with R's diagonal positive, i.e. the sign fix built in.
  const cols: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.normal();
    for (let pass = 0; pass < 2; pass++) {
      for (const q of cols) {
        let d = 0;
        for (let i = 0; i < n; i++) d += q[i] * v[i];
        for (let i = 0; i < n; i++) v[i] -= d * q[i];
      }
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (!(norm > 1e-12)) throw new Error('randomRotation: a degenerate draw');
    for (let i = 0; i < n; i++) v[i] /= norm;
    cols.push(v);
  }
  const Q = new Float64Array(n * n);
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) Q[i * n + j] = cols[j][i];
  if (determinant(Q, n) < 0) for (let i = 0; i < n; i++) Q[i * n + n - 1] = -Q[i * n + n - 1];
  return Q;
}

/** Determinant by LU with partial pivoting (row-major n x n; the input is not changed). */
export function determinant(M: ArrayLike<number>, n: number): number {
  const a = Float64Array.from(M as ArrayLike<number>);
  let det = 1;
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i * n + k]) > Math.abs(a[p * n + k])) p = i;
    if (a[p * n + k] === 0) return 0;
    if (p !== k) {
      for (let j = 0; j < n; j++) [a[k * n + j], a[p * n + j]] = [a[p * n + j], a[k * n + j]];
      det = -det;
    }
    det *= a[k * n + k];
    for (let i = k + 1; i < n; i++) {
      const f = a[i * n + k] / a[k * n + k];
      for (let j = k; j < n; j++) a[i * n + j] -= f * a[k * n + j];
    }
  }
  return det;
}

/**
 * Rotates every head of every row in place: row r, head h (elements h*hd .. h*hd+hd-1 of a row of
 * width W = heads * hd) becomes Q_h x (x a column vector). rotations[h] is row-major hd x hd.
 */
export function rotateHeads(data: Float32Array, rows: number, W: number, hd: number, rotations: readonly Float64Array[]): void {
  if (W !== rotations.length * hd) throw new Error(`rotateHeads: width ${W} is not ${rotations.length} heads x ${hd}`);
  if (data.length < rows * W) throw new Error(`rotateHeads: ${data.length} values hold fewer than ${rows} rows of ${W}`);
  const x = new Float64Array(hd);
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < rotations.length; h++) {
      const o = r * W + h * hd;
      const Q = rotations[h];
      for (let i = 0; i < hd; i++) x[i] = data[o + i];
      for (let i = 0; i < hd; i++) {
        let s = 0;
        for (let j = 0; j < hd; j++) s += Q[i * hd + j] * x[j];
        data[o + i] = s;
      }
    }
  }
}

// permute  the latent positions of each sender's block in every received prefix change places by a
//          seeded permutation (a derangement of the m latent slots: every one moves; per receiver and
//          sender, the same for every layer, K and V, and episode; m = 1 leaves nothing to move, and the
//          control then equals the uncontrolled run). A key carries the RoPE rotation of the position
//          its sender wrote it at, and attention over a prefix is a sum over its positions, so moving
//          K and V rows alone would change nothing the receiver computes: the order of a prefix exists
//          only in its keys' rotations. So each moved key is turned from its old position's angles to
//          its new slot's (by (new - old) x inv_freq per rotate-half pair; a sender's latent steps sit
//          at consecutive positions), as if the sender had written its latent steps in that order.
//          Values have no rotation and only move. What survives is the set of latent vectors; what is
//          lost is which step wrote which.

/** A seeded permutation of m latent slots with no fixed point (m >= 2; [0] for m = 1): slot j receives the row of slot perm[j]. */
export function latentPermutation(m: number, rng: Rng): number[] {
  if (!Number.isInteger(m) || m < 1) throw new Error(`latentPermutation: m must be a positive integer, got ${m}`);
  if (m === 1) return [0];
  return derangement(m, rng);
}

/**
 * Permutes blocks of positions of a received prefix [B, P, W] (a new array): within each block
 * (offset, perm), slot j gets the row of slot perm[j]. invFreq (keys only): the RoPE frequencies of a
 * head (hd / 2 of them); each moved head vector is turned by (j - perm[j]) x invFreq[i] in its pair
 * (i, i + hd/2), the rotate-half convention. null (values): rows only move.
 */
export function permuteBlocks(
  values: Float32Array, B: number, P: number, W: number, hd: number,
  blocks: readonly { offset: number; perm: readonly number[] }[], invFreq: ArrayLike<number> | null,
): Float32Array {
  if (values.length < B * P * W) throw new Error(`permuteBlocks: ${values.length} values hold fewer than ${B} x ${P} rows of ${W}`);
  if (W % hd !== 0 || hd % 2 !== 0) throw new Error(`permuteBlocks: width ${W} is not whole heads of an even size ${hd}`);
  if (invFreq && invFreq.length !== hd / 2) throw new Error(`permuteBlocks: ${invFreq.length} frequencies for heads of ${hd}`);
  const out = values.slice();
  const half = hd / 2;
  for (const { offset, perm } of blocks) {
    const m = perm.length;
    if (offset < 0 || offset + m > P) throw new Error(`permuteBlocks: a block at ${offset} of ${m} positions leaves the prefix of ${P}`);
    if ([...perm].sort((a, b) => a - b).some((x, i) => x !== i)) throw new Error(`permuteBlocks: [${perm.join(', ')}] is not a permutation`);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < m; j++) {
        const src = (b * P + offset + perm[j]) * W;
        const dst = (b * P + offset + j) * W;
        const delta = j - perm[j];
        if (!invFreq || delta === 0) {
          for (let i = 0; i < W; i++) out[dst + i] = values[src + i];
          continue;
        }
        for (let i = 0; i < half; i++) {
          const a = delta * invFreq[i];
          const c = Math.cos(a);
          const s = Math.sin(a);
          for (let h = 0; h < W; h += hd) {
            const x1 = values[src + h + i];
            const x2 = values[src + h + i + half];
            out[dst + h + i] = x1 * c - x2 * s;
            out[dst + h + i + half] = x2 * c + x1 * s;
          }
        }
      }
    }
  }
  return out;
}
