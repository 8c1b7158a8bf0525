// Shared test helpers: one Dawn device per test file, seeded data, the error measure.
import { createNodeGpu } from '../src/gpu/node';
import type { Gpu } from '../src/gpu/runtime';
import { Rng } from '../src/tasks/rng';

let shared: Promise<Gpu> | null = null;
export function testGpu(): Promise<Gpu> {
  shared ??= createNodeGpu();
  return shared;
}

/** Destroys the file's device (tests/setup.ts calls it after each file): Dawn must not be torn down
 * by process exit with a live device, which can crash or hang the test worker. */
export async function disposeTestGpu(): Promise<void> {
  if (!shared) return;
  const gpu = await shared;
  shared = null;
  await gpu.device.queue.onSubmittedWorkDone();
  gpu.dispose();
}

/** Seeded uniform [0, 1) stream so every test sees the same data. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** max |a-b| / (1 + |b|) over all elements (b is the reference). */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i]));
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : Math.max(m, e);
  }
  return m;
}

/**
 * max |got - ref| / max |ref| over one tensor (ref the reference), Infinity when the lengths differ.
 * Scale-free, so a tensor of tiny gradients is held to the same relative standard as a large one: the
 * measure of the GPU-vs-float64 tests (model, hf-models, mas-gradient, text-channel, trained baselines).
 */
export function normErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(got[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den === 0 ? num : num / den;
}
