// One multi-agent run (a RunConfig over a base model): its adapters, optimizer, rollouts (one per
// prompt-length signature, made once and reused), training step, evaluation with the controls, and
// inspection of one episode. The controller (controller.ts) and the experiment runner
// (experiment.ts) drive it; everything here is deterministic in (config, base model).
//
// Evaluation: the split's evalSize distinct episodes (fixed by config.evalSeed, the same for every method and seed), in
// batches of config.batch grouped by prompt lengths; the final agent's answer is decoded greedily
// (answer then <eos>, at most task.maxAnswerLength + 1 tokens) and compared with isCorrect.
// Controls: 'shuffle' gives every sender the episode of another batch row (a derangement of the
// evaluation set; the final agent keeps its own), so each receiver reads a mismatched message;
// 'zero' sets every received K/V prefix to 0 (latent channel) or empties every received text message
// ("msg:\n", text channel). Latent channel only (a text message has no K/V to draw or turn):
// 'noise' replaces every received K/V prefix by Gaussian noise with that prefix's mean and full
// covariance per layer, K and V apart, measured over the whole evaluation set of the split on the
// uncontrolled traces; 'rotate' turns every received K/V by a random rotation per layer and K/V head
// (one matrix for K and V of a head, fixed by the run seed); 'permute' reorders each sender's latent
// positions by a seeded derangement, each moved key turned to its new slot's RoPE angles. Exact
// definitions: controls.ts. Every
// receiver's prefix is controlled (in a chain the relay reads the controlled trace too, as with
// 'zero'), and each is seeded from the run seed (deriveSeed).
import type { Gpu, Tensor } from '../gpu/runtime';
import { LlamaGpu, LoraGpu } from '../model/model';
import { DivergedError, loraTrainParams, Optimizer } from '../model/train';
import { NonFiniteLogitsError } from '../model/generate';
import type { ModelConfig, Proj } from '../model/config';
import { loraKey, type LoraAdapterConfig, type LoraTarget } from '../storage/peft';
import { deriveSeed, Rng } from '../tasks/rng';
import type { Episode, Split, Task } from '../tasks/tasks';
import { defaultRendering, rendering, type TaskRendering } from '../tasks/render';
import { stopsText } from '../tokenizers';
import type { TextTokenizer } from '../tokenizers/types';
import type {
  AgentInspection, ControlName, EdgeInspection, EvalRow, InspectResult, MethodName, RunConfig, RunTrainingState, SenderPosition,
} from './run-types';
import type { BaseModel, TrainedAdapter } from './types';
import type { LatentMapKind } from './latentmap';
import { cachedLatentMap } from './latentmap-cache';
import { SlotOffsetGpu, slotOffsetSlots } from './slot-offset';
import { GpuLatentMap, Rollout, type PrefixEdit, type RolloutAgent } from './rollout';
import { answerAlone, DEFAULT_TEXT_TEMPERATURE, encodeTextTrained, TextChannel, textTrainedBatcher } from './text-channel';
import { GaussianRows, latentPermutation, Moments, permuteBlocks, randomRotation, rotateHeads } from './controls';
import { validateRunConfig, type MethodSpec } from './methods';
import { C2cFuserGpu, type FuserWeights } from './c2c-fuser';
import { keyFrequencies, latentBlocks } from './received';
import { evalEpisodes, trainHyperOf, trainingBatcher } from './run-data';
import { quizRows } from './quiz';
import { runBatcher, type TrainingBatcher } from './curriculum';
import {
  answerIds, chunks, derangement, encodeInstance, finalBatch, finalSequence, groupBy, IGNORE, makePlan, promptText, signatureOf,
  type PlanAgent,
} from './data';

export type Control = 'none' | ControlName;

/** Rollouts (one per batch size, prompt-length signature and direction) a run keeps at most. */
export const MAX_ROLLOUTS = 6;

/** The controls of a channel: every one for the latent channel, shuffle and zero for text, none without one. */
export function controlsFor(channel: MethodSpec['channel']): readonly ControlName[] {
  return channel === 'latent' ? ['shuffle', 'zero', 'noise', 'rotate', 'permute'] : channel === 'text' ? ['shuffle', 'zero'] : [];
}

/** The frozen base model on the GPU and its latent maps, shared by every run over it. */
export class MasEngine {
  readonly model: LlamaGpu;
  private readonly maps = new Map<LatentMapKind, GpuLatentMap>();

  constructor(
    readonly gpu: Gpu,
    readonly base: BaseModel,
  ) {
    if (!base.tokenizer) {
      throw new Error(`the base model '${base.name ?? base.id}' has no tokenizer.json: a run writes its task as text, which only the model's tokenizer can encode (token ids alone work with generate --ids)`);
    }
    const tk = base.tokenizer;
    if (tk.kind === 'char' ? tk.vocabSize !== base.config.vocab_size : tk.vocabSize > base.config.vocab_size) {
      throw new Error(`the base model '${base.name ?? base.id}': tokenizer has ${tk.vocabSize} symbols, config vocab_size ${base.config.vocab_size}`);
    }
    this.model = new LlamaGpu(gpu, base.config as ModelConfig, base.weights);
  }

  get tokenizer(): TextTokenizer {
    return this.base.tokenizer!;
  }

  latentMap(kind: LatentMapKind): GpuLatentMap {
    let m = this.maps.get(kind);
    if (!m) {
      // computed once per loaded base and kind: run bundles of the same base reuse it (latentmap-cache.ts)
      m = new GpuLatentMap(this.gpu, cachedLatentMap(this.base.config, this.base.weights, kind));
      this.maps.set(kind, m);
    }
    return m;
  }

  destroy(): void {
    for (const m of this.maps.values()) m.destroy();
    this.maps.clear();
    this.model.destroy();
  }
}

export interface StepInfo {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  tokens: number;
}

/** EvalRow plus what the controller and the experiment also use. */
export interface EvalOutcome extends EvalRow {
  /** Teacher-forced cross-entropy on the answer and <eos>, per token. */
  loss: number;
  predictions: string[];
  correct: boolean[];
}

/** Run.evaluate's extra: an edit of every received prefix, made per rollout (the bits sweep, quantize.ts). */
export interface EvaluateExtra {
  edit?: (ro: Rollout) => PrefixEdit;
}

