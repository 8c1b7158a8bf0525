// Issue 21 items 4 and 5 below the page: the Runs table's rows, sorting and filters; a run's notes and
// tags kept by the library (through an autosave that knows none), exported and read back, bad ones
// refused; the config diff of several runs, labels that tell them apart, and curves on one x axis.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readFolder } from '../src/cli/files';
import { presetForTask } from '../src/mas/topology';
import { defaultRunConfig } from '../src/mas/run';
import { decodeCheckpoint } from '../src/storage/checkpoint';
import { RECORD_FILE, recordJson, type RunEntry } from '../src/storage/records';
import { memoryStore } from '../src/storage/library';
import { expectedAdapterTensors, type LoraAdapterConfig } from '../src/storage/peft';
import { configDiff, flattenConfig, overlayCurve, runLabels, secondsAt } from '../src/storage/runs-compare';
import { filterRuns, parseNumberFilter, parseTags, readNotesAndTags, runsRow, sortRuns, type RunsRow } from '../src/storage/runs-table';
import { zipStore } from '../src/storage/zip';
import { makeTask } from '../src/tasks/tasks';
import type { AdapterData, RunRecord } from '../src/worker/api';
import { Engine } from '../src/worker/engine';

function entry(over: Partial<RunEntry>): RunEntry {
  return {
    id: 'r', kind: 'run', name: 'n', createdAt: 0, updatedAt: 0, status: 'done', task: 'lookup', difficulty: 1, method: 'diffmas', baseModelId: 'builtin:tiny',
    seed: 1, stepsDone: 10, totalSteps: 10, heldoutAccuracy: null, size: 1, ...over,
  };
}

const names = new Map([['builtin:tiny', 'tiny (shipped)'], ['builtin:toy', 'toy (shipped)']]);
const rowsOf = (es: RunEntry[]) => es.map((e) => runsRow(e, (id) => names.get(id)));
const ids = (rows: RunsRow[]) => rows.map((r) => r.entry.id);

// four runs and a comparison, newest first as the library lists them
const ENTRIES = rowsOf([
  entry({ id: 'a', createdAt: 5000, method: 'diffmas', seed: 3, heldoutAccuracy: 0.5, stepsDone: 200, tags: ['baseline', 'lr'] }),
  entry({ id: 'b', createdAt: 4000, method: 'text', task: 'arith', difficulty: 2, seed: 1, heldoutAccuracy: 0.125, stepsDone: 0, baseModelId: 'builtin:toy' }),
  entry({ id: 'c', createdAt: 3000, method: 'latentmas', seed: 2, heldoutAccuracy: null, stepsDone: 12, tags: ['Baseline'] }),
  entry({ id: 'd', createdAt: 2000, method: 'diffmas', seed: 10, heldoutAccuracy: 0.5, stepsDone: 50, baseModelId: 'model:gone', baseName: 'my base' }),
  entry({ id: 'e', kind: 'compare', createdAt: 1000, method: 'single', methods: ['single', 'diffmas'], seeds: [4, 5, 6], heldoutAccuracy: 0.9, stepsDone: 0, totalSteps: 30 }),
]);

