import { describe, expect, it } from 'vitest';
import { prepareKvReadGrad, prepareKvWrite } from '../src/gpu/ops/kvcache';
import { kvReadGradRef, kvWriteRef } from '../src/reference/kvcache';
import { randn, testGpu } from './helpers';

// Pure copies: exact equality is the right tolerance.
describe('kv cache block copy', () => {
  for (const [B, n, W, Pd, off] of [[1, 1, 1, 1, 0], [3, 5, 7, 13, 4], [2, 17, 24, 17, 0], [5, 1, 33, 9, 8]]) {
    it(`B=${B} n=${n} W=${W} Pd=${Pd} off=${off}`, async () => {
      const gpu = await testGpu();
      const block = randn(B * n * W, B + n);
      const cache0 = randn(B * Pd * W, W);
      const tb = gpu.tensor([B, n, W], 'block', block);
      const tc = gpu.tensor([B, Pd, W], 'cache', cache0);
      gpu.recordOnce(prepareKvWrite(gpu, tb, tc, { B, n, W, Pd, off }));
      const refCache = Float64Array.from(cache0);
      kvWriteRef(block, refCache, B, n, W, Pd, off);
      expect(Array.from(await gpu.read(tc))).toEqual(Array.from(Float32Array.from(refCache)));

      for (const acc of [false, true]) {
        const d0 = randn(B * n * W, 9);
        gpu.write(tb, d0);
        gpu.recordOnce(prepareKvReadGrad(gpu, tc, tb, { B, n, W, Pd, off }, acc));
        const ref = Float64Array.from(d0);
        kvReadGradRef(refCache, ref, B, n, W, Pd, off, acc);
        expect(Array.from(await gpu.read(tb))).toEqual(Array.from(Float32Array.from(ref)));
      }
    });
  }

  it('refuses a block that does not fit the cache', async () => {
    const gpu = await testGpu();
    const tb = gpu.tensor([2, 3, 4], 'block');
    const tc = gpu.tensor([2, 4, 4], 'cache');
    expect(() => prepareKvWrite(gpu, tb, tc, { B: 2, n: 3, W: 4, Pd: 4, off: 2 })).toThrow(/block of 3 positions at 2 does not fit a cache of 4/);
  });
});
