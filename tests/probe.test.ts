// What a message holds and how many bits it needs (issue 19, items 6 and 7): the ridge probe
// (src/mas/probe.ts) on synthetic data with a planted linear code and on noise, the permute control's
// arithmetic (src/mas/controls.ts) against RoPE applied afresh at the new positions, the quantizers
// (src/mas/quantize.ts) exact on representable values and within their error bounds, and the probe,
// the bits sweep and the permute control end to end through a run on the tiny base.
import { describe, expect, it } from 'vitest';
import { encodeLabels, fitProbe, majorityChance, probeTargets, targetValue } from '../src/mas/probe';
import { BIT_WIDTHS, positionBits, quantizeRows, quantizeVector, smallestKeepingBits, toHalf } from '../src/mas/quantize';
import { latentPermutation, permuteBlocks } from '../src/mas/controls';
import { ropeInvFreq, ropeRef } from '../src/reference/rope';
import type { ModelConfig } from '../src/model/config';
import { deriveSeed, Rng } from '../src/tasks/rng';
import { makeTask, sampleEpisodes } from '../src/tasks/tasks';
import { loadBaseModel } from '../src/cli/files';
import { defaultRunConfig, MasEngine, Run } from '../src/mas/run';
import { presetForTask } from '../src/mas/topology';
import { bitsRun, formatBits, formatProbes, probeRun } from '../src/mas/measures';
import { keyFrequencies, latentBlocks } from '../src/mas/received';
import { runExperiment } from '../src/mas/experiment';
import { RunController } from '../src/mas/controller';
import type { MethodName } from '../src/mas/run-types';
import { testGpu } from './helpers';

/** Rows x = code[c] + noise for classes c: a planted linear code in F features. */
function planted(n: number, F: number, C: number, noise: number, rng: Rng): { X: Float64Array; y: number[] } {
  const code = Array.from({ length: C }, () => Array.from({ length: F }, () => rng.normal()));
  const X = new Float64Array(n * F);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = rng.int(0, C);
    y.push(c);
    for (let f = 0; f < F; f++) X[i * F + f] = 5 + 3 * code[c][f] + noise * rng.normal();
  }
  return { X, y };
}

describe('the ridge probe', () => {
  it('recovers a planted linear code on held-out rows, and is at chance for a target the features do not hold', () => {
    const rng = new Rng(7);
    const F = 12;
    const C = 6;
    const nTrain = 400;
    const { X, y } = planted(nTrain + 400, F, C, 0.5, rng);
    const noiseLabels = y.map(() => rng.int(0, 10));
    const fit = fitProbe(X, F, nTrain, [y, noiseLabels], [C, 10]);
    expect(fit.accuracy[0]).toBeGreaterThan(0.97);
    // 400 held-out rows at chance 0.1: the binomial SE is 0.015; 4 SE either side
    expect(Math.abs(fit.accuracy[1] - 0.1)).toBeLessThan(0.06);
  });

  it('is at chance on pure noise features, for every target', () => {
    const rng = new Rng(11);
    const F = 16;
    const n = 1500;
    const X = Float64Array.from({ length: n * F }, () => rng.normal());
    const labels = [0, 1, 2].map(() => Array.from({ length: n }, () => rng.int(0, 4)));
    const fit = fitProbe(X, F, 500, labels, [4, 4, 4]);
    // 1000 held-out rows at chance 0.25: SE 0.0137; 4 SE
    for (const a of fit.accuracy) expect(Math.abs(a - 0.25)).toBeLessThan(0.055);
  });

  it('standardises features: a code in one feature scaled by 1e-4 and offset by 1e3 is found as well', () => {
    const rng = new Rng(3);
    const n = 600;
    const F = 3;
    const X = new Float64Array(n * F);
    const y: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = rng.int(0, 2);
      y.push(c);
      X[i * F] = 1e3 + 1e-4 * (c === 1 ? 1 : -1) + 1e-5 * rng.normal();
      X[i * F + 1] = rng.normal();
      X[i * F + 2] = 2; // constant: carries nothing
    }
    expect(fitProbe(X, F, 300, [y], [2]).accuracy[0]).toBeGreaterThan(0.99);
  });

  it('refuses shapes that do not fit', () => {
    expect(() => fitProbe(new Float64Array(10), 3, 2, [[0, 1, 0]], [2])).toThrow(/not 3-wide rows/);
    expect(() => fitProbe(new Float64Array(12), 3, 4, [[0, 1, 0, 1]], [2])).toThrow(/held-out rows/);
    expect(() => fitProbe(new Float64Array(12), 3, 2, [[0, 1, 0]], [2])).toThrow(/3 labels for 4 rows/);
  });

  it('labels classes in first-seen training order; a class seen only held-out is always wrong; chance is the training majority on held-out', () => {
    const e = encodeLabels(['b', 'a', 'b', 'b', 'c', 'z'], 4);
    expect(e.names).toEqual(['b', 'a']);
    expect(e.classes).toBe(2);
    expect(e.labels).toEqual([0, 1, 0, 0, 2, 3]);
    // training majority 'b' (index 0); held-out rows are 'c' and 'z': chance 0
    expect(majorityChance(e.labels, 4)).toBe(0);
    expect(majorityChance([1, 1, 0, 1, 1, 0, 1], 3)).toBeCloseTo(3 / 4, 12);
  });

  it('targets every slot of the senders\u2019 content: lookup key/value by table slot, relay source and relay letters', () => {
    const lookup = makeTask('lookup', 1);
    const eps = sampleEpisodes(lookup, 'train', 20, 1);
    const t = probeTargets(lookup, eps);
    expect(t.map((x) => x.name)).toEqual(['key 1', 'value 1', 'key 2', 'value 2']);
    expect(t.map((x) => targetValue(x, eps[0])).join('')).toBe(eps[0].contents[0]);
    const relay = makeTask('relay', 2);
    const r = probeTargets(relay, sampleEpisodes(relay, 'train', 5, 1));
    expect(r.map((x) => x.name)).toEqual(['source letter 1', 'source letter 2', 'source letter 3', 'relay letter 1', 'relay letter 2', 'relay letter 3']);
    const arith = makeTask('arith', 2);
    const ae = sampleEpisodes(arith, 'train', 200, 1);
    const a = probeTargets(arith, ae);
    expect(a.map((x) => x.name)).toEqual(['left digit 1', 'left digit 2', 'right digit 1', 'right digit 2']);
    const short = ae.find((ep) => ep.contents[0].length === 1)!;
    expect(targetValue(a[1], short)).toBe('');
  });
});

