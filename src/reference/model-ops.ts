// CPU reference of the Llama ops, float64, llm.c style: every op is a `fooForward` / `fooBackward`
// pair with the same argument order. Backward functions ADD into the gradient buffers they are given
// (activation and parameter gradients alike), so callers zero them once and let paths accumulate.
// Layouts and conventions: docs/engine.md. Rows are t = b*S + s; T = B*S.

import { ropeInvFreq, type RopeScaling } from './rope';

type Arr = ArrayLike<number>;

function need(cond: boolean, msg: () => string): void {
  if (!cond) throw new Error(msg());
}

function checkLen(op: string, name: string, a: Arr, n: number): void {
  need(a.length === n, () => `${op}: ${name} has ${a.length} values, needs ${n}`);
}

// ---------------------------------------------------------------------------------------------
// Bias of a Linear: y [T, N] += b [N] on every row (in place). Saves nothing.
export function biasForward(y: Float64Array, b: Arr, T: number, N: number): void {
  checkLen('biasForward', 'y', y, T * N);
  checkLen('biasForward', 'b', b, N);
  for (let t = 0; t < T; t++) for (let j = 0; j < N; j++) y[t * N + j] += b[j];
}

/** db [N] += sum over rows of dy [T, N] (dx is unchanged by a bias). */
export function biasBackward(db: Float64Array, dy: Arr, T: number, N: number): void {
  checkLen('biasBackward', 'db', db, N);
  checkLen('biasBackward', 'dy', dy, T * N);
  for (let t = 0; t < T; t++) for (let j = 0; j < N; j++) db[j] += dy[t * N + j];
}

// ---------------------------------------------------------------------------------------------
// Embedding: out [T, D] = W[ids[t]] with W [V, D]. Saves nothing (ids are the input).
export function embeddingForward(W: Arr, ids: Arr, T: number, V: number, D: number): Float64Array {
  checkLen('embeddingForward', 'W', W, V * D);
  checkLen('embeddingForward', 'ids', ids, T);
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    need(Number.isInteger(id) && id >= 0 && id < V, () => `embeddingForward: ids[${t}] = ${id} is not in [0, ${V})`);
    for (let d = 0; d < D; d++) out[t * D + d] = W[id * D + d];
  }
  return out;
}

/** dW [V, D] += sum over rows t with ids[t] = v of dOut[t]. */
export function embeddingBackward(dW: Float64Array, dOut: Arr, ids: Arr, T: number, V: number, D: number): void {
  checkLen('embeddingBackward', 'dW', dW, V * D);
  checkLen('embeddingBackward', 'dOut', dOut, T * D);
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    for (let d = 0; d < D; d++) dW[id * D + d] += dOut[t * D + d];
  }
}

// ---------------------------------------------------------------------------------------------
// RMSNorm over rows of x [T, D]: y = x * rrms * w, rrms = 1/sqrt(mean(x^2) + eps). Saves rrms [T].
export function rmsnormForward(
  x: Arr, w: Arr, T: number, D: number, eps: number,
): { y: Float64Array; rrms: Float64Array } {
  checkLen('rmsnormForward', 'x', x, T * D);
  checkLen('rmsnormForward', 'w', w, D);
  const y = new Float64Array(T * D);
  const rrms = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[t * D + d] * x[t * D + d];
    const r = 1 / Math.sqrt(ss / D + eps);
    rrms[t] = r;
    for (let d = 0; d < D; d++) y[t * D + d] = x[t * D + d] * r * w[d];
  }
  return { y, rrms };
}

