// The base-model evaluation that ends pretraining (src/mas/base-eval.ts): the table's shape (every
// task, difficulty, method and split; intervals around the accuracy; the text budget), agreement with
// a plain Run of the same configuration, a failing cell kept as an error while the others run, and the
// CLI's pretrain writing it under `evaluation` in training_args.json (or the error, with the checkpoint
// still written). A small random base and a few episodes: cheap on SwiftShader.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeTask } from '../src/tasks/tasks';
import { evalEpisodes } from '../src/mas/run-data';
import { MasEngine, Run, defaultRunConfig } from '../src/mas/run';
import { resolveTopology } from '../src/mas/presets';
import {
  autoTextBudget, evaluateBase, evaluateBaseOrError, failedCells, formatBaseEvaluation, wilson95, type BaseEvaluation,
} from '../src/mas/base-eval';
import { commandPretrain } from '../src/cli/pretrain';
import { Engine } from '../src/worker/engine';
import type { RunProgress } from '../src/worker/api';
import { memoryStore } from '../src/storage/library';
import { unzip } from '../src/storage/zip';
import { nodeGpuEntry } from '../src/gpu/node';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { BaseEvalNote, BaseEvalTable, readBaseEvaluation } from '../src/ui/components/BaseEvalTable';
import { randomBase, testGpu } from './helpers';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('wilson95', () => {
  it('matches the textbook values and stays inside [0, 1]', () => {
    const [a, b] = wilson95(5, 10);
    expect(a).toBeCloseTo(0.2366, 3);
    expect(b).toBeCloseTo(0.7634, 3);
    expect(wilson95(0, 10)[0]).toBe(0);
    expect(wilson95(0, 10)[1]).toBeCloseTo(0.2775, 3);
    expect(wilson95(10, 10)[1]).toBe(1);
    expect(wilson95(10, 10)[0]).toBeCloseTo(0.7225, 3);
    expect(wilson95(0, 0)).toEqual([NaN, NaN]);
  });
});

