// The trained text channel on the GPU (method text-trained): B episodes through a DAG of agents that
// share one frozen base model and talk in tokens, each message exactly T tokens written greedily,
// trained straight-through. Every pass, cache and dispatch is made once and replayed.
//
// Per agent a, in topological order (the final agent last):
//   prompt    ModelPass over its n_a token ids from position 0 (its own context, as the untrained text
//             method's): at each predecessor's message slot the ids are that sender's tokens, which
//             the sender's forward writes there on the GPU (st_scatter); the final agent's pass also
//             holds the answer region (teacher forced)
//   token 0   h = the prompt pass's last hidden state (row n_a - 1), logits = h lm_head^T, masked
//             (newline and special tokens may not be written: every message has exactly T tokens, so
//             every shape is fixed), token = argmax, p = softmax(logits / tau) (st_forward)
//   token j   (j = 1..T-1) a ModelPass, S = 1, reading token j-1 at position n_a + j - 1 over
//             cache_j = prompt K/V ++ steps 1..j-1, whose last hidden state gives token j the same way
// No Gumbel noise: the forward writes the greedy token in training as in evaluation, so training
// optimises exactly the messages evaluation reads (and the engine and the PyTorch companion agree
// token for token); tau sets how far the straight-through gradient spreads over other tokens.
//
// Backward (reverse topological order), straight-through: the surrogate input of token j is
// e_j = E[token_j] + (p_j - stopgrad p_j) E. Its gradient de_j [B, D] sums every receiver's input
// gradient at its slot (ModelPass inputGrad) and that of the sender's own step j+1, which read it
// (BPTT through the decoding); then g = E de_j over the vocabulary, dlogits = (1/tau) p (g - <p, g>)
// (st_backward), dh = dlogits lm_head into the last hidden state that made the logits, and the pass
// backward (final norm, layers, LoRA) from there. Steps run backward T-1..1, then the prompt pass.
// Reference: text-reference.ts (float64); tests/text-channel.test.ts holds the two together.
import type { Dispatch, Gpu, Tensor } from '../gpu/runtime';
import { prepareKvReadGrad, prepareKvWrite } from '../gpu/ops/kvcache';
import { prepareMatmul } from '../gpu/ops/matmul';
import { prepareAxpy, prepareFill } from '../gpu/ops/elementwise';
import { prepareStBackward, prepareStForward, prepareStScatter } from '../gpu/ops/straightthrough';
import { ModelPass, type LlamaGpu, type LoraGpu } from '../model/model';
import type { KV } from './rollout';

export interface TextRolloutAgent {
  id: string;
  /** Indices (into the rollout's agents) of the senders whose messages it reads, in order. */
  preds: number[];
  /** Tokens of its prompt pass (the final agent: prompt + answer region), message slots included. */
  n: number;
  /** Per predecessor: the position of the first token of its message in this agent's prompt. */
  slots: number[];
  lora: LoraGpu | null;
  /** Its passes run backward (gradient reaches this agent). */
  backward: boolean;
}

export interface TextRolloutSpec {
  B: number;
  /** Topological order; the last one is the final agent (whose pass carries the loss); every other one sends. */
  agents: TextRolloutAgent[];
  /** Tokens per message. */
  T: number;
  /** Temperature of the straight-through softmax. */
  tau: number;
  /** u32 [V]: 1 where a sender may write the token. */
  allowed: Tensor;
  label?: string;
}

interface TokenStep {
  /** The pass reading token j-1 (null for token 0, which the prompt pass's last row makes). */
  pass: ModelPass | null;
  cache: KV | null;
  dCache: KV | null;
  /** p [B, V] and the written tokens u32 [B]. */
  p: Tensor;
  tokens: Tensor;
  /** Gradient on the token's input embedding [B, D]. */
  de: Tensor | null;
  P: number;
}

export interface TextAgentRun {
  spec: TextRolloutAgent;
  prompt: ModelPass;
  /** Per message token j (senders only). */
  steps: TokenStep[];
}

const kvTensors = (gpu: Gpu, L: number, shape: number[], label: string): KV => ({
  k: Array.from({ length: L }, (_, l) => gpu.tensor(shape, `${label} K l${l}`)),
  v: Array.from({ length: L }, (_, l) => gpu.tensor(shape, `${label} V l${l}`)),
});