/** Where a decoded row sits, for NonFiniteLogitsError: (row of the batch, index of the token being decoded, position). */
type DecodeWhere = (b: number, k: number, pos: number) => string;

/** The row's first non-finite value and how many there are (count 0: every logit is finite). */
function nonFinite(a: Float32Array, off: number, n: number): { first: number; count: number } {
  let first = 0;
  let count = 0;
  for (let j = 0; j < n; j++) {
    const x = a[off + j];
    if (!Number.isFinite(x) && count++ === 0) first = x;
  }
  return { first, count };
}

function argmax(a: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (a[off + j] > a[off + best]) best = j;
  return best;
}

function entropy(values: readonly string[]): number {
  const c = new Map<string, number>();
  for (const v of values) c.set(v, (c.get(v) ?? 0) + 1);
  let h = 0;
  for (const n of c.values()) h -= (n / values.length) * Math.log(n / values.length);
  return h === 0 ? 0 : h;
}

/** Whether an answer is in the task's answer format (its answer set, or the shape of one). */
export function validAnswer(task: Task, split: Split, answer: string): boolean {
  const set = task.answerSet(split);
  if (set) return set.includes(answer);
  if (task.name === 'arith') return /^-?\d+$/.test(answer);
  if (task.name === 'relay') return /^[a-z]$/.test(answer);
  return /^\d$/.test(answer);
}

/** Default run settings (the page's and the CLI's starting point). */
export function defaultRunConfig(over: Partial<RunConfig> & Pick<RunConfig, 'topology'>): RunConfig {
  return {
    task: 'lookup', difficulty: 1, method: 'diffmas', modelId: 'builtin:toy',
    lora: { r: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as Proj[] },
    lr: 3e-3, steps: 300, batch: 32, seed: 1, latentMap: 'ridge', textBudget: 8, evalEvery: 50, evalSize: 128,
    ...over,
  };
}

export class Run {
  /** Logits larger than this are read back only in the rows decoding needs (each row of the batch apart); tests lower it. */
  static partialReadBytes = 4 << 20;
  readonly task: Task;
  readonly spec: MethodSpec;
  readonly plan: PlanAgent[];
  readonly tokenizer: TextTokenizer;
  /** How episodes become text for this base (config.rendering, else by its tokenizer). */
  readonly rendering: TaskRendering;
  /** Adapters by key: an agent id, or 'shared'. */
  readonly adapters = new Map<string, LoraGpu>();
  private readonly agentLora: (LoraGpu | null)[];
  /** Learned latent slot offsets by adapter key (config.latentSlotOffset; slot-offset.ts), and per plan agent the ones its latent steps add. */
  readonly slotOffsets = new Map<string, SlotOffsetGpu>();
  private readonly agentOffset: (SlotOffsetGpu | null)[];
  private readonly agentBackward: boolean[];
  readonly trains: boolean;
  readonly optimizer: Optimizer | null = null;
  private readonly batcher: TrainingBatcher | null = null;
  private readonly lossLog: Tensor | null = null;
  private readonly rollouts = new Map<string, Rollout>();
  private readonly evalSets = new Map<Split, Episode[]>();
  private readonly map: GpuLatentMap | null;
  /** The Cache-to-Cache fuser (method c2c; c2c-fuser.ts), else null. */
  readonly fuser: C2cFuserGpu | null = null;
  /** The trained text channel (method text-trained; text-channel.ts), else null. */
  private readonly text: TextChannel | null = null;
  readonly maxAnswer: number;
  step = 0;
  readonly losses: number[] = [];
  private destroyed = false;

  /** Senders compute logits in training and evaluation too (off by default: nothing reads them; the bench compares). */
  private readonly senderLogits: boolean;

  constructor(
    readonly engine: MasEngine,
    readonly config: RunConfig,
    options: { senderLogits?: boolean } = {},
  ) {
    this.senderLogits = options.senderLogits ?? false;
    const { task, spec } = validateRunConfig(config);
    this.task = task;
    this.spec = spec;
    this.tokenizer = engine.tokenizer;
    this.rendering = rendering(config.rendering ?? defaultRendering(this.tokenizer.kind), this.tokenizer);
    this.plan = makePlan(config.topology, spec);
    this.maxAnswer = this.rendering.maxAnswerChars(task);
    this.trains = spec.train !== 'none';
    this.map = spec.channel === 'latent' ? engine.latentMap(config.latentMap) : null;
    const gpu = engine.gpu;
    const mc = engine.model.config;
    const loraCfg = { r: config.lora.r, alpha: config.lora.alpha, targets: [...config.lora.targets], layers: null };
    const lora = (pa: PlanAgent): LoraGpu => {
      const key = pa.agent.adapter === 'shared' ? 'shared' : pa.agent.id;
      let l = this.adapters.get(key);
      if (!l) {
        l = new LoraGpu(gpu, mc, loraCfg, deriveSeed(config.seed, 'init', 'lora', key), `lora ${key}`);
        this.adapters.set(key, l);
      }
      return l;
    };
    this.agentLora = this.plan.map((pa) => (spec.train === 'all' || (spec.train === 'receiver' && pa.final) ? lora(pa) : null));
    this.agentBackward = this.plan.map((_, i) => this.trains && this.agentLora[i] !== null);
    const adapterKey = (pa: PlanAgent, i: number) => (this.agentLora[i] ? (pa.agent.adapter === 'shared' ? 'shared' : pa.agent.id) : null);
    if (config.latentSlotOffset) {
      for (const [key, slots] of slotOffsetSlots(this.plan, (pa) => adapterKey(pa, this.plan.indexOf(pa)))) {
        this.slotOffsets.set(key, new SlotOffsetGpu(gpu, slots, engine.model.dims.D, `slot offset ${key}`));
      }
    }
    this.agentOffset = this.plan.map((pa, i) => (pa.m > 0 && !pa.final ? this.slotOffsets.get(adapterKey(pa, i) ?? '') ?? null : null));
    if (spec.train === 'fuser') {
      // c2c: no adapter; the fuser starts at identity (c2c-fuser.ts), and every agent that reads a fused
      // prefix runs backward (frozen) so the gradient reaches the fuser through it and what it sends on
      this.fuser = new C2cFuserGpu(gpu, engine.model.dims.L, engine.model.dims.kvDim);
      this.agentBackward = this.plan.map((pa) => pa.preds.length > 0);
    }
    if (this.trains) {
      this.optimizer = new Optimizer(gpu, this.fuser ? this.fuser.trainParams() : [...this.adapters].flatMap(([key, l]) => [...loraTrainParams(l), ...(this.slotOffsets.get(key)?.trainParams() ?? [])]), trainHyperOf(config));
      // a curriculum (curriculum.ts) draws each stage's batches as a run at its difficulty would
      this.batcher = runBatcher(task, config, (t) => spec.name === 'text-trained'
        ? textTrainedBatcher(t, this.tokenizer, this.rendering, this.plan, spec, config)
        : trainingBatcher(t, this.tokenizer, this.rendering, this.plan, spec, config));
      this.lossLog = gpu.tensor([2], 'mas loss log');
    }
    if (spec.name === 'text-trained') {
      this.text = new TextChannel(
        gpu, engine.model, this.tokenizer, this.rendering, task, this.plan, spec, config.textBudget, config.textTemperature ?? DEFAULT_TEXT_TEMPERATURE,
        this.agentLora, this.agentBackward, MAX_ROLLOUTS,
      );
    }
  }

