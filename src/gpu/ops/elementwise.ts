// The elementwise family (shaders/elementwise.wgsl): add, axpy, scale, fill over n f32 values.
// Also holds the precondition checks and grid sizing shared by the other op wrappers in this folder
// (rmsnorm, swiglu, embedding, crossentropy).
import code from '../../../shaders/elementwise.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';

/** Options every grid-stride wrapper takes. */
export interface GridOptions {
  /**
   * Caps the workgroups per grid dimension (default: the device's maxComputeWorkgroupsPerDimension).
   * Every kernel loops (grid-stride) over what the grid does not cover, so any cap >= 1 gives the same
   * result; tests use a small cap to exercise those loops.
   */
  maxWorkgroups?: number;
}

/** Number of workgroups for a grid-stride dimension that would ideally have `needed` of them. */
export function gridSize(gpu: Gpu, kernel: string, needed: number, o: GridOptions = {}): number {
  const limit = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const cap = o.maxWorkgroups ?? limit;
  if (!Number.isInteger(cap) || cap < 1 || cap > limit) {
    throw new Error(`${kernel}: maxWorkgroups must be an integer in 1..${limit}, got ${cap}`);
  }
  return Math.min(needed, cap);
}

/** Throws unless every named dimension is an integer >= its minimum. */
export function checkDims(kernel: string, dims: Record<string, number>, min: Record<string, number> = {}): void {
  for (const [k, v] of Object.entries(dims)) {
    const lo = min[k] ?? 0;
    if (!Number.isInteger(v) || v < lo || v > 0xffffffff) {
      throw new Error(`${kernel}: ${k} must be an integer >= ${lo}, got ${v}`);
    }
  }
}

function fmtDims(dims: Record<string, number>): string {
  return Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(' ');
}

/** Throws unless tensor `t` holds at least `n` values of the expected dtype. */
export function checkTensor(
  kernel: string, what: string, t: Tensor, n: number, dims: Record<string, number>, dtype: 'f32' | 'u32' = 'f32',
): void {
  if (t.dtype !== dtype) {
    throw new Error(`${kernel}: ${what} (${t.label}) must be ${dtype}, got ${t.dtype}`);
  }
  if (t.size < n) {
    throw new Error(`${kernel}: ${what} (${t.label}) has ${t.size} values, needs ${n} for ${fmtDims(dims)}`);
  }
}

/**
 * WebGPU refuses a buffer bound writable together with any other binding of itself in one dispatch:
 * say so up front, naming both roles. Read-only operands may share a buffer.
 */
export function checkDistinct(kernel: string, reads: Record<string, Tensor>, writes: Record<string, Tensor>): void {
  const all = [...Object.entries(reads), ...Object.entries(writes)];
  for (const [what, t] of Object.entries(writes)) {
    const other = all.find(([w, u]) => w !== what && u.buffer === t.buffer);
    if (other) throw new Error(`${kernel}: ${other[0]} and ${what} are the same buffer (${t.label}); ${what} is written, so they must differ`);
  }
}

/** Records one-off dispatches (uniform buffers released after the next submit). */
export function recordAllOnce(gpu: Gpu, ds: Dispatch | Dispatch[]): void {
  for (const d of Array.isArray(ds) ? ds : [ds]) gpu.recordOnce(d);
}

const PARAMS = [['n', 'u32'], ['alpha', 'f32']] as const;
const WG = 256;

export type ElementwiseOp = 'add' | 'axpy' | 'scale' | 'fill';

export function elementwiseSpec(op: ElementwiseOp): KernelSpec {
  const bindings: Record<ElementwiseOp, KernelSpec['bindings']> = {
    add: ['read', 'read', 'write'],
    axpy: ['read', 'write'],
    scale: ['write'],
    fill: ['write'],
  };
  return { name: `elementwise_${op}`, code, entryPoint: `ew_${op}`, bindings: bindings[op], params: PARAMS };
}

function prepareOp(
  gpu: Gpu, op: ElementwiseOp, reads: Record<string, Tensor>, writes: Record<string, Tensor>, n: number, alpha: number,
  o: GridOptions,
): Dispatch {
  const tensors = { ...reads, ...writes };
  const name = `elementwise_${op}`;
  checkDims(name, { n });
  if (!Number.isFinite(alpha)) throw new Error(`${name}: the scalar must be finite, got ${alpha}`);
  for (const [what, t] of Object.entries(tensors)) checkTensor(name, what, t, n, { n });
  checkDistinct(name, reads, writes);
  const wg = gridSize(gpu, name, Math.ceil(n / WG), o);
  return gpu.prepare(elementwiseSpec(op), Object.values(tensors), { n, alpha }, [wg, 1, 1]);
}

/** c = a + b over the first n values. c must be a different buffer from a and b. */
export function prepareAdd(gpu: Gpu, a: Tensor, b: Tensor, c: Tensor, n: number, o: GridOptions = {}): Dispatch {
  return prepareOp(gpu, 'add', { a, b }, { c }, n, 0, o);
}
export function add(gpu: Gpu, a: Tensor, b: Tensor, c: Tensor, n: number, o: GridOptions = {}): void {
  gpu.recordOnce(prepareAdd(gpu, a, b, c, n, o));
}

/** y += alpha * x over the first n values (the residual add is alpha = 1). */
export function prepareAxpy(gpu: Gpu, x: Tensor, y: Tensor, n: number, alpha: number, o: GridOptions = {}): Dispatch {
  return prepareOp(gpu, 'axpy', { x }, { y }, n, alpha, o);
}
export function axpy(gpu: Gpu, x: Tensor, y: Tensor, n: number, alpha: number, o: GridOptions = {}): void {
  gpu.recordOnce(prepareAxpy(gpu, x, y, n, alpha, o));
}

/** x *= alpha over the first n values. */
export function prepareScale(gpu: Gpu, x: Tensor, n: number, alpha: number, o: GridOptions = {}): Dispatch {
  return prepareOp(gpu, 'scale', {}, { x }, n, alpha, o);
}
export function scale(gpu: Gpu, x: Tensor, n: number, alpha: number, o: GridOptions = {}): void {
  gpu.recordOnce(prepareScale(gpu, x, n, alpha, o));
}

/** x = value over the first n values. */
export function prepareFill(gpu: Gpu, x: Tensor, n: number, value: number, o: GridOptions = {}): Dispatch {
  return prepareOp(gpu, 'fill', {}, { x }, n, value, o);
}
export function fill(gpu: Gpu, x: Tensor, n: number, value: number, o: GridOptions = {}): void {
  gpu.recordOnce(prepareFill(gpu, x, n, value, o));
}
