// The float64 CPU reference of LlamaForCausalLM (src/reference/model.ts) against central finite
// differences, plus the identities that pin its conventions (KV-cache decoding = recomputation, a past
// + posOffset = the concatenated sequence, RoPE only sees relative positions, GQA = MHA with repeated
// kv heads, tied = untied with a copied head, merged LoRA = LoRA).
import { describe, expect, it } from 'vitest';
import {
  IGNORE_INDEX, initRefLora, initRefParams, paramShapes, projName, refAppendKv, refBackward, refDims, refForward,
  refGenerate, refLossAndGrads, refRandn, type RefConfig, type RefForwardOptions, type RefInput, type RefLora,
  type RefPast,
} from '../src/reference/model';
import { ropeForward } from '../src/reference/model-ops';
import type { ModelConfig } from '../src/model/config';

// The engine's config object must work here unchanged (RefConfig is a structural subset of it).
const modelConfigIsRefConfig = (c: ModelConfig): RefConfig => c;
void modelConfigIsRefConfig;

// Finite differences: central, eps = 1e-5, in float64. Truncation error is eps^2/6 |J'''| ~ 2e-11 |J'''|;
// the rounding error of J (a few ulp of |J| ~ 3, ~1e-15) over 2 eps is ~1e-10 absolute. (At eps = 1e-6
// the rounding term is 10x larger and dominates: worst errors measured 1.8e-7 there vs 1.4e-8 here.)
// An entry passes when |analytic - fd| <= 1e-6 * max(|fd|, 1e-2): relative error < 1e-6 for gradients
// of at least 1e-2, absolute error < 1e-8 below: a tolerance ~70x the worst error measured. A
// wrong index, sign or missing term gives errors of order 1 on the entries it touches.
const FD_EPS = 1e-5;
const FD_TOL = 1e-6;
const FD_FLOOR = 1e-2;
/** Entries checked per tensor: all of them up to this size, a seeded sample of this many beyond. */
const FD_MAX_ENTRIES = 96;

function fdError(analytic: number, fd: number): number {
  return Math.abs(analytic - fd) / Math.max(Math.abs(fd), FD_FLOOR);
}

/** `zero`: the tensor does not reach the objective (the embedding table when the input is embeddings and
 * the head is untied), so its gradient must be exactly 0 rather than checked for size. */
interface CheckRow { name: string; n: number; worst: number; maxGrad: number; zero: boolean; maxAnalytic: number }

/** Checks `analytic` against central differences of J over entries of x (perturbed in place). */
function fdCheck(
  name: string, x: Float64Array, analytic: ArrayLike<number>, J: () => number, seed: number, zero = false,
): CheckRow {
  expect(analytic.length, `${name}: gradient length`).toBe(x.length);
  let idx = Array.from({ length: x.length }, (_, i) => i);
  if (x.length > FD_MAX_ENTRIES) {
    const r = refRandn(seed);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor((0.5 + 0.5 * Math.tanh(r())) * (i + 1)) % (i + 1);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    idx = idx.slice(0, FD_MAX_ENTRIES);
  }
  let worst = 0;
  let maxGrad = 0;
  let maxAnalytic = 0;
  for (let i = 0; i < analytic.length; i++) maxAnalytic = Math.max(maxAnalytic, Math.abs(analytic[i]));
  for (const i of idx) {
    const x0 = x[i];
    x[i] = x0 + FD_EPS;
    const jp = J();
    x[i] = x0 - FD_EPS;
    const jm = J();
    x[i] = x0;
    const fd = (jp - jm) / (2 * FD_EPS);
    const e = fdError(analytic[i], fd);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
    maxGrad = Math.max(maxGrad, Math.abs(fd));
  }
  return { name, n: idx.length, worst, maxGrad, zero, maxAnalytic };
}

function report(title: string, rows: CheckRow[]): void {
  const lines = rows.map((r) => `  ${r.name.padEnd(46)} n=${String(r.n).padStart(3)} max|g|=${r.maxGrad.toExponential(2)} err=${r.worst.toExponential(2)}${r.zero ? ' (must be 0)' : ''}`);
  console.log(`${title}\n${lines.join('\n')}`);
  for (const r of rows) {
    expect(r.worst, `${title}: ${r.name} (max rel err)`).toBeLessThan(FD_TOL);
    if (r.zero) {
      expect(r.maxAnalytic, `${title}: ${r.name} must have a zero gradient`).toBe(0);
    } else {
      // no vacuous pass: every checked tensor has a gradient well above the FD noise
      expect(r.maxGrad, `${title}: ${r.name} has a vanishing gradient`).toBeGreaterThan(1e-4);
    }
  }
}

