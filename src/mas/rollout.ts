// One multi-agent rollout of a fixed shape on the GPU: B episodes through a DAG of agents that share
// one frozen base model, every pass, cache and dispatch made once and replayed (no per-step pipeline
// or buffer creation).
//
// Per agent a, in topological order (the final agent last):
//   prefix    pre_a [B, P_a, W] per layer K and V: its predecessors' traces concatenated in
//             predecessors() order, each at its own offset; keys keep the rotation they were made with
//   prompt    ModelPass over its n_a prompt tokens attending over pre_a, at positions s_a .. s_a+n_a-1
//             (s_a: RolloutSpec.positions; by default each agent's stream follows the previous agent's)
//             (the final agent's pass also holds the answer region: prompt + answer, teacher forced)
//   latent j  (j = 1..m_a) h = last hidden state of the previous position (the prompt's last row, then
//             latent j-1's), e_j = map(h) (latentmap.ts; + o_{j-1} with slot offsets, slot-offset.ts), a ModelPass with input embeds, S = 1, over
//             cache_j = pre_a ++ prompt K/V ++ latents 1..j-1 (P = P_a + n_a + j - 1 positions)
//   trace     what receivers see: the m latent positions ('latent'), or prompt + latents ('full')
//
// Backward (reverse topological order), when the agents train through the channel:
//   the final agent's cross-entropy on the answer gives dpre_final; its slices flow back into each
//   sender's trace blocks (dNewK/dNewV of the passes that made them); a sender then runs its latent
//   steps backward m..1: each latent pass's prefix gradient is split into the earlier cache (prompt,
//   earlier latents, its own prefix), and its dEmbeds goes back through the map (RMSNorm backward, then
//   W_a^T) into dLastHidden of the previous position (BPTT through the latent chain); finally the prompt
//   pass, whose prefix gradient flows on to its own predecessors.
// W = Hkv * hd. Layouts: docs/engine.md.
import type { Dispatch, Gpu, Tensor } from '../gpu/runtime';
import { prepareKvReadGrad, prepareKvWrite } from '../gpu/ops/kvcache';
import { prepareMatmul } from '../gpu/ops/matmul';
import { prepareRmsnorm, prepareRmsnormBackward } from '../gpu/ops/rmsnorm';
import { prepareFill } from '../gpu/ops/elementwise';
import { ModelPass, type LlamaGpu, type LoraGpu } from '../model/model';
import { RESCALE_EPS, type LatentMap } from './latentmap';
import type { SlotOffsetGpu } from './slot-offset';
import { FusedPrefix, type C2cFuserGpu } from './c2c-fuser';

export interface KV {
  k: Tensor[];
  v: Tensor[];
}

/** The latent map's tensors on the GPU (made once per model and map kind). */
export class GpuLatentMap {
  readonly Wa: Tensor | null;
  /** The rescaling RMSNorm's constant weight c / sqrt(D). */
  readonly w: Tensor;
  /** Unused RMSNorm weight gradient. */
  readonly dw: Tensor;

  constructor(
    readonly gpu: Gpu,
    readonly map: LatentMap,
  ) {
    const D = map.D;
    this.Wa = map.Wa ? gpu.tensor([D, D], `latent map W_a (${map.kind})`, Float32Array.from(map.Wa)) : null;
    this.w = gpu.tensor([D], 'latent map scale', new Float32Array(D).fill(map.targetNorm / Math.sqrt(D)));
    this.dw = gpu.tensor([D], 'latent map unused dw');
  }

  destroy(): void {
    if (this.Wa) this.gpu.destroy(this.Wa);
    this.gpu.destroy(this.w);
    this.gpu.destroy(this.dw);
  }
}

/** Rollout.recordForwardWith's hook: agent index, layer, K or V, the prefix values [B, P, W], P. */
export type PrefixEdit = (agent: number, layer: number, kind: 'k' | 'v', values: Float32Array, P: number) => Float32Array | void;

