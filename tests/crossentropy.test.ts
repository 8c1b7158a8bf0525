import { describe, expect, it } from 'vitest';
import {
  countTargets, crossEntropy, IGNORE_INDEX, prepareCrossEntropy, setCrossEntropyCount,
} from '../src/gpu/ops/crossentropy';
import { crossEntropyBackwardRef, crossEntropyRef } from '../src/reference/crossentropy';
import { maxRelErr, randn, rng, testGpu } from './helpers';

// Tolerances on |a-b|/(1+|b|) against the float64 reference fed the same f32 logits.
// Per-row loss = log(sum of V exps) + (max - logit[target]): the difference is exact or one rounding
// at its own scale even on rows shifted by +-1000, exp and log carry a few ulp, the sum of up to
// V = 3001 terms (tree over 256 threads, serial within) ~1e-7 relative, and the mean over T <= 600
// rows adds a tree sum. Observed at most 1.1e-7; LOSS_TOL = 1e-6 leaves ~9x margin. A wrong target,
// a missing max subtraction (inf/NaN on shifted rows) or a wrong count gives O(0.1) or worse.
// (Written as max + log(sum) - logit it rounds at the scale of |logits|: 3e-5 on the shifted rows.)
const LOSS_TOL = 1e-6;
// dlogits are compared after multiplying both sides by count, i.e. as softmax - onehot in [-1, 1]
// (unscaled, values ~1/(V*count) would make a |a-b|/(1+|b|) test vacuous): exp's few ulp plus the
// sum's error, observed at most 1.3e-7. GRAD_TOL = 1e-6.
const GRAD_TOL = 1e-6;

function makeTargets(T: number, V: number, seed: number, ignoreEvery = 5): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: T }, (_, t) => (t % ignoreEvery === 2 ? IGNORE_INDEX : Math.floor(r() * V)));
}

function makeLogits(T: number, V: number, seed: number): Float32Array {
  const logits = randn(T * V, seed, 3);
  // Shift every third row far up or down: without the max subtraction exp overflows.
  for (let t = 0; t < T; t += 3) {
    const shift = t % 2 ? -1000 : 1000;
    for (let j = 0; j < V; j++) logits[t * V + j] += shift;
  }
  return logits;
}

async function runCase(T: number, V: number, targets: Uint32Array, maxWorkgroups?: number): Promise<void> {
  const gpu = await testGpu();
  const logits = makeLogits(T, V, T * 11 + V);
  const count = countTargets(targets, V);
  const tl = gpu.tensor([T, V], 'logits', logits);
  const tt = gpu.tensor([T], 'targets', targets, 'u32');
  const tlosses = gpu.tensor([T], 'losses', randn(T, 1)); // overwritten
  const tloss = gpu.tensor([1], 'loss', [123]);
  const tdl = gpu.tensor([T, V], 'dlogits', randn(T * V, 2)); // overwritten
  crossEntropy(gpu, tl, tt, tlosses, tloss, tdl, T, V, count, { maxWorkgroups });
  const ref = crossEntropyRef(logits, targets, T, V);
  expect(ref.count).toBe(count);
  expect(maxRelErr(await gpu.read(tlosses), ref.losses)).toBeLessThan(LOSS_TOL);
  expect(maxRelErr(await gpu.read(tloss), [ref.loss])).toBeLessThan(LOSS_TOL);
  const k = Math.max(count, 1);
  const got = Array.from(await gpu.read(tdl), (v) => v * k);
  const want = crossEntropyBackwardRef(logits, targets, T, V, count).dlogits.map((v) => v * k);
  expect(maxRelErr(got, want)).toBeLessThan(GRAD_TOL);
  [tl, tt, tlosses, tloss, tdl].forEach((t) => gpu.destroy(t));
}

const SHAPES: [number, number][] = [
  [1, 1],
  [7, 13],
  [37, 96],
  [130, 300],
  [5, 3001],
];