/** Test-scale parameters: std 0.3 so attention is far from uniform and every gradient is O(1e-2..1),
 * norm weights 1 + N(0, 0.3^2) so a norm that ignores its weight is caught. */
function testParams(config: RefConfig, seed: number): Map<string, Float64Array> {
  const p = initRefParams(config, seed, 0.3);
  const r = refRandn(seed + 1000);
  for (const [name, a] of p) if (name.endsWith('norm.weight')) for (let i = 0; i < a.length; i++) a[i] = 1 + 0.3 * r();
  // biases start at 0 (HF init): give them values so that a bias the forward forgets is caught
  for (const [name, a] of p) if (name.endsWith('.bias')) for (let i = 0; i < a.length; i++) a[i] = 0.3 * r();
  return p;
}

function randArray(n: number, seed: number, scale = 1): Float64Array {
  const r = refRandn(seed);
  return Float64Array.from({ length: n }, () => scale * r());
}

function randIds(n: number, V: number, seed: number): Uint32Array {
  const r = refRandn(seed);
  return Uint32Array.from({ length: n }, () => Math.floor((0.5 + 0.5 * Math.tanh(r())) * V) % V);
}

function randPast(config: RefConfig, B: number, P: number, seed: number): { k: Float64Array[]; v: Float64Array[]; length: number } {
  const { L, kvDim } = refDims(config);
  return {
    k: Array.from({ length: L }, (_, l) => randArray(B * P * kvDim, seed + 2 * l, 0.8)),
    v: Array.from({ length: L }, (_, l) => randArray(B * P * kvDim, seed + 2 * l + 1, 0.8)),
    length: P,
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

const base: RefConfig = {
  hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2,
  vocab_size: 11, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};
const gqaTied: RefConfig = { ...base, hidden_size: 16, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: true };

interface Case {
  title: string;
  config: RefConfig;
  input: RefInput;
  opts: RefForwardOptions & { targets: Uint32Array };
  params: Map<string, Float64Array>;
}

/** FD check of the loss w.r.t. every parameter tensor, every LoRA A and B, the input embeddings and
 * the past K/V. */
function checkLossGrads(c: Case): void {
  const { config, input, opts, params } = c;
  const { grads, loss } = refLossAndGrads(config, params, input, opts);
  expect(Number.isFinite(loss)).toBe(true);
  const J = (): number => refForward(config, params, input, opts).loss!;
  const rows: CheckRow[] = [];
  // every parameter tensor, by the names paramShapes lists (and nothing else)
  expect([...grads.params.keys()].sort()).toEqual([...paramShapes(config).keys()].sort());
  let seed = 1;
  const unreached = (name: string): boolean => 'embeds' in input && !config.tie_word_embeddings && name === 'model.embed_tokens.weight';
  for (const [name, p] of params) rows.push(fdCheck(name, p, grads.params.get(name)!, J, seed++, unreached(name)));
  if (opts.lora) {
    expect([...grads.lora.keys()].sort()).toEqual([...opts.lora.targets.keys()].sort());
    for (const [name, { A, B }] of opts.lora.targets) {
      rows.push(fdCheck(`${name}.lora_A`, A, grads.lora.get(name)!.A, J, seed++));
      rows.push(fdCheck(`${name}.lora_B`, B, grads.lora.get(name)!.B, J, seed++));
    }
  }
  if ('embeds' in input) rows.push(fdCheck('input embeds', input.embeds as Float64Array, grads.dEmbeds!, J, seed++));
  else expect(grads.dEmbeds).toBeUndefined();
  if (opts.past) {
    for (let l = 0; l < config.num_hidden_layers; l++) {
      rows.push(fdCheck(`past K layer ${l}`, opts.past.k[l] as Float64Array, grads.dPastK[l], J, seed++));
      rows.push(fdCheck(`past V layer ${l}`, opts.past.v[l] as Float64Array, grads.dPastV[l], J, seed++));
    }
  }
  report(c.title, rows);
}

describe('reference Llama: gradients vs central finite differences (float64)', () => {
  it('(a) MHA, untied lm_head, 2 layers, token ids, B=2 S=5', () => {
    const config = base;
    const B = 2, S = 5;
    const targets = randIds(B * S, config.vocab_size, 12);
    targets[3] = IGNORE_INDEX;
    checkLossGrads({
      title: '(a) MHA untied', config, params: testParams(config, 1),
      input: { ids: randIds(B * S, config.vocab_size, 11) }, opts: { B, S, targets },
    });
  });

  it('(b) GQA (4 heads / 2 kv heads), tied embeddings, token ids, B=2 S=4', () => {
    const config = gqaTied;
    const B = 2, S = 4;
    const targets = randIds(B * S, config.vocab_size, 22);
    targets[0] = IGNORE_INDEX;
    targets[5] = IGNORE_INDEX;
    checkLossGrads({
      title: '(b) GQA tied', config, params: testParams(config, 2),
      input: { ids: randIds(B * S, config.vocab_size, 21) }, opts: { B, S, targets },
    });
  });

  it('(c) past P=3, posOffset=5, LoRA on q,v,o,up of both layers, input embeddings, B=2 S=4', () => {
    const config = base;
    const B = 2, S = 4, P = 3;
    const lora = initRefLora(config, [0, 1], ['q_proj', 'v_proj', 'o_proj', 'up_proj'], 2, 4, 33, 0.3);
    checkLossGrads({
      title: '(c) past + posOffset + LoRA(q,v,o,up) + embeds', config, params: testParams(config, 3),
      input: { embeds: randArray(B * S * config.hidden_size, 31) },
      opts: { B, S, past: randPast(config, B, P, 34), posOffset: 5, lora, targets: randIds(B * S, config.vocab_size, 32) },
    });
  });

  it('(d) GQA tied with a past, LoRA on all seven projections of layer 1 only, token ids', () => {
    const config = gqaTied;
    const B = 2, S = 3, P = 2;
    const lora = initRefLora(config, [1], ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], 3, 6, 43, 0.3);
    checkLossGrads({
      title: '(d) GQA tied + past + LoRA(all, layer 1)', config, params: testParams(config, 4),
      input: { ids: randIds(B * S, config.vocab_size, 41) },
      opts: { B, S, past: randPast(config, B, P, 44), posOffset: P, lora, targets: randIds(B * S, config.vocab_size, 42) },
    });
  });

  // the Qwen variants: q/k/v biases (Qwen2), per-head q/k RMSNorm and a head_dim apart from
  // hidden / heads (Qwen3), and Llama's bias switches, each through every gradient
  it('(e) Qwen2: q/k/v biases, GQA 6/2 of head_dim 2 (hidden 12), untied, LoRA on q,k,v, token ids', () => {
    const config: RefConfig = { ...base, model_type: 'qwen2', hidden_size: 12, intermediate_size: 9, num_attention_heads: 6, num_key_value_heads: 2 };
    expect(refDims(config).biases).toEqual(['q_proj', 'k_proj', 'v_proj']);
    const B = 2, S = 4;
    checkLossGrads({
      title: '(e) Qwen2 biases', config, params: testParams(config, 6),
      input: { ids: randIds(B * S, config.vocab_size, 61) },
      opts: { B, S, lora: initRefLora(config, [0, 1], ['q_proj', 'k_proj', 'v_proj'], 2, 3, 63, 0.3), targets: randIds(B * S, config.vocab_size, 62) },
    });
  });

  it('(f) Qwen3: q_norm/k_norm, head_dim 6 with hidden 8 and 4/2 heads, attention_bias, tied, past P=2, LoRA, embeds', () => {
    const config: RefConfig = { ...gqaTied, model_type: 'qwen3', hidden_size: 8, head_dim: 6, attention_bias: true };
    const d = refDims(config);
    expect([d.hd, d.qDim, d.kvDim, d.qkNorm]).toEqual([6, 24, 12, true]);
    const B = 2, S = 3, P = 2;
    checkLossGrads({
      title: '(f) Qwen3 q/k norm + head_dim + biases', config, params: testParams(config, 7),
      input: { embeds: randArray(B * S * config.hidden_size, 71) },
      opts: {
        B, S, past: randPast(config, B, P, 74), posOffset: P,
        lora: initRefLora(config, [0, 1], ['q_proj', 'k_proj', 'o_proj'], 2, 4, 73, 0.3), targets: randIds(B * S, config.vocab_size, 72),
      },
    });
  });

  it('(g) Llama with attention_bias and mlp_bias (biases on all seven projections), token ids', () => {
    const config: RefConfig = { ...base, attention_bias: true, mlp_bias: true };
    expect(refDims(config).biases.length).toBe(7);
    const B = 2, S = 3;
    checkLossGrads({
      title: '(g) Llama all biases', config, params: testParams(config, 8),
      input: { ids: randIds(B * S, config.vocab_size, 81) }, opts: { B, S, targets: randIds(B * S, config.vocab_size, 82) },
    });
  });

  it('upstream gradients on new K/V, lastHidden and logits add to the loss gradient', () => {
    // J = 0.5 loss + <Rl, logits> + <Rh, lastHidden> + sum_l <Rk_l, newK_l> + <Rv_l, newV_l>: the
    // objective of a sender whose cache a receiver reads and whose last hidden state is fed back.
    const config = gqaTied;
    const { L, kvDim, D, V } = refDims(config);
    const B = 2, S = 3, P = 2;
    const params = testParams(config, 5);
    const lora = initRefLora(config, [0, 1], ['q_proj', 'k_proj', 'v_proj', 'o_proj'], 2, 2, 53, 0.3);
    const input = { embeds: randArray(B * S * D, 51) };
    const opts: RefForwardOptions = { B, S, past: randPast(config, B, P, 54), posOffset: 4, lora, targets: randIds(B * S, V, 52) };
    const T = B * S;
    // scales keep |J| ~ 1, so the rounding noise of J stays at the 1e-9 the tolerance is sized for
    const Rk = Array.from({ length: L }, (_, l) => randArray(T * kvDim, 60 + l, 0.2));
    const Rv = Array.from({ length: L }, (_, l) => randArray(T * kvDim, 70 + l, 0.2));
    // layer 1's K gets no upstream term: a null entry must count as zero
    const dNewK = Rk.map((r, l) => (l === 1 ? null : r));
    const Rh = randArray(T * D, 80, 0.2);
    const Rl = randArray(T * V, 81, 0.05);
    const J = (): number => {
      const f = refForward(config, params, input, opts);
      let j = 0.5 * f.loss! + dot(Rl, f.logits) + dot(Rh, f.lastHidden);
      for (let l = 0; l < L; l++) j += (l === 1 ? 0 : dot(Rk[l], f.newK[l])) + dot(Rv[l], f.newV[l]);
      return j;
    };
    const fwd = refForward(config, params, input, opts);
    const g = refBackward(config, params, fwd, { lossScale: 0.5, dLogits: Rl, dLastHidden: Rh, dNewK, dNewV: Rv });
    const rows: CheckRow[] = [];
    let seed = 100;
    for (const [name, p] of params) rows.push(fdCheck(name, p, g.params.get(name)!, J, seed++));
    for (const [name, { A, B: Bm }] of lora.targets) {
      rows.push(fdCheck(`${name}.lora_A`, A, g.lora.get(name)!.A, J, seed++));
      rows.push(fdCheck(`${name}.lora_B`, Bm, g.lora.get(name)!.B, J, seed++));
    }
    rows.push(fdCheck('input embeds', input.embeds, g.dEmbeds!, J, seed++));
    for (let l = 0; l < L; l++) {
      rows.push(fdCheck(`past K layer ${l}`, opts.past!.k[l] as Float64Array, g.dPastK[l], J, seed++));
      rows.push(fdCheck(`past V layer ${l}`, opts.past!.v[l] as Float64Array, g.dPastV[l], J, seed++));
    }
    report('upstream dLogits + dLastHidden + dNewK/dNewV', rows);

    // the same objective without the loss: a forward without targets, lossScale defaulting to 0
    const { targets: _t, ...noTargets } = opts;
    void _t;
    const J2 = (): number => {
      const f = refForward(config, params, input, noTargets);
      let j = dot(Rh, f.lastHidden);
      for (let l = 0; l < L; l++) j += dot(Rv[l], f.newV[l]);
      return j;
    };
    const g2 = refBackward(config, params, refForward(config, params, input, noTargets), { dLastHidden: Rh, dNewV: Rv });
    report('upstream only (no targets)', [
      fdCheck('input embeds', input.embeds, g2.dEmbeds!, J2, 200),
      fdCheck('model.layers.0.self_attn.v_proj.weight', params.get('model.layers.0.self_attn.v_proj.weight')!,
        g2.params.get('model.layers.0.self_attn.v_proj.weight')!, J2, 201),
      fdCheck('past K layer 1', opts.past!.k[1] as Float64Array, g2.dPastK[1], J2, 202),
    ]);
  });

  it('a chain of two latent steps: the last hidden state fed back as the next input embedding', () => {
    // Step 1 runs the prompt; its last position's lastHidden becomes the input of step 2, which
    // attends over step 1's K/V. The loss is on step 2's logits; the gradient reaches step 1 through
    // dLastHidden and dNewK/dNewV (backprop through time), and the prompt embeddings.
    const config = base;
    const { D, V, L } = refDims(config);
    const params = testParams(config, 6);
    const lora = initRefLora(config, [0, 1], ['q_proj', 'k_proj', 'v_proj', 'o_proj'], 2, 4, 63, 0.3);
    const S1 = 3;
    const prompt = randArray(S1 * D, 61);
    const target = Uint32Array.of(7);
    const run = (): { f1: ReturnType<typeof refForward>; f2: ReturnType<typeof refForward>; h: Float64Array } => {
      const f1 = refForward(config, params, { embeds: prompt }, { B: 1, S: S1, lora });
      const h = f1.lastHidden.slice((S1 - 1) * D, S1 * D);
      const past = refAppendKv(config, undefined, f1.newK, f1.newV, 1, S1);
      const f2 = refForward(config, params, { embeds: h }, { B: 1, S: 1, past, posOffset: S1, lora, targets: target });
      return { f1, f2, h };
    };
    const J = (): number => run().f2.loss!;
    const { f1, f2 } = run();
    const g2 = refBackward(config, params, f2);
    const dLastHidden = new Float64Array(S1 * D);
    dLastHidden.set(g2.dEmbeds!, (S1 - 1) * D);
    // B = 1, so a past [1, P, kvDim] has the layout of newK [P, kvDim]
    const g1 = refBackward(config, params, f1, { dLastHidden, dNewK: g2.dPastK, dNewV: g2.dPastV });
    const rows: CheckRow[] = [fdCheck('prompt embeds', prompt, g1.dEmbeds!, J, 300)];
    let seed = 301;
    for (const [name, p] of params) {
      const total = g1.params.get(name)!.map((x, i) => x + g2.params.get(name)![i]);
      rows.push(fdCheck(name, p, total, J, seed++, name === 'model.embed_tokens.weight'));
    }
    for (const [name, { A, B: Bm }] of lora.targets) {
      rows.push(fdCheck(`${name}.lora_A`, A, g1.lora.get(name)!.A.map((x, i) => x + g2.lora.get(name)!.A[i]), J, seed++));
      rows.push(fdCheck(`${name}.lora_B`, Bm, g1.lora.get(name)!.B.map((x, i) => x + g2.lora.get(name)!.B[i]), J, seed++));
    }
    expect(L).toBe(2);
    expect(V).toBe(11);
    report('latent chain (BPTT through lastHidden and the KV cache)', rows);
  });
});

describe('reference Llama: conventions and identities', () => {
  it('RoPE is HF rotate-half: pairs (i, i + hd/2) rotate by pos * theta^(-2i/hd)', () => {
    // one row, one head, hd = 4, position 3 (posOffset 2 + s = 1 of S = 2 -> take row 1)
    const x = Float64Array.of(0, 0, 0, 0, 1, 2, 3, 4);
    const y = ropeForward(x, 2, 2, 1, 4, 2, 100);
    const pos = 3;
    const a0 = pos * 1, a1 = pos * Math.pow(100, -0.5);
    const want = [
      1 * Math.cos(a0) - 3 * Math.sin(a0), 2 * Math.cos(a1) - 4 * Math.sin(a1),
      3 * Math.cos(a0) + 1 * Math.sin(a0), 4 * Math.cos(a1) + 2 * Math.sin(a1),
    ];
    expect(maxAbsDiff(y.subarray(4), want)).toBeLessThan(1e-15);
    expect(maxAbsDiff(y.subarray(0, 4), [0, 0, 0, 0])).toBe(0);
  });

  it('loss is the mean NLL over non-ignored rows; all-ignored gives loss 0 and zero gradients', () => {
    const config = base;
    const params = testParams(config, 7);
    const B = 1, S = 4;
    const ids = randIds(S, config.vocab_size, 71);
    const targets = Uint32Array.of(3, IGNORE_INDEX, 5, IGNORE_INDEX);
    const f = refForward(config, params, { ids }, { B, S, targets });
    const V = config.vocab_size;
    const nll = (t: number, y: number): number => {
      const row = Array.from(f.logits.subarray(t * V, (t + 1) * V));
      const mx = Math.max(...row);
      return mx + Math.log(row.reduce((s, z) => s + Math.exp(z - mx), 0)) - row[y];
    };
    expect(f.count).toBe(2);
    expect(Math.abs(f.loss! - (nll(0, 3) + nll(2, 5)) / 2)).toBeLessThan(1e-14);
    const all = refLossAndGrads(config, params, { ids }, { B, S, targets: new Uint32Array(S).fill(IGNORE_INDEX) });
    expect(all.loss).toBe(0);
    expect(all.count).toBe(0);
    for (const g of all.grads.params.values()) expect(g.every((z) => z === 0)).toBe(true);
  });

  it('input embeddings equal to the embedding rows give the same forward as token ids', () => {
    const config = gqaTied;
    const params = testParams(config, 8);
    const B = 2, S = 3;
    const ids = randIds(B * S, config.vocab_size, 81);
    const W = params.get('model.embed_tokens.weight')!;
    const D = config.hidden_size;
    const embeds = new Float64Array(B * S * D);
    for (let t = 0; t < B * S; t++) embeds.set(W.subarray(ids[t] * D, (ids[t] + 1) * D), t * D);
    const a = refForward(config, params, { ids }, { B, S });
    const b = refForward(config, params, { embeds }, { B, S });
    expect(maxAbsDiff(a.logits, b.logits)).toBe(0);
  });

  it('KV-cache greedy decoding equals recomputing the full sequence (with LoRA, B=2)', () => {
    const config = gqaTied;
    const params = testParams(config, 9);
    const lora = initRefLora(config, [0, 1], ['q_proj', 'v_proj'], 2, 4, 93, 0.3);
    const B = 2, S0 = 3, N = 5;
    const V = config.vocab_size;
    const prompt = randIds(B * S0, V, 91);
    const gen = refGenerate(config, params, prompt, N, { B, lora });
    expect(gen.cache.length).toBe(S0 + N - 1);
    // full sequences prompt + generated, recomputed without a cache
    const S = S0 + N;
    const full = new Uint32Array(B * S);
    for (let b = 0; b < B; b++) {
      full.set(prompt.subarray(b * S0, (b + 1) * S0), b * S);
      full.set(gen.tokens.subarray(b * N, (b + 1) * N), b * S + S0);
    }
    const f = refForward(config, params, { ids: full }, { B, S, lora });
    let worst = 0;
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < N; i++) {
        const row = f.logits.subarray((b * S + S0 - 1 + i) * V, (b * S + S0 + i) * V);
        worst = Math.max(worst, maxAbsDiff(row, gen.stepLogits.subarray((b * N + i) * V, (b * N + i + 1) * V)));
        let best = 0;
        for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
        expect(gen.tokens[b * N + i]).toBe(best);
      }
    }
    expect(worst).toBeLessThan(1e-12);
    // the cache is the full sequence's K/V (minus the last generated token)
    const { L, kvDim } = refDims(config);
    for (let l = 0; l < L; l++) {
      for (let b = 0; b < B; b++) {
        const n = (S - 1) * kvDim;
        expect(maxAbsDiff(gen.cache.k[l].subarray(b * n, (b + 1) * n), f.newK[l].subarray(b * S * kvDim, b * S * kvDim + n))).toBeLessThan(1e-12);
        expect(maxAbsDiff(gen.cache.v[l].subarray(b * n, (b + 1) * n), f.newV[l].subarray(b * S * kvDim, b * S * kvDim + n))).toBeLessThan(1e-12);
      }
    }
  });

  it('decoding from a cached prefix (posOffset defaults to its length) equals decoding the whole prompt', () => {
    const config = base;
    const params = testParams(config, 15);
    const B = 2, P = 3, S0 = 2, N = 4;
    const V = config.vocab_size;
    const prompt = randIds(B * (P + S0), V, 151);
    const whole = refGenerate(config, params, prompt, N, { B });
    const head = new Uint32Array(B * P);
    const tail = new Uint32Array(B * S0);
    for (let b = 0; b < B; b++) {
      head.set(prompt.subarray(b * (P + S0), b * (P + S0) + P), b * P);
      tail.set(prompt.subarray(b * (P + S0) + P, (b + 1) * (P + S0)), b * S0);
    }
    const fp = refForward(config, params, { ids: head }, { B, S: P });
    const past = refAppendKv(config, undefined, fp.newK, fp.newV, B, P);
    const cont = refGenerate(config, params, tail, N, { B, past });
    expect(Array.from(cont.tokens)).toEqual(Array.from(whole.tokens));
    expect(maxAbsDiff(cont.stepLogits, whole.stepLogits)).toBeLessThan(1e-12);
    expect(maxAbsDiff(cont.cache.k[1], whole.cache.k[1])).toBeLessThan(1e-12);
    // maxNew = 0 generates nothing and hands back the past
    const none = refGenerate(config, params, tail, 0, { B, past });
    expect(none.tokens.length).toBe(0);
    expect(none.cache.length).toBe(P);
    expect(maxAbsDiff(none.cache.v[0], past.v[0])).toBe(0);
  });

  it('a past made of the model\'s own K/V of a prefix + posOffset = P equals the concatenated sequence', () => {
    const config = base;
    const params = testParams(config, 10);
    const lora = initRefLora(config, [0, 1], ['q_proj', 'k_proj', 'o_proj', 'down_proj'], 2, 4, 103, 0.3);
    const { D, V, kvDim, L } = refDims(config);
    const B = 2, P = 3, S = 4, N = P + S;
    const embeds = randArray(B * N * D, 101);
    const full = refForward(config, params, { embeds }, { B, S: N, lora });
    const pre = new Float64Array(B * P * D);
    const cont = new Float64Array(B * S * D);
    for (let b = 0; b < B; b++) {
      pre.set(embeds.subarray(b * N * D, (b * N + P) * D), b * P * D);
      cont.set(embeds.subarray((b * N + P) * D, (b + 1) * N * D), b * S * D);
    }
    const fp = refForward(config, params, { embeds: pre }, { B, S: P, lora });
    const past: RefPast = refAppendKv(config, undefined, fp.newK, fp.newV, B, P);
    const fc = refForward(config, params, { embeds: cont }, { B, S, past, posOffset: P, lora });
    for (let b = 0; b < B; b++) {
      const rows = (x: Float64Array, w: number, n: number, off: number): Float64Array => x.subarray((b * n + off) * w, (b * n + off + S) * w);
      expect(maxAbsDiff(fc.logits.subarray(b * S * V, (b + 1) * S * V), rows(full.logits, V, N, P))).toBeLessThan(1e-12);
      expect(maxAbsDiff(fc.lastHidden.subarray(b * S * D, (b + 1) * S * D), rows(full.lastHidden, D, N, P))).toBeLessThan(1e-12);
      for (let l = 0; l < L; l++) {
        expect(maxAbsDiff(fc.newK[l].subarray(b * S * kvDim, (b + 1) * S * kvDim), rows(full.newK[l], kvDim, N, P))).toBeLessThan(1e-12);
      }
    }
    // with the wrong offset the keys are rotated at the wrong positions and the logits differ
    const wrong = refForward(config, params, { embeds: cont }, { B, S, past, posOffset: 0, lora });
    expect(maxAbsDiff(wrong.logits, fc.logits)).toBeGreaterThan(1e-3);
  });

  it('without a past, RoPE sees only relative positions: posOffset does not change the logits', () => {
    const config = base;
    const params = testParams(config, 11);
    const ids = randIds(10, config.vocab_size, 111);
    const a = refForward(config, params, { ids }, { B: 2, S: 5 });
    const b = refForward(config, params, { ids }, { B: 2, S: 5, posOffset: 17 });
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-12);
    expect(maxAbsDiff(a.newK[0], b.newK[0])).toBeGreaterThan(1e-3);
  });

  it('GQA equals MHA whose kv heads are repeated (HF repeat_kv: query head h reads kv head h / (Hq/Hkv))', () => {
    const gqa = gqaTied;
    const mha: RefConfig = { ...gqa, num_key_value_heads: gqa.num_attention_heads };
    const pg = testParams(gqa, 12);
    const pm = new Map(pg);
    const { hd, D, Hq, Hkv } = refDims(gqa);
    const group = Hq / Hkv;
    for (let l = 0; l < gqa.num_hidden_layers; l++) {
      for (const proj of ['k_proj', 'v_proj'] as const) {
        const name = `${projName(l, proj)}.weight`;
        const w = pg.get(name)!;
        const rep = new Float64Array(Hq * hd * D);
        for (let h = 0; h < Hq; h++) rep.set(w.subarray(Math.floor(h / group) * hd * D, (Math.floor(h / group) + 1) * hd * D), h * hd * D);
        pm.set(name, rep);
      }
    }
    const ids = randIds(8, gqa.vocab_size, 121);
    const a = refForward(gqa, pg, { ids }, { B: 2, S: 4 });
    const b = refForward(mha, pm, { ids }, { B: 2, S: 4 });
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-12);
  });

  it('tied embeddings equal an untied lm_head holding a copy of the embedding', () => {
    const tied = gqaTied;
    const untied: RefConfig = { ...tied, tie_word_embeddings: false };
    const pt = testParams(tied, 13);
    expect(pt.has('lm_head.weight')).toBe(false);
    const pu = new Map(pt);
    pu.set('lm_head.weight', pt.get('model.embed_tokens.weight')!.slice());
    const ids = randIds(6, tied.vocab_size, 131);
    const targets = randIds(6, tied.vocab_size, 132);
    const a = refLossAndGrads(tied, pt, { ids }, { B: 2, S: 3, targets });
    const b = refLossAndGrads(untied, pu, { ids }, { B: 2, S: 3, targets });
    expect(maxAbsDiff(a.forward.logits, b.forward.logits)).toBe(0);
    const sum = b.grads.params.get('model.embed_tokens.weight')!.map((x, i) => x + b.grads.params.get('lm_head.weight')![i]);
    expect(maxAbsDiff(a.grads.params.get('model.embed_tokens.weight')!, sum)).toBeLessThan(1e-14);
  });

  it('LoRA with B = 0 is the base model; merged W + (alpha/r) B A equals the adapter', () => {
    const config = base;
    const params = testParams(config, 14);
    const ids = randIds(8, config.vocab_size, 141);
    const fresh = initRefLora(config, [0, 1], ['q_proj', 'k_proj', 'v_proj', 'o_proj'], 4, 8, 143);
    const plain = refForward(config, params, { ids }, { B: 2, S: 4 });
    expect(maxAbsDiff(refForward(config, params, { ids }, { B: 2, S: 4, lora: fresh }).logits, plain.logits)).toBe(0);
    const lora: RefLora = initRefLora(config, [1], ['gate_proj', 'down_proj', 'v_proj'], 3, 5, 144, 0.5);
    const merged = new Map(params);
    for (const [name, { A, B }] of lora.targets) {
      const W = params.get(`${name}.weight`)!.slice();
      const inF = A.length / lora.r;
      const outF = B.length / lora.r;
      for (let o = 0; o < outF; o++) {
        for (let i = 0; i < inF; i++) {
          let s = 0;
          for (let k = 0; k < lora.r; k++) s += B[o * lora.r + k] * A[k * inF + i];
          W[o * inF + i] += (lora.alpha / lora.r) * s;
        }
      }
      merged.set(`${name}.weight`, W);
    }
    const a = refForward(config, params, { ids }, { B: 2, S: 4, lora });
    const b = refForward(config, merged, { ids }, { B: 2, S: 4 });
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-12);
    expect(maxAbsDiff(a.logits, plain.logits)).toBeGreaterThan(1e-3);
  });

  it('initRefParams is deterministic, HF-shaped, and preconditions throw with the numbers', () => {
    const config = base;
    const a = initRefParams(config, 5);
    const b = initRefParams(config, 5);
    for (const [name, shape] of paramShapes(config)) {
      expect(a.get(name)!.length).toBe(shape.reduce((x, y) => x * y, 1));
      expect(maxAbsDiff(a.get(name)!, b.get(name)!)).toBe(0);
    }
    expect(paramShapes(config).get('model.layers.1.self_attn.k_proj.weight')).toEqual([8, 8]);
    expect(paramShapes(gqaTied).get('model.layers.0.self_attn.k_proj.weight')).toEqual([8, 16]);
    expect(paramShapes(config).get('model.layers.0.mlp.down_proj.weight')).toEqual([8, 12]);
    expect(a.get('model.norm.weight')!.every((x) => x === 1)).toBe(true);
    const emb = a.get('model.embed_tokens.weight')!;
    const std = Math.sqrt(emb.reduce((s, x) => s + x * x, 0) / emb.length);
    expect(std).toBeGreaterThan(0.01);
    expect(std).toBeLessThan(0.03);
    expect(() => refForward(config, a, { ids: [1, 2, 99] }, { B: 1, S: 3 })).toThrow(/ids\[2\] = 99 is not in \[0, 11\)/);
    const bad: RefLora = { r: 2, alpha: 2, targets: new Map([['model.layers.0.attn.q_proj', { A: new Float64Array(16), B: new Float64Array(16) }]]) };
    expect(() => refForward(config, a, { ids: [1, 2] }, { B: 1, S: 2, lora: bad })).toThrow(/LoRA target 'model.layers.0.attn.q_proj'/);
    expect(() => refForward(config, a, { ids: [1, 2] }, { B: 1, S: 2, past: randPast(config, 1, 3, 1), posOffset: 3 }))
      .not.toThrow();
    expect(() => refForward(config, a, { ids: [1, 2] }, { B: 2, S: 1, past: randPast(config, 1, 3, 1) })).toThrow(/needs B\*P\*Hkv\*hd = 2\*3\*8/);
    expect(() => refDims({ ...config, num_key_value_heads: 3 })).toThrow(/not a multiple of num_key_value_heads=3/);
  });
});
