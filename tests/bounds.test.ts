// The bounds of src/mas/bounds.ts: Fano's ceiling on any protocol of B tokens, the receiver-alone
// floor, and lookup's values-only floor, against hand computation, brute force and the tasks' own
// episodes; the figures issue 19 quotes (0.593 / 0.481 nats, 0.384, 0.49 / 0.69 for 8 digits).
import { describe, expect, it } from 'vitest';
import {
  budgetBound, constantFloor, distributionFloor, fanoAccuracy, h2, messageBits, reportBounds, selectionBits, shapeOf, valuesOnly,
} from '../src/mas/bounds';
import { Rng } from '../src/tasks/rng';
import { makeTask, sampleEpisodes, type Split } from '../src/tasks/tasks';

const TOY_V = 54; // src/tokenizers/char.ts: the toy bases' vocabulary

describe('message bits and Fano', () => {
  it('counts every message of at most B tokens', () => {
    expect(messageBits(0, TOY_V)).toBe(0);
    expect(messageBits(1, TOY_V)).toBeCloseTo(Math.log2(55), 12);
    expect(messageBits(2, 10)).toBeCloseTo(Math.log2(111), 12);
    expect(() => messageBits(-1, 10)).toThrow(/budget/);
    expect(() => messageBits(1, 1)).toThrow(/vocabulary/);
  });

  it('inverts h(Pe) + Pe log2(M - 1) >= H', () => {
    expect(fanoAccuracy(0, 10)).toBe(1);
    expect(fanoAccuracy(Math.log2(10), 10)).toBeCloseTo(0.1, 12);
    expect(fanoAccuracy(5, 10)).toBeCloseTo(0.1, 12);
    // binary answers: h(Pe) >= H, so Pe = h^-1(H)
    expect(fanoAccuracy(1, 2)).toBeCloseTo(0.5, 9);
    expect(fanoAccuracy(h2(0.11), 2)).toBeCloseTo(0.89, 9);
    // and for M answers at Pe = 0.3 exactly
    const H = h2(0.3) + 0.3 * Math.log2(25);
    expect(fanoAccuracy(H, 26)).toBeCloseTo(0.7, 9);
  });

  it("reproduces the issue's index task: 8 digits, the toy vocabulary, 0.49 at B = 1 and 0.69 at B = 2", () => {
    // lookup-style: log2 10 - C / 8 bits missing per digit
    const at = (B: number) => fanoAccuracy(Math.log2(10) - messageBits(B, TOY_V) / 8, 10);
    // the issue counts B log2 V bits (0.494, 0.688); we count the shorter messages too (0.495, 0.689)
    expect(Math.abs(at(1) - 0.49)).toBeLessThan(0.01);
    expect(Math.abs(at(2) - 0.69)).toBeLessThan(0.01);
    expect(fanoAccuracy(Math.log2(10) - Math.log2(TOY_V) / 8, 10)).toBeCloseTo(0.494, 3);
  });
});

describe('task shapes', () => {
  it("match the tasks' own episodes", () => {
    for (const split of ['train', 'heldout', 'ood'] as Split[]) {
      for (const d of [1, 2, 3]) {
        const n = shapeOf('lookup', d, split).size;
        for (const ep of sampleEpisodes(makeTask('lookup', d), split, 20, 3)) expect(ep.contents[0].length).toBe(2 * n);
        const L = shapeOf('relay', d, split).size;
        for (const ep of sampleEpisodes(makeTask('relay', d), split, 20, 3)) expect(ep.contents[0].length).toBe(L);
      }
      const N = shapeOf('arith', 1, split).size;
      const seen = new Set<number>();
      for (const ep of sampleEpisodes(makeTask('arith', 1), split, 400, 3)) for (const x of ep.contents.slice(0, 2)) seen.add(Number(x));
      expect(seen.size).toBeLessThanOrEqual(N);
      expect(Math.max(...seen) - Math.min(...seen) + 1).toBe(N);
    }
    expect(selectionBits('train')).toBe(0);
    expect(selectionBits('heldout')).toBeCloseTo(Math.log2(5), 12);
  });
});

describe('floors', () => {
  it('arith over the whole distribution: brute force over every operand pair', () => {
    for (const [d, split] of [[1, 'train'], [2, 'train'], [1, 'ood']] as [number, Split][]) {
      const lo = split === 'ood' ? 10 ** d : 0;
      const hi = split === 'ood' ? 10 ** (d + 1) : 10 ** d;
      let best = 0;
      for (const op of [1, -1]) {
        const c = new Map<number, number>();
        for (let a = lo; a < hi; a++) for (let b = lo; b < hi; b++) c.set(a + op * b, (c.get(a + op * b) ?? 0) + 1);
        best += Math.max(...c.values()) / (hi - lo) ** 2 / 2;
      }
      expect(distributionFloor('arith', d, split)).toBeCloseTo(best, 12);
    }
    expect(distributionFloor('arith', 1, 'train')).toBeCloseTo(0.1, 12);
    expect(distributionFloor('arith', 1, 'ood')).toBeCloseTo(1 / 90, 12);
    expect(distributionFloor('lookup', 3, 'heldout')).toBeCloseTo(0.1, 12);
    expect(distributionFloor('relay', 2, 'heldout')).toBeCloseTo(1 / 26, 12);
  });

  it('on a listed split: the best guess per question, counted over its episodes', () => {
    // arith d1 held-out is a listed fifth of the operand pairs: count it here by hand
    const eps = makeTask('arith', 1).enumerate('heldout', new Rng(1)) ?? [];
    expect(eps.length).toBeGreaterThan(0);
    const by = new Map<string, Map<string, number>>();
    for (const ep of eps) {
      const q = ep.parts[2];
      const m = by.get(q) ?? new Map<string, number>();
      m.set(ep.answer, (m.get(ep.answer) ?? 0) + 1);
      by.set(q, m);
    }
    const hand = [...by.values()].reduce((a, m) => a + Math.max(...m.values()), 0) / eps.length;
    expect(constantFloor('arith', 1, 'heldout')).toBeCloseTo(hand, 12);
    // never below the distribution's nominal chance: the best guess at least matches the uniform one
    for (const [t, d] of [['lookup', 1], ['relay', 1], ['relay', 2], ['arith', 1]] as const) {
      expect(constantFloor(t, d, 'heldout')).toBeGreaterThanOrEqual(makeTask(t, d).chanceFor('heldout') - 1e-12);
    }
  });
});