describe('the permute control', () => {
  it('draws a seeded derangement of the latent slots (m = 1: nothing to move)', () => {
    for (const m of [2, 3, 4, 7]) {
      const p = latentPermutation(m, new Rng(5));
      expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: m }, (_, i) => i));
      p.forEach((x, i) => expect(x).not.toBe(i));
      expect(latentPermutation(m, new Rng(5))).toEqual(p);
    }
    expect(latentPermutation(1, new Rng(5))).toEqual([0]);
    // pinned: python/tests/test_permute.py pins the same draws for the companion
    expect(latentPermutation(4, new Rng(deriveSeed(3, 'permute-control', 1, 0)))).toEqual([1, 2, 3, 0]);
    expect(latentPermutation(3, new Rng(deriveSeed(1, 'permute-control', 2, 1)))).toEqual([2, 0, 1]);
    expect(latentPermutation(6, new Rng(deriveSeed(7, 'permute-control', 1, 0)))).toEqual([3, 0, 1, 5, 2, 4]);
    expect(() => latentPermutation(0, new Rng(5))).toThrow(/positive integer/);
  });

  it('moves values exactly, keeps every other position, and turns each moved key to RoPE at its new slot', () => {
    const B = 2;
    const P = 7;
    const H = 2;
    const hd = 6;
    const W = H * hd;
    const theta = 10000;
    const inv = Float64Array.from({ length: hd / 2 }, (_, i) => Math.pow(theta, (-2 * i) / hd));
    const rng = new Rng(9);
    // raw (unrotated) keys per row; the prefix holds them rotated at their stream positions 20 + slot
    const raw = Float64Array.from({ length: B * P * W }, () => rng.normal());
    const pos0 = 20;
    const rotated = (b: number, slot: number, rawSlot: number) =>
      ropeRef(raw.subarray((b * P + rawSlot) * W, (b * P + rawSlot + 1) * W), { T: 1, H, hd, S: 1, posOffset: pos0 + slot, theta });
    const keys = new Float32Array(B * P * W);
    for (let b = 0; b < B; b++) for (let s = 0; s < P; s++) keys.set(rotated(b, s, s), (b * P + s) * W);
    const blocks = [{ offset: 1, perm: [2, 0, 1] }, { offset: 5, perm: [1, 0] }];
    const vals = Float32Array.from(raw);
    const v = permuteBlocks(vals, B, P, W, hd, blocks, null);
    const k = permuteBlocks(keys, B, P, W, hd, blocks, inv);
    const source = [0, 3, 1, 2, 4, 6, 5]; // slot -> slot it reads from
    let worst = 0;
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < P; s++) {
        const row = (b * P + s) * W;
        const src = (b * P + source[s]) * W;
        expect(Array.from(v.subarray(row, row + W))).toEqual(Array.from(vals.subarray(src, src + W)));
        const want = rotated(b, s, source[s]);
        for (let i = 0; i < W; i++) worst = Math.max(worst, Math.abs(k[row + i] - want[i]));
        if (source[s] === s) expect(Array.from(k.subarray(row, row + W))).toEqual(Array.from(keys.subarray(row, row + W)));
      }
    }
    // float32 storage of O(1) values and an angle product in float64: a few float32 ulps
    expect(worst).toBeLessThan(1e-5);
    expect(() => permuteBlocks(vals, B, P, W, hd, [{ offset: 5, perm: [0, 1, 2] }], null)).toThrow(/leaves the prefix/);
    // the frequencies are the engine's RoPE's: plain theta^(-2i/hd), or Llama 3.x's scaled ones
    const plain = { rope_theta: theta } as ModelConfig;
    expect(Array.from(keyFrequencies(plain, hd))).toEqual(Array.from(inv));
    const rp = { rope_type: 'llama3' as const, rope_theta: 5e5, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const scaled = keyFrequencies({ rope_theta: 5e5, rope_parameters: rp } as ModelConfig, 64);
    expect(Array.from(scaled)).toEqual(Array.from(ropeInvFreq(64, 5e5, rp)));
    expect(scaled[31]).toBeLessThan(Math.pow(5e5, -62 / 64) / 31);
    expect(() => permuteBlocks(vals, B, P, W, hd, [{ offset: 0, perm: [0, 0] }], null)).toThrow(/not a permutation/);
  });
});

