// Issue 11, the page as a notebook, below the page: run records in the library (saved, listed,
// reopened, deleted, rebuilt), the page's run bundle made from a stored record (no GPU: after a
// reload there is no run), one reader for the comparison reports the CLI and the page write, a
// re-imported file recognised, and the control finding that says nothing when there is nothing.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readFolder } from '../src/cli/files';
import { findings, summarize } from '../src/mas/experiment';
import { presetForTask } from '../src/mas/topology';
import { defaultRunConfig } from '../src/mas/run';
import { decodeCheckpoint, encodeCheckpoint } from '../src/storage/checkpoint';
import { RECORD_FILE, recordJson } from '../src/storage/records';
import { Library, LibraryIndexError, memoryStore } from '../src/storage/library';
import { encodeAdapter, expectedAdapterTensors, type LoraAdapterConfig } from '../src/storage/peft';
import { readExperimentReport, reportCsv, reportJson } from '../src/storage/report';
import { readRunBundle } from '../src/storage/run-bundle';
import { unzip, zipStore } from '../src/storage/zip';
import { makeTask } from '../src/tasks/tasks';
import type { AdapterData, ExperimentReport, RunRecord } from '../src/worker/api';
import { Engine } from '../src/worker/engine';

const TINY = 'public/models/tiny';
const tinyConfig = decodeCheckpoint(await readFolder(TINY)).config;

function adapter(agent: string, fill: number): AdapterData {
  const config: LoraAdapterConfig = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], lora_dropout: 0, bias: 'none',
    fan_in_fan_out: false, base_model_name_or_path: 'builtin:tiny', layers_to_transform: null, inference_mode: true,
  };
  const tensors = new Map([...expectedAdapterTensors(config, tinyConfig)].map(([n, s]) => [n, new Float32Array(s[0] * s[1]).fill(n.includes('lora_B') ? fill : 0.01)]));
  return { agent, config, tensors };
}

function record(over: Partial<RunRecord> = {}): RunRecord {
  const config = defaultRunConfig({ topology: presetForTask(makeTask('lookup', 1)), modelId: 'builtin:tiny', steps: 4, batch: 2, evalSize: 3, lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } });
  return {
    id: 'run:test-1', kind: 'run', name: 'lookup d1 · diffmas · seed 1', createdAt: 1000, updatedAt: 2000, status: 'done', config, baseModelId: 'builtin:tiny',
    curves: { steps: [1, 2, 3, 4], loss: [3, 2.5, 2, 1.8], evals: [{ step: 2, loss: 2.4, accuracy: 0.1 }, { step: 4, loss: 2, accuracy: 0.3 }] },
    evalRows: [{ method: 'diffmas', split: 'heldout', accuracy: 1 / 3, validity: 1, entropy: 0.5, episodes: 3, messageFloats: 10, messageTokens: 0, ci95: [0.06, 0.79] }],
    inspections: [],
    adapters: { initial: [adapter('a0', 0), adapter('a1', 0)], final: [adapter('a0', 0.5), adapter('a1', 0.25)], finalStep: 4, saved: [], info: null },
    wallSeconds: 12, trainSeconds: 10, stepsDone: 4,
    ...over,
  };
}

const engine = () =>
  new Engine({ store: memoryStore(), fetchAsset: (p) => readFile(`public/${p}`).then((b) => new Uint8Array(b)) });

