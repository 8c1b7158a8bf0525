// Pretraining a toy base model from scratch on the synthetic corpus (src/tasks/corpus.ts): skyline
// and text-message episodes of the tasks, so the base model knows the formats and can read one
// context; communicating through latents is what the adapters add later. Runs the same in the
// worker and in Node.
//
// The recipe (bench/recipe/README.md, measured): the loss ignores what no model
// can predict (random contents), copying (text senders) is a third of the corpus, every answered
// context carries a quiz of more questions, the tasks are weighted toward the settings the
// experiments use, and rows are bucketed by length so that the GPU computes on real tokens. A probe
// (teacher-forced greedy accuracy of the skyline on held-out episodes, one forward per setting)
// runs every `probeEvery` steps, so the log shows when retrieval appears.
import type { Gpu } from '../gpu/runtime';
import type { LlamaConfig } from './config';
import {
  BucketedBatches, Corpus, DEFAULT_MIX, encodeSegments, IGNORE_INDEX, requiredSeqLen, unigramEntropy, type CorpusBatch, type CorpusMix,
} from '../tasks/corpus';
import { deriveSeed } from '../tasks/rng';
import { evaluationEpisodes, formatSkyline, formatTarget, makeTask, PRETRAINED_TASK_NAMES, TASK_NAMES, type Episode, type TaskName } from '../tasks/tasks';
import { defaultTokenizer, type CharTokenizer } from '../tokenizers/char';
import type { TextTokenizer } from '../tokenizers/types';
import { presetConfig, type ModelConfig } from './config';
import { initWeights, LlamaGpu, ModelPass } from './model';
import { baseTrainParams, Optimizer, Trainer, type StepResult, type TrainHyper } from './train';

/** What the corpus holds and how it is batched. */
export interface PretrainRecipe {
  tasks: TaskName[];
  difficulties: number[];
  /** relative weight per "task:difficulty" (default 1) */
  weights: Record<string, number>;
  mix: Partial<CorpusMix>;
  /** more questions after an answer (multi-query), at most */
  quiz: number;
  /** ignore the tokens no model can predict */
  maskRandom: boolean;
  /** row lengths the batches are bucketed into: 'auto' (quartiles of the corpus's lengths) or a list ending at the corpus's seqLen */
  buckets: 'auto' | number[];
  /** the settings the probe measures ("task:difficulty") */
  probe: string[];
  /** AdamW weight decay (not on norms) */
  weightDecay: number;
}

const ALL_DIFFICULTIES = [1, 2, 3, 4, 5];

/** Every task and difficulty, weighted toward those the experiments use (lookup 1-3, relay 1-2, arith 1). */
export const DEFAULT_RECIPE: Readonly<PretrainRecipe> = Object.freeze({
  // the shipped bases' tasks: a task added later (index) must not change the default corpus
  tasks: [...PRETRAINED_TASK_NAMES],
  difficulties: ALL_DIFFICULTIES,
  weights: {
    'lookup:1': 1, 'lookup:2': 1, 'lookup:3': 1.5, 'lookup:4': 0.6, 'lookup:5': 0.6,
    'relay:1': 0.4, 'relay:2': 0.4, 'relay:3': 0.3, 'relay:4': 0.3, 'relay:5': 0.3,
    'arith:1': 2.2, 'arith:2': 0.4, 'arith:3': 0.2, 'arith:4': 0.2, 'arith:5': 0.2,
  },
  mix: { ...DEFAULT_MIX },
  quiz: 4,
  maskRandom: true,
  buckets: 'auto',
  probe: ['lookup:1', 'lookup:2', 'lookup:3', 'relay:1', 'relay:2', 'arith:1'],
  // arith's held-out sums are pairs of digits never seen together: decay is what makes the model
  // generalise them rather than memorise the train pairs (0.01: 0.74 at 8000 steps; 0.2: 0.90 at 6000)
  weightDecay: 0.2,
});

