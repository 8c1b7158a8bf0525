// Cache-to-Cache's fuser travels where a run's adapters do (src/storage/c2c-fuser.ts): the run bundle
// (c2c_fuser.safetensors, read back bit for bit, refused when a trained run lacks it), the page's
// import of a bundle as a run record, the controller's checkpoint and continue (a run stopped at step 3
// and continued from its fuser and training state ends as the uninterrupted run, bit for bit), the
// before-training inspection (the initial fuser), and the experiment runner's hook.
import { describe, expect, it } from 'vitest';
import { loadBaseModel, readFolder } from '../src/cli/files';
import { RunController } from '../src/mas/controller';
import { fuserKey, GATE_KEY, initialFuser } from '../src/mas/c2c-fuser';
import { runExperiment } from '../src/mas/experiment';
import { defaultRunConfig, MasEngine, Run } from '../src/mas/run';
import { runBundleContent } from '../src/mas/run-data';
import { runRecordFromBundle } from '../src/mas/run-import';
import { continueProblem } from '../src/mas/run-record';
import type { RunConfig } from '../src/mas/run-types';
import { presetForTask } from '../src/mas/topology';
import { decodeFuserFile, encodeFuserFile, FUSER_FILE } from '../src/storage/c2c-fuser';
import { readRunBundle, writeRunBundle } from '../src/storage/run-bundle';
import { validateConfig } from '../src/storage/checkpoint';
import { makeTask } from '../src/tasks/tasks';
import { randomBase, testGpu } from './helpers';

const TINY = 'public/models/tiny';
const lookup = makeTask('lookup', 1);
const TOPO = presetForTask(lookup, { latentSteps: 2 });
const cfg = (over: Partial<RunConfig> = {}): RunConfig =>
  defaultRunConfig({ topology: TOPO, method: 'c2c', modelId: 'random', steps: 4, batch: 4, evalSize: 6, evalEvery: 0, lr: 1e-2, ...over });