/** dx [T, D] += dL/dx; dw [D] += dL/dw. dx_j = r w_j dy_j - (r^3 / D) x_j sum_i dy_i w_i x_i. */
export function rmsnormBackward(
  dx: Float64Array, dw: Float64Array, dy: Arr, x: Arr, w: Arr, rrms: Arr, T: number, D: number,
): void {
  checkLen('rmsnormBackward', 'dx', dx, T * D);
  checkLen('rmsnormBackward', 'dw', dw, D);
  checkLen('rmsnormBackward', 'dy', dy, T * D);
  for (let t = 0; t < T; t++) {
    const r = rrms[t];
    let dot = 0;
    for (let d = 0; d < D; d++) {
      const i = t * D + d;
      dot += dy[i] * w[d] * x[i];
      dw[d] += dy[i] * x[i] * r;
    }
    const c = (r * r * r * dot) / D;
    for (let d = 0; d < D; d++) {
      const i = t * D + d;
      dx[i] += r * w[d] * dy[i] - c * x[i];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Linear without bias: y [T, out] = x [T, in] W^T, W (out, in). Saves nothing (x is the input).
export function linearForward(x: Arr, W: Arr, T: number, inF: number, outF: number): Float64Array {
  checkLen('linearForward', 'x', x, T * inF);
  checkLen('linearForward', 'W', W, outF * inF);
  const y = new Float64Array(T * outF);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += x[t * inF + i] * W[o * inF + i];
      y[t * outF + o] = s;
    }
  }
  return y;
}

/** dx [T, in] += dY W; dW (out, in) += dY^T x. */
export function linearBackward(
  dx: Float64Array, dW: Float64Array, dy: Arr, x: Arr, W: Arr, T: number, inF: number, outF: number,
): void {
  checkLen('linearBackward', 'dx', dx, T * inF);
  checkLen('linearBackward', 'dW', dW, outF * inF);
  checkLen('linearBackward', 'dy', dy, T * outF);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outF; o++) {
      const g = dy[t * outF + o];
      if (g === 0) continue;
      for (let i = 0; i < inF; i++) {
        dx[t * inF + i] += g * W[o * inF + i];
        dW[o * inF + i] += g * x[t * inF + i];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// LoRA branch of a Linear: y [T, out] += s (x A^T) B^T with A (r, in), B (out, r), s = alpha / r.
// Adds into y in place and returns u = x A^T [T, r], which the backward needs.
export function loraForward(
  y: Float64Array, x: Arr, A: Arr, B: Arr, T: number, inF: number, outF: number, r: number, s: number,
): Float64Array {
  checkLen('loraForward', 'y', y, T * outF);
  checkLen('loraForward', 'A', A, r * inF);
  checkLen('loraForward', 'B', B, outF * r);
  const u = linearForward(x, A, T, inF, r);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outF; o++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += u[t * r + k] * B[o * r + k];
      y[t * outF + o] += s * acc;
    }
  }
  return u;
}

/** dB += s dY^T u; du = s dY B; dA += du^T x; dx += du A. */
export function loraBackward(
  dx: Float64Array, dA: Float64Array, dB: Float64Array, dy: Arr, x: Arr, A: Arr, B: Arr, u: Arr,
  T: number, inF: number, outF: number, r: number, s: number,
): void {
  checkLen('loraBackward', 'dA', dA, r * inF);
  checkLen('loraBackward', 'dB', dB, outF * r);
  const du = new Float64Array(T * r);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outF; o++) {
      const g = s * dy[t * outF + o];
      if (g === 0) continue;
      for (let k = 0; k < r; k++) {
        dB[o * r + k] += g * u[t * r + k];
        du[t * r + k] += g * B[o * r + k];
      }
    }
  }
  linearBackward(dx, dA, du, x, A, T, inF, r);
}

