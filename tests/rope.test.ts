import { describe, expect, it } from 'vitest';
import {
  prepareRopeBackward, prepareRopeForward, ropeBackward, ropeForward, ropeParams, type RopeDims,
} from '../src/gpu/ops/rope';
import { ropeBackwardRef, ropeInvFreq, ropeRef, type RopeScaling } from '../src/reference/rope';
import { maxRelErr, randn, testGpu } from './helpers';

// Tolerance, in |a-b|/(1+|b|). The kernel evaluates cos/sin itself to ~1e-7, so the error is that of
// the angle: pos * inv_freq / 2pi is rounded in float32 (a few ulp of exp2, the division and the
// product), an angle error of about pos * 2^-22 rad, which moves an output by at most that times
// the pair's norm (<= ~5 for unit normals). HF computes the angle in float32 too. So the bound is
// 1e-6 + maxPos * 5 * 2^-22; measured errors stay below 1/6 of it. An error in a position, a frequency
// or the pairing moves a value by O(1).
const tol = (maxPos: number) => 1e-6 + maxPos * 5 * 2 ** -22;

/** Llama 3.1's rope_parameters (meta-llama/Llama-3.1-8B's config.json). */
const LLAMA31: RopeScaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

const CASES: (RopeDims & { B: number })[] = [
  { B: 1, S: 1, T: 1, H: 1, hd: 2, posOffset: 0 },
  { B: 2, S: 5, T: 10, H: 3, hd: 8, posOffset: 7 },
  { B: 3, S: 33, T: 99, H: 2, hd: 16, posOffset: 17, theta: 500000 },
  { B: 1, S: 33, T: 33, H: 2, hd: 64, posOffset: 3 },
  { B: 2, S: 3, T: 6, H: 5, hd: 6, posOffset: 200, theta: 100 },
  // Llama 3.1's scaling: pairs above, inside and below the smoothed band of wavelengths [2048, 8192]
  { B: 1, S: 9, T: 9, H: 2, hd: 64, posOffset: 4000, theta: 500000, scaling: LLAMA31 },
  // a short original context, so scaled and smoothed pairs turn visibly at small positions
  { B: 2, S: 7, T: 14, H: 3, hd: 16, posOffset: 5, theta: 10000, scaling: { ...LLAMA31, factor: 4, original_max_position_embeddings: 32 } },
];

const label = (d: RopeDims) =>
  `T=${d.T} S=${d.S} H=${d.H} hd=${d.hd} posOffset=${d.posOffset} theta=${d.theta ?? 10000}${d.scaling ? ` llama3 ${JSON.stringify(d.scaling)}` : ''}`;

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

  it('llama3 frequencies are transformers\' (_compute_llama3_parameters, Llama 3.1\'s settings, head_dim 64)', () => {
    // printed by transformers 5.23 (ROPE_INIT_FUNCTIONS['llama3'], float32): pairs 0, 14 (unscaled),
    // 15-17 (smoothed), 18 and 31 (divided by 8); float32 rounding of theta^(-2i/hd) is the difference (< 1e-6 relative)
    const hf: [number, number][] = [
      [0, 1.0], [14, 0.0032114461064338684], [15, 0.0013718936825171113], [16, 0.0005248460220173001],
      [17, 0.0001785077911335975], [18, 7.784655463183299e-5], [31, 3.76732259610435e-7],
    ];
    const ours = ropeInvFreq(64, 500000, LLAMA31);
    for (const [i, want] of hf) expect(Math.abs(ours[i] - want) / want, `pair ${i}`).toBeLessThan(1e-6);
    // without scaling the low frequencies are 8x faster: the scaling is not a no-op
    expect(ropeInvFreq(64, 500000)[31] / ours[31]).toBeCloseTo(8, 5);
  });

  it('refuses a rope type it does not implement and inconsistent llama3 factors', async () => {
    const d: RopeDims = { T: 4, S: 4, H: 1, hd: 4 };
    expect(() => ropeParams({ ...d, scaling: { ...LLAMA31, rope_type: 'yarn' as 'llama3' } }, false)).toThrow(
      'rope_forward: rope_type "yarn" is not implemented (only "llama3")',
    );
    expect(() => ropeParams({ ...d, scaling: { ...LLAMA31, high_freq_factor: 1 } }, true)).toThrow(
      /rope_backward: llama3 scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor/,
    );
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
