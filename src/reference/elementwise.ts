// CPU reference of the elementwise family (float64), as in shaders/elementwise.wgsl. Each backward
// gives the gradients of sum(dOut * out) with respect to every input, scalars included.

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  const c = new Float64Array(n);
  for (let i = 0; i < n; i++) c[i] = a[i] + b[i];
  return c;
}

export function addBackwardRef(dc: ArrayLike<number>, n: number): { da: Float64Array; db: Float64Array } {
  return { da: Float64Array.from({ length: n }, (_, i) => dc[i]), db: Float64Array.from({ length: n }, (_, i) => dc[i]) };
}

/** The new y: y + alpha * x. */
export function axpyRef(x: ArrayLike<number>, y: ArrayLike<number>, n: number, alpha: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = y[i] + alpha * x[i];
  return out;
}

export function axpyBackwardRef(
  dOut: ArrayLike<number>, x: ArrayLike<number>, n: number, alpha: number,
): { dx: Float64Array; dy: Float64Array; dalpha: number } {
  const dx = new Float64Array(n);
  const dy = new Float64Array(n);
  let dalpha = 0;
  for (let i = 0; i < n; i++) {
    dx[i] = alpha * dOut[i];
    dy[i] = dOut[i];
    dalpha += dOut[i] * x[i];
  }
  return { dx, dy, dalpha };
}

/** The new x: alpha * x. */
export function scaleRef(x: ArrayLike<number>, n: number, alpha: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = alpha * x[i];
  return out;
}

export function scaleBackwardRef(
  dOut: ArrayLike<number>, x: ArrayLike<number>, n: number, alpha: number,
): { dx: Float64Array; dalpha: number } {
  const dx = new Float64Array(n);
  let dalpha = 0;
  for (let i = 0; i < n; i++) {
    dx[i] = alpha * dOut[i];
    dalpha += dOut[i] * x[i];
  }
  return { dx, dalpha };
}

export function fillRef(n: number, value: number): Float64Array {
  return new Float64Array(n).fill(value);
}

/** fill's only input is the value: its gradient is sum(dOut). */
export function fillBackwardRef(dOut: ArrayLike<number>, n: number): { dvalue: number } {
  let dvalue = 0;
  for (let i = 0; i < n; i++) dvalue += dOut[i];
  return { dvalue };
}
