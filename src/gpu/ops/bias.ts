// Bias (shaders/bias.wgsl) of a Linear with bias (Qwen2's q/k/v, Llama's attention_bias / mlp_bias):
// forward y [T, N] += b [N] broadcast over rows, in place after the matmul; backward db [N] += column
// sums of dy [T, N] (dx is the matmul's, unchanged by the bias). Nothing is saved.
import code from '../../../shaders/bias.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';
import { checkDims, checkDistinct, checkTensor, gridSize, type GridOptions } from './elementwise';

const PARAMS = [['T', 'u32'], ['N', 'u32']] as const;
const WG = 256;

export function biasForwardSpec(): KernelSpec {
  return { name: 'bias_forward', code, entryPoint: 'bias_forward', bindings: ['read', 'write'], params: PARAMS };
}

export function biasBackwardSpec(): KernelSpec {
  return { name: 'bias_backward', code, entryPoint: 'bias_backward', bindings: ['read', 'write'], params: PARAMS };
}

/** Prepares y [T, N] += b [N] (every row). */
export function prepareBias(gpu: Gpu, b: Tensor, y: Tensor, T: number, N: number, o: GridOptions = {}): Dispatch {
  const name = 'bias_forward';
  const dims = { T, N };
  checkDims(name, dims, { T: 1, N: 1 });
  checkTensor(name, 'b', b, N, dims);
  checkTensor(name, 'y', y, T * N, dims);
  checkDistinct(name, { b }, { y });
  return gpu.prepare(biasForwardSpec(), [b, y], dims, [gridSize(gpu, name, Math.ceil((T * N) / WG), o), 1, 1]);
}

export function bias(gpu: Gpu, b: Tensor, y: Tensor, T: number, N: number, o: GridOptions = {}): void {
  gpu.recordOnce(prepareBias(gpu, b, y, T, N, o));
}

/** Prepares db [N] += sum over the T rows of dy [T, N]. */
export function prepareBiasBackward(gpu: Gpu, dy: Tensor, db: Tensor, T: number, N: number, o: GridOptions = {}): Dispatch {
  const name = 'bias_backward';
  const dims = { T, N };
  checkDims(name, dims, { T: 1, N: 1 });
  checkTensor(name, 'dy', dy, T * N, dims);
  checkTensor(name, 'db', db, N, dims);
  checkDistinct(name, { dy }, { db });
  return gpu.prepare(biasBackwardSpec(), [dy, db], dims, [gridSize(gpu, name, Math.ceil(N / WG), o), 1, 1]);
}

export function biasBackward(gpu: Gpu, dy: Tensor, db: Tensor, T: number, N: number, o: GridOptions = {}): void {
  gpu.recordOnce(prepareBiasBackward(gpu, dy, db, T, N, o));
}