describe('run records', () => {
  it('are saved, listed with their line, rewritten in place, reopened and deleted', async () => {
    const lib = new Library(memoryStore(), async () => ({ usage: null, quota: null }));
    expect(await lib.listRuns()).toEqual([]);
    const e1 = await lib.saveRun(record({ status: 'running', stepsDone: 2 }));
    expect(e1).toMatchObject({ id: 'run:test-1', status: 'running', stepsDone: 2, totalSteps: 4, method: 'diffmas', task: 'lookup', heldoutAccuracy: 1 / 3 });
    expect(e1.size).toBeGreaterThan(1000);
    await lib.saveRun(record());
    const list = await lib.listRuns();
    expect(list).toHaveLength(1);
    expect(list[0].status).toBe('done');
    const back = await lib.runRecord('run:test-1');
    expect(back.curves.evals).toEqual([{ step: 2, loss: 2.4, accuracy: 0.1 }, { step: 4, loss: 2, accuracy: 0.3 }]);
    expect(back.adapters.final[0].tensors).toBeInstanceOf(Map);
    await lib.removeRun('run:test-1');
    expect(await lib.listRuns()).toEqual([]);
    await expect(lib.runRecord('run:test-1')).rejects.toThrow('there is no run with id "run:test-1" in the library');
    await expect(lib.removeRun('run:test-1')).rejects.toThrow('there is no run with id "run:test-1" to delete');
  });

  it('an unreadable runs index is refused, never taken for an empty one, and rebuilt from the records', async () => {
    const kv = memoryStore();
    const lib = new Library(kv, async () => ({ usage: null, quota: null }));
    await lib.saveRun(record());
    await kv.set('library:runs', { version: 9, runs: [] });
    await expect(lib.listRuns()).rejects.toThrow(LibraryIndexError);
    await expect(lib.saveRun(record({ id: 'run:other' }))).rejects.toThrow(/newer version of the playground \(version 9/);
    const r = await lib.rebuildIndex();
    expect(r.skipped).toEqual([]);
    expect((await lib.listRuns()).map((x) => x.id)).toEqual(['run:test-1']);
  });
});

describe('the page\'s run bundle, from a stored record', () => {
  it('holds the record\'s adapters, the base, the episodes and batches, and reads back', async () => {
    const e = engine();
    await e.listModels();
    await e.saveRun(record());
    const files = new Map((await e.runBundle('run:test-1')).map((f) => [f.name, f.bytes]));
    const b = readRunBundle(files);
    expect(b.json.createdBy).toBe('page');
    expect(b.json.training.stepsDone).toBe(4);
    expect(b.json.training.losses).toEqual([3, 2.5, 2, 1.8]);
    expect(b.json.results.heldout).toHaveLength(2);
    expect(b.json.results.evaluation[0].ci95).toEqual([0.06, 0.79]);
    expect(Object.keys(b.adapters).sort()).toEqual(['a0', 'a1']);
    expect(decodeCheckpoint(b.base).config.hidden_size).toBe(32);
    expect(b.batches).toHaveLength(4);
    expect(b.episodes.heldout).toHaveLength(3);
  });

  it('says which base it needs when the base is gone', async () => {
    const e = engine();
    await e.listModels();
    await e.saveRun(record({ baseModelId: 'model:gone' }));
    await expect(e.runBundle('run:test-1')).rejects.toThrow('the base model "model:gone" of this run is no longer in the library: import it again to export the run');
    // by the name the record keeps, when it keeps one (never the library's id)
    await e.saveRun(record({ id: 'run:test-2', baseModelId: 'model:gone', baseName: 'my base' }));
    await expect(e.runBundle('run:test-2')).rejects.toThrow("the base model 'my base' of this run is no longer in the library");
  });

  it('an adapter set of a base that is not in the library says which base it needs', async () => {
    const e = engine();
    await e.listModels();
    const files = encodeAdapter(adapter('a0', 0.1), tinyConfig);
    const { id } = await e.importFiles([{ name: 'x.zip', bytes: zipStore(files) }], 'builtin:tiny');
    // the entry now names a base the library does not have
    const entry = (await e.listAdapters())[0];
    await e.library.saveAdapters([{ entry: { ...entry, baseModelId: 'model:elsewhere' }, files: await e.library.files('adapter', id) }]);
    await expect(e.adapterSet([id])).rejects.toThrow(`the adapter '${entry.name}' was made for the base model "model:elsewhere", which is not in the library: import that base first`);
  });
});

describe('re-imports', () => {
  it('the same adapter zip imported twice is refused the second time, naming the entry it duplicates', async () => {
    const e = engine();
    await e.listModels();
    const zip = zipStore(encodeAdapter(adapter('a0', 0.1), tinyConfig));
    const first = await e.importFiles([{ name: 'mine.zip', bytes: zip }], 'builtin:tiny');
    expect(first.name).toBe('mine');
    await expect(e.importFiles([{ name: 'mine.zip', bytes: zip }], 'builtin:tiny')).rejects.toThrow("this adapter is already in the library as 'mine' (the same weights); nothing was imported");
    expect(await e.listAdapters()).toHaveLength(1);
    // a shipped base model imported again is recognised too
    const base = zipStore(await readFolder(TINY));
    await expect(e.importFiles([{ name: 'tiny.zip', bytes: base }])).rejects.toThrow("this base model is already in the library as 'tiny (shipped)'");
  });
});

describe('a run bundle imported back as a run record', () => {
  const inspection = (): RunRecord['inspections'][number] => ({
    which: 'after', step: 4,
    result: {
      split: 'heldout', index: 2, parts: ['tbl:a3', 'ask:a'], answer: '3', predicted: '3', correct: true,
      agents: [{ id: 'a0', name: 'table', input: 'tbl:a3', output: 'latent steps z1..z2' }, { id: 'a1', name: 'query', input: 'ask:a', output: '3' }],
      edges: [{
        receiver: 'a1', senders: ['a0'], layers: 2, heads: 2, senderPositions: [{ agent: 'a0', kind: 'latent', label: 'z1' }, { agent: 'a0', kind: 'latent', label: 'z2' }],
        receiverTokens: ['a', 's', 'k'], attention: Float32Array.from({ length: 24 }, (_, i) => i / 24), keyNorms: Float32Array.of(1, 2, 3, 4), valueNorms: Float32Array.of(0.5, 0.25, 0.125, 1),
      }],
    },
  });
  /** The page's export of a stored record: the bundle at the root, the record beside it (src/ui/export.ts). */
  async function pageExport(e: Engine, rec: RunRecord): Promise<Map<string, Uint8Array>> {
    const files = new Map((await e.runBundle(rec.id)).map((f) => [f.name, f.bytes]));
    files.set(RECORD_FILE, new TextEncoder().encode(recordJson(await e.runRecord(rec.id))));
    return files;
  }

  it("the page's run zip reads back as the record it was, adapters, inspections and intervals included; a second import is refused", async () => {
    const e = engine();
    await e.listModels();
    const rec = record({ inspections: [inspection()], loadedFrom: { name: 'earlier set', ids: ['adapter:x'] } });
    await e.saveRun(rec);
    const zip = zipStore(await pageExport(e, rec));
    await expect(e.importFiles([{ name: 'lookup.zip', bytes: zip }])).rejects.toThrow("this run is already in the library as 'lookup d1 · diffmas · seed 1'; nothing was imported");
    await e.deleteRun(rec.id);
    const models = (await e.listModels()).length;
    const r = await e.importFiles([{ name: 'lookup.zip', bytes: zip }]);
    expect(r).toEqual({ kind: 'run', id: rec.id, name: rec.name });
    expect((await e.listModels()).length).toBe(models); // the shipped tiny is found by its weights, not stored again
    const back = await e.runRecord(rec.id);
    expect(back.baseModelId).toBe('builtin:tiny');
    for (const k of ['config', 'curves', 'evalRows', 'status', 'stepsDone', 'wallSeconds', 'trainSeconds', 'createdAt', 'name'] as const) expect(back[k]).toEqual(rec[k]);
    expect(back.inspections).toEqual(rec.inspections);
    expect(back.inspections[0].result.edges[0].attention).toBeInstanceOf(Float32Array);
    expect(back.adapters.initial).toEqual(rec.adapters.initial);
    expect(back.adapters.final).toEqual(rec.adapters.final);
    expect(back.adapters.finalStep).toBe(4);
    expect(back.adapters.info).toMatchObject({ r: 2, alpha: 4, keys: ['a0', 'a1'] });
    expect(back.loadedFrom).toEqual({ name: 'earlier set', ids: [] });
    expect(back.message).toMatch(/^imported from lookup \(made by the page on \d{4}-\d\d-\d\d\)$/);
    // the same files under one top folder (a zip of the unpacked folder) read the same
    await e.deleteRun(rec.id);
    const top = new Map([...unzip(zip)].map(([k, v]) => [`my-run/${k}`, v]));
    expect((await e.importFiles([{ name: 'again.zip', bytes: zipStore(top) }])).id).toBe(rec.id);
  });

  it('a bundle alone (experiment --export-run) becomes a record of its curves, final evaluation and adapters, named after its folder', async () => {
    const e = engine();
    await e.listModels();
    const rec = record();
    await e.saveRun(rec);
    const files = new Map((await e.runBundle(rec.id)).map((f) => [`lookup-d1-diffmas-1/${f.name}`, f.bytes]));
    await e.deleteRun(rec.id);
    const r = await e.importFiles([...files].map(([name, bytes]) => ({ name, bytes })));
    expect(r.kind).toBe('run');
    expect(r.id).toMatch(/^run-import-[0-9a-f]{16}$/);
    expect(r.name).toBe('lookup-d1-diffmas-1');
    const back = await e.runRecord(r.id);
    expect(back.curves).toEqual(rec.curves);
    expect(back.evalRows).toEqual(rec.evalRows);
    expect(back.status).toBe('done');
    expect(back.adapters.final).toEqual(rec.adapters.final);
    expect(back.adapters.initial).toEqual(rec.adapters.initial);
    expect(back.inspections).toEqual([]);
    await expect(e.importFiles([...files].map(([name, bytes]) => ({ name, bytes })))).rejects.toThrow("this run is already in the library as 'lookup-d1-diffmas-1'");
  });

  it('a run on a base the library lacks stores that base with it; a record from another run is refused and nothing is stored', async () => {
    const e = engine();
    await e.listModels();
    const rec = record();
    await e.saveRun(rec);
    const files = await pageExport(e, rec);
    await e.deleteRun(rec.id);
    // other base weights: the library has no model with them
    const ck = decodeCheckpoint(new Map([...files].filter(([k]) => k.startsWith('base/')).map(([k, v]) => [k.slice(5), v])));
    ck.tensors.get('model.norm.weight')![0] += 0.5;
    for (const [n, b] of encodeCheckpoint(ck)) files.set(`base/${n}`, b);
    const wrong = new Map(files);
    wrong.set(RECORD_FILE, new TextEncoder().encode(recordJson({ ...rec, config: { ...rec.config, seed: 7 } })));
    const before = { models: (await e.listModels()).length, runs: (await e.listRuns()).length };
    await expect(e.importFiles([{ name: 'mixed.zip', bytes: zipStore(wrong) }])).rejects.toThrow(
      "this run bundle cannot be read: results/record.json: config is not the bundle's run configuration (run.json): the files come from different runs",
    );
    expect({ models: (await e.listModels()).length, runs: (await e.listRuns()).length }).toEqual(before);
    const r = await e.importFiles([{ name: 'other-base.zip', bytes: zipStore(files) }]);
    const back = await e.runRecord(r.id);
    const model = (await e.listModels()).find((m) => m.id === back.baseModelId)!;
    expect(model.builtin).toBe(false);
    expect(model.name).toBe("builtin:tiny (from run 'lookup d1 · diffmas · seed 1')"); // the record names no base: its library id then
    expect((await e.listModels()).length).toBe(before.models + 1);
  });
});

describe('comparison reports: one reader for the CLI and the page', () => {
  it('reads what `experiment --json` wrote (bench/results) and what the page writes, and both give the same CSV', () => {
    const text = readFileSync('bench/results/old-instrument/tiny-lookup-d1.json', 'utf8');
    const cli = readExperimentReport(text);
    expect(cli.summary.length).toBeGreaterThan(0);
    const again = readExperimentReport(reportJson(cli));
    expect(reportCsv(again)).toBe(reportCsv(cli));
    const csv = reportCsv(cli).split('\n');
    expect(csv[0]).toBe('method,split,control,seeds,accuracy_mean,accuracy_ci95,validity,entropy,message_floats,message_tokens,train_seconds');
    expect(csv.some((l) => /^diffmas,heldout,shuffle,3,/.test(l))).toBe(true);
  });

  it('refuses what is not a report, naming the field', () => {
    expect(() => readExperimentReport('{}')).toThrow('experiment report: no args object');
    expect(() => readExperimentReport('{"args":{},"rows":[{}],"controls":[],"summary":[]}')).toThrow('rows[0] needs method, split, seed and accuracy');
    expect(() => readExperimentReport('nope')).toThrow(/not JSON/);
  });
});

describe('control findings', () => {
  it('a control on a method already at chance says it shows nothing, instead of "falls to chance"', () => {
    const row = (method: 'latentmas' | 'diffmas', accuracy: number, seed: number) => ({
      method, split: 'heldout' as const, accuracy, validity: 1, entropy: 1, episodes: 100, messageFloats: 0, messageTokens: 0, seed, trainSeconds: 0,
    });
    const report: Pick<ExperimentReport, 'rows' | 'controls' | 'summary'> = {
      rows: [row('latentmas', 0.1, 1), row('latentmas', 0.1, 2), row('diffmas', 0.6, 1), row('diffmas', 0.62, 2)],
      controls: [
        { method: 'latentmas', seed: 1, control: 'shuffle', accuracy: 0.1 }, { method: 'latentmas', seed: 2, control: 'shuffle', accuracy: 0.1 },
        { method: 'diffmas', seed: 1, control: 'shuffle', accuracy: 0.1 }, { method: 'diffmas', seed: 2, control: 'shuffle', accuracy: 0.11 },
      ],
      summary: [],
    };
    report.summary = summarize(report);
    const f = findings(report, { heldout: 0.1 }, 100);
    expect(f.find((x) => x.startsWith('latentmas, messages shuffled'))).toMatch(/as does the uncontrolled run: .* this control shows nothing$/);
    expect(f.find((x) => x.startsWith('diffmas, messages shuffled'))).toMatch(/falls to chance or below \(at most [\d.]+ above it\)$/);
  });
});