describe('the Runs table as data', () => {
  it('a row shows the base by its library name (or the name the record kept), a comparison its methods and seeds', () => {
    expect(ENTRIES[0]).toMatchObject({ methods: ['diffmas'], task: 'lookup d1', base: 'tiny (shipped)', seeds: [3], heldout: 0.5, steps: 200, tags: ['baseline', 'lr'] });
    expect(ENTRIES[1].task).toBe('arith d2');
    expect(ENTRIES[3].base).toBe('my base');
    expect(ENTRIES[4]).toMatchObject({ methods: ['single', 'diffmas'], seeds: [4, 5, 6], tags: [] });
    expect(runsRow(entry({ baseModelId: 'model:x' }), () => undefined).base).toBe('model:x');
    // a comparison keeps no step count: done, its trained methods did its steps each; under way, none is claimed
    expect(ENTRIES[4].steps).toBe(30);
    expect(runsRow(entry({ kind: 'compare', status: 'running', stepsDone: 0, totalSteps: 30 }), () => undefined).steps).toBe(0);
    const untrained = entry({ kind: 'compare', methods: ['single', 'text'], stepsDone: 0, totalSteps: 30 });
    expect(runsRow(untrained, () => undefined, (m) => m === 'diffmas').steps).toBe(0);
    expect(runsRow({ ...untrained, methods: ['single', 'diffmas'] }, () => undefined, (m) => m === 'diffmas').steps).toBe(30);
  });

  it('sorts by each column both ways; ties keep the listed order and empty values go last either way', () => {
    expect(ids(sortRuns(ENTRIES, 'heldout', 'desc'))).toEqual(['e', 'a', 'd', 'b', 'c']);
    expect(ids(sortRuns(ENTRIES, 'heldout', 'asc'))).toEqual(['b', 'a', 'd', 'e', 'c']);
    expect(ids(sortRuns(ENTRIES, 'seed', 'asc'))).toEqual(['b', 'c', 'a', 'e', 'd']); // numerically: 10 after 4
    expect(ids(sortRuns(ENTRIES, 'steps', 'desc'))).toEqual(['a', 'd', 'e', 'c', 'b']);
    expect(ids(sortRuns(ENTRIES, 'date', 'asc'))).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(ids(sortRuns(ENTRIES, 'method', 'asc'))).toEqual(['a', 'd', 'c', 'e', 'b']);
    expect(ids(sortRuns(ENTRIES, 'task', 'desc'))).toEqual(['a', 'c', 'd', 'e', 'b']);
    expect(ids(sortRuns(ENTRIES, 'base', 'asc'))).toEqual(['d', 'a', 'c', 'e', 'b']);
    expect(ids(sortRuns(ENTRIES, 'tags', 'asc'))).toEqual(['c', 'a', 'b', 'd', 'e']);
    expect(ids(sortRuns(ENTRIES, 'tags', 'desc'))).toEqual(['a', 'c', 'b', 'd', 'e']);
    expect(ENTRIES.map((r) => r.entry.id)).toEqual(['a', 'b', 'c', 'd', 'e']); // not sorted in place
  });

  it('reads numeric filters: a value, comparisons, a range; and says why one cannot be read', () => {
    const t = (s: string, v: number) => {
      const f = parseNumberFilter(s);
      if ('error' in f) throw new Error(f.error);
      return f.test(v);
    };
    expect([t('7', 7), t('=7', 7), t('7', 7.5)]).toEqual([true, true, false]);
    expect([t('>0.5', 0.5), t('>=0.5', 0.5), t('<3', 2), t('<=3', 3), t(' > 1e2 ', 101)]).toEqual([false, true, true, true, true]);
    expect([t('2..5', 2), t('2..5', 5), t('2..5', 5.1), t('50%', 50)]).toEqual([true, true, false, true]);
    expect(parseNumberFilter('abc')).toEqual({ error: "'abc' is not a number, a comparison (>0.5, <=100) or a range (2..5)" });
    expect(parseNumberFilter('5..2')).toEqual({ error: "'5..2': the range's first end is above its second" });
    expect(parseNumberFilter('1..x')).toEqual({ error: "'1..x' is not a range like 2..5" });
  });

  it('filters by every column; several filters together; a bad filter is named and filters nothing', () => {
    const f = (filters: Parameters<typeof filterRuns>[1]) => ids(filterRuns(ENTRIES, filters).rows);
    expect(f({ method: 'DIFF' })).toEqual(['a', 'd', 'e']); // a comparison matches by any of its methods
    expect(f({ task: 'arith' })).toEqual(['b']);
    expect(f({ base: 'toy' })).toEqual(['b']);
    expect(f({ seed: '5' })).toEqual(['e']);
    expect(f({ seed: '2..3' })).toEqual(['a', 'c']);
    expect(f({ heldout: '>=50' })).toEqual(['a', 'd', 'e']); // in percent; a run never evaluated passes none
    expect(f({ heldout: '12.5' })).toEqual(['b']);
    expect(f({ steps: '<20' })).toEqual(['b', 'c']);
    expect(f({ tags: 'baseline' })).toEqual(['a', 'c']); // case-insensitive, whole tags
    expect(f({ tags: 'baseline, lr' })).toEqual(['a']);
    expect(f({ tags: 'base' })).toEqual([]);
    expect(f({ method: 'diffmas', heldout: '50', steps: '>100' })).toEqual(['a']);
    expect(f({ date: '   ' })).toEqual(['a', 'b', 'c', 'd', 'e']);
    const d = new Date(5000);
    expect(f({ date: `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}` })).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(f({ date: '2031-' })).toEqual([]);
    const bad = filterRuns(ENTRIES, { seed: 'x', method: 'text' });
    expect(ids(bad.rows)).toEqual(['b']);
    expect(bad.errors).toEqual({ seed: "'x' is not a number, a comparison (>0.5, <=100) or a range (2..5)" });
  });

  it('parses tags as typed: commas or spaces, duplicates dropped; refuses what is not a tag', () => {
    expect(parseTags(' baseline, lr-sweep  rank8,Baseline ')).toEqual({ tags: ['baseline', 'lr-sweep', 'rank8'] });
    expect(parseTags('')).toEqual({ tags: [] });
    expect(parseTags('x'.repeat(33))).toEqual({ error: `the tag '${'x'.repeat(33)}…' is longer than 32 characters` });
    expect(parseTags(Array.from({ length: 17 }, (_, i) => `t${i}`).join(' '))).toEqual({ error: '17 tags: a run holds at most 16' });
  });

  it('reads notes and tags back from a record, refusing wrong types and sizes with the reason', () => {
    expect(readNotesAndTags({}, 'f')).toEqual({});
    expect(readNotesAndTags({ notes: 'lr too high?', tags: ['a', 'b'] }, 'f')).toEqual({ notes: 'lr too high?', tags: ['a', 'b'] });
    expect(() => readNotesAndTags({ notes: 3 }, 'f')).toThrow('f: notes is a number, not text');
    expect(() => readNotesAndTags({ notes: null }, 'f')).toThrow('f: notes is null, not text');
    expect(() => readNotesAndTags({ notes: 'x'.repeat(4001) }, 'f')).toThrow('f: notes are 4001 characters, more than the 4000 a run keeps');
    expect(() => readNotesAndTags({ tags: 'a,b' }, 'f')).toThrow('f: tags is a string, not a list of words');
    expect(() => readNotesAndTags({ tags: ['a', 2] }, 'f')).toThrow('f: tag 2 is a number, not a word');
    expect(() => readNotesAndTags({ tags: ['a b'] }, 'f')).toThrow("f: the tag 'a b' holds a comma or a space");
    expect(() => readNotesAndTags({ tags: ['a', 'A'] }, 'f')).toThrow('f: a tag is listed twice');
  });
});

