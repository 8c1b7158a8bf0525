import { describe, expect, it } from 'vitest';
import { swiglu, swigluBackward } from '../src/gpu/ops/swiglu';
import { swigluBackwardRef, swigluRef } from '../src/reference/swiglu';
import { maxRelErr, randn, testGpu } from './helpers';

// Tolerance on |a-b|/(1+|b|) against the float64 reference fed the same f32 inputs. Each output is a
// handful of f32 operations on one element: sigmoid through exp (WGSL allows 3 + 2|z| ulp; the worst
// cases, |z| ~ 10-20, are where the sigmoid or its distance from 1 is below 1e-4, so the absolute
// error stays under 1e-8), then 3-5 roundings of 2^-24 each on values up to ~10. Observed at most 5e-7
// (dg); TOL = 5e-6 leaves 10x margin, and a wrong derivative or a swapped operand gives O(0.1-1).
const TOL = 5e-6;

const SHAPES: [number, number][] = [
  [1, 1],
  [7, 13],
  [37, 96],
  [130, 257],
];

/** Pre-activations with spread and a few extremes (large |z| must not overflow to NaN). */
function gates(n: number, seed: number): Float32Array {
  const g = randn(n, seed, 3);
  const extremes = [0, 30, -30, 90, -90, 200, -200, 1e-3];
  for (let i = 0; i < Math.min(n, extremes.length); i++) g[(i * 7919) % n] = extremes[i];
  return g;
}

describe('swiglu kernels vs the CPU reference', () => {
  for (const [T, F] of SHAPES) {
    it(`forward and backward T=${T} F=${F}`, async () => {
      const gpu = await testGpu();
      const n = T * F;
      const g = gates(n, T * 13 + F);
      const u = randn(n, T + F * 7);
      const dh = randn(n, T * 3 + F);
      const tg = gpu.tensor([T, F], 'g', g);
      const tu = gpu.tensor([T, F], 'u', u);
      const th = gpu.tensor([T, F], 'h');
      const tdh = gpu.tensor([T, F], 'dh', dh);
      // dg, du start as garbage: the backward overwrites them.
      const tdg = gpu.tensor([T, F], 'dg', randn(n, 5));
      const tdu = gpu.tensor([T, F], 'du', randn(n, 6));
      swiglu(gpu, tg, tu, th, T, F);
      swigluBackward(gpu, tdh, tg, tu, tdg, tdu, T, F);
      const ref = swigluBackwardRef(dh, g, u, T, F);
      expect(maxRelErr(await gpu.read(th), swigluRef(g, u, T, F))).toBeLessThan(TOL);
      expect(maxRelErr(await gpu.read(tdg), ref.dg)).toBeLessThan(TOL);
      expect(maxRelErr(await gpu.read(tdu), ref.du)).toBeLessThan(TOL);
      [tg, tu, th, tdh, tdg, tdu].forEach((t) => gpu.destroy(t));
    });
  }

  it('covers more elements than the grid has invocations (grid-stride loop)', async () => {
    const gpu = await testGpu();
    const [T, F] = [9, 301]; // 2709 elements, 2 workgroups of 256
    const g = gates(T * F, 1);
    const u = randn(T * F, 2);
    const dh = randn(T * F, 3);
    const t = [g, u, dh].map((d, i) => gpu.tensor([T, F], `in${i}`, d));
    const [th, tdg, tdu] = [0, 1, 2].map((i) => gpu.tensor([T, F], `out${i}`));
    swiglu(gpu, t[0], t[1], th, T, F, { maxWorkgroups: 2 });
    swigluBackward(gpu, t[2], t[0], t[1], tdg, tdu, T, F, { maxWorkgroups: 2 });
    const ref = swigluBackwardRef(dh, g, u, T, F);
    expect(maxRelErr(await gpu.read(th), swigluRef(g, u, T, F))).toBeLessThan(TOL);
    expect(maxRelErr(await gpu.read(tdg), ref.dg)).toBeLessThan(TOL);
    expect(maxRelErr(await gpu.read(tdu), ref.du)).toBeLessThan(TOL);
    [...t, th, tdg, tdu].forEach((x) => gpu.destroy(x));
  });

  it('refuses tensors too small for the shape, naming the kernel and sizes', async () => {
    const gpu = await testGpu();
    const a = gpu.tensor([6, 10], 'a');
    const b = gpu.tensor([5, 10], 'b');
    const c = gpu.tensor([6, 10], 'c');
    expect(() => swiglu(gpu, a, b, c, 6, 10)).toThrow(/swiglu_forward: u \(b\) has 50 values, needs 60 for T=6 F=10/);
    expect(() => swigluBackward(gpu, a, a, c, c, a, 5, 10)).toThrow(/swiglu_backward: .* are the same buffer/);
    [a, b, c].forEach((t) => gpu.destroy(t));
  });
});
