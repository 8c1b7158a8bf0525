// The GPU model against the float64 CPU reference, llm.c style: logits, loss and EVERY gradient
// tensor (base weights, LoRA A and B, input embeddings, prefix K/V), with the error per tensor printed.
import { describe, expect, it } from 'vitest';
import { LlamaGpu, LoraGpu, ModelPass } from '../src/model/model';
import { paramShapes, type ModelConfig, type Proj } from '../src/model/config';
import {
  initRefLora, initRefParams, refBackward, refForward, type RefLora, type RefUpstream,
} from '../src/reference/model';
import { normErr, randn, rng, testGpu } from './helpers';

// Error measure per tensor: max |gpu - ref| / max |ref| (scale-free, so tiny gradients are held to the
// same relative standard as large ones). f32 rounding through ~40 chained ops with sums of <= 40 terms
// gives about 1e-6 here; 1e-4 leaves a wide margin while any missing term or wrong index is O(1).
const TOL = 1e-4;

interface Case {
  name: string;
  config: ModelConfig;
  B: number;
  S: number;
  P: number;
  posOffset: number;
  input: 'ids' | 'embeds';
  lora?: { targets: Proj[]; layers: number[]; r: number; alpha: number };
  upstream: boolean;
}

const base = { rope_theta: 10000, rms_norm_eps: 1e-5 };
const CASES: Case[] = [
  {
    name: 'MHA, untied, ids',
    config: { ...base, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, vocab_size: 11, tie_word_embeddings: false },
    B: 2, S: 5, P: 0, posOffset: 0, input: 'ids', upstream: false,
  },
  {
    name: 'GQA 4/2, tied embeddings, ids',
    config: { ...base, hidden_size: 16, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 13, tie_word_embeddings: true },
    B: 3, S: 4, P: 0, posOffset: 0, input: 'ids', upstream: false,
  },
  {
    name: 'prefix P=3 at offset 5, LoRA q,v,o,up, input embeddings, upstream K/V and hidden gradients',
    config: { ...base, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 11, tie_word_embeddings: true },
    B: 2, S: 3, P: 3, posOffset: 5, input: 'embeds', upstream: true,
    lora: { targets: ['q_proj', 'v_proj', 'o_proj', 'up_proj'], layers: [0, 1], r: 3, alpha: 6 },
  },
  // the Qwen variants and Llama's bias switches, on odd sizes (no dimension a multiple of a tile)
  {
    name: 'Qwen2: q/k/v biases, GQA 6/2 of head_dim 4 (hidden 24), untied, vocab 19, LoRA q,k,v',
    config: { ...base, model_type: 'qwen2', hidden_size: 24, intermediate_size: 37, num_hidden_layers: 2, num_attention_heads: 6, num_key_value_heads: 2, vocab_size: 19, tie_word_embeddings: false },
    B: 2, S: 5, P: 0, posOffset: 0, input: 'ids', upstream: false,
    lora: { targets: ['q_proj', 'k_proj', 'v_proj'], layers: [1], r: 2, alpha: 5 },
  },
  {
    name: 'Qwen3: q_norm/k_norm, head_dim 6 apart from hidden 20 / 4 heads, GQA 4/2, attention_bias, tied, prefix P=2 at offset 4, embeds, upstream',
    config: { ...base, model_type: 'qwen3', head_dim: 6, attention_bias: true, hidden_size: 20, intermediate_size: 29, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 17, tie_word_embeddings: true },
    B: 2, S: 3, P: 2, posOffset: 4, input: 'embeds', upstream: true,
    lora: { targets: ['q_proj', 'k_proj', 'o_proj', 'down_proj'], layers: [0, 1], r: 3, alpha: 4 },
  },
  {
    name: 'Qwen3 without biases, MHA 3/3 of head_dim 10 (hidden 12), untied, ids',
    config: { ...base, model_type: 'qwen3', head_dim: 10, hidden_size: 12, intermediate_size: 19, num_hidden_layers: 1, num_attention_heads: 3, num_key_value_heads: 3, vocab_size: 23, tie_word_embeddings: false },
    B: 3, S: 4, P: 0, posOffset: 0, input: 'ids', upstream: false,
  },
  {
    name: 'Llama with attention_bias and mlp_bias, GQA 4/1, tied, ids',
    config: { ...base, model_type: 'llama', attention_bias: true, mlp_bias: true, hidden_size: 16, intermediate_size: 21, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, vocab_size: 13, tie_word_embeddings: true },
    B: 2, S: 4, P: 0, posOffset: 0, input: 'ids', upstream: false,
  },
];

