// CPU reference of RoPE (float64), HF rotate-half convention as in docs/engine.md and shaders/rope.wgsl.

/**
 * Llama 3.x's frequency scaling (transformers' rope_type "llama3", modeling_rope_utils'
 * _compute_llama3_parameters): pairs whose wavelength is above original_max_position_embeddings /
 * low_freq_factor turn `factor` times slower, those below original / high_freq_factor are unchanged, and
 * the ones between are interpolated smoothly.
 */
export interface RopeScaling {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

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
  /** Llama 3.x scaling of the frequencies (default: none). */
  scaling?: RopeScaling | null;
}

/** inv_freq[i] = theta^(-2i/hd), then Llama 3.x's scaling when given (transformers' formula, in float64). */
export function ropeInvFreq(hd: number, theta: number, scaling?: RopeScaling | null): Float64Array {
  const half = hd / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    let f = Math.pow(theta, (-2 * i) / hd);
    if (scaling) {
      const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old } = scaling;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > old / lo) f /= factor;
      else if (wavelen >= old / hi) {
        const smooth = (old / wavelen - lo) / (hi - lo);
        f = ((1 - smooth) * f) / factor + smooth * f;
      }
    }
    out[i] = f;
  }
  return out;
}

function rotate(x: ArrayLike<number>, d: RopeDims, sign: number): Float64Array {
  const { T, H, hd, S } = d;
  const posOffset = d.posOffset ?? 0;
  const theta = d.theta ?? 10000;
  if (hd % 2 !== 0) throw new Error(`ropeRef: head size hd must be even, got hd=${hd}`);
  const half = hd / 2;
  const inv = ropeInvFreq(hd, theta, d.scaling);
  const out = new Float64Array(T * H * hd);
  for (let t = 0; t < T; t++) {
    const pos = posOffset + (t % S);
    for (let i = 0; i < half; i++) {
      const a = pos * inv[i];
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
