// CPU reference of the embedding lookup (float64): ids [T], W [V, D], out [T, D], as in
// shaders/embedding.wgsl (an id >= V gives a zero row and no gradient).

export function embeddingRef(ids: ArrayLike<number>, W: ArrayLike<number>, T: number, D: number, V: number): Float64Array {
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (id >= V) continue;
    for (let d = 0; d < D; d++) out[t * D + d] = W[id * D + d];
  }
  return out;
}

export interface EmbeddingBackwardRef {
  /** Gradient of sum(dOut * out) with respect to W (ids are integers: no gradient). */
  dW: Float64Array;
}

export function embeddingBackwardRef(
  dOut: ArrayLike<number>, ids: ArrayLike<number>, T: number, D: number, V: number,
): EmbeddingBackwardRef {
  const dW = new Float64Array(V * D);
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (id >= V) continue;
    for (let d = 0; d < D; d++) dW[id * D + d] += dOut[t * D + d];
  }
  return { dW };
}
