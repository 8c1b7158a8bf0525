// The page's estimate before Train and Compare (issue 23 item 4; src/mas/time-estimate.ts): the work
// of one page run and of a comparison, and a report from steps and evaluation batches timed on the
// device (no wall-clock figure is asserted, only that it is measured and adds up).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadBaseModel } from '../src/cli/files';
import { runExperiment } from '../src/mas/experiment';
import type { ExperimentReport } from '../src/worker/api';
import { cli } from './cli-helpers';
import { estimateExperiment } from '../src/mas/estimate';
import { runWork } from '../src/mas/measure-time';
import { defaultRunConfig } from '../src/mas/run';
import { estimateSetupTime, pageRunWork } from '../src/mas/time-estimate';
import { presetForTask } from '../src/mas/topology';
import { makeTask } from '../src/tasks/tasks';
import { testGpu } from './helpers';

const TINY = 'public/models/tiny';
const task = makeTask('lookup', 1);
const config = defaultRunConfig({ topology: presetForTask(task), modelId: TINY, steps: 10, batch: 2, evalSize: 3, evalEvery: 4 });

describe('pageRunWork', () => {
  it('a trained run: its steps and a heldout evaluation at steps 4, 8 and the last', () => {
    expect(pageRunWork({ ...config, method: 'diffmas' })).toEqual({ method: 'diffmas', steps: 10, evalEpisodes: 3 * 3 });
  });
  it('evalEvery 0: one evaluation at the end; an untrained method: one evaluation, no steps', () => {
    expect(pageRunWork({ ...config, method: 'diffmas', evalEvery: 0 })).toEqual({ method: 'diffmas', steps: 10, evalEpisodes: 3 });
    expect(pageRunWork({ ...config, method: 'latentmas' })).toEqual({ method: 'latentmas', steps: 0, evalEpisodes: 3 });
  });
});

describe('estimateSetupTime', () => {
  it('times each method once on the device and adds up Train and Compare from those figures', async () => {
    const gpu = await testGpu();
    const base = await loadBaseModel(TINY);
    const { method: _m, seed: _s, ...rest } = config;
    const req = { base: rest, methods: ['diffmas', 'single'] as const, seeds: [1, 2, 3] };
    const run = await estimateSetupTime(gpu, base, { ...req, methods: [...req.methods] }, 'run');
    expect(run.timings.map((t) => t.method)).toEqual(['diffmas']);
    expect(run.timings[0].stepSeconds).toBeGreaterThan(0);
    expect(run.timings[0].episodeSeconds).toBeGreaterThan(0);
    expect(run.runs).toBe(1);
    expect(run.seconds).toBeCloseTo(estimateExperiment([pageRunWork({ ...config, method: 'diffmas' })], run.timings, 1).seconds, 9);
    expect(run.summary).toMatch(/^about .+: 10 training steps and 9 evaluation episodes \(measured here: diffmas [\d.]+ s\/step, [\d.]+ s\/episode\)$/);
    const cmp = await estimateSetupTime(gpu, base, { ...req, methods: [...req.methods] }, 'compare');
    expect(cmp.timings.map((t) => t.method)).toEqual(['diffmas', 'single']);
    expect(cmp.timings[1].stepSeconds).toBe(0);
    expect(cmp.runs).toBe(6);
    // diffmas: 10 steps, heldout + ood + 5 controls on heldout; single: both splits
    expect(cmp.work).toEqual([runWork({ ...config, method: 'diffmas' }, ['heldout', 'ood'], ['shuffle', 'zero', 'noise', 'rotate', 'permute']), { method: 'single', steps: 0, evalEpisodes: 6 }]);
    expect(cmp.work[0].evalEpisodes).toBe(3 * 7);
    expect(cmp.summary).toMatch(/: 30 training steps and 81 evaluation episodes over 6 runs/);
    expect(cmp.warning).toBeNull();
    await expect(estimateSetupTime(gpu, base, { ...req, methods: [] }, 'compare')).rejects.toThrow(/choose at least one method/);
  });
});

describe('experiment timed first', () => {
  it('gives the numbers runExperiment gives alone: the timed runs are fresh and destroyed, the shared engine holds nothing of theirs', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'timed-'));
    try {
      const j = path.join(dir, 'r.json');
      const r = await cli(['experiment', '--preset', 'tiny', '--methods', 'diffmas,text-trained', '--seeds', '1', '--steps', '3', '--batch', '4', '--eval-size', '4', '--controls', 'shuffle,zero', '--json', j, '--quiet']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^estimate: about /m);
      const timed = JSON.parse(await readFile(j, 'utf8')) as ExperimentReport;
      const { methods, seeds, preset: _p, model: _m, topologyArg: _t, device: _d, vocabSize: _v, baseSha256: _b, seconds: _s, ...base } = timed.args as Record<string, unknown>;
      const alone = await runExperiment(await testGpu(), await loadBaseModel(TINY), { base, methods, seeds } as never, () => {}, { controls: ['shuffle', 'zero'] });
      const strip = (rows: ExperimentReport['rows']) => rows.map(({ trainSeconds: _x, ...row }) => row);
      expect(strip(timed.rows)).toEqual(strip(alone.rows));
      expect(timed.controls).toEqual(alone.controls);
      expect(timed.curves).toEqual(alone.curves);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
