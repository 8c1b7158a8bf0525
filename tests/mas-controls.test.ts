// The noise and rotate controls (src/mas/controls.ts, Rollout.recordForwardWith, Run.evaluate):
// their arithmetic against plain float64 loops (moments, Cholesky of a PSD matrix, Gaussian draws
// whose empirical mean and covariance match the trace's, Haar rotations that are orthogonal with
// det +1 and keep every head's norm), the rollout's host edit of received prefixes against its own
// GPU zeroing, and the controls through a run and the experiment runner (seeded, every column, resume).
import { describe, expect, it } from 'vitest';
import { LlamaGpu, initWeights } from '../src/model/model';
import type { ModelConfig } from '../src/model/config';
import { toLlamaConfig } from '../src/model/pretrain';
import { choleskyPsd, determinant, GaussianRows, Moments, randomRotation, rotateHeads } from '../src/mas/controls';
import { computeLatentMap } from '../src/mas/latentmap';
import { GpuLatentMap, Rollout, type PrefixEdit } from '../src/mas/rollout';
import { defaultRunConfig, MasEngine, Run } from '../src/mas/run';
import { formatControls, runExperiment } from '../src/mas/experiment';
import { presetForTask } from '../src/mas/topology';
import { Rng } from '../src/tasks/rng';
import { makeTask } from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';
import type { BaseModel } from '../src/mas/types';
import type { MethodName, RunConfig } from '../src/worker/api';
import { testGpu } from './helpers';

function naiveMoments(rows: number[][]): { mean: number[]; cov: number[][] } {
  const n = rows.length;
  const W = rows[0].length;
  const mean = Array.from({ length: W }, (_, i) => rows.reduce((s, r) => s + r[i], 0) / n);
  const cov = Array.from({ length: W }, (_, i) => Array.from({ length: W }, (_, j) => rows.reduce((s, r) => s + (r[i] - mean[i]) * (r[j] - mean[j]), 0) / n));
  return { mean, cov };
}

function llt(L: Float64Array, n: number): Float64Array {
  const C = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) C[i * n + j] += L[i * n + k] * L[j * n + k];
  return C;
}

/** Rows x = mu + A z (z standard normal): a correlated "trace" with an offset. */
function correlatedRows(nRows: number, W: number, seed: number, offset = 3): { data: Float32Array; A: number[][] } {
  const r = new Rng(seed);
  const A = Array.from({ length: W }, () => Array.from({ length: W }, () => r.normal()));
  const mu = Array.from({ length: W }, (_, i) => offset + i);
  const data = new Float32Array(nRows * W);
  for (let k = 0; k < nRows; k++) {
    const z = Array.from({ length: W }, () => r.normal());
    for (let i = 0; i < W; i++) data[k * W + i] = mu[i] + A[i].reduce((s, a, j) => s + a * z[j], 0);
  }
  return { data, A };
}

describe('moments and the Cholesky factor (float64 CPU reference)', () => {
  it('running mean and covariance equal the two-pass ones, also with a large offset and in pieces', () => {
    const W = 5;
    const { data } = correlatedRows(37, W, 1, 1000);
    const m = new Moments(W);
    m.add(data, 10);
    m.add(data, 27, 10 * W); // the rest, from an offset
    const rows = Array.from({ length: 37 }, (_, k) => Array.from(data.subarray(k * W, k * W + W)));
    const ref = naiveMoments(rows);
    const mean = m.mean();
    const cov = m.covariance();
    for (let i = 0; i < W; i++) {
      expect(Math.abs(mean[i] - ref.mean[i])).toBeLessThan(1e-9 * 1000);
      for (let j = 0; j < W; j++) expect(Math.abs(cov[i * W + j] - ref.cov[i][j])).toBeLessThan(1e-8 * (1 + Math.abs(ref.cov[i][j])));
    }
    expect(m.n).toBe(37);
  });

  it('L L^T reproduces a positive definite matrix, a rank-deficient one exactly; a non-PSD one throws', () => {
    for (const [n, k] of [[6, 6], [6, 3], [7, 1]] as const) {
      const r = new Rng(n * 10 + k);
      const A = Array.from({ length: n }, () => Array.from({ length: k }, () => r.normal()));
      const C = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) C[i * n + j] += A[i][t] * A[j][t];
      const L = choleskyPsd(C, n);
      const back = llt(L, n);
      for (let i = 0; i < n * n; i++) expect(Math.abs(back[i] - C[i])).toBeLessThan(1e-9);
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) expect(L[i * n + j]).toBe(0);
    }
    expect(choleskyPsd(new Float64Array(9), 3).every((x) => x === 0)).toBe(true);
    expect(() => choleskyPsd(Float64Array.from([1, 2, 2, 1]), 2)).toThrow(/not positive semi-definite/);
  });
});

