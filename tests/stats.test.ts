// The statistics of src/mas/stats.ts: the hierarchical (seeds x episodes) bootstrap of one method's
// accuracy and of a paired difference, the minimum seed count, mode detection and the words. Hand-
// computable cases first, then a coverage check on synthetic data whose truth is known.
import { describe, expect, it } from 'vitest';
import {
  accuracyInterval, detectModes, formatAccuracy, formatDifference, MIN_SEEDS, MODE_GAP, outcomeString, pairedDifference, parseOutcomes,
  REPLICATES, seedsDifference, seedsInterval, verdictOf,
} from '../src/mas/stats';
import { Rng } from '../src/tasks/rng';

const row = (s: string) => parseOutcomes(s);

describe('outcome strings', () => {
  it('round-trip and refuse other characters', () => {
    expect(outcomeString([true, false, true])).toBe('101');
    expect([...parseOutcomes('1001')]).toEqual([1, 0, 0, 1]);
    expect(() => parseOutcomes('10x1')).toThrow(/character 2 is "x"/);
  });
});

describe('accuracy interval (seeds x episodes)', () => {
  it('uses at least 2000 replicates and 3 seeds', () => {
    expect(REPLICATES).toBeGreaterThanOrEqual(2000);
    expect(MIN_SEEDS).toBe(3);
  });

  it('is a point where every outcome is the same', () => {
    const ones = [row('1111'), row('1111'), row('1111')];
    expect(accuracyInterval(ones)).toMatchObject({ mean: 1, lo: 1, hi: 1, seeds: 3, episodes: 4, basis: 'episodes' });
    const zeros = [row('000'), row('000'), row('000')];
    expect(accuracyInterval(zeros)).toMatchObject({ mean: 0, lo: 0, hi: 0 });
  });

  it('two episodes, one right, identical seeds: the replicate is 0, 1/2 or 1 with probability 1/4, 1/2, 1/4', () => {
    // the seed resample does nothing (every seed is the same); the episode resample draws 2 of 2:
    // the 2.5% and 97.5% points are 0 and 1, and about half of the replicates sit at 1/2
    const t = [row('10'), row('10'), row('10')];
    const iv = accuracyInterval(t);
    expect(iv.mean).toBe(0.5);
    expect(iv.lo).toBe(0);
    expect(iv.hi).toBe(1);
  });

  it('seeds alone: one episode per seed, seeds 0, 0, 1 -> mean 1/3, interval [0, 1]', () => {
    // with one episode the episode resample is the identity; 3 seeds drawn with replacement give 0 with
    // probability (2/3)^3 = 0.30 and 1 with (1/3)^3 = 0.037 > 0.025
    const iv = accuracyInterval([row('0'), row('0'), row('1')]);
    expect(iv.mean).toBeCloseTo(1 / 3, 12);
    expect(iv.lo).toBe(0);
    expect(iv.hi).toBe(1);
  });

  it('below MIN_SEEDS seeds: no interval, and the words say so', () => {
    const iv = accuracyInterval([row('1100'), row('1000')]);
    expect(iv.lo).toBeNull();
    expect(iv.hi).toBeNull();
    expect(iv.mean).toBeCloseTo(0.375, 12);
    expect(formatAccuracy(iv)).toBe('2 seeds: no interval (mean 0.375)');
    expect(formatDifference(pairedDifference([row('1')], [row('0')]))).toBe('+1.000 (1 seed: no interval)');
  });

  it('is deterministic, and never beyond [0, 1]', () => {
    const rng = new Rng(7);
    for (let k = 0; k < 20; k++) {
      const S = 3 + (k % 4);
      const E = 1 + k * 3;
      const p = rng.next();
      const t = Array.from({ length: S }, () => Uint8Array.from({ length: E }, () => (rng.next() < p ? 1 : 0)));
      const a = accuracyInterval(t, { replicates: 500 });
      expect(accuracyInterval(t, { replicates: 500 })).toEqual(a);
      expect(a.lo!).toBeGreaterThanOrEqual(0);
      expect(a.hi!).toBeLessThanOrEqual(1);
      expect(a.lo!).toBeLessThanOrEqual(a.hi!);
    }
  });

  it('refuses unaligned or non-0/1 tables', () => {
    expect(() => accuracyInterval([row('101'), row('10'), row('1')])).toThrow(/not aligned/);
    expect(() => accuracyInterval([[0, 2, 1], [1, 1, 1], [0, 0, 0]])).toThrow(/expected 0 or 1/);
    expect(() => accuracyInterval([])).toThrow(/no seeds/);
  });
});

