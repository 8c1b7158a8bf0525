// The multi-agent run, controller and experiment runner on a small random base model: clear errors
// for bad configurations, determinism, no pipeline or buffer creation per training step, every
// method and control end to end, the controller's state machine (pause / step / resume / stop /
// reset, divergence), inspection and PEFT export. Learning itself: tests/experiment.test.ts.
import { describe, expect, it } from 'vitest';
import { decodeAdapter, encodeAdapter, loraKey } from '../src/storage/peft';
import { defaultTokenizer } from '../src/tokenizers/char';
import { formatPrompt, makeTask } from '../src/tasks/tasks';
import { METHODS, type MethodName, type RunConfig, type RunProgress } from '../src/worker/api';
import type { BaseModel } from '../src/mas/types';
import { MasEngine, Run, defaultRunConfig } from '../src/mas/run';
import { RunController } from '../src/mas/controller';
import { runExperiment, meanCi, t95 } from '../src/mas/experiment';
import { validateRunConfig } from '../src/mas/methods';
import { chain, presetForTask, single, star, type Topology } from '../src/mas/topology';
import { derangement } from '../src/mas/data';
import { Rng } from '../src/tasks/rng';
import { randomBase, testGpu } from './helpers';
import { createNodeGpu } from '../src/gpu/node';

const tokenizer = defaultTokenizer();

/** randomBase, poisoned with a NaN in a weight when asked. */
function baseOf(seed = 3, poison = false): BaseModel {
  const base = randomBase(seed);
  if (poison) base.weights.get('model.layers.0.self_attn.q_proj.weight')![0] = NaN;
  return base;
}

const lookup = makeTask('lookup', 1);
const TOPO = presetForTask(lookup, { latentSteps: 2 });

function cfg(over: Partial<RunConfig> = {}): RunConfig {
  return defaultRunConfig({ topology: TOPO, modelId: 'random', steps: 3, batch: 4, evalSize: 6, evalEvery: 0, lr: 1e-2, lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }, ...over });
}

describe('run configuration errors', () => {
  const bad: [string, Partial<RunConfig>, RegExp][] = [
    ['unknown method', { method: 'telepathy' as MethodName }, /unknown method "telepathy"/],
    ['difficulty out of range', { difficulty: 9 }, /difficulty must be an integer in 1..5/],
    ['batch 0', { batch: 0 }, /batch must be an integer in 1..256/],
    ['learning rate too large', { lr: 5 }, /lr must be in/],
    ['text budget 0', { method: 'text', textBudget: 0 }, /textBudget must be an integer in 1..64/],
    ['a trained method with 0 steps', { method: 'diffmas', steps: 0 }, /trains adapters: steps must be at least 1/],
    ['bad LoRA target', { lora: { r: 2, alpha: 4, targets: ['qq_proj' as never] } }, /lora target "qq_proj"/],
    ['bad latent map', { latentMap: 'pca' as never }, /latentMap must be 'ridge' or 'identity'/],
    ['a role the task does not have', { topology: star(2, { roles: [0, 5] }) }, /does not fit task lookup.*only 2 parts/s],
    ['a part nobody holds', { method: 'text', topology: star(2, { roles: [1, 1] }) }, /no agent holds part 0 \(table\)/],
    ['a method that needs senders on a single agent', { method: 'diffmas', topology: single(1) }, /needs senders.*single-agent topology/],
    ['text on a single agent', { method: 'text', topology: single(1) }, /needs senders/],
    ['latent-only trace with a silent sender', { method: 'latentmas', topology: presetForTask(lookup, { latentSteps: 0 }) }, /0 latent steps.*latentmas-full/],
    ['a final agent with latent steps', { method: 'diffmas', topology: { ...TOPO, agents: TOPO.agents.map((a) => ({ ...a, latentSteps: 2 })) } }, /final agent a1 has 2 latent steps/],
    ['a cycle', { topology: { ...TOPO, edges: [['a0', 'a1'], ['a1', 'a0']] } as Topology }, /Cycle/],
  ];
  for (const [name, over, re] of bad) {
    it(name, () => {
      expect(() => validateRunConfig(cfg(over))).toThrow(re);
    });
  }
  it('single and skyline run on a single-agent topology; the full trace accepts silent senders', () => {
    expect(validateRunConfig(cfg({ method: 'single', topology: single(1) })).spec.channel).toBe('none');
    expect(validateRunConfig(cfg({ method: 'skyline', topology: single(1) })).spec.skyline).toBe(true);
    expect(validateRunConfig(cfg({ method: 'latentmas-full', topology: presetForTask(lookup, { latentSteps: 0 }) })).spec.trace).toBe('full');
  });
});

