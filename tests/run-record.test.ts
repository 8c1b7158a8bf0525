// The pure functions the page's stores ask of a run's data (src/mas/run-record.ts, withIntervals in
// src/mas/base-eval.ts, isTrainedMethod in src/mas/run-types.ts, importable in
// src/storage/import-files.ts): hand-checked cases.
import { describe, expect, it } from 'vitest';
import { continueProblem, curvesUpTo, runName } from '../src/mas/run-record';
import { wilson95, withIntervals } from '../src/mas/base-eval';
import { isTrainedMethod, TRAINED_METHODS, METHODS, type EvalRow, type RunConfig } from '../src/mas/run-types';
import { importable } from '../src/storage/import-files';
import type { RunCurves, RunRecord } from '../src/storage/records';

const config = { task: 'lookup', difficulty: 3, method: 'diffmas', seed: 7, steps: 20 } as RunConfig;

function record(over: Partial<RunRecord> = {}, training: { step: number } | null = { step: 8 }, final = 1): RunRecord {
  return {
    id: 'run-1', kind: 'run', name: 'r', createdAt: 0, updatedAt: 0, status: 'stopped', config, baseModelId: 'm',
    curves: { steps: [], loss: [], evals: [] }, evalRows: null, inspections: [],
    adapters: { initial: [], final: new Array(final).fill({}), finalStep: training?.step ?? null, training: training as RunRecord['adapters']['training'], saved: [], info: null },
    wallSeconds: 0, trainSeconds: 0, stepsDone: 0, ...over,
  } as RunRecord;
}

describe('run records', () => {
  it('curvesUpTo keeps the points at or before the step, evaluations included', () => {
    const c: RunCurves = { steps: [1, 2, 3, 4], loss: [4, 3, 2, 1], evals: [{ step: 2, loss: 1, accuracy: 0.5 }, { step: 4, loss: 0.5, accuracy: 0.75 }] };
    expect(curvesUpTo(c, 3)).toEqual({ steps: [1, 2, 3], loss: [4, 3, 2], evals: [{ step: 2, loss: 1, accuracy: 0.5 }] });
    expect(curvesUpTo(c, 0)).toEqual({ steps: [], loss: [], evals: [] });
    expect(curvesUpTo(c, 4).steps).not.toBe(c.steps);
  });

  it('continueProblem says why a record cannot go on, and null when it can', () => {
    expect(continueProblem(record())).toBeNull();
    expect(continueProblem(record({ kind: 'compare' }))).toBe('a comparison is not a run');
    expect(continueProblem(record({ config: { ...config, method: 'latentmas' } }))).toBe('latentmas trains nothing');
    expect(continueProblem(record({}, null))).toMatch(/no training state/);
    expect(continueProblem(record({}, { step: 8 }, 0))).toMatch(/no training state/);
    expect(continueProblem(record({}, { step: 20 }))).toBe('it has taken all its 20 steps');
  });

  it('runName names the task, method, seed and the adapter set it started from', () => {
    expect(runName(config)).toBe('lookup d3 · diffmas · seed 7');
    expect(runName(config, { name: 'mine' })).toBe("lookup d3 · diffmas · seed 7 · from 'mine'");
  });

  it('withIntervals adds the Wilson interval of each row (none without episodes)', () => {
    const rows = [{ split: 'heldout', episodes: 10, accuracy: 0.3 }, { split: 'ood', episodes: 0, accuracy: 0 }] as unknown as EvalRow[];
    const out = withIntervals(rows);
    expect(out[0].ci95).toEqual(wilson95(3, 10));
    expect(out[1].ci95).toBeNull();
    expect(out[0]).toMatchObject(rows[0]);
  });

  it('isTrainedMethod is TRAINED_METHODS', () => {
    for (const m of METHODS) expect(isTrainedMethod(m)).toBe(TRAINED_METHODS.includes(m));
    expect(isTrainedMethod('diffmas')).toBe(true);
    expect(isTrainedMethod('latentmas')).toBe(false);
  });
});

describe('importable', () => {
  const f = (name: string, webkitRelativePath = '') => ({ name, webkitRelativePath });
  it('takes every picked or dropped file', () => {
    const files = [f('model.bin'), f('a.gguf'), f('x.zip')];
    expect(importable(files)).toEqual(files);
  });
  it("takes a folder's own zip, JSON and safetensors files only", () => {
    const files = [
      f('config.json', 'hub/config.json'), f('model.safetensors', 'hub/model.safetensors'), f('pytorch_model.bin', 'hub/pytorch_model.bin'),
      f('model.onnx', 'hub/onnx/model.onnx'), f('x.json', 'hub/onnx/x.json'), f('A.ZIP', 'hub/A.ZIP'),
    ];
    expect(importable(files).map((x) => x.webkitRelativePath)).toEqual(['hub/config.json', 'hub/model.safetensors', 'hub/A.ZIP']);
  });
  it('takes a run bundle folder (run.json at its top) whole', () => {
    const files = [f('run.json', 'b/run.json'), f('adapter.safetensors', 'b/adapters/a0/adapter.safetensors'), f('notes.txt', 'b/notes.txt')];
    expect(importable(files)).toEqual(files);
  });
});
