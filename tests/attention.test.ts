import { describe, expect, it } from 'vitest';
import {
  attentionBackward, attentionForward, prepareAttentionBackward, prepareAttentionForward,
  type AttentionBackwardTensors, type AttentionDims,
} from '../src/gpu/ops/attention';
import type { Gpu, Tensor } from '../src/gpu/runtime';
import { attentionBackwardRef, attentionLseRef, attentionRef } from '../src/reference/attention';
import { maxRelErr, randn, testGpu } from './helpers';

// Tolerance, in |a-b|/(1+|b|). Every GPU value is a float32 sum over at most (P+S)*Hq/Hkv rows of
// hd-long dot products of O(1) terms (here <= ~1300 terms), with exp() and the online-softmax
// rescaling a few ulp each: the rounding grows like sqrt(terms) * 2^-24 * |terms| ~ 1e-6. The
// largest error measured over all cases and outputs is 9e-7 (hd=128, dprefixK); 2e-5 leaves a
// margin of 20x, while a wrong mask, head mapping or missing term moves a value by at least one
// softmax weight times O(1), ~1/(P+S) >= 1e-3 (a diagonal dropped from the causal mask: 0.55).
const TOL = 2e-5;

const CASES: AttentionDims[] = [
  { B: 1, S: 1, P: 0, Hq: 2, Hkv: 1, hd: 2 },
  { B: 2, S: 5, P: 3, Hq: 4, Hkv: 2, hd: 8 },
  { B: 3, S: 33, P: 17, Hq: 3, Hkv: 3, hd: 16 },
  { B: 2, S: 33, P: 0, Hq: 4, Hkv: 2, hd: 8 },
  { B: 1, S: 70, P: 5, Hq: 2, Hkv: 1, hd: 16 }, // two query/key blocks of 64
  { B: 1, S: 33, P: 17, Hq: 4, Hkv: 2, hd: 64 }, // several key tiles (16 rows of 64)
  { B: 1, S: 5, P: 3, Hq: 2, Hkv: 1, hd: 128 }, // the largest head size
  { B: 1, S: 3, P: 600, Hq: 1, Hkv: 1, hd: 1 }, // tiles capped at 512 rows
];

const label = (d: AttentionDims) => `B=${d.B} S=${d.S} P=${d.P} Hq=${d.Hq} Hkv=${d.Hkv} hd=${d.hd}`;

interface Case {
  d: AttentionDims;
  host: Record<string, Float32Array>;
  t: AttentionBackwardTensors;
  all: Tensor[];
}

function setup(gpu: Gpu, d: AttentionDims, seed: number): Case {
  const { B, S, P, Hq, Hkv, hd } = d;
  const nq = B * S * Hq * hd;
  const nk = B * S * Hkv * hd;
  const np = Math.max(1, B * P * Hkv * hd); // P = 0: a 1-element placeholder
  const host = {
    q: randn(nq, seed + 1), k: randn(nk, seed + 2), v: randn(nk, seed + 3),
    prefixK: randn(np, seed + 4), prefixV: randn(np, seed + 5), dO: randn(nq, seed + 6),
  };
  const mk = (name: string, n: number, data?: Float32Array) => gpu.tensor([n], name, data);
  const t: AttentionBackwardTensors = {
    q: mk('q', nq, host.q), k: mk('k', nk, host.k), v: mk('v', nk, host.v),
    prefixK: mk('prefixK', np, host.prefixK), prefixV: mk('prefixV', np, host.prefixV),
    o: mk('o', nq), lse: mk('lse', B * Hq * S), dO: mk('dO', nq, host.dO), delta: mk('delta', B * Hq * S),
    dq: mk('dq', nq), dk: mk('dk', nk), dv: mk('dv', nk), dprefixK: mk('dprefixK', np), dprefixV: mk('dprefixV', np),
  };
  return { d, host, t, all: Object.values(t) };
}

async function checkBackward(gpu: Gpu, c: Case, accumulate: boolean): Promise<void> {
  const { d, host, t } = c;
  const P = d.P;
  // start every gradient from random values: overwrite mode must ignore them, accumulate add to them
  const init: Record<string, Float32Array> = {};
  (['dq', 'dk', 'dv', 'dprefixK', 'dprefixV'] as const).forEach((name, i) => {
    init[name] = randn(t[name].size, 100 + i);
    gpu.write(t[name], init[name]);
  });
  attentionForward(gpu, t, d);
  attentionBackward(gpu, t, d, { accumulateQ: accumulate, accumulateKV: accumulate, accumulatePrefix: accumulate });
  const ref = attentionBackwardRef(host.q, host.k, host.v, host.prefixK, host.prefixV, host.dO, d);
  const expectGrad = async (name: 'dq' | 'dk' | 'dv' | 'dprefixK' | 'dprefixV') => {
    const got = await gpu.read(t[name], ref[name].length);
    const want = accumulate ? ref[name].map((x, i) => x + init[name][i]) : ref[name];
    expect(maxRelErr(got, want), `${name} (${accumulate ? 'accumulate' : 'overwrite'}) ${label(d)}`).toBeLessThan(TOL);
  };
  await expectGrad('dq');
  await expectGrad('dk');
  await expectGrad('dv');
  if (P > 0) {
    await expectGrad('dprefixK');
    await expectGrad('dprefixV');
  } else {
    // P = 0: the placeholders are not touched
    expect(Array.from(await gpu.read(t.dprefixK))).toEqual(Array.from(init.dprefixK));
  }
}