describe('evaluateBase', () => {
  it('fills every task x difficulty x method x split, with intervals, budgets and a table', async () => {
    const gpu = await testGpu();
    const progress: number[] = [];
    const ev = await evaluateBase(gpu, randomBase(), {
      tasks: ['lookup', 'relay', 'arith'], difficulties: [1, 2], evalSize: 3, seed: 5, onProgress: (_m, f) => progress.push(f),
    });
    expect(ev.version).toBe(1);
    expect(ev.splits).toEqual({ skyline: ['heldout', 'ood'], text: ['heldout'] });
    expect(ev.evalSize).toBe(3);
    expect(ev.seed).toBe(5);
    expect(ev.textBudget).toBe('auto');
    expect(ev.seconds).toBeGreaterThan(0);
    expect(ev.device.length).toBeGreaterThan(0);
    expect(ev.incomplete).toBeUndefined();
    expect(ev.rows).toHaveLength(3 * 2 * 3);
    expect(failedCells(ev)).toBe(0);
    for (const task of ['lookup', 'relay', 'arith'] as const) {
      for (const d of [1, 2]) {
        const keys = ev.rows.filter((r) => r.task === task && r.difficulty === d).map((r) => `${r.method}/${r.split}`);
        expect(keys.sort()).toEqual(['skyline/heldout', 'skyline/ood', 'text/heldout']);
      }
    }
    for (const r of ev.rows) {
      expect(r.error).toBeUndefined();
      expect(r.episodes).toBe(3);
      expect(r.accuracy).toBeCloseTo(r.correct / 3, 12);
      expect(r.ci95![0]).toBeLessThanOrEqual(r.accuracy!);
      expect(r.ci95![1]).toBeGreaterThanOrEqual(r.accuracy!);
      expect(r.validity).toBeGreaterThanOrEqual(0);
      expect(r.validity).toBeLessThanOrEqual(1);
      expect(r.chance).toBeCloseTo(makeTask(r.task, r.difficulty).chanceFor(r.split), 12);
      if (r.method === 'text') {
        expect(r.textBudget).toBe(autoTextBudget(r.task, r.difficulty, ['heldout'], 3, 5));
        expect(r.messageTokens).toBeGreaterThan(0);
      } else expect(r.textBudget).toBeUndefined();
    }
    // 'auto' covers the longest ideal message of the cell's episodes and its newline
    const longest = Math.max(...evalEpisodes(makeTask('relay', 2), { evalSize: 3, evalSeed: 5 }, 'heldout').flatMap((e) => e.messages.map((m) => m.length)));
    expect(autoTextBudget('relay', 2, ['heldout'], 3, 5)).toBe(longest + 1);
    expect(progress[progress.length - 1]).toBe(1);
    // the JSON round trip keeps it whole (no NaN)
    expect(JSON.parse(JSON.stringify(ev))).toEqual(ev);
    const table = formatBaseEvaluation(ev);
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/3 episodes per cell, seed 5, text budget auto/);
    expect(lines[1]).toMatch(/task\s+d\s+chance\s+skyline heldout \(95% CI\)\s+valid\s+skyline ood \(95% CI\)\s+valid\s+text heldout \(95% CI\)\s+valid\s+budget\s+msg tok\s+n/);
    expect(lines.filter((l) => /^(lookup|relay|arith)\s+[12]\s/.test(l))).toHaveLength(6);
  }, 120_000);

  it('gives the numbers of a plain Run of the same configuration', async () => {
    const gpu = await testGpu();
    const base = randomBase(4);
    const ev = await evaluateBase(gpu, base, { tasks: ['lookup'], difficulties: [1], evalSize: 4, seed: 2, textBudget: 6, splits: ['heldout'] });
    const engine = new MasEngine(gpu, base);
    try {
      for (const method of ['skyline', 'text'] as const) {
        const t = makeTask('lookup', 1);
        const run = new Run(engine, defaultRunConfig({
          topology: resolveTopology('preset', t, 0), task: 'lookup', difficulty: 1, method, modelId: base.id,
          steps: 0, batch: 4, seed: 2, evalSeed: 2, evalEvery: 0, evalSize: 4, textBudget: 6,
        }));
        try {
          const o = await run.evaluate('heldout');
          const row = ev.rows.find((r) => r.method === method && r.split === 'heldout')!;
          expect(row.accuracy).toBe(o.accuracy);
          expect(row.validity).toBe(o.validity);
          if (method === 'text') expect(row.textBudget).toBe(6);
        } finally {
          run.destroy();
        }
      }
    } finally {
      engine.destroy();
    }
  }, 120_000);

  it('keeps a failing cell as an error row and runs the others; a stop marks it incomplete', async () => {
    const gpu = await testGpu();
    const real = Run.prototype.evaluate;
    vi.spyOn(Run.prototype, 'evaluate').mockImplementation(function (this: Run, split, control) {
      if (this.task.name === 'relay' && this.spec.name === 'text') return Promise.reject(new Error('model pass: 47 ids for B*S = 52 rows'));
      return real.call(this, split, control);
    });
    const ev = await evaluateBase(gpu, randomBase(), { tasks: ['lookup', 'relay'], difficulties: [1], evalSize: 2, splits: ['heldout'] });
    expect(ev.rows).toHaveLength(4);
    expect(failedCells(ev)).toBe(1);
    const bad = ev.rows.find((r) => r.error)!;
    expect(bad).toMatchObject({ task: 'relay', method: 'text', split: 'heldout', episodes: 0, accuracy: null, ci95: null, validity: null, error: 'model pass: 47 ids for B*S = 52 rows' });
    expect(ev.rows.filter((r) => !r.error).every((r) => r.episodes === 2)).toBe(true);
    const table = formatBaseEvaluation(ev);
    expect(table).toMatch(/^relay\s+1\s.*error/m);
    expect(table).toContain('1 cell(s) failed:');
    expect(table).toContain('relay d1 text heldout: model pass: 47 ids');
    vi.restoreAllMocks();

    let calls = 0;
    const stopped = await evaluateBase(gpu, randomBase(), { tasks: ['lookup'], difficulties: [1, 2], evalSize: 2, splits: ['heldout'], textSplits: [], shouldStop: () => calls++ >= 1 });
    expect(stopped.rows).toHaveLength(1);
    expect(stopped.incomplete).toMatch(/stopped after 1 of 2/);
  }, 120_000);

  it('refuses bad options with the setting named; evaluateBaseOrError turns that into a stored error', async () => {
    const gpu = await testGpu();
    await expect(evaluateBase(gpu, randomBase(), { tasks: ['telepathy' as never] })).rejects.toThrow(/unknown task "telepathy"/);
    await expect(evaluateBase(gpu, randomBase(), { difficulties: [7] })).rejects.toThrow(/difficulty must be an integer in 1..5, got 7/);
    await expect(evaluateBase(gpu, randomBase(), { evalSize: 0 })).rejects.toThrow(/evalSize must be an integer/);
    await expect(evaluateBase(gpu, randomBase(), { textBudget: 100 })).rejects.toThrow(/textBudget must be 'auto' or an integer in 1..64/);
    const failed = await evaluateBaseOrError(gpu, randomBase(), { evalSize: 0 });
    expect(failed).toMatchObject({ version: 1, error: expect.stringMatching(/evalSize/) });
  });
});

