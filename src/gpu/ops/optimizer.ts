// The optimizer family (shaders/optimizer.wgsl): global gradient-norm clipping and AdamW, recorded
// into the training step's command buffer with no readback (AdamW reads the clip scale on the GPU).
//
// Per training step (all dispatches prepared once, at setup):
//   gpu.record(...gradNorm);           // sum_squares per gradient, then clip_scale -> scale, norm
//   for each param: setAdamWStep(d, hyper, step); gpu.record(d);
//   gpu.clear(grad) for each gradient  // gradients accumulate (docs/engine.md)
import code from '../../../shaders/optimizer.wgsl?raw';
import { cdiv, type Dispatch, type Gpu, type KernelSpec, type ParamValues, type Tensor } from '../runtime';

const WG = 256;
/** Largest tensor the kernels index without u32 overflow (and about the largest storage binding). */
export const MAX_OPTIMIZER_ELEMENTS = 2 ** 30;

export const SUM_SQUARES: KernelSpec = {
  name: 'sum_squares',
  code,
  entryPoint: 'sum_squares',
  bindings: ['read', 'write'],
  params: [['n', 'u32'], ['slot', 'u32']],
};

export const CLIP_SCALE: KernelSpec = {
  name: 'clip_scale',
  code,
  entryPoint: 'clip_scale',
  bindings: ['read', 'write', 'write'],
  params: [['count', 'u32'], ['max_norm', 'f32'], ['grad_scale', 'f32']],
};

export const ADAMW: KernelSpec = {
  name: 'adamw',
  code,
  entryPoint: 'adamw',
  bindings: ['write', 'read', 'write', 'write', 'read'],
  params: [
    ['n', 'u32'], ['lr', 'f32'], ['beta1', 'f32'], ['beta2', 'f32'], ['eps', 'f32'],
    ['weight_decay', 'f32'], ['bc1', 'f32'], ['bc2', 'f32'], ['grad_scale', 'f32'],
  ],
};

function checkF32(kernel: string, role: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new Error(`${kernel}: ${role} (${t.label}) must be f32, got ${t.dtype}`);
  if (t.size > MAX_OPTIMIZER_ELEMENTS) {
    throw new Error(`${kernel}: ${role} (${t.label}) has ${t.size} values, more than ${MAX_OPTIMIZER_ELEMENTS}`);
  }
}

// ---- global gradient norm ------------------------------------------------------------------------

/** Number of gradient tensors each prepared clip_scale dispatch sums (set by prepareGradNorm). */
const clipCounts = new WeakMap<Dispatch, number>();

function clipParams(count: number, maxNorm: number, gradScale: number): ParamValues {
  if (!Number.isFinite(maxNorm)) throw new Error(`clip_scale: maxNorm must be finite (<= 0 disables clipping), got ${maxNorm}`);
  if (!(Number.isFinite(gradScale) && gradScale > 0)) {
    throw new Error(`clip_scale: gradScale must be a positive finite number, got ${gradScale}`);
  }
  return { count, max_norm: maxNorm, grad_scale: gradScale };
}

/**
 * Prepares the global-norm clipping of `grads`: one sum_squares dispatch per gradient (writing
 * partials[i]), then one clip_scale dispatch (last in the returned list) that writes
 * norm[0] = gradScale * ||grads|| and scale[0] = min(1, maxNorm / (norm + 1e-6)) (1 when maxNorm <= 0).
 * `gradScale` is 1/accumulation steps, the same value AdamW multiplies the gradient by.
 * Record the whole list, in order, before the AdamW dispatches.
 */
export function prepareGradNorm(
  gpu: Gpu, grads: readonly Tensor[], partials: Tensor, scale: Tensor, norm: Tensor, maxNorm: number, gradScale = 1,
): Dispatch[] {
  const params = clipParams(grads.length, maxNorm, gradScale);
  if (partials.size < grads.length) {
    throw new Error(`grad norm: partials (${partials.label}) has ${partials.size} slots, needs ${grads.length} (one per gradient)`);
  }
  checkF32('grad norm', 'partials', partials);
  checkF32('clip_scale', 'scale', scale);
  checkF32('clip_scale', 'norm', norm);
  if (scale.size < 1 || norm.size < 1) {
    throw new Error(`clip_scale: scale (${scale.label}, ${scale.size} values) and norm (${norm.label}, ${norm.size} values) need 1 value each`);
  }
  if (scale === norm || scale === partials || norm === partials) {
    throw new Error('clip_scale: partials, scale and norm must be three different tensors');
  }
  const out: Dispatch[] = grads.map((g, slot) => {
    checkF32('sum_squares', `gradient ${slot}`, g);
    if (g === partials) throw new Error(`sum_squares: gradient ${slot} (${g.label}) is the partials tensor`);
    // One workgroup even for an empty gradient, so its slot is written (0).
    return gpu.prepare(SUM_SQUARES, [g, partials], { n: g.size, slot }, [1, 1, 1]);
  });
  const clip = gpu.prepare(CLIP_SCALE, [partials, scale, norm], params, [1, 1, 1]);
  clipCounts.set(clip, grads.length);
  out.push(clip);
  return out;
}

