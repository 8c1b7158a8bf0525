// Greedy decoding with the KV cache: one prefill pass over the prompt, then one pass per new token
// that attends over the cache (kv_concat grows it by one position). Passes are cached by length, so
// decoding again reuses them.
import type { Tensor } from '../gpu/runtime';
import { prepareKvWrite } from '../gpu/ops/kvcache';
import { LlamaGpu, ModelPass, type LoraGpu } from './model';

export interface GenerateOptions {
  maxNewTokens: number;
  lora?: LoraGpu;
  /** Stop a sequence at this token (it is included in the output). */
  stopId?: number;
}

export interface GenerateResult {
  /** Generated ids per sequence (up to and including stopId). */
  tokens: number[][];
  /** Logits of the last position processed for each sequence [B, V] (the last step). */
  lastLogits: Float32Array;
}

/** A forward pass produced NaN or infinite logits: greedy decoding would silently pick token 0. */
export class NonFiniteLogitsError extends Error {
  constructor(readonly where: string, readonly value: number, readonly count: number) {
    super(
      `the forward pass produced non-finite logits (${value}; ${count} of the row's values) ${where}: ` +
        'the weights, rms_norm_eps or the adapter scale (lora_alpha / r) overflow float32',
    );
    this.name = 'NonFiniteLogitsError';
  }
}

/** The argmax of each row; a row with a NaN or infinite logit throws NonFiniteLogitsError saying which. */
function argmaxRows(logits: Float32Array, rows: number[], V: number, where: (i: number) => string): number[] {
  return rows.map((r, i) => {
    let best = 0;
    let bad = 0;
    let first = 0;
    for (let v = 0; v < V; v++) {
      const x = logits[r * V + v];
      if (!Number.isFinite(x)) {
        if (bad++ === 0) first = x;
      } else if (v > 0 && x > logits[r * V + best]) best = v;
    }
    if (bad) throw new NonFiniteLogitsError(where(i), first, bad);
    return best;
  });
}

/** Greedy continuation of B prompts of equal length. */
export class Generator {
  private readonly passes = new Map<string, ModelPass>();
  private readonly caches = new Map<number, { k: Tensor[]; v: Tensor[] }>();

  constructor(
    readonly model: LlamaGpu,
    readonly lora?: LoraGpu,
  ) {}

  private pass(B: number, S: number, P: number): ModelPass {
    const key = `${B}x${S}+${P}`;
    let p = this.passes.get(key);
    if (!p) {
      p = new ModelPass(this.model, { B, S, P, input: 'ids' }, { lora: this.lora, prefix: P > 0 ? this.cache(B, P) : undefined, label: `generate ${key}` });
      this.passes.set(key, p);
    }
    return p;
  }

  private cache(B: number, P: number): { k: Tensor[]; v: Tensor[] } {
    let c = this.caches.get(B * 100000 + P);
    if (!c) {
      const { L, kvDim } = this.model.dims;
      const mk = (what: string) => Array.from({ length: L }, (_, l) => this.model.gpu.tensor([B, P, kvDim], `generate cache ${what}${l} P=${P}`));
      c = { k: mk('k'), v: mk('v') };
      this.caches.set(B * 100000 + P, c);
    }
    return c;
  }

  /** Records copying the old cache (P0 positions) and a pass's new K/V (n positions) into cache P0+n. */
  private extend(B: number, old: { k: Tensor[]; v: Tensor[] } | null, P0: number, from: ModelPass, n: number): { k: Tensor[]; v: Tensor[] } {
    const gpu = this.model.gpu;
    const { L, kvDim: W } = this.model.dims;
    const next = this.cache(B, P0 + n);
    for (let l = 0; l < L; l++) {
      for (const [src, dst, blk] of [[old?.k[l], next.k[l], from.newK[l]], [old?.v[l], next.v[l], from.newV[l]]] as const) {
        if (src && P0 > 0) gpu.recordOnce(prepareKvWrite(gpu, src, dst, { B, n: P0, W, Pd: P0 + n, off: 0 }));
        gpu.recordOnce(prepareKvWrite(gpu, blk, dst, { B, n, W, Pd: P0 + n, off: P0 }));
      }
    }
    return next;
  }

  async generate(prompts: number[][], o: GenerateOptions): Promise<GenerateResult> {
    const B = prompts.length;
    const S = prompts[0]?.length ?? 0;
    if (B === 0 || S === 0) throw new Error('generate: give at least one non-empty prompt');
    if (prompts.some((p) => p.length !== S)) throw new Error('generate: prompts must have equal lengths');
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) throw new Error(`generate: maxNewTokens must be an integer >= 0, got ${o.maxNewTokens}`);
    const maxPos = this.model.config.max_position_embeddings;
    if (maxPos && S + o.maxNewTokens > maxPos) {
      throw new Error(`generate: ${S} prompt tokens + ${o.maxNewTokens} new exceed max_position_embeddings ${maxPos}`);
    }
    const V = this.model.dims.V;
    const gpu = this.model.gpu;
    const pre = this.pass(B, S, 0);
    pre.setIds(prompts.flat());
    pre.recordForward();
    const logits = await gpu.read(pre.logits);
    // The rows of each sequence's last position.
    let last = argmaxRows(logits, Array.from({ length: B }, (_, b) => b * S + S - 1), V, (b) => `at the last prompt position ${S - 1} of sequence ${b} (the prefill)`);
    let lastLogits: Float32Array = new Float32Array(B * V);
    for (let b = 0; b < B; b++) lastLogits.set(logits.subarray((b * S + S - 1) * V, (b * S + S) * V), b * V);
    const tokens: number[][] = Array.from({ length: B }, () => []);
    const done = new Array<boolean>(B).fill(false);
    let cache = this.extend(B, null, 0, pre, S);
    let P = S;
    for (let i = 0; i < o.maxNewTokens; i++) {
      last.forEach((t, b) => {
        if (!done[b]) {
          tokens[b].push(t);
          if (t === o.stopId) done[b] = true;
        }
      });
      if (done.every(Boolean) || i === o.maxNewTokens - 1) break;
      // The decode pass of prefix length P reads cache(B, P), which extend() just filled.
      const step = this.pass(B, 1, P);
      step.setIds(last);
      step.recordForward();
      const out = await gpu.read(step.logits);
      lastLogits = out;
      last = argmaxRows(out, Array.from({ length: B }, (_, b) => b), V, (b) => `at position ${P} of sequence ${b} (new token ${i + 2})`);
      cache = this.extend(B, cache, P, step, 1);
      P += 1;
    }
    return { tokens, lastLogits };
  }

  destroy(): void {
    for (const p of this.passes.values()) p.destroy();
    for (const c of this.caches.values()) [...c.k, ...c.v].forEach((t) => this.model.gpu.destroy(t));
    this.passes.clear();
    this.caches.clear();
  }
}
