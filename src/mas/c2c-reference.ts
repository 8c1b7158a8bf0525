// Float64 CPU reference of a Cache-to-Cache rollout (rollout.ts with a fuser, c2c-fuser.ts): the
// agents of refMasRollout (reference.ts) on the frozen base, no adapters, each received prefix
// fused per layer and K/V (refFuse) before its receiver reads it; then the gradient of the final
// agent's mean cross-entropy with respect to the fuser, through every receiver's prefix and, for a
// sender that itself received, through its passes and latent chain into its own prefix. The oracle of
// tests/c2c.test.ts, itself checked there against finite differences.
import {
  refAppendKv, refBackward, refDims, refForward, type RefConfig, type RefForwardResult, type RefKvCache, type RefPast,
} from '../reference/model';
import { applyLatentMap, latentMapBackward, type LatentMap } from './latentmap';
import { slicePositions } from './reference';
import { fuserKey, GATE_KEY, refFuse, refFuseBackward } from './c2c-fuser';

export interface RefC2cAgent {
  preds: number[];
  /** Token ids [B * n]. */
  ids: ArrayLike<number>;
  n: number;
  m: number;
}

export interface RefC2cResult {
  loss: number;
  /** Gradient of the loss per fuser tensor (fuserKey, GATE_KEY). */
  grads: Map<string, Float64Array>;
  /** Per agent: its fused prefix per layer [B, P, W] (empty without senders). */
  prefixes: { k: Float64Array[]; v: Float64Array[]; P: number }[];
  logits: Float64Array;
}

function addPositions(dst: Float64Array, B: number, P: number, W: number, from: number, src: ArrayLike<number>, len: number): void {
  for (let b = 0; b < B; b++) for (let i = 0; i < len; i++) for (let w = 0; w < W; w++) dst[(b * P + from + i) * W + w] += src[(b * len + i) * W + w];
}

/** The c2c rollout in float64 (full trace: every sender's prompt and latent positions cross). */
export function refC2cRollout(
  config: RefConfig, params: Map<string, Float64Array>, fuser: ReadonlyMap<string, ArrayLike<number>>, agents: RefC2cAgent[], B: number,
  map: LatentMap | null, targets: ArrayLike<number>, positions: 'stream' | 'prefix' = 'stream',
): RefC2cResult {
  const { L, kvDim: W, D } = refDims(config);
  const n = agents.length;
  const gate = fuser.get(GATE_KEY)!;
  type Fused = { raw: Float64Array; t: Float64Array }[][];
  type Fwd = { P: number; offsets: number[]; prompt: RefForwardResult; latents: { f: RefForwardResult; u: Float64Array }[]; cache: RefKvCache; traceLen: number; fused: Fused | null };
  const fw: Fwd[] = [];
  const prefixes: RefC2cResult['prefixes'] = [];
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
    let fused: Fused | null = null;
    if (P > 0) {
      const k: Float64Array[] = [];
      const v: Float64Array[] = [];
      fused = [];
      for (let l = 0; l < L; l++) {
        const pair: Fused[number] = [];
        (['k', 'v'] as const).forEach((kind, i) => {
          const raw = new Float64Array(B * P * W);
          a.preds.forEach((p, j) => {
            const f = fw[p];
            // a full trace: the sender's positions after its own prefix (prompt and latents)
            addPositions(raw, B, P, W, offsets[j], slicePositions(f.cache[kind][l], B, f.cache.length, W, f.P, f.traceLen), f.traceLen);
          });
          const { y, t } = refFuse(raw, fuser.get(fuserKey(l, kind))!, gate[2 * l + i], B * P, W);
          pair.push({ raw, t });
          (kind === 'k' ? k : v).push(y);
        });
        fused.push(pair);
      }
      past = { k, v, length: P };
    }
    prefixes.push({ k: (past?.k ?? []) as Float64Array[], v: (past?.v ?? []) as Float64Array[], P });
    const start = positions === 'stream' ? streamEnd : P;
    streamEnd = start + a.n + a.m;
    const prompt = refForward(config, params, { ids: a.ids }, { B, S: a.n, past, posOffset: start, targets: final ? targets : undefined });
    let cache = refAppendKv(config, past, prompt.newK, prompt.newV, B, a.n);
    let h: Float64Array = new Float64Array(B * D);
    for (let b = 0; b < B; b++) h.set(prompt.lastHidden.subarray((b * a.n + a.n - 1) * D, (b * a.n + a.n) * D), b * D);
    const latents: Fwd['latents'] = [];
    for (let j = 0; j < a.m; j++) {
      const { e, u } = applyLatentMap(map!, h, B);
      const f = refForward(config, params, { embeds: e }, { B, S: 1, past: cache, posOffset: start + a.n + j });
      cache = refAppendKv(config, cache, f.newK, f.newV, B, 1);
      latents.push({ f, u });
      h = f.lastHidden;
    }
    fw.push({ P, offsets, prompt, latents, cache, traceLen: final ? 0 : cache.length - P, fused });
  });

  // backward: only agents that read a fused prefix depend on the fuser
  const grads = new Map<string, Float64Array>();
  for (let l = 0; l < L; l++) for (const kind of ['k', 'v'] as const) grads.set(fuserKey(l, kind), new Float64Array(W * W));
  const dGate = new Float64Array(2 * L);
  grads.set(GATE_KEY, dGate);
  const dCache = fw.map((f) => ({ k: Array.from({ length: L }, () => new Float64Array(B * f.cache.length * W)), v: Array.from({ length: L }, () => new Float64Array(B * f.cache.length * W)) }));
  for (let ai = n - 1; ai >= 0; ai--) {
    const a = agents[ai];
    const f = fw[ai];
    if (!f.fused) continue;
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
      for (let l = 0; l < L; l++) {
        addPositions(dc.k[l], B, Ptot, W, 0, g.dPastK[l], pos);
        addPositions(dc.v[l], B, Ptot, W, 0, g.dPastV[l], pos);
      }
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
    for (let l = 0; l < L; l++) {
      addPositions(dc.k[l], B, Ptot, W, 0, g.dPastK[l], f.P);
      addPositions(dc.v[l], B, Ptot, W, 0, g.dPastV[l], f.P);
    }
    // the fuser's backward over the whole prefix, then the received traces' gradient to the senders
    for (let l = 0; l < L; l++) {
      (['k', 'v'] as const).forEach((kind, i) => {
        const dy = slicePositions(dc[kind][l], B, Ptot, W, 0, f.P);
        const { raw, t } = f.fused![l][i];
        const bw = refFuseBackward(raw, t, fuser.get(fuserKey(l, kind))!, gate[2 * l + i], dy, B * f.P, W);
        const dA = grads.get(fuserKey(l, kind))!;
        for (let x = 0; x < dA.length; x++) dA[x] += bw.dA[x];
        dGate[2 * l + i] += bw.dgate;
        a.preds.forEach((p, j) => {
          const fp = fw[p];
          if (!fp.fused) return;
          addPositions(dCache[p][kind][l], B, fp.cache.length, W, fp.P, slicePositions(bw.dx, B, f.P, W, f.offsets[j], fp.traceLen), fp.traceLen);
        });
      });
    }
  }
  return { loss: fw[n - 1].prompt.loss!, grads, prefixes, logits: fw[n - 1].prompt.logits };
}