  get method(): MethodName {
    return this.spec.name;
  }

  /** The split's evaluation episodes (run-data.ts evalEpisodes: evalSize distinct ones or every one, fixed by config.evalSeed). */
  evalSet(split: Split): Episode[] {
    let s = this.evalSets.get(split);
    if (!s) {
      s = evalEpisodes(this.task, this.config, split);
      this.evalSets.set(split, s);
    }
    return s;
  }

  /**
   * The cached rollout under `key`, made by `make` when missing. At most MAX_ROLLOUTS are kept, the
   * least recently used destroyed first: prompts whose lengths vary (a BPE tokenizer's words) make
   * one shape per length signature, and each holds a full set of activations.
   */
  private cached(key: string, make: () => Rollout): Rollout {
    let r = this.rollouts.get(key);
    if (r) {
      this.rollouts.delete(key);
      this.rollouts.set(key, r);
      return r;
    }
    r = make();
    this.rollouts.set(key, r);
    while (this.rollouts.size > MAX_ROLLOUTS) {
      const [oldKey, old] = this.rollouts.entries().next().value as [string, Rollout];
      this.rollouts.delete(oldKey);
      old.destroy();
    }
    return r;
  }

  /** The rollout of a shape; `senderLogits` only for an inspection (it shows which token each latent step favours). */
  private rollout(lengths: number[], B: number, backward: boolean, senderLogits = this.senderLogits, fanout = 1): Rollout {
    const key = `${B}|${lengths.join(',')}|${backward ? 'b' : 'f'}${senderLogits ? '|logits' : ''}${fanout > 1 ? `|quiz${fanout}` : ''}`;
    return this.cached(key, () => {
      const agents: RolloutAgent[] = this.plan.map((pa, i) => ({
        id: pa.agent.id, preds: pa.preds, n: lengths[i] + (pa.final ? this.maxAnswer : 0), m: pa.m,
        lora: this.agentLora[i], backward: backward && this.agentBackward[i], slotOffset: this.agentOffset[i],
      }));
      return new Rollout(this.engine.model, {
        B, agents, trace: this.spec.channel === 'latent' ? this.spec.trace! : 'none', map: this.map, positions: this.config.positions ?? 'stream',
        label: `${this.spec.name} B${B} ${lengths.join(',')}${fanout > 1 ? ` quiz${fanout}` : ''}`, senderLogits, fanout, fuser: this.fuser,
      });
    });
  }

  /** A one-agent rollout (text channel: each agent's own pass). */
  private solo(n: number, B: number): Rollout {
    const key = `solo|${B}|${n}`;
    return this.cached(key, () => new Rollout(this.engine.model, { B, agents: [{ id: 'solo', preds: [], n, m: 0, lora: null, backward: false }], trace: 'none', map: null, label: `solo B${B} n${n}` }));
  }

  /**
   * Makes the passes the run's first steps and evaluations use, for the longest prompts among a sample
   * of its episodes (so that their memory is allocated now): the memory estimate (memory.ts) runs this
   * on an accounting device. Text channel: each sender's decoding pass and the final agent's, its
   * prompt grown by a full message per sender.
   */
  prepareShapes(sample = 64): void {
    const B = this.config.batch;
    const eps = [...this.evalSet('heldout').slice(0, sample)];
    if (this.trains) eps.push(...trainingBatcher(this.task, this.tokenizer, this.rendering, this.plan, this.spec, { seed: this.config.seed, batch: 1 }).next().eps);
    const sigs = new Map<string, { lengths: number[]; count: number }>();
    for (const ep of eps) {
      const inst = this.plan.map(() => ep);
      const lengths = (this.text
        ? encodeTextTrained(this.tokenizer, this.rendering, this.plan, this.spec, inst, this.config.textBudget)
        : encodeInstance(this.tokenizer, this.rendering, this.plan, this.spec, inst)).map((p) => p.length);
      const key = lengths.join(',');
      const s = sigs.get(key);
      if (s) s.count++;
      else sigs.set(key, { lengths, count: 1 });
    }
    if (this.spec.channel === 'text' && !this.text) {
      const lengths = this.plan.map((_, a) => Math.max(...[...sigs.values()].map((s) => s.lengths[a])));
      const budget = this.config.textBudget;
      const fi = this.plan.length - 1;
      for (let a = 0; a < fi; a++) this.solo(lengths[a] + budget - 1, B);
      this.solo(lengths[fi] + budget * this.plan[fi].preds.length + this.maxAnswer, B);
      return;
    }
    // as many shapes as the run keeps at most: the longest of the most frequent signatures
    const top = [...sigs.values()].sort((a, b) => b.count - a.count).slice(0, MAX_ROLLOUTS);
    top.sort((a, b) => a.lengths.reduce((x, y) => x + y, 0) - b.lengths.reduce((x, y) => x + y, 0));
    for (const s of top) {
      if (this.text) this.text.rollout(s.lengths, B, this.trains, this.maxAnswer);
      else this.rollout(s.lengths, B, this.trains);
    }
    if (this.config.quizLoss) {
      // the quiz loss trains on B*Q final rows (quiz.ts): that pass too, at the run's own difficulty
      const ep = trainingBatcher(this.task, this.tokenizer, this.rendering, this.plan, this.spec, { seed: this.config.seed, batch: 1 }).next().eps;
      const fi = this.plan.length - 1;
      const q = quizRows(this.task, this.tokenizer, this.rendering, this.plan[fi], this.spec, ep, this.maxAnswer);
      const lengths = encodeInstance(this.tokenizer, this.rendering, this.plan, this.spec, this.plan.map(() => ep[0])).map((p) => p.length);
      lengths[fi] = q.n;
      this.rollout(lengths, B, true, this.senderLogits, q.Q);
    }
  }

