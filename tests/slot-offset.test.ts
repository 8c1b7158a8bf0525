// The learned latent slot offsets (RunConfig.latentSlotOffset; src/mas/slot-offset.ts): the float64
// reference's offset gradient against finite differences, the GPU rollout's loss and offset (and LoRA)
// gradients against the reference (TOL as tests/mas-gradient.test.ts: 1e-4 relative to the largest
// value, f32 through six chained passes), the file codec, and a run that trains, saves and reloads them.
import { describe, expect, it } from 'vitest';
import type { ModelConfig, Proj } from '../src/model/config';
import { initRefLora, initRefParams, type RefLora } from '../src/reference/model';
import { computeLatentMap, type LatentMap } from '../src/mas/latentmap';
import { refMasRollout, type RefMasAgent } from '../src/mas/reference';
import { GpuLatentMap, Rollout } from '../src/mas/rollout';
import { SlotOffsetGpu, slotOffsetParamName } from '../src/mas/slot-offset';
import { decodeSlotOffset, encodeSlotOffset, SLOT_OFFSET_FILE, slotOffsetOfFiles, withSlotOffsetFile } from '../src/storage/slot-offset';
import { encodeSafetensors } from '../src/storage/safetensors';
import { defaultRunConfig, MasEngine, Run } from '../src/mas/run';
import { RunController } from '../src/mas/controller';
import { validateRunConfig } from '../src/mas/methods';
import { presetForTask } from '../src/mas/topology';
import { makeTask } from '../src/tasks/tasks';
import type { RunConfig } from '../src/mas/run-types';
import { loadBaseModel, readFolder } from '../src/cli/files';
import { runBundleContent } from '../src/mas/run-data';
import { runRecordFromBundle } from '../src/mas/run-import';
import { validateConfig } from '../src/storage/checkpoint';
import { readRunBundle, writeRunBundle } from '../src/storage/run-bundle';
import { centralDiff, gpuFromRef, gradStep, normErr, randomBase, rng, sharedRefGrad, testGpu } from './helpers';

const CFG: ModelConfig = {
  hidden_size: 12, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1,
  vocab_size: 11, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};
const D = CFG.hidden_size;
const TOL = 1e-4;
const TARGETS: Proj[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];

interface Case {
  name: string;
  agents: { preds: number[]; n: number; m: number; adapter: string; slots: number }[];
  trace: 'latent' | 'full';
  map: 'ridge' | 'identity';
  B: number;
}

const CASES: Case[] = [
  {
    name: 'two agents, three latent steps, ridge map, own adapters',
    agents: [{ preds: [], n: 3, m: 3, adapter: 'a', slots: 3 }, { preds: [0], n: 4, m: 0, adapter: 'b', slots: 0 }],
    trace: 'latent', map: 'ridge', B: 3,
  },
  {
    name: 'three agents sharing one adapter and its offsets (m = 3 and 2), full trace, identity map',
    agents: [
      { preds: [], n: 2, m: 3, adapter: 's', slots: 3 },
      { preds: [0], n: 3, m: 2, adapter: 's', slots: 3 },
      { preds: [0, 1], n: 3, m: 0, adapter: 's', slots: 0 },
    ],
    trace: 'full', map: 'identity', B: 2,
  },
];

function setup(c: Case, seed: number, offsetStd = 0.5) {
  const params = initRefParams(CFG, seed, 0.3);
  const map = computeLatentMap(CFG, params, c.map);
  const r = rng(seed + 1);
  const loras = new Map<string, RefLora>();
  const offsets = new Map<string, Float64Array>();
  let k = 0;
  for (const a of c.agents) {
    if (!loras.has(a.adapter)) loras.set(a.adapter, initRefLora(CFG, [0, 1], TARGETS, 3, 6, seed + 10 + k++, 0.3));
    // nonzero offsets: the test sees their forward too, not only the gradient at 0
    if (a.slots && !offsets.has(a.adapter)) offsets.set(a.adapter, Float64Array.from({ length: a.slots * D }, () => (r() * 2 - 1) * offsetStd));
  }
  const agents: RefMasAgent[] = c.agents.map((a) => ({
    preds: a.preds, n: a.n, m: a.m, trains: true, lora: loras.get(a.adapter), slotOffset: a.slots ? offsets.get(a.adapter) : undefined,
    ids: Array.from({ length: c.B * a.n }, () => Math.floor(r() * CFG.vocab_size)),
  }));
  const last = c.agents[c.agents.length - 1];
  const targets = Array.from({ length: c.B * last.n }, (_, i) => (i % 3 === 0 ? 0xffffffff : Math.floor(r() * CFG.vocab_size)));
  return { params, map, loras, offsets, agents, targets };
}

