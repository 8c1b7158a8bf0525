import { describe, expect, it } from 'vitest';
import { bias, biasBackward } from '../src/gpu/ops/bias';
import { biasBackward as biasBackwardRef, biasForward as biasForwardRef } from '../src/reference/model-ops';
import { maxRelErr, randn, testGpu } from './helpers';

// Tolerance on |a-b|/(1+|b|) against the float64 reference fed the same f32 inputs. Forward: one f32
// addition per element (one rounding, 2^-24 relative). Backward: a column sum of T unit-normal terms
// in f32, sequentially: error up to ~T * 2^-24 * (partial sums ~ sqrt(T)); at T = 301 that is ~3e-4
// absolute in the worst case, ~1e-5 typical; the sums are O(sqrt(T)) ~ 17, so the scaled error stays
// below 2e-5. TOL = 1e-4 leaves margin; a wrong column or a missing row is O(1).
const TOL = 1e-4;

const SHAPES: [number, number][] = [
  [1, 1],
  [7, 13],
  [37, 96],
  [301, 19],
  [5, 515],
];

describe('bias kernels vs the CPU reference', () => {
  for (const [T, N] of SHAPES) {
    it(`forward (y += b) and backward (db += column sums) T=${T} N=${N}`, async () => {
      const gpu = await testGpu();
      const y0 = randn(T * N, T * 7 + N);
      const b = randn(N, N * 3 + 1);
      const dy = randn(T * N, T + N * 11);
      const db0 = randn(N, 99); // the backward accumulates into what is there
      const ty = gpu.tensor([T, N], 'y', y0);
      const tb = gpu.tensor([N], 'b', b);
      const tdy = gpu.tensor([T, N], 'dy', dy);
      const tdb = gpu.tensor([N], 'db', db0);
      bias(gpu, tb, ty, T, N);
      biasBackward(gpu, tdy, tdb, T, N);
      const yRef = Float64Array.from(y0);
      biasForwardRef(yRef, b, T, N);
      const dbRef = Float64Array.from(db0);
      biasBackwardRef(dbRef, dy, T, N);
      expect(maxRelErr(await gpu.read(ty), yRef)).toBeLessThan(TOL);
      expect(maxRelErr(await gpu.read(tdb), dbRef)).toBeLessThan(TOL);
      [ty, tb, tdy, tdb].forEach((t) => gpu.destroy(t));
    });
  }

  it('covers more elements and columns than the grid has invocations (grid-stride loops)', async () => {
    const gpu = await testGpu();
    const [T, N] = [3, 700]; // 2100 elements and 700 columns over at most 2 workgroups of 256
    const y0 = randn(T * N, 1);
    const b = randn(N, 2);
    const dy = randn(T * N, 3);
    const ty = gpu.tensor([T, N], 'y', y0);
    const tb = gpu.tensor([N], 'b', b);
    const tdy = gpu.tensor([T, N], 'dy', dy);
    const tdb = gpu.tensor([N], 'db');
    bias(gpu, tb, ty, T, N, { maxWorkgroups: 2 });
    biasBackward(gpu, tdy, tdb, T, N, { maxWorkgroups: 2 });
    const yRef = Float64Array.from(y0);
    biasForwardRef(yRef, b, T, N);
    const dbRef = new Float64Array(N);
    biasBackwardRef(dbRef, dy, T, N);
    expect(maxRelErr(await gpu.read(ty), yRef)).toBeLessThan(TOL);
    expect(maxRelErr(await gpu.read(tdb), dbRef)).toBeLessThan(TOL);
    [ty, tb, tdy, tdb].forEach((t) => gpu.destroy(t));
  });

  it('refuses tensors too small for the shape, naming the kernel and sizes', async () => {
    const gpu = await testGpu();
    const y = gpu.tensor([4, 5], 'y');
    const b = gpu.tensor([4], 'b');
    expect(() => bias(gpu, b, y, 4, 5)).toThrow(/bias_forward: b \(b\) has 4 values, needs 5 for T=4 N=5/);
    expect(() => biasBackward(gpu, y, y, 4, 5)).toThrow(/bias_backward: .* are the same buffer/);
    [y, b].forEach((t) => gpu.destroy(t));
  });
});
