// RMSNorm (shaders/rmsnorm.wgsl): y = x * rrms * w over rows of x [T, D]; rrms [T] is saved.
import code from '../../../shaders/rmsnorm.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';
import { checkDims, checkDistinct, checkTensor, gridSize, recordAllOnce, type GridOptions } from './elementwise';

export interface RmsnormOptions extends GridOptions {
  /** Added to mean(x^2) before the square root (default 1e-5, as Llama). */
  eps?: number;
}

export interface RmsnormBackwardOptions extends GridOptions {
  /** Adds into dx instead of overwriting it (the residual stream sums gradients). dw always accumulates. */
  accumulate?: boolean;
}

const PARAMS = [['T', 'u32'], ['D', 'u32'], ['eps', 'f32']] as const;

export function rmsnormForwardSpec(): KernelSpec {
  return { name: 'rmsnorm_forward', code, entryPoint: 'rmsnorm_forward', bindings: ['read', 'read', 'write', 'write'], params: PARAMS };
}

export function rmsnormBackwardSpec(accumulate: boolean): KernelSpec {
  return {
    name: accumulate ? 'rmsnorm_backward_acc' : 'rmsnorm_backward',
    code,
    entryPoint: 'rmsnorm_backward',
    bindings: ['read', 'read', 'read', 'read', 'write'],
    params: PARAMS,
    constants: { ACCUMULATE: accumulate },
  };
}

export function rmsnormBackwardDwSpec(): KernelSpec {
  return { name: 'rmsnorm_backward_dw', code, entryPoint: 'rmsnorm_backward_dw', bindings: ['read', 'read', 'read', 'write'], params: PARAMS };
}

/** Prepares y = rmsnorm(x) * w and saves rrms; x, y [T, D], w [D], rrms [T]. */
export function prepareRmsnorm(
  gpu: Gpu, x: Tensor, w: Tensor, y: Tensor, rrms: Tensor, T: number, D: number, o: RmsnormOptions = {},
): Dispatch {
  const name = 'rmsnorm_forward';
  const dims = { T, D };
  checkDims(name, dims, { D: 1 });
  const eps = o.eps ?? 1e-5;
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`${name}: eps must be finite and >= 0, got ${eps}`);
  checkTensor(name, 'x', x, T * D, dims);
  checkTensor(name, 'w', w, D, dims);
  checkTensor(name, 'y', y, T * D, dims);
  checkTensor(name, 'rrms', rrms, T, dims);
  checkDistinct(name, { x, w }, { y, rrms });
  return gpu.prepare(rmsnormForwardSpec(), [x, w, y, rrms], { T, D, eps }, [gridSize(gpu, name, Math.ceil(T / 64), o), 1, 1]);
}

export function rmsnorm(
  gpu: Gpu, x: Tensor, w: Tensor, y: Tensor, rrms: Tensor, T: number, D: number, o: RmsnormOptions = {},
): void {
  gpu.recordOnce(prepareRmsnorm(gpu, x, w, y, rrms, T, D, o));
}

/**
 * Prepares the backward pass: dx (= or +=, see options) and dw += (two dispatches: the row kernel,
 * then the column reduction for dw). rrms is the forward's saved [T].
 */
export function prepareRmsnormBackward(
  gpu: Gpu, dy: Tensor, x: Tensor, w: Tensor, rrms: Tensor, dx: Tensor, dw: Tensor, T: number, D: number,
  o: RmsnormBackwardOptions = {},
): Dispatch[] {
  const acc = o.accumulate ?? false;
  const name = acc ? 'rmsnorm_backward_acc' : 'rmsnorm_backward';
  const dims = { T, D };
  checkDims(name, dims, { D: 1 });
  checkTensor(name, 'dy', dy, T * D, dims);
  checkTensor(name, 'x', x, T * D, dims);
  checkTensor(name, 'w', w, D, dims);
  checkTensor(name, 'rrms', rrms, T, dims);
  checkTensor(name, 'dx', dx, T * D, dims);
  checkTensor(name, 'dw', dw, D, dims);
  checkDistinct(name, { dy, x, w, rrms }, { dx, dw });
  const params = { T, D, eps: 0 };
  return [
    gpu.prepare(rmsnormBackwardSpec(acc), [dy, x, w, rrms, dx], params, [gridSize(gpu, name, Math.ceil(T / 64), o), 1, 1]),
    gpu.prepare(rmsnormBackwardDwSpec(), [dy, x, rrms, dw], params, [gridSize(gpu, 'rmsnorm_backward_dw', Math.ceil(D / 64), o), 1, 1]),
  ];
}

export function rmsnormBackward(
  gpu: Gpu, dy: Tensor, x: Tensor, w: Tensor, rrms: Tensor, dx: Tensor, dw: Tensor, T: number, D: number,
  o: RmsnormBackwardOptions = {},
): void {
  recordAllOnce(gpu, prepareRmsnormBackward(gpu, dy, x, w, rrms, dx, dw, T, D, o));
}
