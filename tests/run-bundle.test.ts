// The run bundle (docs/run-bundle.md): `experiment --export-run` writes one per (method, seed) that
// the reader accepts; what it carries is what the run read (the first training batch with the
// initial adapters gives the run's first loss in the float64 reference, the episodes are the
// evaluation's prompts); the reader refuses a damaged bundle naming the file and line.
import { CHAR_RENDERING } from '../src/tasks/render';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTree } from '../src/cli/export-run';
import { loadBaseModel, readFolder } from '../src/cli/files';
import { makePlan, promptText } from '../src/mas/data';
import type { LatentMap } from '../src/mas/latentmap';
import { methodSpec } from '../src/mas/methods';
import { refMasRollout, type RefMasAgent } from '../src/mas/reference';
import { defaultRunConfig, MasEngine, Run } from '../src/mas/run';
import { evalEpisodes, runBundleContent } from '../src/mas/run-data';
import { presetForTask } from '../src/mas/topology';
import type { RefConfig, RefLora } from '../src/reference/model';
import { decodeCheckpoint } from '../src/storage/checkpoint';
import { decodeAdapter, loraKey } from '../src/storage/peft';
import { readRunBundle, RunBundleError, writeRunBundle, type RunBundleContent } from '../src/storage/run-bundle';
import { makeTask } from '../src/tasks/tasks';
import { refLoraOf, testGpu } from './helpers';
import { cli } from './cli-helpers';

const TINY = 'public/models/tiny';
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'run-bundle-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A bundle of a tiny DiffMAS run that took `steps` steps, made in-process (GPU run, adapters before and after). */
async function tinyBundle(steps: number): Promise<{ content: RunBundleContent; firstLoss: number }> {
  const gpu = await testGpu();
  const base = await loadBaseModel(TINY);
  const task = makeTask('lookup', 1);
  const config = defaultRunConfig({ topology: presetForTask(task), modelId: TINY, steps: 4, batch: 2, evalSize: 3, lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }, lr: 0.01 });
  const engine = new MasEngine(gpu, base);
  const run = new Run(engine, config);
  try {
    const initial = await run.exportAdapters();
    let firstLoss = NaN;
    for (let s = 0; s < steps; s++) {
      const r = await run.trainStep();
      if (s === 0) firstLoss = r.loss;
    }
    const adapters = await run.exportAdapters();
    const content = runBundleContent({
      config, base, baseFiles: await readFolder(TINY), adapters, initialAdapters: initial, createdBy: 'test', stepsDone: run.step, losses: run.losses.slice(),
      evaluation: [], heldout: [], wallSeconds: null, now: new Date(0),
    });
    return { content, firstLoss };
  } finally {
    run.destroy();
    engine.destroy();
  }
}

