// Float64 CPU reference of Hugging Face LlamaForCausalLM with LoRA and a foreign KV prefix: the
// oracle the GPU model is checked against on logits, loss and every gradient tensor (as llm.c's
// test_gpt2 against its PyTorch dump). Explicit forward and backward, op by op (./model-ops.ts);
// no autograd. Conventions: docs/engine.md. Rows are t = b*S + s, T = B*S; Linear weights (out, in).
// Also Qwen2ForCausalLM (q/k/v biases) and Qwen3ForCausalLM (per-head RMSNorm of q and k before RoPE,
// an explicit head_dim), as transformers' modeling files define them.
import {
  attentionBackward, attentionForward, biasBackward, biasForward, crossEntropyBackward, crossEntropyForward, embeddingBackward,
  embeddingForward, linearBackward, linearForward, loraBackward, loraForward, rmsnormBackward, rmsnormForward,
  ropeBackward, ropeForward, swigluBackward, swigluForward, type AttentionDims,
} from './model-ops';
import type { RopeScaling } from './rope';

export { IGNORE_INDEX } from './model-ops';

/** The fields of Hugging Face's LlamaConfig (Qwen2Config, Qwen3Config) this reference reads (a structural subset of it). */
export interface RefConfig {
  /** 'llama' (default), 'qwen2' or 'qwen3' */
  model_type?: string;
  /** default hidden_size / num_attention_heads */
  head_dim?: number;
  /** Llama, Qwen3: biases on q, k, v, o_proj */
  attention_bias?: boolean;
  /** Llama: biases on gate, up, down_proj */
  mlp_bias?: boolean;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  vocab_size: number;
  rope_theta: number;
  /** Llama 3.x: rope_type "llama3" and its frequency scaling (./rope.ts); absent: plain RoPE */
  rope_parameters?: RopeScaling | null;
  rms_norm_eps: number;
  tie_word_embeddings: boolean;
}

export interface RefDims {
  D: number; I: number; L: number; Hq: number; Hkv: number; hd: number; V: number; qDim: number; kvDim: number;
  /** projections with a bias (Qwen2: q, k, v; attention_bias: q, k, v, o; mlp_bias: gate, up, down) */
  biases: Proj[];
  /** Qwen3's q_norm / k_norm */
  qkNorm: boolean;
}

/** Derived sizes; throws on a config this reference does not implement (odd head_dim, head counts
 * that do not divide, rope_scaling, an activation other than silu, an unknown model_type). */
export function refDims(config: RefConfig): RefDims {
  const D = config.hidden_size;
  const Hq = config.num_attention_heads;
  const Hkv = config.num_key_value_heads;
  const fail = (m: string): never => { throw new Error(`reference model: ${m}`); };
  for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size'] as const) {
    if (!Number.isInteger(config[k]) || config[k] <= 0) fail(`${k} must be a positive integer, got ${config[k]}`);
  }
  if (Hq % Hkv !== 0) fail(`num_attention_heads=${Hq} is not a multiple of num_key_value_heads=${Hkv}`);
  const type = config.model_type ?? 'llama';
  if (type !== 'llama' && type !== 'qwen2' && type !== 'qwen3') fail(`model_type=${type} (only llama, qwen2, qwen3)`);
  // Qwen2 has no head_dim: always hidden / heads
  const hd = type !== 'qwen2' && config.head_dim !== undefined ? config.head_dim : D / Hq;
  if (!Number.isInteger(hd) || hd <= 0) fail(`hidden_size=${D} is not a multiple of num_attention_heads=${Hq} and no head_dim is given`);
  if (hd % 2 !== 0) fail(`head_dim=${hd} must be even for RoPE`);
  const extra = config as unknown as Record<string, unknown>;
  if (extra.rope_scaling !== undefined && extra.rope_scaling !== null) fail('rope_scaling is not implemented (rope_parameters with rope_type llama3 is)');
  if (config.rope_parameters && config.rope_parameters.rope_type !== 'llama3') fail(`rope_parameters.rope_type=${String(config.rope_parameters.rope_type)} (only llama3)`);
  if (extra.hidden_act !== undefined && extra.hidden_act !== 'silu') fail(`hidden_act=${String(extra.hidden_act)} (only silu)`);
  // transformers: Qwen2Attention has q/k/v bias=True, o bias=False; Llama/Qwen3 use attention_bias for all four; LlamaMLP mlp_bias
  const biases: Proj[] = type === 'qwen2' ? ['q_proj', 'k_proj', 'v_proj'] : config.attention_bias ? ['q_proj', 'k_proj', 'v_proj', 'o_proj'] : [];
  if (type === 'llama' && config.mlp_bias) biases.push('gate_proj', 'up_proj', 'down_proj');
  return {
    D, I: config.intermediate_size, L: config.num_hidden_layers, Hq, Hkv, hd, V: config.vocab_size, qDim: Hq * hd, kvDim: Hkv * hd,
    biases, qkNorm: type === 'qwen3',
  };
}

