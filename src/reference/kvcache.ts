// CPU reference of the KV-cache block copy (shaders/kvcache.wgsl).
export function kvWriteRef(block: ArrayLike<number>, cache: Float64Array, B: number, n: number, W: number, Pd: number, off: number): void {
  for (let b = 0; b < B; b++) for (let i = 0; i < n; i++) for (let w = 0; w < W; w++) cache[(b * Pd + off + i) * W + w] = block[(b * n + i) * W + w];
}

export function kvReadGradRef(dcache: ArrayLike<number>, dblock: Float64Array, B: number, n: number, W: number, Pd: number, off: number, accumulate: boolean): void {
  for (let b = 0; b < B; b++)
    for (let i = 0; i < n; i++)
      for (let w = 0; w < W; w++) {
        const g = dcache[(b * Pd + off + i) * W + w];
        const j = (b * n + i) * W + w;
        dblock[j] = accumulate ? dblock[j] + g : g;
      }
}
