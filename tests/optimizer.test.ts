import { describe, expect, it } from 'vitest';
import {
  prepareAdamW, prepareGradNorm, setAdamWStep, setGradNormParams, type AdamWHyper,
} from '../src/gpu/ops/optimizer';
import type { Gpu, Tensor } from '../src/gpu/runtime';
import { adamWRef, clipScaleRef, type AdamWRefHyper } from '../src/reference/optimizer';
import { maxRelErr, randn, testGpu } from './helpers';

const SIZES = [1, 7, 1000, 70001];

// Tolerances. The norm: an f32 sum of 70001 positive squares in 256 strided partial sums and a tree
// has relative rounding error below 1e-6; 1e-5 leaves a margin, while a missed or doubled element of
// a unit-normal gradient moves the norm by ~1e-5 relative only for the largest tensor and far more for
// the others. Moments m and v: a few f32 roundings per step, compared relative to the tensor's largest
// reference value; 1e-5 (an indexing bug or wrong coefficient gives errors of order 1). Parameters: we
// compare the total update p - p0 relative to its largest reference value, because f32 storage of p
// (|p| <= ~5) rounds by up to ~3e-7 per step while the update is ~lr per step (~1e-2): 4 steps give
// ~1e-4 of the update in the worst case, so 3e-4; a wrong bias correction or missing weight decay
// changes the update by more than 1e-2 of itself.
const NORM_TOL = 1e-5;
const MOMENT_TOL = 1e-5;
const UPDATE_TOL = 3e-4;

/** max |a-b| / max |b|: error relative to the tensor's scale. */
function errRelToMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let e = 0;
  for (let i = 0; i < b.length; i++) {
    m = Math.max(m, Math.abs(b[i]));
    const d = Math.abs(a[i] - b[i]);
    e = Number.isNaN(d) ? Infinity : Math.max(e, d);
  }
  return m === 0 ? e : e / m;
}

function diff(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: a.length }, (_, i) => a[i] - b[i]);
}

const free = (gpu: Gpu, ts: Tensor[]) => ts.forEach((t) => gpu.destroy(t));

describe('global gradient norm (sum_squares + clip_scale) vs the CPU reference', () => {
  it('norm and scale on sizes 1, 7, 1000, 70001, clipping on and off, with grad_scale', async () => {
    const gpu = await testGpu();
    const data = SIZES.map((n, i) => randn(n, 100 + i));
    const grads = data.map((d, i) => gpu.tensor([d.length], `g${i}`, d));
    // Two spare slots hold garbage: clip_scale must sum only the first grads.length slots.
    const partials = gpu.tensor([SIZES.length + 2], 'partials', [7, 7, 7, 7, 1e6, 1e6]);
    const scale = gpu.tensor([1], 'scale');
    const norm = gpu.tensor([1], 'norm');
    const gn = prepareGradNorm(gpu, grads, partials, scale, norm, 1.5, 0.5);
    expect(gn.length).toBe(SIZES.length + 1);
    for (const [maxNorm, gradScale] of [[1.5, 0.5], [0, 0.5], [1e9, 1], [-1, 0.25], [3, 0.125]]) {
      setGradNormParams(gn, maxNorm, gradScale);
      gpu.record(...gn);
      const [gotNorm] = await gpu.read(norm);
      const [gotScale] = await gpu.read(scale);
      const ref = clipScaleRef(data, maxNorm, gradScale);
      expect(Math.abs(gotNorm - ref.norm) / ref.norm).toBeLessThan(NORM_TOL);
      expect(Math.abs(gotScale - ref.scale) / ref.scale).toBeLessThan(NORM_TOL);
      if (ref.scale === 1) expect(gotScale).toBe(1);
      else expect(gotScale).toBeLessThan(1);
    }
    // Each slot is the sum of squares of its own tensor.
    const slots = await gpu.read(partials, SIZES.length);
    data.forEach((d, i) => {
      const ref = clipScaleRef([d], 0).norm ** 2;
      expect(Math.abs(slots[i] - ref) / ref).toBeLessThan(NORM_TOL);
    });
    free(gpu, [...grads, partials, scale, norm]);
  });

  it('an all-zero gradient gives norm 0 and scale 1', async () => {
    const gpu = await testGpu();
    const g = gpu.tensor([33], 'g');
    const partials = gpu.tensor([1], 'partials', [5]);
    const scale = gpu.tensor([1], 'scale');
    const norm = gpu.tensor([1], 'norm', [9]);
    gpu.record(...prepareGradNorm(gpu, [g], partials, scale, norm, 1));
    expect((await gpu.read(norm))[0]).toBe(0);
    expect((await gpu.read(scale))[0]).toBe(1);
    free(gpu, [g, partials, scale, norm]);
  });

  it('sum_squares covers a tensor of more than 65535*256 elements in one dispatch', async () => {
    const gpu = await testGpu();
    const n = 65535 * 256 + 1001;
    const x = new Float32Array(n).fill(0.5);
    x[n - 1] = 1000;
    x[0] = 3;
    const g = gpu.tensor([n], 'big');
    gpu.write(g, x);
    const partials = gpu.tensor([1], 'partials');
    const scale = gpu.tensor([1], 'scale');
    const norm = gpu.tensor([1], 'norm');
    gpu.record(...prepareGradNorm(gpu, [g], partials, scale, norm, 0));
    const [sum] = await gpu.read(partials);
    // All partial sums are multiples of 0.25 small enough to be exact in f32, up to the last additions.
    const expected = (n - 2) * 0.25 + 1e6 + 9;
    expect(Math.abs(sum - expected)).toBeLessThanOrEqual(1);
    free(gpu, [g, partials, scale, norm]);
  });
});

