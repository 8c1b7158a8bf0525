// CPU reference (float64) of causal GQA attention over a foreign prefix, as in docs/engine.md and
// shaders/attention.wgsl. q, o [B*S, Hq*hd]; k, v [B*S, Hkv*hd]; prefixK, prefixV [B, P, Hkv*hd].
// Query row s of sequence b attends over the P prefix keys of b, then over its own keys 0..s.
export interface AttentionDims {
  B: number;
  S: number;
  P: number;
  Hq: number;
  Hkv: number;
  hd: number;
}

export interface AttentionGrads {
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
  dprefixK: Float64Array;
  dprefixV: Float64Array;
}

/** Key/value row of column c (0..P-1 prefix, P.. own) for sequence b, kv head g: [array, offset]. */
function kvAt(
  own: ArrayLike<number>, prefix: ArrayLike<number>, d: AttentionDims, b: number, c: number, g: number,
): [ArrayLike<number>, number] {
  const w = d.Hkv * d.hd;
  return c < d.P ? [prefix, (b * d.P + c) * w + g * d.hd] : [own, (b * d.S + c - d.P) * w + g * d.hd];
}

function check(d: AttentionDims): void {
  if (d.Hq % d.Hkv !== 0) throw new Error(`attentionRef: Hq=${d.Hq} must be a multiple of Hkv=${d.Hkv}`);
}

/** Probabilities of query (b, h, s) over its P + s + 1 visible columns. */
function probs(
  q: ArrayLike<number>, k: ArrayLike<number>, prefixK: ArrayLike<number>, d: AttentionDims, b: number, h: number, s: number,
): { p: Float64Array; lse: number } {
  const { S, P, Hq, Hkv, hd } = d;
  const g = Math.floor(h / (Hq / Hkv));
  const scale = 1 / Math.sqrt(hd);
  const qo = ((b * S + s) * Hq + h) * hd;
  const n = P + s + 1;
  const x = new Float64Array(n);
  let m = -Infinity;
  for (let c = 0; c < n; c++) {
    const [arr, ko] = kvAt(k, prefixK, d, b, c, g);
    let dot = 0;
    for (let i = 0; i < hd; i++) dot += q[qo + i] * arr[ko + i];
    x[c] = dot * scale;
    m = Math.max(m, x[c]);
  }
  let sum = 0;
  for (let c = 0; c < n; c++) sum += Math.exp(x[c] - m);
  const lse = m + Math.log(sum);
  for (let c = 0; c < n; c++) x[c] = Math.exp(x[c] - lse);
  return { p: x, lse };
}

/** o = softmax(q k^T * scale over prefix + causal own keys) v. */
export function attentionRef(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  prefixK: ArrayLike<number>, prefixV: ArrayLike<number>, dims: AttentionDims,
): Float64Array {
  check(dims);
  const { B, S, Hq, Hkv, hd } = dims;
  const o = new Float64Array(B * S * Hq * hd);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      for (let s = 0; s < S; s++) {
        const { p } = probs(q, k, prefixK, dims, b, h, s);
        const oo = ((b * S + s) * Hq + h) * hd;
        for (let c = 0; c < p.length; c++) {
          const [arr, vo] = kvAt(v, prefixV, dims, b, c, g);
          for (let i = 0; i < hd; i++) o[oo + i] += p[c] * arr[vo + i];
        }
      }
    }
  }
  return o;
}

/** The log-sum-exp of the scaled scores per row, [B, Hq, S] (what the GPU forward saves). */
export function attentionLseRef(
  q: ArrayLike<number>, k: ArrayLike<number>, prefixK: ArrayLike<number>, dims: AttentionDims,
): Float64Array {
  check(dims);
  const { B, S, Hq } = dims;
  const lse = new Float64Array(B * Hq * S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      for (let s = 0; s < S; s++) lse[(b * Hq + h) * S + s] = probs(q, k, prefixK, dims, b, h, s).lse;
    }
  }
  return lse;
}

/** Gradients of sum(dO * o) with respect to q, k, v, prefixK, prefixV. */
export function attentionBackwardRef(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  prefixK: ArrayLike<number>, prefixV: ArrayLike<number>, dO: ArrayLike<number>, dims: AttentionDims,
): AttentionGrads {
  check(dims);
  const { B, S, P, Hq, Hkv, hd } = dims;
  const scale = 1 / Math.sqrt(hd);
  const dq = new Float64Array(B * S * Hq * hd);
  const dk = new Float64Array(B * S * Hkv * hd);
  const dv = new Float64Array(B * S * Hkv * hd);
  const dprefixK = new Float64Array(B * P * Hkv * hd);
  const dprefixV = new Float64Array(B * P * Hkv * hd);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      for (let s = 0; s < S; s++) {
        const { p } = probs(q, k, prefixK, dims, b, h, s);
        const qo = ((b * S + s) * Hq + h) * hd;
        // dp_c = dO . v_c; ds_c = p_c (dp_c - sum_c' p_c' dp_c')
        const dp = new Float64Array(p.length);
        let mean = 0;
        for (let c = 0; c < p.length; c++) {
          const [arr, vo] = kvAt(v, prefixV, dims, b, c, g);
          let x = 0;
          for (let i = 0; i < hd; i++) x += dO[qo + i] * arr[vo + i];
          dp[c] = x;
          mean += p[c] * x;
        }
        for (let c = 0; c < p.length; c++) {
          const ds = p[c] * (dp[c] - mean);
          const [karr, ko] = kvAt(k, prefixK, dims, b, c, g);
          const [dkArr, dko] = kvAt(dk, dprefixK, dims, b, c, g) as [Float64Array, number];
          const [dvArr, dvo] = kvAt(dv, dprefixV, dims, b, c, g) as [Float64Array, number];
          for (let i = 0; i < hd; i++) {
            dq[qo + i] += scale * ds * karr[ko + i];
            dkArr[dko + i] += scale * ds * q[qo + i];
            dvArr[dvo + i] += p[c] * dO[qo + i];
          }
        }
      }
    }
  }
  return { dq, dk, dv, dprefixK, dprefixV };
}
