import { describe, expect, it } from 'vitest';
import { rmsnormBackwardRef, rmsnormRef } from '../src/reference/rmsnorm';
import { swigluBackwardRef, swigluRef } from '../src/reference/swiglu';
import { embeddingBackwardRef, embeddingRef } from '../src/reference/embedding';
import { crossEntropyBackwardRef, crossEntropyRef } from '../src/reference/crossentropy';
import {
  addBackwardRef, addRef, axpyBackwardRef, axpyRef, fillBackwardRef, fillRef, scaleBackwardRef, scaleRef,
} from '../src/reference/elementwise';
import { maxRelErr, randn } from './helpers';

// Every reference backward against central finite differences of its own forward, all in float64.
// Each check differentiates a scalar: L = sum(R * forward(inputs)) with a fixed random cotangent R (the
// `dOut` the backward takes), or the mean loss for cross-entropy.
// Step H = 1e-6: the central difference's truncation error is O(H^2 |f'''|) ~ 1e-12, its rounding
// error about 2^-53 |L| / H ~ 1e-10 * |L| with |L| < 20 here, so differences of a correct gradient
// stay below 1e-8 (observed: below 1e-9 on every check here); TOL = 1e-7 on |a-b|/(1+|b|) keeps a
// 10x margin over that bound, while a wrong term or factor in a gradient gives errors of order 0.1-1.
const H = 1e-6;
const TOL = 1e-7;

/** Central-difference gradient of f at x (x is restored afterwards). */
function fd(f: () => number, x: Float64Array): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + H;
    const fp = f();
    x[i] = x0 - H;
    const fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * H);
  }
  return g;
}

/** Derivative of f with respect to one scalar held in a closure. */
function fdScalar(f: (s: number) => number, s: number): number {
  return (f(s + H) - f(s - H)) / (2 * H);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

const data = (n: number, seed: number, scale = 1): Float64Array => Float64Array.from(randn(n, seed, scale));

describe('reference backward passes match finite differences (float64)', () => {
  it('rmsnorm: dx and dw', () => {
    for (const [T, D, eps] of [[3, 5, 1e-5], [2, 1, 1e-5], [4, 7, 0.1]] as const) {
      const x = data(T * D, 1 + D);
      const w = data(D, 2 + D);
      const R = data(T * D, 3 + D);
      const L = () => dot(R, rmsnormRef(x, w, T, D, eps).y);
      const { dx, dw } = rmsnormBackwardRef(R, x, w, T, D, eps);
      expect(maxRelErr(dx, fd(L, x))).toBeLessThan(TOL);
      expect(maxRelErr(dw, fd(L, w))).toBeLessThan(TOL);
    }
  });

  it('swiglu: dg and du', () => {
    const [T, F] = [3, 5];
    const g = data(T * F, 4, 3);
    g[0] = 12; g[1] = -12; g[2] = 0;
    const u = data(T * F, 5);
    const R = data(T * F, 6);
    const L = () => dot(R, swigluRef(g, u, T, F));
    const { dg, du } = swigluBackwardRef(R, g, u, T, F);
    expect(maxRelErr(dg, fd(L, g))).toBeLessThan(TOL);
    expect(maxRelErr(du, fd(L, u))).toBeLessThan(TOL);
  });

  it('embedding: dW, with repeated and out-of-range ids', () => {
    const [T, D, V] = [7, 3, 4];
    const ids = [2, 0, 2, 5, 3, 0xffffffff, 2];
    const W = data(V * D, 7);
    const R = data(T * D, 8);
    const L = () => dot(R, embeddingRef(ids, W, T, D, V));
    const { dW } = embeddingBackwardRef(R, ids, T, D, V);
    expect(maxRelErr(dW, fd(L, W))).toBeLessThan(TOL);
    expect(Array.from(dW.subarray(1 * D, 2 * D))).toEqual([0, 0, 0]); // id 1 never occurs
  });

  it('cross-entropy: dlogits of the mean loss, with an ignored row and shifted logits', () => {
    const [T, V] = [5, 7];
    const logits = data(T * V, 9, 2);
    for (let j = 0; j < V; j++) logits[3 * V + j] += 50; // logsumexp must not care about a shift
    const targets = [3, 0xffffffff, 6, 0, 1];
    const L = () => crossEntropyRef(logits, targets, T, V).loss;
    const { dlogits } = crossEntropyBackwardRef(logits, targets, T, V);
    expect(crossEntropyRef(logits, targets, T, V).count).toBe(4);
    expect(maxRelErr(dlogits, fd(L, logits))).toBeLessThan(TOL);
    expect(Array.from(dlogits.subarray(V, 2 * V)).every((v) => v === 0)).toBe(true);
  });

  it('elementwise: add, axpy, scale, fill (scalars included)', () => {
    const n = 7;
    const a = data(n, 10);
    const b = data(n, 11);
    const R = data(n, 12);
    let alpha = 0.37;
    const add = addBackwardRef(R, n);
    expect(maxRelErr(add.da, fd(() => dot(R, addRef(a, b, n)), a))).toBeLessThan(TOL);
    expect(maxRelErr(add.db, fd(() => dot(R, addRef(a, b, n)), b))).toBeLessThan(TOL);

    const ax = axpyBackwardRef(R, a, n, alpha);
    const Lax = () => dot(R, axpyRef(a, b, n, alpha));
    expect(maxRelErr(ax.dx, fd(Lax, a))).toBeLessThan(TOL);
    expect(maxRelErr(ax.dy, fd(Lax, b))).toBeLessThan(TOL);
    expect(maxRelErr([ax.dalpha], [fdScalar((s) => dot(R, axpyRef(a, b, n, s)), alpha)])).toBeLessThan(TOL);

    alpha = -1.7;
    const sc = scaleBackwardRef(R, a, n, alpha);
    expect(maxRelErr(sc.dx, fd(() => dot(R, scaleRef(a, n, alpha)), a))).toBeLessThan(TOL);
    expect(maxRelErr([sc.dalpha], [fdScalar((s) => dot(R, scaleRef(a, n, s)), alpha)])).toBeLessThan(TOL);

    const fl = fillBackwardRef(R, n);
    expect(maxRelErr([fl.dvalue], [fdScalar((s) => dot(R, fillRef(n, s)), 0.5)])).toBeLessThan(TOL);
  });
});