describe('several runs side by side', () => {
  const base = { task: 'lookup', lr: 0.01, lora: { r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] }, topology: { agents: [{ id: 'a0', name: 'table' }], edges: [] } };

  it('flattens a configuration to dotted fields, lists of plain values as one', () => {
    expect([...flattenConfig(base)]).toEqual([
      ['task', 'lookup'], ['lr', '0.01'], ['lora.r', '2'], ['lora.alpha', '4'], ['lora.targets', 'q_proj,v_proj'],
      ['topology.agents.0.id', 'a0'], ['topology.agents.0.name', 'table'], ['topology.edges', '(none)'],
    ]);
  });

  it('the diff holds only the fields that differ, an optional field one lacks included', () => {
    const b = { ...base, lr: 0.003, lora: { ...base.lora, targets: ['q_proj'] } };
    const c = { ...base, evalSeed: 5, topology: { ...base.topology, agents: [{ id: 'a0', name: 'reader' }] } };
    expect(configDiff([base, b, c])).toEqual([
      { path: 'lr', values: ['0.01', '0.003', '0.01'] },
      { path: 'lora.targets', values: ['q_proj,v_proj', 'q_proj', 'q_proj,v_proj'] },
      { path: 'topology.agents.0.name', values: ['table', 'table', 'reader'] },
      { path: 'evalSeed', values: [null, null, '5'] },
    ]);
    expect(configDiff([base, structuredClone(base)])).toEqual([]);
    expect(configDiff([base])).toEqual([]);
  });

  it('labels repeated names by the fields that split them, or by position', () => {
    const diff = configDiff([base, { ...base, lr: 0.003 }, { ...base, lr: 0.003, seed: 2 }]);
    expect(runLabels(['x', 'x', 'y'], diff)).toEqual(['x (lr 0.01)', 'x (lr 0.003)', 'y']);
    expect(runLabels(['x', 'x'], [])).toEqual(['x (#1)', 'x (#2)']);
  });

  it('puts a curve on steps or training seconds (the mean pace), log10 on a log axis, and counts what it cannot draw', () => {
    const rec = { trainSeconds: 8, stepsDone: 4, curves: { steps: [1, 2, 3, 4], loss: [3, NaN, 1, 0], evals: [{ step: 2, loss: 2, accuracy: 0 }, { step: 4, loss: null, accuracy: 0.5 }] } };
    expect(secondsAt(rec, 3)).toBe(6);
    expect(secondsAt({ trainSeconds: 5, stepsDone: 0 }, 0)).toBe(0);
    expect(overlayCurve(rec, 'loss', 'step', false)).toEqual({ xs: [1, 3, 4], ys: [3, 1, 0], dropped: 1 });
    expect(overlayCurve(rec, 'loss', 'time', true)).toEqual({ xs: [2, 6], ys: [Math.log10(3), 0], dropped: 2 });
    expect(overlayCurve(rec, 'heldoutAccuracy', 'step', false)).toEqual({ xs: [2, 4], ys: [0, 0.5], dropped: 0 });
    expect(overlayCurve(rec, 'heldoutLoss', 'time', false)).toEqual({ xs: [4], ys: [2], dropped: 1 });
  });
});