describe('GPU model vs the float64 reference (every tensor)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const gpu = await testGpu();
      const cfg = c.config;
      const { B, S, P } = c;
      const T = B * S;
      const D = cfg.hidden_size;
      const kvDim = (cfg.head_dim ?? D / cfg.num_attention_heads) * cfg.num_key_value_heads;
      const L = cfg.num_hidden_layers;
      const V = cfg.vocab_size;
      const params = initRefParams(cfg, 7, 0.3);
      // biases start at 0 and q/k norms at 1: make them random so that every path carries a value
      let seed = 500;
      for (const [name, a] of params) {
        if (name.endsWith('.bias')) a.set(randn(a.length, seed++, 0.3));
        if (/[qk]_norm\.weight$/.test(name)) a.set(randn(a.length, seed++, 0.3).map((x) => 1 + x));
      }
      const r = rng(11);
      const ids = Uint32Array.from({ length: T }, () => Math.floor(r() * V));
      const targets = Uint32Array.from({ length: T }, (_, i) => (i % 4 === 3 ? 0xffffffff : Math.floor(r() * V)));
      const embeds = Float64Array.from(randn(T * D, 5));
      const past = P > 0 ? { k: Array.from({ length: L }, (_, l) => Float64Array.from(randn(B * P * kvDim, 20 + l))), v: Array.from({ length: L }, (_, l) => Float64Array.from(randn(B * P * kvDim, 40 + l))), length: P } : undefined;
      const refLora: RefLora | undefined = c.lora ? initRefLora(cfg, c.lora.layers, c.lora.targets, c.lora.r, c.lora.alpha, 3, 0.2) : undefined;
      const upstream: RefUpstream = {};
      if (c.upstream) {
        upstream.dNewK = Array.from({ length: L }, (_, l) => Float64Array.from(randn(T * kvDim, 60 + l, 0.1)));
        upstream.dNewV = Array.from({ length: L }, (_, l) => Float64Array.from(randn(T * kvDim, 80 + l, 0.1)));
        upstream.dLastHidden = Float64Array.from(randn(T * D, 99, 0.1));
      }
      const fwd = refForward(cfg, params, c.input === 'ids' ? { ids } : { embeds }, { B, S, past, posOffset: c.posOffset, lora: refLora, targets });
      const grads = refBackward(cfg, params, fwd, upstream);

      const weights = new Map<string, Float32Array>();
      for (const [k, v] of params) weights.set(k, Float32Array.from(v));
      const model = new LlamaGpu(gpu, cfg, weights);
      model.enableGrads();
      let lora: LoraGpu | undefined;
      if (c.lora && refLora) {
        lora = new LoraGpu(gpu, cfg, { r: c.lora.r, alpha: c.lora.alpha, targets: c.lora.targets, layers: c.lora.layers });
        lora.load(refLora.targets);
      }
      const prefix = past ? { k: past.k.map((a, l) => gpu.tensor([B, P, kvDim], `pk${l}`, Float32Array.from(a))), v: past.v.map((a, l) => gpu.tensor([B, P, kvDim], `pv${l}`, Float32Array.from(a))) } : undefined;
      const prefixGrad = past ? { k: past.k.map((_, l) => gpu.tensor([B, P, kvDim], `dpk${l}`)), v: past.v.map((_, l) => gpu.tensor([B, P, kvDim], `dpv${l}`)) } : undefined;
      const pass = new ModelPass(model, { B, S, P, input: c.input }, { lora, backward: true, baseGrads: true, prefix, prefixGrad, upstream: c.upstream, posOffset: c.posOffset });
      if (c.input === 'ids') pass.setIds(ids);
      else gpu.write(pass.embeds!, Float32Array.from(embeds));
      pass.setTargets(targets);
      if (c.upstream) {
        for (let l = 0; l < L; l++) {
          gpu.write(pass.dNewK[l], Float32Array.from(upstream.dNewK![l]!));
          gpu.write(pass.dNewV[l], Float32Array.from(upstream.dNewV![l]!));
        }
        gpu.write(pass.dLastHidden!, Float32Array.from(upstream.dLastHidden!));
      }
      pass.recordForward();
      pass.recordBackward();

      const report: [string, number][] = [];
      const check = async (name: string, t: Parameters<typeof gpu.read>[0], ref: ArrayLike<number>) => report.push([name, normErr(await gpu.read(t), ref)]);
      await check('logits', pass.logits, fwd.logits);
      await check('lastHidden', pass.lastHidden, fwd.lastHidden);
      for (let l = 0; l < L; l++) {
        await check(`newK[${l}]`, pass.newK[l], fwd.newK[l]);
        await check(`newV[${l}]`, pass.newV[l], fwd.newV[l]);
      }
      for (const name of paramShapes(cfg).keys()) await check(`d ${name}`, model.grads!.get(name)!, grads.params.get(name)!);
      if (lora) {
        for (const [name, m] of lora.modules) {
          await check(`d ${name}.lora_A`, m.dA, grads.lora.get(name)!.A);
          await check(`d ${name}.lora_B`, m.dB, grads.lora.get(name)!.B);
        }
      }
      if (c.input === 'embeds') await check('d embeds', pass.dEmbeds!, grads.dEmbeds!);
      if (prefixGrad) {
        for (let l = 0; l < L; l++) {
          await check(`d prefixK[${l}]`, prefixGrad.k[l], grads.dPastK[l]);
          await check(`d prefixV[${l}]`, prefixGrad.v[l], grads.dPastV[l]);
        }
      }
      const worst = report.reduce((a, b) => (b[1] > a[1] ? b : a));
      console.log(`${c.name}: ${report.length} tensors, worst ${worst[0]} ${worst[1].toExponential(2)}`);
      for (const [name, e] of report) if (!(e < TOL)) console.log(`  FAIL ${name}: ${e}`);
      for (const [name, e] of report) expect(e, name).toBeLessThan(TOL);
      pass.destroy();
      lora?.destroy();
      model.destroy();
    });
  }
});

