// CPU reference of softmax cross-entropy (float64): logits [T, V], targets [T] with the ignore label
// 0xFFFFFFFF (any target >= V counts as ignored, as in shaders/crossentropy.wgsl).

export interface CrossEntropyRef {
  /** Per-row loss, 0 on ignored rows. */
  losses: Float64Array;
  /** Mean of the losses over the non-ignored rows (0 when there are none). */
  loss: number;
  /** Number of non-ignored rows. */
  count: number;
}

function rowLse(logits: ArrayLike<number>, base: number, V: number): { max: number; sum: number } {
  let max = -Infinity;
  for (let j = 0; j < V; j++) max = Math.max(max, logits[base + j]);
  let sum = 0;
  for (let j = 0; j < V; j++) sum += Math.exp(logits[base + j] - max);
  return { max, sum };
}

export function crossEntropyRef(logits: ArrayLike<number>, targets: ArrayLike<number>, T: number, V: number): CrossEntropyRef {
  const losses = new Float64Array(T);
  let count = 0;
  let total = 0;
  for (let t = 0; t < T; t++) {
    const y = targets[t];
    if (!(y < V)) continue;
    const { max, sum } = rowLse(logits, t * V, V);
    losses[t] = max + Math.log(sum) - logits[t * V + y];
    total += losses[t];
    count++;
  }
  return { losses, loss: count > 0 ? total / count : 0, count };
}

export interface CrossEntropyBackwardRef {
  /** Gradient of the mean loss: (softmax - onehot) / count, 0 on ignored rows. */
  dlogits: Float64Array;
}

/** `count` defaults to the number of non-ignored rows (pass another to scale as the GPU kernel does). */
export function crossEntropyBackwardRef(
  logits: ArrayLike<number>, targets: ArrayLike<number>, T: number, V: number, count?: number,
): CrossEntropyBackwardRef {
  let n = count;
  if (n === undefined) {
    n = 0;
    for (let t = 0; t < T; t++) if (targets[t] < V) n++;
  }
  const dlogits = new Float64Array(T * V);
  if (n === 0) return { dlogits };
  for (let t = 0; t < T; t++) {
    const y = targets[t];
    if (!(y < V)) continue;
    const { max, sum } = rowLse(logits, t * V, V);
    for (let j = 0; j < V; j++) {
      dlogits[t * V + j] = (Math.exp(logits[t * V + j] - max) / sum - (j === y ? 1 : 0)) / n;
    }
  }
  return { dlogits };
}
