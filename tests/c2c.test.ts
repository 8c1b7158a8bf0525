// Cache-to-Cache (method c2c, src/mas/c2c-fuser.ts): the gate kernels (shaders/c2c.wgsl) against the
// plain-TS reference on odd sizes and with a capped grid; the reference fuser's backward and the whole
// float64 c2c rollout's fuser gradient against finite differences; the GPU rollout with a fuser against
// that reference (loss, logits, fused prefix, every fuser gradient); the method's wiring in a Run (at
// init it answers exactly as latentmas-full, its loss falls, only the fuser trains); bad input refused.
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../src/model/config';
import { initRefParams } from '../src/reference/model';
import { computeLatentMap } from '../src/mas/latentmap';
import { GpuLatentMap, Rollout } from '../src/mas/rollout';
import { prepareFuse, prepareFuseBackward, prepareGateGrad } from '../src/gpu/ops/c2c';
import { C2cFuserGpu, checkFuser, fuserKey, GATE_KEY, initialFuser, refFuse, refFuseBackward, type FuserWeights } from '../src/mas/c2c-fuser';
import { refC2cRollout, type RefC2cAgent } from '../src/mas/c2c-reference';
import { defaultRunConfig, MasEngine, Run } from '../src/mas/run';
import { validateRunConfig, METHOD_SPECS } from '../src/mas/methods';
import { presetForTask } from '../src/mas/topology';
import { makeTask } from '../src/tasks/tasks';
import type { RunConfig } from '../src/mas/run-types';
import { centralDiff, gpuFromRef, normErr, randomBase, rng, testGpu } from './helpers';

const CFG: ModelConfig = {
  hidden_size: 12, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1,
  vocab_size: 11, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};
// f32 GPU against the float64 reference, max error over the largest value of each tensor: the tolerance
// of the DiffMAS rollout check (tests/mas-gradient.test.ts), whose passes and weights (N(0, 0.3^2)) these are
const TOL = 1e-4;
const PARAM_STD = 0.3;

/** A fuser away from its init, so the projector and the gate both matter: A ~ N(0, 0.3^2), gates in [-1.5, 1.5]. */
function randomFuser(L: number, W: number, seed: number): Map<string, Float64Array> {
  const r = rng(seed);
  const out = new Map<string, Float64Array>();
  for (const [k, v] of initialFuser(L, W)) {
    out.set(k, Float64Array.from(v, () => (k === GATE_KEY ? 3 * (r() - 0.5) : 0.3 * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()))));
  }
  return out;
}

const f32 = (m: Map<string, Float64Array>): FuserWeights => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));

describe('c2c gate kernels vs the reference', () => {
  it('fuse, its backward and the gate gradient on odd sizes, with a capped grid', async () => {
    const gpu = await testGpu();
    for (const [R, W, cap] of [[37, 5, undefined], [211, 7, 2], [3, 1, 1]] as const) {
      const r = rng(R * 10 + W);
      const x = Float32Array.from({ length: R * W }, () => r() - 0.5);
      const A = Float32Array.from({ length: W * W }, () => r() - 0.5);
      const dy = Float32Array.from({ length: R * W }, () => r() - 0.5);
      const gates = Float32Array.of(0.3, -0.7, 1.2);
      const gi = 1;
      const ref = refFuse(x, A, gates[gi], R, W);
      const bw = refFuseBackward(x, ref.t, A, gates[gi], dy, R, W);
      const n = R * W;
      const tx = gpu.tensor([n], 'x', x);
      const tt = gpu.tensor([n], 't', Float32Array.from(ref.t));
      const tg = gpu.tensor([3], 'gate', gates);
      const ty = gpu.tensor([n], 'y');
      const tdy = gpu.tensor([n], 'dy', dy);
      const tdx = gpu.tensor([n], 'dx');
      const tdt = gpu.tensor([n], 'dt');
      const tdg = gpu.tensor([3], 'dgate', Float32Array.of(0.5, 0.25, -1));
      const o = cap ? { maxWorkgroups: cap } : {};
      gpu.record(prepareFuse(gpu, tx, tt, tg, gi, ty, n, o), prepareFuseBackward(gpu, tdy, tg, gi, tdx, tdt, n, o), prepareGateGrad(gpu, tt, tdy, tg, gi, tdg, n));
      expect(normErr(await gpu.read(ty), ref.y), `y R${R} W${W}`).toBeLessThan(1e-6);
      expect(normErr(await gpu.read(tdx), dy), `dx R${R} W${W}`).toBe(0);
      const s = 1 / (1 + Math.exp(-gates[gi]));
      expect(normErr(await gpu.read(tdt), Float64Array.from(dy, (d) => s * d)), `dt R${R} W${W}`).toBeLessThan(1e-6);
      // accumulates into its own slot only
      const dg = await gpu.read(tdg);
      expect([dg[0], dg[2]]).toEqual([0.5, -1]);
      expect(Math.abs(dg[1] - (0.25 + bw.dgate))).toBeLessThan(1e-5 * (1 + Math.abs(bw.dgate)));
      for (const t of [tx, tt, tg, ty, tdy, tdx, tdt, tdg]) gpu.destroy(t);
    }
  });

  it('refuses a gate index outside the gate and a short tensor', async () => {
    const gpu = await testGpu();
    const a = gpu.tensor([8], 'a');
    const b = gpu.tensor([8], 'b');
    const g = gpu.tensor([2], 'g');
    const y = gpu.tensor([4], 'y');
    expect(() => prepareFuse(gpu, a, b, g, 2, y, 4)).toThrow(/gate index 2 is outside/);
    expect(() => prepareFuse(gpu, a, b, g, 0, y, 8)).toThrow(/y \(y\) has 4 values, needs 8/);
    expect(() => prepareFuse(gpu, a, b, g, 0, a, 4)).toThrow(/same buffer/);
    for (const t of [a, b, g, y]) gpu.destroy(t);
  });
});