describe('the noise control: Gaussian draws with the trace\u2019s own statistics', () => {
  it('over 40,000 draws the empirical mean and covariance match the measured ones within 5 standard errors', () => {
    const W = 8;
    const { data } = correlatedRows(300, W, 7);
    const m = new Moments(W);
    m.add(data, 300);
    const mean = m.mean();
    const cov = m.covariance();
    const g = new GaussianRows(m);
    const N = 40_000;
    const out = new Float32Array(N * W);
    g.fill(out, N, new Rng(11));
    const e = new Moments(W);
    e.add(out, N);
    const em = e.mean();
    const ec = e.covariance();
    for (let i = 0; i < W; i++) {
      // standard error of a mean: sd / sqrt(N); of a covariance entry: sqrt((C_ii C_jj + C_ij^2) / N)
      expect(Math.abs(em[i] - mean[i])).toBeLessThan(5 * Math.sqrt(cov[i * W + i] / N));
      for (let j = 0; j < W; j++) {
        const se = Math.sqrt((cov[i * W + i] * cov[j * W + j] + cov[i * W + j] ** 2) / N);
        expect(Math.abs(ec[i * W + j] - cov[i * W + j])).toBeLessThan(5 * se);
      }
    }
  });

  it('fewer rows than features (a rank-deficient covariance) still draws with that covariance; seeded', () => {
    const W = 8;
    const { data } = correlatedRows(3, W, 9);
    const m = new Moments(W);
    m.add(data, 3);
    const g = new GaussianRows(m);
    const a = new Float32Array(5 * W);
    const b = new Float32Array(5 * W);
    const c = new Float32Array(5 * W);
    g.fill(a, 5, new Rng(1));
    g.fill(b, 5, new Rng(1));
    g.fill(c, 5, new Rng(2));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(a.every(Number.isFinite)).toBe(true);
    // L L^T is the (rank 2) covariance
    const back = llt(g.L, W);
    const cov = m.covariance();
    for (let i = 0; i < W * W; i++) expect(Math.abs(back[i] - cov[i])).toBeLessThan(1e-9 * (1 + Math.abs(cov[i])));
  });
});

describe('the rotate control: random rotations per head', () => {
  it('Q is orthogonal to 1e-12 with det +1, seeded, and its entries have the Haar moments', () => {
    for (const n of [1, 2, 4, 7, 16]) {
      const Q = randomRotation(n, new Rng(n));
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let d = 0;
          for (let k = 0; k < n; k++) d += Q[k * n + i] * Q[k * n + j];
          expect(Math.abs(d - (i === j ? 1 : 0))).toBeLessThan(1e-12);
        }
      }
      expect(determinant(Q, n)).toBeCloseTo(1, 10);
      expect(randomRotation(n, new Rng(n))).toEqual(Q);
    }
    // Haar on SO(4): E[Q_00] = 0, E[Q_00^2] = 1/4 (sd of Q_00^2 is 0.25: 2000 draws give se 0.006)
    const r = new Rng(5);
    let s1 = 0;
    let s2 = 0;
    for (let t = 0; t < 2000; t++) {
      const Q = randomRotation(4, r);
      s1 += Q[0];
      s2 += Q[0] ** 2;
    }
    expect(Math.abs(s1 / 2000)).toBeLessThan(0.05);
    expect(Math.abs(s2 / 2000 - 0.25)).toBeLessThan(0.03);
  });

  it('rotates each head of each row as Q_h x: a known input, a float64 product, norms per head kept to 1e-5', () => {
    // a quarter turn in the first head's plane and the identity on the second head
    const quarter = Float64Array.from([0, -1, 1, 0]);
    const id = Float64Array.from([1, 0, 0, 1]);
    const x = Float32Array.from([1, 0, 3, 4, 0, 2, -5, 6]); // 2 rows of 2 heads x 2
    rotateHeads(x, 2, 4, 2, [quarter, id]);
    expect(Array.from(x)).toEqual([0, 1, 3, 4, -2, 0, -5, 6]);

    const hd = 4;
    const heads = 3;
    const W = hd * heads;
    const rows = 9;
    const rots = Array.from({ length: heads }, (_, h) => randomRotation(hd, new Rng(40 + h)));
    const { data } = correlatedRows(rows, W, 3);
    const got = data.slice();
    rotateHeads(got, rows, W, hd, rots);
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < heads; h++) {
        let n0 = 0;
        let n1 = 0;
        for (let i = 0; i < hd; i++) {
          let want = 0;
          for (let j = 0; j < hd; j++) want += rots[h][i * hd + j] * data[r * W + h * hd + j];
          expect(Math.abs(got[r * W + h * hd + i] - want)).toBeLessThan(1e-5 * (1 + Math.abs(want)));
          n0 += data[r * W + h * hd + i] ** 2;
          n1 += got[r * W + h * hd + i] ** 2;
        }
        expect(Math.abs(Math.sqrt(n1) - Math.sqrt(n0))).toBeLessThan(1e-5 * Math.sqrt(n0));
      }
    }
    expect(() => rotateHeads(got, rows, W + 1, hd, rots)).toThrow(/not 3 heads x 4/);
  });
});