describe('helpers', () => {
  it('derangements have no fixed points and are seeded', () => {
    for (const n of [2, 3, 7, 64]) {
      const p = derangement(n, new Rng(5));
      expect(p.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      p.forEach((v, i) => expect(v).not.toBe(i));
      expect(derangement(n, new Rng(5))).toEqual(p);
    }
  });
  it('95% intervals use Student t', () => {
    expect(t95(2)).toBeCloseTo(4.303, 3);
    const { mean, ci } = meanCi([0.5, 0.6, 0.7]);
    expect(mean).toBeCloseTo(0.6, 10);
    expect(ci).toBeCloseTo((4.303 * 0.1) / Math.sqrt(3), 6);
    expect(Number.isNaN(meanCi([0.4]).ci)).toBe(true);
  });
});

describe('runs on a random base model', () => {
  it('training is deterministic, reuses every pipeline and buffer, and a new seed changes it', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    const losses = async (seed: number, check: boolean) => {
      const run = new Run(engine, cfg({ seed, steps: 4 }));
      const out: number[] = [];
      out.push((await run.trainStep()).loss);
      const p0 = gpu.pipelinesCompiled;
      const b0 = gpu.buffersCreated;
      const r0 = run.rolloutCount;
      for (let i = 0; i < 3; i++) out.push((await run.trainStep()).loss);
      if (check) {
        expect(gpu.pipelinesCompiled - p0, 'pipelines compiled by training steps').toBe(0);
        expect(gpu.buffersCreated - b0, 'GPU buffers created by training steps').toBe(0);
        expect(run.rolloutCount).toBe(r0);
      }
      const ev = await run.evaluate('heldout');
      run.destroy();
      return { out, preds: ev.predictions, loss: ev.loss };
    };
    const a = await losses(1, true);
    const b = await losses(1, false);
    const c = await losses(2, false);
    expect(b.out).toEqual(a.out);
    expect(b.preds).toEqual(a.preds);
    expect(b.loss).toBe(a.loss);
    expect(c.out).not.toEqual(a.out);
    for (const l of a.out) expect(Number.isFinite(l)).toBe(true);
    engine.destroy();
  });

  it('every method and both controls evaluate on heldout and ood (star and chain topologies)', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    for (const method of METHODS) {
      const run = new Run(engine, cfg({ method, steps: 1, textBudget: 3 }));
      if (run.trains) await run.trainStep();
      for (const split of ['heldout', 'ood'] as const) {
        const o = await run.evaluate(split);
        expect(o.episodes).toBe(6);
        expect(o.predictions).toHaveLength(6);
        expect(o.accuracy).toBeGreaterThanOrEqual(0);
        expect(o.validity).toBeLessThanOrEqual(1);
        expect(Number.isFinite(o.loss)).toBe(true);
        if (method.startsWith('latentmas') || method.startsWith('diffmas')) expect(o.messageFloats).toBeGreaterThan(0);
        if (method === 'latentmas' || method === 'diffmas' || method === 'diffmas-detached') {
          // two latent positions, 2 layers, K and V, kvDim 8
          expect(o.messageFloats).toBe(2 * 2 * 2 * 8);
          expect(o.messagePositions).toBe(2);
        }
        if (method === 'single' || method === 'skyline') expect(o.messageFloats + o.messageTokens).toBe(0);
      }
      if (run.spec.channel !== 'none') {
        for (const control of ['shuffle', 'zero'] as const) expect((await run.evaluate('heldout', control)).episodes).toBe(6);
      } else {
        await expect(run.evaluate('heldout', 'shuffle')).rejects.toThrow(/sends no messages/);
      }
      run.destroy();
    }
    // a three-agent chain (relay) through the latent channel and the text channel
    const relay = makeTask('relay', 1);
    for (const method of ['diffmas', 'text'] as const) {
      const run = new Run(engine, cfg({ method, task: 'relay', topology: chain(3, { latentSteps: 2 }), steps: 1, textBudget: 3 }));
      if (run.trains) await run.trainStep();
      const o = await run.evaluate('ood');
      expect(o.episodes).toBe(6);
      expect(relay.chanceFor('ood')).toBeCloseTo(1 / 26);
      run.destroy();
    }
    engine.destroy();
  });

  it('inspect: attention of the receiver over each sender position, K/V norms, agent inputs and outputs', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    for (const method of ['diffmas-full', 'latentmas', 'text'] as const) {
      const run = new Run(engine, cfg({ method, steps: 1, textBudget: 3 }));
      const r = await run.inspect('heldout', 2);
      const ep = run.evalSet('heldout')[2];
      expect(r.answer).toBe(ep.answer);
      expect(r.agents.map((a) => a.id)).toEqual(['a0', 'a1']);
      expect(r.agents[0].input).toBe(formatPrompt(ep, 0, { send: true }));
      if (method === 'text') {
        expect(r.edges).toEqual([]);
        expect(r.agents[0].output.startsWith('msg:')).toBe(true);
      } else {
        expect(r.edges).toHaveLength(1);
        const e = r.edges[0];
        const P = method === 'diffmas-full' ? tokenizer.encode(r.agents[0].input).length + 2 : 2;
        expect(e.receiver).toBe('a1');
        expect(e.senders).toEqual(['a0']);
        expect(e.senderPositions).toHaveLength(P);
        expect(e.senderPositions.filter((p) => p.kind === 'latent').map((p) => p.label)).toEqual(['z1', 'z2']);
        const R = e.receiverTokens.length;
        expect(e.attention).toHaveLength(2 * 2 * R * P);
        expect(e.keyNorms).toHaveLength(2 * P);
        for (let row = 0; row < 2 * 2 * R; row++) {
          let s = 0;
          for (let t = 0; t < P; t++) {
            const p = e.attention[row * P + t];
            expect(p).toBeGreaterThanOrEqual(0);
            s += p;
          }
          // the rest of each row's mass is on the receiver's own tokens
          expect(s).toBeLessThanOrEqual(1 + 1e-4);
          expect(s).toBeGreaterThan(0);
        }
        expect(r.agents[0].output).toMatch(/2 latent steps: z1~/);
      }
      await expect(run.inspect('heldout', 99)).rejects.toThrow(/outside 0..5/);
      run.destroy();
    }
    engine.destroy();
  });
});