describe('c2c reference gradients vs finite differences', () => {
  it('the fuser alone: dx, dA and dgate', () => {
    const R = 5;
    const W = 3;
    const r = rng(4);
    const x = Float64Array.from({ length: R * W }, () => r() - 0.5);
    const A = Float64Array.from({ length: W * W }, () => r() - 0.5);
    const dy = Float64Array.from({ length: R * W }, () => r() - 0.5);
    const gate = Float64Array.of(0.4);
    const f = () => refFuse(x, A, gate[0], R, W).y.reduce((s, v, i) => s + v * dy[i], 0);
    const { t } = refFuse(x, A, gate[0], R, W);
    const bw = refFuseBackward(x, t, A, gate[0], dy, R, W);
    for (const i of [0, 4, 14]) expect(Math.abs(centralDiff(x, i, f) - bw.dx[i])).toBeLessThan(1e-8);
    for (const i of [0, 5, 8]) expect(Math.abs(centralDiff(A, i, f) - bw.dA[i])).toBeLessThan(1e-8);
    expect(Math.abs(centralDiff(gate, 0, f) - bw.dgate)).toBeLessThan(1e-8);
  });

  const CASES: { name: string; agents: { preds: number[]; n: number; m: number }[]; B: number; positions?: 'stream' | 'prefix' }[] = [
    { name: 'two agents, two latent steps', agents: [{ preds: [], n: 3, m: 2 }, { preds: [0], n: 4, m: 0 }], B: 2 },
    // the middle agent reads a fused prefix and sends on: the gradient goes through its passes and latent chain
    { name: 'chain 0 -> 1 -> 2 and 0 -> 2, prefix positions', agents: [{ preds: [], n: 2, m: 1 }, { preds: [0], n: 3, m: 2 }, { preds: [0, 1], n: 3, m: 0 }], B: 2, positions: 'prefix' },
  ];

  function setup(c: (typeof CASES)[number], seed: number) {
    const params = initRefParams(CFG, seed, PARAM_STD);
    const map = computeLatentMap(CFG, params, 'ridge');
    const r = rng(seed + 1);
    const agents: RefC2cAgent[] = c.agents.map((a) => ({ ...a, ids: Array.from({ length: c.B * a.n }, () => Math.floor(r() * CFG.vocab_size)) }));
    const last = c.agents[c.agents.length - 1];
    const targets = Array.from({ length: c.B * last.n }, (_, i) => (i % 3 === 0 ? 0xffffffff : Math.floor(r() * CFG.vocab_size)));
    const W = (CFG.hidden_size / CFG.num_attention_heads) * CFG.num_key_value_heads!;
    return { params, map, agents, targets, fuser: randomFuser(CFG.num_hidden_layers, W, seed + 2) };
  }

  for (const c of CASES) {
    it(`the c2c rollout's fuser gradient: ${c.name}`, () => {
      const s = setup(c, 11);
      const run = () => refC2cRollout(CFG, s.params, s.fuser, s.agents, c.B, s.map, s.targets, c.positions);
      const res = run();
      const lossAt = () => run().loss;
      const checks: [string, number][] = [[fuserKey(0, 'k'), 1], [fuserKey(0, 'v'), 7], [fuserKey(1, 'k'), 15], [fuserKey(1, 'v'), 0], [GATE_KEY, 0], [GATE_KEY, 1], [GATE_KEY, 2], [GATE_KEY, 3]];
      for (const [key, idx] of checks) {
        const fd = centralDiff(s.fuser.get(key)!, idx, lossAt);
        const an = res.grads.get(key)![idx];
        expect(Math.abs(fd - an), `${key}[${idx}] fd ${fd} analytic ${an}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
      }
      expect(Math.abs(res.grads.get(fuserKey(0, 'k'))![1])).toBeGreaterThan(1e-6);
    });
  }

  it('at init (A = 0) the fused prefix is the received trace and the gate has no gradient', () => {
    const c = CASES[0];
    const s = setup(c, 5);
    const W = (CFG.hidden_size / CFG.num_attention_heads) * CFG.num_key_value_heads!;
    const init = new Map([...initialFuser(CFG.num_hidden_layers, W)].map(([k, v]) => [k, Float64Array.from(v)]));
    const res = refC2cRollout(CFG, s.params, init, s.agents, c.B, s.map, s.targets);
    expect([...res.grads.get(GATE_KEY)!].every((g) => g === 0)).toBe(true);
    expect(Math.max(...res.grads.get(fuserKey(1, 'v'))!.map(Math.abs))).toBeGreaterThan(0);
  });

  for (const c of CASES) {
    it(`GPU rollout with a fuser vs the reference: ${c.name}`, async () => {
      const gpu = await testGpu();
      const s = setup(c, 7);
      const ref = refC2cRollout(CFG, s.params, s.fuser, s.agents, c.B, s.map, s.targets, c.positions);
      const { model } = gpuFromRef(gpu, CFG, s.params, new Map(), { r: 1, alpha: 1, targets: ['q_proj'], layers: null });
      const gmap = new GpuLatentMap(gpu, s.map);
      const { L, kvDim: W } = model.dims;
      const fuser = new C2cFuserGpu(gpu, L, W, f32(s.fuser));
      const ro = new Rollout(model, {
        B: c.B, trace: 'full', map: gmap, positions: c.positions, fuser,
        agents: c.agents.map((a, i) => ({ id: `g${i}`, preds: a.preds, n: a.n, m: a.m, lora: null, backward: a.preds.length > 0 })),
      });
      c.agents.forEach((_, i) => ro.setIds(i, s.agents[i].ids));
      ro.setTargets(s.targets);
      const report: [string, number][] = [];
      for (let rep = 0; rep < 2; rep++) {
        // twice, gradients cleared: the second step reuses every buffer and gives the same numbers
        for (const t of [...fuser.dA.flat(), fuser.dgate]) gpu.clear(t);
        const b0 = gpu.buffersCreated;
        ro.recordForward();
        ro.recordBackward();
        await gpu.sync();
        if (rep === 1) expect(gpu.buffersCreated - b0, 'buffers created by a repeated step').toBe(0);
      }
      report.push(['loss', normErr(await gpu.read(ro.final.prompt.loss), [ref.loss])]);
      report.push(['final logits', normErr(await gpu.read(ro.final.prompt.logits), ref.logits)]);
      for (let l = 0; l < L; l++) {
        report.push([`final fused prefix K l${l}`, normErr(await gpu.read(ro.final.pre!.k[l]), ref.prefixes[c.agents.length - 1].k[l])]);
        report.push([`final fused prefix V l${l}`, normErr(await gpu.read(ro.final.pre!.v[l]), ref.prefixes[c.agents.length - 1].v[l])]);
        report.push([`d ${fuserKey(l, 'k')}`, normErr(await gpu.read(fuser.dA[l][0]), ref.grads.get(fuserKey(l, 'k'))!)]);
        report.push([`d ${fuserKey(l, 'v')}`, normErr(await gpu.read(fuser.dA[l][1]), ref.grads.get(fuserKey(l, 'v'))!)]);
      }
      report.push(['d gate', normErr(await gpu.read(fuser.dgate), ref.grads.get(GATE_KEY)!)]);
      const worst = report.reduce((a, b) => (b[1] > a[1] ? b : a));
      console.log(`c2c ${c.name}: ${report.length} tensors, worst ${worst[0]} ${worst[1].toExponential(2)}`);
      for (const [name, e] of report) expect(e, name).toBeLessThan(TOL);
      ro.destroy();
      fuser.destroy();
      gmap.destroy();
      model.destroy();
    });
  }
});

describe('c2c in a run', () => {
  const lookup = makeTask('lookup', 1);
  const TOPO = presetForTask(lookup, { latentSteps: 2 });
  const cfg = (over: Partial<RunConfig> = {}): RunConfig =>
    defaultRunConfig({ topology: TOPO, modelId: 'random', steps: 4, batch: 4, evalSize: 8, evalEvery: 0, lr: 1e-2, lora: { r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] }, ...over });

  it('is a trained latent method over the full trace with no adapter; at init it answers as latentmas-full; only the fuser trains', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    expect(METHOD_SPECS.c2c).toMatchObject({ channel: 'latent', trace: 'full', train: 'fuser' });
    const c2c = new Run(engine, cfg({ method: 'c2c' }));
    const full = new Run(engine, cfg({ method: 'latentmas-full' }));
    expect(c2c.trains).toBe(true);
    expect(c2c.adapters.size).toBe(0);
    expect(await c2c.exportAdapters()).toEqual([]);
    const a = await c2c.evaluate('heldout');
    const b = await full.evaluate('heldout');
    expect(a.predictions).toEqual(b.predictions);
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-6 * Math.max(1, Math.abs(b.loss)));
    expect(a.messagePositions).toBe(b.messagePositions);
    const before = await c2c.exportFuser();
    const losses: number[] = [];
    for (let i = 0; i < 4; i++) losses.push((await c2c.trainStep()).loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    const after = (await c2c.exportFuser())!;
    expect(after.get(fuserKey(0, 'k'))!.some((v) => v !== 0)).toBe(true);
    expect(after.get(GATE_KEY)!.some((v) => v !== before!.get(GATE_KEY)![0])).toBe(true);
    const state = await c2c.trainingState();
    expect(state.names).toEqual([...initialFuser(2, engine.model.dims.kvDim).keys()]);
    // every control of the latent channel runs on the fused prefix
    for (const control of ['shuffle', 'zero', 'noise', 'rotate', 'permute'] as const) expect(Number.isFinite((await c2c.evaluate('heldout', control)).accuracy)).toBe(true);
    // a fuser loaded into a fresh run gives the trained run's answers
    const again = new Run(engine, cfg({ method: 'c2c' }));
    again.loadFuser(after);
    expect((await again.evaluate('heldout')).predictions).toEqual((await c2c.evaluate('heldout')).predictions);
    expect(() => full.loadFuser(after)).toThrow(/only c2c/);
    for (const r of [c2c, full, again]) r.destroy();
    engine.destroy();
  });

  it('the loss falls over 30 steps (the fuser learns)', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase(5));
    // fresh batches each step: the mean of the last five losses below that of the first five
    const run = new Run(engine, cfg({ method: 'c2c', steps: 30, lr: 3e-2, batch: 8 }));
    const losses: number[] = [];
    for (let i = 0; i < 30; i++) losses.push((await run.trainStep()).loss);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
    run.destroy();
    engine.destroy();
  });

  it('refuses bad input by name', () => {
    expect(() => validateRunConfig(cfg({ method: 'c2c', steps: 0 }))).toThrow(/c2c trains .*steps must be at least 1/);
    const w = initialFuser(2, 4);
    expect(() => checkFuser(w, 2, 4)).not.toThrow();
    expect(() => checkFuser(w, 3, 4)).toThrow(/layers\.2\.k\.A is missing/);
    expect(() => checkFuser(w, 2, 5)).toThrow(/has 16 values, expected 25/);
    const extra = new Map(w);
    extra.set('bias', new Float32Array(1));
    expect(() => checkFuser(extra, 2, 4)).toThrow(/unexpected tensor bias/);
  });
});
