// The trained text channel (text-rollout.ts) against its float64 CPU reference (text-reference.ts):
// the reference's straight-through gradient is checked against finite differences of the
// softmax-relaxed surrogate first, then the GPU rollout's tokens, loss and EVERY adapter gradient
// against the reference. Odd sizes (D=12, 3 query / 1 kv heads, V=11).
import { describe, expect, it } from 'vitest';
import type { ModelConfig, Proj } from '../src/model/config';
import { initRefLora, initRefParams, type RefLora } from '../src/reference/model';
import { refTextRollout, type RefTextAgent } from '../src/mas/text-reference';
import { TextRollout } from '../src/mas/text-rollout';
import { centralDiff, gpuFromRef, gradStep, normErr, rng, sharedRefGrad, testGpu } from './helpers';

export const CFG: ModelConfig = {
  hidden_size: 12, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1,
  vocab_size: 11, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};
const PARAM_STD = 0.3;
// max |got - ref| / max |ref| per tensor, as tests/mas-gradient.test.ts: f32 through up to six chained
// passes (a sender's steps, the relay, the receiver) at weights ~ N(0, 0.3^2); the same tolerance as
// the latent channel's, whose chains are as long (observed: at most 1.0e-5, on the one-token case; 3e-6 on the others)
const TOL = 1e-4;
const TARGETS: Proj[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj'];
/** Tokens 0 and 4 are masked out (as newline and special tokens are in a run). */
const ALLOWED = Array.from({ length: CFG.vocab_size }, (_, v) => v !== 0 && v !== 4);

interface Case {
  name: string;
  agents: { preds: number[]; n: number; slots: number[]; adapter: string }[];
  T: number;
  tau: number;
  B: number;
}

const CASES: Case[] = [
  {
    name: 'sender -> receiver, 3 message tokens, own adapters',
    agents: [{ preds: [], n: 3, slots: [], adapter: 'a' }, { preds: [0], n: 7, slots: [1], adapter: 'b' }],
    T: 3, tau: 0.7, B: 2,
  },
  {
    name: '0 -> 1 -> 2 and 0 -> 2 (a sender that reads a message), shared adapter, tau 1.3',
    agents: [
      { preds: [], n: 2, slots: [], adapter: 's' },
      { preds: [0], n: 6, slots: [1], adapter: 's' },
      { preds: [0, 1], n: 9, slots: [1, 4], adapter: 's' },
    ],
    T: 2, tau: 1.3, B: 3,
  },
  {
    name: 'one-token message',
    agents: [{ preds: [], n: 4, slots: [], adapter: 'a' }, { preds: [0], n: 5, slots: [2], adapter: 'b' }],
    T: 1, tau: 0.5, B: 2,
  },
];

export function setupText(c: Case, seed: number) {
  const params = initRefParams(CFG, seed, PARAM_STD);
  const r = rng(seed + 1);
  const loras = new Map<string, RefLora>();
  let k = 0;
  for (const a of c.agents) if (!loras.has(a.adapter)) loras.set(a.adapter, initRefLora(CFG, [0, 1], TARGETS, 3, 6, seed + 10 + k++, 0.3));
  const agents: RefTextAgent[] = c.agents.map((a, i) => ({
    preds: a.preds, n: a.n, slots: a.slots, sends: i < c.agents.length - 1, lora: loras.get(a.adapter),
    ids: Array.from({ length: c.B * a.n }, () => Math.floor(r() * CFG.vocab_size)),
  }));
  const last = c.agents[c.agents.length - 1];
  const targets = Array.from({ length: c.B * last.n }, (_, i) => (i % last.n < last.n - 3 ? 0xffffffff : Math.floor(r() * CFG.vocab_size)));
  return { params, loras, agents, targets };
}

describe('trained text channel: the reference', () => {
  for (const c of CASES) {
    it(`straight-through gradient matches finite differences of the surrogate: ${c.name}`, () => {
      const s = setupText(c, 21);
      const opts = { T: c.T, tau: c.tau, allowed: ALLOWED, targets: s.targets };
      const res = refTextRollout(CFG, s.params, s.agents, c.B, opts);
      for (const toks of res.tokens.slice(0, -1)) for (const row of toks) for (const t of row) expect(ALLOWED[t]).toBe(true);
      const frozen = { tokens: res.tokens, p: res.p };
      // the surrogate at the unperturbed point is the hard forward
      expect(refTextRollout(CFG, s.params, s.agents, c.B, { ...opts, frozen }).loss).toBe(res.loss);
      const lossAt = () => refTextRollout(CFG, s.params, s.agents, c.B, { ...opts, frozen }).loss;
      const first = c.agents[0].adapter;
      const checks: [string, string, 'A' | 'B', number][] = [
        [first, 'model.layers.0.self_attn.k_proj', 'B', 1],
        [first, 'model.layers.0.self_attn.q_proj', 'A', 2],
        [first, 'model.layers.1.mlp.up_proj', 'B', 4],
        [first, 'model.layers.1.self_attn.v_proj', 'A', 0],
        [c.agents[c.agents.length - 1].adapter, 'model.layers.1.self_attn.o_proj', 'A', 3],
      ];
      for (const [key, mod, which, idx] of checks) {
        const t = s.loras.get(key)!.targets.get(mod)!;
        const fd = centralDiff(t[which], idx, lossAt);
        const an = sharedRefGrad(c.agents.map((a) => a.adapter), res.loraGrads, key, mod, t.A.length, t.B.length)[which][idx];
        expect(Math.abs(fd - an), `${key} ${mod}.${which}[${idx}] fd ${fd} analytic ${an}`).toBeLessThan(1e-8 + 1e-5 * Math.abs(fd));
      }
      // the first sender's own gradient is not zero: the channel carries signal back to it
      const g0 = res.loraGrads[0].get('model.layers.0.self_attn.k_proj')!.B;
      expect(Math.max(...g0.map(Math.abs))).toBeGreaterThan(1e-6);
    });
  }
});

describe('trained text channel: the GPU rollout vs the reference', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const gpu = await testGpu();
      const s = setupText(c, 7);
      const ref = refTextRollout(CFG, s.params, s.agents, c.B, { T: c.T, tau: c.tau, allowed: ALLOWED, targets: s.targets });
      const { model, loras } = gpuFromRef(gpu, CFG, s.params, s.loras, { r: 3, alpha: 6, targets: TARGETS, layers: [0, 1] });
      const allowed = gpu.tensor([CFG.vocab_size], 'allowed', Uint32Array.from(ALLOWED, Number), 'u32');
      const ro = new TextRollout(model, {
        B: c.B, T: c.T, tau: c.tau, allowed,
        agents: c.agents.map((a, i) => ({ id: `g${i}`, preds: a.preds, n: a.n, slots: a.slots, lora: loras.get(a.adapter)!, backward: true })),
      });
      c.agents.forEach((_, i) => ro.setIds(i, s.agents[i].ids));
      ro.setTargets(s.targets);
      for (let rep = 0; rep < 2; rep++) {
        // twice: the second step must reuse every pipeline and buffer, and give the same numbers
        const made = await gradStep(gpu, loras.values(), ro);
        if (rep === 1) {
          expect(made.pipelines, 'pipelines created by a repeated step').toBe(0);
          expect(made.buffers, 'buffers created by a repeated step').toBe(0);
        }
      }
      const msgs = await ro.readMessages();
      c.agents.forEach((_, i) => {
        const want = Array.from({ length: i < c.agents.length - 1 ? c.B : 0 }, (_, b) => ref.tokens[i].map((row) => row[b]));
        expect(msgs[i], `agent ${i}'s message tokens`).toEqual(want);
      });
      const report: [string, number][] = [];
      report.push(['loss', normErr(await gpu.read(ro.final.prompt.loss), [ref.loss])]);
      report.push(['final logits', normErr(await gpu.read(ro.final.prompt.logits), ref.logits)]);
      for (const [key, l] of loras) {
        for (const [name, m] of l.modules) {
          const want = sharedRefGrad(c.agents.map((a) => a.adapter), ref.loraGrads, key, name, m.A.size, m.B.size);
          report.push([`${key} ${name} dA`, normErr(await gpu.read(m.dA), want.A)]);
          report.push([`${key} ${name} dB`, normErr(await gpu.read(m.dB), want.B)]);
        }
      }
      const worst = report.reduce((w, r) => (r[1] > w[1] ? r : w));
      for (const [what, err] of report) expect(err, `${what}: relative error ${err}`).toBeLessThan(TOL);
      expect(worst[1]).toBeLessThan(TOL);
      ro.destroy();
      for (const l of loras.values()) l.destroy();
      gpu.destroy(allowed);
      model.destroy();
    });
  }
});
