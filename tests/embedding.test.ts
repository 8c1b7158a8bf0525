import { describe, expect, it } from 'vitest';
import { embedding, embeddingBackward } from '../src/gpu/ops/embedding';
import { embeddingBackwardRef, embeddingRef } from '../src/reference/embedding';
import { maxRelErr, randn, rng, testGpu } from './helpers';

// The forward copies f32 values: it must be exact (tolerance 0).
// The backward sums, per (v, d), the dOut rows whose id is v, serially in f32 and then adds to the
// initial dW: at most T = 130 unit-normal terms, so the rounding error is below 130 * 2^-24 times the
// sum of |terms| in the worst case and around sqrt(130) * 2^-24 * |partial sums| typically. Observed
// at most 6.3e-7 (T=130 ids all equal, V=1); BWD_TOL = 5e-6 on |a-b|/(1+|b|) leaves ~8x margin; a
// missed or doubled row gives O(1).
const BWD_TOL = 5e-6;

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [37, 96, 300],
  [130, 257, 29],
  [130, 13, 1],
];

/** Random ids in 0..V-1 with a few out-of-range ones (V, V + 7, the ignore label). */
function makeIds(T: number, V: number, seed: number): Uint32Array {
  const r = rng(seed);
  const ids = Uint32Array.from({ length: T }, () => Math.floor(r() * V));
  if (T >= 7) {
    ids[2] = V;
    ids[5] = V + 7;
    ids[T - 1] = 0xffffffff;
  }
  return ids;
}

async function runCase(T: number, D: number, V: number, maxWorkgroups?: number): Promise<void> {
  const gpu = await testGpu();
  const ids = makeIds(T, V, T * 7 + V);
  const W = randn(V * D, V + D);
  const dOut = randn(T * D, T + D);
  const dW0 = randn(V * D, 99);
  const tids = gpu.tensor([T], 'ids', ids, 'u32');
  const tW = gpu.tensor([V, D], 'W', W);
  const tout = gpu.tensor([T, D], 'out', randn(T * D, 3)); // overwritten
  const tdOut = gpu.tensor([T, D], 'dOut', dOut);
  const tdW = gpu.tensor([V, D], 'dW', dW0);
  embedding(gpu, tids, tW, tout, T, D, V, { maxWorkgroups });
  embeddingBackward(gpu, tids, tdOut, tdW, T, D, V, { maxWorkgroups });
  expect(maxRelErr(await gpu.read(tout), embeddingRef(ids, W, T, D, V))).toBe(0);
  const want = embeddingBackwardRef(dOut, ids, T, D, V).dW.map((v, i) => v + dW0[i]);
  expect(maxRelErr(await gpu.read(tdW), want)).toBeLessThan(BWD_TOL);
  [tids, tW, tout, tdOut, tdW].forEach((t) => gpu.destroy(t));
}

describe('embedding kernels vs the CPU reference', () => {
  for (const [T, D, V] of SHAPES) {
    it(`forward and backward (accumulating) T=${T} D=${D} V=${V}`, () => runCase(T, D, V));
  }

  it('covers more rows, columns and vocabulary than the grid (grid-stride loops)', () => runCase(70, 150, 37, 2));

  it('refuses wrong sizes and float ids, naming the kernel and sizes', async () => {
    const gpu = await testGpu();
    const ids = gpu.tensor([8], 'ids', undefined, 'u32');
    const fids = gpu.tensor([8], 'fids');
    const W = gpu.tensor([10, 4], 'W');
    const out = gpu.tensor([8, 4], 'out');
    expect(() => embedding(gpu, ids, W, out, 8, 4, 11)).toThrow(/embedding_forward: W \(W\) has 40 values, needs 44 for T=8 D=4 V=11/);
    expect(() => embedding(gpu, fids, W, out, 8, 4, 10)).toThrow(/embedding_forward: ids \(fids\) must be u32, got f32/);
    expect(() => embeddingBackward(gpu, ids, out, W, 9, 4, 10)).toThrow(/embedding_backward: ids \(ids\) has 8 values, needs 9/);
    [ids, fids, W, out].forEach((t) => gpu.destroy(t));
  });
});