/** Changes max_norm / grad_scale of a prepared grad-norm list (or its clip_scale dispatch); no allocation. */
export function setGradNormParams(gradNorm: Dispatch | readonly Dispatch[], maxNorm: number, gradScale = 1): void {
  const clip = Array.isArray(gradNorm) ? (gradNorm as readonly Dispatch[])[gradNorm.length - 1] : (gradNorm as Dispatch);
  const count = clip ? clipCounts.get(clip) : undefined;
  if (count === undefined) throw new Error('setGradNormParams: not a dispatch list made by prepareGradNorm');
  clip.setParams(clipParams(count, maxNorm, gradScale));
}

// ---- AdamW -----------------------------------------------------------------------------------------

export interface AdamWHyper {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (p *= 1 - lr*wd); use 0 for norms and biases. */
  weightDecay?: number;
  /** Multiplies the gradient, e.g. 1/accumulation steps. */
  gradScale?: number;
}

/** torch.optim.AdamW defaults. */
export const ADAMW_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradScale: 1 } as const;

/** Size of the parameter each prepared adamw dispatch updates (set by prepareAdamW). */
const adamSizes = new WeakMap<Dispatch, number>();

/** The uniform values of one AdamW step (step counts from 1); throws on out-of-range hyperparameters. */
export function adamWParams(n: number, hyper: AdamWHyper, step: number): ParamValues {
  const h = { ...ADAMW_DEFAULTS, ...hyper };
  const bad = (what: string, v: number) => new Error(`adamw: ${what}, got ${v}`);
  if (!(Number.isFinite(h.lr) && h.lr >= 0)) throw bad('lr must be a finite number >= 0', h.lr);
  if (!(h.beta1 >= 0 && h.beta1 < 1)) throw bad('beta1 must be in [0, 1)', h.beta1);
  if (!(h.beta2 >= 0 && h.beta2 < 1)) throw bad('beta2 must be in [0, 1)', h.beta2);
  if (!(Number.isFinite(h.eps) && h.eps > 0)) throw bad('eps must be a finite number > 0', h.eps);
  if (!(Number.isFinite(h.weightDecay) && h.weightDecay >= 0)) throw bad('weightDecay must be a finite number >= 0', h.weightDecay);
  if (!(Number.isFinite(h.gradScale) && h.gradScale > 0)) throw bad('gradScale must be a finite number > 0', h.gradScale);
  if (!(Number.isInteger(step) && step >= 1)) throw bad('step must be an integer >= 1 (the first step is 1)', step);
  return {
    n,
    lr: h.lr,
    beta1: h.beta1,
    beta2: h.beta2,
    eps: h.eps,
    weight_decay: h.weightDecay,
    // In float64 here, so late steps do not lose the bias corrections to f32 rounding of beta^t.
    bc1: 1 - h.beta1 ** step,
    bc2: 1 - h.beta2 ** step,
    grad_scale: h.gradScale,
  };
}

/**
 * Prepares one AdamW update of `param` in place (with its `grad`, moments `m`, `v`, all the same
 * size) that multiplies the gradient by scale[0] (from prepareGradNorm) and hyper.gradScale.
 * Call setAdamWStep before recording each step. `maxWorkgroups` caps the grid (the kernel
 * grid-strides), default the device's per-dimension limit.
 */
export function prepareAdamW(
  gpu: Gpu, param: Tensor, grad: Tensor, m: Tensor, v: Tensor, scale: Tensor, hyper: AdamWHyper, step = 1,
  maxWorkgroups = gpu.device.limits.maxComputeWorkgroupsPerDimension,
): Dispatch {
  const n = param.size;
  const roles: [string, Tensor][] = [['param', param], ['grad', grad], ['m', m], ['v', v]];
  for (const [role, t] of roles) {
    checkF32('adamw', role, t);
    if (t.size !== n) throw new Error(`adamw: ${role} (${t.label}) has ${t.size} values, param (${param.label}) has ${n}`);
  }
  checkF32('adamw', 'scale', scale);
  if (scale.size < 1) throw new Error(`adamw: scale (${scale.label}) is empty, needs 1 value`);
  const all = [param, grad, m, v, scale];
  if (new Set(all).size !== all.length) throw new Error(`adamw: param, grad, m, v and scale must be five different tensors (${param.label})`);
  if (!(Number.isInteger(maxWorkgroups) && maxWorkgroups >= 1)) throw new Error(`adamw: maxWorkgroups must be an integer >= 1, got ${maxWorkgroups}`);
  const d = gpu.prepare(ADAMW, all, adamWParams(n, hyper, step), [Math.min(cdiv(n, WG), maxWorkgroups), 1, 1]);
  adamSizes.set(d, n);
  return d;
}

/** Rewrites a prepared AdamW dispatch's lr, bias corrections, etc. for step `step` (from 1); no allocation. */
export function setAdamWStep(d: Dispatch, hyper: AdamWHyper, step: number): void {
  const n = adamSizes.get(d);
  if (n === undefined) throw new Error(`setAdamWStep: ${d.name} is not a dispatch made by prepareAdamW`);
  d.setParams(adamWParams(n, hyper, step));
}
