import { describe, expect, it } from 'vitest';
import { prepareRmsnormBackward, rmsnorm, rmsnormBackward } from '../src/gpu/ops/rmsnorm';
import { rmsnormBackwardRef, rmsnormRef } from '../src/reference/rmsnorm';
import { maxRelErr, randn, testGpu } from './helpers';

// Tolerances on |a-b|/(1+|b|) against the float64 reference fed the same f32 inputs.
// Forward: rrms comes from a tree sum of D <= 600 squares (a few 2^-24 roundings per level, ~log2(256)
// levels plus the per-thread serial part) and inverseSqrt (2 ulp); y is a product of three f32 factors.
// Observed at most 1.5e-7 (SwiftShader); FWD_TOL = 1e-6 leaves ~7x margin, and an indexing bug (wrong
// row, column or weight) gives errors of order 1. Dropping eps would change rrms by only eps/(2 ms)
// ~1e-6 with unit data, so a separate case uses eps = 0.5 where it matters at O(0.1).
const FWD_TOL = 1e-6;
// Backward: dx is a few products plus r^3/D * S with S a tree sum of D products (observed <= 2e-7);
// dw sums T <= 130 products serially per column, whose rounding error grows like T * 2^-24 relative
// to the sum of |terms| in the worst case (observed 1.7e-6 at T=130). BWD_TOL = 1e-5; the bugs it
// must catch (a missing r^3 term, a wrong row's rrms, dw overwritten instead of accumulated) give
// O(0.1-1).
const BWD_TOL = 1e-5;

const SHAPES: [number, number][] = [
  [1, 1],
  [7, 13],
  [37, 96],
  [130, 257],
  [3, 600],
];

async function forwardCase(T: number, D: number, maxWorkgroups?: number, eps = 1e-5, xScale = 2): Promise<void> {
  const gpu = await testGpu();
  const x = randn(T * D, T * 31 + D, xScale);
  const w = randn(D, D + 5);
  const tx = gpu.tensor([T, D], 'x', x);
  const tw = gpu.tensor([D], 'w', w);
  const ty = gpu.tensor([T, D], 'y');
  const tr = gpu.tensor([T], 'rrms');
  rmsnorm(gpu, tx, tw, ty, tr, T, D, { eps, maxWorkgroups });
  const ref = rmsnormRef(x, w, T, D, eps);
  expect(maxRelErr(await gpu.read(ty), ref.y)).toBeLessThan(FWD_TOL);
  expect(maxRelErr(await gpu.read(tr), ref.rrms)).toBeLessThan(FWD_TOL);
  [tx, tw, ty, tr].forEach((t) => gpu.destroy(t));
}

async function backwardCase(T: number, D: number, accumulate: boolean, maxWorkgroups?: number): Promise<void> {
  const gpu = await testGpu();
  const x = randn(T * D, T * 17 + D, 2);
  const w = randn(D, D + 9);
  const dy = randn(T * D, T + D * 3);
  const dx0 = randn(T * D, 77);
  const dw0 = randn(D, 78);
  const eps = 1e-5;
  const { rrms } = rmsnormRef(x, w, T, D, eps);
  const ref = rmsnormBackwardRef(dy, x, w, T, D, eps);
  const tdy = gpu.tensor([T, D], 'dy', dy);
  const tx = gpu.tensor([T, D], 'x', x);
  const tw = gpu.tensor([D], 'w', w);
  const tr = gpu.tensor([T], 'rrms', Float32Array.from(rrms));
  const tdx = gpu.tensor([T, D], 'dx', dx0);
  const tdw = gpu.tensor([D], 'dw', dw0);
  rmsnormBackward(gpu, tdy, tx, tw, tr, tdx, tdw, T, D, { accumulate, maxWorkgroups });
  const wantDx = accumulate ? ref.dx.map((v, i) => v + dx0[i]) : ref.dx;
  const wantDw = ref.dw.map((v, i) => v + dw0[i]); // dw always accumulates
  expect(maxRelErr(await gpu.read(tdx), wantDx)).toBeLessThan(BWD_TOL);
  expect(maxRelErr(await gpu.read(tdw), wantDw)).toBeLessThan(BWD_TOL);
  [tdy, tx, tw, tr, tdx, tdw].forEach((t) => gpu.destroy(t));
}

describe('rmsnorm kernels vs the CPU reference', () => {
  for (const [T, D] of SHAPES) {
    it(`forward T=${T} D=${D}`, () => forwardCase(T, D));
    for (const accumulate of [false, true]) {
      it(`backward${accumulate ? ' (accumulate dx)' : ''} T=${T} D=${D}`, () => backwardCase(T, D, accumulate));
    }
  }

  it('forward uses eps (eps = 0.5 against data of mean square 0.25)', () => forwardCase(7, 13, undefined, 0.5, 0.5));

  it('covers more rows and columns than the grid has workgroups (grid-stride loops)', async () => {
    await forwardCase(37, 200, 4);
    await backwardCase(37, 200, true, 2); // dw: 200 columns / 64 per workgroup > 2 workgroups
  });

  it('a prepared backward can be recorded every step (dw keeps accumulating)', async () => {
    const gpu = await testGpu();
    const [T, D] = [5, 11];
    const x = randn(T * D, 1);
    const w = randn(D, 2);
    const dy = randn(T * D, 3);
    const { rrms } = rmsnormRef(x, w, T, D);
    const ref = rmsnormBackwardRef(dy, x, w, T, D);
    const t = [gpu.tensor([T, D], 'dy', dy), gpu.tensor([T, D], 'x', x), gpu.tensor([D], 'w', w),
      gpu.tensor([T], 'rrms', Float32Array.from(rrms)), gpu.tensor([T, D], 'dx'), gpu.tensor([D], 'dw')];
    const ds = prepareRmsnormBackward(gpu, t[0], t[1], t[2], t[3], t[4], t[5], T, D);
    for (let step = 0; step < 3; step++) gpu.record(...ds);
    expect(maxRelErr(await gpu.read(t[4]), ref.dx)).toBeLessThan(BWD_TOL);
    expect(maxRelErr(await gpu.read(t[5]), ref.dw.map((v) => 3 * v))).toBeLessThan(BWD_TOL);
    ds.forEach((d) => d.destroy());
    t.forEach((u) => gpu.destroy(u));
  });

  it('refuses tensors too small for the shape, naming the kernel and sizes', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([4, 8], 'x');
    const w = gpu.tensor([7], 'w');
    const y = gpu.tensor([4, 8], 'y');
    const r = gpu.tensor([4], 'rrms');
    expect(() => rmsnorm(gpu, x, w, y, r, 4, 8)).toThrow(/rmsnorm_forward: w \(w\) has 7 values, needs 8 for T=4 D=8/);
    expect(() => rmsnormBackward(gpu, x, x, w, r, y, w, 4, 7, { accumulate: true })).toThrow(
      /rmsnorm_backward_acc: .* are the same buffer/,
    );
    expect(() => rmsnorm(gpu, x, w, y, r, 4, 0)).toThrow(/rmsnorm_forward: D must be an integer >= 1, got 0/);
    [x, w, y, r].forEach((t) => gpu.destroy(t));
  });
});
