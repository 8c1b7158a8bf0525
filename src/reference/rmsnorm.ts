// CPU reference of RMSNorm (float64). Layouts as in shaders/rmsnorm.wgsl: x, y [T, D], w [D], rrms [T].

export interface RmsnormForwardRef {
  y: Float64Array;
  rrms: Float64Array;
}

export interface RmsnormBackwardRef {
  dx: Float64Array;
  dw: Float64Array;
}

export function rmsnormRef(x: ArrayLike<number>, w: ArrayLike<number>, T: number, D: number, eps = 1e-5): RmsnormForwardRef {
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

/** Gradients of sum(dy * y) with respect to x and w (rrms recomputed from x). */
export function rmsnormBackwardRef(
  dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, T: number, D: number, eps = 1e-5,
): RmsnormBackwardRef {
  const { rrms } = rmsnormRef(x, w, T, D, eps);
  const dx = new Float64Array(T * D);
  const dw = new Float64Array(D);
  for (let t = 0; t < T; t++) {
    const r = rrms[t];
    let s = 0;
    for (let d = 0; d < D; d++) s += dy[t * D + d] * w[d] * x[t * D + d];
    const c = (r * r * r * s) / D;
    for (let d = 0; d < D; d++) {
      const i = t * D + d;
      dx[i] = r * w[d] * dy[i] - c * x[i];
      dw[d] += dy[i] * x[i] * r;
    }
  }
  return { dx, dw };
}