// ---------------------------------------------------------------------------------------------
// RoPE, Hugging Face rotate-half, on x [T, H*hd]: position of row t is posOffset + (t mod S),
// angle = pos * inv_freq[i] (theta^(-2i/hd), Llama 3.x-scaled when given: ./rope.ts), x1 = x[i], x2 = x[i + hd/2]:
// x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin. Saves nothing (it is a rotation).
function ropeTables(S: number, hd: number, posOffset: number, theta: number, scaling?: RopeScaling | null): { cos: Float64Array; sin: Float64Array } {
  const half = hd / 2;
  const inv = ropeInvFreq(hd, theta, scaling);
  const cos = new Float64Array(S * half);
  const sin = new Float64Array(S * half);
  for (let s = 0; s < S; s++) {
    for (let i = 0; i < half; i++) {
      const a = (posOffset + s) * inv[i];
      cos[s * half + i] = Math.cos(a);
      sin[s * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

function ropeApply(
  x: Arr, T: number, S: number, H: number, hd: number, posOffset: number, theta: number, sign: 1 | -1, op: string, scaling?: RopeScaling | null,
): Float64Array {
  need(hd % 2 === 0, () => `${op}: head_dim must be even, got ${hd}`);
  need(T % S === 0, () => `${op}: T=${T} is not a multiple of S=${S}`);
  checkLen(op, 'x', x, T * H * hd);
  const half = hd / 2;
  const { cos, sin } = ropeTables(S, hd, posOffset, theta, scaling);
  const y = new Float64Array(T * H * hd);
  for (let t = 0; t < T; t++) {
    const s = t % S;
    for (let h = 0; h < H; h++) {
      const base = t * H * hd + h * hd;
      for (let i = 0; i < half; i++) {
        const c = cos[s * half + i];
        const sn = sign * sin[s * half + i];
        const x1 = x[base + i];
        const x2 = x[base + i + half];
        y[base + i] = x1 * c - x2 * sn;
        y[base + i + half] = x2 * c + x1 * sn;
      }
    }
  }
  return y;
}

export function ropeForward(
  x: Arr, T: number, S: number, H: number, hd: number, posOffset: number, theta: number, scaling?: RopeScaling | null,
): Float64Array {
  return ropeApply(x, T, S, H, hd, posOffset, theta, 1, 'ropeForward', scaling);
}

/** dx += R^T dy: the rotation by the opposite angle. */
export function ropeBackward(
  dx: Float64Array, dy: Arr, T: number, S: number, H: number, hd: number, posOffset: number, theta: number, scaling?: RopeScaling | null,
): void {
  checkLen('ropeBackward', 'dx', dx, T * H * hd);
  const g = ropeApply(dy, T, S, H, hd, posOffset, theta, -1, 'ropeBackward', scaling);
  for (let i = 0; i < g.length; i++) dx[i] += g[i];
}

// ---------------------------------------------------------------------------------------------
// Causal grouped-query attention with a foreign prefix.
// q [T, Hq*hd], k/v [T, Hkv*hd] (k already rotated), pastK/pastV [B, P, Hkv*hd] (keys rotated at
// their own positions). Query head h reads kv head floor(h / (Hq/Hkv)). Query row s of sequence b
// attends over the P prefix positions, then over its own keys 0..s; scale 1/sqrt(hd).
// Returns out [T, Hq*hd] and saves probs [B, Hq, S, P+S] (masked entries 0): key index n < P is
// prefix position n, n >= P is own position n - P.
export interface AttentionDims { B: number; S: number; P: number; Hq: number; Hkv: number; hd: number }

function checkAttention(op: string, q: Arr, k: Arr, v: Arr, pastK: Arr | null, pastV: Arr | null, d: AttentionDims): void {
  const { B, S, P, Hq, Hkv, hd } = d;
  need(Hkv > 0 && Hq % Hkv === 0, () => `${op}: num_attention_heads=${Hq} is not a multiple of num_key_value_heads=${Hkv}`);
  checkLen(op, 'q', q, B * S * Hq * hd);
  checkLen(op, 'k', k, B * S * Hkv * hd);
  checkLen(op, 'v', v, B * S * Hkv * hd);
  if (P > 0) {
    need(pastK !== null && pastV !== null, () => `${op}: P=${P} but no prefix keys/values were given`);
    checkLen(op, 'pastK', pastK!, B * P * Hkv * hd);
    checkLen(op, 'pastV', pastV!, B * P * Hkv * hd);
  }
}

export function attentionForward(
  q: Arr, k: Arr, v: Arr, pastK: Arr | null, pastV: Arr | null, dims: AttentionDims,
): { out: Float64Array; probs: Float64Array } {
  checkAttention('attentionForward', q, k, v, pastK, pastV, dims);
  const { B, S, P, Hq, Hkv, hd } = dims;
  const N = P + S;
  const group = Hq / Hkv;
  const qDim = Hq * hd;
  const kvDim = Hkv * hd;
  const scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(B * S * qDim);
  const probs = new Float64Array(B * Hq * S * N);
  const sc = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      for (let s = 0; s < S; s++) {
        const qo = (b * S + s) * qDim + h * hd;
        const nKeys = P + s + 1;
        let mx = -Infinity;
        for (let n = 0; n < nKeys; n++) {
          const [K, ko] = n < P ? [pastK!, (b * P + n) * kvDim + kh * hd] : [k, (b * S + n - P) * kvDim + kh * hd];
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[qo + d] * K[ko + d];
          sc[n] = dot * scale;
          if (sc[n] > mx) mx = sc[n];
        }
        let sum = 0;
        for (let n = 0; n < nKeys; n++) {
          sc[n] = Math.exp(sc[n] - mx);
          sum += sc[n];
        }
        const po = ((b * Hq + h) * S + s) * N;
        for (let n = 0; n < nKeys; n++) {
          const p = sc[n] / sum;
          probs[po + n] = p;
          const [Vv, vo] = n < P ? [pastV!, (b * P + n) * kvDim + kh * hd] : [v, (b * S + n - P) * kvDim + kh * hd];
          for (let d = 0; d < hd; d++) out[qo + d] += p * Vv[vo + d];
        }
      }
    }
  }
  return { out, probs };
}

/** Adds into dq [T, Hq*hd], dk/dv [T, Hkv*hd] and dPastK/dPastV [B, P, Hkv*hd] (ignored when P = 0). */
export function attentionBackward(
  dq: Float64Array, dk: Float64Array, dv: Float64Array, dPastK: Float64Array | null, dPastV: Float64Array | null,
  dout: Arr, q: Arr, k: Arr, v: Arr, pastK: Arr | null, pastV: Arr | null, probs: Arr, dims: AttentionDims,
): void {
  checkAttention('attentionBackward', q, k, v, pastK, pastV, dims);
  const { B, S, P, Hq, Hkv, hd } = dims;
  const N = P + S;
  const group = Hq / Hkv;
  const qDim = Hq * hd;
  const kvDim = Hkv * hd;
  const scale = 1 / Math.sqrt(hd);
  checkLen('attentionBackward', 'dout', dout, B * S * qDim);
  checkLen('attentionBackward', 'dq', dq, B * S * qDim);
  checkLen('attentionBackward', 'dk', dk, B * S * kvDim);
  checkLen('attentionBackward', 'dv', dv, B * S * kvDim);
  if (P > 0) {
    need(dPastK !== null && dPastV !== null, () => `attentionBackward: P=${P} but no dPastK/dPastV buffers`);
    checkLen('attentionBackward', 'dPastK', dPastK!, B * P * kvDim);
    checkLen('attentionBackward', 'dPastV', dPastV!, B * P * kvDim);
  }
  const dp = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      for (let s = 0; s < S; s++) {
        const qo = (b * S + s) * qDim + h * hd;
        const po = ((b * Hq + h) * S + s) * N;
        const nKeys = P + s + 1;
        // dp_n = dout . v_n; dv_n += p_n dout
        let dsum = 0;
        for (let n = 0; n < nKeys; n++) {
          const p = probs[po + n];
          const past = n < P;
          const Vv = past ? pastV! : v;
          const dV = past ? dPastV! : dv;
          const vo = past ? (b * P + n) * kvDim + kh * hd : (b * S + n - P) * kvDim + kh * hd;
          let dot = 0;
          for (let d = 0; d < hd; d++) {
            dot += dout[qo + d] * Vv[vo + d];
            dV[vo + d] += p * dout[qo + d];
          }
          dp[n] = dot;
          dsum += p * dot;
        }
        // softmax backward: dscore_n = p_n (dp_n - sum_m p_m dp_m); scores = scale q . k_n
        for (let n = 0; n < nKeys; n++) {
          const ds = probs[po + n] * (dp[n] - dsum) * scale;
          const past = n < P;
          const K = past ? pastK! : k;
          const dK = past ? dPastK! : dk;
          const ko = past ? (b * P + n) * kvDim + kh * hd : (b * S + n - P) * kvDim + kh * hd;
          for (let d = 0; d < hd; d++) {
            dq[qo + d] += ds * K[ko + d];
            dK[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: h = silu(g) * u elementwise, silu(z) = z sigmoid(z). Saves nothing beyond g and u.
export function swigluForward(g: Arr, u: Arr): Float64Array {
  checkLen('swigluForward', 'u', u, g.length);
  const h = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const z = g[i];
    h[i] = (z / (1 + Math.exp(-z))) * u[i];
  }
  return h;
}

/** dg += dh u silu'(g), silu'(z) = sig(z) (1 + z (1 - sig(z))); du += dh silu(g). */
export function swigluBackward(dg: Float64Array, du: Float64Array, dh: Arr, g: Arr, u: Arr): void {
  checkLen('swigluBackward', 'dh', dh, g.length);
  checkLen('swigluBackward', 'dg', dg, g.length);
  checkLen('swigluBackward', 'du', du, g.length);
  for (let i = 0; i < g.length; i++) {
    const z = g[i];
    const sg = 1 / (1 + Math.exp(-z));
    dg[i] += dh[i] * u[i] * sg * (1 + z * (1 - sg));
    du[i] += dh[i] * z * sg;
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy over logits [T, V] with u32 targets [T]; IGNORE_INDEX rows are skipped.
// loss = mean over the `count` non-ignored rows of (logsumexp(row) - row[target]); 0 when count = 0.
export const IGNORE_INDEX = 0xffffffff;

export function crossEntropyForward(logits: Arr, targets: Arr, T: number, V: number): { loss: number; count: number } {
  checkLen('crossEntropyForward', 'logits', logits, T * V);
  checkLen('crossEntropyForward', 'targets', targets, T);
  let total = 0;
  let count = 0;
  for (let t = 0; t < T; t++) {
    const y = targets[t];
    if (y === IGNORE_INDEX) continue;
    need(Number.isInteger(y) && y >= 0 && y < V, () => `crossEntropyForward: targets[${t}] = ${y} is not in [0, ${V}) nor the ignore label`);
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[t * V + j]);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[t * V + j] - mx);
    total += mx + Math.log(sum) - logits[t * V + y];
    count++;
  }
  return { loss: count > 0 ? total / count : 0, count };
}

/** dlogits += scale * (softmax - onehot) / count on non-ignored rows (0 on ignored rows). */
export function crossEntropyBackward(
  dlogits: Float64Array, logits: Arr, targets: Arr, T: number, V: number, scale = 1,
): void {
  checkLen('crossEntropyBackward', 'dlogits', dlogits, T * V);
  let count = 0;
  for (let t = 0; t < T; t++) if (targets[t] !== IGNORE_INDEX) count++;
  if (count === 0) return;
  for (let t = 0; t < T; t++) {
    const y = targets[t];
    if (y === IGNORE_INDEX) continue;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[t * V + j]);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[t * V + j] - mx);
    for (let j = 0; j < V; j++) {
      const p = Math.exp(logits[t * V + j] - mx) / sum;
      dlogits[t * V + j] += (scale * (p - (j === y ? 1 : 0))) / count;
    }
  }
}