// ---------------------------------------------------------------------------------------------
// Parameters

export const PROJS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Proj = (typeof PROJS)[number];

/** Module name of a projection, e.g. 'model.layers.0.self_attn.q_proj' (its weight adds '.weight'). */
export function projName(layer: number, proj: Proj): string {
  const mod = proj === 'gate_proj' || proj === 'up_proj' || proj === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${mod}.${proj}`;
}

/** (out, in) of a projection. */
export function projShape(config: RefConfig, proj: Proj): [number, number] {
  const { D, I, qDim, kvDim } = refDims(config);
  switch (proj) {
    case 'q_proj': return [qDim, D];
    case 'k_proj': case 'v_proj': return [kvDim, D];
    case 'o_proj': return [D, qDim];
    case 'gate_proj': case 'up_proj': return [I, D];
    case 'down_proj': return [D, I];
  }
}

/** Every parameter's shape by Hugging Face name, in LlamaForCausalLM.named_parameters() order
 * (no lm_head.weight when tie_word_embeddings). */
export function paramShapes(config: RefConfig): Map<string, number[]> {
  const { D, L, V, hd, biases, qkNorm } = refDims(config);
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [V, D]);
  for (let l = 0; l < L; l++) {
    for (const p of PROJS) m.set(`${projName(l, p)}.weight`, projShape(config, p));
    m.set(`model.layers.${l}.input_layernorm.weight`, [D]);
    m.set(`model.layers.${l}.post_attention_layernorm.weight`, [D]);
    for (const p of biases) m.set(`${projName(l, p)}.bias`, [projShape(config, p)[0]]);
    if (qkNorm) {
      m.set(`model.layers.${l}.self_attn.q_norm.weight`, [hd]);
      m.set(`model.layers.${l}.self_attn.k_norm.weight`, [hd]);
    }
  }
  m.set('model.norm.weight', [D]);
  if (!config.tie_word_embeddings) m.set('lm_head.weight', [V, D]);
  return m;
}

/** Seeded uniform [0, 1) stream (mulberry32). */
export function refRand(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded standard-normal stream (mulberry32 + Box-Muller, one normal per two uniforms). */
export function refRandn(seed: number): () => number {
  const uni = refRand(seed);
  return () => Math.sqrt(-2 * Math.log(Math.max(uni(), 1e-300))) * Math.cos(2 * Math.PI * uni());
}

/** HF init: linears and the embedding ~ N(0, std^2) (initializer_range, 0.02), norms = 1, biases = 0.
 * One seeded stream, drawn in paramShapes order. */
export function initRefParams(config: RefConfig, seed: number, std = 0.02): Map<string, Float64Array> {
  const rnd = refRandn(seed);
  const out = new Map<string, Float64Array>();
  for (const [name, shape] of paramShapes(config)) {
    const a = new Float64Array(shape.reduce((x, y) => x * y, 1));
    if (name.endsWith('norm.weight')) a.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < a.length; i++) a[i] = std * rnd();
    out.set(name, a);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// LoRA

export interface RefLoraPair {
  /** (r, in) */
  A: Float64Array;
  /** (out, r) */
  B: Float64Array;
}

/** y = x W^T + (alpha / r) (x A^T) B^T on each target, keyed by module name ('model.layers.0.self_attn.q_proj'). */
export interface RefLora {
  r: number;
  alpha: number;
  targets: Map<string, RefLoraPair>;
}

/** PEFT-style init on the given layers and projections: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming
 * uniform with a = sqrt(5)), B = 0, or B ~ N(0, bStd^2) when bStd > 0 (tests need B != 0). */
export function initRefLora(
  config: RefConfig, layers: number[], projs: readonly Proj[], r: number, alpha: number, seed: number, bStd = 0,
): RefLora {
  const uni = refRand(seed);
  const rnd = refRandn(seed ^ 0x5bd1e995);
  const targets = new Map<string, RefLoraPair>();
  for (const l of layers) {
    for (const p of projs) {
      const [outF, inF] = projShape(config, p);
      const A = new Float64Array(r * inF);
      const bound = 1 / Math.sqrt(inF);
      for (let i = 0; i < A.length; i++) A[i] = bound * (2 * uni() - 1);
      const B = new Float64Array(outF * r);
      if (bStd > 0) for (let i = 0; i < B.length; i++) B[i] = bStd * rnd();
      targets.set(projName(l, p), { A, B });
    }
  }
  return { r, alpha, targets };
}

function checkLora(config: RefConfig, lora: RefLora | undefined): void {
  if (!lora || lora.targets.size === 0) return;
  const { L } = refDims(config);
  if (!Number.isInteger(lora.r) || lora.r <= 0) throw new Error(`reference model: LoRA r must be a positive integer, got ${lora.r}`);
  const known = new Map<string, Proj>();
  for (let l = 0; l < L; l++) for (const p of PROJS) known.set(projName(l, p), p);
  for (const [name, { A, B }] of lora.targets) {
    const p = known.get(name);
    if (!p) throw new Error(`reference model: LoRA target '${name}' is not a projection of this model (e.g. 'model.layers.0.self_attn.q_proj')`);
    const [outF, inF] = projShape(config, p);
    if (A.length !== lora.r * inF) throw new Error(`reference model: LoRA ${name} A has ${A.length} values, needs r*in = ${lora.r}*${inF}`);
    if (B.length !== outF * lora.r) throw new Error(`reference model: LoRA ${name} B has ${B.length} values, needs out*r = ${outF}*${lora.r}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Forward

/** Token ids [B*S] (looked up in model.embed_tokens.weight), or input embeddings [B*S, D]. */
export type RefInput = { ids: ArrayLike<number> } | { embeds: ArrayLike<number> };

/** A KV prefix every sequence of the batch attends over first: per layer [B, P, Hkv*hd], keys already
 * rotated at their own positions; P = length. */
export interface RefPast {
  k: ArrayLike<number>[];
  v: ArrayLike<number>[];
  length: number;
}

/** A KV cache this module builds (refAppendKv, refGenerate): a RefPast with float64 arrays. */
export interface RefKvCache extends RefPast {
  k: Float64Array[];
  v: Float64Array[];
}

export interface RefForwardOptions {
  B: number;
  S: number;
  past?: RefPast;
  /** Position of row s is posOffset + s (default 0). With a past of P positions of the same stream, pass P. */
  posOffset?: number;
  lora?: RefLora;
  /** [B*S] u32 next-token labels, IGNORE_INDEX (0xFFFFFFFF) rows skipped. */
  targets?: ArrayLike<number>;
}

/** What one decoder layer saves for its backward (all [T, .] row-major). */
export interface RefLayerSaved {
  /** residual stream entering the layer [T, D] */
  x: Float64Array;
  rrms1: Float64Array;
  /** input_layernorm output [T, D] */
  n1: Float64Array;
  /** projections before RoPE: q [T, Hq*hd], k/v [T, Hkv*hd] */
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  /** after RoPE */
  qr: Float64Array;
  kr: Float64Array;
  /** softmax probabilities [B, Hq, S, P+S] (key n < P: prefix position n; n >= P: own position n-P) */
  probs: Float64Array;
  /** attention output before o_proj [T, Hq*hd] */
  att: Float64Array;
  /** residual after attention [T, D] */
  x1: Float64Array;
  rrms2: Float64Array;
  n2: Float64Array;
  /** gate, up [T, I]; h = silu(g) * u [T, I] */
  g: Float64Array;
  u: Float64Array;
  h: Float64Array;
  /** LoRA u = x A^T [T, r] per projection that has an adapter */
  loraU: Map<Proj, Float64Array>;
  /** Qwen3: q and k after their per-head RMSNorm (RoPE's inputs) and its rrms [T*H] (null otherwise) */
  qn: Float64Array | null;
  kn: Float64Array | null;
  rrmsQ: Float64Array | null;
  rrmsK: Float64Array | null;
}

export interface RefForwardResult {
  B: number;
  S: number;
  /** prefix length (0 without a past) */
  P: number;
  posOffset: number;
  /** [B*S, V] */
  logits: Float64Array;
  /** mean cross-entropy over non-ignored targets (undefined without targets; 0 if all are ignored) */
  loss?: number;
  /** number of non-ignored targets (0 without targets) */
  count: number;
  /** [B*S, D]: after the final norm, the input of lm_head (HF's last hidden state) */
  lastHidden: Float64Array;
  /** [B*S, D]: residual stream after the last layer, before the final norm */
  hiddenPreNorm: Float64Array;
  /** per layer [B*S, Hkv*hd] = [B, S, Hkv*hd]: this call's keys (rotated) and values, the KV cache it adds */
  newK: Float64Array[];
  newV: Float64Array[];
  /** per layer attention probabilities [B, Hq, S, P+S] (same arrays as saved.layers[l].probs) */
  attn: Float64Array[];
  /** everything the backward needs */
  saved: {
    ids?: ArrayLike<number>;
    embeds?: ArrayLike<number>;
    /** [B*S, D] the embeddings entering layer 0 */
    x0: Float64Array;
    past?: RefPast;
    lora?: RefLora;
    targets?: ArrayLike<number>;
    layers: RefLayerSaved[];
    rrmsFinal: Float64Array;
  };
}

function getParam(params: Map<string, Float64Array>, name: string, n: number): Float64Array {
  const a = params.get(name);
  if (!a) throw new Error(`reference model: parameter '${name}' is missing`);
  if (a.length !== n) throw new Error(`reference model: parameter '${name}' has ${a.length} values, needs ${n}`);
  return a;
}

function lmHeadName(config: RefConfig): string {
  return config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

/** A projection with its optional LoRA branch and bias. */
function projForward(
  config: RefConfig, params: Map<string, Float64Array>, lora: RefLora | undefined, layer: number, proj: Proj,
  x: Float64Array, T: number, loraU: Map<Proj, Float64Array>,
): Float64Array {
  const [outF, inF] = projShape(config, proj);
  const name = projName(layer, proj);
  const y = linearForward(x, getParam(params, `${name}.weight`, outF * inF), T, inF, outF);
  const ad = lora?.targets.get(name);
  if (lora && ad) loraU.set(proj, loraForward(y, x, ad.A, ad.B, T, inF, outF, lora.r, lora.alpha / lora.r));
  if (refDims(config).biases.includes(proj)) biasForward(y, getParam(params, `${name}.bias`, outF), T, outF);
  return y;
}

export function refForward(
  config: RefConfig, params: Map<string, Float64Array>, input: RefInput, opts: RefForwardOptions,
): RefForwardResult {
  const dims = refDims(config);
  const { D, L, Hq, Hkv, hd, V, kvDim, qkNorm } = dims;
  const { B, S } = opts;
  if (!Number.isInteger(B) || B <= 0 || !Number.isInteger(S) || S <= 0) throw new Error(`refForward: B=${B} and S=${S} must be positive integers`);
  const T = B * S;
  const past = opts.past;
  const P = past ? past.length : 0;
  if (past) {
    if (past.k.length !== L || past.v.length !== L) throw new Error(`refForward: past has ${past.k.length} K and ${past.v.length} V layers, needs ${L}`);
    for (let l = 0; l < L; l++) {
      if (past.k[l].length !== B * P * kvDim || past.v[l].length !== B * P * kvDim) {
        throw new Error(`refForward: past layer ${l} has K ${past.k[l].length} / V ${past.v[l].length} values, needs B*P*Hkv*hd = ${B}*${P}*${kvDim}`);
      }
    }
  }
  const posOffset = opts.posOffset ?? 0;
  const lora = opts.lora;
  checkLora(config, lora);
  const theta = config.rope_theta;
  const eps = config.rms_norm_eps;

  let x0: Float64Array;
  if ('ids' in input) {
    x0 = embeddingForward(getParam(params, 'model.embed_tokens.weight', V * D), input.ids, T, V, D);
  } else {
    if (input.embeds.length !== T * D) throw new Error(`refForward: embeds has ${input.embeds.length} values, needs B*S*D = ${T}*${D}`);
    x0 = Float64Array.from(input.embeds);
  }

  const attnDims: AttentionDims = { B, S, P, Hq, Hkv, hd };
  const layers: RefLayerSaved[] = [];
  let x = x0;
  for (let l = 0; l < L; l++) {
    const loraU = new Map<Proj, Float64Array>();
    const pre = `model.layers.${l}`;
    const { y: n1, rrms: rrms1 } = rmsnormForward(x, getParam(params, `${pre}.input_layernorm.weight`, D), T, D, eps);
    const q = projForward(config, params, lora, l, 'q_proj', n1, T, loraU);
    const k = projForward(config, params, lora, l, 'k_proj', n1, T, loraU);
    const v = projForward(config, params, lora, l, 'v_proj', n1, T, loraU);
    // Qwen3: RMSNorm over each head's hd values of q and k, then RoPE
    const qnr = qkNorm ? rmsnormForward(q, getParam(params, `${pre}.self_attn.q_norm.weight`, hd), T * Hq, hd, eps) : null;
    const knr = qkNorm ? rmsnormForward(k, getParam(params, `${pre}.self_attn.k_norm.weight`, hd), T * Hkv, hd, eps) : null;
    const qr = ropeForward(qnr?.y ?? q, T, S, Hq, hd, posOffset, theta, config.rope_parameters);
    const kr = ropeForward(knr?.y ?? k, T, S, Hkv, hd, posOffset, theta, config.rope_parameters);
    const { out: att, probs } = attentionForward(qr, kr, v, past ? past.k[l] : null, past ? past.v[l] : null, attnDims);
    const o = projForward(config, params, lora, l, 'o_proj', att, T, loraU);
    const x1 = new Float64Array(T * D);
    for (let i = 0; i < x1.length; i++) x1[i] = x[i] + o[i];
    const { y: n2, rrms: rrms2 } = rmsnormForward(x1, getParam(params, `${pre}.post_attention_layernorm.weight`, D), T, D, eps);
    const g = projForward(config, params, lora, l, 'gate_proj', n2, T, loraU);
    const u = projForward(config, params, lora, l, 'up_proj', n2, T, loraU);
    const h = swigluForward(g, u);
    const m = projForward(config, params, lora, l, 'down_proj', h, T, loraU);
    const x2 = new Float64Array(T * D);
    for (let i = 0; i < x2.length; i++) x2[i] = x1[i] + m[i];
    layers.push({
      x, rrms1, n1, q, k, v, qr, kr, probs, att, x1, rrms2, n2, g, u, h, loraU,
      qn: qnr?.y ?? null, kn: knr?.y ?? null, rrmsQ: qnr?.rrms ?? null, rrmsK: knr?.rrms ?? null,
    });
    x = x2;
  }
  const { y: lastHidden, rrms: rrmsFinal } = rmsnormForward(x, getParam(params, 'model.norm.weight', D), T, D, eps);
  const logits = linearForward(lastHidden, getParam(params, lmHeadName(config), V * D), T, D, V);
  let loss: number | undefined;
  let count = 0;
  if (opts.targets) {
    ({ loss, count } = crossEntropyForward(logits, opts.targets, T, V));
  }
  return {
    B, S, P, posOffset, logits, loss, count, lastHidden, hiddenPreNorm: x,
    newK: layers.map((s) => s.kr), newV: layers.map((s) => s.v), attn: layers.map((s) => s.probs),
    saved: {
      ids: 'ids' in input ? input.ids : undefined, embeds: 'embeds' in input ? input.embeds : undefined,
      x0, past, lora, targets: opts.targets, layers, rrmsFinal,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Backward

/** Upstream gradients. The backward returns the gradient of
 *   J = lossScale * loss + <dLogits, logits> + <dLastHidden, lastHidden>
 *       + sum_l (<dNewK[l], newK[l]> + <dNewV[l], newV[l]>)
 * where every term is optional. lossScale defaults to 1 when the forward had targets, else 0. */
export interface RefUpstream {
  lossScale?: number;
  /** [B*S, V] */
  dLogits?: ArrayLike<number>;
  /** [B*S, D] on lastHidden (e.g. from a latent step that fed it back as the next input) */
  dLastHidden?: ArrayLike<number>;
  /** per layer [B*S, Hkv*hd] on newK (rotated keys) / newV (e.g. from a receiver attending over this
   * cache); a missing or null entry is zero */
  dNewK?: (ArrayLike<number> | null | undefined)[];
  dNewV?: (ArrayLike<number> | null | undefined)[];
}

export interface RefGrads {
  /** d J / d every parameter, same names and shapes as params (base weights are reported even when LoRA
   * is used; with tied embeddings model.embed_tokens.weight holds both the lookup and the lm_head part) */
  params: Map<string, Float64Array>;
  /** per LoRA target (same keys as lora.targets): dA (r, in), dB (out, r) */
  lora: Map<string, RefLoraPair>;
  /** [B*S, D] when the input was embeds */
  dEmbeds?: Float64Array;
  /** per layer [B, P, Hkv*hd] (empty per-layer arrays when there was no past) */
  dPastK: Float64Array[];
  dPastV: Float64Array[];
  /** [B*S, V] the total gradient on logits that was propagated */
  dLogits: Float64Array;
  /** [B*S, D] the total gradient on lastHidden (lm_head part + upstream) */
  dLastHidden: Float64Array;
}

function addInto(dst: Float64Array, src: ArrayLike<number> | null | undefined, what: string): void {
  if (!src) return;
  if (src.length !== dst.length) throw new Error(`refBackward: ${what} has ${src.length} values, needs ${dst.length}`);
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

export function refBackward(
  config: RefConfig, params: Map<string, Float64Array>, fwd: RefForwardResult, upstream: RefUpstream = {},
): RefGrads {
  const { D, L, Hq, Hkv, hd, V, kvDim, biases, qkNorm } = refDims(config);
  const { B, S, P, posOffset, saved } = fwd;
  const T = B * S;
  const lora = saved.lora;
  const past = saved.past;
  const theta = config.rope_theta;

  const grads = new Map<string, Float64Array>();
  for (const [name, shape] of paramShapes(config)) grads.set(name, new Float64Array(shape.reduce((a, b) => a * b, 1)));
  const loraGrads = new Map<string, RefLoraPair>();
  if (lora) for (const [name, { A, B: Bm }] of lora.targets) loraGrads.set(name, { A: new Float64Array(A.length), B: new Float64Array(Bm.length) });
  const dPastK = Array.from({ length: L }, () => new Float64Array(B * P * kvDim));
  const dPastV = Array.from({ length: L }, () => new Float64Array(B * P * kvDim));

  // logits and the final norm
  const dLogits = new Float64Array(T * V);
  const lossScale = upstream.lossScale ?? (saved.targets ? 1 : 0);
  if (lossScale !== 0) {
    if (!saved.targets) throw new Error('refBackward: lossScale != 0 but the forward had no targets');
    crossEntropyBackward(dLogits, fwd.logits, saved.targets, T, V, lossScale);
  }
  addInto(dLogits, upstream.dLogits, 'dLogits');
  const dLastHidden = new Float64Array(T * D);
  const headName = lmHeadName(config);
  linearBackward(dLastHidden, grads.get(headName)!, dLogits, fwd.lastHidden, getParam(params, headName, V * D), T, D, V);
  addInto(dLastHidden, upstream.dLastHidden, 'dLastHidden');
  let dx = new Float64Array(T * D);
  rmsnormBackward(dx, grads.get('model.norm.weight')!, dLastHidden, fwd.hiddenPreNorm, getParam(params, 'model.norm.weight', D), saved.rrmsFinal, T, D);

  const projBackward = (l: number, proj: Proj, dxIn: Float64Array, dy: Float64Array, xIn: Float64Array, sv: RefLayerSaved): void => {
    const [outF, inF] = projShape(config, proj);
    const name = projName(l, proj);
    const W = getParam(params, `${name}.weight`, outF * inF);
    linearBackward(dxIn, grads.get(`${name}.weight`)!, dy, xIn, W, T, inF, outF);
    if (biases.includes(proj)) biasBackward(grads.get(`${name}.bias`)!, dy, T, outF);
    const ad = lora?.targets.get(name);
    if (lora && ad) {
      const g = loraGrads.get(name)!;
      loraBackward(dxIn, g.A, g.B, dy, xIn, ad.A, ad.B, sv.loraU.get(proj)!, T, inF, outF, lora.r, lora.alpha / lora.r);
    }
  };

  const attnDims: AttentionDims = { B, S, P, Hq, Hkv, hd };
  for (let l = L - 1; l >= 0; l--) {
    const sv = saved.layers[l];
    const pre = `model.layers.${l}`;
    // MLP: x2 = x1 + down(silu(gate(n2)) * up(n2))
    const dh = new Float64Array(T * config.intermediate_size);
    projBackward(l, 'down_proj', dh, dx, sv.h, sv);
    const dg = new Float64Array(dh.length);
    const du = new Float64Array(dh.length);
    swigluBackward(dg, du, dh, sv.g, sv.u);
    const dn2 = new Float64Array(T * D);
    projBackward(l, 'gate_proj', dn2, dg, sv.n2, sv);
    projBackward(l, 'up_proj', dn2, du, sv.n2, sv);
    const dx1 = dx; // residual: dx1 = dx2 + d(norm path)
    const w2 = `${pre}.post_attention_layernorm.weight`;
    rmsnormBackward(dx1, grads.get(w2)!, dn2, sv.x1, getParam(params, w2, D), sv.rrms2, T, D);
    // attention: x1 = x + o_proj(attn(rope(q), rope(k), v))
    const datt = new Float64Array(T * Hq * hd);
    projBackward(l, 'o_proj', datt, dx1, sv.att, sv);
    const dqr = new Float64Array(T * Hq * hd);
    const dkr = new Float64Array(T * kvDim);
    const dv = new Float64Array(T * kvDim);
    attentionBackward(dqr, dkr, dv, dPastK[l], dPastV[l], datt, sv.qr, sv.kr, sv.v,
      past ? past.k[l] : null, past ? past.v[l] : null, sv.probs, attnDims);
    addInto(dkr, upstream.dNewK?.[l], `dNewK[${l}]`);
    addInto(dv, upstream.dNewV?.[l], `dNewV[${l}]`);
    const dq = new Float64Array(T * Hq * hd);
    const dk = new Float64Array(T * kvDim);
    ropeBackward(dq, dqr, T, S, Hq, hd, posOffset, theta, config.rope_parameters);
    ropeBackward(dk, dkr, T, S, Hkv, hd, posOffset, theta, config.rope_parameters);
    // Qwen3: through the per-head norms (dq, dk are the gradients of their outputs)
    let dqPre = dq;
    let dkPre = dk;
    if (qkNorm) {
      const wq = `${pre}.self_attn.q_norm.weight`;
      const wk = `${pre}.self_attn.k_norm.weight`;
      dqPre = new Float64Array(dq.length);
      dkPre = new Float64Array(dk.length);
      rmsnormBackward(dqPre, grads.get(wq)!, dq, sv.q, getParam(params, wq, hd), sv.rrmsQ!, T * Hq, hd);
      rmsnormBackward(dkPre, grads.get(wk)!, dk, sv.k, getParam(params, wk, hd), sv.rrmsK!, T * Hkv, hd);
    }
    const dn1 = new Float64Array(T * D);
    projBackward(l, 'q_proj', dn1, dqPre, sv.n1, sv);
    projBackward(l, 'k_proj', dn1, dkPre, sv.n1, sv);
    projBackward(l, 'v_proj', dn1, dv, sv.n1, sv);
    const w1 = `${pre}.input_layernorm.weight`;
    rmsnormBackward(dx1, grads.get(w1)!, dn1, sv.x, getParam(params, w1, D), sv.rrms1, T, D);
    dx = dx1; // dx (layer input) = dx1 + d(norm path), accumulated in place
  }

  let dEmbeds: Float64Array | undefined;
  if (saved.ids) embeddingBackward(grads.get('model.embed_tokens.weight')!, dx, saved.ids, T, V, D);
  else dEmbeds = dx;
  return { params: grads, lora: loraGrads, dEmbeds, dPastK, dPastV, dLogits, dLastHidden };
}

/** Forward with targets then backward of the loss (plus any extra upstream terms). */
export function refLossAndGrads(
  config: RefConfig, params: Map<string, Float64Array>, input: RefInput, opts: RefForwardOptions & { targets: ArrayLike<number> },
  upstream: RefUpstream = {},
): { loss: number; count: number; grads: RefGrads; forward: RefForwardResult } {
  const forward = refForward(config, params, input, opts);
  const grads = refBackward(config, params, forward, upstream);
  return { loss: forward.loss!, count: forward.count, grads, forward };
}

// ---------------------------------------------------------------------------------------------
// KV cache and greedy decoding

/** Concatenates a past [B, P, kvDim] (or none) and new K/V [B, S, kvDim] per layer into [B, P+S, kvDim]. */
export function refAppendKv(
  config: RefConfig, past: RefPast | undefined, newK: ArrayLike<number>[], newV: ArrayLike<number>[], B: number, S: number,
): RefKvCache {
  const { L, kvDim } = refDims(config);
  const P = past ? past.length : 0;
  if (newK.length !== L || newV.length !== L) throw new Error(`refAppendKv: ${newK.length} K and ${newV.length} V layers, needs ${L}`);
  if (past) {
    for (let l = 0; l < L; l++) {
      if (past.k[l]?.length !== B * P * kvDim || past.v[l]?.length !== B * P * kvDim) {
        throw new Error(`refAppendKv: past layer ${l} has K ${past.k[l]?.length} / V ${past.v[l]?.length} values, needs B*P*kvDim = ${B}*${P}*${kvDim}`);
      }
    }
  }
  const cat = (a: ArrayLike<number> | undefined, b: ArrayLike<number>): Float64Array => {
    if (b.length !== B * S * kvDim) throw new Error(`refAppendKv: new K/V has ${b.length} values, needs ${B}*${S}*${kvDim}`);
    const out = new Float64Array(B * (P + S) * kvDim);
    for (let bb = 0; bb < B; bb++) {
      for (let p = 0; p < P; p++) for (let j = 0; j < kvDim; j++) out[(bb * (P + S) + p) * kvDim + j] = a![(bb * P + p) * kvDim + j];
      for (let s = 0; s < S; s++) for (let j = 0; j < kvDim; j++) out[(bb * (P + S) + P + s) * kvDim + j] = b[(bb * S + s) * kvDim + j];
    }
    return out;
  };
  const k: Float64Array[] = [];
  const v: Float64Array[] = [];
  for (let l = 0; l < L; l++) {
    k.push(cat(past?.k[l], newK[l]));
    v.push(cat(past?.v[l], newV[l]));
  }
  return { k, v, length: P + S };
}

export interface RefGenerateOptions {
  /** number of prompts; ids holds B prompts of equal length (default 1) */
  B?: number;
  past?: RefPast;
  /** position of the first prompt token (default past?.length ?? 0) */
  posOffset?: number;
  lora?: RefLora;
}

export interface RefGenerateResult {
  /** [B, maxNew] greedy tokens (argmax, lowest index on ties) */
  tokens: Uint32Array;
  /** [B, maxNew, V] the logits each token was chosen from */
  stepLogits: Float64Array;
  /** K/V of past + prompt + the first maxNew-1 generated tokens (everything fed through the model) */
  cache: RefKvCache;
}

/** Greedy decoding with a KV cache: one forward over the prompts, then one single-position forward per
 * new token attending over the cache. */
export function refGenerate(
  config: RefConfig, params: Map<string, Float64Array>, ids: ArrayLike<number>, maxNew: number, opts: RefGenerateOptions = {},
): RefGenerateResult {
  const { V, L } = refDims(config);
  const B = opts.B ?? 1;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`refGenerate: maxNew=${maxNew} must be a non-negative integer`);
  if (ids.length % B !== 0 || ids.length === 0) throw new Error(`refGenerate: ${ids.length} prompt ids do not split into B=${B} equal prompts`);
  const S0 = ids.length / B;
  let pos = opts.posOffset ?? (opts.past ? opts.past.length : 0);
  let cache: RefPast | undefined = opts.past;
  let built: RefKvCache | undefined;
  const tokens = new Uint32Array(B * maxNew);
  const stepLogits = new Float64Array(B * maxNew * V);
  let input: ArrayLike<number> = ids;
  let S = S0;
  for (let step = 0; step < maxNew; step++) {
    const f = refForward(config, params, { ids: input }, { B, S, past: cache, posOffset: pos, lora: opts.lora });
    cache = built = refAppendKv(config, cache, f.newK, f.newV, B, S);
    pos += S;
    const next = new Uint32Array(B);
    for (let b = 0; b < B; b++) {
      const row = (b * S + S - 1) * V;
      let best = 0;
      for (let j = 1; j < V; j++) if (f.logits[row + j] > f.logits[row + best]) best = j;
      next[b] = best;
      tokens[b * maxNew + step] = best;
      stepLogits.set(f.logits.subarray(row, row + V), (b * maxNew + step) * V);
    }
    input = next;
    S = 1;
  }
  // maxNew = 0 feeds nothing: the cache is the given past (copied) or empty
  built ??= refAppendKv(config, opts.past, Array.from({ length: L }, () => []), Array.from({ length: L }, () => []), B, 0);
  return { tokens, stepLogits, cache: built };
}
