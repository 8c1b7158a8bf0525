// The equally trained baselines of issue 19 item 1: single-trained and skyline-trained, the one agent
// of single and skyline with its own LoRA trained on the answer, with the settings DiffMAS gets. What
// is checked: they are trained methods without a channel (the final agent alone, one adapter, drawn
// exactly as DiffMAS draws the final agent's, so the two start from the same weights); they train (the
// loss falls), evaluate on every split and export PEFT adapters; the engine's gradient at trained
// adapters matches the float64 reference, whose own gradient matches finite differences; the run
// bundle says what the companion needs (one agent, its adapter key, the batches as fed, the first loss
// in the reference); a run stopped and continued ends as the uninterrupted run, bit for bit; the
// experiment runner trains them and runs no control. The PyTorch side: python/tests/test_crosscheck.py.
import { describe, expect, it } from 'vitest';
import { loadBaseModel, readFolder } from '../src/cli/files';
import { RunController } from '../src/mas/controller';
import { encodeInstance, makePlan } from '../src/mas/data';
import { runExperiment } from '../src/mas/experiment';
import { methodSpec, validateRunConfig } from '../src/mas/methods';
import { refMasRollout } from '../src/mas/reference';
import { defaultRunConfig, MasEngine, Run } from '../src/mas/run';
import { firstTrainingBatches, runBundleContent } from '../src/mas/run-data';
import { TRAINED_METHODS, type MethodName, type RunConfig } from '../src/mas/run-types';
import { presetForTask, single } from '../src/mas/topology';
import type { TrainedAdapter } from '../src/mas/types';
import type { RefConfig } from '../src/reference/model';
import { decodeAdapter, encodeAdapter } from '../src/storage/peft';
import { readRunBundle, writeRunBundle } from '../src/storage/run-bundle';
import { CHAR_RENDERING } from '../src/tasks/render';
import { Rng } from '../src/tasks/rng';
import { makeTask, SPLITS } from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';
import { centralDiff, normErr, randomBase, refLoraOf, testGpu } from './helpers';

const BASELINES = ['single-trained', 'skyline-trained'] as const satisfies readonly MethodName[];
const TINY = 'public/models/tiny';
const tokenizer = defaultTokenizer();
const lookup = makeTask('lookup', 1);
const TOPO = presetForTask(lookup, { latentSteps: 2 });

function cfg(over: Partial<RunConfig> = {}): RunConfig {
  return defaultRunConfig({ topology: TOPO, modelId: 'random', steps: 3, batch: 4, evalSize: 6, evalEvery: 0, lr: 1e-2, lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }, ...over });
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function loadInto(run: Run, adapters: TrainedAdapter[]): void {
  for (const a of adapters) {
    const lora = run.adapters.get(a.agent)!;
    const w = new Map<string, { A: Float32Array; B: Float32Array }>();
    for (const m of lora.modules.values()) {
      w.set(m.name, { A: a.tensors.get(`base_model.model.${m.name}.lora_A.weight`)!, B: a.tensors.get(`base_model.model.${m.name}.lora_B.weight`)! });
    }
    lora.load(w);
  }
}

