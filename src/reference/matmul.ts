// CPU reference of the matmul family (float64 accumulation). Layouts as in shaders/matmul.wgsl.
export type MatmulLayout = 'nn' | 'nt' | 'tn';

export function matmulRef(
  a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number,
  layout: MatmulLayout = 'nn', c?: ArrayLike<number>, alpha = 1, beta = 1,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = layout === 'tn' ? a[k * M + i] : a[i * K + k];
        const bv = layout === 'nt' ? b[j * K + k] : b[k * N + j];
        s += av * bv;
      }
      out[i * N + j] = alpha * s + (c ? beta * c[i * N + j] : 0);
    }
  }
  return out;
}
