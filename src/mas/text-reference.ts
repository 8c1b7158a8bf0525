// Float64 CPU reference of the trained text channel (text-rollout.ts), built from the reference model
// (src/reference/model.ts) and the straight-through step (src/reference/straightthrough.ts): the
// oracle the GPU rollout's tokens, loss and every adapter gradient are checked against
// (tests/text-channel.test.ts).
//
// Per agent in topological order: its prompt pass reads its own ids, except at each predecessor's
// message slots, where it reads that sender's message token embeddings. A sender then writes T
// tokens greedily: token 0 from its prompt pass's last logits, token j from the logits of a one-token
// pass that reads token j-1 over its own cache (prompt, then tokens 0..j-2), at position n + j - 1.
// Backward (straight-through): the gradient on each token's input embedding (from every receiver's
// message slot and from the sender's own next pass) goes back through softmax(logits / tau) into the
// logits that chose it, through BPTT over the decoding.
import { refAppendKv, refBackward, refDims, refForward, type RefConfig, type RefForwardResult, type RefKvCache, type RefLora, type RefLoraPair } from '../reference/model';
import { addLora, slicePositions } from './reference';
import { stBackwardRef, stEmbedBackwardRef, stEmbedRef, stForwardRef } from '../reference/straightthrough';

export interface RefTextAgent {
  /** Indices of earlier agents whose messages this agent reads, in order. */
  preds: number[];
  /** Token ids [B * n]; the message slots' ids are ignored (the senders' tokens go there). */
  ids: ArrayLike<number>;
  n: number;
  /** Per predecessor: the position of its message's first token in this agent's prompt. */
  slots: number[];
  /** Whether it writes a message (every agent but the final one). */
  sends: boolean;
  lora?: RefLora;
}

export interface RefTextOptions {
  /** Message tokens per sender. */
  T: number;
  tau: number;
  /** [V]: the tokens a sender may write. */
  allowed: readonly boolean[];
  /** The final agent's targets [B * n]. */
  targets: ArrayLike<number>;
  /**
   * The finite-difference check's surrogate: per sender and token the tokens [B] and p [B, V] of the
   * unperturbed forward; each token's input is then E[token] + (p - p0) E with the tokens kept.
   */
  frozen?: { tokens: number[][][]; p: Float64Array[][] };
}

export interface RefTextResult {
  loss: number;
  /** Per agent: LoRA gradients by module name (empty without an adapter). */
  loraGrads: Map<string, RefLoraPair>[];
  /** Per agent and token: the written tokens [B] (empty for the final agent). */
  tokens: number[][][];
  /** Per agent and token: p [B, V]. */
  p: Float64Array[][];
  /** The final agent's logits [B * n, V]. */
  logits: Float64Array;
}

