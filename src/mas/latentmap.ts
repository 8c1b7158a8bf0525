// The LatentMAS input map: a latent step feeds the last hidden state h (after the final norm, the
// input of lm_head) back as the next input embedding
//
//   u = h W_a,   e = u * (c / ||u||)
//
// W_a [D, D] (rows: hidden dims, columns: embedding dims) is the ridge regression from output space
// back to input space, W_a = (Wout^T Wout + lambda I)^-1 Wout^T Win with Wout = lm_head [V, D] and
// Win = the embedding [V, D] (so Wout[v] W_a ~ Win[v]: the hidden direction that emits token v maps to
// token v's embedding), or the identity. c is the mean L2 norm of the embedding rows: a latent input
// is as large as a token embedding. Computed once on the CPU in float64.
//
// On the GPU the rescaling is an RMSNorm with eps ~ 0 and a constant weight c / sqrt(D) (u / rms(u)
// * c / sqrt(D) = u c / ||u||), so its backward is the RMSNorm backward: no new kernel.
import type { ModelConfig } from '../model/config';

export type LatentMapKind = 'ridge' | 'identity';

export interface LatentMap {
  kind: LatentMapKind;
  D: number;
  /** [D, D] row-major, e_row = h_row W_a; null for the identity. */
  Wa: Float64Array | null;
  /** Mean L2 norm of the input-embedding rows (the target norm c). */
  targetNorm: number;
  /** The ridge strength used (0 for the identity). */
  lambda: number;
}

/** Ridge strength relative to the mean eigenvalue of Wout^T Wout (trace / D). */
export const RIDGE_RELATIVE_LAMBDA = 1e-3;
/** eps of the rescaling RMSNorm: keeps a zero vector finite, negligible otherwise. */
export const RESCALE_EPS = 1e-12;

/** Solves (A) X = B for symmetric positive definite A [n, n] and B [n, m] (Cholesky), float64. */
export function solveSpd(A: Float64Array, Bm: Float64Array, n: number, m: number): Float64Array {
  const Lm = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j];
      for (let k = 0; k < j; k++) s -= Lm[i * n + k] * Lm[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw new Error(`latent map: the ridge system is not positive definite (pivot ${i} = ${s})`);
        Lm[i * n + i] = Math.sqrt(s);
      } else Lm[i * n + j] = s / Lm[j * n + j];
    }
  }
  const X = Float64Array.from(Bm);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let s = X[i * m + c];
      for (let k = 0; k < i; k++) s -= Lm[i * n + k] * X[k * m + c];
      X[i * m + c] = s / Lm[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = X[i * m + c];
      for (let k = i + 1; k < n; k++) s -= Lm[k * n + i] * X[k * m + c];
      X[i * m + c] = s / Lm[i * n + i];
    }
  }
  return X;
}

/** Builds the map from the base model's weights (lm_head, or the embedding when tied). */
export function computeLatentMap(
  config: Pick<ModelConfig, 'hidden_size' | 'vocab_size' | 'tie_word_embeddings'>,
  weights: ReadonlyMap<string, ArrayLike<number>>,
  kind: LatentMapKind,
  relativeLambda = RIDGE_RELATIVE_LAMBDA,
): LatentMap {
  if (kind !== 'ridge' && kind !== 'identity') throw new Error(`latent map must be 'ridge' or 'identity', got ${JSON.stringify(kind)}`);
  const D = config.hidden_size;
  const V = config.vocab_size;
  const Win = weights.get('model.embed_tokens.weight');
  if (!Win || Win.length !== V * D) throw new Error(`latent map: model.embed_tokens.weight is missing or not [${V}, ${D}]`);
  const outName = config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const Wout = weights.get(outName);
  if (!Wout || Wout.length !== V * D) throw new Error(`latent map: ${outName} is missing or not [${V}, ${D}]`);
  let norm = 0;
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += Win[v * D + d] ** 2;
    norm += Math.sqrt(s);
  }
  const targetNorm = norm / V;
  if (!(targetNorm > 0)) throw new Error('latent map: the input embeddings are all zero');
  if (kind === 'identity') return { kind, D, Wa: null, targetNorm, lambda: 0 };
  if (!(relativeLambda > 0)) throw new Error(`latent map: the ridge strength must be positive, got ${relativeLambda}`);
  // G = Wout^T Wout + lambda I,  R = Wout^T Win
  const G = new Float64Array(D * D);
  const R = new Float64Array(D * D);
  for (let v = 0; v < V; v++) {
    for (let i = 0; i < D; i++) {
      const o = Wout[v * D + i];
      for (let j = 0; j < D; j++) {
        G[i * D + j] += o * Wout[v * D + j];
        R[i * D + j] += o * Win[v * D + j];
      }
    }
  }
  let trace = 0;
  for (let i = 0; i < D; i++) trace += G[i * D + i];
  const lambda = (relativeLambda * trace) / D;
  for (let i = 0; i < D; i++) G[i * D + i] += lambda;
  return { kind, D, Wa: solveSpd(G, R, D, D), targetNorm, lambda };
}

/** The map on the CPU (float64): e = (h W_a) c / ||h W_a|| for rows of h [rows, D]. Also returns u. */
export function applyLatentMap(map: LatentMap, h: ArrayLike<number>, rows: number): { e: Float64Array; u: Float64Array } {
  const D = map.D;
  const u = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < D; j++) {
      if (!map.Wa) u[r * D + j] = h[r * D + j];
      else {
        let s = 0;
        for (let i = 0; i < D; i++) s += h[r * D + i] * map.Wa[i * D + j];
        u[r * D + j] = s;
      }
    }
  }
  const e = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < D; j++) ss += u[r * D + j] ** 2;
    const k = map.targetNorm / Math.sqrt(ss / D + RESCALE_EPS) / Math.sqrt(D);
    for (let j = 0; j < D; j++) e[r * D + j] = u[r * D + j] * k;
  }
  return { e, u };
}

/** Backward of applyLatentMap on the CPU: dh from de (rows of [rows, D]), given the forward's u. */
export function latentMapBackward(map: LatentMap, u: ArrayLike<number>, de: ArrayLike<number>, rows: number): Float64Array {
  const D = map.D;
  const du = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    // e = u * w * rrms with rrms = (mean(u^2) + eps)^-1/2 and w = c / sqrt(D):
    // du = w rrms de - u w rrms^3 mean(u * de)
    let ss = 0;
    let dot = 0;
    for (let j = 0; j < D; j++) {
      ss += u[r * D + j] ** 2;
      dot += u[r * D + j] * de[r * D + j];
    }
    const rrms = 1 / Math.sqrt(ss / D + RESCALE_EPS);
    const w = map.targetNorm / Math.sqrt(D);
    for (let j = 0; j < D; j++) du[r * D + j] = w * rrms * de[r * D + j] - u[r * D + j] * w * rrms ** 3 * (dot / D);
  }
  if (!map.Wa) return du;
  const dh = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < D; i++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += du[r * D + j] * map.Wa[i * D + j];
      dh[r * D + i] = s;
    }
  }
  return dh;
}