describe('the quantizers', () => {
  /** Every finite float16 value, decoded from its bits. */
  function allHalves(): number[] {
    const out: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const f = h & 0x3ff;
      if (e === 31) continue;
      out.push(sign * (e === 0 ? f * 2 ** -24 : (1 + f / 1024) * 2 ** (e - 15)));
    }
    return out;
  }

  it('16 bits: every float16 value is kept exactly; any float is within half a float16 ulp, ties to even; overflow to infinity', () => {
    for (const x of allHalves()) expect(toHalf(x)).toBe(x);
    const rng = new Rng(1);
    for (let i = 0; i < 5000; i++) {
      const x = Math.fround(rng.normal() * 2 ** rng.int(-26, 14));
      const a = Math.abs(x);
      const ulp = a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
      expect(Math.abs(toHalf(x) - x)).toBeLessThanOrEqual(ulp / 2 * (1 + 1e-12));
    }
    expect(toHalf(1 + 2 ** -11)).toBe(1); // tie: to the even mantissa
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(toHalf(65519)).toBe(65504);
    expect(toHalf(65520)).toBe(Infinity);
    expect(toHalf(-1e6)).toBe(-Infinity);
    expect(toHalf(2 ** -26)).toBe(0);
  });

  it('k = 2..8 bits: integer multiples of the absmax step are exact; anything else within half a step', () => {
    const rng = new Rng(2);
    for (const k of [2, 3, 4, 8]) {
      const top = 2 ** (k - 1) - 1;
      // representable: s * q with |q| <= top and q = top at least once (s a power of two: exact arithmetic)
      const s = 2 ** -3;
      const v = Float32Array.from({ length: 9 }, (_, i) => (i === 0 ? top : rng.int(-top, top + 1)) * s);
      const q = v.slice();
      quantizeVector(q, 0, 9, k);
      expect(Array.from(q)).toEqual(Array.from(v));
      const x = Float32Array.from({ length: 32 }, () => rng.normal());
      const y = x.slice();
      quantizeVector(y, 0, 32, k);
      const amax = Math.max(...Array.from(x, Math.abs));
      const levels = new Set<number>();
      for (let i = 0; i < 32; i++) {
        expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual((amax / top) / 2 * (1 + 1e-6));
        levels.add(Math.round((y[i] / amax) * top));
        expect(Math.abs(y[i])).toBeLessThanOrEqual(amax * (1 + 1e-6));
      }
      expect(levels.size).toBeLessThanOrEqual(2 * top + 1);
    }
    const z = new Float32Array(4);
    quantizeVector(z, 0, 4, 4);
    expect(Array.from(z)).toEqual([0, 0, 0, 0]);
    expect(() => quantizeVector(z, 0, 4, 9)).toThrow(/not a scheme/);
  });

  it('1 bit: sign times the mean absolute value, exact on +-c vectors', () => {
    const v = Float32Array.from([0.5, -0.5, 0.5, 0.5]);
    const q = v.slice();
    quantizeVector(q, 0, 4, 1);
    expect(Array.from(q)).toEqual(Array.from(v));
    const x = Float32Array.from([1, -3, 0, 2]);
    quantizeVector(x, 0, 4, 1);
    expect(Array.from(x)).toEqual([1.5, -1.5, 1.5, 1.5]);
  });

  it('quantises each head of each row apart (its own absmax), and counts the bits of a position', () => {
    const hd = 4;
    const rows = Float32Array.from([1, 0.5, -0.25, 0, 100, 50, -25, 10, 0.1, 0.2, 0.3, 0.4, 8, 4, 2, 1]);
    const q = quantizeRows(rows, 2, 8, hd, 3); // top = 3
    expect(Array.from(q.subarray(0, 4))).toEqual([1, Math.fround(2 / 3), Math.fround(-1 / 3), 0]);
    expect(Array.from(q.subarray(4, 8))).toEqual([100, Math.fround(200 / 3), Math.fround(-100 / 3), 0]);
    expect(q[13]).toBeCloseTo(16 / 3, 5); // 4 / (8/3) = 1.5: half away from zero, to 2
    expect(q[15]).toBe(0);
    expect(() => quantizeRows(rows, 2, 8, 3, 4)).toThrow(/whole number/);
    expect(positionBits(4, { L: 2, Hkv: 2, hd: 8 })).toEqual({ floats: 64, bits: 256, scaleBits: 16 * 8 });
    expect(positionBits(16, { L: 2, Hkv: 2, hd: 8 }).scaleBits).toBe(0);
    expect(positionBits(1, { L: 2, Hkv: 2, hd: 8 }).scaleBits).toBe(0);
  });

  it('the smallest width keeps every wider one within a point', () => {
    const lv = (accs: number[]) => BIT_WIDTHS.map((bits, i) => ({ bits, accuracy: accs[i] }));
    expect(smallestKeepingBits(0.9, lv([0.9, 0.895, 0.89, 0.5, 0.1]))).toBe(4);
    expect(smallestKeepingBits(0.9, lv([0.9, 0.85, 0.9, 0.9, 0.9]))).toBe(16); // 4 bits lucky past a failing 8
    expect(smallestKeepingBits(0.9, lv([0.8, 0.8, 0.8, 0.8, 0.8]))).toBe(null);
    expect(smallestKeepingBits(0.5, lv([0.5, 0.5, 0.5, 0.5, 0.49]))).toBe(1);
  });
});