describe('pretrain CLI', () => {
  const run = async (argv: string[]) => {
    const logs: string[] = [];
    const errs: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errs.push(a.join(' ')));
    const code = await commandPretrain(argv);
    vi.restoreAllMocks();
    return { code, out: logs.join('\n'), err: errs.join('\n') };
  };

  it('ends by evaluating and writes the table into training_args.json', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'base-eval-'));
    try {
      const r = await run(['--preset', 'tiny', '--steps', '2', '--batch', '2', '--out', dir, '--eval-size', '2', '--eval-tasks', 'lookup,relay,arith', '--eval-difficulties', '1']);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/held-out evaluation of the base: 2 episodes per cell/);
      expect(r.out).toMatch(/^lookup\s+1\s/m);
      expect(r.out).toMatch(/^relay\s+1\s/m);
      expect(r.out).toMatch(/^arith\s+1\s/m);
      const args = JSON.parse(await readFile(path.join(dir, 'training_args.json'), 'utf8'));
      expect(args.preset).toBe('tiny');
      const ev = args.evaluation as BaseEvaluation;
      expect(ev).toMatchObject({ version: 1, tasks: ['lookup', 'relay', 'arith'], difficulties: [1], evalSize: 2, seed: 1, textBudget: 'auto' });
      expect(ev.rows).toHaveLength(3 * 3);
      expect(ev.rows.every((x) => x.error === undefined)).toBe(true);
      expect(typeof ev.seconds).toBe('number');
      expect(typeof ev.device).toBe('string');
      // the checkpoint itself is there
      expect((await readFile(path.join(dir, 'model.safetensors'))).length).toBeGreaterThan(1000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('--no-eval skips it and says so; a failed evaluation still writes the checkpoint and reports the error', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'base-eval-'));
    try {
      const r = await run(['--preset', 'tiny', '--steps', '1', '--batch', '2', '--out', dir, '--no-eval']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/evaluation skipped \(--no-eval\)/);
      expect(JSON.parse(await readFile(path.join(dir, 'training_args.json'), 'utf8')).evaluation).toBeUndefined();

      // a bad evaluation setting is refused before pretraining, naming the flag
      await expect(commandPretrain(['--preset', 'tiny', '--steps', '1', '--out', dir, '--eval-difficulties', '9'])).rejects.toThrow(/--eval-\*: difficulty must be an integer in 1..5, got 9/);
      await expect(commandPretrain(['--preset', 'tiny', '--steps', '1', '--out', dir, '--eval-text-budget', 'lots'])).rejects.toThrow(/--eval-text-budget takes whole numbers, got 'lots'/);

      // the evaluation as a whole fails (here: freeing its engine): exit 1, the error stored, the checkpoint kept
      const destroy = MasEngine.prototype.destroy;
      const bad = await (async () => {
        const logs: string[] = [];
        const errs: string[] = [];
        vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
        vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errs.push(a.join(' ')));
        vi.spyOn(MasEngine.prototype, 'destroy').mockImplementation(function (this: MasEngine) {
          destroy.call(this);
          throw new Error('device lost while freeing');
        });
        const code = await commandPretrain(['--preset', 'tiny', '--steps', '1', '--batch', '2', '--out', dir, '--force', '--eval-size', '1', '--eval-tasks', 'lookup', '--eval-difficulties', '1']);
        vi.restoreAllMocks();
        return { code, err: errs.join('\n') };
      })();
      expect(bad.code).toBe(1);
      expect(bad.err).toMatch(/evaluation failed: device lost while freeing/);
      expect(bad.err).toContain(`the checkpoint is written to ${dir}`);
      const args = JSON.parse(await readFile(path.join(dir, 'training_args.json'), 'utf8'));
      expect(args.evaluation).toMatchObject({ version: 1, error: 'device lost while freeing' });
      expect((await readFile(path.join(dir, 'model.safetensors'))).length).toBeGreaterThan(1000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('the worker\'s pretrain', () => {
  it('ends with the evaluation, stored in the entry\'s provenance and exported in training_args.json', async () => {
    const entry = await nodeGpuEntry();
    const engine = new Engine({ gpu: () => entry, store: memoryStore(), fetchAsset: () => Promise.reject(new Error('no assets in this test')) });
    try {
      const progress: RunProgress[] = [];
      const saved = await engine.pretrain(
        { name: 'evaluated', preset: 'tiny', steps: 1, seed: 1, batch: 2, lr: 3e-3, evaluation: { evalSize: 1, tasks: ['lookup', 'arith'], difficulties: [1] } },
        (p) => void progress.push(p),
      );
      expect(progress.some((p) => p.state === 'running' && /^evaluating lookup d1 skyline \(1\/4\)/.test(p.message ?? ''))).toBe(true);
      expect(progress[progress.length - 1].state).toBe('done');
      const read = readBaseEvaluation(saved.provenance);
      expect(read.kind).toBe('ok');
      if (read.kind !== 'ok') return;
      expect(read.ev).toMatchObject({ version: 1, tasks: ['lookup', 'arith'], difficulties: [1], evalSize: 1 });
      expect(read.ev.rows).toHaveLength(2 * 3);
      expect(read.ev.rows.every((r) => r.error === undefined)).toBe(true);
      // listed with it, and exported as training_args.json
      const listed = (await engine.listModels()).find((m) => m.id === saved.id)!;
      expect(readBaseEvaluation(listed.provenance).kind).toBe('ok');
      const zip = unzip((await engine.exportModel(saved.id)).bytes);
      const args = JSON.parse(new TextDecoder().decode(zip.get('training_args.json')!));
      expect(args.evaluation.rows).toHaveLength(6);

      // evaluation: false stores none, and the library says so
      const plain = await engine.pretrain({ name: 'plain', preset: 'tiny', steps: 1, seed: 1, batch: 2, lr: 3e-3, evaluation: false }, () => undefined);
      expect(readBaseEvaluation(plain.provenance)).toEqual({ kind: 'none' });
      expect(readBaseEvaluation({ evaluation: { version: 1, error: 'boom', seconds: 0, device: 'x' } })).toEqual({ kind: 'error', message: 'boom' });
      expect(readBaseEvaluation({ evaluation: 'garbage' }).kind).toBe('error');
    } finally {
      (await engine.device()).dispose();
    }
  }, 180_000);
});

describe('the library\'s evaluation table', () => {
  it('renders task x difficulty cells (skyline · text), the failures, and says when there is none', async () => {
    const gpu = await testGpu();
    const real = Run.prototype.evaluate;
    vi.spyOn(Run.prototype, 'evaluate').mockImplementation(function (this: Run, split, control) {
      if (this.task.name === 'relay' && this.spec.name === 'text') return Promise.reject(new Error('broken'));
      return real.call(this, split, control);
    });
    const ev = await evaluateBase(gpu, randomBase(), { tasks: ['lookup', 'relay'], difficulties: [1, 2], evalSize: 1, splits: ['heldout'] });
    vi.restoreAllMocks();
    const provenance = JSON.parse(JSON.stringify({ preset: 'x', evaluation: ev })) as Record<string, unknown>;
    const html = renderToStaticMarkup(createElement(BaseEvalTable, { provenance }));
    expect(html).toContain('data-testid="model-eval"');
    expect(html).toContain('1 episode per cell');
    expect(html).toContain('2 failed');
    expect(html).toMatch(/<th>d1<\/th><th>d2<\/th>/);
    expect(html).toMatch(/data-testid="eval-lookup-d2"[^>]*>\d\.\d\d · \d\.\d\d</);
    expect(html).toMatch(/data-testid="eval-relay-d1"[^>]*>\d\.\d\d · err</);
    expect(html).toContain('text heldout: failed (broken)');
    expect(renderToStaticMarkup(createElement(BaseEvalNote, { provenance }))).toBe('');

    expect(renderToStaticMarkup(createElement(BaseEvalTable, { provenance: { preset: 'x' } }))).toBe('');
    expect(renderToStaticMarkup(createElement(BaseEvalNote, { provenance: { preset: 'x' } }))).toContain('No held-out evaluation stored with this base.');
    expect(renderToStaticMarkup(createElement(BaseEvalNote, { provenance: { cancelled: true } }))).toContain('stopped early');
    expect(renderToStaticMarkup(createElement(BaseEvalNote, { provenance: { evaluation: { version: 1, error: 'lost', seconds: 1, device: 'd' } } }))).toContain('Evaluation failed: lost');
  }, 60_000);
});
