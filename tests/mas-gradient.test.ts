// The multi-agent gradient path on the GPU (rollout.ts) against the float64 CPU reference
// (src/mas/reference.ts): receivers' prefixes, the loss and EVERY adapter gradient, which reaches the
// senders only through the receiver's attention over their K/V, the latent chain (BPTT) and the
// latent map W_a with its rescaling. The reference's own chaining is checked against finite
// differences first. Odd sizes throughout (D=12, 3 query / 1 kv heads... see CFG).
import { describe, expect, it } from 'vitest';
import type { ModelConfig, Proj } from '../src/model/config';
import { initRefLora, initRefParams, type RefLora } from '../src/reference/model';
import { applyLatentMap, computeLatentMap, latentMapBackward, type LatentMap } from '../src/mas/latentmap';
import { refMasRollout, type RefMasAgent } from '../src/mas/reference';
import { GpuLatentMap, Rollout } from '../src/mas/rollout';
import { centralDiff, gpuFromRef, gradStep, normErr, rng, sharedRefGrad, testGpu } from './helpers';

const CFG: ModelConfig = {
  hidden_size: 12, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1,
  vocab_size: 11, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};
const TOL = 1e-4;
// weights ~ N(0, 0.3^2): large enough for every path to matter, small enough that f32 through six
// chained passes stays well inside TOL (at 0.4 the three-agent case's attention gets sharp and f32
// drift reaches 2e-4 uniformly over every tensor: conditioning, not a missing term)
const PARAM_STD = 0.3;
const TARGETS: Proj[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj'];

interface Case {
  name: string;
  /** per agent: preds, prompt length, latent steps, adapter key (agents with the same key share it), trains */
  agents: { preds: number[]; n: number; m: number; adapter: string | null; trains: boolean }[];
  trace: 'latent' | 'full';
  map: 'ridge' | 'identity';
  B: number;
  positions?: 'stream' | 'prefix';
}

const CASES: Case[] = [
  {
    name: 'two agents, two latent steps, latent-only trace, ridge map, own adapters',
    agents: [{ preds: [], n: 3, m: 2, adapter: 'a', trains: true }, { preds: [0], n: 4, m: 0, adapter: 'b', trains: true }],
    trace: 'latent', map: 'ridge', B: 2,
  },
  {
    name: 'two agents, full trace, identity map, positions from the prefix length',
    agents: [{ preds: [], n: 3, m: 2, adapter: 'a', trains: true }, { preds: [0], n: 5, m: 0, adapter: 'b', trains: true }],
    trace: 'full', map: 'identity', B: 3, positions: 'prefix',
  },
  {
    name: 'three agents 0 -> 1 -> 2 and 0 -> 2 (a sender that receives, two receivers), shared adapter',
    agents: [
      { preds: [], n: 2, m: 3, adapter: 's', trains: true },
      { preds: [0], n: 3, m: 2, adapter: 's', trains: true },
      { preds: [0, 1], n: 3, m: 0, adapter: 's', trains: true },
    ],
    trace: 'latent', map: 'ridge', B: 2,
  },
  {
    name: 'detached: only the receiver learns',
    agents: [{ preds: [], n: 3, m: 2, adapter: null, trains: false }, { preds: [0], n: 4, m: 0, adapter: 'b', trains: true }],
    trace: 'latent', map: 'ridge', B: 2,
  },
];

function setup(c: Case, seed: number) {
  const params = initRefParams(CFG, seed, PARAM_STD);
  const map = computeLatentMap(CFG, params, c.map);
  const r = rng(seed + 1);
  const loras = new Map<string, RefLora>();
  let k = 0;
  for (const a of c.agents) {
    if (a.adapter && !loras.has(a.adapter)) loras.set(a.adapter, initRefLora(CFG, [0, 1], TARGETS, 3, 6, seed + 10 + k++, 0.3));
  }
  const agents: RefMasAgent[] = c.agents.map((a) => ({
    preds: a.preds, n: a.n, m: a.m, trains: a.trains, lora: a.adapter ? loras.get(a.adapter) : undefined,
    ids: Array.from({ length: c.B * a.n }, () => Math.floor(r() * CFG.vocab_size)),
  }));
  const last = c.agents[c.agents.length - 1];
  const targets = Array.from({ length: c.B * last.n }, (_, i) => (i % 3 === 0 ? 0xffffffff : Math.floor(r() * CFG.vocab_size)));
  return { params, map, loras, agents, targets };
}

describe('latent map', () => {
  it('ridge map sends lm_head rows near their embeddings; backward matches finite differences', () => {
    const params = initRefParams(CFG, 3, 0.4);
    const map = computeLatentMap(CFG, params, 'ridge');
    const D = CFG.hidden_size;
    const h = Float64Array.from({ length: 2 * D }, (_, i) => Math.sin(i * 1.7) + 0.3);
    const de = Float64Array.from({ length: 2 * D }, (_, i) => Math.cos(i * 0.9));
    const { u } = applyLatentMap(map, h, 2);
    const dh = latentMapBackward(map, u, de, 2);
    const f = (x: Float64Array) => applyLatentMap(map, x, 2).e.reduce((s, e, i) => s + e * de[i], 0);
    for (const i of [0, 5, 13, 23]) {
      const hp = Float64Array.from(h);
      const hm = Float64Array.from(h);
      hp[i] += 1e-6;
      hm[i] -= 1e-6;
      expect(Math.abs((f(hp) - f(hm)) / 2e-6 - dh[i])).toBeLessThan(1e-6 * (1 + Math.abs(dh[i])));
    }
    // the output norm is the mean embedding norm
    const { e } = applyLatentMap(map, h, 1);
    expect(Math.hypot(...e)).toBeCloseTo(map.targetNorm, 6);
    expect(map.targetNorm).toBeGreaterThan(0);
  });

  it('rejects an unknown kind and missing weights', () => {
    const params = initRefParams(CFG, 3, 0.4);
    expect(() => computeLatentMap(CFG, params, 'pca' as never)).toThrow(/ridge.*identity/);
    expect(() => computeLatentMap(CFG, new Map(), 'ridge')).toThrow(/embed_tokens/);
  });
});

describe('multi-agent rollout vs the float64 reference', () => {
  for (const ci of [0, 2]) {
    it(`the reference gradient matches finite differences: ${CASES[ci].name}`, () => {
      const c = CASES[ci];
      const s = setup(c, 21);
      const res = refMasRollout(CFG, s.params, s.agents, c.B, c.trace, s.map as LatentMap, s.targets, c.positions);
      const lossAt = () => refMasRollout(CFG, s.params, s.agents, c.B, c.trace, s.map as LatentMap, s.targets, c.positions).loss;
      const checks: [string, string, 'A' | 'B', number][] = [
        [c.agents[0].adapter!, 'model.layers.0.self_attn.k_proj', 'B', 1],
        [c.agents[0].adapter!, 'model.layers.0.self_attn.q_proj', 'A', 2],
        [c.agents[0].adapter!, 'model.layers.1.mlp.up_proj', 'B', 4],
        [c.agents[0].adapter!, 'model.layers.1.self_attn.v_proj', 'A', 0],
        [c.agents[c.agents.length - 1].adapter!, 'model.layers.1.self_attn.o_proj', 'A', 3],
      ];
      for (const [key, mod, which, idx] of checks) {
        const t = s.loras.get(key)!.targets.get(mod)!;
        const fd = centralDiff(t[which], idx, lossAt);
        // an adapter shared by several agents gets the sum of their gradients
        const an = sharedRefGrad(c.agents.map((a) => a.adapter), res.loraGrads, key, mod, t.A.length, t.B.length)[which][idx];
        expect(Math.abs(fd - an), `${key} ${mod}.${which}[${idx}] fd ${fd} analytic ${an}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
      }
      // the first sender's own gradient is not zero: the channel carries signal back to it
      expect(Math.abs(res.loraGrads[0].get('model.layers.0.self_attn.k_proj')!.B[1])).toBeGreaterThan(1e-6);
    });
  }

  for (const c of CASES) {
    it(c.name, async () => {
      const gpu = await testGpu();
      const s = setup(c, 7);
      const ref = refMasRollout(CFG, s.params, s.agents, c.B, c.trace, s.map as LatentMap, s.targets, c.positions);
      const { model, loras } = gpuFromRef(gpu, CFG, s.params, s.loras, { r: 3, alpha: 6, targets: TARGETS, layers: [0, 1] });
      const gmap = new GpuLatentMap(gpu, s.map);
      const ro = new Rollout(model, {
        B: c.B, trace: c.trace, map: gmap, positions: c.positions,
        agents: c.agents.map((a, i) => ({ id: `g${i}`, preds: a.preds, n: a.n, m: a.m, lora: a.adapter ? loras.get(a.adapter)! : null, backward: a.trains })),
      });
      c.agents.forEach((_, i) => ro.setIds(i, s.agents[i].ids));
      ro.setTargets(s.targets);
      const report: [string, number][] = [];
      for (let rep = 0; rep < 2; rep++) {
        // twice: the second step must reuse every pipeline and buffer, and give the same numbers
        const made = await gradStep(gpu, loras.values(), ro);
        if (rep === 1) {
          expect(made.pipelines, 'pipelines created by a repeated step').toBe(0);
          expect(made.buffers, 'buffers created by a repeated step').toBe(0);
        }
      }
      report.push(['loss', normErr(await gpu.read(ro.final.prompt.loss), [ref.loss])]);
      report.push(['final logits', normErr(await gpu.read(ro.final.prompt.logits), ref.logits)]);
      const fin = ro.final;
      const { L } = model.dims;
      if (fin.pre) {
        for (let l = 0; l < L; l++) {
          // the final agent's prefix = its predecessors' traces, concatenated in order
          const W = model.dims.kvDim;
          const P = fin.P;
          const expK = new Float64Array(c.B * P * W);
          const preds = c.agents[c.agents.length - 1].preds;
          let off = 0;
          for (const p of preds) {
            const t = ref.traces[p];
            for (let b = 0; b < c.B; b++) for (let i = 0; i < t.length; i++) for (let w = 0; w < W; w++) expK[(b * P + off + i) * W + w] = t.k[l][(b * t.length + i) * W + w];
            off += t.length;
          }
          report.push([`final prefix K l${l}`, normErr(await gpu.read(fin.pre.k[l]), expK)]);
        }
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
      for (const [name, e] of report) if (e > TOL / 10) console.log(`  ${name}: ${e.toExponential(2)}`);
      for (const [name, e] of report) expect(e, name).toBeLessThan(TOL);
      ro.destroy();
      for (const l of loras.values()) l.destroy();
      gmap.destroy();
      model.destroy();
    });
  }
});