describe('paired difference', () => {
  it('of a method with itself is exactly 0, however noisy its episodes', () => {
    const t = [row('1010011100'), row('0110101001'), row('1110000110')];
    const d = pairedDifference(t, t);
    // the same episodes and the same seed values on both sides: every replicate's seed draws differ, so
    // the interval is that of the seed spread only (the episode noise cancels)
    expect(d.mean).toBe(0);
    const same = [row('1010011100'), row('1010011100'), row('1010011100')];
    expect(pairedDifference(same, same)).toMatchObject({ mean: 0, lo: 0, hi: 0 });
    expect(verdictOf({ lo: 0, hi: 0 })).toBe('tie');
  });

  it('pairing: A right on k more of E shared episodes in every seed -> the interval of Binomial(E, k/E)/E', () => {
    // B gets 100 of 400 right; A the same plus 40 more (the same 40 in every seed). The difference in
    // a replicate is the share of the resampled episodes that are among the 40: mean 0.1, sd
    // sqrt(0.1 * 0.9 / 400) = 0.015, so about [0.071, 0.130]; unpaired over seeds it would be a point
    // (every seed equal), and over episodes unpaired about twice as wide.
    const E = 400;
    const b = Array.from({ length: E }, (_, e) => (e < 100 ? 1 : 0));
    const a = Array.from({ length: E }, (_, e) => (e < 140 ? 1 : 0));
    const d = pairedDifference([a, a, a, a], [b, b, b]);
    expect(d.mean).toBeCloseTo(0.1, 12);
    const sd = Math.sqrt((0.1 * 0.9) / E);
    expect(d.lo!).toBeCloseTo(0.1 - 1.96 * sd, 2);
    expect(d.hi!).toBeCloseTo(0.1 + 1.96 * sd, 2);
    expect(verdictOf(d)).toBe('a');
    expect(verdictOf(pairedDifference([b, b, b], [a, a, a]))).toBe('b');
    const flat = seedsDifference([0.35, 0.35, 0.35], [0.25, 0.25, 0.25]);
    expect(flat.lo!).toBeCloseTo(0.1, 12);
    expect(flat.hi!).toBeCloseTo(0.1, 12);
  });

  it('refuses sides evaluated on different sets, stays inside [-1, 1], and needs MIN_SEEDS on both sides', () => {
    expect(() => pairedDifference([row('10'), row('10'), row('10')], [row('1'), row('1'), row('1')])).toThrow(/not evaluated on the same set/);
    const one = [row('111'), row('111'), row('111')];
    const zero = [row('000'), row('000'), row('000')];
    expect(pairedDifference(one, zero)).toMatchObject({ mean: 1, lo: 1, hi: 1 });
    expect(pairedDifference(zero, one)).toMatchObject({ mean: -1, lo: -1, hi: -1 });
    expect(pairedDifference(one, zero.slice(0, 2)).lo).toBeNull();
    expect(verdictOf(pairedDifference(one, zero.slice(0, 2)))).toBe('no-interval');
  });

  it('words', () => {
    expect(formatDifference({ mean: 0.04, lo: 0.012, hi: 0.069, seeds: 5, episodes: 256, basis: 'episodes' })).toBe('+0.040 [+0.012, +0.069]');
    expect(formatAccuracy({ mean: 0.436, lo: 0.401, hi: 0.47, seeds: 5, episodes: 256, basis: 'episodes' })).toBe('0.436 [0.401, 0.470]');
  });
});