export class TextRollout {
  readonly agents: TextAgentRun[] = [];
  readonly final: TextAgentRun;
  readonly B: number;
  readonly T: number;
  /** Tokens one forward processes (every pass, every row). */
  readonly tokensPerForward: number;
  readonly hasBackward: boolean;
  private readonly owned: Tensor[] = [];
  private readonly dispatches: Dispatch[] = [];
  /** Per agent, per token j: what runs before step j's pass (cache assembly) and after it (logits, st_forward, scatters). */
  private readonly fwdBefore: Dispatch[][][] = [];
  private readonly fwdAfter: Dispatch[][][] = [];
  /** Per agent, per token j (backward): de_j, the softmax backward into dLastHidden; after step j's backward, cache routing. */
  private readonly bwdBefore: Dispatch[][][] = [];
  private readonly bwdAfter: Dispatch[][][] = [];
  private readonly clearGrads: Dispatch[] = [];

  constructor(
    readonly model: LlamaGpu,
    readonly spec: TextRolloutSpec,
  ) {
    const gpu = model.gpu;
    const { L, kvDim: W, D, V } = model.dims;
    const { B, T, tau } = spec;
    this.B = B;
    this.T = T;
    const label = spec.label ?? 'text rollout';
    const n = spec.agents.length;
    if (n < 2) throw new Error('text rollout: needs at least one sender and the final agent');
    if (!Number.isInteger(T) || T < 1) throw new Error(`text rollout: a message needs at least 1 token, got ${T}`);
    if (!(tau > 0 && Number.isFinite(tau))) throw new Error(`text rollout: the temperature must be a positive number, got ${tau}`);
    if (spec.allowed.dtype !== 'u32' || spec.allowed.size < V) throw new Error(`text rollout: allowed must be u32 [${V}], got ${spec.allowed.dtype} of ${spec.allowed.size}`);
    const maxPos = model.config.max_position_embeddings;
    const own = (t: Tensor) => (this.owned.push(t), t);
    const ownKV = (kv: KV) => (kv.k.forEach(own), kv.v.forEach(own), kv);
    const prep = (d: Dispatch) => (this.dispatches.push(d), d);
    this.hasBackward = spec.agents.some((a) => a.backward);
    const E = model.param('model.embed_tokens.weight');
    const head = model.param(model.lmHeadName);
    let tokens = 0;

    spec.agents.forEach((a, ai) => {
      const isFinal = ai === n - 1;
      if (a.preds.some((p) => p >= ai)) throw new Error(`text rollout: agent ${a.id} receives from an agent that comes after it`);
      if (a.slots.length !== a.preds.length) throw new Error(`text rollout: agent ${a.id} has ${a.slots.length} message slots for ${a.preds.length} senders`);
      const used = new Set<number>();
      for (const s of a.slots) {
        if (!Number.isInteger(s) || s < 0 || s + T > a.n) throw new Error(`text rollout: agent ${a.id}'s message slot at ${s} (${T} tokens) does not fit its ${a.n} positions`);
        for (let j = 0; j < T; j++) {
          if (used.has(s + j)) throw new Error(`text rollout: agent ${a.id}'s message slots overlap at position ${s + j}`);
          used.add(s + j);
        }
      }
      const sends = !isFinal;
      const maxNeeded = a.n + (sends ? T - 1 : 0);
      if (maxPos && maxNeeded > maxPos) throw new Error(`text rollout: agent ${a.id} needs positions up to ${maxNeeded}, more than the model's max_position_embeddings ${maxPos}`);
      const prompt = new ModelPass(model, { B, S: a.n, P: 0, input: 'ids' }, {
        lora: a.lora ?? undefined, backward: a.backward, upstream: a.backward && sends, inputGrad: a.backward && a.preds.length > 0,
        posOffset: 0, label: `${label} ${a.id} prompt`, lmHead: isFinal,
      });
      tokens += B * a.n;
      const steps: TokenStep[] = [];
      if (sends) {
        for (let j = 0; j < T; j++) {
          const P = a.n + j - 1;
          let pass: ModelPass | null = null;
          let cache: KV | null = null;
          let dCache: KV | null = null;
          if (j > 0) {
            cache = ownKV(kvTensors(gpu, L, [B, P, W], `${label} ${a.id} t${j} cache`));
            dCache = a.backward ? ownKV(kvTensors(gpu, L, [B, P, W], `${label} ${a.id} t${j} dcache`)) : null;
            pass = new ModelPass(model, { B, S: 1, P, input: 'ids' }, {
              lora: a.lora ?? undefined, backward: a.backward, prefix: cache, prefixGrad: dCache ?? undefined,
              upstream: a.backward, inputGrad: a.backward, posOffset: P, label: `${label} ${a.id} t${j}`, lmHead: false,
            });
            tokens += B;
          }
          steps.push({
            pass, cache, dCache, P,
            p: own(gpu.tensor([B, V], `${label} ${a.id} t${j} p`)),
            tokens: own(gpu.tensor([B], `${label} ${a.id} t${j} tokens`, undefined, 'u32')),
            de: a.backward ? own(gpu.tensor([B, D], `${label} ${a.id} t${j} d embed`)) : null,
          });
        }
      }
      this.agents.push({ spec: a, prompt, steps });
    });
    this.final = this.agents[n - 1];
    this.tokensPerForward = tokens;

    // ---- dispatches
    const kvw = (block: Tensor, cache: Tensor, nb: number, Pd: number, off: number) => prep(prepareKvWrite(gpu, block, cache, { B, n: nb, W, Pd, off }));
    const kvg = (dcache: Tensor, dblock: Tensor, nb: number, Pd: number, off: number) => prep(prepareKvReadGrad(gpu, dcache, dblock, { B, n: nb, W, Pd, off }, true));
    // who reads each sender's message: (receiver, slot)
    const readers = this.agents.map(() => [] as { r: TextAgentRun; slot: number }[]);
    for (const r of this.agents) r.spec.preds.forEach((p, i) => readers[p].push({ r, slot: r.spec.slots[i] }));
    for (const [ai, ar] of this.agents.entries()) {
      const a = ar.spec;
      const fb: Dispatch[][] = [];
      const fa: Dispatch[][] = [];
      const bb: Dispatch[][] = [];
      const ba: Dispatch[][] = [];
      if (ar.steps.length) {
        const h = own(gpu.tensor([B, D], `${label} ${a.id} prompt last hidden`));
        const logits = own(gpu.tensor([B, V], `${label} ${a.id} logits`));
        const g = a.backward ? own(gpu.tensor([B, V], `${label} ${a.id} g`)) : null;
        const dl = a.backward ? own(gpu.tensor([B, V], `${label} ${a.id} dlogits`)) : null;
        const dh0 = a.backward ? own(gpu.tensor([B, D], `${label} ${a.id} d prompt last hidden`)) : null;
        ar.steps.forEach((z, j) => {
          const before: Dispatch[] = [];
          const after: Dispatch[] = [];
          if (j > 0) {
            // cache_j = cache_{j-1} ++ step_{j-1}  (cache_1 = the prompt's K/V)
            const prev = ar.steps[j - 1];
            const [src, srcLen, srcPass, passLen] = j === 1 ? [null, 0, ar.prompt, a.n] as const : [prev.cache!, prev.P, prev.pass!, 1] as const;
            for (let l = 0; l < L; l++) {
              if (src) {
                before.push(kvw(src.k[l], z.cache!.k[l], srcLen, z.P, 0));
                before.push(kvw(src.v[l], z.cache!.v[l], srcLen, z.P, 0));
              }
              before.push(kvw(srcPass.newK[l], z.cache!.k[l], passLen, z.P, srcLen));
              before.push(kvw(srcPass.newV[l], z.cache!.v[l], passLen, z.P, srcLen));
            }
          }
          // token j: logits from the last hidden state, the greedy allowed token, its softmax; the token into every reader's ids
          const hj = j === 0 ? h : z.pass!.lastHidden;
          if (j === 0) after.push(prep(prepareKvReadGrad(gpu, ar.prompt.lastHidden, h, { B, n: 1, W: D, Pd: a.n, off: a.n - 1 }, false)));
          after.push(prep(prepareMatmul(gpu, hj, head, logits, B, V, D, { layout: 'nt' })));
          after.push(prep(prepareStForward(gpu, logits, spec.allowed, z.p, z.tokens, B, V, tau)));
          if (j + 1 < T) after.push(prep(prepareStScatter(gpu, z.tokens, ar.steps[j + 1].pass!.ids!, B, 1, 0)));
          for (const { r, slot } of readers[ai]) after.push(prep(prepareStScatter(gpu, z.tokens, r.prompt.ids!, B, r.spec.n, slot + j)));
          fb.push(before);
          fa.push(after);

          const bBefore: Dispatch[] = [];
          const bAfter: Dispatch[] = [];
          if (z.de) {
            // de_j = sum of the readers' input gradients at the slot (+ step j+1's, which read token j)
            bBefore.push(prep(prepareFill(gpu, z.de, B * D, 0)));
            for (const { r, slot } of readers[ai]) {
              if (r.prompt.dEmbeds) bBefore.push(prep(prepareKvReadGrad(gpu, r.prompt.dEmbeds, z.de, { B, n: 1, W: D, Pd: r.spec.n, off: slot + j }, true)));
            }
            if (j + 1 < T) bBefore.push(prep(prepareAxpy(gpu, ar.steps[j + 1].pass!.dEmbeds!, z.de, B * D, 1)));
            bBefore.push(prep(prepareMatmul(gpu, z.de, E, g!, B, V, D, { layout: 'nt' })));
            bBefore.push(prep(prepareStBackward(gpu, z.p, g!, dl!, B, V, tau)));
            if (j > 0) bBefore.push(prep(prepareMatmul(gpu, dl!, head, z.pass!.dLastHidden!, B, D, V, { layout: 'nn' })));
            else {
              bBefore.push(prep(prepareMatmul(gpu, dl!, head, dh0!, B, D, V, { layout: 'nn' })));
              bBefore.push(prep(prepareKvWrite(gpu, dh0!, ar.prompt.dLastHidden!, { B, n: 1, W: D, Pd: a.n, off: a.n - 1 })));
            }
            if (j > 0) {
              // cache routing: dcache_j -> dcache_{j-1} (positions before step j-1) and the previous pass's dNewK/dNewV
              this.clearGrads.push(...[...z.dCache!.k, ...z.dCache!.v].map((t) => prep(prepareFill(gpu, t, t.size, 0))));
              const prev = ar.steps[j - 1];
              const [dSrc, srcLen, srcPass, passLen] = j === 1 ? [null, 0, ar.prompt, a.n] as const : [prev.dCache!, prev.P, prev.pass!, 1] as const;
              for (let l = 0; l < L; l++) {
                if (dSrc) {
                  bAfter.push(kvg(z.dCache!.k[l], dSrc.k[l], srcLen, z.P, 0));
                  bAfter.push(kvg(z.dCache!.v[l], dSrc.v[l], srcLen, z.P, 0));
                }
                bAfter.push(kvg(z.dCache!.k[l], srcPass.dNewK[l], passLen, z.P, srcLen));
                bAfter.push(kvg(z.dCache!.v[l], srcPass.dNewV[l], passLen, z.P, srcLen));
              }
            }
          }
          bb.push(bBefore);
          ba.push(bAfter);
        });
      }
      this.fwdBefore.push(fb);
      this.fwdAfter.push(fa);
      this.bwdBefore.push(bb);
      this.bwdAfter.push(ba);
    }
  }