// ---- on the GPU

const CFG: ModelConfig = {
  hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  vocab_size: 13, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};

describe('received prefixes edited on the host (Rollout.recordForwardWith)', () => {
  it('no edit = the recorded forward; zeros = the GPU zero control; a rotation lands in the prefix the receiver reads', async () => {
    const gpu = await testGpu();
    const weights = initWeights(CFG, 4, 0.3);
    const model = new LlamaGpu(gpu, CFG, weights);
    const map = new GpuLatentMap(gpu, computeLatentMap(CFG, weights, 'ridge'));
    const B = 3;
    // a chain 0 -> 1 -> 2: the relay's prefix and the final agent's are both received prefixes
    const ro = new Rollout(model, {
      B, trace: 'latent', map, agents: [
        { id: 's', preds: [], n: 3, m: 2, lora: null, backward: false },
        { id: 'r', preds: [0], n: 2, m: 3, lora: null, backward: false },
        { id: 'f', preds: [1], n: 4, m: 0, lora: null, backward: false },
      ],
    });
    const r = new Rng(2);
    for (let a = 0; a < 3; a++) ro.setIds(a, Array.from({ length: B * ro.agents[a].spec.n }, () => r.int(0, CFG.vocab_size)));
    ro.setTargets(Array.from({ length: B * 4 }, () => r.int(0, CFG.vocab_size)));
    const logits = async () => gpu.read(ro.final.prompt.logits);
    ro.recordForward();
    const plain = await logits();
    ro.recordForward({ zeroTraces: true });
    const zeroed = await logits();
    expect(zeroed).not.toEqual(plain);

    const seen: string[] = [];
    await ro.recordForwardWith((agent, layer, kind, values, P) => {
      seen.push(`${agent}/${layer}/${kind}/${P}/${values.length}`);
    });
    expect(await logits()).toEqual(plain);
    const W = model.dims.kvDim;
    expect(seen).toEqual(['1/0/k/2', '1/0/v/2', '1/1/k/2', '1/1/v/2', '2/0/k/3', '2/0/v/3', '2/1/k/3', '2/1/v/3'].map((s) => `${s}/${B * Number(s.split('/')[3]) * W}`));

    await ro.recordForwardWith((_a, _l, _k, values) => new Float32Array(values.length));
    expect(await logits()).toEqual(zeroed);

    const { hd, Hkv } = model.dims;
    const rots = Array.from({ length: Hkv }, (_, h) => randomRotation(hd, new Rng(h + 1)));
    const handed = new Map<string, Float32Array>();
    const rotate: PrefixEdit = (agent, layer, kind, values, P) => {
      const out = values.slice();
      rotateHeads(out, B * P, W, hd, rots);
      handed.set(`${agent}/${layer}/${kind}`, out);
      return out;
    };
    await ro.recordForwardWith(rotate);
    const rotated = await logits();
    expect(rotated).not.toEqual(plain);
    for (const a of [1, 2]) {
      for (let l = 0; l < CFG.num_hidden_layers; l++) {
        expect(await gpu.read(ro.agents[a].pre!.k[l])).toEqual(handed.get(`${a}/${l}/k`));
        expect(await gpu.read(ro.agents[a].pre!.v[l])).toEqual(handed.get(`${a}/${l}/v`));
      }
    }
    await expect(ro.recordForwardWith(() => new Float32Array(1))).rejects.toThrow(/returned 1 values/);
    ro.destroy();
    map.destroy();
    model.destroy();
  });
});