describe('cross-entropy kernels vs the CPU reference', () => {
  for (const [T, V] of SHAPES) {
    it(`loss and dlogits T=${T} V=${V} (ignored rows, shifted rows)`, () => runCase(T, V, makeTargets(T, V, T + V)));
  }

  it('sums the losses of many more rows than the reduction workgroup has invocations', () =>
    runCase(600, 3, makeTargets(600, 3, 7)));

  it('covers more rows than the grid has workgroups (grid-stride loop)', () =>
    runCase(37, 70, makeTargets(37, 70, 8), 3));

  it('gives loss 0 and zero gradients when every row is ignored', () =>
    runCase(6, 9, new Uint32Array(6).fill(IGNORE_INDEX)));

  it('treats an out-of-range target like the ignore label on the GPU (no out-of-bounds read)', async () => {
    const gpu = await testGpu();
    const [T, V] = [3, 4];
    const tl = gpu.tensor([T, V], 'logits', randn(T * V, 3));
    const tt = gpu.tensor([T], 'targets', [1, 4, 1000000], 'u32');
    const tlosses = gpu.tensor([T], 'losses');
    const tloss = gpu.tensor([1], 'loss');
    const tdl = gpu.tensor([T, V], 'dlogits', randn(T * V, 4));
    crossEntropy(gpu, tl, tt, tlosses, tloss, tdl, T, V, 1);
    const losses = await gpu.read(tlosses);
    expect(losses[0]).toBeGreaterThan(0);
    expect(Array.from(losses.subarray(1))).toEqual([0, 0]);
    expect(Array.from((await gpu.read(tdl)).subarray(V)).every((v) => v === 0)).toBe(true);
    [tl, tt, tlosses, tloss, tdl].forEach((t) => gpu.destroy(t));
  });

  it('prepared dispatches are reused across steps with a new count', async () => {
    const gpu = await testGpu();
    const [T, V] = [11, 17];
    const logits = makeLogits(T, V, 5);
    const tl = gpu.tensor([T, V], 'logits', logits);
    const tt = gpu.tensor([T], 'targets', undefined, 'u32');
    const tlosses = gpu.tensor([T], 'losses');
    const tloss = gpu.tensor([1], 'loss');
    const tdl = gpu.tensor([T, V], 'dlogits');
    const t1 = makeTargets(T, V, 1, 5);
    const ds = prepareCrossEntropy(gpu, tl, tt, tlosses, tloss, tdl, T, V, countTargets(t1, V));
    for (const targets of [t1, makeTargets(T, V, 2, 3)]) {
      gpu.write(tt, targets);
      setCrossEntropyCount(ds, countTargets(targets, V));
      gpu.record(...ds);
      const ref = crossEntropyRef(logits, targets, T, V);
      expect(maxRelErr(await gpu.read(tloss), [ref.loss])).toBeLessThan(LOSS_TOL);
      const got = Array.from(await gpu.read(tdl), (v) => v * ref.count);
      const want = crossEntropyBackwardRef(logits, targets, T, V).dlogits.map((v) => v * ref.count);
      expect(maxRelErr(got, want)).toBeLessThan(GRAD_TOL);
    }
    ds.forEach((d) => d.destroy());
    [tl, tt, tlosses, tloss, tdl].forEach((t) => gpu.destroy(t));
  });

  it('refuses wrong sizes and bad targets with the numbers in the message', async () => {
    const gpu = await testGpu();
    const tl = gpu.tensor([4, 10], 'logits');
    const tt = gpu.tensor([4], 'targets', undefined, 'u32');
    const tlosses = gpu.tensor([4], 'losses');
    const tloss = gpu.tensor([1], 'loss');
    const tdl = gpu.tensor([4, 9], 'dlogits');
    expect(() => crossEntropy(gpu, tl, tt, tlosses, tloss, tdl, 4, 10, 4)).toThrow(
      /crossentropy_forward_backward: dlogits \(dlogits\) has 36 values, needs 40 for T=4 V=10/,
    );
    expect(() => crossEntropy(gpu, tl, tlosses, tlosses, tloss, tl, 4, 10, 4)).toThrow(/targets \(losses\) must be u32/);
    expect(() => countTargets([1, 10, IGNORE_INDEX], 10)).toThrow(/target 10 at row 1 is outside the vocabulary 0..9/);
    expect(() => setCrossEntropyCount([], 3)).not.toThrow();
    [tl, tt, tlosses, tloss, tdl].forEach((t) => gpu.destroy(t));
  });
});
