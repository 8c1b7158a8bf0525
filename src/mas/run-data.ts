// The data a run reads, made in one place so that the run itself (run.ts) and the run bundle
// (src/storage/run-bundle.ts, docs/run-bundle.md) see exactly the same episodes, prompts and batches:
// the evaluation set of each split, the stream of training batches, and each episode's token ids per
// agent. Plain CPU code (no GPU): the worker exports a bundle of a stored run from these after a reload.
import { ADAMW_DEFAULTS } from '../gpu/ops/optimizer';
import type { TrainHyper } from '../model/train';
import { encodeAdapter } from '../storage/peft';
import { withSlotOffsetFile } from '../storage/slot-offset';
import type { BundleAgentInput, BundleBatch, BundleEpisode, BundleEvalRow, BundleLatentMap, RunBundleContent } from '../storage/run-bundle';
import { deriveSeed } from '../tasks/rng';
import { DEFAULT_EVAL_SEED, evaluationEpisodes, SPLITS, type Episode, type Split, type Task } from '../tasks/tasks';
import { defaultRendering, rendering, type TaskRendering } from '../tasks/render';
import type { TextTokenizer } from '../tokenizers/types';
import type { RunConfig } from './run-types';
import { answerIds, encodeInstance, finalSequence, IGNORE, makePlan, promptText, SignatureBatcher, type PlanAgent } from './data';
import { cachedLatentMap } from './latentmap-cache';
import { runBatcher } from './curriculum';
import { messageLead, textTrainedBatcher } from './text-channel';
import { validateRunConfig, type MethodSpec } from './methods';
import type { BaseModel, TrainedAdapter } from './types';
import { fuserDims, type FuserWeights } from './c2c-fuser';
import { encodeFuserFile } from '../storage/c2c-fuser';

/**
 * A split's evaluation episodes: evalSize distinct ones (or every distinct one, each once, where the
 * split holds fewer), fixed by the evaluation seed, never the run seed: the same for every method and
 * seed of an experiment, so their results pair per episode.
 */
export function evalEpisodes(task: Task, config: Pick<RunConfig, 'evalSeed' | 'evalSize'>, split: Split): Episode[] {
  return evaluationEpisodes(task, split, config.evalSize, deriveSeed(config.evalSeed ?? DEFAULT_EVAL_SEED, 'eval'));
}

/** The stream of training batches of a run (config.batch episodes sharing one prompt-length signature each). */
export function trainingBatcher(task: Task, tokenizer: TextTokenizer, r: TaskRendering, plan: PlanAgent[], spec: MethodSpec, config: Pick<RunConfig, 'seed' | 'batch'>): SignatureBatcher {
  return new SignatureBatcher(task, config.batch, config.seed, (ep) => encodeInstance(tokenizer, r, plan, spec, plan.map(() => ep)));
}

/** The rendering of a run over a base: config.rendering, else char for a character tokenizer and word otherwise. */
export function runRendering(config: Pick<RunConfig, 'rendering'>, tokenizer: TextTokenizer): TaskRendering {
  return rendering(config.rendering ?? defaultRendering(tokenizer.kind), tokenizer);
}

/** One row of a training batch as the run feeds it: each agent's prompt ids, and the final agent's inputs and targets. */
export interface BatchRow {
  episode: Episode;
  /** Prompt ids per plan agent (plan order, the final agent last). */
  prompts: number[][];
  /** The final agent's pass: prompt then answer region (teacher forcing), S = prompt + maxAnswer tokens. */
  finalIds: number[];
  /** Target per position of the final pass; null where no loss is taken. */
  finalTargets: (number | null)[];
}

/** The first n training batches of a run, exactly as Run.trainStep draws them (a fresh stream from the seed). */
export function firstTrainingBatches(
  task: Task, tokenizer: TextTokenizer, r: TaskRendering, plan: PlanAgent[], spec: MethodSpec,
  config: Pick<RunConfig, 'seed' | 'batch' | 'textBudget'> & Partial<Pick<RunConfig, 'curriculumFrom' | 'steps'>>, n: number,
): BatchRow[][] {
  // a curriculum's stages (curriculum.ts), as Run draws them
  const batcher = runBatcher(task, { ...config, difficulty: task.difficulty }, (t) =>
    spec.name === 'text-trained' ? textTrainedBatcher(t, tokenizer, r, plan, spec, config) : trainingBatcher(t, tokenizer, r, plan, spec, config));
  const fi = plan.length - 1;
  const out: BatchRow[][] = [];
  for (let i = 0; i < n; i++) {
    const { eps, prompts } = batcher.next();
    out.push(eps.map((ep, b) => {
      const s = finalSequence(prompts[b][fi], answerIds(tokenizer, r, task, ep), r.maxAnswerChars(task), true, tokenizer.padId);
      return { episode: ep, prompts: prompts[b], finalIds: s.ids, finalTargets: s.targets.map((t) => (t === IGNORE ? null : t)) };
    }));
  }
  return out;
}

