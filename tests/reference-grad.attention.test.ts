// The float64 references' backward passes (RoPE, attention) against central finite differences of
// the scalar loss L = sum(W * f(inputs)) with a fixed random W. With step h = 1e-5 in float64 the
// truncation error is O(h^2 f''') ~ 1e-10 and the cancellation error O(eps |L| / h) ~ 1e-10, so
// 1e-7 (in |a-b|/(1+|b|)) is 400x the largest error measured (2.7e-10), while a wrong or missing
// term is off by O(0.1..1).
import { describe, expect, it } from 'vitest';
import { attentionBackwardRef, attentionRef, type AttentionDims } from '../src/reference/attention';
import { ropeBackwardRef, ropeRef, type RopeDims } from '../src/reference/rope';
import { maxRelErr, randn } from './helpers';

const H = 1e-5;
const TOL = 1e-7;

function dotLoss(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i] * y[i];
  return s;
}

/** Central differences of loss() with respect to every element of x (x is perturbed in place). */
function numericGrad(x: Float64Array, loss: () => number): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + H;
    const up = loss();
    x[i] = x0 - H;
    const down = loss();
    x[i] = x0;
    g[i] = (up - down) / (2 * H);
  }
  return g;
}

describe('RoPE reference backward vs finite differences', () => {
  for (const dims of [
    { T: 6, H: 2, hd: 8, S: 3, posOffset: 5, theta: 100 },
    { T: 4, H: 3, hd: 2, S: 4, posOffset: 0 },
  ] as RopeDims[]) {
    it(`T=${dims.T} H=${dims.H} hd=${dims.hd} S=${dims.S} posOffset=${dims.posOffset}`, () => {
      const n = dims.T * dims.H * dims.hd;
      const x = Float64Array.from(randn(n, 11));
      const w = Float64Array.from(randn(n, 12));
      const analytic = ropeBackwardRef(w, dims);
      const numeric = numericGrad(x, () => dotLoss(w, ropeRef(x, dims)));
      expect(maxRelErr(analytic, numeric)).toBeLessThan(TOL);
      // and the backward is the inverse rotation: RoPE^T(RoPE(x)) = x
      expect(maxRelErr(ropeBackwardRef(ropeRef(x, dims), dims), x)).toBeLessThan(1e-12);
    });
  }
});

describe('attention reference backward vs finite differences', () => {
  const cases: AttentionDims[] = [
    { B: 2, S: 3, P: 2, Hq: 4, Hkv: 2, hd: 4 }, // GQA with a prefix
    { B: 2, S: 4, P: 0, Hq: 2, Hkv: 1, hd: 3 }, // GQA without a prefix
    { B: 1, S: 3, P: 3, Hq: 3, Hkv: 3, hd: 2 }, // plain multi-head, prefix as long as the sequence
  ];
  for (const d of cases) {
    it(`B=${d.B} S=${d.S} P=${d.P} Hq=${d.Hq} Hkv=${d.Hkv} hd=${d.hd}`, () => {
      const { B, S, P, Hq, Hkv, hd } = d;
      const q = Float64Array.from(randn(B * S * Hq * hd, 1));
      const k = Float64Array.from(randn(B * S * Hkv * hd, 2));
      const v = Float64Array.from(randn(B * S * Hkv * hd, 3));
      const pk = Float64Array.from(randn(Math.max(1, B * P * Hkv * hd), 4));
      const pv = Float64Array.from(randn(Math.max(1, B * P * Hkv * hd), 5));
      const w = Float64Array.from(randn(B * S * Hq * hd, 6));
      const loss = () => dotLoss(w, attentionRef(q, k, v, pk, pv, d));
      const g = attentionBackwardRef(q, k, v, pk, pv, w, d);
      expect(maxRelErr(g.dq, numericGrad(q, loss))).toBeLessThan(TOL);
      expect(maxRelErr(g.dk, numericGrad(k, loss))).toBeLessThan(TOL);
      expect(maxRelErr(g.dv, numericGrad(v, loss))).toBeLessThan(TOL);
      expect(g.dprefixK.length).toBe(B * P * Hkv * hd);
      if (P > 0) {
        expect(maxRelErr(g.dprefixK, numericGrad(pk, loss))).toBeLessThan(TOL);
        expect(maxRelErr(g.dprefixV, numericGrad(pv, loss))).toBeLessThan(TOL);
      }
    });
  }

  it('attention through RoPE (non-zero pos_offset) end to end: d/dq and d/dk of the pre-rotation inputs', () => {
    const d: AttentionDims = { B: 2, S: 3, P: 2, Hq: 4, Hkv: 2, hd: 4 };
    const { B, S, P, Hq, Hkv, hd } = d;
    const rq: RopeDims = { T: B * S, H: Hq, hd, S, posOffset: P, theta: 50 };
    const rk: RopeDims = { ...rq, H: Hkv };
    const q = Float64Array.from(randn(B * S * Hq * hd, 21));
    const k = Float64Array.from(randn(B * S * Hkv * hd, 22));
    const v = Float64Array.from(randn(B * S * Hkv * hd, 23));
    const pk = Float64Array.from(randn(B * P * Hkv * hd, 24));
    const pv = Float64Array.from(randn(B * P * Hkv * hd, 25));
    const w = Float64Array.from(randn(B * S * Hq * hd, 26));
    const loss = () => dotLoss(w, attentionRef(ropeRef(q, rq), ropeRef(k, rk), v, pk, pv, d));
    const g = attentionBackwardRef(ropeRef(q, rq), ropeRef(k, rk), v, pk, pv, w, d);
    expect(maxRelErr(ropeBackwardRef(g.dq, rq), numericGrad(q, loss))).toBeLessThan(TOL);
    expect(maxRelErr(ropeBackwardRef(g.dk, rk), numericGrad(k, loss))).toBeLessThan(TOL);
  });
});
