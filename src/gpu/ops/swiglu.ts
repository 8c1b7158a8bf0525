// SwiGLU (shaders/swiglu.wgsl): h = silu(g) * u elementwise on [T, F]; backward gives dg, du.
import code from '../../../shaders/swiglu.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';
import { checkDims, checkDistinct, checkTensor, gridSize, type GridOptions } from './elementwise';

const PARAMS = [['n', 'u32']] as const;
const WG = 256;

export function swigluForwardSpec(): KernelSpec {
  return { name: 'swiglu_forward', code, entryPoint: 'swiglu_forward', bindings: ['read', 'read', 'write'], params: PARAMS };
}

export function swigluBackwardSpec(): KernelSpec {
  return {
    name: 'swiglu_backward', code, entryPoint: 'swiglu_backward',
    bindings: ['read', 'read', 'read', 'write', 'write'], params: PARAMS,
  };
}

/** Prepares h = silu(g) * u over g, u, h [T, F]. */
export function prepareSwiglu(
  gpu: Gpu, g: Tensor, u: Tensor, h: Tensor, T: number, F: number, o: GridOptions = {},
): Dispatch {
  const name = 'swiglu_forward';
  const dims = { T, F };
  checkDims(name, dims);
  const n = T * F;
  checkTensor(name, 'g', g, n, dims);
  checkTensor(name, 'u', u, n, dims);
  checkTensor(name, 'h', h, n, dims);
  checkDistinct(name, { g, u }, { h });
  return gpu.prepare(swigluForwardSpec(), [g, u, h], { n }, [gridSize(gpu, name, Math.ceil(n / WG), o), 1, 1]);
}

export function swiglu(gpu: Gpu, g: Tensor, u: Tensor, h: Tensor, T: number, F: number, o: GridOptions = {}): void {
  gpu.recordOnce(prepareSwiglu(gpu, g, u, h, T, F, o));
}

/** Prepares dg = dh * u * silu'(g), du = dh * silu(g) (both overwritten) over [T, F]. */
export function prepareSwigluBackward(
  gpu: Gpu, dh: Tensor, g: Tensor, u: Tensor, dg: Tensor, du: Tensor, T: number, F: number, o: GridOptions = {},
): Dispatch {
  const name = 'swiglu_backward';
  const dims = { T, F };
  checkDims(name, dims);
  const n = T * F;
  checkTensor(name, 'dh', dh, n, dims);
  checkTensor(name, 'g', g, n, dims);
  checkTensor(name, 'u', u, n, dims);
  checkTensor(name, 'dg', dg, n, dims);
  checkTensor(name, 'du', du, n, dims);
  checkDistinct(name, { dh, g, u }, { dg, du });
  return gpu.prepare(swigluBackwardSpec(), [dh, g, u, dg, du], { n }, [gridSize(gpu, name, Math.ceil(n / WG), o), 1, 1]);
}

export function swigluBackward(
  gpu: Gpu, dh: Tensor, g: Tensor, u: Tensor, dg: Tensor, du: Tensor, T: number, F: number, o: GridOptions = {},
): void {
  gpu.recordOnce(prepareSwigluBackward(gpu, dh, g, u, dg, du, T, F, o));
}
