// `experiment --tensorboard DIR` (src/cli/tensorboard-out.ts): one run folder per (method, seed)
// whose event file holds exactly what the JSON report says (every loss, the learning rate of the
// run's schedule, the evaluations and controls at the final step, the config); a logdir that would
// mix runs or collide with another output is refused before any GPU work, and nothing is written.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainHyperOf } from '../src/mas/run-data';
import type { ExperimentReport, RunConfig } from '../src/mas/run-types';
import { lrAt } from '../src/model/train';
import { readEventFile, scalarsByTag } from '../src/storage/tensorboard-read';
import { cli } from './cli-helpers';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'tensorboard-cli-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const f32 = (x: number) => Math.fround(x);
const small = ['--preset', 'tiny', '--steps', '3', '--batch', '2', '--eval-size', '2', '--quiet'];

describe('experiment --tensorboard', () => {
  it('writes DIR/<method>/seed<k>/events... holding the report\u2019s numbers', { timeout: 600_000 }, async () => {
    const dir = path.join(work, 'logs');
    const json = path.join(work, 'report.json');
    const r = await cli(['experiment', ...small, '--seeds', '1', '--methods', 'single,diffmas', '--controls', 'zero,shuffle', '--json', json, '--tensorboard', dir]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(await readFile(json, 'utf8')) as ExperimentReport;
    expect((await readdir(dir)).sort()).toEqual(['diffmas', 'single']);
    for (const method of ['single', 'diffmas'] as const) {
      const folder = path.join(dir, method, 'seed1');
      const names = await readdir(folder);
      expect(names).toHaveLength(1);
      expect(names[0]).toMatch(new RegExp(`^events\\.out\\.tfevents\\.\\d{10}\\.[A-Za-z0-9._-]+\\.${process.pid}$`));
      const events = readEventFile(new Uint8Array(await readFile(path.join(folder, names[0]))));
      expect(events[0].fileVersion).toBe('brain.Event:2');
      const text = events[1].values[0];
      expect(text).toMatchObject({ tag: 'config/text_summary', pluginName: 'text' });
      const config = JSON.parse(text.tensor!.strings[0].replace(/^```json\n/, '').replace(/\n```$/, '')) as RunConfig;
      expect(config).toMatchObject({ task: 'lookup', method, seed: 1, steps: 3, batch: 2, evalSize: 2 });
      const s = scalarsByTag(events);
      const losses = report.curves?.find((c) => c.method === method && c.seed === 1)?.losses ?? [];
      const last = method === 'diffmas' ? 3 : 0;
      expect(losses.length).toBe(last);
      expect(s.get('train/loss') ?? []).toEqual(losses.map((l, i) => [i + 1, f32(l)]));
      expect(s.get('train/lr') ?? []).toEqual(losses.map((_, i) => [i + 1, f32(lrAt(i + 1, trainHyperOf(config)))]));
      const rows = report.rows.filter((x) => x.method === method);
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        expect(s.get(`eval/${row.split}/accuracy`)).toEqual([[last, f32(row.accuracy)]]);
        if (row.loss !== undefined) expect(s.get(`eval/${row.split}/loss`)).toEqual([[last, f32(row.loss)]]);
      }
      const controls = report.controls.filter((c) => c.method === method);
      expect(controls.length).toBe(method === 'diffmas' ? 2 : 0);
      for (const c of controls) expect(s.get(`control/${c.control}/heldout/accuracy`)).toEqual([[last, f32(c.accuracy)]]);
      expect(events.map((e) => e.step)).toEqual([...events.map((e) => e.step)].sort((a, b) => a - b));
    }
    // a second experiment into the same logdir with other seeds adds its run folders beside
    const again = await cli(['experiment', ...small, '--seeds', '2,3', '--methods', 'single', '--no-controls', '--tensorboard', dir]);
    expect(again.err).toBe('');
    expect(again.code).toBe(0);
    expect((await readdir(path.join(dir, 'single'))).sort()).toEqual(['seed1', 'seed2', 'seed3']);
  });

  it('refuses, before any GPU work, a run folder already there, a file, another output\u2019s path and /proc', async () => {
    const dir = path.join(work, 'taken');
    await mkdir(path.join(dir, 'diffmas', 'seed1'), { recursive: true });
    const file = path.join(work, 'a-file');
    await writeFile(file, 'x');
    const cases: [string[], RegExp][] = [
      [['--tensorboard', dir], /--tensorboard .*taken already holds diffmas\/seed1; choose another folder or remove them/],
      [['--tensorboard', file], /--tensorboard .*a-file exists and is a file, not a folder/],
      [['--tensorboard', path.join(work, 'same'), '--export-run', path.join(work, 'same')], /--tensorboard .*same is also the path of --export-run/],
      [['--tensorboard', path.join(work, 'r.json'), '--json', path.join(work, 'r.json')], /is also the path of --json/],
      [['--tensorboard', '/proc/tb'], /\/proc is a virtual file system/],
    ];
    for (const [extra, message] of cases) {
      // a model that does not exist: a refusal that comes first costs no loading, let alone training
      const r = await cli(['experiment', '--model', path.join(work, 'no-model'), '--methods', 'diffmas', '--seeds', '1', ...extra]);
      expect(r.code, extra.join(' ')).not.toBe(0);
      expect(r.err, extra.join(' ')).toMatch(message);
    }
    expect(await readdir(path.join(dir, 'diffmas', 'seed1'))).toEqual([]);
    expect((await readdir(work)).filter((n) => n === 'same' || n === 'r.json')).toEqual([]);
  });
});