export interface RolloutAgent {
  id: string;
  /** Indices (into the rollout's agents) of its predecessors, in predecessors() order. */
  preds: number[];
  /** Tokens of its prompt pass (the final agent: prompt + answer region). */
  n: number;
  /** Latent steps after the prompt (0 for the final agent). */
  m: number;
  lora: LoraGpu | null;
  /** Its passes run backward (gradient reaches this agent). */
  backward: boolean;
  /** Learned input offsets of its latent steps (RunConfig.latentSlotOffset; slot-offset.ts): latent step j's
   * input embedding gets o_{j-1} added after the map, and (backward) its gradient summed over the rows. */
  slotOffset?: SlotOffsetGpu | null;
}

export interface RolloutSpec {
  B: number;
  /** Topological order; the last one is the final agent (whose pass carries the loss). */
  agents: RolloutAgent[];
  trace: 'latent' | 'full' | 'none';
  map: GpuLatentMap | null;
  /**
   * RoPE positions. 'stream' (default): every agent's stream (prompt, then latent steps) occupies its
   * own range of positions, agents one after another in rollout order, so traces sit at distinct
   * positions and a receiver's positions continue after every position it reads (for one full-trace
   * sender, or senders in a star, that is the total prefix length). 'prefix': an agent's first
   * position is its prefix length P (for a latent-only trace the receiver then sits before the
   * positions its cached keys were rotated at).
   */
  positions?: 'stream' | 'prefix';
  /**
   * Whether the senders' passes compute their logits (default true). Nothing in a rollout reads them
   * (receivers read K/V, latent steps the last hidden state); only an inspection shows which token a
   * latent step favours. Run turns them off for training and evaluation.
   */
  senderLogits?: boolean;
  /**
   * Rows of the final agent per episode (default 1): its batch is B * fanout, row b * fanout + q reading
   * episode b's senders (the quiz loss, quiz.ts: every question of one message). Its prefix [B*fanout, P, W]
   * is, row-major, [B, fanout*P, W]: each sender block is written fanout times, and in the backward the
   * fanout rows' prefix gradients are summed into the one trace they read.
   */
  fanout?: number;
  /**
   * Cache-to-Cache (c2c-fuser.ts): every received prefix passes through this fuser before its receiver
   * reads it (the controls act on the fused prefix); a receiver that runs backward gives the fuser its
   * gradient, and passes it on to senders that run backward.
   */
  fuser?: C2cFuserGpu | null;
  label?: string;
}

export interface LatentStep {
  pass: ModelPass;
  /** Its prefix: pre ++ prompt ++ earlier latents. */
  cache: KV;
  dCache: KV | null;
  /** The input embedding e_j [B, D] (the pass reads it). */
  e: Tensor;
  /** h W_a [B, D] (ridge map) or null (identity). */
  u: Tensor | null;
  /** The hidden state h fed to the map: the previous pass's lastHidden, or (j = 1) gathered rows. */
  h: Tensor;
  rrms: Tensor;
  P: number;
}

export interface AgentRun {
  spec: RolloutAgent;
  P: number;
  /** Position (RoPE) of its first prompt token; latent step j sits at start + n + j - 1. */
  start: number;
  /** Offset of each predecessor's trace in the prefix (same order as spec.preds). */
  offsets: number[];
  pre: KV | null;
  dPre: KV | null;
  /** The fuser's stage before `pre` (RolloutSpec.fuser), else null. */
  fused: FusedPrefix | null;
  prompt: ModelPass;
  latents: LatentStep[];
  /** The blocks receivers read, in order, with their lengths. */
  blocks: { pass: ModelPass; n: number; kind: 'prompt' | 'latent' }[];
  traceLen: number;
}

const tensors = (gpu: Gpu, L: number, shape: number[], label: string): KV => ({
  k: Array.from({ length: L }, (_, l) => gpu.tensor(shape, `${label} K l${l}`)),
  v: Array.from({ length: L }, (_, l) => gpu.tensor(shape, `${label} V l${l}`)),
});

export class Rollout {
  readonly agents: AgentRun[] = [];
  readonly B: number;
  readonly final: AgentRun;
  /** Tokens one forward processes (every pass, every row). */
  readonly tokensPerForward: number;
  private readonly owned: Tensor[] = [];
  private readonly dispatches: Dispatch[] = [];
  /** Per agent: assemble its prefix; zero it (control); then its passes are recorded. */
  private readonly assemble: Dispatch[][] = [];
  private readonly zeroPrefix: Dispatch[][] = [];
  /** Per agent, per latent step j: cache assembly and the map, before the pass. */
  private readonly latentPre: Dispatch[][][] = [];
  /** Per agent, per latent step j (backward): map backward and cache routing after the pass. */
  private readonly latentPost: Dispatch[][][] = [];
  private readonly routePrefix: Dispatch[][] = [];
  private readonly clearGrads: Dispatch[] = [];
  readonly hasBackward: boolean;
  /** Rows of the final agent per episode (RolloutSpec.fanout). */
  readonly fanout: number;

