// Float64 CPU reference of a multi-agent rollout (rollout.ts), built from the reference model
// (src/reference/model.ts refForward / refBackward with past K/V, input embeddings and upstream
// gradients) and the latent map (latentmap.ts applyLatentMap / latentMapBackward): the oracle the GPU
// rollout's loss and every adapter gradient are checked against (tests/mas-gradient.test.ts).
import {
  refAppendKv, refBackward, refDims, refForward, type RefConfig, type RefForwardResult, type RefKvCache, type RefLora,
  type RefLoraPair, type RefPast,
} from '../reference/model';
import { applyLatentMap, latentMapBackward, type LatentMap } from './latentmap';

export interface RefMasAgent {
  /** Indices of earlier agents whose traces form this agent's prefix, in order. */
  preds: number[];
  /** Token ids [B * n]. */
  ids: ArrayLike<number>;
  n: number;
  /** Latent steps (0 for the final agent). */
  m: number;
  lora?: RefLora;
  /** Whether gradient flows into this agent (false: its trace is a constant, its adapter gets none). */
  trains: boolean;
  /** Learned latent slot offsets [m', D] (m' >= m; slot-offset.ts): latent step j's input embedding gets row j added. */
  slotOffset?: Float64Array;
}

export interface RefMasResult {
  loss: number;
  /** Per agent: LoRA gradients by module name (empty when it has no adapter or does not train). */
  loraGrads: Map<string, RefLoraPair>[];
  /** Per agent with slotOffset that trains: the gradient of its offsets (same shape; rows past m stay 0), else null. */
  slotOffsetGrads: (Float64Array | null)[];
  /** Per agent: its trace K/V per layer [B, traceLen, W]. */
  traces: { k: Float64Array[]; v: Float64Array[]; length: number }[];
  /** The final agent's logits [B * n, V]. */
  logits: Float64Array;
}

/** Rows [B, len] starting at `from` of a [B, P, W] array. */
export function slicePositions(a: ArrayLike<number>, B: number, P: number, W: number, from: number, len: number): Float64Array {
  const out = new Float64Array(B * len * W);
  for (let b = 0; b < B; b++) for (let i = 0; i < len; i++) for (let w = 0; w < W; w++) out[(b * len + i) * W + w] = a[(b * P + from + i) * W + w];
  return out;
}

function addPositions(dst: Float64Array, B: number, P: number, W: number, from: number, src: ArrayLike<number>, len: number): void {
  for (let b = 0; b < B; b++) for (let i = 0; i < len; i++) for (let w = 0; w < W; w++) dst[(b * P + from + i) * W + w] += src[(b * len + i) * W + w];
}

/** Adds one pass's LoRA gradients into an agent's (an adapter used twice gets the sum). */
export function addLora(into: Map<string, RefLoraPair>, g: Map<string, RefLoraPair>): void {
  for (const [name, { A, B }] of g) {
    const cur = into.get(name);
    if (!cur) into.set(name, { A: Float64Array.from(A), B: Float64Array.from(B) });
    else {
      for (let i = 0; i < A.length; i++) cur.A[i] += A[i];
      for (let i = 0; i < B.length; i++) cur.B[i] += B[i];
    }
  }
}

/**
 * The rollout of rollout.ts in float64: agents in order (the last is final, with `targets`), each
 * attending over the concatenated traces of its predecessors (RoPE positions as RolloutSpec.positions),
 * senders running m latent steps through the map; then the gradient of the final agent's mean
 * cross-entropy with respect to every training agent's LoRA, through the traces and the latent chain.
 */
