// Training: AdamW with warmup + cosine schedule, global-norm clipping and gradient accumulation,
// recorded as one command stream per step. The only readback is the logged loss (and the gradient
// norm with it), read once per optimizer step.
import type { Dispatch, Gpu, Tensor } from '../gpu/runtime';
import { prepareFill } from '../gpu/ops/elementwise';
import { prepareAdamW, prepareGradNorm, setAdamWStep, type AdamWHyper } from '../gpu/ops/optimizer';
import type { LlamaGpu, LoraGpu, ModelPass } from './model';

export interface TrainHyper {
  lr: number;
  /** Final learning rate of the cosine decay (default lr / 10). */
  minLr?: number;
  /** After the warmup: 'cosine' (default) decays to minLr at totalSteps, 'constant' holds lr. */
  schedule?: LrSchedule;
  warmupSteps: number;
  totalSteps: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Global gradient-norm clip (0: none). */
  clip: number;
  /** Micro-batches per optimizer step. */
  accumSteps: number;
}

/** The learning-rate schedules after the linear warmup. */
export const LR_SCHEDULES = ['cosine', 'constant'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

export const DEFAULT_HYPER: TrainHyper = {
  lr: 3e-3, warmupSteps: 20, totalSteps: 500, weightDecay: 0.01, clip: 1, accumSteps: 1,
};

/** Checks a hyperparameter set, naming the bad value. */
export function validateHyper(h: TrainHyper): TrainHyper {
  const bad = (m: string): never => {
    throw new Error(`training settings: ${m}`);
  };
  if (!(h.lr > 0 && h.lr < 10)) bad(`learning rate must be in (0, 10), got ${h.lr}`);
  if (h.schedule !== undefined && !(LR_SCHEDULES as readonly string[]).includes(h.schedule)) bad(`schedule must be one of ${LR_SCHEDULES.join(', ')}, got ${JSON.stringify(h.schedule)}`);
  if (h.minLr !== undefined && !(h.minLr >= 0 && h.minLr <= h.lr)) bad(`minLr must be in [0, lr], got ${h.minLr}`);
  if (!(Number.isInteger(h.warmupSteps) && h.warmupSteps >= 0)) bad(`warmup steps must be an integer >= 0, got ${h.warmupSteps}`);
  if (!(Number.isInteger(h.totalSteps) && h.totalSteps >= 1)) bad(`steps must be an integer >= 1, got ${h.totalSteps}`);
  if (!(h.weightDecay >= 0 && h.weightDecay < 1)) bad(`weight decay must be in [0, 1), got ${h.weightDecay}`);
  if (!(h.clip >= 0)) bad(`clip must be >= 0, got ${h.clip}`);
  if (!(Number.isInteger(h.accumSteps) && h.accumSteps >= 1 && h.accumSteps <= 1024)) bad(`accumulation steps must be an integer in 1..1024, got ${h.accumSteps}`);
  return h;
}

/** Learning rate at optimizer step `step` (1-based): linear warmup, then cosine to minLr (or constant lr). */
export function lrAt(step: number, h: TrainHyper): number {
  const minLr = h.minLr ?? h.lr / 10;
  if (h.warmupSteps > 0 && step <= h.warmupSteps) return (h.lr * step) / h.warmupSteps;
  if (h.schedule === 'constant') return h.lr;
  const span = Math.max(1, h.totalSteps - h.warmupSteps);
  const t = Math.min(1, Math.max(0, (step - h.warmupSteps) / span));
  return minLr + 0.5 * (h.lr - minLr) * (1 + Math.cos(Math.PI * t));
}

export interface TrainParam {
  name: string;
  param: Tensor;
  grad: Tensor;
  /** Weight decay applies (not to norms, as in common practice). */
  decay: boolean;
}

export function baseTrainParams(model: LlamaGpu): TrainParam[] {
  const grads = model.enableGrads();
  return [...model.params].map(([name, param]) => ({ name, param, grad: grads.get(name)!, decay: !name.endsWith('norm.weight') }));
}

export function loraTrainParams(lora: LoraGpu): TrainParam[] {
  const out: TrainParam[] = [];
  for (const m of lora.modules.values()) {
    out.push({ name: `${m.name}.lora_A`, param: m.A, grad: m.dA, decay: true });
    out.push({ name: `${m.name}.lora_B`, param: m.B, grad: m.dB, decay: true });
  }
  return out;
}

/** Raised when the loss or gradient norm stops being finite; what is stored is untouched. */
export class DivergedError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
  ) {
    super(`training diverged at step ${step}: loss is ${loss} (try a lower learning rate or a tighter clip)`);
    this.name = 'DivergedError';
  }
}

/** AdamW's state: the step count (bias correction and the schedule) and both moments per parameter, in parameter order. */
export interface OptimizerState {
  step: number;
  names: string[];
  m: Float32Array[];
  v: Float32Array[];
}

/** AdamW over a fixed set of parameters, with its state and dispatches made once. */
export class Optimizer {
  readonly norm: Tensor;
  private readonly scale: Tensor;
  private readonly partials: Tensor;
  private readonly zeroGrads: Dispatch[];
  private readonly gradNorm: Dispatch[];
  private readonly adam: { d: Dispatch; decay: boolean }[] = [];
  private readonly state: Tensor[] = [];
  step = 0;