  /** The rollouts alive now (profiles time their passes' dispatches). */
  liveRollouts(): readonly Rollout[] {
    return [...this.rollouts.values()];
  }

  /** Rollouts made so far (tests check that training reuses them). */
  get rolloutCount(): number {
    return this.rollouts.size + (this.text?.count ?? 0);
  }

  private answerIds(ep: Episode): number[] {
    return answerIds(this.tokenizer, this.rendering, this.task, ep);
  }

  /** What continuing this run exactly needs beside its adapters: the optimizer's step and moments, and the losses so far. */
  async trainingState(): Promise<RunTrainingState> {
    if (!this.optimizer) throw new Error(`method ${this.spec.name} trains nothing`);
    return { ...(await this.optimizer.readState()), losses: this.losses.slice() };
  }

  /**
   * Continues from a saved training state (the adapters are loaded apart): the optimizer's step and
   * moments, the losses, and the stream of training batches at that step (the batches drawn so far
   * are drawn again on the CPU and dropped). Only before the run's first step.
   */
  restoreTraining(state: RunTrainingState): void {
    if (!this.optimizer || !this.batcher) throw new Error(`method ${this.spec.name} trains nothing`);
    if (this.step !== 0) throw new Error(`the run has taken ${this.step} steps: a saved state goes into a fresh run only`);
    if (state.step > this.config.steps) throw new Error(`the saved state is at step ${state.step}, past this run's ${this.config.steps} steps`);
    if (state.losses.length !== state.step) throw new Error(`the saved state has ${state.losses.length} losses for ${state.step} steps`);
    this.optimizer.loadState(state);
    for (let i = 0; i < state.step; i++) this.batcher.next();
    this.step = state.step;
    this.losses.push(...state.losses);
  }

  /** One optimizer step on the next training batch. Throws DivergedError on a non-finite loss. */
  async trainStep(): Promise<StepInfo> {
    if (!this.optimizer || !this.batcher || !this.lossLog) throw new Error(`method ${this.spec.name} trains nothing`);
    if (this.destroyed) throw new Error('run: used after destroy');
    const gpu = this.engine.gpu;
    const { eps, prompts, signature } = this.batcher.next();
    const lengths = signature.split(',').map(Number);
    const B = this.config.batch;
    const fi = this.plan.length - 1;
    // the quiz loss (quiz.ts): the final agent answers every question of each episode's table, B*Q rows
    const quiz = this.config.quizLoss ? quizRows(this.task, this.tokenizer, this.rendering, this.plan[fi], this.spec, eps, this.maxAnswer) : null;
    if (quiz) lengths[fi] = quiz.n;
    const ro = this.text ? this.text.rollout(lengths, B, true, this.maxAnswer) : this.rollout(lengths, B, true, this.senderLogits, quiz?.Q ?? 1);
    for (let a = 0; a < fi; a++) ro.setIds(a, prompts.flatMap((p) => p[a]));
    const ids: number[] = quiz?.ids ?? [];
    const targets: number[] = quiz?.targets ?? [];
    if (!quiz) {
      eps.forEach((ep, b) => {
        const s = finalSequence(prompts[b][fi], this.answerIds(ep), this.maxAnswer, true, this.tokenizer.padId);
        ids.push(...s.ids);
        targets.push(...s.targets);
      });
    }
    ro.setIds(fi, ids);
    ro.setTargets(targets);
    this.optimizer.recordZeroGrad();
    ro.recordForward();
    ro.recordBackward();
    gpu.copy(ro.final.prompt.loss, this.lossLog, 1, 0, 0);
    const lr = this.optimizer.recordStep();
    gpu.copy(this.optimizer.norm, this.lossLog, 1, 0, 1);
    const out = await gpu.read(this.lossLog);
    this.step = this.optimizer.step;
    const loss = out[0];
    if (!Number.isFinite(loss) || !Number.isFinite(out[1])) throw new DivergedError(this.step, loss);
    this.losses.push(loss);
    return { step: this.step, loss, gradNorm: out[1], lr, tokens: ro.tokensPerForward };
  }

  /**
   * Greedy decoding of the final agent's answer over a rollout whose forward is recorded: starts
   * from the teacher-forced logits, re-running only the final pass where a prediction differs from
   * the token in place. Returns the generated ids per row (rows < real).
   */
  private async decode(
    ro: { final: { prompt: Rollout['final']['prompt'] } }, ids: Uint32Array, start: number, maxTokens: number, real: number, stop: (id: number) => boolean, where: DecodeWhere,
  ): Promise<number[][]> {
    const gpu = this.engine.gpu;
    const pass = ro.final.prompt;
    const S = pass.shape.S;
    const V = this.engine.model.dims.V;
    const out: number[][] = Array.from({ length: real }, () => []);
    const done = new Array<boolean>(real).fill(false);
    // Only the rows decoding reads (start .. S-1 of each real row) come back when the logits are large
    // (a real vocabulary: [B*S, 49152] is tens of MB per read); small ones in one read.
    const rows = S - start;
    const partial = pass.logits.size * 4 > Run.partialReadBytes;
    const readLogits = async (): Promise<Float32Array> => {
      if (!partial) return gpu.read(pass.logits);
      const buf = new Float32Array(real * rows * V);
      for (let b = 0; b < real; b++) buf.set(await gpu.read(pass.logits, rows * V, (b * S + start) * V), b * rows * V);
      return buf;
    };
    const at = (b: number, pos: number) => (partial ? (b * rows + pos - start) * V : (b * S + pos) * V);
    let logits = await readLogits();
    for (let iter = 0; iter <= maxTokens; iter++) {
      let rerun = false;
      for (let b = 0; b < real; b++) {
        while (!done[b]) {
          const pos = start + out[b].length;
          // NaN or infinite logits would make greedy decoding pick token 0 and score a silent 0
          const bad = nonFinite(logits, at(b, pos), V);
          if (bad.count) throw new NonFiniteLogitsError(where(b, out[b].length, pos), bad.first, bad.count);
          const pred = argmax(logits, at(b, pos), V);
          out[b].push(pred);
          if (stop(pred) || out[b].length >= maxTokens) {
            done[b] = true;
            break;
          }
          const next = b * S + pos + 1;
          if (ids[next] === pred) continue;
          ids[next] = pred;
          rerun = true;
          break;
        }
      }
      if (!rerun) break;
      pass.setIds(ids);
      pass.recordForward();
      logits = await readLogits();
    }
    return out;
  }