export function refMasRollout(
  config: RefConfig, params: Map<string, Float64Array>, agents: RefMasAgent[], B: number,
  trace: 'latent' | 'full', map: LatentMap | null, targets: ArrayLike<number>, positions: 'stream' | 'prefix' = 'stream',
): RefMasResult {
  const { L, kvDim: W, D } = refDims(config);
  const n = agents.length;
  type Fwd = { P: number; offsets: number[]; prompt: RefForwardResult; latents: { f: RefForwardResult; u: Float64Array }[]; cache: RefKvCache; traceFrom: number; traceLen: number };
  const fw: Fwd[] = [];
  let streamEnd = 0;
  agents.forEach((a, ai) => {
    const final = ai === n - 1;
    let P = 0;
    const offsets: number[] = [];
    for (const p of a.preds) {
      offsets.push(P);
      P += fw[p].traceLen;
    }
    let past: RefPast | undefined;
    if (P > 0) {
      const k: Float64Array[] = [];
      const v: Float64Array[] = [];
      for (let l = 0; l < L; l++) {
        const kk = new Float64Array(B * P * W);
        const vv = new Float64Array(B * P * W);
        a.preds.forEach((p, i) => {
          const f = fw[p];
          addPositions(kk, B, P, W, offsets[i], slicePositions(f.cache.k[l], B, f.cache.length, W, f.traceFrom, f.traceLen), f.traceLen);
          addPositions(vv, B, P, W, offsets[i], slicePositions(f.cache.v[l], B, f.cache.length, W, f.traceFrom, f.traceLen), f.traceLen);
        });
        k.push(kk);
        v.push(vv);
      }
      past = { k, v, length: P };
    }
    const start = positions === 'stream' ? streamEnd : P;
    streamEnd = start + a.n + a.m;
    const prompt = refForward(config, params, { ids: a.ids }, { B, S: a.n, past, posOffset: start, lora: a.lora, targets: final ? targets : undefined });
    let cache = refAppendKv(config, past, prompt.newK, prompt.newV, B, a.n);
    let h: Float64Array = new Float64Array(B * D);
    for (let b = 0; b < B; b++) h.set(prompt.lastHidden.subarray((b * a.n + a.n - 1) * D, (b * a.n + a.n) * D), b * D);
    const latents: Fwd['latents'] = [];
    for (let j = 0; j < a.m; j++) {
      const { e, u } = applyLatentMap(map!, h, B);
      if (a.slotOffset) for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) e[b * D + d] += a.slotOffset[j * D + d];
      const f = refForward(config, params, { embeds: e }, { B, S: 1, past: cache, posOffset: start + a.n + j, lora: a.lora });
      cache = refAppendKv(config, cache, f.newK, f.newV, B, 1);
      latents.push({ f, u });
      h = f.lastHidden;
    }
    const traceFrom = trace === 'full' ? P : P + a.n;
    fw.push({ P, offsets, prompt, latents, cache, traceFrom, traceLen: final ? 0 : cache.length - traceFrom });
  });

  // backward: dCache per agent over all its positions (prefix, prompt, latents)
  const loraGrads = agents.map(() => new Map<string, RefLoraPair>());
  const slotOffsetGrads = agents.map((a) => (a.slotOffset && a.trains ? new Float64Array(a.slotOffset.length) : null));
  const dCache = fw.map((f) => ({ k: Array.from({ length: L }, () => new Float64Array(B * f.cache.length * W)), v: Array.from({ length: L }, () => new Float64Array(B * f.cache.length * W)) }));
  for (let ai = n - 1; ai >= 0; ai--) {
    const a = agents[ai];
    const f = fw[ai];
    if (!a.trains) continue;
    const Ptot = f.cache.length;
    const dc = dCache[ai];
    let dh: Float64Array | null = null;
    for (let j = a.m - 1; j >= 0; j--) {
      const pos = f.P + a.n + j;
      const z = f.latents[j];
      const g = refBackward(config, params, z.f, {
        dNewK: dc.k.map((t) => slicePositions(t, B, Ptot, W, pos, 1)),
        dNewV: dc.v.map((t) => slicePositions(t, B, Ptot, W, pos, 1)),
        dLastHidden: dh ?? undefined,
      });
      if (a.lora) addLora(loraGrads[ai], g.lora);
      for (let l = 0; l < L; l++) {
        addPositions(dc.k[l], B, Ptot, W, 0, g.dPastK[l], pos);
        addPositions(dc.v[l], B, Ptot, W, 0, g.dPastV[l], pos);
      }
      const dOff = slotOffsetGrads[ai];
      if (dOff) for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) dOff[j * D + d] += g.dEmbeds![b * D + d];
      dh = latentMapBackward(map!, z.u, g.dEmbeds!, B);
    }
    let dLast: Float64Array | undefined;
    if (dh) {
      dLast = new Float64Array(B * a.n * D);
      for (let b = 0; b < B; b++) dLast.set(dh.subarray(b * D, (b + 1) * D), (b * a.n + a.n - 1) * D);
    }
    const final = ai === n - 1;
    const g = refBackward(config, params, f.prompt, final ? {} : {
      dNewK: dc.k.map((t) => slicePositions(t, B, Ptot, W, f.P, a.n)),
      dNewV: dc.v.map((t) => slicePositions(t, B, Ptot, W, f.P, a.n)),
      dLastHidden: dLast,
    });
    if (a.lora) addLora(loraGrads[ai], g.lora);
    if (f.P === 0) continue;
    // total gradient of the prefix: the prompt pass's plus the latent passes' (already in dc[0..P))
    for (let l = 0; l < L; l++) {
      addPositions(dc.k[l], B, Ptot, W, 0, g.dPastK[l], f.P);
      addPositions(dc.v[l], B, Ptot, W, 0, g.dPastV[l], f.P);
    }
    a.preds.forEach((p, i) => {
      const fp = fw[p];
      if (!agents[p].trains) return;
      for (let l = 0; l < L; l++) {
        addPositions(dCache[p].k[l], B, fp.cache.length, W, fp.traceFrom, slicePositions(dc.k[l], B, Ptot, W, f.offsets[i], fp.traceLen), fp.traceLen);
        addPositions(dCache[p].v[l], B, fp.cache.length, W, fp.traceFrom, slicePositions(dc.v[l], B, Ptot, W, f.offsets[i], fp.traceLen), fp.traceLen);
      }
    });
  }
  const traces = fw.map((f) => ({
    k: f.cache.k.map((t) => slicePositions(t, B, f.cache.length, W, f.traceFrom, f.traceLen)),
    v: f.cache.v.map((t) => slicePositions(t, B, f.cache.length, W, f.traceFrom, f.traceLen)),
    length: f.traceLen,
  }));
  return { loss: fw[n - 1].prompt.loss!, loraGrads, slotOffsetGrads, traces, logits: fw[n - 1].prompt.logits };
}