describe('run controller', () => {
  it('start -> progress every step, held-out evaluation every evalEvery steps, done; adapters as PEFT', async () => {
    const gpu = await testGpu();
    const ctl = new RunController(gpu);
    const base = randomBase();
    const seen: RunProgress[] = [];
    await ctl.start(cfg({ steps: 4, evalEvery: 2 }), base, (p) => seen.push(p));
    expect(ctl.status.state).toBe('done');
    const steps = seen.filter((p) => p.state === 'running').map((p) => p.step);
    expect([...new Set(steps)]).toEqual([0, 1, 2, 3, 4]);
    const evals = seen.filter((p) => p.heldoutAccuracy !== null);
    expect(evals[0].step).toBe(2);
    expect(seen.at(-1)!.tokensPerSecond).toBeGreaterThan(0);
    const rows = await ctl.evaluate(['heldout', 'ood']);
    expect(rows.map((r) => r.split)).toEqual(['heldout', 'ood']);
    expect(rows[0]).not.toHaveProperty('predictions');
    const adapters = await ctl.adapters();
    expect(adapters.map((a) => a.agent)).toEqual(['a0', 'a1']);
    for (const a of adapters) {
      expect(a.tensors.has(loraKey(1, 'v_proj', 'B'))).toBe(true);
      const back = decodeAdapter(encodeAdapter(a, base.config), base.config);
      expect(back.tensors.get(loraKey(0, 'q_proj', 'A'))).toEqual(a.tensors.get(loraKey(0, 'q_proj', 'A')));
    }
    // the trained B matrices moved away from their zero init
    expect(adapters[0].tensors.get(loraKey(0, 'k_proj', 'B'))!.some((x) => x !== 0)).toBe(true);
    const ins = await ctl.inspect('heldout', 0);
    expect(ins.edges).toHaveLength(1);
    expect(ins.step).toBe(4); // the final weights' step
    ctl.reset();
    await expect(ctl.evaluate(['heldout'])).rejects.toThrow(/no run/);
    ctl.dispose();
  });

  it('a run stopped at step 3 and continued from its adapters and training state ends as the uninterrupted run, bit for bit', async () => {
    const gpu = await testGpu();
    const base = randomBase();
    const config = cfg({ steps: 6, evalEvery: 3 });
    const straight = new RunController(gpu);
    const seenStraight: RunProgress[] = [];
    await straight.start(config, base, (p) => seenStraight.push(p));
    const { training: trainedStraight, adapters: adaptersStraight } = await straight.checkpoint();
    const lossesStraight = trainedStraight!.losses;
    straight.dispose();
    expect(lossesStraight).toHaveLength(6);

    // the first leg: 3 steps, then its adapters and training state are read (as the page's record keeps them)
    const first = new RunController(gpu);
    first.pause();
    const firstDone = first.start(config, base, () => undefined);
    while (first.status.state !== 'paused') await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 3; i++) await first.step();
    const cp = await first.checkpoint();
    const saved = { adapters: cp.adapters, state: cp.training! };
    expect(cp.step).toBe(3);
    first.stop();
    await firstDone;
    first.dispose();
    expect(saved.state.step).toBe(3);
    expect(saved.state.names.length).toBe(saved.state.m.length);

    // the second leg: a fresh run of the same config, continued; the steps left run to the end
    const second = new RunController(gpu);
    second.pause();
    const seen: RunProgress[] = [];
    const secondDone = second.start(config, base, (p) => seen.push(p));
    while (second.status.state !== 'paused') await new Promise((r) => setTimeout(r, 10));
    await second.continueFrom(saved.adapters, saved.state);
    expect(second.status.step).toBe(3);
    second.resume();
    await secondDone;
    expect(second.status.state).toBe('done');
    const state = (await second.checkpoint()).training!;
    expect(state.losses).toEqual(lossesStraight);
    expect(state.step).toBe(6);
    const adapters = await second.adapters();
    for (let i = 0; i < adapters.length; i++) for (const [k, t] of adapters[i].tensors) expect(t).toEqual(adaptersStraight[i].tensors.get(k));
    // progress goes on from step 4, with the held-out evaluation at step 6 as in the uninterrupted run
    expect([...new Set(seen.filter((p) => p.state === 'running' && p.step > 0).map((p) => p.step))]).toEqual([3, 4, 5, 6]);
    const evalAt = (ps: RunProgress[]) => ps.filter((p) => p.heldoutStep === 6).map((p) => p.heldoutAccuracy)[0];
    expect(evalAt(seen)).toBe(evalAt(seenStraight));
    // a state goes into a fresh run only, and must be this run's
    await expect(second.continueFrom(saved.adapters, saved.state)).rejects.toThrow('a saved state goes into a fresh run only');
    second.dispose();
    const other = new RunController(gpu);
    other.pause();
    const otherDone = other.start(cfg({ steps: 6, lora: { r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] } }), base, () => undefined);
    while (other.status.state !== 'paused') await new Promise((r) => setTimeout(r, 10));
    await expect(other.continueFrom(saved.adapters, saved.state)).rejects.toThrow(/optimizer state: it holds \d+ parameters/);
    other.stop();
    await otherDone;
    other.dispose();
  });

  it('pause, step while paused, resume, stop within one step', async () => {
    const gpu = await testGpu();
    const ctl = new RunController(gpu);
    const base = randomBase();
    const seen: RunProgress[] = [];
    ctl.pause(); // before start: the run begins paused, to be driven step by step
    const done = ctl.start(cfg({ steps: 50 }), base, (p) => seen.push(p));
    await new Promise((r) => setTimeout(r, 50));
    await expect(ctl.step()).resolves.toBeUndefined();
    await ctl.step();
    expect(ctl.status.step).toBe(2);
    expect(ctl.status.state).toBe('paused');
    expect((await ctl.inspect('heldout', 0)).step).toBe(2);
    ctl.resume();
    while (ctl.status.step < 4) await new Promise((r) => setTimeout(r, 20));
    await expect(ctl.step()).rejects.toThrow(/pause it first/);
    ctl.stop();
    await done;
    expect(ctl.status.state).toBe('stopped');
    const at = ctl.status.step;
    expect(at).toBeLessThan(50);
    expect(at).toBeLessThanOrEqual(6);
    ctl.dispose();
  });

  it('a NaN loss ends the run with state error and a message; a bad config is refused', async () => {
    const gpu = await testGpu();
    const ctl = new RunController(gpu);
    const seen: RunProgress[] = [];
    await ctl.start(cfg({ steps: 5 }), baseOf(3, true), (p) => seen.push(p));
    expect(ctl.status.state).toBe('error');
    expect(ctl.status.message).toMatch(/diverged at step 1/);
    await expect(ctl.start(cfg({ batch: 0 }), randomBase(), () => undefined)).rejects.toThrow(/batch/);
    expect(ctl.status.state).toBe('error');
    ctl.dispose();
  });
});

