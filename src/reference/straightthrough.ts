// CPU reference (float64) of the straight-through softmax step of shaders/straightthrough.wgsl, the
// trained text channel's map from a sender's logits to the token it writes:
//   forward   token = argmax over the allowed tokens (the first on ties); the receiver reads E[token]
//   surrogate e = E[token] + (p - stopgrad(p)) E with p = softmax(logits / tau) over the allowed tokens:
//             its value is E[token], its gradient that of p E (straight-through)
//   backward  dlogits = (1 / tau) p (g - <p, g>) with g = E de (g[v] = <E[v], de>)

/** Per row of logits [R, V]: the greedy allowed token and p = softmax(logits / tau) over the allowed tokens. */
export function stForwardRef(
  logits: ArrayLike<number>, allowed: ArrayLike<boolean | number>, R: number, V: number, tau: number,
): { tokens: number[]; p: Float64Array } {
  if (!(tau > 0)) throw new Error(`straight-through: the temperature must be positive, got ${tau}`);
  let any = false;
  for (let j = 0; j < V; j++) if (allowed[j]) any = true;
  if (!any) throw new Error('straight-through: every token is masked out');
  const tokens: number[] = [];
  const p = new Float64Array(R * V);
  for (let r = 0; r < R; r++) {
    const o = r * V;
    let best = -1;
    for (let j = 0; j < V; j++) if (allowed[j] && (best < 0 || logits[o + j] > logits[o + best])) best = j;
    tokens.push(best);
    const mx = logits[o + best] / tau;
    let sum = 0;
    for (let j = 0; j < V; j++) if (allowed[j]) sum += Math.exp(logits[o + j] / tau - mx);
    for (let j = 0; j < V; j++) p[o + j] = allowed[j] ? Math.exp(logits[o + j] / tau - mx) / sum : 0;
  }
  return { tokens, p };
}

/** dlogits [R, V] = (1 / tau) p (g - <p, g>) per row. */
export function stBackwardRef(p: ArrayLike<number>, g: ArrayLike<number>, R: number, V: number, tau: number): Float64Array {
  const out = new Float64Array(R * V);
  for (let r = 0; r < R; r++) {
    const o = r * V;
    let dot = 0;
    for (let j = 0; j < V; j++) dot += p[o + j] * g[o + j];
    for (let j = 0; j < V; j++) out[o + j] = (p[o + j] * (g[o + j] - dot)) / tau;
  }
  return out;
}

/**
 * The input embeddings [R, D] of the straight-through surrogate: E[token] + (p - p0) E, E [V, D].
 * With p0 = p (the forward) it is E[token] exactly; a finite-difference check moves p and keeps the
 * tokens and p0 of the unperturbed forward.
 */
export function stEmbedRef(
  E: ArrayLike<number>, tokens: readonly number[], p: ArrayLike<number>, p0: ArrayLike<number>, R: number, V: number, D: number,
): Float64Array {
  const e = new Float64Array(R * D);
  for (let r = 0; r < R; r++) {
    for (let d = 0; d < D; d++) e[r * D + d] = E[tokens[r] * D + d];
    for (let j = 0; j < V; j++) {
      const w = p[r * V + j] - p0[r * V + j];
      if (w !== 0) for (let d = 0; d < D; d++) e[r * D + d] += w * E[j * D + d];
    }
  }
  return e;
}

/** g [R, V] = E de: each embedding row dotted with the gradient on the token's input embedding de [R, D]. */
export function stEmbedBackwardRef(E: ArrayLike<number>, de: ArrayLike<number>, R: number, V: number, D: number): Float64Array {
  const g = new Float64Array(R * V);
  for (let r = 0; r < R; r++) {
    for (let j = 0; j < V; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += E[j * D + d] * de[r * D + d];
      g[r * V + j] = s;
    }
  }
  return g;
}