describe('seeds-only fallback (reports without per-episode outcomes)', () => {
  it('resamples the per-seed accuracies', () => {
    expect(seedsInterval([0.5, 0.5, 0.5])).toMatchObject({ mean: 0.5, lo: 0.5, hi: 0.5, basis: 'seeds' });
    const iv = seedsInterval([0.2, 0.4, 0.6]);
    expect(iv.lo!).toBeGreaterThanOrEqual(0.2);
    expect(iv.hi!).toBeLessThanOrEqual(0.6);
    expect(seedsInterval([0.2, 0.4]).lo).toBeNull();
  });
});

describe('modes', () => {
  it('"k of n seeds reach >= x" where a gap above MODE_GAP splits them', () => {
    // lookup d3 at m = 8: three seeds on the values plateau, three that left it
    const m = detectModes([0.34, 0.8, 0.35, 1.0, 0.34, 0.9]);
    expect(m).toEqual({ k: 3, n: 6, at: 0.8, below: 0.35 });
    expect(formatAccuracy({ mean: 0.62, lo: 0.4, hi: 0.8, seeds: 6, episodes: 256, basis: 'episodes' }, m)).toBe('3 of 6 seeds reach >= 0.800 (the others <= 0.350)');
    expect(detectModes([0.4, 0.42, 0.45, 0.5])).toBeNull();
    expect(detectModes([0.3, 0.3 + MODE_GAP])).toBeNull(); // a gap of exactly MODE_GAP is not above it
    expect(detectModes([0.5])).toBeNull();
  });
});

describe('coverage on synthetic data', () => {
  // Truth: seed s has skill u_s ~ N(0, 0.05), episode e difficulty v_e ~ U(-0.3, 0.3); outcome is 1 with
  // probability 0.5 + u_s + v_e. The population accuracy is 0.5 (both effects have mean 0). Two methods
  // share the episodes; B is A shifted by -0.05. Over 200 experiments of 8 seeds x 100 episodes the 95%
  // intervals should hold the truth most of the time: the crossed bootstrap is mildly conservative,
  // the percentile interval over 8 seeds mildly liberal; we ask for 0.88..1 (a 95% binomial band around
  // 0.95 at 200 trials is 0.92..0.98, widened for those two known biases), and that pairing narrows
  // the interval of the difference below the unpaired width.
  it('the intervals hold the truth about 95% of the time, and pairing narrows the difference', () => {
    const rng = new Rng(2024);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
    const trials = 200;
    const S = 8;
    const E = 100;
    let acc = 0;
    let diff = 0;
    let pairedWidth = 0;
    let unpairedWidth = 0;
    for (let t = 0; t < trials; t++) {
      const v = Array.from({ length: E }, () => rng.uniform(-0.3, 0.3));
      const draw = (shift: number) => Array.from({ length: S }, () => {
        const u = 0.05 * normal();
        return Uint8Array.from(v, (ve) => (rng.next() < Math.min(1, Math.max(0, 0.5 + shift + u + ve)) ? 1 : 0));
      });
      const A = draw(0);
      const B = draw(-0.05);
      const a = accuracyInterval(A, { replicates: 1000, seed: t + 1 });
      if (a.lo! <= 0.5 && 0.5 <= a.hi!) acc++;
      const d = pairedDifference(A, B, { replicates: 1000, seed: t + 1 });
      if (d.lo! <= 0.05 && 0.05 <= d.hi!) diff++;
      pairedWidth += d.hi! - d.lo!;
      // unpaired: the episodes of B resampled apart from A's
      const b = accuracyInterval(B, { replicates: 1000, seed: t + 7777 });
      unpairedWidth += Math.sqrt(((a.hi! - a.lo!) ** 2) + ((b.hi! - b.lo!) ** 2));
    }
    expect(acc / trials).toBeGreaterThanOrEqual(0.88);
    expect(diff / trials).toBeGreaterThanOrEqual(0.88);
    expect(pairedWidth).toBeLessThan(unpairedWidth);
  });
});
