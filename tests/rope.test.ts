import { describe, expect, it } from 'vitest';
import {
  prepareRopeBackward, prepareRopeForward, ropeBackward, ropeForward, ropeParams, type RopeDims,
} from '../src/gpu/ops/rope';
import { ropeBackwardRef, ropeRef } from '../src/reference/rope';
import { maxRelErr, randn, testGpu } from './helpers';

// Tolerance, in |a-b|/(1+|b|). The kernel evaluates cos/sin itself to ~1e-7, so the error is that of
// the angle: pos * inv_freq / 2pi is rounded in float32 (a few ulp of exp2, the division and the
// product), an angle error of about pos * 2^-22 rad, which moves an output by at most that times
// the pair's norm (<= ~5 for unit normals). HF computes the angle in float32 too. So the bound is
// 1e-6 + maxPos * 5 * 2^-22; measured errors stay below 1/6 of it. An error in a position, a frequency
// or the pairing moves a value by O(1).
const tol = (maxPos: number) => 1e-6 + maxPos * 5 * 2 ** -22;

const CASES: (RopeDims & { B: number })[] = [
  { B: 1, S: 1, T: 1, H: 1, hd: 2, posOffset: 0 },
  { B: 2, S: 5, T: 10, H: 3, hd: 8, posOffset: 7 },
  { B: 3, S: 33, T: 99, H: 2, hd: 16, posOffset: 17, theta: 500000 },
  { B: 1, S: 33, T: 33, H: 2, hd: 64, posOffset: 3 },
  { B: 2, S: 3, T: 6, H: 5, hd: 6, posOffset: 200, theta: 100 },
];

const label = (d: RopeDims) => `T=${d.T} S=${d.S} H=${d.H} hd=${d.hd} posOffset=${d.posOffset} theta=${d.theta ?? 10000}`;

describe('RoPE kernels vs the CPU reference', () => {
  CASES.forEach((d, n) => {
    it(`forward and backward, out of place, in place and accumulating: ${label(d)}`, async () => {
      const gpu = await testGpu();
      const size = d.T * d.H * d.hd;
      const TOL = tol((d.posOffset ?? 0) + d.S - 1);
      const x = randn(size, 10 * n + 1);
      const y0 = randn(size, 10 * n + 2);
      const fwd = ropeRef(x, d);
      const bwd = ropeBackwardRef(x, d);
      const tx = gpu.tensor([size], 'x', x);
      const ty = gpu.tensor([size], 'y', y0);
      const check = async (what: string, want: ArrayLike<number>) =>
        expect(maxRelErr(await gpu.read(ty), want), `${what} ${label(d)}`).toBeLessThan(TOL);

      ropeForward(gpu, tx, ty, d);
      await check('forward', fwd);
      gpu.write(ty, y0);
      ropeForward(gpu, tx, ty, d, { accumulate: true });
      await check('forward accumulate', fwd.map((v, i) => v + y0[i]));
      gpu.write(ty, x);
      ropeForward(gpu, ty, ty, d);
      await check('forward in place', fwd);

      gpu.write(ty, y0);
      ropeBackward(gpu, tx, ty, d);
      await check('backward', bwd);
      gpu.write(ty, y0);
      ropeBackward(gpu, tx, ty, d, { accumulate: true });
      await check('backward accumulate', bwd.map((v, i) => v + y0[i]));
      gpu.write(ty, x);
      ropeBackward(gpu, ty, ty, d);
      await check('backward in place', bwd);

      // the backward undoes the forward
      gpu.write(ty, x);
      ropeForward(gpu, ty, ty, d);
      ropeBackward(gpu, ty, ty, d);
      await check('backward(forward(x))', x);
      gpu.destroy(tx);
      gpu.destroy(ty);
    });
  });

  it('prepared dispatches keep their bind groups; posOffset changes through setParams', async () => {
    const gpu = await testGpu();
    const d: RopeDims = { T: 8, S: 4, H: 2, hd: 4, posOffset: 0 };
    const x = randn(64, 5);
    const tx = gpu.tensor([64], 'x', x);
    const ty = gpu.tensor([64], 'y');
    const [f] = prepareRopeForward(gpu, tx, ty, d);
    for (const posOffset of [0, 9]) {
      f.setParams(ropeParams({ ...d, posOffset }, false));
      gpu.record(f);
      expect(maxRelErr(await gpu.read(ty), ropeRef(x, { ...d, posOffset }))).toBeLessThan(tol(posOffset + 3));
    }
    f.destroy();
    gpu.destroy(tx);
    gpu.destroy(ty);
  });

  it('refuses inconsistent sizes with the numbers in the message', async () => {
    const gpu = await testGpu();
    const tx = gpu.tensor([48], 'x');
    const ty = gpu.tensor([48], 'y');
    expect(() => prepareRopeForward(gpu, tx, ty, { T: 4, S: 4, H: 2, hd: 6 - 1 })).toThrow(
      /rope_forward: head size hd must be even and >= 2, got hd=5/,
    );
    expect(() => prepareRopeBackward(gpu, tx, ty, { T: 6, S: 4, H: 2, hd: 4 })).toThrow(
      /rope_backward: rows T=6 are not a whole number of sequences of S=4/,
    );
    expect(() => prepareRopeForward(gpu, tx, ty, { T: 4, S: 4, H: 4, hd: 4 })).toThrow(
      /rope_forward: input \(x\) has 48 values, needs 64 for T=4 H=4 hd=4/,
    );
    expect(() => prepareRopeForward(gpu, tx, tx, { T: 4, S: 4, H: 2, hd: 6 }, { accumulate: true })).toThrow(
      /rope_forward: accumulate needs distinct input and output, got x twice/,
    );
    gpu.destroy(tx);
    gpu.destroy(ty);
  });
});