interface Case {
  maxNorm: number;
  weightDecay: number;
}

const CASES: Case[] = [
  { maxNorm: 0, weightDecay: 0 },
  { maxNorm: 0, weightDecay: 0.1 },
  { maxNorm: 2, weightDecay: 0 },
  { maxNorm: 2, weightDecay: 0.1 },
];

const STEPS = 4;
const lrAt = (step: number) => 1e-2 * (1 - 0.15 * step); // a schedule: lr changes every step

describe('AdamW vs the CPU reference (PyTorch semantics), several steps', () => {
  for (const c of CASES) {
    it(`sizes ${SIZES.join(', ')}: ${c.maxNorm > 0 ? `clip at ${c.maxNorm}` : 'no clipping'}, weight decay ${c.weightDecay}`, async () => {
      const gpu = await testGpu();
      const gradScale = 0.5; // two accumulation steps
      const base: AdamWRefHyper = { lr: lrAt(1), beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: c.weightDecay, gradScale };
      const p0 = SIZES.map((n, i) => randn(n, 10 + i));
      const params = p0.map((d, i) => gpu.tensor([d.length], `p${i}`, d));
      const grads = SIZES.map((n, i) => gpu.tensor([n], `g${i}`));
      const ms = SIZES.map((n, i) => gpu.tensor([n], `m${i}`));
      const vs = SIZES.map((n, i) => gpu.tensor([n], `v${i}`));
      const partials = gpu.tensor([SIZES.length], 'partials');
      const scale = gpu.tensor([1], 'scale');
      const norm = gpu.tensor([1], 'norm');
      const gn = prepareGradNorm(gpu, grads, partials, scale, norm, c.maxNorm, gradScale);
      const hyper: AdamWHyper = { ...base };
      const steps = SIZES.map((_, i) => prepareAdamW(gpu, params[i], grads[i], ms[i], vs[i], scale, hyper));

      let ref: { param: Float64Array; m: Float64Array; v: Float64Array }[] = p0.map((p) => ({ param: Float64Array.from(p), m: new Float64Array(p.length), v: new Float64Array(p.length) }));
      let clipped = false;
      for (let t = 1; t <= STEPS; t++) {
        const g = SIZES.map((n, i) => randn(n, 1000 * t + i, 1 + i));
        g.forEach((d, i) => gpu.write(grads[i], d));
        const h = { ...base, lr: lrAt(t) };
        steps.forEach((d) => setAdamWStep(d, h, t));
        gpu.record(...gn, ...steps);
        const [gotNorm] = await gpu.read(norm);
        const clip = clipScaleRef(g, c.maxNorm, gradScale);
        expect(Math.abs(gotNorm - clip.norm) / clip.norm).toBeLessThan(NORM_TOL);
        clipped ||= clip.scale < 1;
        ref = ref.map((r, i) => adamWRef(r.param, g[i], r.m, r.v, h, t, clip.scale));
      }
      expect(clipped).toBe(c.maxNorm > 0);
      for (let i = 0; i < SIZES.length; i++) {
        const [p, m, v] = [await gpu.read(params[i]), await gpu.read(ms[i]), await gpu.read(vs[i])];
        expect(errRelToMax(m, ref[i].m), `m of size ${SIZES[i]}`).toBeLessThan(MOMENT_TOL);
        expect(errRelToMax(v, ref[i].v), `v of size ${SIZES[i]}`).toBeLessThan(MOMENT_TOL);
        expect(errRelToMax(diff(p, p0[i]), diff(ref[i].param, p0[i])), `update of size ${SIZES[i]}`).toBeLessThan(UPDATE_TOL);
        expect(maxRelErr(p, ref[i].param), `param of size ${SIZES[i]}`).toBeLessThan(1e-5);
      }
      free(gpu, [...params, ...grads, ...ms, ...vs, partials, scale, norm]);
    });
  }

  it('grid-strides over the whole tensor when the workgroup count is capped', async () => {
    const gpu = await testGpu();
    const n = 70001;
    const h: AdamWRefHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradScale: 1 };
    const p0 = randn(n, 5);
    const g = randn(n, 6);
    const m0 = randn(n, 7, 0.1);
    const v0 = Float32Array.from(randn(n, 8), (x) => x * x * 0.01);
    const [p, gt, m, v] = [gpu.tensor([n], 'p', p0), gpu.tensor([n], 'g', g), gpu.tensor([n], 'm', m0), gpu.tensor([n], 'v', v0)];
    const scale = gpu.tensor([1], 'scale', [0.75]);
    const d = prepareAdamW(gpu, p, gt, m, v, scale, h, 3, 3);
    expect(d.workgroups).toEqual([3, 1, 1]);
    gpu.record(d);
    const ref = adamWRef(p0, g, m0, v0, h, 3, 0.75);
    expect(errRelToMax(await gpu.read(m), ref.m)).toBeLessThan(MOMENT_TOL);
    expect(errRelToMax(await gpu.read(v), ref.v)).toBeLessThan(MOMENT_TOL);
    expect(errRelToMax(diff(await gpu.read(p), p0), diff(ref.param, p0))).toBeLessThan(UPDATE_TOL);
    free(gpu, [p, gt, m, v, scale]);
  });

  it('refuses mismatched tensors and bad hyperparameters, with the numbers', async () => {
    const gpu = await testGpu();
    const [p, g, m, v, small] = [gpu.tensor([10], 'p'), gpu.tensor([10], 'g'), gpu.tensor([10], 'm'), gpu.tensor([10], 'v'), gpu.tensor([9], 'v9')];
    const scale = gpu.tensor([1], 'scale');
    const norm = gpu.tensor([1], 'norm');
    expect(() => prepareAdamW(gpu, p, g, m, small, scale, { lr: 1e-3 })).toThrow(/adamw: v \(v9\) has 9 values, param \(p\) has 10/);
    expect(() => prepareAdamW(gpu, p, g, m, v, scale, { lr: 1e-3, beta2: 1 })).toThrow(/beta2 must be in \[0, 1\), got 1/);
    expect(() => prepareAdamW(gpu, p, g, m, v, scale, { lr: -1 })).toThrow(/lr must be .* got -1/);
    expect(() => prepareAdamW(gpu, p, g, m, v, scale, { lr: 1e-3 }, 0)).toThrow(/step must be an integer >= 1.*got 0/);
    expect(() => prepareAdamW(gpu, p, g, m, m, scale, { lr: 1e-3 })).toThrow(/five different tensors/);
    const d = prepareAdamW(gpu, p, g, m, v, scale, { lr: 1e-3 });
    expect(() => setAdamWStep(d, { lr: 1e-3, gradScale: 0 }, 2)).toThrow(/gradScale must be .* got 0/);
    const tiny = gpu.tensor([1], 'tiny');
    expect(() => prepareGradNorm(gpu, [p, g], tiny, scale, norm, 1)).toThrow(/partials \(tiny\) has 1 slots, needs 2/);
    expect(() => prepareGradNorm(gpu, [p], small, scale, norm, Infinity)).toThrow(/maxNorm must be finite/);
    expect(() => setGradNormParams(d, 1)).toThrow(/not a dispatch list made by prepareGradNorm/);
    d.destroy();
    free(gpu, [p, g, m, v, small, tiny, scale, norm]);
  });
});