  /** The final agent's decoding step, in words (NonFiniteLogitsError). */
  private finalWhere(k: number, pos: number): string {
    const a = this.plan[this.plan.length - 1].agent;
    return `the final agent '${a.name}' (${a.id}) decoding answer token ${k + 1} at position ${pos}`;
  }

  private isStop = (id: number): boolean => stopsText(this.tokenizer, id);

  /** Instances: the episode each plan agent reads (the final agent always its own; senders another under shuffle). */
  private instances(eps: Episode[], control: Control): Episode[][] {
    const perm = control === 'shuffle' ? derangement(eps.length, new Rng(deriveSeed(this.config.seed, 'shuffle-control', eps.length))) : null;
    return eps.map((ep, i) => this.plan.map((pa) => (pa.final || !perm ? ep : eps[perm[i]])));
  }

  /** The evaluation batches of instances: per batch its rollout with every agent's ids and targets set. */
  private *batches(inst: Episode[][], prompts: number[][][], B: number): Generator<{ ro: Rollout; rows: number[]; real: number; host: Uint32Array; targets: number[]; start: number }> {
    const fi = this.plan.length - 1;
    for (const g of groupBy(prompts, (p) => signatureOf(p))) {
      const lengths = g.key.split(',').map(Number);
      for (const ch of chunks(g.idx, B)) {
        const ro = this.rollout(lengths, B, this.trains);
        for (let a = 0; a < fi; a++) ro.setIds(a, ch.rows.flatMap((r) => prompts[r][a]));
        const { host, targets, start } = finalBatch(ch.rows, ch.real, (r) => prompts[r][fi], (r) => this.answerIds(inst[r][fi]), this.maxAnswer, this.tokenizer.padId);
        ro.setIds(fi, host);
        ro.setTargets(targets);
        yield { ro, rows: ch.rows, real: ch.real, host, targets, start };
      }
    }
  }

  /**
   * The prefix edit of the noise or rotate control for one evaluation (controls.ts). noise: a first
   * forward over every batch measures, per receiver, layer and K/V, the mean and covariance of the
   * received rows (real episodes only, every prefix position), then each evaluation batch gets fresh
   * draws from one seeded stream per evaluation (run seed, 'noise-control', split). rotate: per
   * receiver, layer and K/V head one rotation from the stream (run seed, 'rotate-control', receiver,
   * layer, head), the same for K and V and for every episode and split.
   */
  private async controlEdit(control: 'noise' | 'rotate', split: Split, inst: Episode[][], prompts: number[][][], B: number): Promise<PrefixEdit> {
    const { kvDim: W, hd, Hkv } = this.engine.model.dims;
    if (control === 'rotate') {
      const rotations = new Map<string, Float64Array[]>();
      return (agent, layer, _kind, values, P) => {
        const key = `${agent}|${layer}`;
        let rots = rotations.get(key);
        if (!rots) {
          rots = Array.from({ length: Hkv }, (_, h) => randomRotation(hd, new Rng(deriveSeed(this.config.seed, 'rotate-control', agent, layer, h))));
          rotations.set(key, rots);
        }
        const out = values.slice();
        rotateHeads(out, B * P, W, hd, rots);
        return out;
      };
    }
    const moments = new Map<string, Moments>();
    for (const b of this.batches(inst, prompts, B)) {
      await b.ro.recordForwardWith((agent, layer, kind, values, P) => {
        const key = `${agent}|${layer}|${kind}`;
        let m = moments.get(key);
        if (!m) moments.set(key, (m = new Moments(W)));
        m.add(values, b.real * P);
      });
    }
    const samplers = new Map([...moments].map(([k, m]) => [k, new GaussianRows(m)]));
    const rng = new Rng(deriveSeed(this.config.seed, 'noise-control', split));
    return (agent, layer, kind, values, P) => {
      const out = new Float32Array(values.length);
      samplers.get(`${agent}|${layer}|${kind}`)!.fill(out, B * P, rng);
      return out;
    };
  }

  /**
   * The permute control's edit over one rollout (controls.ts permuteBlocks): in each receiver's prefix,
   * each sender's latent slots (received.ts latentBlocks) by one derangement from (run seed,
   * 'permute-control', receiver, sender), the same for every layer, K and V, and episode; keys turned
   * to their new slots' RoPE angles.
   */
  private permuteEdit(ro: Rollout, B: number): PrefixEdit {
    const { kvDim: W, hd } = this.engine.model.dims;
    const inv = keyFrequencies(this.engine.model.config, hd);
    const blocks = new Map<number, { offset: number; perm: number[] }[]>();
    return (agent, _layer, kind, values, P) => {
      let bl = blocks.get(agent);
      if (!bl) {
        bl = latentBlocks(ro, agent).map((x) => ({ offset: x.offset, perm: latentPermutation(x.m, new Rng(deriveSeed(this.config.seed, 'permute-control', agent, x.pred))) }));
        blocks.set(agent, bl);
      }
      return permuteBlocks(values, B, P, W, hd, bl, kind === 'k' ? inv : null);
    };
  }

