// CPU reference of the optimizer family (float64). Semantics as in shaders/optimizer.wgsl:
// torch.nn.utils.clip_grad_norm_ over all gradients (after multiplying them by gradScale), then
// torch.optim.AdamW (decoupled weight decay, bias-corrected moments).

export function sumSquaresRef(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** norm = gradScale * ||concat(grads)||; scale = min(1, maxNorm / (norm + 1e-6)), or 1 when maxNorm <= 0. */
export function clipScaleRef(
  grads: readonly ArrayLike<number>[], maxNorm: number, gradScale = 1,
): { norm: number; scale: number } {
  let total = 0;
  for (const g of grads) total += sumSquaresRef(g);
  const norm = gradScale * Math.sqrt(total);
  const scale = maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
  return { norm, scale };
}

export interface AdamWRefHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Multiplies the gradient (1/accumulation steps). */
  gradScale: number;
}

/**
 * One AdamW step `step` (from 1) with gradient grad * gradScale * clipScale. Returns the new
 * parameter and moments; the inputs are not modified.
 */
export function adamWRef(
  param: ArrayLike<number>, grad: ArrayLike<number>, m: ArrayLike<number>, v: ArrayLike<number>,
  h: AdamWRefHyper, step: number, clipScale = 1,
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const n = param.length;
  if (grad.length !== n || m.length !== n || v.length !== n) {
    throw new Error(`adamWRef: sizes differ: param ${n}, grad ${grad.length}, m ${m.length}, v ${v.length}`);
  }
  const out = { param: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  const bc1 = 1 - h.beta1 ** step;
  const bc2 = 1 - h.beta2 ** step;
  for (let i = 0; i < n; i++) {
    const g = grad[i] * h.gradScale * clipScale;
    const mi = h.beta1 * m[i] + (1 - h.beta1) * g;
    const vi = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    const p = param[i] * (1 - h.lr * h.weightDecay);
    out.m[i] = mi;
    out.v[i] = vi;
    out.param[i] = p - (h.lr / bc1) * mi / (Math.sqrt(vi) / Math.sqrt(bc2) + h.eps);
  }
  return out;
}
