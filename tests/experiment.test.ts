// The CI experiment (issue 9, item 6) at the `tiny` preset on the shipped tiny base (public/models/tiny):
// skyline, text, latentmas and diffmas over 3 seeds on split-key lookup, the same held-out set for
// every method, and the shuffle control. It checks what the preset and the base are for:
//  - the base reads: the skyline (one context holds both parts) is at least 0.9;
//  - text with enough budget is within 0.1 of the skyline (the base writes and reads its messages);
//  - diffmas beats the training-free latent channel (latentmas): the paired difference over the one
//    shared evaluation set has a 95% bootstrap interval over seeds and episodes that excludes 0 (the
//    verdict `findings` prints; src/mas/stats.ts, src/mas/paired.ts);
//  - with messages shuffled across the batch, diffmas falls to chance (its interval reaches chance:
//    the paired control comparison), so what it gets right comes through its own episode's message;
//  - the report is complete and consistent (rows per method and seed, summary means and intervals
//    recomputed from the rows, chance, loss curves with a finite loss at every step).
// scripts/test.sh runs this file on lavapipe when it can fetch it (several times SwiftShader's speed),
// on SwiftShader otherwise. The figures it reproduces are in bench/EXPERIMENT.md.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadBaseModel } from '../src/cli/files';
import { EXPERIMENT_PRESETS, resolveTopology } from '../src/mas/presets';
import { formatControls, formatCurves, formatTable, meanCi, runExperiment } from '../src/mas/experiment';
import { makeTask } from '../src/tasks/tasks';
import type { CompareRequest, MethodName } from '../src/worker/api';
import { testGpu } from './helpers';

const preset = EXPERIMENT_PRESETS.tiny;

describe.skipIf(!existsSync(`${preset.model}/model.safetensors`))('experiment at the tiny preset', () => {
  it('3 seeds on lookup: skyline >= 0.9, text near it, diffmas beats latentmas (paired interval excludes 0), shuffled messages fall to chance', { timeout: 3_600_000 }, async () => {
    const gpu = await testGpu();
    const base = await loadBaseModel(preset.model);
    const task = makeTask('lookup', 1);
    const methods: MethodName[] = ['skyline', 'text', 'latentmas', 'diffmas'];
    const seeds = [1, 2, 3];
    const req: CompareRequest = {
      base: {
        task: 'lookup', difficulty: 1, topology: resolveTopology('preset', task, preset.latentSteps), modelId: preset.model,
        lora: { r: preset.rank, alpha: 2 * preset.rank, targets: preset.targets }, lr: preset.lr,
        steps: preset.steps, batch: preset.batch, latentMap: 'ridge', textBudget: preset.textBudget, evalEvery: 0,
        evalSize: preset.evalSize,
      },
      methods,
      seeds,
    };
    const t0 = performance.now();
    const report = await runExperiment(gpu, base, req, () => undefined, { splits: ['heldout'], controls: ['shuffle'] });
    console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s on ${gpu.report.description}`);
    console.log(`${formatTable(report)}\n${formatControls(report)}\n${formatCurves(report, 50)}\n${report.findings.join('\n')}`);

    // complete and consistent
    expect(report.rows).toHaveLength(methods.length * seeds.length);
    for (const m of methods) {
      const rows = report.rows.filter((r) => r.method === m);
      expect(rows.map((r) => r.seed)).toEqual(seeds);
      const s = report.summary.find((x) => x.method === m && x.split === 'heldout')!;
      const { mean, ci } = meanCi(rows.map((r) => r.accuracy));
      expect(s.accuracyMean).toBeCloseTo(mean, 12);
      expect(s.accuracyCi).toBeCloseTo(ci, 12);
      for (const r of rows) expect(r.episodes).toBe(preset.evalSize);
    }
    expect(report.rows.filter((r) => r.method === 'latentmas').every((r) => r.messageFloats > 0 && r.trainSeconds < 5)).toBe(true);
    expect(report.chance!.heldout).toBeCloseTo(0.1, 12);
    expect(report.findings[0]).toMatch(/^heldout ordering/);
    const curves = report.curves!.filter((c) => c.method === 'diffmas');
    expect(curves).toHaveLength(seeds.length);
    for (const c of curves) {
      expect(c.losses).toHaveLength(preset.steps);
      for (const l of c.losses) expect(Number.isFinite(l)).toBe(true);
    }

    // the base reads, and text (budget for the whole message) carries what the skyline knows
    const mean = (m: MethodName) => report.summary.find((x) => x.method === m && x.split === 'heldout')!.accuracyMean;
    expect(mean('skyline')).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(mean('text') - mean('skyline'))).toBeLessThanOrEqual(0.1);

    // the ordering, by the same verdict the report prints
    for (const other of ['latentmas'] as const) {
      const line = report.findings.find((f) => f.startsWith(`heldout: diffmas `) && f.includes(` vs ${other} `));
      expect(line, `no finding for diffmas vs ${other}`).toBeDefined();
      expect(line, line).toContain(`diffmas beats ${other} (the interval excludes 0)`);
      expect(line, line).toContain('paired over');
    }
    // one evaluation set: every row scored the same episodes, in the same order
    expect(report.episodes?.heldout).toHaveLength(preset.evalSize);

    // the shuffle control: diffmas at chance when each receiver gets another episode's message
    const shuffled = report.controls.filter((c) => c.method === 'diffmas' && c.control === 'shuffle');
    expect(shuffled).toHaveLength(seeds.length);
    const c = report.paired!.find((x) => x.a === 'diffmas' && x.control === 'shuffle')!;
    expect(c, 'no paired shuffle comparison').toBeDefined();
    expect(c.atChance, `diffmas shuffled: ${c.meanA}, ${c.chanceBand}`).toBe(true);
  });
});
