// CPU reference of SwiGLU (float64): h = silu(g) * u on [T, F], as in shaders/swiglu.wgsl.

const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

export function swigluRef(g: ArrayLike<number>, u: ArrayLike<number>, T: number, F: number): Float64Array {
  const h = new Float64Array(T * F);
  for (let i = 0; i < T * F; i++) h[i] = g[i] * sigmoid(g[i]) * u[i];
  return h;
}

export interface SwigluBackwardRef {
  dg: Float64Array;
  du: Float64Array;
}

/** Gradients of sum(dh * h) with respect to g and u. */
export function swigluBackwardRef(
  dh: ArrayLike<number>, g: ArrayLike<number>, u: ArrayLike<number>, T: number, F: number,
): SwigluBackwardRef {
  const dg = new Float64Array(T * F);
  const du = new Float64Array(T * F);
  for (let i = 0; i < T * F; i++) {
    const s = sigmoid(g[i]);
    dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
    du[i] = dh[i] * g[i] * s;
  }
  return { dg, du };
}