/** The optimizer settings of a run's adapters: AdamW, linear warmup (a tenth of the steps, at most 50), cosine to lr/10, clip 1, no weight decay. */
export function trainHyperOf(config: Pick<RunConfig, 'lr' | 'steps' | 'lrSchedule'>): TrainHyper {
  const warmup = Math.min(50, Math.ceil(config.steps / 10));
  // no schedule field for the default: every earlier run's hyperparameters stay as they were
  return { lr: config.lr, warmupSteps: warmup, totalSteps: config.steps, weightDecay: 0, clip: 1, accumSteps: 1, ...(config.lrSchedule === 'constant' ? { schedule: 'constant' as const } : {}) };
}

// ---------------------------------------------------------------- the run bundle's data

/** What a run bundle is made from (src/storage/run-bundle.ts; docs/run-bundle.md). */
export interface BundleSource {
  config: RunConfig;
  /** The decoded base (its tokenizer makes the ids; its weights the latent map). */
  base: BaseModel;
  /** Its Hugging Face files, as stored. */
  baseFiles: Map<string, Uint8Array>;
  baseName?: string;
  /** The trained adapters (empty for a method that trains nothing). */
  adapters: TrainedAdapter[];
  /** The same adapters at step 0. */
  initialAdapters: TrainedAdapter[];
  /** The trained Cache-to-Cache fuser (method c2c, c2c-fuser.ts); absent or null for every other method. */
  fuser?: FuserWeights | null;
  createdBy: string;
  stepsDone: number;
  losses: number[];
  evaluation: BundleEvalRow[];
  heldout: { step: number; loss: number | null; accuracy: number | null }[];
  controls?: { control: string; accuracy: number }[];
  wallSeconds: number | null;
  /** Training batches to include (default 4; trained methods only). */
  batches?: number;
  now?: Date;
}

/** run.json's training.optimizer.schedule, in words (config.lrSchedule decides which; the companion reads that). */
export const COSINE_SCHEDULE = 'linear warmup from 0 to lr over warmupSteps, then cosine from lr to minLr at config.steps';
export const CONSTANT_SCHEDULE = 'linear warmup from 0 to lr over warmupSteps, then constant lr (config.lrSchedule constant)';

/** Default number of training batches a bundle carries for the cross-check. */
export const BUNDLE_BATCHES = 4;

function agentInputs(ep: Episode, tokenizer: TextTokenizer, r: TaskRendering, plan: PlanAgent[], spec: MethodSpec): BundleAgentInput[] {
  return plan.map((pa) => {
    const prompt = promptText(r, ep, pa, spec, []);
    const ids = tokenizer.encode(prompt);
    // text channel: the received messages go right after <bos> ("msg:<content>\n" each, formatPrompt;
    // "Message:<content>\n" in the word rendering), at index 0 for a model without a <bos> token; in the
    // chat rendering right after the template's head (the text up to the user turn's content)
    const at = r.name === 'chat' ? tokenizer.encode(messageLead(r)).length : tokenizer.bosId === null ? 0 : 1;
    return spec.channel === 'text' && pa.preds.length ? { id: pa.agent.id, prompt, ids, messagesAt: at } : { id: pa.agent.id, prompt, ids };
  });
}