  /**
   * The forward of episodes (latent channel; each agent reads its own episode), batch by batch, each
   * received prefix handed to make(ro, rows, real)'s edit before its receiver reads it: what the probes
   * read (received.ts). Nothing is decoded.
   */
  async forwardReceived(eps: Episode[], make: (ro: Rollout, rows: number[], real: number) => PrefixEdit): Promise<void> {
    if (this.destroyed) throw new Error('run: used after destroy');
    if (this.spec.channel !== 'latent') throw new Error(`method ${this.spec.name} receives no K/V: there is no received prefix to read`);
    const inst = this.instances(eps, 'none');
    const prompts = inst.map((e) => encodeInstance(this.tokenizer, this.rendering, this.plan, this.spec, e));
    for (const b of this.batches(inst, prompts, this.config.batch)) await b.ro.recordForwardWith(make(b.ro, b.rows, b.real));
  }

  /** Runs the final agents of instances through rollouts and decodes; returns decoded answers, loss and message sizes. */
  private async runRolloutMethod(inst: Episode[][], control: Control, B: number, split: Split, ctx: string, extra: EvaluateExtra = {}): Promise<{ answers: string[]; lossSum: number; count: number; floats: number; positions: number }> {
    const prompts = inst.map((eps) => encodeInstance(this.tokenizer, this.rendering, this.plan, this.spec, eps));
    const answers = new Array<string>(inst.length);
    let lossSum = 0;
    let count = 0;
    let floats = 0;
    let positions = 0;
    const gpu = this.engine.gpu;
    const edit = control === 'noise' || control === 'rotate' ? await this.controlEdit(control, split, inst, prompts, B) : null;
    for (const { ro, rows, real, host, targets, start } of this.batches(inst, prompts, B)) {
      const e = extra.edit ? extra.edit(ro) : control === 'permute' ? this.permuteEdit(ro, B) : edit;
      if (e) await ro.recordForwardWith(e);
      else ro.recordForward({ zeroTraces: control === 'zero' });
      const loss = (await gpu.read(ro.final.prompt.loss))[0];
      const c = targets.filter((t) => t !== IGNORE).length;
      lossSum += loss * c;
      count += c;
      const gen = await this.decode(ro, host, start, this.maxAnswer + 1, real, this.isStop, (b, k, pos) => `${ctx}, episode ${rows[b]}: ${this.finalWhere(k, pos)}`);
      gen.forEach((g2, b) => (answers[rows[b]] = this.rendering.extractAnswer(this.tokenizer.decode(g2))));
      const size = ro.messageSize();
      floats += size.floats * real;
      positions += size.positions * real;
    }
    return { answers, lossSum, count, floats, positions };
  }

  /** Greedy text decoding of a group of prompts (each its own pass): the message contents. */
  private async decodeTexts(prompts: number[][], B: number, budget: number, where: (row: number, k: number, pos: number) => string): Promise<{ texts: string[]; tokens: number[][] }> {
    const texts = new Array<string>(prompts.length);
    const tokens = new Array<number[]>(prompts.length);
    for (const g of groupBy(prompts, (p) => String(p.length))) {
      const len = Number(g.key);
      const S = len + budget - 1;
      for (const ch of chunks(g.idx, B)) {
        const ro = this.solo(S, B);
        const ids = new Uint32Array(B * S).fill(this.tokenizer.padId);
        ch.rows.forEach((r, b) => ids.set(prompts[r], b * S));
        ro.setIds(0, ids);
        ro.recordForward();
        const gen = await this.decode(ro, ids, len - 1, budget, ch.real, this.isStop, (b, k, pos) => where(ch.rows[b], k, pos));
        gen.forEach((g2, b) => {
          texts[ch.rows[b]] = this.rendering.message.cut(this.tokenizer.decode(g2));
          tokens[ch.rows[b]] = g2;
        });
      }
    }
    return { texts, tokens };
  }

  /** The text channel: senders decode in topological order, then the final agent answers. */
  private async runTextMethod(inst: Episode[][], control: Control, B: number, ctx: string): Promise<{ answers: string[]; lossSum: number; count: number; messageTokens: number; messages: string[][]; prompts: string[][] }> {
    const tk = this.tokenizer;
    const n = inst.length;
    const messages: string[][] = this.plan.map(() => new Array<string>(n).fill(''));
    const promptsText: string[][] = this.plan.map(() => new Array<string>(n).fill(''));
    let messageTokens = 0;
    const received = (a: number, i: number) => this.plan[a].preds.map((p) => (control === 'zero' ? '' : messages[p][i]));
    for (let a = 0; a < this.plan.length - 1; a++) {
      const texts = inst.map((eps, i) => promptText(this.rendering, eps[a], this.plan[a], this.spec, received(a, i)));
      texts.forEach((t, i) => (promptsText[a][i] = t));
      const sender = this.plan[a].agent;
      const dec = await this.decodeTexts(texts.map((t) => tk.encode(t)), B, this.config.textBudget, (row, k, pos) =>
        `${ctx}, episode ${row}: agent '${sender.name}' (${sender.id}) writing token ${k + 1} of its text message at position ${pos}`);
      dec.texts.forEach((t, i) => {
        messages[a][i] = t;
        messageTokens += tk.encode(t).length;
      });
    }
    const fi = this.plan.length - 1;
    const finals = inst.map((eps, i) => tk.encode(promptText(this.rendering, eps[fi], this.plan[fi], this.spec, received(fi, i))));
    finals.forEach((p, i) => (promptsText[fi][i] = tk.decode(p)));
    // the final agent reads its prompt with the messages in place, without an adapter (solo)
    const final = await answerAlone(
      this.engine.gpu, finals, (row) => this.answerIds(inst[row][fi]), B, this.maxAnswer, tk.padId, (len, b) => this.solo(len, b),
      (ro, ids, start, max, real, where) => this.decode(ro, ids, start, max, real, this.isStop, where),
      (row, k, pos) => `${ctx}, episode ${row}: ${this.finalWhere(k, pos)}`, (g) => this.rendering.extractAnswer(tk.decode(g)),
    );
    return { ...final, messageTokens: messageTokens / n, messages, prompts: promptsText };
  }

