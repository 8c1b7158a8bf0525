// Shared test helpers: one Dawn device per test file, seeded data, the error measures, and the pieces
// of the GPU-vs-float64 gradient checks of the multi-agent rollouts (mas-gradient, text-channel, trained baselines).
import { createNodeGpu } from '../src/gpu/node';
import type { Gpu } from '../src/gpu/runtime';
import type { BaseModel } from '../src/mas/types';
import type { ModelConfig } from '../src/model/config';
import { initWeights, LlamaGpu, LoraGpu, type LoraConfig } from '../src/model/model';
import { toLlamaConfig } from '../src/model/pretrain';
import type { RefLora, RefLoraPair } from '../src/reference/model';
import { Rng } from '../src/tasks/rng';
import { defaultTokenizer } from '../src/tokenizers/char';

let shared: Promise<Gpu> | null = null;
export function testGpu(): Promise<Gpu> {
  shared ??= createNodeGpu();
  return shared;
}

/** Destroys the file's device (tests/setup.ts calls it after each file): Dawn must not be torn down
 * by process exit with a live device, which can crash or hang the test worker. */
export async function disposeTestGpu(): Promise<void> {
  if (!shared) return;
  const gpu = await shared;
  shared = null;
  await gpu.device.queue.onSubmittedWorkDone();
  gpu.dispose();
}

/** Seeded uniform [0, 1) stream so every test sees the same data. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** max |a-b| / (1 + |b|) over all elements (b is the reference). */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i]));
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : Math.max(m, e);
  }
  return m;
}

/**
 * max |got - ref| / max |ref| over one tensor (ref the reference), Infinity when the lengths differ.
 * Scale-free, so a tensor of tiny gradients is held to the same relative standard as a large one: the
 * measure of the GPU-vs-float64 tests (model, hf-models, mas-gradient, text-channel, trained baselines).
 */
export function normErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(got[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den === 0 ? num : num / den;
}

/** The central difference (step 1e-5) of loss() in arr[idx]; arr[idx] is restored after. */
export function centralDiff(arr: Float64Array, idx: number, loss: () => number): number {
  const old = arr[idx];
  arr[idx] = old + 1e-5;
  const lp = loss();
  arr[idx] = old - 1e-5;
  const lm = loss();
  arr[idx] = old;
  return (lp - lm) / 2e-5;
}

/**
 * The reference's gradient of module `mod` of adapter `key`: an adapter shared by several agents gets
 * the sum of their gradients (agent i uses adapter keys[i]); an agent with no gradient for the module
 * (it does not train) adds nothing. sizeA, sizeB: the lengths of the module's A and B.
 */
export function sharedRefGrad(
  keys: readonly (string | null)[], grads: readonly Map<string, RefLoraPair>[], key: string, mod: string, sizeA: number, sizeB: number,
): { A: Float64Array; B: Float64Array } {
  const A = new Float64Array(sizeA);
  const B = new Float64Array(sizeB);
  keys.forEach((k, i) => {
    const g = k === key ? grads[i].get(mod) : undefined;
    if (!g) return;
    g.A.forEach((v, j) => (A[j] += v));
    g.B.forEach((v, j) => (B[j] += v));
  });
  return { A, B };
}

/** The GPU model of float64 reference weights, and per reference adapter a LoraGpu (of `lora`) holding its weights. */
export function gpuFromRef(
  gpu: Gpu, config: ModelConfig, params: Map<string, Float64Array>, refLoras: Map<string, RefLora>, lora: LoraConfig,
): { model: LlamaGpu; loras: Map<string, LoraGpu> } {
  const weights = new Map<string, Float32Array>();
  for (const [k, v] of params) weights.set(k, Float32Array.from(v));
  const model = new LlamaGpu(gpu, config, weights);
  const loras = new Map<string, LoraGpu>();
  for (const [key, rl] of refLoras) {
    const l = new LoraGpu(gpu, config, lora);
    l.load(rl.targets);
    loras.set(key, l);
  }
  return { model, loras };
}

/**
 * One training step of a rollout with every adapter gradient cleared first; returns how many pipelines
 * and buffers it created (a repeated step must reuse every one: 0 and 0).
 */
export async function gradStep(gpu: Gpu, loras: Iterable<LoraGpu>, ro: { recordForward(): void; recordBackward(): void }): Promise<{ pipelines: number; buffers: number }> {
  for (const l of loras) for (const m of l.modules.values()) [m.dA, m.dB].forEach((t) => gpu.clear(t));
  const p0 = gpu.pipelinesCompiled;
  const b0 = gpu.buffersCreated;
  ro.recordForward();
  ro.recordBackward();
  await gpu.sync();
  return { pipelines: gpu.pipelinesCompiled - p0, buffers: gpu.buffersCreated - b0 };
}

/** The small model the run tests train: the char tokenizer's vocabulary, D 16, 2 layers, GQA 2/1, tied embeddings. */
export const RUN_CFG: ModelConfig = {
  hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
  vocab_size: defaultTokenizer().vocabSize, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 256,
};

/** A base of RUN_CFG with random weights (N(0, 0.1^2) drawn from `seed`) and the char tokenizer. */
export function randomBase(seed = 3): BaseModel {
  const tokenizer = defaultTokenizer();
  return { id: `random-${seed}`, config: toLlamaConfig(RUN_CFG, tokenizer), weights: initWeights(RUN_CFG, seed, 0.1), tokenizer };
}

/** A PEFT adapter (its lora_A / lora_B tensors by PEFT name) as the float64 reference's LoRA, module names as projName gives them. */
export function refLoraOf(a: { tensors: ReadonlyMap<string, ArrayLike<number>>; config: { r: number; lora_alpha: number } }): RefLora {
  const targets = new Map<string, { A: Float64Array; B: Float64Array }>();
  for (const [name, t] of a.tensors) {
    const mod = name.replace(/^base_model\.model\./, '').replace(/\.lora_[AB]\.weight$/, '');
    const pair = targets.get(mod) ?? { A: new Float64Array(), B: new Float64Array() };
    if (name.endsWith('lora_A.weight')) pair.A = Float64Array.from(t);
    else pair.B = Float64Array.from(t);
    targets.set(mod, pair);
  }
  return { r: a.config.r, alpha: a.config.lora_alpha, targets };
}