describe('run bundle', () => {
  it('experiment --export-run writes one bundle per (method, seed) that reads back, and refuses to write over one', async () => {
    const dir = path.join(work, 'export');
    const args = ['experiment', '--preset', 'tiny', '--methods', 'single,diffmas', '--seeds', '1', '--steps', '2', '--batch', '2', '--eval-size', '2', '--no-controls', '--quiet', '--export-run', dir];
    const r = await cli(args);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const diff = readRunBundle(await readTree(path.join(dir, 'diffmas-seed1')));
    const m = diff.json;
    expect(m).toMatchObject({ format: 'latent-playground-run', version: 1, createdBy: 'cli experiment', positions: 'stream', method: { name: 'diffmas', channel: 'latent', trace: 'latent', train: 'all' } });
    expect(m.config).toMatchObject({ task: 'lookup', difficulty: 1, method: 'diffmas', seed: 1, steps: 2, batch: 2, evalSize: 2, latentMap: 'ridge' });
    expect(m.agents.map((a) => [a.id, a.final, a.adapterKey])).toEqual([['a0', false, 'a0'], ['a1', true, 'a1']]);
    expect(m.agents[1].predecessors).toEqual(['a0']);
    expect(m.training.stepsDone).toBe(2);
    expect(m.training.losses).toHaveLength(2);
    expect(m.results.evaluation.map((e) => e.split)).toEqual(['heldout', 'ood']);
    expect(m.results.evaluation[0].ci95).toHaveLength(2);
    // base, both adapter sets (B = 0 at step 0, trained after), the latent map, 3 splits, 4 batches
    const base = decodeCheckpoint(diff.base);
    expect(base.config.hidden_size).toBe(32);
    const b0 = decodeAdapter(diff.initialAdapters.a0, base.config).tensors.get(loraKey(0, 'v_proj', 'B'))!;
    const b1 = decodeAdapter(diff.adapters.a0, base.config).tensors.get(loraKey(0, 'v_proj', 'B'))!;
    expect(b0.every((x) => x === 0)).toBe(true);
    expect(b1.some((x) => x !== 0)).toBe(true);
    expect(diff.latentMap!.Wa).toHaveLength(32 * 32);
    expect(Object.keys(diff.episodes)).toEqual(['train', 'heldout', 'ood']);
    expect(diff.episodes.heldout).toHaveLength(2);
    expect(diff.batches).toHaveLength(4);
    expect(diff.batches[0].rows).toHaveLength(2);
    // an untrained method: no adapters, no batches
    const single = readRunBundle(await readTree(path.join(dir, 'single-seed1')));
    expect(Object.keys(single.adapters)).toEqual([]);
    expect(single.batches).toEqual([]);
    expect(single.json.agents.map((a) => a.id)).toEqual(['a1']);
    // a second export into the same folder is refused before any GPU work
    const again = await cli(args);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/--export-run .* already holds diffmas-seed1, single-seed1|already holds single-seed1, diffmas-seed1/);
    // --export-batches: as many training batches as asked (for PyTorch to continue a word-rendering run
    // past them), the first 4 the same as the default's; without --export-run it is a usage error
    const more = path.join(work, 'export-more');
    const r6 = await cli(['experiment', '--preset', 'tiny', '--methods', 'diffmas', '--seeds', '1', '--steps', '2', '--batch', '2', '--eval-size', '2', '--no-controls', '--quiet', '--export-run', more, '--export-batches', '6']);
    expect(r6.code).toBe(0);
    const six = readRunBundle(await readTree(path.join(more, 'diffmas-seed1')));
    expect(six.batches).toHaveLength(6);
    expect(six.batches.slice(0, 4)).toEqual(diff.batches);
    const lone = await cli(['experiment', '--preset', 'tiny', '--methods', 'diffmas', '--seeds', '1', '--export-batches', '6']);
    expect(lone.code).toBe(2);
    expect(lone.err).toMatch(/--export-batches sets what --export-run writes/);
  });

  it('the first batch and the initial adapters give the run\'s first loss in the float64 reference (what the bundle carries is what the run fed)', async () => {
    const { content, firstLoss } = await tinyBundle(1);
    const b = readRunBundle(writeRunBundle(content));
    const ck = decodeCheckpoint(b.base);
    const params = new Map([...ck.tensors].map(([k, v]) => [k, Float64Array.from(v)]));
    const lora = (key: string): RefLora => refLoraOf(decodeAdapter(b.initialAdapters[key], ck.config));
    const lm = b.latentMap!;
    const map: LatentMap = { kind: lm.kind, D: lm.D, Wa: lm.Wa ? Float64Array.from(lm.Wa) : null, targetNorm: lm.targetNorm, lambda: lm.lambda };
    const batch = b.batches[0];
    const B = batch.rows.length;
    const agents: RefMasAgent[] = b.json.agents.map((a, i) => {
      const ids = a.final ? batch.rows.flatMap((r) => r.finalIds) : batch.rows.flatMap((r) => r.promptIds[i]);
      return {
        preds: a.predecessors.map((p) => b.json.agents.findIndex((x) => x.id === p)), ids, n: ids.length / B, m: a.latentSteps,
        lora: a.adapterKey ? lora(a.adapterKey) : undefined, trains: false,
      };
    });
    const targets = batch.rows.flatMap((r) => r.finalTargets.map((t) => (t === null ? 0xffffffff : t)));
    const ref = refMasRollout(ck.config as unknown as RefConfig, params, agents, B, b.json.method.trace as 'latent', map, targets, b.json.positions);
    expect(Math.abs(ref.loss - firstLoss) / ref.loss).toBeLessThan(1e-4);
  });

  it('the episodes are the evaluation\'s, with each agent\'s prompt as the run builds it', async () => {
    const { content } = await tinyBundle(0);
    const b = readRunBundle(writeRunBundle(content));
    const task = makeTask('lookup', 1);
    const spec = methodSpec('diffmas');
    const plan = makePlan(b.json.config.topology, spec);
    const eps = evalEpisodes(task, b.json.config, 'ood');
    expect(b.episodes.ood!.map((e) => e.key)).toEqual(eps.map((e) => e.key));
    const e0 = b.episodes.ood![0];
    expect(e0.agents.map((a) => a.prompt)).toEqual(plan.map((pa) => promptText(CHAR_RENDERING, eps[0], pa, spec)));
    expect(e0.answer).toBe(eps[0].answer);
    // initial = trained when no step was taken
    expect(b.json.training.stepsDone).toBe(0);
  });

  it('write -> read -> write gives the same bytes', async () => {
    const { content } = await tinyBundle(0);
    const files = writeRunBundle(content);
    const again = writeRunBundle(readRunBundle(files));
    expect([...again.keys()]).toEqual([...files.keys()]);
    for (const [k, v] of files) expect(Buffer.from(again.get(k)!).equals(Buffer.from(v)), k).toBe(true);
    // a zip with one top folder reads the same
    const nested = new Map([...files].map(([k, v]) => [`my-run/${k}`, v]));
    expect(readRunBundle(nested).json.config.seed).toBe(content.meta.config.seed);
  });

  it('a damaged bundle is refused naming the file and what is wrong', async () => {
    const { content } = await tinyBundle(0);
    const good = writeRunBundle(content);
    const edit = (fn: (f: Map<string, Uint8Array>) => void) => {
      const f = new Map(good);
      fn(f);
      return () => readRunBundle(f);
    };
    const json = () => JSON.parse(new TextDecoder().decode(good.get('run.json')!));
    const put = (f: Map<string, Uint8Array>, v: unknown) => f.set('run.json', new TextEncoder().encode(JSON.stringify(v)));
    expect(edit((f) => f.delete('run.json'))).toThrow('run bundle: run.json: not found: this is not a run bundle');
    // version 2 is a bundle that references its base (src/storage/base-ref.ts)
    expect(edit((f) => put(f, { ...json(), version: 3 }))).toThrow('run.json: version 3 was written by a newer playground (this one reads versions up to 2)');
    expect(edit((f) => put(f, { ...json(), format: 'x' }))).toThrow(/format is "x"/);
    expect(edit((f) => f.delete('base/model.safetensors'))).toThrow('run bundle: base/model.safetensors: missing');
    expect(edit((f) => f.set('episodes/heldout.jsonl', new TextEncoder().encode('{"split":"heldout"}\n')))).toThrow('episodes/heldout.jsonl: 1 lines, but run.json says 3');
    const lines = new TextDecoder().decode(good.get('batches.jsonl')!).split('\n');
    lines[1] = '{oops';
    expect(edit((f) => f.set('batches.jsonl', new TextEncoder().encode(lines.join('\n'))))).toThrow(/batches\.jsonl line 2 is not JSON/);
    expect(edit((f) => f.set('adapters/a0/adapter_model.safetensors', new Uint8Array(3)))).toThrow(/^run bundle: adapters\/a0: /);
    expect(edit(() => undefined)).not.toThrow();
    expect(RunBundleError.name).toBe('RunBundleError');
  });

  it('an export folder that is a file is refused at once', async () => {
    const file = path.join(work, 'a-file');
    await writeFile(file, 'x');
    const r = await cli(['experiment', '--preset', 'tiny', '--methods', 'single', '--seeds', '1', '--quiet', '--export-run', file]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--export-run .*a-file exists and is a file, not a folder/);
  });
});
