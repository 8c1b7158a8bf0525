// The straight-through softmax kernels (shaders/straightthrough.wgsl) against the float64 reference
// (src/reference/straightthrough.ts) on awkward sizes, and the reference's backward against finite
// differences of the softmax-relaxed surrogate e = E[token] + (p - stopgrad p) E.
import { describe, expect, it } from 'vitest';
import { prepareStBackward, prepareStForward, prepareStScatter, stBackward, stForward, stScatter } from '../src/gpu/ops/straightthrough';
import { stBackwardRef, stEmbedBackwardRef, stEmbedRef, stForwardRef } from '../src/reference/straightthrough';
import { maxRelErr, randn, rng, testGpu } from './helpers';

// |a-b|/(1+|b|) against the float64 reference fed the same f32 inputs. p: exp of a scaled difference
// (a few ulp) over a serial sum of up to V = 1031 terms (~V * 6e-8 relative at worst, ~1e-7 typical);
// observed below 1e-7, TOL = 1e-6. dlogits: the same plus a serial dot of V terms.
const TOL = 1e-6;
const SHAPES: [number, number][] = [[1, 1], [3, 7], [65, 13], [5, 1031]];

function allowedMask(V: number, seed: number): Uint32Array {
  const r = rng(seed);
  const a = Uint32Array.from({ length: V }, () => (r() < 0.7 ? 1 : 0));
  a[V - 1] = 1; // at least one allowed token
  return a;
}

describe('straight-through softmax kernels vs the reference', () => {
  for (const [R, V] of SHAPES) {
    for (const tau of [1, 0.37]) {
      it(`R=${R} V=${V} tau=${tau}`, async () => {
        const gpu = await testGpu();
        const logits = randn(R * V, R * 31 + V, 2);
        // a tie on row 0: the first of the tied allowed tokens wins
        const allowed = allowedMask(V, V);
        const ok = [...allowed.keys()].filter((j) => allowed[j]);
        if (ok.length > 1) logits[ok[1]] = logits[ok[0]] = 9;
        const g = randn(R * V, 5, 1);
        const tl = gpu.tensor([R, V], 'logits', logits);
        const ta = gpu.tensor([V], 'allowed', allowed, 'u32');
        const tp = gpu.tensor([R, V], 'p', randn(R * V, 3));
        const tt = gpu.tensor([R], 'tokens', new Uint32Array(R).fill(77), 'u32');
        const tg = gpu.tensor([R, V], 'g', g);
        const td = gpu.tensor([R, V], 'dlogits', randn(R * V, 4));
        // a grid of one workgroup exercises the grid-stride loop over rows
        stForward(gpu, tl, ta, tp, tt, R, V, tau, { maxWorkgroups: 1 });
        const ref = stForwardRef(logits, Array.from(allowed, Boolean), R, V, tau);
        expect(Array.from(await gpu.readU32(tt))).toEqual(ref.tokens);
        if (ok.length > 1) expect(ref.tokens[0]).toBe(ok[0]);
        const p = await gpu.read(tp);
        expect(maxRelErr(p, ref.p)).toBeLessThan(TOL);
        stBackward(gpu, tp, tg, td, R, V, tau, { maxWorkgroups: 1 });
        expect(maxRelErr(await gpu.read(td), stBackwardRef(p, g, R, V, tau))).toBeLessThan(TOL);
        [tl, ta, tp, tt, tg, td].forEach((t) => gpu.destroy(t));
      });
    }
  }

  it('scatters tokens into ids at one position per row, leaving the rest', async () => {
    const gpu = await testGpu();
    const R = 67;
    const stride = 5;
    const tokens = Uint32Array.from({ length: R }, (_, r) => 1000 + r);
    const tt = gpu.tensor([R], 'tokens', tokens, 'u32');
    const dst = gpu.tensor([R * stride], 'ids', new Uint32Array(R * stride).fill(3), 'u32');
    stScatter(gpu, tt, dst, R, stride, 2, { maxWorkgroups: 1 });
    const want = new Uint32Array(R * stride).fill(3);
    for (let r = 0; r < R; r++) want[r * stride + 2] = 1000 + r;
    expect(Array.from(await gpu.readU32(dst))).toEqual(Array.from(want));
    gpu.destroy(tt);
    gpu.destroy(dst);
  });

  it('refuses bad shapes, temperatures and aliasing', async () => {
    const gpu = await testGpu();
    const l = gpu.tensor([2, 3], 'l');
    const a = gpu.tensor([3], 'a', undefined, 'u32');
    const p = gpu.tensor([2, 3], 'p');
    const t = gpu.tensor([2], 't', undefined, 'u32');
    expect(() => prepareStForward(gpu, l, a, p, t, 2, 3, 0)).toThrow(/temperature tau must be a positive/);
    expect(() => prepareStForward(gpu, l, a, p, t, 3, 3, 1)).toThrow(/logits .* has 6 values, needs 9/);
    expect(() => prepareStForward(gpu, l, l as never, p, t, 2, 3, 1)).toThrow(/must be u32/);
    expect(() => prepareStBackward(gpu, p, l, p, 2, 3, 1)).toThrow(/same buffer/);
    expect(() => prepareStScatter(gpu, t, t, 2, 1, 1)).toThrow(/offset 1 is outside a row of 1/);
    [l, a, p, t].forEach((x) => gpu.destroy(x));
  });
});

describe('straight-through reference', () => {
  it('refuses a mask that allows nothing', () => {
    expect(() => stForwardRef([1, 2], [false, false], 1, 2, 1)).toThrow(/every token is masked/);
  });

  it('the backward chain de -> g = E de -> dlogits matches finite differences of the surrogate', () => {
    const R = 3;
    const V = 9;
    const D = 5;
    const tau = 0.6;
    const E = Float64Array.from(randn(V * D, 11, 0.7));
    const logits = Float64Array.from(randn(R * V, 12, 1.5));
    const de = Float64Array.from(randn(R * D, 13, 1));
    const allowed = [true, false, true, true, true, false, true, true, true];
    const f0 = stForwardRef(logits, allowed, R, V, tau);
    // at the forward the surrogate is the hard embedding
    const e0 = stEmbedRef(E, f0.tokens, f0.p, f0.p, R, V, D);
    for (let r = 0; r < R; r++) for (let d = 0; d < D; d++) expect(e0[r * D + d]).toBe(E[f0.tokens[r] * D + d]);
    const J = (x: Float64Array) => {
      const { p } = stForwardRef(x, allowed, R, V, tau);
      return stEmbedRef(E, f0.tokens, p, f0.p, R, V, D).reduce((s, e, i) => s + e * de[i], 0);
    };
    const an = stBackwardRef(f0.p, stEmbedBackwardRef(E, de, R, V, D), R, V, tau);
    let worst = 0;
    for (let i = 0; i < R * V; i++) {
      const xp = Float64Array.from(logits);
      const xm = Float64Array.from(logits);
      xp[i] += 1e-6;
      xm[i] -= 1e-6;
      const fd = (J(xp) - J(xm)) / 2e-6;
      worst = Math.max(worst, Math.abs(fd - an[i]) / (1e-8 + Math.abs(an[i])));
      // central differences of a smooth function: error ~ h^2 f''' plus rounding 1e-16 / h
      expect(Math.abs(fd - an[i]), `logit ${i}: fd ${fd} analytic ${an[i]}`).toBeLessThan(1e-8 + 1e-6 * Math.abs(an[i]));
      if (!allowed[i % V]) expect(an[i]).toBe(0);
    }
    expect(worst).toBeLessThan(1e-4);
  });
});
