// CPU reference of RoPE (float64), HF rotate-half convention as in docs/engine.md and shaders/rope.wgsl.
export interface RopeDims {
  /** Rows (B*S). */
  T: number;
  /** Heads per row. */
  H: number;
  /** Head size, even. */
  hd: number;
  /** Sequence length: row t has position posOffset + (t mod S). */
  S: number;
  posOffset?: number;
  theta?: number;
}

function rotate(x: ArrayLike<number>, d: RopeDims, sign: number): Float64Array {
  const { T, H, hd, S } = d;
  const posOffset = d.posOffset ?? 0;
  const theta = d.theta ?? 10000;
  if (hd % 2 !== 0) throw new Error(`ropeRef: head size hd must be even, got hd=${hd}`);
  const half = hd / 2;
  const out = new Float64Array(T * H * hd);
  for (let t = 0; t < T; t++) {
    const pos = posOffset + (t % S);
    for (let i = 0; i < half; i++) {
      const a = pos * Math.pow(theta, (-2 * i) / hd);
      const c = Math.cos(a);
      const s = sign * Math.sin(a);
      for (let h = 0; h < H; h++) {
        const i1 = (t * H + h) * hd + i;
        const i2 = i1 + half;
        out[i1] = x[i1] * c - x[i2] * s;
        out[i2] = x[i2] * c + x[i1] * s;
      }
    }
  }
  return out;
}

/** y = RoPE(x): x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin. */
export function ropeRef(x: ArrayLike<number>, dims: RopeDims): Float64Array {
  return rotate(x, dims, 1);
}

/** dx = RoPE^T(dy): the rotation by -angle. */
export function ropeBackwardRef(dy: ArrayLike<number>, dims: RopeDims): Float64Array {
  return rotate(dy, dims, -1);
}