describe('the c2c fuser in storage', () => {
  it('a run bundle holds c2c_fuser.safetensors, which reads back bit for bit and imports as the record\u2019s fuser', async () => {
    const gpu = await testGpu();
    const base = await loadBaseModel(TINY);
    const baseFiles = await readFolder(TINY);
    const engine = new MasEngine(gpu, base);
    const config = cfg({ modelId: TINY, steps: 2 });
    const run = new Run(engine, config);
    for (let i = 0; i < 2; i++) await run.trainStep();
    const fuser = (await run.exportFuser())!;
    const src = { config, base, baseFiles, adapters: [], initialAdapters: [], createdBy: 'test', stepsDone: 2, losses: run.losses.slice(), evaluation: [], heldout: [], wallSeconds: null };
    const files = writeRunBundle(runBundleContent({ ...src, fuser }));
    expect(JSON.parse(new TextDecoder().decode(files.get('run.json')!)).files.fuser).toBe(FUSER_FILE);
    const back = readRunBundle(files);
    const dec = decodeFuserFile(back.fuser!);
    expect([dec.L, dec.W]).toEqual([2, engine.model.dims.kvDim]);
    for (const [k, v] of fuser) expect(dec.weights.get(k), k).toEqual(v);
    const imported = runRecordFromBundle(files, (b) => validateConfig(JSON.parse(new TextDecoder().decode(b.get('config.json')!))), { fallbackId: 'run:x', label: 'x', now: 0 });
    expect(imported.record.adapters.fuser!.get(GATE_KEY)).toEqual(fuser.get(GATE_KEY));
    expect(imported.record.adapters.finalStep).toBe(2);
    // a trained c2c run without its fuser is refused, on writing and on reading
    expect(() => runBundleContent(src)).toThrow(/after 2 steps needs the run\u2019s fuser/);
    const noFuser = new Map(files);
    const json = JSON.parse(new TextDecoder().decode(files.get('run.json')!));
    delete json.files.fuser;
    noFuser.set('run.json', new TextEncoder().encode(JSON.stringify(json)));
    expect(() => readRunBundle(noFuser)).toThrow(/a c2c run trained 2 steps, but files.fuser names no c2c_fuser.safetensors/);
    // a fresh c2c run (step 0) needs none: the initial fuser is A = 0, gate = 0
    expect(readRunBundle(writeRunBundle(runBundleContent({ ...src, stepsDone: 0, losses: [] }))).fuser).toBeUndefined();
    // another method has no fuser to bundle
    expect(() => runBundleContent({ ...src, config: { ...config, method: 'diffmas-full' }, stepsDone: 0, losses: [], fuser })).toThrow(/has no Cache-to-Cache fuser/);
    run.destroy();
    engine.destroy();
  });

  it('a bad fuser file is refused by name', () => {
    const w = initialFuser(2, 4);
    const bytes = encodeFuserFile(w, 2, 4);
    expect(decodeFuserFile(bytes).weights.get(fuserKey(1, 'v'))).toEqual(new Float32Array(16));
    expect(() => encodeFuserFile(w, 2, 3)).toThrow(/layers.0.k.A has 16 values, expected 3 x 3/);
    const partial = new Map(w);
    partial.delete(fuserKey(1, 'k'));
    expect(() => decodeFuserFile(encodeFuserFile(partial, 2, 4))).toThrow(/layers.1.k.A is missing/);
  });

  it('a c2c run stopped at step 3 and continued from its fuser and training state ends as the uninterrupted run, bit for bit', async () => {
    const gpu = await testGpu();
    const base = randomBase();
    const config = cfg({ steps: 6, evalEvery: 3 });
    const straight = new RunController(gpu);
    await straight.start(config, base, () => undefined);
    const done = await straight.checkpoint();
    straight.dispose();
    expect(done.adapters).toEqual([]);
    expect(done.training!.losses).toHaveLength(6);

    const first = new RunController(gpu);
    first.pause();
    const firstDone = first.start(config, base, () => undefined);
    while (first.status.state !== 'paused') await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 3; i++) await first.step();
    const cp = await first.checkpoint();
    first.stop();
    await firstDone;
    first.dispose();
    expect(cp.step).toBe(3);
    expect(cp.fuser!.get(fuserKey(0, 'k'))!.some((v) => v !== 0)).toBe(true);

    const second = new RunController(gpu);
    second.pause();
    const secondDone = second.start(config, base, () => undefined);
    while (second.status.state !== 'paused') await new Promise((r) => setTimeout(r, 10));
    await expect(second.continueFrom([], cp.training!)).rejects.toThrow(/continues from its fuser, and none was given/);
    // the before-training view puts the initial fuser in for the look, then the run's own back
    const before = await second.inspectWith([], 'heldout', 0);
    await second.continueFrom([], cp.training!, cp.fuser);
    const freshLook = new RunController(gpu);
    freshLook.pause();
    const freshDone = freshLook.start(config, base, () => undefined);
    while (freshLook.status.state !== 'paused') await new Promise((r) => setTimeout(r, 10));
    const atInit = await freshLook.inspect('heldout', 0);
    freshLook.stop();
    await freshDone;
    freshLook.dispose();
    expect(before.predicted).toBe(atInit.predicted);
    expect(before.edges[0].attention).toEqual(atInit.edges[0].attention);
    second.resume();
    await secondDone;
    expect(second.status.state).toBe('done');
    const end = await second.checkpoint();
    expect(end.training!.losses).toEqual(done.training!.losses);
    for (const [k, t] of end.fuser!) expect(t, k).toEqual(done.fuser!.get(k));
    second.dispose();
    // a record with a fuser and a training state short of its steps continues; without the fuser it cannot
    const rec = { kind: 'run', config, adapters: { initial: [], final: [], finalStep: 3, training: cp.training, fuser: cp.fuser, saved: [], info: null } } as never;
    expect(continueProblem(rec)).toBeNull();
    expect(continueProblem({ ...(rec as object), adapters: { ...(rec as { adapters: object }).adapters, fuser: null } } as never)).toMatch(/no training state/);
  });

  it('the experiment runner hands over the trained fuser', async () => {
    const gpu = await testGpu();
    const got: string[] = [];
    await runExperiment(gpu, randomBase(), { base: cfg({ steps: 2 }), methods: ['c2c', 'latentmas-full'], seeds: [1] }, () => undefined, {
      controls: false,
      onAdapters: (m, seed, ads, fuser) => void got.push(`${m}/${seed}: ${ads.length} adapters, fuser ${fuser ? fuser.size : 'none'}`),
    });
    expect(got).toEqual(['c2c/1: 0 adapters, fuser 5']);
  });
});