describe('probes, bits and the permute control through a run on the tiny base', () => {
  it('probe every latent position and layer, sweep the bits, permute the latent slots: deterministic, finite, within their ranges', async () => {
    const gpu = await testGpu();
    const base = await loadBaseModel('public/models/tiny');
    const engine = new MasEngine(gpu, base);
    const task = makeTask('lookup', 1);
    const run = new Run(engine, defaultRunConfig({
      task: 'lookup', difficulty: 1, topology: presetForTask(task, { latentSteps: 2 }), method: 'latentmas', modelId: 'tiny',
      steps: 0, batch: 8, evalSize: 16, evalEvery: 0,
    }));
    try {
      const { L, kvDim } = engine.model.dims;
      const p = await probeRun(run, { trainEpisodes: 40 });
      expect(p.trainEpisodes).toBe(40);
      expect(p.heldoutEpisodes).toBe(16);
      expect(p.targets.map((t) => t.name)).toEqual(['key 1', 'value 1', 'key 2', 'value 2']);
      expect(p.edges).toEqual([{ receiver: run.plan[1].agent.id, sender: run.plan[0].agent.id, positions: 2 }]);
      expect(p.cells.length).toBe(2 * L * 2);
      for (const c of p.cells) {
        expect(c.accuracy.length).toBe(4);
        for (const a of c.accuracy) expect(a >= 0 && a <= 1).toBe(true);
      }
      for (const t of p.targets) expect(t.chance >= 0 && t.chance <= 1 && t.uniform > 0).toBe(true);
      const again = await probeRun(run, { trainEpisodes: 40 });
      expect(again.cells).toEqual(p.cells);

      const none = await run.evaluate('heldout');
      const bits = await bitsRun(run, { unquantized: none.accuracy });
      expect(bits.levels.map((l) => l.bits)).toEqual([...BIT_WIDTHS]);
      expect(bits.floatsPerPosition).toBe(2 * L * kvDim);
      expect(bits.textBitsPerToken).toBeCloseTo(Math.log2(engine.model.dims.V), 12);
      // float16 keeps a random-init run's answers (its received K/V are O(1); half keeps 11 bits)
      expect(bits.levels[0].accuracy).toBeCloseTo(none.accuracy, 1);
      if (bits.smallest !== null) expect(bits.bitsPerPosition).toBe(bits.smallest * bits.floatsPerPosition);

      const a = await run.evaluate('heldout', 'permute');
      const b = await run.evaluate('heldout', 'permute');
      expect(b.predictions).toEqual(a.predictions);
      expect(b.loss).toBe(a.loss);
      expect(Number.isFinite(a.loss)).toBe(true);
      expect(a.loss).not.toBe(none.loss);

      // the reason the permute control turns the keys: rows moved without the turn change nothing the
      // receiver computes (attention over a prefix is a sum over its positions), up to summation order
      const { hd } = engine.model.dims;
      const B = run.config.batch;
      const moved = await run.evaluate('heldout', 'none', {
        edit: (ro) => (agent, _l, _k, values, P) => permuteBlocks(values, B, P, kvDim, hd, latentBlocks(ro, agent).map((x) => ({ offset: x.offset, perm: [1, 0] })), null),
      });
      expect(moved.predictions).toEqual(none.predictions);
      expect(Math.abs(moved.loss - none.loss)).toBeLessThan(1e-5 * Math.max(1, none.loss));
      await expect(run.evaluate('heldout', 'zero', { edit: () => () => undefined })).rejects.toThrow(/without a control/);
    } finally {
      run.destroy();
      engine.destroy();
    }
  }, 300_000);

  it('the experiment runner adds probes and bits for latent methods only, keeps them on resume; the controller probes the open run', async () => {
    const gpu = await testGpu();
    const base = await loadBaseModel('public/models/tiny');
    const task = makeTask('lookup', 1);
    const cfg = defaultRunConfig({
      task: 'lookup', difficulty: 1, topology: presetForTask(task, { latentSteps: 2 }), modelId: 'tiny', steps: 0, batch: 8, evalSize: 8, evalEvery: 0,
    });
    const { method: _m, seed: _s, ...baseCfg } = cfg;
    const req = { base: baseCfg, methods: ['single', 'latentmas'] as MethodName[], seeds: [1] };
    const measure = { probe: { trainEpisodes: 24 }, bits: true };
    const report = await runExperiment(gpu, base, req, () => undefined, { splits: ['heldout'], controls: false, measure });
    expect(report.probes!.map((p) => p.method)).toEqual(['latentmas']);
    expect(report.bits!.map((b) => b.method)).toEqual(['latentmas']);
    const row = report.rows.find((r) => r.method === 'latentmas')!;
    expect(report.bits![0].unquantized).toBe(row.accuracy);
    expect(formatProbes(report.probes!)).toContain('| latentmas | 1 | key 1 |');
    expect(formatBits(report.bits!)).toMatch(/\| latentmas \| 1 \| [0-9.]+ \| /);
    const kept: string[] = [];
    const resumed = await runExperiment(gpu, base, req, (m) => void (m.endsWith('kept from the previous run') && kept.push(m)), { splits: ['heldout'], controls: false, measure, previous: report });
    expect(kept.length).toBe(2);
    expect(resumed.probes).toEqual(report.probes);
    expect(resumed.bits).toEqual(report.bits);

    const ctl = new RunController(gpu);
    await ctl.start({ ...cfg, method: 'latentmas' }, base, () => undefined);
    const p = await ctl.probe(24);
    expect(p.cells).toEqual(report.probes![0].cells);
    ctl.reset();
  }, 300_000);
});