  /** Writes one agent's token ids [B * n] (its message slots are overwritten by the senders' tokens in the forward). */
  setIds(agent: number, ids: ArrayLike<number>): void {
    this.agents[agent].prompt.setIds(ids);
  }

  /** Writes the final agent's targets [B * n] (0xFFFFFFFF = ignore). */
  setTargets(targets: ArrayLike<number>): void {
    this.final.prompt.setTargets(targets);
  }

  /** Records the forward: every agent's prompt pass, each sender's decoding and its tokens into its readers' ids. */
  recordForward(): void {
    const gpu = this.model.gpu;
    this.agents.forEach((ar, i) => {
      ar.prompt.recordForward();
      ar.steps.forEach((z, j) => {
        gpu.record(...this.fwdBefore[i][j]);
        z.pass?.recordForward();
        gpu.record(...this.fwdAfter[i][j]);
      });
    });
  }

  /** Re-records only the final agent's prompt pass (the messages are in its ids): greedy decoding. */
  recordFinalForward(): void {
    this.final.prompt.recordForward();
  }

  /** Records the backward of every agent that trains, in reverse order; gradients accumulate into the adapters. */
  recordBackward(): void {
    if (!this.hasBackward) throw new Error('text rollout: made without a backward');
    const gpu = this.model.gpu;
    gpu.record(...this.clearGrads);
    for (let i = this.agents.length - 1; i >= 0; i--) {
      const ar = this.agents[i];
      if (!ar.spec.backward) continue;
      for (let j = ar.steps.length - 1; j >= 0; j--) {
        gpu.record(...this.bwdBefore[i][j]);
        if (j > 0) {
          ar.steps[j].pass!.recordBackward();
          gpu.record(...this.bwdAfter[i][j]);
        }
      }
      ar.prompt.recordBackward();
    }
  }

  /** The tokens each sender wrote in the last forward: per agent (senders only, [] for the final one) per row its T ids. */
  async readMessages(): Promise<number[][][]> {
    const out: number[][][] = [];
    for (const ar of this.agents) {
      const rows: number[][] = Array.from({ length: ar.steps.length ? this.B : 0 }, () => []);
      for (const z of ar.steps) {
        const t = await this.model.gpu.readU32(z.tokens);
        for (let b = 0; b < this.B; b++) rows[b].push(t[b]);
      }
      out.push(rows);
    }
    return out;
  }

  destroy(): void {
    for (const ar of this.agents) {
      ar.prompt.destroy();
      for (const z of ar.steps) z.pass?.destroy();
    }
    for (const t of this.owned) this.model.gpu.destroy(t);
    for (const d of this.dispatches) d.destroy();
    this.owned.length = 0;
    this.dispatches.length = 0;
  }
}