/** The trained text channel's rollout and, straight-through, the gradient of the final agent's mean cross-entropy. */
export function refTextRollout(
  config: RefConfig, params: Map<string, Float64Array>, agents: RefTextAgent[], B: number, o: RefTextOptions,
): RefTextResult {
  const { L, kvDim: W, D, V } = refDims(config);
  const E = params.get('model.embed_tokens.weight')!;
  const { T, tau, allowed } = o;
  const n = agents.length;
  if (!Number.isInteger(T) || T < 1) throw new Error(`text rollout: a message needs at least 1 token, got ${T}`);
  if (allowed.length !== V) throw new Error(`text rollout: allowed has ${allowed.length} entries for a vocabulary of ${V}`);
  type Fwd = { prompt: RefForwardResult; steps: RefForwardResult[]; cache: RefKvCache; tokens: number[][]; p: Float64Array[]; e: Float64Array[] };
  const fw: Fwd[] = [];
  agents.forEach((a, ai) => {
    const final = ai === n - 1;
    if (a.sends === final) throw new Error(`text rollout: agent ${ai} ${final ? 'is final and cannot send' : 'must send'}`);
    const x = new Float64Array(B * a.n * D);
    for (let r = 0; r < B * a.n; r++) for (let d = 0; d < D; d++) x[r * D + d] = E[a.ids[r] * D + d];
    a.preds.forEach((pi, i) => {
      for (let j = 0; j < T; j++) {
        for (let b = 0; b < B; b++) x.set(fw[pi].e[j].subarray(b * D, (b + 1) * D), (b * a.n + a.slots[i] + j) * D);
      }
    });
    const prompt = refForward(config, params, { embeds: x }, { B, S: a.n, posOffset: 0, lora: a.lora, targets: final ? o.targets : undefined });
    const f: Fwd = { prompt, steps: [], cache: refAppendKv(config, undefined, prompt.newK, prompt.newV, B, a.n), tokens: [], p: [], e: [] };
    if (a.sends) {
      let logits = slicePositions(prompt.logits, B, a.n, V, a.n - 1, 1);
      for (let j = 0; j < T; j++) {
        const st = stForwardRef(logits, allowed, B, V, tau);
        const tokens = o.frozen ? o.frozen.tokens[ai][j] : st.tokens;
        const e = stEmbedRef(E, tokens, st.p, o.frozen ? o.frozen.p[ai][j] : st.p, B, V, D);
        f.tokens.push(tokens);
        f.p.push(st.p);
        f.e.push(e);
        if (j === T - 1) break;
        const step = refForward(config, params, { embeds: e }, { B, S: 1, past: f.cache, posOffset: a.n + j, lora: a.lora });
        f.cache = refAppendKv(config, f.cache, step.newK, step.newV, B, 1);
        f.steps.push(step);
        logits = step.logits;
      }
    }
    fw.push(f);
  });

  // backward: per sender the gradient on each token's input embedding, per agent on its cache
  const loraGrads = agents.map(() => new Map<string, RefLoraPair>());
  const dE = fw.map(() => Array.from({ length: T }, () => new Float64Array(B * D)));
  for (let ai = n - 1; ai >= 0; ai--) {
    const a = agents[ai];
    const f = fw[ai];
    const Ptot = f.cache.length;
    const dK = Array.from({ length: L }, () => new Float64Array(B * Ptot * W));
    const dV = Array.from({ length: L }, () => new Float64Array(B * Ptot * W));
    let dPromptLogits: Float64Array | undefined;
    if (a.sends) {
      for (let j = T - 1; j >= 0; j--) {
        const dl = stBackwardRef(f.p[j], stEmbedBackwardRef(E, dE[ai][j], B, V, D), B, V, tau);
        if (j === 0) {
          dPromptLogits = new Float64Array(B * a.n * V);
          for (let b = 0; b < B; b++) dPromptLogits.set(dl.subarray(b * V, (b + 1) * V), (b * a.n + a.n - 1) * V);
          break;
        }
        // the pass that read token j-1 produced these logits
        const pos = a.n + j - 1;
        const g = refBackward(config, params, f.steps[j - 1], {
          dLogits: dl, dNewK: dK.map((t) => slicePositions(t, B, Ptot, W, pos, 1)), dNewV: dV.map((t) => slicePositions(t, B, Ptot, W, pos, 1)),
        });
        if (a.lora) addLora(loraGrads[ai], g.lora);
        for (let l = 0; l < L; l++) {
          for (let b = 0; b < B; b++) {
            for (let i = 0; i < pos * W; i++) {
              dK[l][b * Ptot * W + i] += g.dPastK[l][b * pos * W + i];
              dV[l][b * Ptot * W + i] += g.dPastV[l][b * pos * W + i];
            }
          }
        }
        const dj = dE[ai][j - 1];
        for (let i = 0; i < B * D; i++) dj[i] += g.dEmbeds![i];
      }
    }
    const g = refBackward(config, params, f.prompt, {
      dLogits: dPromptLogits, dNewK: dK.map((t) => slicePositions(t, B, Ptot, W, 0, a.n)), dNewV: dV.map((t) => slicePositions(t, B, Ptot, W, 0, a.n)),
    });
    if (a.lora) addLora(loraGrads[ai], g.lora);
    a.preds.forEach((pi, i) => {
      for (let j = 0; j < T; j++) {
        const dj = dE[pi][j];
        for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) dj[b * D + d] += g.dEmbeds![(b * a.n + a.slots[i] + j) * D + d];
      }
    });
  }
  return { loss: fw[n - 1].prompt.loss!, loraGrads, tokens: fw.map((f) => f.tokens), p: fw.map((f) => f.p), logits: fw[n - 1].prompt.logits };
}