describe('run controller on a lost device', () => {
  it('a device lost mid-run ends it with state error and the message', { timeout: 300_000 }, async () => {
    const gpu = await createNodeGpu();
    const ctl = new RunController(gpu);
    ctl.pause();
    const done = ctl.start(cfg({ steps: 20 }), randomBase(), () => undefined);
    await new Promise((r) => setTimeout(r, 50));
    await ctl.step();
    expect(ctl.status.step).toBe(1);
    gpu.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await ctl.step();
    expect(ctl.status.state).toBe('error');
    expect(ctl.status.message).toMatch(/lost|destroyed|invalid/i);
    await done;
    expect(ctl.status.state).toBe('error');
  });
});

describe('experiment runner', () => {
  it('rows, controls, summary, findings; same request -> same report', async () => {
    const gpu = await testGpu();
    const base = randomBase();
    const req = { base: { ...cfg({ steps: 2 }) }, methods: ['single', 'latentmas', 'diffmas'] as MethodName[], seeds: [1, 2] };
    const msgs: number[] = [];
    const a = await runExperiment(gpu, base, req, (_m, f) => msgs.push(f));
    expect(a.rows).toHaveLength(3 * 2 * 2);
    expect(a.controls).toHaveLength(2 * 2 * 5); // two latent methods, two seeds, shuffle/zero/noise/rotate/permute
    expect(a.summary).toHaveLength(3 * 2);
    expect(a.curves!.map((c) => c.method)).toEqual(['diffmas', 'diffmas']);
    expect(a.findings.some((f) => f.startsWith('heldout ordering'))).toBe(true);
    expect(a.findings.some((f) => /diffmas, messages shuffled across the batch/.test(f))).toBe(true);
    expect(msgs.at(-1)).toBe(1);
    const b = await runExperiment(gpu, base, req, () => undefined);
    expect(b.rows.map((r) => [r.accuracy, r.loss])).toEqual(a.rows.map((r) => [r.accuracy, r.loss]));
    expect(b.controls).toEqual(a.controls);
    await expect(runExperiment(gpu, base, { ...req, methods: [] }, () => undefined)).rejects.toThrow(/at least one method/);
    await expect(runExperiment(gpu, base, { ...req, seeds: [1, 1] }, () => undefined)).rejects.toThrow(/listed twice/);

    // resume: an interrupted run (seed 1 only, saved after each pair) continued over both seeds
    // gives the uninterrupted report; a pair missing a control the new run wants is made again
    const partials: number[] = [];
    const part = await runExperiment(gpu, base, { ...req, seeds: [1] }, () => undefined, { onPartial: (r) => void partials.push(r.rows.length, r.summary.length) });
    expect(partials).toEqual([2, 2, 4, 4, 6, 6]); // rows so far, and a summary row per (method, split)
    const noControls = await runExperiment(gpu, base, { ...req, seeds: [1], methods: ['latentmas'] }, () => undefined, { controls: false });
    const kept: string[] = [];
    const resumed = await runExperiment(gpu, base, req, (m) => void (m.endsWith('kept from the previous run') && kept.push(m)), {
      previous: { ...part, rows: [...part.rows.filter((r) => r.method !== 'latentmas'), ...noControls.rows], controls: part.controls.filter((c) => c.method !== 'latentmas') },
    });
    expect(kept).toEqual(['seed 1 single: kept from the previous run', 'seed 1 diffmas: kept from the previous run']);
    const key = (r: { method: string; seed: number }) => `${r.method}/${r.seed}`;
    const sorted = <T extends { method: string; seed: number }>(xs: T[]) => [...xs].sort((x, y) => key(x).localeCompare(key(y)));
    expect(sorted(resumed.rows).map((r) => [key(r), r.split, r.accuracy, r.loss])).toEqual(sorted(a.rows).map((r) => [key(r), r.split, r.accuracy, r.loss]));
    expect(sorted(resumed.controls)).toEqual(sorted(a.controls));
  });
});