// ------------------------------------------------------------ the library keeps notes and tags

const tinyConfig = decodeCheckpoint(await readFolder('public/models/tiny')).config;

function adapter(agent: string, fill: number): AdapterData {
  const config: LoraAdapterConfig = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'], lora_dropout: 0, bias: 'none',
    fan_in_fan_out: false, base_model_name_or_path: 'builtin:tiny', layers_to_transform: null, inference_mode: true,
  };
  const tensors = new Map([...expectedAdapterTensors(config, tinyConfig)].map(([n, s]) => [n, new Float32Array(s[0] * s[1]).fill(n.includes('lora_B') ? fill : 0.01)]));
  return { agent, config, tensors };
}

function record(over: Partial<RunRecord> = {}): RunRecord {
  const config = defaultRunConfig({ topology: presetForTask(makeTask('lookup', 1)), modelId: 'builtin:tiny', steps: 4, batch: 2, evalSize: 3, lora: { r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] } });
  return {
    id: 'run:notes-1', kind: 'run', name: 'lookup d1 · diffmas · seed 1', createdAt: 1000, updatedAt: 2000, status: 'done', config, baseModelId: 'builtin:tiny',
    curves: { steps: [1, 2, 3, 4], loss: [3, 2.5, 2, 1.8], evals: [{ step: 4, loss: 2, accuracy: 0.3 }] },
    evalRows: null, inspections: [],
    adapters: { initial: [adapter('a0', 0), adapter('a1', 0)], final: [adapter('a0', 0.5), adapter('a1', 0.25)], finalStep: 4, saved: [], info: null },
    wallSeconds: 12, trainSeconds: 10, stepsDone: 4, ...over,
  };
}

const engine = () => new Engine({ store: memoryStore(), fetchAsset: (p) => readFile(`public/${p}`).then((b) => new Uint8Array(b)) });

describe('notes and tags in the library', () => {
  it('are listed with the run, kept through a save that knows none (an autosave, a continued run), and cleared only when written empty', async () => {
    const e = engine();
    await e.saveRun(record());
    expect((await e.listRuns())[0].tags).toBeUndefined();
    await e.saveRun({ ...(await e.runRecord('run:notes-1')), notes: 'first try', tags: ['baseline'] });
    expect((await e.listRuns())[0]).toMatchObject({ notes: 'first try', tags: ['baseline'] });
    await e.saveRun(record({ stepsDone: 4, updatedAt: 3000 })); // the live run's recorder knows no notes
    expect((await e.runRecord('run:notes-1'))).toMatchObject({ notes: 'first try', tags: ['baseline'], updatedAt: 3000 });
    await e.saveRun({ ...(await e.runRecord('run:notes-1')), notes: '', tags: [] });
    const back = await e.runRecord('run:notes-1');
    expect([back.notes, back.tags]).toEqual(['', []]);
    expect((await e.listRuns())[0].notes).toBeUndefined();
  });

  it('travel in the exported record and come back with an import; wrong types are refused naming the field, nothing stored', async () => {
    const e = engine();
    await e.listModels();
    const rec = record({ notes: 'lr 0.01 diverged at step 3\nsee run 2', tags: ['sweep', 'lr'] });
    await e.saveRun(rec);
    const files = new Map((await e.runBundle(rec.id)).map((f) => [f.name, f.bytes]));
    const json = recordJson(await e.runRecord(rec.id));
    expect(JSON.parse(json)).toMatchObject({ notes: rec.notes, tags: rec.tags });
    files.set(RECORD_FILE, new TextEncoder().encode(json));
    await e.deleteRun(rec.id);
    await e.importFiles([{ name: 'run.zip', bytes: zipStore(files) }]);
    expect(await e.runRecord(rec.id)).toMatchObject({ notes: rec.notes, tags: rec.tags });
    expect((await e.listRuns())[0]).toMatchObject({ notes: rec.notes, tags: rec.tags });
    await e.deleteRun(rec.id);
    for (const [bad, why] of [
      [{ tags: 'sweep' }, 'results/record.json: tags is a string, not a list of words'],
      [{ notes: 42 }, 'results/record.json: notes is a number, not text'],
      [{ tags: ['ok', null] }, 'results/record.json: tag 2 is null, not a word'],
    ] as const) {
      files.set(RECORD_FILE, new TextEncoder().encode(JSON.stringify({ ...JSON.parse(json), ...bad })));
      await expect(e.importFiles([{ name: 'run.zip', bytes: zipStore(files) }])).rejects.toThrow(`this run bundle cannot be read: ${why}`);
    }
    expect(await e.listRuns()).toEqual([]);
  });
});