const tokenizer = defaultTokenizer();
const RUN_CFG: ModelConfig = {
  hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
  vocab_size: tokenizer.vocabSize, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 256,
};
function randomBase(): BaseModel {
  return { id: 'random-controls', config: toLlamaConfig(RUN_CFG, tokenizer), weights: initWeights(RUN_CFG, 5, 0.1), tokenizer };
}
const lookup = makeTask('lookup', 1);
function cfg(over: Partial<RunConfig> = {}): RunConfig {
  return defaultRunConfig({
    topology: presetForTask(lookup, { latentSteps: 2 }), modelId: 'random', steps: 1, batch: 4, evalSize: 6, evalEvery: 0, lr: 1e-2,
    textBudget: 3, lora: { r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] }, ...over,
  });
}

describe('the controls through a run and the experiment runner', () => {
  it('noise and rotate evaluate a latent method deterministically and change what it reads; text and single refuse them', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    const run = new Run(engine, cfg({ method: 'latentmas' }));
    const none = await run.evaluate('heldout');
    for (const control of ['noise', 'rotate'] as const) {
      const a = await run.evaluate('heldout', control);
      const b = await run.evaluate('heldout', control);
      expect(a.episodes).toBe(6);
      expect(b.predictions).toEqual(a.predictions);
      expect(b.loss).toBe(a.loss);
      expect(Number.isFinite(a.loss)).toBe(true);
      expect(a.loss).not.toBe(none.loss);
      expect(a.messageFloats).toBe(none.messageFloats);
    }
    run.destroy();
    const text = new Run(engine, cfg({ method: 'text' }));
    await expect(text.evaluate('heldout', 'noise')).rejects.toThrow(/sends text: the noise control acts on received K\/V/);
    await expect(text.evaluate('heldout', 'rotate')).rejects.toThrow(/does not apply/);
    text.destroy();
    const single = new Run(engine, cfg({ method: 'single' }));
    await expect(single.evaluate('heldout', 'rotate')).rejects.toThrow(/sends no messages/);
    single.destroy();
    engine.destroy();
  });

  it('the runner runs all five on latent methods and two on text, prints five columns, judges each; resume reruns a pair without the new ones', async () => {
    const gpu = await testGpu();
    const base = randomBase();
    const req = { base: { ...cfg() }, methods: ['text', 'latentmas'] as MethodName[], seeds: [1] };
    const report = await runExperiment(gpu, base, req, () => undefined, { splits: ['heldout'] });
    const of = (m: string) => report.controls.filter((c) => c.method === m).map((c) => c.control);
    expect(of('text')).toEqual(['shuffle', 'zero']);
    expect(of('latentmas')).toEqual(['shuffle', 'zero', 'noise', 'rotate', 'permute']);
    for (const c of report.controls) expect(c.accuracy).toBeGreaterThanOrEqual(0);
    const table = formatControls(report);
    expect(table.split('\n')[0]).toBe('| method | heldout | shuffled | zeroed | noise | rotated | permuted | chance |');
    expect(table).toMatch(/\| text \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| n\/a \| n\/a \| n\/a \|/);
    for (const words of ['messages shuffled across the batch', 'traces zeroed', 'Gaussian noise of their own mean and covariance', 'received K/V rotated per head', "each sender's latent positions permuted"]) {
      expect(report.findings.some((f) => f.startsWith('latentmas, ') && f.includes(words) && /falls to chance|stays above chance/.test(f)), words).toBe(true);
    }
    expect(report.findings.some((f) => f.startsWith('text, ') && f.includes('rotated'))).toBe(false);

    // a report made before noise and rotate existed: text is kept, latentmas runs again
    const old = { ...report, controls: report.controls.filter((c) => c.control === 'shuffle' || c.control === 'zero') };
    const kept: string[] = [];
    const resumed = await runExperiment(gpu, base, req, (m) => void (m.endsWith('kept from the previous run') && kept.push(m)), { splits: ['heldout'], previous: old });
    expect(kept).toEqual(['seed 1 text: kept from the previous run']);
    expect(resumed.controls).toEqual(report.controls);
    // a subset of controls
    const some = await runExperiment(gpu, base, { ...req, methods: ['latentmas'] }, () => undefined, { splits: ['heldout'], controls: ['rotate'] });
    expect(some.controls.map((c) => c.control)).toEqual(['rotate']);
    await expect(runExperiment(gpu, base, req, () => undefined, { controls: ['spin' as never] })).rejects.toThrow(/unknown control "spin"/);
  });
});