/** The CI-sized base learns lookup (the CI experiment's task) and relay. */
export const TINY_RECIPE: Readonly<PretrainRecipe> = Object.freeze({
  ...DEFAULT_RECIPE,
  tasks: ['lookup', 'relay'] as TaskName[],
  difficulties: [1, 2, 3],
  weights: { 'lookup:1': 1, 'lookup:2': 1, 'lookup:3': 1, 'relay:1': 0.3, 'relay:2': 0.3, 'relay:3': 0.3 },
  probe: ['lookup:1', 'lookup:2', 'lookup:3', 'relay:1', 'relay:2'],
  weightDecay: 0.01,
});

/** The recipe each model preset is pretrained with unless told otherwise. */
export function presetRecipe(preset: string): PretrainRecipe {
  const r = preset === 'tiny' ? TINY_RECIPE : DEFAULT_RECIPE;
  return { ...r, tasks: [...r.tasks], difficulties: [...r.difficulties], weights: { ...r.weights }, mix: { ...r.mix }, probe: [...r.probe] };
}

export interface PretrainOptions {
  preset: string;
  steps: number;
  seed: number;
  /** Sequences per micro-batch. */
  batch: number;
  lr: number;
  warmupSteps?: number;
  accumSteps?: number;
  /** The corpus and its batching (default: presetRecipe(preset)); fields given replace the preset's. */
  recipe?: Partial<PretrainRecipe>;
  /** Probe the held-out skyline every this many steps (0: never; default 250). */
  probeEvery?: number;
  /** Held-out episodes per probed setting (default 128). */
  probeSize?: number;
  onStep?: (r: PretrainStep) => void | Promise<void>;
  onProbe?: (p: PretrainProbe) => void | Promise<void>;
  /** Polled between steps: true ends pretraining early (the weights so far are returned). */
  shouldStop?: () => boolean;
  /** Start from this checkpoint (its config, weights and tokenizer) instead of the preset's random init; the recipe stays the preset's. */
  initFrom?: { id: string; config: LlamaConfig; weights: Map<string, Float32Array>; tokenizer: TextTokenizer };
}

export interface PretrainStep extends StepResult {
  totalSteps: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  /** The row length of this step's batch (its bucket). */
  seqLen: number;
}

/** Held-out skyline accuracy per probed setting at a step. */
export interface PretrainProbe {
  step: number;
  accuracy: Record<string, number>;
}

export interface PretrainResult {
  config: LlamaConfig;
  weights: Map<string, Float32Array>;
  tokenizer: TextTokenizer;
  /** Unigram entropy of the corpus's learned targets (nats): the loss a model that ignores context reaches. */
  unigramEntropy: number;
  losses: number[];
  probes: PretrainProbe[];
  provenance: Record<string, unknown>;
}

/** A full Hugging Face LlamaConfig for one of our model configs and the character tokenizer. */
export function toLlamaConfig(c: ModelConfig, tokenizer: CharTokenizer): LlamaConfig {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    vocab_size: c.vocab_size,
    rope_theta: c.rope_theta,
    rms_norm_eps: c.rms_norm_eps,
    tie_word_embeddings: c.tie_word_embeddings,
    max_position_embeddings: c.max_position_embeddings ?? 256,
    head_dim: c.hidden_size / c.num_attention_heads,
    torch_dtype: 'float32',
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  };
}

function parseSetting(s: string): { task: TaskName; difficulty: number } {
  const m = /^([a-z]+):(\d)$/.exec(s);
  if (!m || !(TASK_NAMES as readonly string[]).includes(m[1])) throw new Error(`pretrain: probe setting ${JSON.stringify(s)} is not task:difficulty (tasks: ${TASK_NAMES.join(', ')})`);
  makeTask(m[1], Number(m[2]));
  return { task: m[1] as TaskName, difficulty: Number(m[2]) };
}