describe('ceilings', () => {
  it('rise with the budget from near the floor to 1, exact where the message can name the whole content', () => {
    for (const [t, d] of [['lookup', 1], ['lookup', 2], ['lookup', 3], ['relay', 1], ['relay', 2], ['arith', 1]] as const) {
      for (const split of ['heldout', 'ood'] as Split[]) {
        let prev = 0;
        for (const B of [0, 1, 2, 4, 8, 16]) {
          const b = budgetBound(t, d, split, B, TOY_V);
          expect(b.ceiling).toBeGreaterThanOrEqual(prev - 1e-12);
          expect(b.ceiling).toBeLessThanOrEqual(1);
          if (b.exact) expect(b.ceiling).toBe(1);
          prev = b.ceiling;
        }
      }
    }
    // B = 0 on the training distribution: nothing crosses, Fano leaves the uniform guess
    expect(budgetBound('lookup', 3, 'train', 0, TOY_V).ceiling).toBeCloseTo(0.1, 9);
    expect(budgetBound('relay', 2, 'train', 0, TOY_V).ceiling).toBeCloseTo(1 / 26, 9);
    // relay d2 (3 letters): 2 tokens of 54 name 2971 messages < 26^3, 3 tokens name them all
    expect(budgetBound('relay', 2, 'train', 2, TOY_V).exact).toBe(false);
    expect(budgetBound('relay', 2, 'train', 3, TOY_V)).toMatchObject({ exact: true, ceiling: 1 });
    // lookup d3 train at B = 1: log2 10 - log2(55) / 4 bits missing per value
    expect(budgetBound('lookup', 3, 'train', 1, TOY_V).ceiling).toBeCloseTo(fanoAccuracy(Math.log2(10) - Math.log2(55) / 4, 10), 12);
    // arith d1: one token names an operand
    expect(budgetBound('arith', 1, 'train', 1, TOY_V)).toMatchObject({ exact: true, ceiling: 1 });
  });
});

describe('values-only floor (lookup)', () => {
  it('hand cases: one entry, two entries', () => {
    expect(valuesOnly(1).nats).toBe(0);
    expect(valuesOnly(1).accuracy).toBeCloseTo(1, 12);
    // two entries: equal with probability 1/10 (then certain), else 1/2 each
    const two = valuesOnly(2);
    expect(two.nats).toBeCloseTo(0.9 * Math.log(2), 12);
    expect(two.accuracy).toBeCloseTo(0.1 + 0.9 * 0.5, 12);
  });

  it("the issue's figures: 0.593 nats per token on d3, 0.481 on d2, accuracy 0.384 on d3", () => {
    expect(valuesOnly(4).natsPerToken).toBeCloseTo(0.593, 3);
    expect(valuesOnly(3).natsPerToken).toBeCloseTo(0.481, 3);
    expect(Math.abs(valuesOnly(4).accuracy - 0.384)).toBeLessThan(0.001);
  });

  it("agrees with the task's episodes (Monte Carlo, 20000 tables of lookup d3)", () => {
    const eps = sampleEpisodes(makeTask('lookup', 3), 'train', 20000, 11);
    let nats = 0;
    let acc = 0;
    for (const ep of eps) {
      const vals = [...ep.contents[0]].filter((_, i) => i % 2 === 1);
      const count = (v: string) => vals.filter((x) => x === v).length;
      nats -= Math.log(count(ep.answer) / vals.length);
      acc += Math.max(...vals.map(count)) / vals.length;
    }
    // standard errors about 0.005 nats and 0.0015: 4 of them
    expect(nats / eps.length).toBeCloseTo(valuesOnly(4).nats, 1);
    expect(Math.abs(nats / eps.length - valuesOnly(4).nats)).toBeLessThan(0.02);
    expect(Math.abs(acc / eps.length - valuesOnly(4).accuracy)).toBeLessThan(0.006);
  });
});

describe('report bounds', () => {
  it('hold the text budget and the latent positions per split, and the values-only floor for lookup', () => {
    const r = reportBounds('lookup', 3, TOY_V, 8, [4, 4], ['heldout', 'ood']);
    expect(r.rows.map((x) => [x.split, x.basis, x.budget])).toEqual([
      ['heldout', 'text budget', 8], ['heldout', 'latent positions', 4], ['ood', 'text budget', 8], ['ood', 'latent positions', 4],
    ]);
    expect(r.valuesOnly?.heldout?.entries).toBe(4);
    expect(r.valuesOnly?.ood?.entries).toBe(6);
    expect(reportBounds('relay', 1, TOY_V, 4, [], ['heldout']).valuesOnly).toBeUndefined();
  });
});
