// The latency budget's T = 0 on the cache side (issue 22, src/mas/latency.ts): a sender with 0 latent
// steps whose receiver reads its full trace, i.e. its prefilled prompt K/V alone. The GPU rollout
// (rollout.ts) against the float64 reference (src/mas/reference.ts), whose gradient is first checked
// against finite differences: the receivers' prefixes (exactly the senders' prompt K/V), the loss, the
// logits and every adapter gradient, which reaches the senders through the prompt K/V alone (no latent
// chain). A star of two senders into one receiver, and a chain of three (relay's shape).
// Sizes and tolerance as tests/mas-gradient.test.ts (D = 12, 3 query / 1 kv heads, f32 against f64:
// 1e-4 normalised error; finite differences of the f64 reference to 1e-5 relative).
import { describe, expect, it } from 'vitest';
import type { ModelConfig, Proj } from '../src/model/config';
import { initRefLora, initRefParams, type RefLora } from '../src/reference/model';
import { computeLatentMap, type LatentMap } from '../src/mas/latentmap';
import { refMasRollout, type RefMasAgent } from '../src/mas/reference';
import { GpuLatentMap, Rollout } from '../src/mas/rollout';
import { centralDiff, gpuFromRef, gradStep, normErr, rng, sharedRefGrad, testGpu } from './helpers';

const CFG: ModelConfig = {
  hidden_size: 12, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1,
  vocab_size: 11, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};