  constructor(
    readonly model: LlamaGpu,
    readonly spec: RolloutSpec,
  ) {
    const gpu = model.gpu;
    const { L, kvDim: W, D } = model.dims;
    const { B } = spec;
    this.B = B;
    const label = spec.label ?? 'rollout';
    const n = spec.agents.length;
    if (n === 0) throw new Error('rollout: no agents');
    const maxPos = model.config.max_position_embeddings;
    const own = (t: Tensor) => (this.owned.push(t), t);
    const ownKV = (kv: KV) => (kv.k.forEach(own), kv.v.forEach(own), kv);
    const prep = (d: Dispatch) => (this.dispatches.push(d), d);
    let tokens = 0;
    this.hasBackward = spec.agents.some((a) => a.backward);
    const F = spec.fanout ?? 1;
    if (!Number.isInteger(F) || F < 1) throw new Error(`rollout: fanout must be a positive integer, got ${F}`);
    this.fanout = F;
    let streamEnd = 0;

    spec.agents.forEach((a, ai) => {
      const isFinal = ai === n - 1;
      if (isFinal && a.m !== 0) throw new Error(`rollout: the final agent ${a.id} cannot have latent steps`);
      if (a.preds.some((p) => p >= ai)) throw new Error(`rollout: agent ${a.id} receives from an agent that comes after it`);
      if (spec.trace === 'none' && a.preds.length) throw new Error(`rollout: agent ${a.id} has senders but the rollout has no channel`);
      if (spec.trace !== 'none' && a.m > 0 && !spec.map) throw new Error('rollout: latent steps need the latent map');
      if (a.slotOffset && a.slotOffset.slots < a.m) throw new Error(`rollout: agent ${a.id} has ${a.m} latent steps but ${a.slotOffset.slots} slot offsets`);
      const offsets: number[] = [];
      let P = 0;
      for (const p of a.preds) {
        offsets.push(P);
        P += this.agents[p].traceLen;
      }
      const start = (spec.positions ?? 'stream') === 'stream' ? streamEnd : P;
      streamEnd = start + a.n + a.m;
      const maxNeeded = start + a.n + a.m;
      if (maxPos && maxNeeded > maxPos) {
        throw new Error(`rollout: agent ${a.id} needs positions up to ${maxNeeded}, more than the model's max_position_embeddings ${maxPos}`);
      }
      // Gradient reaches the predecessors through this agent's prefix when both sides run backward.
      const gradToPreds = a.backward && a.preds.some((p) => spec.agents[p].backward);
      const Ba = isFinal ? B * F : B;
      const pre = P > 0 ? ownKV(tensors(gpu, L, [Ba, P, W], `${label} ${a.id} prefix`)) : null;
      const dPre = P > 0 && (gradToPreds || (spec.fuser && a.backward)) ? ownKV(tensors(gpu, L, [Ba, P, W], `${label} ${a.id} dprefix`)) : null;
      const fused = P > 0 && spec.fuser ? new FusedPrefix(gpu, spec.fuser, Ba, P, pre!, dPre, `${label} ${a.id}`, own, prep) : null;
      const sends = !isFinal;
      const prompt = new ModelPass(model, { B: Ba, S: a.n, P, input: 'ids' }, {
        lora: a.lora ?? undefined, backward: a.backward, prefix: pre ?? undefined, prefixGrad: dPre ?? undefined,
        upstream: a.backward && sends, posOffset: start, label: `${label} ${a.id} prompt`, lmHead: isFinal || (spec.senderLogits ?? true),
      });
      tokens += Ba * a.n;
      const latents: LatentStep[] = [];
      for (let j = 1; j <= a.m; j++) {
        const Pj = P + a.n + j - 1;
        const cache = ownKV(tensors(gpu, L, [B, Pj, W], `${label} ${a.id} z${j} cache`));
        const dCache = a.backward ? ownKV(tensors(gpu, L, [B, Pj, W], `${label} ${a.id} z${j} dcache`)) : null;
        const e = own(gpu.tensor([B, D], `${label} ${a.id} z${j} embeds`));
        const u = spec.map!.Wa ? own(gpu.tensor([B, D], `${label} ${a.id} z${j} hWa`)) : null;
        const h = j === 1 ? own(gpu.tensor([B, D], `${label} ${a.id} prompt last hidden`)) : latents[j - 2].pass.lastHidden;
        const rrms = own(gpu.tensor([B], `${label} ${a.id} z${j} rrms`));
        const pass = new ModelPass(model, { B, S: 1, P: Pj, input: 'embeds' }, {
          lora: a.lora ?? undefined, backward: a.backward, prefix: cache, prefixGrad: dCache ?? undefined,
          upstream: a.backward, embeds: e, posOffset: start + a.n + j - 1, label: `${label} ${a.id} z${j}`, lmHead: spec.senderLogits ?? true,
        });
        latents.push({ pass, cache, dCache, e, u, h, rrms, P: Pj });
        tokens += B;
      }
      const blocks: AgentRun['blocks'] = [];
      if (sends && spec.trace === 'full') blocks.push({ pass: prompt, n: a.n, kind: 'prompt' });
      if (sends && spec.trace !== 'none') for (const z of latents) blocks.push({ pass: z.pass, n: 1, kind: 'latent' });
      const traceLen = blocks.reduce((s, b) => s + b.n, 0);
      this.agents.push({ spec: a, P, start, offsets, pre, dPre, fused, prompt, latents, blocks, traceLen });
    });
    this.final = this.agents[n - 1];
    this.tokensPerForward = tokens;

    // ---- dispatches
    const kvw = (block: Tensor, cache: Tensor, nb: number, Pd: number, off: number) =>
      prep(prepareKvWrite(gpu, block, cache, { B, n: nb, W, Pd, off }));
    const kvg = (dcache: Tensor, dblock: Tensor, nb: number, Pd: number, off: number) =>
      prep(prepareKvReadGrad(gpu, dcache, dblock, { B, n: nb, W, Pd, off }, true));
    for (const ar of this.agents) {
      const a = ar.spec;
      const asm: Dispatch[] = [];
      const zero: Dispatch[] = [];
      const route: Dispatch[] = [];
      if (ar.pre) {
        // the final agent's fanout rows of an episode sit one after another: its prefix is [B, Fa*P, W]
        const Fa = ar === this.agents[n - 1] ? F : 1;
        // with a fuser the traces go to its input and its gradient to the senders (FusedPrefix)
        const into = ar.fused?.raw ?? ar.pre;
        const dFrom = ar.fused ? ar.fused.dRaw : ar.dPre;
        if (ar.fused && ar.dPre) route.push(...ar.fused.backward);
        a.preds.forEach((p, i) => {
          let off = ar.offsets[i];
          for (const blk of this.agents[p].blocks) {
            for (let l = 0; l < L; l++) {
              for (let q = 0; q < Fa; q++) {
                const at = q * ar.P + off;
                asm.push(kvw(blk.pass.newK[l], into.k[l], blk.n, Fa * ar.P, at));
                asm.push(kvw(blk.pass.newV[l], into.v[l], blk.n, Fa * ar.P, at));
                // accumulating: the gradient of a trace is the sum over every row that read it
                if (dFrom && this.agents[p].spec.backward) {
                  route.push(kvg(dFrom.k[l], blk.pass.dNewK[l], blk.n, Fa * ar.P, at));
                  route.push(kvg(dFrom.v[l], blk.pass.dNewV[l], blk.n, Fa * ar.P, at));
                }
              }
            }
            off += blk.n;
          }
        });
        if (ar.fused) asm.push(...ar.fused.forward);
        for (const t of [...ar.pre.k, ...ar.pre.v]) zero.push(prep(prepareFill(gpu, t, t.size, 0)));
        if (ar.dPre) for (const t of [...ar.dPre.k, ...ar.dPre.v]) this.clearGrads.push(prep(prepareFill(gpu, t, t.size, 0)));
      }
      this.assemble.push(asm);
      this.zeroPrefix.push(zero);
      this.routePrefix.push(route);
      const pre: Dispatch[][] = [];
      const post: Dispatch[][] = [];
      const map = spec.map;
      ar.latents.forEach((z, idx) => {
        const j = idx + 1;
        const before: Dispatch[] = [];
        const after: Dispatch[] = [];
        // cache_j = cache_{j-1} ++ latent_{j-1}  (cache_1 = pre ++ prompt)
        const [srcCache, srcLen, srcPass, passLen] =
          j === 1 ? [ar.pre, ar.P, ar.prompt, a.n] as const : [ar.latents[idx - 1].cache, ar.latents[idx - 1].P, ar.latents[idx - 1].pass, 1] as const;
        for (let l = 0; l < L; l++) {
          if (srcCache && srcLen > 0) {
            before.push(kvw(srcCache.k[l], z.cache.k[l], srcLen, z.P, 0));
            before.push(kvw(srcCache.v[l], z.cache.v[l], srcLen, z.P, 0));
          }
          before.push(kvw(srcPass.newK[l], z.cache.k[l], passLen, z.P, srcLen));
          before.push(kvw(srcPass.newV[l], z.cache.v[l], passLen, z.P, srcLen));
        }
        // the map: h (last row of the previous pass) -> u = h W_a -> e = rescale(u)
        if (j === 1) before.push(prep(prepareKvReadGrad(gpu, ar.prompt.lastHidden, z.h, { B, n: 1, W: D, Pd: a.n, off: a.n - 1 }, false)));
        if (z.u) before.push(prep(prepareMatmul(gpu, z.h, map!.Wa!, z.u, B, D, D, { layout: 'nn' })));
        before.push(prep(prepareRmsnorm(gpu, z.u ?? z.h, map!.w, z.e, z.rrms, B, D, { eps: RESCALE_EPS })));
        if (a.slotOffset) before.push(prep(a.slotOffset.prepareForward(idx, z.e, B)));
        if (z.dCache) {
          this.clearGrads.push(...[...z.dCache.k, ...z.dCache.v].map((t) => prep(prepareFill(gpu, t, t.size, 0))));
          // map backward: dEmbeds -> du (RMSNorm backward) -> dh = du W_a^T into the previous position's dLastHidden
          const prevDh = j === 1 ? own(gpu.tensor([B, D], `${label} ${a.id} d prompt last hidden`)) : ar.latents[idx - 1].pass.dLastHidden!;
          const acc = j > 1;
          // e = rescale(u) + o_{j-1}: dEmbeds is the offset's gradient (summed over rows) and the map's
          if (a.slotOffset) after.push(prep(a.slotOffset.prepareBackward(idx, z.pass.dEmbeds!, B)));
          if (z.u) {
            const du = own(gpu.tensor([B, D], `${label} ${a.id} z${j} d hWa`));
            after.push(...prepareRmsnormBackward(gpu, z.pass.dEmbeds!, z.u, map!.w, z.rrms, du, map!.dw, B, D).map(prep));
            after.push(prep(prepareMatmul(gpu, du, map!.Wa!, prevDh, B, D, D, { layout: 'nt', accumulate: acc })));
          } else {
            after.push(...prepareRmsnormBackward(gpu, z.pass.dEmbeds!, z.h, map!.w, z.rrms, prevDh, map!.dw, B, D, { accumulate: acc }).map(prep));
          }
          if (j === 1) after.push(prep(prepareKvWrite(gpu, prevDh, ar.prompt.dLastHidden!, { B, n: 1, W: D, Pd: a.n, off: a.n - 1 })));
          // cache routing: dcache_j -> dcache_{j-1} (or dpre) and the previous pass's dNewK/dNewV
          const dSrc = j === 1 ? ar.dPre : ar.latents[idx - 1].dCache;
          for (let l = 0; l < L; l++) {
            if (dSrc && srcLen > 0) {
              after.push(kvg(z.dCache.k[l], dSrc.k[l], srcLen, z.P, 0));
              after.push(kvg(z.dCache.v[l], dSrc.v[l], srcLen, z.P, 0));
            }
            after.push(kvg(z.dCache.k[l], srcPass.dNewK[l], passLen, z.P, srcLen));
            after.push(kvg(z.dCache.v[l], srcPass.dNewV[l], passLen, z.P, srcLen));
          }
        }
        pre.push(before);
        post.push(after);
      });
      this.latentPre.push(pre);
      this.latentPost.push(post);
    }
  }