/** Row-length buckets: the quartiles of `n` sampled sequence lengths, the last being seqLen. */
export function autoBuckets(corpus: Corpus, n = 2000): number[] {
  const fresh = new Corpus(corpus.options);
  const lens: number[] = [];
  for (let i = 0; i < n; i++) lens.push(encodeSegments(fresh.tokenizer, fresh.nextSequence().segments).ids.length - 1);
  lens.sort((a, b) => a - b);
  const q = [0.25, 0.5, 0.75].map((f) => lens[Math.min(n - 1, Math.floor(f * n))]);
  return [...new Set([...q, corpus.seqLen])].filter((x) => x >= 2 && x <= corpus.seqLen).sort((a, b) => a - b);
}

/** One probed setting's held-out skyline episodes, teacher-forced: [n, S] ids and targets. */
export interface ProbeBatch {
  name: string;
  n: number;
  S: number;
  ids: Uint32Array;
  targets: Uint32Array;
}

/**
 * The probe: for each setting a fixed batch of held-out skyline prompts with their answers, one
 * forward pass each; an episode counts when every answer token and <eos> is the argmax under teacher
 * forcing, which is exactly when greedy decoding gives the answer.
 */
export class SkylineProbe {
  private readonly cases: { name: string; pass: ModelPass; targets: Uint32Array; n: number }[] = [];

  /** Held-out episodes of each setting ("task:difficulty"), `size` distinct ones each (every one, once,
   * where the split holds fewer), drawn from `seed` as evaluation sets are (evaluationEpisodes). */
  static episodes(settings: readonly string[], size: number, seed: number): { name: string; episodes: Episode[] }[] {
    return settings.map((name) => {
      const { task, difficulty } = parseSetting(name);
      return { name, episodes: evaluationEpisodes(makeTask(task, difficulty), 'heldout', size, deriveSeed(seed, 'pretrain-probe')) };
    });
  }

  /** Each setting's episodes as one teacher-forced batch: [n, S] ids and targets (IGNORE_INDEX off the answer). */
  static encode(tokenizer: TextTokenizer, cases: readonly { name: string; episodes: readonly Episode[] }[]): ProbeBatch[] {
    return cases.map(({ name, episodes: eps }) => {
      const n = eps.length;
      if (!n) throw new Error(`pretrain probe: no episodes for ${name}`);
      const seqs = eps.map((ep) => ({ prompt: tokenizer.encode(formatSkyline(ep)), answer: tokenizer.encode(formatTarget(ep)) }));
      const S = Math.max(...seqs.map((s) => s.prompt.length + s.answer.length - 1));
      const ids = new Uint32Array(n * S).fill(tokenizer.padId);
      const targets = new Uint32Array(n * S).fill(IGNORE_INDEX);
      seqs.forEach(({ prompt, answer }, b) => {
        const row = [...prompt, ...answer.slice(0, -1)];
        ids.set(row, b * S);
        for (let k = 0; k < answer.length; k++) targets[b * S + prompt.length - 1 + k] = answer[k];
      });
      return { name, n, S, ids, targets };
    });
  }

  constructor(model: LlamaGpu, batches: readonly ProbeBatch[]) {
    for (const { name, n, S, ids, targets } of batches) {
      const pass = new ModelPass(model, { B: n, S, P: 0, input: 'ids' }, { label: `probe ${name}` });
      pass.setIds(ids);
      pass.setTargets(targets);
      this.cases.push({ name, pass, targets, n });
    }
  }

  async run(gpu: Gpu): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const c of this.cases) {
      c.pass.recordForward();
      const logits = await gpu.read(c.pass.logits);
      const { S } = c.pass.shape;
      const V = c.pass.dims.V;
      let correct = 0;
      for (let b = 0; b < c.n; b++) {
        let ok = true;
        for (let s = 0; s < S && ok; s++) {
          const y = c.targets[b * S + s];
          if (y === IGNORE_INDEX) continue;
          const off = (b * S + s) * V;
          let best = 0;
          for (let v = 1; v < V; v++) if (logits[off + v] > logits[off + best]) best = v;
          ok = best === y;
        }
        if (ok) correct++;
      }
      out[c.name] = correct / c.n;
    }
    return out;
  }

  destroy(): void {
    for (const c of this.cases) c.pass.destroy();
  }
}