  /** The text-trained channel's answers, loss and messages of instances (text-channel.ts), decoded greedily. */
  private textTrained(inst: Episode[][], zero: boolean, B: number, ctx: string) {
    return this.text!.evaluate(
      inst, zero, B, this.trains, this.maxAnswer, (ep) => this.answerIds(ep),
      (ro, ids, start, max, real, where) => this.decode(ro, ids, start, max, real, this.isStop, where),
      (row, k, pos) => `${ctx}, episode ${row}: ${this.finalWhere(k, pos)}`,
    );
  }

  /** Accuracy, validity, entropy, loss and message size on a split's evaluation set, under a control (or extra.edit: quantize.ts). */
  async evaluate(split: Split, control: Control = 'none', extra: EvaluateExtra = {}): Promise<EvalOutcome> {
    if (this.destroyed) throw new Error('run: used after destroy');
    if (extra.edit && (control !== 'none' || this.spec.channel !== 'latent')) throw new Error(`a prefix edit applies to received K/V without a control (method ${this.spec.name}, control ${control})`);
    if (control !== 'none' && this.spec.channel === 'none') throw new Error(`method ${this.spec.name} sends no messages: the ${control} control does not apply`);
    if (control !== 'none' && !controlsFor(this.spec.channel).includes(control)) {
      throw new Error(`method ${this.spec.name} sends text: the ${control} control acts on received K/V and does not apply (text has ${controlsFor(this.spec.channel).join(' and ')})`);
    }
    const eps = this.evalSet(split);
    const inst = this.instances(eps, control);
    const B = this.config.batch;
    let answers: string[];
    let lossSum: number;
    let count: number;
    let messageFloats = 0;
    let messageTokens = 0;
    let messagePositions = 0;
    const ctx = `in the ${split} evaluation of ${this.spec.name}${control === 'none' ? '' : ` (${control} control)`}`;
    if (this.text) {
      const r = await this.textTrained(inst, control === 'zero', B, ctx);
      ({ answers, lossSum, count, messageTokens } = r);
      messagePositions = messageTokens;
    } else if (this.spec.channel === 'text') {
      const r = await this.runTextMethod(inst, control, B, ctx);
      ({ answers, lossSum, count, messageTokens } = r);
      messagePositions = messageTokens;
    } else {
      const r = await this.runRolloutMethod(inst, control, B, split, ctx, extra);
      ({ answers, lossSum, count } = r);
      messageFloats = r.floats / eps.length;
      messagePositions = r.positions / eps.length;
    }
    const correct = eps.map((ep, i) => answers[i] === ep.answer);
    const valid = answers.map((a) => validAnswer(this.task, split, a));
    return {
      method: this.spec.name, split,
      accuracy: correct.filter(Boolean).length / eps.length,
      validity: valid.filter(Boolean).length / eps.length,
      entropy: entropy(answers),
      episodes: eps.length,
      messageFloats, messageTokens, messagePositions,
      loss: count ? lossSum / count : NaN,
      predictions: answers, correct,
    };
  }

