import { describe, expect, it } from 'vitest';
import { add, axpy, fill, prepareAxpy, scale } from '../src/gpu/ops/elementwise';
import { addRef, axpyRef, fillRef, scaleRef } from '../src/reference/elementwise';
import { maxRelErr, randn, testGpu } from './helpers';

// Each output is one or two f32 roundings of unit-scale values: |error| <= 2 * 2^-24 * (|alpha x| +
// |y|) <= ~1e-6 * (1 + |result|) for the data here (observed at most 6e-8). TOL = 1e-6 on
// |a-b|/(1+|b|); an indexing bug or a missed element gives O(1). fill and scale by a power of two are
// exact.
const TOL = 1e-6;
const ALPHA = Math.fround(-0.37); // the kernel sees alpha as f32

const SIZES = [1, 255, 257, 1000, 70001];

describe('elementwise kernels vs the CPU reference', () => {
  for (const n of SIZES) {
    for (const maxWorkgroups of [undefined, 3]) {
      const tag = maxWorkgroups ? ` (grid capped at ${maxWorkgroups} workgroups)` : '';
      it(`add, axpy, scale, fill n=${n}${tag}`, async () => {
        const gpu = await testGpu();
        const a = randn(n, n + 1);
        const b = randn(n, n + 2);
        const o = { maxWorkgroups };
        const ta = gpu.tensor([n], 'a', a);
        const tb = gpu.tensor([n], 'b', b);
        const tc = gpu.tensor([n + 3], 'c', Array(n).fill(1).concat([7, 7, 7])); // the 3 values past n stay 7
        add(gpu, ta, tb, tc, n, o);
        const c = await gpu.read(tc);
        expect(maxRelErr(c.subarray(0, n), addRef(a, b, n))).toBeLessThan(TOL);
        expect(Array.from(c.subarray(n))).toEqual([7, 7, 7]);

        axpy(gpu, ta, tb, n, ALPHA, o);
        expect(maxRelErr(await gpu.read(tb), axpyRef(a, b, n, ALPHA))).toBeLessThan(TOL);

        scale(gpu, ta, n, ALPHA, o);
        expect(maxRelErr(await gpu.read(ta), scaleRef(a, n, ALPHA))).toBeLessThan(TOL);

        fill(gpu, tc, n, -2.5, o);
        const f = await gpu.read(tc);
        expect(maxRelErr(f.subarray(0, n), fillRef(n, -2.5))).toBe(0);
        expect(Array.from(f.subarray(n))).toEqual([7, 7, 7]);
        [ta, tb, tc].forEach((t) => gpu.destroy(t));
      });
    }
  }

  it('covers n beyond 65535 workgroups of 256 with the device grid limit', async () => {
    const gpu = await testGpu();
    const limit = gpu.device.limits.maxComputeWorkgroupsPerDimension;
    const n = limit * 256 + 300;
    const x = gpu.tensor([n], 'x');
    fill(gpu, x, n, 0.5);
    scale(gpu, x, n, 1.5);
    const got = await gpu.read(x);
    let bad = -1;
    for (let i = 0; i < n; i++) if (got[i] !== 0.75) { bad = i; break; }
    expect(bad).toBe(-1);
    gpu.destroy(x);
  });

  it('a prepared axpy accumulates every time it is recorded, and takes a new alpha', async () => {
    const gpu = await testGpu();
    const n = 33;
    const x = randn(n, 1);
    const tx = gpu.tensor([n], 'x', x);
    const ty = gpu.tensor([n], 'y');
    const d = prepareAxpy(gpu, tx, ty, n, 0.5);
    gpu.record(d, d);
    expect(maxRelErr(await gpu.read(ty), Array.from(x, (v) => v))).toBeLessThan(TOL);
    d.setParams({ n, alpha: -1 });
    gpu.record(d);
    expect(maxRelErr(await gpu.read(ty), new Float64Array(n))).toBeLessThan(TOL);
    d.destroy();
    [tx, ty].forEach((t) => gpu.destroy(t));
  });

  it('refuses wrong sizes and aliasing, naming the kernel and sizes', async () => {
    const gpu = await testGpu();
    const a = gpu.tensor([10], 'a');
    const b = gpu.tensor([12], 'b');
    expect(() => add(gpu, a, b, b, 12)).toThrow(/elementwise_add: a \(a\) has 10 values, needs 12 for n=12/);
    expect(() => axpy(gpu, a, a, 10, 1)).toThrow(/elementwise_axpy: x and y are the same buffer \(a\)/);
    expect(() => fill(gpu, a, 5, 1, { maxWorkgroups: 0 })).toThrow(/elementwise_fill: maxWorkgroups must be an integer/);
    expect(() => scale(gpu, a, 2.5, 1)).toThrow(/elementwise_scale: n must be an integer >= 0, got 2.5/);
    [a, b].forEach((t) => gpu.destroy(t));
  });
});