function recipeCorpus(recipe: PretrainRecipe, seed: number, tokenizer: TextTokenizer): Corpus {
  const seqLen = requiredSeqLen(recipe.tasks, recipe.difficulties, recipe.quiz);
  return new Corpus({
    tasks: recipe.tasks, difficulty: recipe.difficulties, seed, seqLen, tokenizer,
    weights: recipe.weights, mix: recipe.mix, quiz: recipe.quiz, maskRandom: recipe.maskRandom,
  });
}

/** Throws (naming the problem) when a recipe cannot make a corpus, its buckets or its probe; no GPU work. */
export function checkRecipe(recipe: PretrainRecipe): void {
  const corpus = recipeCorpus(recipe, 0, defaultTokenizer());
  new BucketedBatches(corpus, 1, recipe.buckets === 'auto' ? [corpus.seqLen] : recipe.buckets);
  for (const p of recipe.probe) parseSetting(p);
  if (!(recipe.weightDecay >= 0 && recipe.weightDecay < 1)) throw new Error(`pretrain: weight decay must be in [0, 1), got ${recipe.weightDecay}`);
}

/**
 * What a pretraining run computes on, made without a GPU: the model's config and initial weights,
 * the corpus's batch stream, the optimizer's hyperparameters and the probe's batches. pretrainBase
 * trains on it with the engine; `pretrain --export-corpus` writes it out for another trainer
 * (python/latent_playground/pretrain.py, PyTorch, for a GPU machine without Node).
 */
export interface PretrainPlan {
  tokenizer: TextTokenizer;
  config: ModelConfig;
  /** the Hugging Face config the result is saved with */
  llamaConfig: LlamaConfig;
  initWeights: Map<string, Float32Array>;
  recipe: PretrainRecipe;
  hyper: TrainHyper;
  seqLen: number;
  buckets: number[];
  batches: BucketedBatches;
  unigramEntropy: number;
  probeEvery: number;
  probe: ProbeBatch[];
}

export function pretrainPlan(o: Omit<PretrainOptions, 'onStep' | 'onProbe' | 'shouldStop'>): PretrainPlan {
  const tokenizer: TextTokenizer = o.initFrom?.tokenizer ?? defaultTokenizer();
  const config: ModelConfig = o.initFrom?.config ?? presetConfig(o.preset, tokenizer.vocabSize);
  const recipe: PretrainRecipe = { ...presetRecipe(o.preset), ...(o.recipe ?? {}) };
  const corpus = recipeCorpus(recipe, o.seed, tokenizer);
  const buckets = recipe.buckets === 'auto' ? autoBuckets(corpus) : recipe.buckets;
  const batches = new BucketedBatches(corpus, o.batch, buckets);
  const entropy = unigramEntropy(corpus, 2000);
  const hyper: TrainHyper = {
    lr: o.lr, warmupSteps: o.warmupSteps ?? Math.min(100, Math.ceil(o.steps / 10)), totalSteps: o.steps,
    // beta2 0.95: the usual choice for pretraining small models (the recipe was measured with it)
    weightDecay: recipe.weightDecay, clip: 1, accumSteps: o.accumSteps ?? 1, beta2: 0.95,
  };
  const probeEvery = o.probeEvery ?? 250;
  const probe = probeEvery > 0 && recipe.probe.length
    ? SkylineProbe.encode(tokenizer, SkylineProbe.episodes(recipe.probe, o.probeSize ?? 128, o.seed))
    : [];
  return {
    tokenizer, config, recipe, hyper, seqLen: corpus.seqLen, buckets, batches, unigramEntropy: entropy, probeEvery, probe,
    llamaConfig: o.initFrom ? { ...o.initFrom.config, torch_dtype: 'float32' } : toLlamaConfig(config, tokenizer as CharTokenizer),
    initWeights: o.initFrom?.weights ?? initWeights(config, o.seed),
  };
}