  /** Attention of each receiver over its senders' positions, K/V norms and each agent's input and output, for one episode. */
  async inspect(split: Split, index: number): Promise<InspectResult> {
    if (this.destroyed) throw new Error('run: used after destroy');
    const set = this.evalSet(split);
    if (!Number.isInteger(index) || index < 0 || index >= set.length) throw new Error(`inspect: index ${index} is outside 0..${set.length - 1} (the ${split} evaluation set)`);
    const ep = set[index];
    const tk = this.tokenizer;
    const inst = [this.plan.map(() => ep)];
    const fi = this.plan.length - 1;
    const base = { split, index, parts: ep.parts.map((_, i) => this.rendering.part(ep, i)), answer: ep.answer };
    if (this.spec.channel === 'text') {
      const where = `while inspecting ${split} #${index} (${this.spec.name})`;
      const r = this.text ? await this.textTrained(inst, false, 1, where) : await this.runTextMethod(inst, 'none', 1, where);
      const agents: AgentInspection[] = this.plan.map((pa, a) => ({
        id: pa.agent.id, name: pa.agent.name, input: r.prompts[a][0],
        output: pa.final ? r.answers[0] : `${this.rendering.message.open}${r.messages[a][0]}`,
      }));
      return { ...base, predicted: r.answers[0], correct: r.answers[0] === ep.answer, agents, edges: [] };
    }
    const prompts = encodeInstance(tk, this.rendering, this.plan, this.spec, inst[0]);
    const ro = this.rollout(prompts.map((p) => p.length), 1, false, true);
    for (let a = 0; a < fi; a++) ro.setIds(a, prompts[a]);
    const s = finalSequence(prompts[fi], this.answerIds(ep), this.maxAnswer, true, this.tokenizer.padId);
    const host = Uint32Array.from(s.ids);
    ro.setIds(fi, host);
    ro.setTargets(s.targets);
    ro.recordForward();
    const gen = (await this.decode(ro, host, s.start, this.maxAnswer + 1, 1, this.isStop, (_b, k, pos) => `while inspecting ${split} #${index} (${this.spec.name}): ${this.finalWhere(k, pos)}`))[0];
    const predicted = this.rendering.extractAnswer(tk.decode(gen));
    const gpu = this.engine.gpu;
    const { L, Hq, Hkv, hd, kvDim, qDim, V } = this.engine.model.dims;
    const agents: AgentInspection[] = [];
    for (let a = 0; a < this.plan.length; a++) {
      const pa = this.plan[a];
      const ar = ro.agents[a];
      let output: string;
      if (pa.final) output = tk.decode(gen);
      else {
        // what each latent step encodes: the token the previous position's logits favour
        const parts: string[] = [];
        const rows: { t: Tensor; row: number }[] = [{ t: ar.prompt.logits, row: ar.spec.n - 1 }];
        for (const z of ar.latents.slice(0, -1)) rows.push({ t: z.pass.logits, row: 0 });
        for (let j = 0; j < ar.latents.length; j++) {
          const lg = await gpu.read(rows[j].t, V, rows[j].row * V);
          const best = argmax(lg, 0, V);
          let z = 0;
          for (let v = 0; v < V; v++) z += Math.exp(lg[v] - lg[best]);
          parts.push(`z${j + 1}~${JSON.stringify(tk.tokenOf(best))} (p=${(1 / z).toFixed(2)})`);
        }
        output = ar.latents.length ? `${ar.latents.length} latent steps: ${parts.join(' ')}` : '(no latent steps)';
      }
      agents.push({ id: pa.agent.id, name: pa.agent.name, input: tk.decode(prompts[a]), output });
    }
    const edges: EdgeInspection[] = [];
    const scale = 1 / Math.sqrt(hd);
    const group = Hq / Hkv;
    for (let a = 0; a < this.plan.length; a++) {
      const ar = ro.agents[a];
      if (!ar.pre) continue;
      const P = ar.P;
      const senderPositions: SenderPosition[] = [];
      for (const p of ar.spec.preds) {
        const sender = ro.agents[p];
        let z = 0;
        for (const blk of sender.blocks) {
          if (blk.kind === 'prompt') for (const id of prompts[p]) senderPositions.push({ agent: sender.spec.id, kind: 'prompt', label: tk.tokenOf(id) });
          else senderPositions.push({ agent: sender.spec.id, kind: 'latent', label: `z${++z}` });
        }
      }
      // query rows: the prompt (for the final agent up to its decoded answer), then its latent steps
      const nPrompt = this.plan[a].final ? Math.min(ar.spec.n, prompts[a].length + gen.length - 1) : ar.spec.n;
      const rowIds = this.plan[a].final ? Array.from(host.subarray(0, nPrompt)) : prompts[a];
      const receiverTokens = [...rowIds.map((id) => tk.tokenOf(id)), ...ar.latents.map((_, j) => `z${j + 1}`)];
      const R = receiverTokens.length;
      const attention = new Float32Array(L * Hq * R * P);
      const keyNorms = new Float32Array(L * P);
      const valueNorms = new Float32Array(L * P);
      for (let l = 0; l < L; l++) {
        const K = await gpu.read(ar.pre.k[l]);
        const Vv = await gpu.read(ar.pre.v[l]);
        for (let t = 0; t < P; t++) {
          let nk = 0;
          let nv = 0;
          for (let j = 0; j < kvDim; j++) {
            nk += K[t * kvDim + j] ** 2;
            nv += Vv[t * kvDim + j] ** 2;
          }
          keyNorms[l * P + t] = Math.sqrt(nk);
          valueNorms[l * P + t] = Math.sqrt(nv);
        }
        const sources: { q: Float32Array; lse: Float32Array; S: number; row: number; out: number }[] = [];
        const q0 = await gpu.read(ar.prompt.queries[l]);
        const lse0 = await gpu.read(ar.prompt.lse[l]);
        for (let s2 = 0; s2 < nPrompt; s2++) sources.push({ q: q0, lse: lse0, S: ar.spec.n, row: s2, out: s2 });
        for (let j = 0; j < ar.latents.length; j++) {
          const z = ar.latents[j].pass;
          sources.push({ q: await gpu.read(z.queries[l]), lse: await gpu.read(z.lse[l]), S: 1, row: 0, out: nPrompt + j });
        }
        for (const src of sources) {
          for (let h = 0; h < Hq; h++) {
            const kvh = Math.floor(h / group);
            const lse = src.lse[h * src.S + src.row];
            for (let t = 0; t < P; t++) {
              let dot = 0;
              for (let d = 0; d < hd; d++) dot += src.q[src.row * qDim + h * hd + d] * K[t * kvDim + kvh * hd + d];
              attention[((l * Hq + h) * R + src.out) * P + t] = Math.exp(dot * scale - lse);
            }
          }
        }
      }
      edges.push({
        receiver: ar.spec.id, senders: ar.spec.preds.map((p) => ro.agents[p].spec.id), layers: L, heads: Hq,
        senderPositions, receiverTokens, attention, keyNorms, valueNorms,
      });
    }
    return { ...base, predicted, correct: predicted === ep.answer, agents, edges };
  }

  /** The trained adapters as PEFT data (one per agent with its own adapter, or the shared one). */
  async exportAdapters(): Promise<TrainedAdapter[]> {
    const out: TrainedAdapter[] = [];
    for (const [key, lora] of this.adapters) {
      const config: LoraAdapterConfig = {
        peft_type: 'LORA', task_type: 'CAUSAL_LM', r: lora.config.r, lora_alpha: lora.config.alpha,
        target_modules: [...lora.config.targets] as LoraTarget[], lora_dropout: 0, bias: 'none', fan_in_fan_out: false,
        base_model_name_or_path: this.engine.base.id, layers_to_transform: null, inference_mode: true,
      };
      const tensors = new Map<string, Float32Array>();
      for (const m of lora.modules.values()) {
        tensors.set(loraKey(m.layer, m.proj as LoraTarget, 'A'), await lora.gpu.read(m.A));
        tensors.set(loraKey(m.layer, m.proj as LoraTarget, 'B'), await lora.gpu.read(m.B));
      }
      const offset = this.slotOffsets.get(key);
      out.push({ agent: key, config, tensors, ...(offset ? { slotOffset: await offset.read() } : {}) });
    }
    return out;
  }

  /** The Cache-to-Cache fuser's weights (method c2c; c2c-fuser.ts), null for every other method. */
  async exportFuser(): Promise<FuserWeights | null> {
    return this.fuser ? this.fuser.read() : null;
  }

  /** Puts fuser weights into the run (method c2c): a saved run reopened, or a cross-check's chosen fuser. */
  loadFuser(weights: FuserWeights): void {
    if (!this.fuser) throw new Error(`method ${this.spec.name} has no Cache-to-Cache fuser (only c2c does)`);
    this.fuser.write(weights);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.fuser?.destroy();
    for (const r of this.rollouts.values()) r.destroy();
    this.rollouts.clear();
    this.text?.destroy();
    this.optimizer?.destroy();
    if (this.lossLog) this.engine.gpu.destroy(this.lossLog);
    for (const l of this.adapters.values()) l.destroy();
    this.adapters.clear();
    for (const o of this.slotOffsets.values()) o.destroy();
    this.slotOffsets.clear();
  }
}