  constructor(
    readonly gpu: Gpu,
    readonly params: TrainParam[],
    readonly hyper: TrainHyper,
  ) {
    validateHyper(hyper);
    if (params.length === 0) throw new Error('optimizer: nothing to train');
    this.norm = gpu.tensor([1], 'grad norm');
    this.scale = gpu.tensor([1], 'clip scale', [1]);
    this.partials = gpu.tensor([params.length], 'grad norm partials');
    this.zeroGrads = params.map((p) => prepareFill(gpu, p.grad, p.grad.size, 0));
    this.gradNorm = prepareGradNorm(gpu, params.map((p) => p.grad), this.partials, this.scale, this.norm, hyper.clip, 1 / hyper.accumSteps);
    for (const p of params) {
      const m = gpu.tensor(p.param.shape, `adam m ${p.name}`);
      const v = gpu.tensor(p.param.shape, `adam v ${p.name}`);
      this.state.push(m, v);
      this.adam.push({ d: prepareAdamW(gpu, p.param, p.grad, m, v, this.scale, this.adamHyper(1, p.decay)), decay: p.decay });
    }
  }

  private adamHyper(step: number, decay: boolean): AdamWHyper {
    const h = this.hyper;
    const out: AdamWHyper = { lr: lrAt(step, h), weightDecay: decay ? h.weightDecay : 0, gradScale: 1 / h.accumSteps };
    // Unset betas/eps keep the optimizer's defaults (an explicit undefined would override them).
    if (h.beta1 !== undefined) out.beta1 = h.beta1;
    if (h.beta2 !== undefined) out.beta2 = h.beta2;
    if (h.eps !== undefined) out.eps = h.eps;
    return out;
  }

  /** Records zeroing of every gradient (once per optimizer step, before the micro-batches). */
  recordZeroGrad(): void {
    this.gpu.record(...this.zeroGrads);
  }

  /** Records clipping and the AdamW update of the next step. */
  recordStep(): number {
    this.step++;
    for (const a of this.adam) setAdamWStep(a.d, this.adamHyper(this.step, a.decay), this.step);
    this.gpu.record(...this.gradNorm, ...this.adam.map((a) => a.d));
    return lrAt(this.step, this.hyper);
  }

  /** Optimizer state (m, v) for saving or inspection. */
  get moments(): Tensor[] {
    return this.state;
  }

  /** The step count and both moments of every parameter, in parameter order: what continuing exactly needs. */
  async readState(): Promise<OptimizerState> {
    const m: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (let i = 0; i < this.params.length; i++) {
      m.push(await this.gpu.read(this.state[2 * i]));
      v.push(await this.gpu.read(this.state[2 * i + 1]));
    }
    return { step: this.step, names: this.params.map((p) => p.name), m, v };
  }

  /** Puts a saved state back (before the next step): the same parameters, in the same order, with the same sizes. */
  loadState(s: OptimizerState): void {
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`optimizer state: step ${s.step} is not a step count`);
    const names = this.params.map((p) => p.name);
    if (s.names.length !== names.length || s.m.length !== names.length || s.v.length !== names.length || s.names.some((n, i) => n !== names[i])) {
      throw new Error(`optimizer state: it holds ${s.names.length} parameters (${s.names.slice(0, 3).join(', ')}${s.names.length > 3 ? ', …' : ''}); this optimizer has ${names.length} (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''})`);
    }
    this.params.forEach((p, i) => {
      if (s.m[i].length !== p.param.size || s.v[i].length !== p.param.size) throw new Error(`optimizer state: ${p.name} has ${s.m[i].length} moments, the parameter ${p.param.size} values`);
    });
    this.params.forEach((_, i) => {
      this.gpu.write(this.state[2 * i], s.m[i]);
      this.gpu.write(this.state[2 * i + 1], s.v[i]);
    });
    this.step = s.step;
  }

  destroy(): void {
    [this.norm, this.scale, this.partials, ...this.state].forEach((t) => this.gpu.destroy(t));
    [...this.zeroGrads, ...this.gradNorm, ...this.adam.map((a) => a.d)].forEach((d) => d.destroy());
  }
}

export interface MicroBatch {
  ids?: ArrayLike<number>;
  targets: ArrayLike<number>;
}

export interface StepResult {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  tokens: number;
}

/**
 * One optimizer step of next-token training on a single pass shape: zero grads, forward+backward
 * per micro-batch (each submitted after its inputs are written: queue writes land before the next
 * submit), clip, AdamW, then one readback of the losses and the norm.
 */
export class Trainer {
  /** Per micro-batch losses, then the gradient norm: the one readback of a step. */
  private readonly lossLog: Tensor;

  constructor(
    readonly pass: ModelPass,
    readonly optimizer: Optimizer,
  ) {
    if (!pass.options.backward) throw new Error('trainer: the pass must be made with backward: true');
    this.lossLog = pass.model.gpu.tensor([optimizer.hyper.accumSteps + 1], 'loss log');
  }

  async step(next: () => MicroBatch): Promise<StepResult> {
    const gpu = this.pass.model.gpu;
    const accum = this.optimizer.hyper.accumSteps;
    this.optimizer.recordZeroGrad();
    let tokens = 0;
    for (let i = 0; i < accum; i++) {
      const mb = next();
      if (mb.ids) this.pass.setIds(mb.ids);
      this.pass.setTargets(mb.targets);
      tokens += mb.targets.length;
      this.pass.recordForward();
      this.pass.recordBackward();
      gpu.copy(this.pass.loss, this.lossLog, 1, 0, i);
      gpu.submit();
    }
    const lr = this.optimizer.recordStep();
    gpu.copy(this.optimizer.norm, this.lossLog, 1, 0, accum);
    const out = await gpu.read(this.lossLog);
    let loss = 0;
    for (let i = 0; i < accum; i++) loss += out[i] / accum;
    const gradNorm = out[accum];
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) throw new DivergedError(this.optimizer.step, loss);
    return { step: this.optimizer.step, loss, gradNorm, lr, tokens };
  }

  destroy(): void {
    this.pass.model.gpu.destroy(this.lossLog);
  }
}
