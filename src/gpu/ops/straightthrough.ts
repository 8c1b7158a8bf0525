// Straight-through softmax of message tokens (shaders/straightthrough.wgsl): the trained text channel
// (src/mas/text-rollout.ts) writes the greedy token of each row of logits [R, V] among the allowed
// tokens, and backpropagates through softmax(logits / tau) in its place. Plain-TS reference:
// src/reference/straightthrough.ts.
import code from '../../../shaders/straightthrough.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';
import { checkDims, checkDistinct, checkTensor, gridSize, recordAllOnce, type GridOptions } from './elementwise';

const PARAMS = [['R', 'u32'], ['V', 'u32'], ['inv_tau', 'f32'], ['stride', 'u32'], ['off', 'u32']] as const;

const spec = (entryPoint: string, bindings: KernelSpec['bindings']): KernelSpec => ({ name: entryPoint, code, entryPoint, bindings, params: PARAMS });

function checkTau(kernel: string, tau: number): void {
  if (!(typeof tau === 'number' && Number.isFinite(tau) && tau > 0)) throw new Error(`${kernel}: the temperature tau must be a positive number, got ${tau}`);
}

const rows = (gpu: Gpu, name: string, R: number, o: GridOptions): [number, number, number] => [gridSize(gpu, name, Math.max(1, Math.ceil(R / 64)), o), 1, 1];

/**
 * Prepares tokens u32 [R] = argmax of each row of logits [R, V] over the tokens with allowed u32 [V]
 * != 0 (the first on ties), and p [R, V] = softmax(logits / tau) over the same tokens (0 elsewhere).
 * The host must allow at least one token (the kernel cannot say so).
 */
export function prepareStForward(
  gpu: Gpu, logits: Tensor, allowed: Tensor, p: Tensor, tokens: Tensor, R: number, V: number, tau: number, o: GridOptions = {},
): Dispatch {
  const name = 'st_forward';
  const dims = { R, V };
  checkDims(name, dims, { R: 1, V: 1 });
  checkTau(name, tau);
  checkTensor(name, 'logits', logits, R * V, dims);
  checkTensor(name, 'allowed', allowed, V, dims, 'u32');
  checkTensor(name, 'p', p, R * V, dims);
  checkTensor(name, 'tokens', tokens, R, dims, 'u32');
  checkDistinct(name, { logits, allowed }, { p, tokens });
  return gpu.prepare(spec(name, ['read', 'read', 'write', 'write']), [logits, allowed, p, tokens], { R, V, inv_tau: 1 / tau, stride: 0, off: 0 }, rows(gpu, name, R, o));
}

/** Prepares dlogits [R, V] = (1 / tau) p (g - <p, g>) per row (overwritten): the softmax's backward. */
export function prepareStBackward(
  gpu: Gpu, p: Tensor, g: Tensor, dlogits: Tensor, R: number, V: number, tau: number, o: GridOptions = {},
): Dispatch {
  const name = 'st_backward';
  const dims = { R, V };
  checkDims(name, dims, { R: 1, V: 1 });
  checkTau(name, tau);
  for (const [what, t] of [['p', p], ['g', g], ['dlogits', dlogits]] as const) checkTensor(name, what, t, R * V, dims);
  checkDistinct(name, { p, g }, { dlogits });
  return gpu.prepare(spec(name, ['read', 'read', 'write']), [p, g, dlogits], { R, V, inv_tau: 1 / tau, stride: 0, off: 0 }, rows(gpu, name, R, o));
}

/** Prepares dst u32 [r * stride + off] = tokens u32 [r] for r < R (a pass's ids at one position per row). */
export function prepareStScatter(
  gpu: Gpu, tokens: Tensor, dst: Tensor, R: number, stride: number, off: number, o: GridOptions = {},
): Dispatch {
  const name = 'st_scatter';
  const dims = { R, stride, off };
  checkDims(name, dims, { R: 1, stride: 1 });
  if (off >= stride) throw new Error(`st_scatter: offset ${off} is outside a row of ${stride}`);
  checkTensor(name, 'tokens', tokens, R, dims, 'u32');
  checkTensor(name, 'dst', dst, R * stride, dims, 'u32');
  checkDistinct(name, { tokens }, { dst });
  return gpu.prepare(spec(name, ['read', 'write']), [tokens, dst], { R, V: 1, inv_tau: 1, stride, off }, rows(gpu, name, R, o));
}

export function stForward(gpu: Gpu, logits: Tensor, allowed: Tensor, p: Tensor, tokens: Tensor, R: number, V: number, tau: number, o: GridOptions = {}): void {
  recordAllOnce(gpu, prepareStForward(gpu, logits, allowed, p, tokens, R, V, tau, o));
}

export function stBackward(gpu: Gpu, p: Tensor, g: Tensor, dlogits: Tensor, R: number, V: number, tau: number, o: GridOptions = {}): void {
  recordAllOnce(gpu, prepareStBackward(gpu, p, g, dlogits, R, V, tau, o));
}

export function stScatter(gpu: Gpu, tokens: Tensor, dst: Tensor, R: number, stride: number, off: number, o: GridOptions = {}): void {
  recordAllOnce(gpu, prepareStScatter(gpu, tokens, dst, R, stride, off, o));
}