describe('single-trained and skyline-trained', () => {
  it('are trained methods without a channel: the final agent alone, with one adapter that starts where DiffMAS\u2019s final agent starts', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    const diff = new Run(engine, cfg({ method: 'diffmas' }));
    const diffFinal = (await diff.exportAdapters()).find((a) => a.agent === TOPO.final)!;
    diff.destroy();
    for (const method of BASELINES) {
      const spec = methodSpec(method);
      expect(TRAINED_METHODS).toContain(method);
      expect([spec.channel, spec.trace, spec.train, spec.skyline]).toEqual(['none', null, 'all', method === 'skyline-trained']);
      // a single-agent topology is enough, as for single and skyline
      expect(validateRunConfig(cfg({ method, topology: single(1) })).spec.name).toBe(method);
      expect(() => validateRunConfig(cfg({ method, steps: 0 }))).toThrow(/trains adapters: steps must be at least 1/);
      const plan = makePlan(TOPO, spec);
      expect(plan.map((p) => [p.agent.id, p.final, p.preds, p.m])).toEqual([[TOPO.final, true, [], 0]]);
      // the prompt: every part (skyline) or the final agent's own part (single)
      const ep = lookup.sample(new Rng(5), 'train');
      const want = method === 'skyline-trained' ? CHAR_RENDERING.skyline(ep) : CHAR_RENDERING.prompt(ep, lookup.finalRole, { final: true });
      expect(encodeInstance(tokenizer, CHAR_RENDERING, plan, spec, [ep])).toEqual([tokenizer.encode(want)]);

      const run = new Run(engine, cfg({ method }));
      expect(run.trains).toBe(true);
      expect([...run.adapters.keys()]).toEqual([TOPO.final]);
      const [initial] = await run.exportAdapters();
      expect(initial.agent).toBe(TOPO.final);
      expect([...initial.tensors.keys()]).toEqual([...diffFinal.tensors.keys()]);
      for (const [k, t] of initial.tensors) expect(t, k).toEqual(diffFinal.tensors.get(k));
      await expect(run.evaluate('heldout', 'shuffle')).rejects.toThrow(/sends no messages/);
      run.destroy();
    }
    engine.destroy();
  });

  it('train (the loss falls), evaluate on every split and export PEFT adapters', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    for (const method of BASELINES) {
      const run = new Run(engine, cfg({ method, steps: 30, batch: 8, lr: 2e-2 }));
      const [initial] = await run.exportAdapters();
      for (let s = 0; s < 30; s++) await run.trainStep();
      const first = mean(run.losses.slice(0, 5));
      const last = mean(run.losses.slice(-5));
      expect(last, `${method}: loss ${first} -> ${last}`).toBeLessThan(0.9 * first);
      for (const split of SPLITS) {
        const o = await run.evaluate(split);
        expect(o.method).toBe(method);
        expect(o.episodes).toBe(6);
        expect(o.predictions).toHaveLength(6);
        expect(Number.isFinite(o.loss)).toBe(true);
        expect([o.messageFloats, o.messageTokens, o.messagePositions]).toEqual([0, 0, 0]);
      }
      const adapters = await run.exportAdapters();
      expect(adapters.map((a) => a.agent)).toEqual([TOPO.final]);
      const [a] = adapters;
      expect(a.config.r).toBe(2);
      expect(a.config.lora_alpha).toBe(4);
      // trained: B has left 0, A has moved
      const bKey = [...a.tensors.keys()].find((k) => k.endsWith('lora_B.weight'))!;
      const aKey = [...a.tensors.keys()].find((k) => k.endsWith('lora_A.weight'))!;
      expect(initial.tensors.get(bKey)!.every((x) => x === 0)).toBe(true);
      expect(a.tensors.get(bKey)!.some((x) => x !== 0)).toBe(true);
      expect(a.tensors.get(aKey)).not.toEqual(initial.tensors.get(aKey));
      // PEFT files round trip
      const back = decodeAdapter(encodeAdapter({ config: a.config, tensors: a.tensors }, engine.base.config), engine.base.config);
      for (const [k, t] of a.tensors) expect(back.tensors.get(k), k).toEqual(t);
      run.destroy();
    }
    engine.destroy();
  });

  it('the bundle carries what the run fed: one agent, its adapter key, the batches, and the first loss in the float64 reference', async () => {
    const gpu = await testGpu();
    const base = await loadBaseModel(TINY);
    const baseFiles = await readFolder(TINY);
    const engine = new MasEngine(gpu, base);
    const params = new Map([...base.weights].map(([k, v]) => [k, Float64Array.from(v)]));
    for (const method of BASELINES) {
      const spec = methodSpec(method);
      const config = cfg({ method, modelId: TINY, steps: 2, batch: 3, evalSize: 4 });
      const run = new Run(engine, config);
      const initial = await run.exportAdapters();
      for (let s = 0; s < 2; s++) await run.trainStep();
      const content = runBundleContent({
        config, base, baseFiles, adapters: await run.exportAdapters(), initialAdapters: initial, createdBy: 'test', stepsDone: run.step, losses: run.losses.slice(),
        evaluation: [], heldout: [], wallSeconds: null, now: new Date(0),
      });
      run.destroy();
      const b = readRunBundle(writeRunBundle(content));
      expect(b.json.method).toEqual({ name: method, channel: 'none', trace: null, train: 'all', skyline: method === 'skyline-trained' });
      expect(b.json.agents.map((a) => [a.id, a.adapterKey, a.final, a.predecessors])).toEqual([[TOPO.final, TOPO.final, true, []]]);
      expect(Object.keys(b.adapters)).toEqual([TOPO.final]);
      expect(Object.keys(b.initialAdapters)).toEqual([TOPO.final]);
      expect(b.latentMap).toBeNull();
      expect(b.batches).toHaveLength(4);
      const fed = firstTrainingBatches(lookup, base.tokenizer!, CHAR_RENDERING, makePlan(TOPO, spec), spec, config, 1)[0];
      expect(b.batches[0].rows.map((r) => [r.promptIds, r.finalIds])).toEqual(fed.map((r) => [r.prompts, r.finalIds]));
      expect(b.batches[0].rows.every((r) => r.promptIds.length === 1)).toBe(true);
      // batch 1 with the initial adapters gives the run's first loss. Tolerance as python/tests/test_crosscheck.py:
      // 1e-4 relative plus 1e-6 (the tiny base's skyline is right already, loss ~1e-4, where float32's
      // cross-entropy at p ~ 1 rounds to ~1e-7 whatever the loss)
      const batch = b.batches[0];
      const B = batch.rows.length;
      const ids = batch.rows.flatMap((r) => r.finalIds);
      const targets = batch.rows.flatMap((r) => r.finalTargets.map((t) => (t === null ? 0xffffffff : t)));
      const lora = refLoraOf(decodeAdapter(b.initialAdapters[TOPO.final], base.config));
      const ref = refMasRollout(base.config as unknown as RefConfig, params, [{ preds: [], ids, n: ids.length / B, m: 0, lora, trains: false }], B, 'latent', null, targets);
      expect(Math.abs(ref.loss - b.json.training.losses[0]), `${method}: ${ref.loss} in the reference, ${b.json.training.losses[0]} in the run`).toBeLessThan(1e-4 * ref.loss + 1e-6);
    }
    engine.destroy();
  });

  it('the gradient at trained adapters matches the float64 reference, whose gradient matches finite differences', async () => {
    const gpu = await testGpu();
    const base = randomBase();
    const engine = new MasEngine(gpu, base);
    const params = new Map([...base.weights].map(([k, v]) => [k, Float64Array.from(v)]));
    const refCfg = base.config as unknown as RefConfig;
    const errs: string[] = [];
    for (const method of BASELINES) {
      const spec = methodSpec(method);
      const config = cfg({ method, steps: 3, batch: 3, lr: 2e-2, lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj', 'down_proj'] } });
      const run = new Run(engine, config);
      for (let s = 0; s < 3; s++) await run.trainStep();
      const trained = await run.exportAdapters();
      run.destroy();
      // a fresh run with the trained adapters (A and B non-zero) takes one step on batch 1: its gradient buffers hold the raw gradient
      const probe = new Run(engine, config);
      loadInto(probe, trained);
      const st = await probe.trainStep();
      const fed = firstTrainingBatches(lookup, tokenizer, CHAR_RENDERING, makePlan(TOPO, spec), spec, config, 1)[0];
      const B = fed.length;
      const ids = fed.flatMap((r) => r.finalIds);
      const targets = fed.flatMap((r) => r.finalTargets.map((t) => (t === null ? 0xffffffff : t)));
      const lora = refLoraOf(trained[0]);
      const lossOf = (trains: boolean) => refMasRollout(refCfg, params, [{ preds: [], ids, n: ids.length / B, m: 0, lora, trains }], B, 'latent', null, targets);
      const ref = lossOf(true);
      expect(Math.abs(st.loss - ref.loss) / ref.loss, `${method} loss`).toBeLessThan(1e-5);
      let worst = 0;
      let where = '';
      let absMax = 0;
      let sq = 0;
      for (const m of probe.adapters.get(TOPO.final)!.modules.values()) {
        const g = ref.loraGrads[0].get(m.name)!;
        for (const [which, got, want] of [['A', await gpu.read(m.dA), g.A], ['B', await gpu.read(m.dB), g.B]] as const) {
          const e = normErr(got, want);
          for (let i = 0; i < want.length; i++) {
            sq += want[i] * want[i];
            absMax = Math.max(absMax, Math.abs(got[i] - want[i]));
          }
          if (e > worst) [worst, where] = [e, `${m.name}.${which}`];
        }
      }
      probe.destroy();
      const norm = Math.sqrt(sq);
      errs.push(`${method}: max|diff| ${absMax.toExponential(1)}, max|diff|/max|ref| per tensor ${worst.toExponential(1)} (${where}), gradient norm ${st.gradNorm.toFixed(6)} vs ${norm.toFixed(6)}`);
      // tests/mas-gradient.test.ts's tolerance, float32 against float64
      expect(worst, errs[errs.length - 1]).toBeLessThan(1e-4);
      expect(Math.abs(st.gradNorm - norm) / norm).toBeLessThan(1e-4);

      // the reference's own gradient against central differences: entries of A and B in both layers, attention and MLP
      const checks: [string, 'A' | 'B', number][] = [
        ['model.layers.0.self_attn.q_proj', 'A', 3], ['model.layers.0.self_attn.v_proj', 'B', 5],
        ['model.layers.1.self_attn.k_proj', 'A', 7], ['model.layers.1.self_attn.o_proj', 'B', 1], ['model.layers.1.mlp.down_proj', 'A', 2],
      ];
      for (const [mod, which, idx] of checks) {
        const fd = centralDiff(lora.targets.get(mod)![which], idx, () => lossOf(false).loss);
        const an = ref.loraGrads[0].get(mod)![which][idx];
        expect(Math.abs(an), `${method} ${mod}.${which}[${idx}] carries gradient`).toBeGreaterThan(1e-6);
        expect(Math.abs(fd - an), `${method} ${mod}.${which}[${idx}] fd ${fd} analytic ${an}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
      }
    }
    console.log(`trained baselines, engine vs the float64 reference at trained adapters: ${errs.join('; ')}`);
    engine.destroy();
  });

  for (const method of BASELINES) {
    it(`${method}: a run stopped at step 3 and continued from its adapters and training state ends as the uninterrupted run, bit for bit`, async () => {
      const gpu = await testGpu();
      const base = randomBase();
      const config = cfg({ method, steps: 6, evalEvery: 3 });
      const straight = new RunController(gpu);
      await straight.start(config, base, () => undefined);
      const done = await straight.checkpoint();
      straight.dispose();
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

      const second = new RunController(gpu);
      second.pause();
      const secondDone = second.start(config, base, () => undefined);
      while (second.status.state !== 'paused') await new Promise((r) => setTimeout(r, 10));
      await second.continueFrom(cp.adapters, cp.training!);
      second.resume();
      await secondDone;
      expect(second.status.state).toBe('done');
      const end = await second.checkpoint();
      expect(end.training!.losses).toEqual(done.training!.losses);
      expect(end.adapters.map((a) => a.agent)).toEqual([TOPO.final]);
      for (let i = 0; i < end.adapters.length; i++) for (const [k, t] of end.adapters[i].tensors) expect(t, k).toEqual(done.adapters[i].tensors.get(k));
      second.dispose();
    });
  }

  it('the experiment runner trains both, evaluates heldout and ood, and runs no control', async () => {
    const gpu = await testGpu();
    const base = randomBase();
    const saved: string[] = [];
    const report = await runExperiment(gpu, base, { base: cfg({ steps: 2 }), methods: [...BASELINES, 'diffmas'], seeds: [1] }, () => undefined, {
      onAdapters: (m, seed, ads) => void saved.push(`${m}/${seed}: ${ads.map((a) => a.agent).join(',')}`),
    });
    expect(report.curves!.map((c) => [c.method, c.losses.length])).toEqual([['single-trained', 2], ['skyline-trained', 2], ['diffmas', 2]]);
    expect(report.rows.filter((r) => r.method !== 'diffmas').map((r) => `${r.method} ${r.split}`)).toEqual([
      'single-trained heldout', 'single-trained ood', 'skyline-trained heldout', 'skyline-trained ood',
    ]);
    expect(report.controls.filter((c) => c.method !== 'diffmas')).toEqual([]);
    expect(saved).toEqual([`single-trained/1: ${TOPO.final}`, `skyline-trained/1: ${TOPO.final}`, `diffmas/1: ${TOPO.agents.map((a) => a.id).join(',')}`]);
  });
});