/** The contents of a run bundle: the base, adapters, latent map, episodes and first batches of a run, as plain data. */
export function runBundleContent(src: BundleSource): RunBundleContent {
  const { task, spec } = validateRunConfig(src.config);
  const config = src.config;
  const tk = src.base.tokenizer;
  if (!tk) throw new Error(`the base model '${src.base.name ?? src.base.id}' has no tokenizer.json: a run bundle holds the episodes' token ids, which need one`);
  const r = runRendering(config, tk);
  const plan = makePlan(config.topology, spec);
  const hyper = trainHyperOf(config);
  const encode = (a: TrainedAdapter) => withSlotOffsetFile(encodeAdapter({ config: a.config, tensors: a.tensors }, src.base.config), a.slotOffset);
  const adapters = Object.fromEntries(src.adapters.map((a) => [a.agent, encode(a)]));
  const initialAdapters = Object.fromEntries(src.initialAdapters.map((a) => [a.agent, encode(a)]));
  // a c2c run at step 0 may leave its fuser out: the initial one is A = 0, gate = 0 (c2c-fuser.ts)
  if (spec.train === 'fuser' && !src.fuser && src.stepsDone > 0) throw new Error(`a c2c run bundle after ${src.stepsDone} steps needs the run\u2019s fuser (Run.exportFuser)`);
  if (spec.train !== 'fuser' && src.fuser) throw new Error(`method ${spec.name} has no Cache-to-Cache fuser to bundle`);
  const fuser = src.fuser ? encodeFuserFile(src.fuser, fuserDims(src.fuser).L, fuserDims(src.fuser).W) : null;
  const trains = spec.train !== 'none';
  const agentKey = (pa: PlanAgent): string | null => {
    if (!trains || spec.train === 'fuser' || (spec.train === 'receiver' && !pa.final)) return null;
    return pa.agent.adapter === 'shared' ? 'shared' : pa.agent.id;
  };
  let latentMap: BundleLatentMap | null = null;
  if (spec.channel === 'latent') {
    // once per loaded base and kind (latentmap-cache.ts), not once per bundle
    const m = cachedLatentMap(src.base.config, src.base.weights, config.latentMap);
    latentMap = { kind: m.kind, D: m.D, lambda: m.lambda, targetNorm: m.targetNorm, Wa: m.Wa ? Float32Array.from(m.Wa) : null };
  }
  const episodes: Partial<Record<Split, BundleEpisode[]>> = {};
  for (const split of SPLITS) {
    episodes[split] = evalEpisodes(task, config, split).map((ep, index) => ({
      split, index, key: ep.key, parts: ep.parts.slice(), answer: ep.answer, targetIds: answerIds(tk, r, task, ep), agents: agentInputs(ep, tk, r, plan, spec),
    }));
  }
  const batches: BundleBatch[] = trains && (spec.channel !== 'text' || spec.name === 'text-trained')
    ? firstTrainingBatches(task, tk, r, plan, spec, config, src.batches ?? BUNDLE_BATCHES).map((rows, i) => ({
        batch: i + 1,
        signature: rows[0].prompts.map((p) => p.length).join(','),
        rows: rows.map((r) => ({ key: r.episode.key, parts: r.episode.parts.slice(), answer: r.episode.answer, promptIds: r.prompts, finalIds: r.finalIds, finalTargets: r.finalTargets })),
      }))
    : [];
  return {
    meta: {
      createdAt: (src.now ?? new Date()).toISOString(),
      createdBy: src.createdBy,
      config: structuredClone(config),
      method: { name: spec.name, channel: spec.channel, trace: spec.trace, train: spec.train, skyline: spec.skyline },
      positions: config.positions ?? 'stream',
      agents: plan.map((pa) => ({
        id: pa.agent.id, name: pa.agent.name, role: pa.agent.role, latentSteps: pa.m, adapter: pa.agent.adapter, adapterKey: agentKey(pa),
        final: pa.final, predecessors: pa.preds.map((p) => plan[p].agent.id),
      })),
      base: { id: src.base.id, ...(src.baseName ? { name: src.baseName } : {}) },
      tokens: { pad: tk.padId, bos: tk.bosId, eos: tk.eosId, vocabSize: tk.vocabSize },
      maxAnswerTokens: r.maxAnswerChars(task),
      training: {
        stepsDone: src.stepsDone,
        losses: src.losses.slice(),
        optimizer: {
          name: 'adamw', beta1: ADAMW_DEFAULTS.beta1, beta2: ADAMW_DEFAULTS.beta2, eps: ADAMW_DEFAULTS.eps, weightDecay: hyper.weightDecay, clip: hyper.clip,
          warmupSteps: hyper.warmupSteps, schedule: hyper.schedule === 'constant' ? CONSTANT_SCHEDULE : COSINE_SCHEDULE, minLr: hyper.minLr ?? hyper.lr / 10,
        },
      },
      results: { evaluation: src.evaluation, heldout: src.heldout, ...(src.controls ? { controls: src.controls } : {}) },
      wallSeconds: src.wallSeconds,
    },
    base: new Map(src.baseFiles), adapters, initialAdapters, latentMap, episodes, batches, ...(fuser ? { fuser } : {}),
  };
}