  /** Writes one agent's token ids [B * n]. */
  setIds(agent: number, ids: ArrayLike<number>): void {
    this.agents[agent].prompt.setIds(ids);
  }

  /** Writes the final agent's targets [B * n] (0xFFFFFFFF = ignore). */
  setTargets(targets: ArrayLike<number>): void {
    this.final.prompt.setTargets(targets);
  }

  /** Records the forward of every agent. zeroTraces: every received prefix is set to 0 (the control). */
  recordForward(opts: { zeroTraces?: boolean } = {}): void {
    const gpu = this.model.gpu;
    this.agents.forEach((ar, i) => {
      gpu.record(...this.assemble[i]);
      if (opts.zeroTraces) gpu.record(...this.zeroPrefix[i]);
      ar.prompt.recordForward();
      ar.latents.forEach((z, j) => {
        gpu.record(...this.latentPre[i][j]);
        z.pass.recordForward();
      });
    });
  }

  /**
   * The forward of every agent, with each received prefix handed to the host before the agent's
   * passes read it (the noise and rotate controls; the whole forward is submitted agent by agent).
   * For agent i with a prefix, per layer l, K then V: its [B, P, W] values are read back and given
   * to edit(i, l, kind, values, P); when edit returns an array (the same length) it is written in
   * place of the prefix, when it returns nothing the prefix stays. Evaluation only: the edit is not
   * part of any backward.
   */
  async recordForwardWith(edit: PrefixEdit): Promise<void> {
    if (this.fanout !== 1) throw new Error('rollout: a prefix edit is for evaluation, which has one row per episode (fanout 1)');
    const gpu = this.model.gpu;
    for (let i = 0; i < this.agents.length; i++) {
      const ar = this.agents[i];
      gpu.record(...this.assemble[i]);
      if (ar.pre) {
        const { L } = this.model.dims;
        for (let l = 0; l < L; l++) {
          for (const kind of ['k', 'v'] as const) {
            const t = ar.pre[kind][l];
            // the read submits what is recorded (the assembly) first; the write then lands before
            // anything recorded after it
            const out = edit(i, l, kind, await gpu.read(t), ar.P);
            if (out) {
              if (out.length !== t.size) throw new Error(`rollout: a prefix edit returned ${out.length} values for ${t.label} of ${t.size}`);
              gpu.write(t, out);
            }
          }
        }
      }
      ar.prompt.recordForward();
      ar.latents.forEach((z, j) => {
        gpu.record(...this.latentPre[i][j]);
        z.pass.recordForward();
      });
    }
  }