const TOL = 1e-4;
const TARGETS: Proj[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj'];

interface Case {
  name: string;
  agents: { preds: number[]; n: number; adapter: string }[];
  B: number;
}

// every agent has m = 0: the senders' traces are their prompts
const CASES: Case[] = [
  { name: 'a star of two senders with 0 latent steps (lookup at T = 0)', agents: [{ preds: [], n: 3, adapter: 'a' }, { preds: [], n: 4, adapter: 'b' }, { preds: [0, 1], n: 5, adapter: 'c' }], B: 2 },
  { name: 'a chain of three with 0 latent steps (relay at T = 0)', agents: [{ preds: [], n: 4, adapter: 'a' }, { preds: [0], n: 3, adapter: 'b' }, { preds: [1], n: 4, adapter: 'c' }], B: 3 },
];

function setup(c: Case, seed: number) {
  const params = initRefParams(CFG, seed, 0.3);
  const map = computeLatentMap(CFG, params, 'ridge');
  const r = rng(seed + 1);
  const loras = new Map<string, RefLora>();
  c.agents.forEach((a, k) => loras.set(a.adapter, initRefLora(CFG, [0, 1], TARGETS, 3, 6, seed + 10 + k, 0.3)));
  const agents: RefMasAgent[] = c.agents.map((a) => ({
    preds: a.preds, n: a.n, m: 0, trains: true, lora: loras.get(a.adapter),
    ids: Array.from({ length: c.B * a.n }, () => Math.floor(r() * CFG.vocab_size)),
  }));
  const last = c.agents[c.agents.length - 1];
  const targets = Array.from({ length: c.B * last.n }, (_, i) => (i % 3 === 0 ? 0xffffffff : Math.floor(r() * CFG.vocab_size)));
  return { params, map, loras, agents, targets };
}

describe('the full trace with 0 latent steps (latency T = 0)', () => {
  for (const c of CASES) {
    it(`the reference: each sender's trace is its prompt, and its gradient matches finite differences: ${c.name}`, () => {
      const s = setup(c, 21);
      const res = refMasRollout(CFG, s.params, s.agents, c.B, 'full', s.map as LatentMap, s.targets);
      c.agents.slice(0, -1).forEach((a, i) => expect(res.traces[i].length, `sender ${i}'s trace`).toBe(a.n));
      const lossAt = () => refMasRollout(CFG, s.params, s.agents, c.B, 'full', s.map as LatentMap, s.targets).loss;
      // the first sender's adapter: reached only through the prompt K/V its receiver reads (through the middle agent in the chain)
      const checks: [string, string, 'A' | 'B', number][] = [
        ['a', 'model.layers.0.self_attn.k_proj', 'B', 1],
        ['a', 'model.layers.0.self_attn.v_proj', 'A', 2],
        ['a', 'model.layers.1.mlp.up_proj', 'B', 0],
        ['b', 'model.layers.1.self_attn.q_proj', 'A', 3],
        ['c', 'model.layers.1.self_attn.o_proj', 'A', 4],
      ];
      for (const [key, mod, which, idx] of checks) {
        const t = s.loras.get(key)!.targets.get(mod)!;
        const fd = centralDiff(t[which], idx, lossAt);
        const an = sharedRefGrad(c.agents.map((a) => a.adapter), res.loraGrads, key, mod, t.A.length, t.B.length)[which][idx];
        expect(Math.abs(fd - an), `${key} ${mod}.${which}[${idx}] fd ${fd} analytic ${an}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
      }
      expect(Math.abs(res.loraGrads[0].get('model.layers.0.self_attn.k_proj')!.B[1]), 'the first sender learns through its prompt K/V').toBeGreaterThan(1e-6);
    });

    it(`the GPU rollout matches the reference: ${c.name}`, async () => {
      const gpu = await testGpu();
      const s = setup(c, 7);
      const ref = refMasRollout(CFG, s.params, s.agents, c.B, 'full', s.map as LatentMap, s.targets);
      const { model, loras } = gpuFromRef(gpu, CFG, s.params, s.loras, { r: 3, alpha: 6, targets: TARGETS, layers: [0, 1] });
      const gmap = new GpuLatentMap(gpu, s.map);
      const ro = new Rollout(model, {
        B: c.B, trace: 'full', map: gmap,
        agents: c.agents.map((a, i) => ({ id: `g${i}`, preds: a.preds, n: a.n, m: 0, lora: loras.get(a.adapter)!, backward: true })),
      });
      c.agents.forEach((_, i) => ro.setIds(i, s.agents[i].ids));
      ro.setTargets(s.targets);
      await gradStep(gpu, loras.values(), ro);
      // the receivers read the senders' prompts: n positions each, and nothing else
      const received = c.agents.reduce((sum, a) => sum + a.preds.reduce((t, p) => t + c.agents[p].n, 0), 0);
      expect(ro.messageSize().positions).toBe(received);
      const report: [string, number][] = [];
      report.push(['loss', normErr(await gpu.read(ro.final.prompt.loss), [ref.loss])]);
      report.push(['final logits', normErr(await gpu.read(ro.final.prompt.logits), ref.logits)]);
      const fin = ro.final;
      const W = model.dims.kvDim;
      for (let l = 0; l < model.dims.L; l++) {
        const expK = new Float64Array(c.B * fin.P * W);
        let off = 0;
        for (const p of c.agents[c.agents.length - 1].preds) {
          const t = ref.traces[p];
          for (let b = 0; b < c.B; b++) for (let i = 0; i < t.length; i++) for (let w = 0; w < W; w++) expK[(b * fin.P + off + i) * W + w] = t.k[l][(b * t.length + i) * W + w];
          off += t.length;
        }
        report.push([`final prefix K l${l}`, normErr(await gpu.read(fin.pre!.k[l]), expK)]);
      }
      for (const [key, l] of loras) {
        for (const [name, m] of l.modules) {
          const sum = sharedRefGrad(c.agents.map((a) => a.adapter), ref.loraGrads, key, name, m.dA.size, m.dB.size);
          report.push([`${key} d ${name}.lora_A`, normErr(await gpu.read(m.dA), sum.A)]);
          report.push([`${key} d ${name}.lora_B`, normErr(await gpu.read(m.dB), sum.B)]);
        }
      }
      for (const [name, e] of report) expect(e, name).toBeLessThan(TOL);
      ro.destroy();
      for (const l of loras.values()) l.destroy();
      gmap.destroy();
      model.destroy();
    });
  }
});