describe('attention kernels vs the CPU reference', () => {
  CASES.forEach((d, n) => {
    it(`forward, backward overwrite and accumulate: ${label(d)}`, async () => {
      const gpu = await testGpu();
      const c = setup(gpu, d, 10 * n);
      attentionForward(gpu, c.t, d);
      const o = await gpu.read(c.t.o);
      const lse = await gpu.read(c.t.lse);
      const { q, k, v, prefixK, prefixV } = c.host;
      expect(maxRelErr(o, attentionRef(q, k, v, prefixK, prefixV, d)), `o ${label(d)}`).toBeLessThan(TOL);
      expect(maxRelErr(lse, attentionLseRef(q, k, prefixK, d)), `lse ${label(d)}`).toBeLessThan(TOL);
      await checkBackward(gpu, c, false);
      await checkBackward(gpu, c, true);
      c.all.forEach((x) => gpu.destroy(x));
    });
  });

  it('prepared dispatches are reusable: new data, same bind groups', async () => {
    const gpu = await testGpu();
    const d: AttentionDims = { B: 2, S: 5, P: 3, Hq: 4, Hkv: 2, hd: 8 };
    const c = setup(gpu, d, 500);
    const fwd = prepareAttentionForward(gpu, c.t, d);
    const bwd = prepareAttentionBackward(gpu, c.t, d);
    expect(bwd.map((x) => x.name)).toEqual([
      'attention_backward_delta', 'attention_backward_dq_own', 'attention_backward_dq_prefix_acc',
      'attention_backward_dkv_own', 'attention_backward_dkv_prefix',
    ]);
    for (const seed of [1, 2]) {
      const q = randn(c.t.q.size, seed);
      const pk = randn(c.t.prefixK.size, seed + 7);
      gpu.write(c.t.q, q);
      gpu.write(c.t.prefixK, pk);
      gpu.record(...fwd, ...bwd);
      const ref = attentionBackwardRef(q, c.host.k, c.host.v, pk, c.host.prefixV, c.host.dO, d);
      expect(maxRelErr(await gpu.read(c.t.o), attentionRef(q, c.host.k, c.host.v, pk, c.host.prefixV, d))).toBeLessThan(TOL);
      expect(maxRelErr(await gpu.read(c.t.dq), ref.dq)).toBeLessThan(TOL);
      expect(maxRelErr(await gpu.read(c.t.dprefixK), ref.dprefixK)).toBeLessThan(TOL);
    }
    [...fwd, ...bwd].forEach((x) => x.destroy());
    c.all.forEach((x) => gpu.destroy(x));
  });

  it('refuses inconsistent sizes with the numbers in the message', async () => {
    const gpu = await testGpu();
    const d: AttentionDims = { B: 1, S: 4, P: 2, Hq: 4, Hkv: 2, hd: 8 };
    const c = setup(gpu, d, 900);
    expect(() => prepareAttentionForward(gpu, c.t, { ...d, Hq: 3 })).toThrow(
      /attention_forward: query heads Hq=3 must be a multiple of key\/value heads Hkv=2/,
    );
    expect(() => prepareAttentionForward(gpu, c.t, { ...d, hd: 129 })).toThrow(/head size hd=129 exceeds the kernels' maximum 128/);
    expect(() => prepareAttentionForward(gpu, c.t, { ...d, S: 5 })).toThrow(
      /attention_forward: q \(q\) has 128 values, needs 160 for B=1 S=5 P=2 Hq=4 Hkv=2 hd=8/,
    );
    expect(() => prepareAttentionForward(gpu, c.t, { ...d, P: 3 })).toThrow(/prefixK \(prefixK\) has 32 values, needs 48/);
    expect(() => prepareAttentionBackward(gpu, { ...c.t, dv: c.t.dk }, d)).toThrow(
      /attention_backward: output dk \(dk\) shares its buffer with dv \(dk\)/,
    );
    expect(() => prepareAttentionBackward(gpu, { ...c.t, delta: c.t.q }, d)).toThrow(
      /attention_backward: output delta \(q\) shares its buffer with q \(q\)/,
    );
    expect(() => prepareAttentionForward(gpu, { ...c.t, lse: c.t.k }, d)).toThrow(/attention_forward: output lse \(k\) shares/);
    // P = 0: one placeholder may stand for all four prefix tensors
    const dummy = gpu.tensor([1], 'dummy');
    const d0 = { ...d, P: 0 };
    expect(() => prepareAttentionBackward(gpu, { ...c.t, prefixK: dummy, prefixV: dummy, dprefixK: dummy, dprefixV: dummy }, d0)).not.toThrow();
    gpu.destroy(dummy);
    expect(() => prepareAttentionForward(gpu, c.t, { ...d, S: 0 })).toThrow(/S must be an integer >= 1, got S=0/);
    c.all.forEach((x) => gpu.destroy(x));
  });
});