describe('a pass without its lm_head (a sender whose logits nobody reads)', () => {
  it('gives the same K/V, last hidden state and gradients from upstream as the full pass, and allocates no [T, V] buffers', async () => {
    const gpu = await testGpu();
    const cfg: ModelConfig = { ...base, model_type: 'qwen3', head_dim: 6, hidden_size: 12, intermediate_size: 17, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 301, tie_word_embeddings: true };
    const params = initRefParams(cfg, 3, 0.3);
    const weights = new Map([...params].map(([k, v]) => [k, Float32Array.from(v)]));
    const model = new LlamaGpu(gpu, cfg, weights);
    const [B, S] = [2, 3];
    const T = B * S;
    const kvDim = 6;
    const lora = new LoraGpu(gpu, cfg, { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj'], layers: null }, 5);
    lora.load(new Map([...lora.modules].map(([n, m]) => [n, { A: randn(m.A.size, 1), B: randn(m.B.size, 2, 0.3) }])));
    const results: Float32Array[][] = [];
    const sizes: number[] = [];
    for (const lmHead of [true, false]) {
      const m0 = gpu.memory().current;
      const pass = new ModelPass(model, { B, S, P: 0, input: 'embeds' }, { lora, backward: true, upstream: true, lmHead });
      sizes.push(gpu.memory().current - m0);
      gpu.write(pass.embeds!, randn(T * 12, 7));
      for (let l = 0; l < 2; l++) {
        gpu.write(pass.dNewK[l], randn(T * kvDim, 10 + l));
        gpu.write(pass.dNewV[l], randn(T * kvDim, 20 + l));
      }
      gpu.write(pass.dLastHidden!, randn(T * 12, 30));
      for (const m of lora.modules.values()) [m.dA, m.dB].forEach((t) => gpu.write(t, new Float32Array(t.size)));
      pass.recordForward();
      pass.recordBackward();
      const out = [await gpu.read(pass.lastHidden), await gpu.read(pass.newK[1]), await gpu.read(pass.newV[0]), await gpu.read(pass.dEmbeds!)];
      for (const m of lora.modules.values()) out.push(await gpu.read(m.dA), await gpu.read(m.dB));
      results.push(out);
      pass.destroy();
    }
    results[0].forEach((a, i) => expect(results[1][i], `tensor ${i}`).toEqual(a));
    // the two [T, V] buffers (logits, dlogits) and the row losses are not made
    expect(sizes[0] - sizes[1]).toBe(2 * T * 301 * 4 + T * 4);
    lora.destroy();
    model.destroy();
  });
});