  /** Re-records only the final agent's prompt pass (its prefix is unchanged): greedy decoding. */
  recordFinalForward(): void {
    this.final.prompt.recordForward();
  }

  /** Records the backward of every agent that trains, in reverse order; gradients accumulate into the adapters. */
  recordBackward(): void {
    if (!this.hasBackward) throw new Error('rollout: made without a backward');
    const gpu = this.model.gpu;
    gpu.record(...this.clearGrads);
    for (let i = this.agents.length - 1; i >= 0; i--) {
      const ar = this.agents[i];
      if (!ar.spec.backward) continue;
      for (let j = ar.latents.length - 1; j >= 0; j--) {
        ar.latents[j].pass.recordBackward();
        gpu.record(...this.latentPost[i][j]);
      }
      ar.prompt.recordBackward();
      gpu.record(...this.routePrefix[i]);
    }
  }

  /** Positions that cross to receivers per episode, and their K/V floats (every layer, K and V). */
  messageSize(): { positions: number; floats: number } {
    const { L, kvDim } = this.model.dims;
    let positions = 0;
    for (const ar of this.agents) positions += ar.P;
    return { positions, floats: positions * L * 2 * kvDim };
  }

  destroy(): void {
    for (const ar of this.agents) {
      ar.prompt.destroy();
      for (const z of ar.latents) z.pass.destroy();
    }
    for (const t of this.owned) this.model.gpu.destroy(t);
    for (const d of this.dispatches) d.destroy();
    this.owned.length = 0;
    this.dispatches.length = 0;
  }
}