export async function pretrainBase(gpu: Gpu, o: PretrainOptions): Promise<PretrainResult> {
  const plan = pretrainPlan(o);
  const { tokenizer, config, recipe, hyper, seqLen, buckets, batches, probeEvery } = plan;
  const entropy = plan.unigramEntropy;
  const model = new LlamaGpu(gpu, config, plan.initWeights);
  const params = baseTrainParams(model);
  const optimizer = new Optimizer(gpu, params, hyper);
  // one pass (and trainer) per bucket; they share the model, its gradients and the optimizer
  const trainers = new Map<number, { pass: ModelPass; trainer: Trainer }>();
  for (const S of buckets) {
    const pass = new ModelPass(model, { B: o.batch, S, P: 0, input: 'ids' }, { backward: true, baseGrads: true, label: `pretrain S${S}` });
    trainers.set(S, { pass, trainer: new Trainer(pass, optimizer) });
  }
  const probe = plan.probe.length ? new SkylineProbe(model, plan.probe) : null;
  const losses: number[] = [];
  const probes: PretrainProbe[] = [];
  const t0 = performance.now();
  let tokens = 0;
  let realTokens = 0;
  const carry = new Map<number, CorpusBatch[]>();
  const takeCarried = (): CorpusBatch | undefined => {
    for (const q of carry.values()) if (q.length) return q.shift();
    return undefined;
  };
  const runProbe = async (step: number) => {
    if (!probe) return;
    const p = { step, accuracy: await probe.run(gpu) };
    probes.push(p);
    await o.onProbe?.(p);
  };
  try {
    for (let s = 0; s < o.steps; s++) {
      if (o.shouldStop?.()) break;
      // the step's micro-batches all come from one bucket (the trainer's pass has one shape); with
      // accumulation, batches of other buckets drawn meanwhile wait for a later step (none is dropped)
      const first = takeCarried() ?? batches.next();
      const S = first.seqLen;
      const { trainer } = trainers.get(S)!;
      let used = 0;
      const r = await trainer.step(() => {
        let b = used++ === 0 ? first : carry.get(S)?.shift();
        while (!b) {
          const nb = batches.next();
          if (nb.seqLen === S) b = nb;
          else carry.set(nb.seqLen, [...(carry.get(nb.seqLen) ?? []), nb]);
        }
        for (let t = 0; t < b.inputs.length; t++) if (b.inputs[t] !== tokenizer.padId) realTokens++;
        return { ids: b.inputs, targets: b.targets };
      });
      tokens += r.tokens;
      losses.push(r.loss);
      const elapsed = (performance.now() - t0) / 1000;
      await o.onStep?.({ ...r, totalSteps: o.steps, tokensPerSecond: tokens / elapsed, elapsedSeconds: elapsed, seqLen: S });
      if (probe && (r.step % probeEvery === 0 || s === o.steps - 1)) await runProbe(r.step);
    }
    if (probe && losses.length && probes[probes.length - 1]?.step !== losses.length) await runProbe(losses.length);
    const weights = await model.export();
    const seconds = (performance.now() - t0) / 1000;
    return {
      config: plan.llamaConfig,
      weights,
      tokenizer,
      unigramEntropy: entropy,
      losses,
      probes,
      provenance: {
        preset: o.preset, ...(o.initFrom ? { initFrom: o.initFrom.id } : {}), steps: losses.length, seed: o.seed, batch: o.batch, lr: o.lr, warmupSteps: hyper.warmupSteps,
        accumSteps: hyper.accumSteps, beta2: hyper.beta2, weightDecay: hyper.weightDecay, seqLen, buckets, recipe,
        finalLoss: losses[losses.length - 1], unigramEntropy: entropy,
        tokens, realTokens, seconds, adapter: gpu.report.description || gpu.report.vendor,
        probes,
      },
    };
  } finally {
    probe?.destroy();
    for (const { pass, trainer } of trainers.values()) {
      trainer.destroy();
      pass.destroy();
    }
    optimizer.destroy();
    model.destroy();
  }
}