/** The reference's offset gradient of adapter `key`: the sum over the agents that share it. */
function offsetGrad(c: Case, grads: (Float64Array | null)[], key: string): Float64Array {
  const slots = c.agents.find((a) => a.adapter === key && a.slots)!.slots;
  const out = new Float64Array(slots * D);
  c.agents.forEach((a, i) => {
    if (a.adapter === key && grads[i]) grads[i]!.forEach((v, j) => (out[j] += v));
  });
  return out;
}

describe('latent slot offsets: reference', () => {
  it('zero offsets give exactly the rollout without them', () => {
    const c = CASES[0];
    const s = setup(c, 5, 0);
    const withZero = refMasRollout(CFG, s.params, s.agents, c.B, c.trace, s.map as LatentMap, s.targets);
    const without = refMasRollout(CFG, s.params, s.agents.map(({ slotOffset: _, ...a }) => a), c.B, c.trace, s.map as LatentMap, s.targets);
    expect(withZero.loss).toBe(without.loss);
    expect(withZero.slotOffsetGrads[0]!.some((v) => v !== 0)).toBe(true);
    expect(without.slotOffsetGrads[0]).toBeNull();
  });

  for (const c of CASES) {
    it(`the offset gradient matches finite differences: ${c.name}`, () => {
      const s = setup(c, 21);
      const res = refMasRollout(CFG, s.params, s.agents, c.B, c.trace, s.map as LatentMap, s.targets);
      const lossAt = () => refMasRollout(CFG, s.params, s.agents, c.B, c.trace, s.map as LatentMap, s.targets).loss;
      const key = c.agents[0].adapter;
      const an = offsetGrad(c, res.slotOffsetGrads, key);
      const o = s.offsets.get(key)!;
      // every slot, a few coordinates each (the last slot of a shared adapter is used by one agent only)
      for (let k = 0; k < c.agents[0].slots; k++) {
        for (const d of [0, 5, D - 1]) {
          const idx = k * D + d;
          const fd = centralDiff(o, idx, lossAt);
          expect(Math.abs(fd - an[idx]), `o${k}[${d}] fd ${fd} analytic ${an[idx]}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
        }
      }
      expect(Math.max(...an.map(Math.abs))).toBeGreaterThan(1e-4);
    });
  }
});

describe('latent slot offsets: GPU rollout against the reference', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const gpu = await testGpu();
      const s = setup(c, 7);
      const ref = refMasRollout(CFG, s.params, s.agents, c.B, c.trace, s.map as LatentMap, s.targets);
      const { model, loras } = gpuFromRef(gpu, CFG, s.params, s.loras, { r: 3, alpha: 6, targets: TARGETS, layers: [0, 1] });
      const gmap = new GpuLatentMap(gpu, s.map);
      const offs = new Map<string, SlotOffsetGpu>();
      for (const [key, o] of s.offsets) {
        const g = new SlotOffsetGpu(gpu, o.length / D, D, `o ${key}`);
        g.load({ slots: o.length / D, dim: D, data: Float32Array.from(o) }, key);
        offs.set(key, g);
      }
      const ro = new Rollout(model, {
        B: c.B, trace: c.trace, map: gmap,
        agents: c.agents.map((a, i) => ({ id: `g${i}`, preds: a.preds, n: a.n, m: a.m, lora: loras.get(a.adapter)!, backward: true, slotOffset: a.m ? offs.get(a.adapter) : null })),
      });
      c.agents.forEach((_, i) => ro.setIds(i, s.agents[i].ids));
      ro.setTargets(s.targets);
      const report: [string, number][] = [];
      for (let rep = 0; rep < 2; rep++) {
        for (const g of offs.values()) g.d.forEach((t) => gpu.clear(t));
        const made = await gradStep(gpu, loras.values(), ro);
        if (rep === 1) expect(made.pipelines + made.buffers, 'pipelines and buffers made by a repeated step').toBe(0);
      }
      report.push(['loss', normErr(await gpu.read(ro.final.prompt.loss), [ref.loss])]);
      for (const [key, g] of offs) {
        const want = offsetGrad(c, ref.slotOffsetGrads, key);
        const got = new Float32Array(want.length);
        for (let k = 0; k < g.slots; k++) got.set(await gpu.read(g.d[k]), k * D);
        report.push([`${key} d offset`, normErr(got, want)]);
      }
      for (const [key, l] of loras) {
        for (const [name, m] of l.modules) {
          const sum = sharedRefGrad(c.agents.map((a) => a.adapter), ref.loraGrads, key, name, m.dA.size, m.dB.size);
          report.push([`${key} d ${name}.lora_A`, normErr(await gpu.read(m.dA), sum.A)]);
          report.push([`${key} d ${name}.lora_B`, normErr(await gpu.read(m.dB), sum.B)]);
        }
      }
      const worst = report.reduce((a, b) => (b[1] > a[1] ? b : a));
      console.log(`${c.name}: ${report.length} tensors, worst ${worst[0]} ${worst[1].toExponential(2)}`);
      for (const [name, e] of report) expect(e, name).toBeLessThan(TOL);
      // more latent steps than slots is refused
      expect(() => new Rollout(model, { B: 1, trace: 'latent', map: gmap, agents: [
        { id: 's', preds: [], n: 2, m: 4, lora: null, backward: false, slotOffset: [...offs.values()][0] },
        { id: 'r', preds: [0], n: 2, m: 0, lora: null, backward: false },
      ] })).toThrow(/4 latent steps but 3 slot offsets/);
      ro.destroy();
      for (const l of loras.values()) l.destroy();
      for (const g of offs.values()) g.destroy();
      gmap.destroy();
      model.destroy();
    });
  }
});

describe('latent slot offsets: the file', () => {
  it('round-trips and refuses what does not fit by name', () => {
    const s = { slots: 3, dim: 4, data: Float32Array.from({ length: 12 }, (_, i) => i / 7 - 0.5) };
    expect(decodeSlotOffset(encodeSlotOffset(s), 4)).toEqual(s);
    expect(() => decodeSlotOffset(encodeSlotOffset(s), 5)).toThrow(/shape \[3, 4\], expected \[slots, 5\]/);
    expect(() => encodeSlotOffset({ ...s, data: s.data.subarray(1) })).toThrow(/11 values for shape \[3, 4\]/);
    expect(() => encodeSlotOffset({ ...s, data: Float32Array.from([...s.data.subarray(1), NaN]) })).toThrow(/value NaN at index 11/);
    const two = encodeSafetensors(new Map([['latent_slot_offset', { shape: [1, 4], data: new Float32Array(4) }], ['x', { shape: [1], data: new Float32Array(1) }]]));
    expect(() => decodeSlotOffset(two, 4)).toThrow(/must hold the one tensor latent_slot_offset, it holds latent_slot_offset, x/);
    expect(() => decodeSlotOffset(new Uint8Array([1, 2, 3]), 4)).toThrow(/latent_slot_offset.safetensors cannot be read/);
    const files = withSlotOffsetFile(new Map(), s);
    expect([...files.keys()]).toEqual([SLOT_OFFSET_FILE]);
    expect(slotOffsetOfFiles(files, 4)).toEqual(s);
    expect(slotOffsetOfFiles(new Map(), 4)).toBeUndefined();
  });
});

describe('latent slot offsets in a run', () => {
  const lookup = makeTask('lookup', 1);
  const TOPO = presetForTask(lookup, { latentSteps: 2 });
  const cfg = (over: Partial<RunConfig> = {}): RunConfig =>
    defaultRunConfig({ topology: TOPO, modelId: 'random', steps: 4, batch: 4, evalSize: 8, evalEvery: 0, lr: 1e-2, lora: { r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] }, ...over });

  it('trains with the LoRA, is exported with its adapter and loaded back; off, nothing changes', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    const run = new Run(engine, cfg({ latentSlotOffset: true }));
    const plain = new Run(engine, cfg());
    const senders = run.plan.filter((pa) => !pa.final).map((pa) => pa.agent.id);
    expect([...run.slotOffsets.keys()]).toEqual(senders);
    expect(plain.slotOffsets.size).toBe(0);
    // zero at the start: the same answers and loss as the run without offsets
    const a0 = await run.evaluate('heldout');
    const b0 = await plain.evaluate('heldout');
    expect(a0.predictions).toEqual(b0.predictions);
    expect(a0.loss).toBe(b0.loss);
    const names = (await run.trainingState()).names;
    expect(names.filter((n) => n.startsWith('latent_slot_offset'))).toEqual(senders.flatMap(() => [slotOffsetParamName(0), slotOffsetParamName(1)]));
    expect((await plain.trainingState()).names.some((n) => n.startsWith('latent_slot_offset'))).toBe(false);
    const la: number[] = [];
    const lb: number[] = [];
    for (let i = 0; i < 3; i++) {
      la.push((await run.trainStep()).loss);
      lb.push((await plain.trainStep()).loss);
    }
    // the same first step (the offsets are 0 and move only after it), then the runs part
    expect(la[0]).toBe(lb[0]);
    const adapters = await run.exportAdapters();
    for (const a of adapters) {
      if (senders.includes(a.agent)) {
        expect(a.slotOffset!.slots).toBe(2);
        expect(a.slotOffset!.dim).toBe(engine.model.dims.D);
        expect(a.slotOffset!.data.some((v) => v !== 0)).toBe(true);
      } else expect(a.slotOffset).toBeUndefined();
    }
    expect((await plain.exportAdapters()).every((a) => a.slotOffset === undefined)).toBe(true);
    // loaded into a fresh run (through the controller's loader): the trained run's answers
    const ctl = new RunController(gpu);
    await ctl.prepare(cfg({ latentSlotOffset: true, steps: 1 }), randomBase(), () => undefined);
    await ctl.loadAdapters(adapters);
    const back = await ctl.adapters();
    for (const a of adapters) expect(back.find((x) => x.agent === a.agent)!.slotOffset).toEqual(a.slotOffset);
    await expect(ctl.loadAdapters(adapters.map(({ slotOffset: _, ...a }) => a))).rejects.toThrow(/has no latent slot offsets .* which this run \(latentSlotOffset\) trains/);
    ctl.dispose();
    const ctl2 = new RunController(gpu);
    await ctl2.prepare(cfg({ steps: 1 }), randomBase(), () => undefined);
    await expect(ctl2.loadAdapters(adapters)).rejects.toThrow(/latent slot offsets, which this run does not use \(turn latentSlotOffset on\)/);
    ctl2.dispose();
    run.destroy();
    plain.destroy();
    engine.destroy();
  });

  it('a run bundle carries the offsets beside each sender\u2019s adapter, which read back and import as the record\u2019s', async () => {
    const gpu = await testGpu();
    const TINY = 'public/models/tiny';
    const base = await loadBaseModel(TINY);
    const engine = new MasEngine(gpu, base);
    const config = cfg({ modelId: TINY, steps: 2, latentSlotOffset: true });
    const run = new Run(engine, config);
    const initialAdapters = await run.exportAdapters();
    for (let i = 0; i < 2; i++) await run.trainStep();
    const adapters = await run.exportAdapters();
    const src = { config, base, baseFiles: await readFolder(TINY), adapters, initialAdapters, createdBy: 'test', stepsDone: 2, losses: run.losses.slice(), evaluation: [], heldout: [], wallSeconds: null };
    const files = writeRunBundle(runBundleContent(src));
    const D = base.config.hidden_size;
    expect(slotOffsetOfFiles(new Map([[SLOT_OFFSET_FILE, files.get(`adapters/a0/${SLOT_OFFSET_FILE}`)!]]), D)).toEqual(adapters.find((a) => a.agent === 'a0')!.slotOffset);
    expect(slotOffsetOfFiles(new Map([[SLOT_OFFSET_FILE, files.get(`initial_adapters/a0/${SLOT_OFFSET_FILE}`)!]]), D)!.data.every((v) => v === 0)).toBe(true);
    expect(files.has(`adapters/a1/${SLOT_OFFSET_FILE}`)).toBe(false);
    const imported = runRecordFromBundle(files, (b) => validateConfig(JSON.parse(new TextDecoder().decode(b.get('config.json')!))), { fallbackId: 'run:x', label: 'x', now: 0 });
    expect(imported.record.adapters.final.find((a) => a.agent === 'a0')!.slotOffset).toEqual(adapters.find((a) => a.agent === 'a0')!.slotOffset);
    expect(imported.record.adapters.initial.find((a) => a.agent === 'a0')!.slotOffset!.slots).toBe(2);
    // a damaged offsets file is refused, naming it
    const bad = new Map(files);
    bad.set(`adapters/a0/${SLOT_OFFSET_FILE}`, encodeSlotOffset({ slots: 2, dim: D + 1, data: new Float32Array(2 * (D + 1)) }));
    expect(() => readRunBundle(bad)).toThrow(new RegExp(`adapters/a0: ${SLOT_OFFSET_FILE}: latent_slot_offset has shape \\[2, ${D + 1}\\], expected \\[slots, ${D}\\]`));
    run.destroy();
    engine.destroy();
  });

  it('refuses methods that cannot train offsets, and non-booleans', () => {
    expect(() => validateRunConfig(cfg({ latentSlotOffset: true, method: 'diffmas-full' }))).not.toThrow();
    expect(() => validateRunConfig(cfg({ latentSlotOffset: true, method: 'latentmas' }))).toThrow(/method latentmas trains nothing: use diffmas or diffmas-full/);
    expect(() => validateRunConfig(cfg({ latentSlotOffset: true, method: 'diffmas-detached' }))).toThrow(/trains the receiver only/);
    expect(() => validateRunConfig(cfg({ latentSlotOffset: true, method: 'text-trained' }))).toThrow(/has no latent steps/);
    expect(() => validateRunConfig(cfg({ latentSlotOffset: 'yes' as never }))).toThrow(/latentSlotOffset must be true or false, got "yes"/);
    expect(() => validateRunConfig(cfg({ latentSlotOffset: false, method: 'text' }))).not.toThrow();
  });
});
