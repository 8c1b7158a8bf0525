// The Llama-style transformer on WebGPU, llm.c style: explicit forward and backward per op, no
// autograd. Parameters live in LlamaGpu; LoRA adapters in LoraGpu; a ModelPass holds the activations
// and the prepared dispatches of one shape (B sequences of S tokens over a prefix of P cached
// positions), made once and replayed every step: no per-step pipeline or buffer creation.
//
// Inputs are token ids or input embeddings (LatentMAS feeds hidden states back as embeddings);
// a pass may attend over a foreign KV prefix (another agent's cache) and exposes its own per-layer
// K/V (the cache it adds) and last hidden state. The backward gives gradients for every parameter,
// LoRA A and B, the input embeddings and the prefix K/V, and takes upstream gradients on the
// exposed K/V and last hidden state (a receiver that read this cache, a latent step that consumed
// this hidden state). Layouts and conventions: docs/engine.md. The Qwen variants add, per config:
// biases on some projections (added after the matmul and its LoRA branch; their gradient is the
// column sum of dY) and Qwen3's per-head RMSNorm of q and k before RoPE (the rmsnorm kernels over
// [T*H, hd] rows, weight [hd]); head_dim may differ from hidden_size / heads.
import type { Dispatch, Gpu, Tensor } from '../gpu/runtime';
import { Rng } from '../tasks/rng';
import { prepareMatmul } from '../gpu/ops/matmul';
import { prepareRmsnorm, prepareRmsnormBackward } from '../gpu/ops/rmsnorm';
import { prepareRopeBackward, prepareRopeForward, ropeParams, type RopeDims } from '../gpu/ops/rope';
import { prepareAttentionBackward, prepareAttentionForward } from '../gpu/ops/attention';
import { prepareSwiglu, prepareSwigluBackward } from '../gpu/ops/swiglu';
import { prepareEmbedding, prepareEmbeddingBackward } from '../gpu/ops/embedding';
import { countTargets, prepareCrossEntropy, setCrossEntropyCount } from '../gpu/ops/crossentropy';
import { prepareAdd, prepareAxpy, prepareFill } from '../gpu/ops/elementwise';
import { prepareBias, prepareBiasBackward } from '../gpu/ops/bias';
import { modelDims, paramShapes, PROJS, projName, projShape, type ModelConfig, type ModelDims, type Proj } from './config';

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Seeded uniform [0, 1) stream for weight init. */
export function uniformStream(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** Seeded standard-normal stream (Box-Muller over uniformStream). */
export function normalStream(seed: number): () => number {
  const uni = uniformStream(seed);
  return () => Math.sqrt(-2 * Math.log(Math.max(uni(), 1e-300))) * Math.cos(2 * Math.PI * uni());
}

/** Hugging Face init: linears and embeddings ~ N(0, 0.02^2), norms = 1, biases = 0. */
export function initWeights(config: ModelConfig, seed: number, std = 0.02): Map<string, Float32Array> {
  const rnd = normalStream(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of paramShapes(config)) {
    const a = new Float32Array(size(shape));
    if (name.endsWith('norm.weight')) a.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < a.length; i++) a[i] = std * rnd();
    out.set(name, a);
  }
  return out;
}

/** The base model's parameters (and, when training the base, their gradients). */
export class LlamaGpu {
  readonly dims: ModelDims;
  readonly params = new Map<string, Tensor>();
  grads: Map<string, Tensor> | null = null;

  constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    weights?: Map<string, ArrayLike<number>>,
  ) {
    this.dims = modelDims(config);
    for (const [name, shape] of paramShapes(config)) this.params.set(name, gpu.tensor(shape, name));
    this.load(weights ?? initWeights(config, 0));
  }

  /** Writes weights; every tensor must be present with the right size. */
  load(weights: Map<string, ArrayLike<number>>): void {
    for (const [name, t] of this.params) {
      const w = weights.get(name);
      if (!w) throw new Error(`weights: tensor ${name} is missing`);
      if (w.length !== t.size) throw new Error(`weights: ${name} has ${w.length} values, expected ${t.size} [${t.shape.join(', ')}]`);
      this.gpu.write(t, w);
    }
  }

  async export(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, t] of this.params) out.set(name, await this.gpu.read(t));
    return out;
  }

  /** Allocates zeroed gradient tensors for every parameter (base training). */
  enableGrads(): Map<string, Tensor> {
    if (!this.grads) {
      this.grads = new Map();
      for (const [name, t] of this.params) this.grads.set(name, this.gpu.tensor(t.shape, `grad ${name}`));
    }
    return this.grads;
  }

  get lmHeadName(): string {
    return this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`model has no parameter ${name}`);
    return t;
  }

  destroy(): void {
    for (const t of this.params.values()) this.gpu.destroy(t);
    for (const t of this.grads?.values() ?? []) this.gpu.destroy(t);
    this.params.clear();
    this.grads = null;
  }
}

export interface LoraConfig {
  r: number;
  alpha: number;
  /** Projections that get an adapter (default q,k,v,o). */
  targets: Proj[];
  /** Layers that get adapters (null: all). */
  layers: number[] | null;
}

export interface LoraModule {
  name: string;
  layer: number;
  proj: Proj;
  inF: number;
  outF: number;
  A: Tensor;
  B: Tensor;
  dA: Tensor;
  dB: Tensor;
}

/** A LoRA adapter set: y = x W^T + (alpha/r) (x A^T) B^T on each target module; W frozen. */
export class LoraGpu {
  readonly modules = new Map<string, LoraModule>();
  readonly scale: number;

  constructor(
    readonly gpu: Gpu,
    readonly modelConfig: ModelConfig,
    readonly config: LoraConfig,
    seed = 0,
    label = 'lora',
  ) {
    const { L } = modelDims(modelConfig);
    if (!Number.isInteger(config.r) || config.r < 1 || config.r > 256) throw new Error(`LoRA rank r must be an integer in 1..256, got ${config.r}`);
    if (!(config.alpha > 0)) throw new Error(`LoRA alpha must be positive, got ${config.alpha}`);
    for (const p of config.targets) if (!PROJS.includes(p)) throw new Error(`LoRA target ${p} is not one of ${PROJS.join(', ')}`);
    const layers = config.layers ?? Array.from({ length: L }, (_, i) => i);
    for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new Error(`LoRA layer ${l} is outside 0..${L - 1}`);
    this.scale = config.alpha / config.r;
    const uni = uniformStream(seed);
    for (const l of layers) {
      for (const proj of config.targets) {
        const [outF, inF] = projShape(modelConfig, proj);
        const name = projName(l, proj);
        const r = config.r;
        // PEFT's init: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0, so the
        // adapter starts as the identity change.
        const bound = 1 / Math.sqrt(inF);
        const a = Float32Array.from({ length: r * inF }, () => bound * (2 * uni() - 1));
        this.modules.set(name, {
          name, layer: l, proj, inF, outF,
          A: gpu.tensor([r, inF], `${label} ${name}.lora_A`, a),
          B: gpu.tensor([outF, r], `${label} ${name}.lora_B`),
          dA: gpu.tensor([r, inF], `${label} grad ${name}.lora_A`),
          dB: gpu.tensor([outF, r], `${label} grad ${name}.lora_B`),
        });
      }
    }
  }

  /** Loads A (r, in) and B (out, r) per module name ('model.layers.0.self_attn.q_proj'). */
  load(weights: Map<string, { A: ArrayLike<number>; B: ArrayLike<number> }>): void {
    for (const [name, m] of this.modules) {
      const w = weights.get(name);
      if (!w) throw new Error(`adapter: module ${name} is missing`);
      if (w.A.length !== m.A.size || w.B.length !== m.B.size) {
        throw new Error(`adapter: ${name} has A ${w.A.length} / B ${w.B.length} values, expected ${m.A.size} / ${m.B.size}`);
      }
      this.gpu.write(m.A, w.A);
      this.gpu.write(m.B, w.B);
    }
  }

  async export(): Promise<Map<string, { A: Float32Array; B: Float32Array }>> {
    const out = new Map<string, { A: Float32Array; B: Float32Array }>();
    for (const [name, m] of this.modules) out.set(name, { A: await this.gpu.read(m.A), B: await this.gpu.read(m.B) });
    return out;
  }

  get parameterCount(): number {
    let n = 0;
    for (const m of this.modules.values()) n += m.A.size + m.B.size;
    return n;
  }

  destroy(): void {
    for (const m of this.modules.values()) [m.A, m.B, m.dA, m.dB].forEach((t) => this.gpu.destroy(t));
    this.modules.clear();
  }
}

export interface PassShape {
  /** Sequences. */
  B: number;
  /** Tokens per sequence. */
  S: number;
  /** Cached prefix positions each sequence attends over first (0: none). */
  P: number;
  /** Token ids (looked up in the embedding) or input embeddings. */
  input: 'ids' | 'embeds';
}

export interface PassOptions {
  lora?: LoraGpu;
  /** Prepare the backward pass. */
  backward?: boolean;
  /** Accumulate base-parameter gradients (model.enableGrads() first). */
  baseGrads?: boolean;
  /** Per-layer prefix K/V [B, P, kvDim] (required when P > 0); external tensors the pass reads. */
  prefix?: { k: Tensor[]; v: Tensor[] };
  /** Per-layer gradients of the prefix [B, P, kvDim], accumulated (+=) by the backward. */
  prefixGrad?: { k: Tensor[]; v: Tensor[] };
  /** Allocate upstream-gradient inputs on the new K/V (dNewK/dNewV) and on lastHidden. */
  upstream?: boolean;
  /** Input 'ids': expose the gradient of the looked-up embeddings as dEmbeds (a receiver of a trained text message). */
  inputGrad?: boolean;
  /** The embeddings tensor to read instead of allocating one (input 'embeds'). */
  embeds?: Tensor;
  /** Position of the first token of every sequence (default P). Changeable with setPosOffset. */
  posOffset?: number;
  /**
   * Compute the lm_head, the logits and the cross-entropy (default true). A pass whose logits nobody
   * reads (a sender in a latent rollout: receivers read its K/V, latent steps its last hidden state)
   * skips them: with a 49k vocabulary they are a fifth of the model's FLOPs and its largest buffers.
   * Its `logits` is then a 1-value placeholder and its loss is 0.
   */
  lmHead?: boolean;
  label?: string;
}

interface LinearSaved {
  x: Tensor;
  W: Tensor;
  dW: Tensor | null;
  /** The bias gradient (base training of a projection with a bias). */
  dBias: Tensor | null;
  lora: LoraModule | null;
  u: Tensor | null;
  inF: number;
  outF: number;
}

/** One forward (and optionally backward) of one shape: activations and dispatches made once. */
export class ModelPass {
  readonly T: number;
  readonly dims: ModelDims;
  readonly ids: Tensor | null;
  readonly embeds: Tensor | null;
  readonly targets: Tensor;
  readonly logits: Tensor;
  readonly lastHidden: Tensor;
  readonly loss: Tensor;
  /** Per layer [B*S, kvDim]: this pass's rotated keys and values (the cache it adds). */
  readonly newK: Tensor[] = [];
  readonly newV: Tensor[] = [];
  /** Per layer log-sum-exp of the attention rows [B, Hq, S] (for inspection). */
  readonly lse: Tensor[] = [];
  /** Per layer rotated queries [B*S, qDim] (for inspection: attention maps are recomputed from them). */
  readonly queries: Tensor[] = [];
  /** Upstream gradient inputs (options.upstream): written by the caller before recordBackward. */
  readonly dNewK: Tensor[] = [];
  readonly dNewV: Tensor[] = [];
  readonly dLastHidden: Tensor | null = null;
  /** After the backward: gradient of the input embeddings [B*S, D] (input 'embeds', or 'ids' with inputGrad). */
  readonly dEmbeds: Tensor | null = null;
  readonly forwardDispatches: Dispatch[] = [];
  readonly backwardDispatches: Dispatch[] = [];
  private readonly ropeDispatches: { d: Dispatch; dims: RopeDims; backward: boolean }[] = [];
  private readonly ceDispatches: Dispatch[];
  /** The lm_head's dispatches (logits matmul and cross-entropy; backward: dX and dW of the lm_head), for profiles. */
  readonly lmHeadForward: Dispatch[] = [];
  readonly lmHeadBackward: Dispatch[] = [];
  private readonly owned: Tensor[] = [];
  posOffset: number;

  constructor(
    readonly model: LlamaGpu,
    readonly shape: PassShape,
    readonly options: PassOptions = {},
  ) {
    const gpu = model.gpu;
    const { B, S, P } = shape;
    for (const [k, v] of Object.entries({ B, S, P })) {
      if (!Number.isInteger(v) || v < 0 || (k !== 'P' && v < 1)) throw new Error(`model pass: ${k} must be a positive integer, got ${v}`);
    }
    const dims = (this.dims = model.dims);
    const { D, I, L, Hq, Hkv, hd, V, qDim, kvDim } = dims;
    const T = (this.T = B * S);
    const label = options.label ?? 'pass';
    const lora = options.lora;
    const backward = options.backward ?? false;
    const baseGrads = backward && (options.baseGrads ?? false);
    if (baseGrads && !model.grads) throw new Error('model pass: baseGrads needs model.enableGrads() first');
    if (P > 0) {
      if (!options.prefix || options.prefix.k.length !== L || options.prefix.v.length !== L) {
        throw new Error(`model pass: P=${P} needs prefix K and V tensors for each of the ${L} layers`);
      }
      for (const t of [...options.prefix.k, ...options.prefix.v]) {
        if (t.size < B * P * kvDim) throw new Error(`model pass: prefix ${t.label} has ${t.size} values, needs B*P*kvDim = ${B * P * kvDim}`);
      }
    }
    this.posOffset = options.posOffset ?? P;
    const tensor = (shp: number[], name: string, dtype: 'f32' | 'u32' = 'f32') => {
      const t = gpu.tensor(shp, `${label} ${name}`, undefined, dtype);
      this.owned.push(t);
      return t;
    };
    const grad = (name: string) => (baseGrads ? model.grads!.get(name)! : null);
    const fwd = this.forwardDispatches;
    const bwd: Dispatch[] = this.backwardDispatches;

    // ---- inputs
    this.ids = shape.input === 'ids' ? tensor([T], 'ids', 'u32') : null;
    this.embeds = shape.input === 'embeds' ? options.embeds ?? tensor([T, D], 'embeds') : null;
    if (this.embeds && this.embeds.size < T * D) throw new Error(`model pass: embeds ${this.embeds.label} has ${this.embeds.size} values, needs ${T * D}`);
    this.targets = tensor([T], 'targets', 'u32');
    const dummy = tensor([1], 'none');

    // ---- activations saved for backward
    const xs: Tensor[] = [];
    xs.push(this.ids ? tensor([T, D], 'x0') : this.embeds!);
    if (this.ids) fwd.push(prepareEmbedding(gpu, this.ids, model.param('model.embed_tokens.weight'), xs[0], T, D, V));
    const scratchD = tensor([T, D], 'branch out');
    const eps = model.config.rms_norm_eps;
    const theta = model.config.rope_theta;
    const ropeScaling = model.config.rope_parameters ?? null;
    const layers: {
      n1: Tensor; rrms1: Tensor; q: Tensor; k: Tensor; v: Tensor; qr: Tensor; kr: Tensor; att: Tensor; lse: Tensor;
      x1: Tensor; n2: Tensor; rrms2: Tensor; g: Tensor; u: Tensor; h: Tensor; lin: Map<Proj, LinearSaved>;
      /** Qwen3: q and k after their per-head norm (RoPE's inputs) and the norms' saved rrms [T*H] */
      qn: Tensor | null; kn: Tensor | null; rrmsQ: Tensor | null; rrmsK: Tensor | null;
    }[] = [];
    const biased = new Set<Proj>(dims.biases);

    const linearForward = (l: number, proj: Proj, x: Tensor, y: Tensor, saved: Map<Proj, LinearSaved>) => {
      const [outF, inF] = projShape(model.config, proj);
      const name = projName(l, proj);
      const W = model.param(`${name}.weight`);
      fwd.push(prepareMatmul(gpu, x, W, y, T, outF, inF, { layout: 'nt' }));
      const mod = lora?.modules.get(name) ?? null;
      let u: Tensor | null = null;
      if (mod) {
        u = tensor([T, lora!.config.r], `${name} lora u`);
        fwd.push(prepareMatmul(gpu, x, mod.A, u, T, lora!.config.r, inF, { layout: 'nt' }));
        fwd.push(prepareMatmul(gpu, u, mod.B, y, T, outF, lora!.config.r, { layout: 'nt', alpha: lora!.scale, accumulate: true }));
      }
      if (biased.has(proj)) fwd.push(prepareBias(gpu, model.param(`${name}.bias`), y, T, outF));
      saved.set(proj, { x, W, dW: grad(`${name}.weight`), dBias: biased.has(proj) ? grad(`${name}.bias`) : null, lora: mod, u, inF, outF });
    };

    for (let l = 0; l < L; l++) {
      const x = xs[l];
      const lin = new Map<Proj, LinearSaved>();
      const s = {
        n1: tensor([T, D], `l${l} n1`), rrms1: tensor([T], `l${l} rrms1`),
        q: tensor([T, qDim], `l${l} q`), k: tensor([T, kvDim], `l${l} k`), v: tensor([T, kvDim], `l${l} v`),
        qr: tensor([T, qDim], `l${l} q rotated`), kr: tensor([T, kvDim], `l${l} k rotated`),
        att: tensor([T, qDim], `l${l} attention out`), lse: tensor([B, Hq, S], `l${l} lse`),
        x1: tensor([T, D], `l${l} x1`), n2: tensor([T, D], `l${l} n2`), rrms2: tensor([T], `l${l} rrms2`),
        g: tensor([T, I], `l${l} gate`), u: tensor([T, I], `l${l} up`), h: tensor([T, I], `l${l} h`), lin,
        qn: dims.qkNorm ? tensor([T, qDim], `l${l} q normed`) : null, kn: dims.qkNorm ? tensor([T, kvDim], `l${l} k normed`) : null,
        rrmsQ: dims.qkNorm ? tensor([T * Hq], `l${l} rrms q`) : null, rrmsK: dims.qkNorm ? tensor([T * Hkv], `l${l} rrms k`) : null,
      };
      layers.push(s);
      fwd.push(prepareRmsnorm(gpu, x, model.param(`model.layers.${l}.input_layernorm.weight`), s.n1, s.rrms1, T, D, { eps }));
      linearForward(l, 'q_proj', s.n1, s.q, lin);
      linearForward(l, 'k_proj', s.n1, s.k, lin);
      linearForward(l, 'v_proj', s.n1, s.v, lin);
      if (dims.qkNorm) {
        // Qwen3: RMSNorm over each head (rows of hd) before RoPE
        fwd.push(prepareRmsnorm(gpu, s.q, model.param(`model.layers.${l}.self_attn.q_norm.weight`), s.qn!, s.rrmsQ!, T * Hq, hd, { eps }));
        fwd.push(prepareRmsnorm(gpu, s.k, model.param(`model.layers.${l}.self_attn.k_norm.weight`), s.kn!, s.rrmsK!, T * Hkv, hd, { eps }));
      }
      const qd: RopeDims = { T, H: Hq, hd, S, posOffset: this.posOffset, theta, scaling: ropeScaling };
      const kd: RopeDims = { T, H: Hkv, hd, S, posOffset: this.posOffset, theta, scaling: ropeScaling };
      for (const [src, dst, rd] of [[s.qn ?? s.q, s.qr, qd], [s.kn ?? s.k, s.kr, kd]] as const) {
        for (const d of prepareRopeForward(gpu, src, dst, rd)) {
          fwd.push(d);
          this.ropeDispatches.push({ d, dims: rd, backward: false });
        }
      }
      const pk = P > 0 ? options.prefix!.k[l] : dummy;
      const pv = P > 0 ? options.prefix!.v[l] : dummy;
      fwd.push(...prepareAttentionForward(gpu, { q: s.qr, k: s.kr, v: s.v, prefixK: pk, prefixV: pv, o: s.att, lse: s.lse }, { B, S, P, Hq, Hkv, hd }));
      linearForward(l, 'o_proj', s.att, scratchD, lin);
      fwd.push(prepareAdd(gpu, x, scratchD, s.x1, T * D));
      fwd.push(prepareRmsnorm(gpu, s.x1, model.param(`model.layers.${l}.post_attention_layernorm.weight`), s.n2, s.rrms2, T, D, { eps }));
      linearForward(l, 'gate_proj', s.n2, s.g, lin);
      linearForward(l, 'up_proj', s.n2, s.u, lin);
      fwd.push(prepareSwiglu(gpu, s.g, s.u, s.h, T, I));
      linearForward(l, 'down_proj', s.h, scratchD, lin);
      const xNext = tensor([T, D], `x${l + 1}`);
      fwd.push(prepareAdd(gpu, s.x1, scratchD, xNext, T * D));
      xs.push(xNext);
      this.newK.push(s.kr);
      this.newV.push(s.v);
      this.lse.push(s.lse);
      this.queries.push(s.qr);
    }
    const rrmsF = tensor([T], 'rrms final');
    this.lastHidden = tensor([T, D], 'last hidden');
    fwd.push(prepareRmsnorm(gpu, xs[L], model.param('model.norm.weight'), this.lastHidden, rrmsF, T, D, { eps }));
    const lmHead = model.param(model.lmHeadName);
    const withHead = options.lmHead ?? true;
    this.logits = withHead ? tensor([T, V], 'logits') : dummy;
    this.loss = tensor([1], 'loss');
    const dlogits = withHead ? tensor([T, V], 'dlogits') : dummy;
    if (withHead) {
      const d = prepareMatmul(gpu, this.lastHidden, lmHead, this.logits, T, V, D, { layout: 'nt' });
      fwd.push(d);
      this.lmHeadForward.push(d);
      const losses = tensor([T], 'row losses');
      this.ceDispatches = prepareCrossEntropy(gpu, this.logits, this.targets, losses, this.loss, dlogits, T, V, 0);
      this.lmHeadForward.push(...this.ceDispatches);
    } else this.ceDispatches = [];
    // No targets until set: every row ignored, so the loss and its logits gradient are zero (a sender
    // agent's pass has no loss of its own, only upstream gradients from its receivers).
    gpu.write(this.targets, new Uint32Array(T).fill(0xffffffff));

    if (!backward) return;

    // ---- backward
    if (options.upstream) {
      for (let l = 0; l < L; l++) {
        this.dNewK.push(tensor([T, kvDim], `l${l} dNewK`));
        this.dNewV.push(tensor([T, kvDim], `l${l} dNewV`));
      }
      this.dLastHidden = tensor([T, D], 'dLastHidden');
    }
    const dres = tensor([T, D], 'd residual');
    const dn = tensor([T, D], 'd norm out');
    const dnf = tensor([T, D], 'd last hidden');
    const dh = tensor([T, I], 'dh');
    const dg = tensor([T, I], 'dg');
    const du = tensor([T, I], 'du');
    const datt = tensor([T, qDim], 'd attention out');
    const dq = tensor([T, qDim], 'dq');
    const dqp = tensor([T, qDim], 'dq pre-rope');
    const dk = tensor([T, kvDim], 'dk');
    const dkp = tensor([T, kvDim], 'dk pre-rope');
    const dv = tensor([T, kvDim], 'dv');
    const delta = tensor([B, Hq, S], 'attention delta');
    const loraDu = lora ? tensor([T, lora.config.r], 'lora du') : null;
    // Qwen3: the gradients before the q/k norms (RoPE's backward writes dqp/dkp: those after them)
    const dqn = dims.qkNorm ? tensor([T, qDim], 'dq pre-norm') : null;
    const dkn = dims.qkNorm ? tensor([T, kvDim], 'dk pre-norm') : null;

    const linearBackward = (dy: Tensor, dx: Tensor, accumulateDx: boolean, s: LinearSaved) => {
      const { x, W, dW, dBias, lora: mod, u, inF, outF } = s;
      bwd.push(prepareMatmul(gpu, dy, W, dx, T, inF, outF, { layout: 'nn', accumulate: accumulateDx }));
      if (dW) bwd.push(prepareMatmul(gpu, dy, x, dW, outF, inF, T, { layout: 'tn', accumulate: true }));
      if (dBias) bwd.push(prepareBiasBackward(gpu, dy, dBias, T, outF));
      if (mod && u && loraDu && lora) {
        const r = lora.config.r;
        bwd.push(prepareMatmul(gpu, dy, u, mod.dB, outF, r, T, { layout: 'tn', alpha: lora.scale, accumulate: true }));
        bwd.push(prepareMatmul(gpu, dy, mod.B, loraDu, T, r, outF, { layout: 'nn', alpha: lora.scale }));
        bwd.push(prepareMatmul(gpu, loraDu, x, mod.dA, r, inF, T, { layout: 'tn', accumulate: true }));
        bwd.push(prepareMatmul(gpu, loraDu, mod.A, dx, T, inF, r, { layout: 'nn', accumulate: true }));
      }
    };

    // lm_head and the final norm
    if (withHead) {
      this.lmHeadBackward.push(prepareMatmul(gpu, dlogits, lmHead, dnf, T, D, V, { layout: 'nn' }));
      const dLm = grad(model.lmHeadName);
      if (dLm) this.lmHeadBackward.push(prepareMatmul(gpu, dlogits, this.lastHidden, dLm, V, D, T, { layout: 'tn', accumulate: true }));
      bwd.push(...this.lmHeadBackward);
    } else bwd.push(prepareFill(gpu, dnf, T * D, 0));
    if (this.dLastHidden) bwd.push(prepareAxpy(gpu, this.dLastHidden, dnf, T * D, 1));
    const normGrad = grad('model.norm.weight') ?? tensor([D], 'unused d norm');
    bwd.push(...prepareRmsnormBackward(gpu, dnf, xs[L], model.param('model.norm.weight'), rrmsF, dres, normGrad, T, D));

    for (let l = L - 1; l >= 0; l--) {
      const s = layers[l];
      const lin = s.lin;
      // MLP: x_{l+1} = x1 + down(silu(gate(n2)) * up(n2))
      linearBackward(dres, dh, false, lin.get('down_proj')!);
      bwd.push(prepareSwigluBackward(gpu, dh, s.g, s.u, dg, du, T, I));
      linearBackward(dg, dn, false, lin.get('gate_proj')!);
      linearBackward(du, dn, true, lin.get('up_proj')!);
      const postName = `model.layers.${l}.post_attention_layernorm.weight`;
      bwd.push(...prepareRmsnormBackward(gpu, dn, s.x1, model.param(postName), s.rrms2, dres, grad(postName) ?? tensor([D], `unused d ${postName}`), T, D, { accumulate: true }));
      // attention: x1 = x + o(attention(rope(q(n1)), rope(k(n1)), v(n1); prefix))
      linearBackward(dres, datt, false, lin.get('o_proj')!);
      const pk = P > 0 ? options.prefix!.k[l] : dummy;
      const pv = P > 0 ? options.prefix!.v[l] : dummy;
      const dpk = P > 0 && options.prefixGrad ? options.prefixGrad.k[l] : null;
      const dpv = P > 0 && options.prefixGrad ? options.prefixGrad.v[l] : null;
      const scratchPk = P > 0 && !dpk ? tensor([B, P, kvDim], `l${l} unused dprefixK`) : dummy;
      const scratchPv = P > 0 && !dpv ? tensor([B, P, kvDim], `l${l} unused dprefixV`) : dummy;
      bwd.push(
        ...prepareAttentionBackward(
          gpu,
          {
            q: s.qr, k: s.kr, v: s.v, prefixK: pk, prefixV: pv, o: s.att, lse: s.lse, dO: datt, delta,
            dq, dk, dv, dprefixK: dpk ?? scratchPk, dprefixV: dpv ?? scratchPv,
          },
          { B, S, P, Hq, Hkv, hd },
          { accumulatePrefix: dpk !== null },
        ),
      );
      if (options.upstream) {
        bwd.push(prepareAxpy(gpu, this.dNewK[l], dk, T * kvDim, 1));
        bwd.push(prepareAxpy(gpu, this.dNewV[l], dv, T * kvDim, 1));
      }
      const qd: RopeDims = { T, H: Hq, hd, S, posOffset: this.posOffset, theta, scaling: ropeScaling };
      const kd: RopeDims = { T, H: Hkv, hd, S, posOffset: this.posOffset, theta, scaling: ropeScaling };
      for (const [src, dst, rd] of [[dq, dqp, qd], [dk, dkp, kd]] as const) {
        for (const d of prepareRopeBackward(gpu, src, dst, rd)) {
          bwd.push(d);
          this.ropeDispatches.push({ d, dims: rd, backward: true });
        }
      }
      if (dims.qkNorm) {
        const qName = `model.layers.${l}.self_attn.q_norm.weight`;
        const kName = `model.layers.${l}.self_attn.k_norm.weight`;
        bwd.push(...prepareRmsnormBackward(gpu, dqp, s.q, model.param(qName), s.rrmsQ!, dqn!, grad(qName) ?? tensor([hd], `unused d ${qName}`), T * Hq, hd));
        bwd.push(...prepareRmsnormBackward(gpu, dkp, s.k, model.param(kName), s.rrmsK!, dkn!, grad(kName) ?? tensor([hd], `unused d ${kName}`), T * Hkv, hd));
      }
      linearBackward(dqn ?? dqp, dn, false, lin.get('q_proj')!);
      linearBackward(dkn ?? dkp, dn, true, lin.get('k_proj')!);
      linearBackward(dv, dn, true, lin.get('v_proj')!);
      const inName = `model.layers.${l}.input_layernorm.weight`;
      bwd.push(...prepareRmsnormBackward(gpu, dn, xs[l], model.param(inName), s.rrms1, dres, grad(inName) ?? tensor([D], `unused d ${inName}`), T, D, { accumulate: true }));
    }
    // dres now holds the gradient of the layer-0 input.
    if (this.ids) {
      const dEmb = grad('model.embed_tokens.weight');
      if (dEmb) bwd.push(prepareEmbeddingBackward(gpu, this.ids, dres, dEmb, T, D, V));
      if (options.inputGrad) this.dEmbeds = dres;
    } else {
      this.dEmbeds = dres;
    }
    // Clear the upstream inputs after use, so a caller that writes none gets zeros next time.
    if (options.upstream) {
      for (const t of [...this.dNewK, ...this.dNewV, this.dLastHidden!]) bwd.push(prepareFill(gpu, t, t.size, 0));
    }
  }

  /** Writes token ids [B*S] (input 'ids'). */
  setIds(ids: ArrayLike<number>): void {
    if (!this.ids) throw new Error('this pass takes input embeddings, not ids');
    if (ids.length !== this.T) throw new Error(`model pass: ${ids.length} ids for B*S = ${this.T} rows`);
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < this.dims.V)) throw new Error(`token id ${ids[i]} at row ${i} is outside the vocabulary 0..${this.dims.V - 1}`);
    }
    this.model.gpu.write(this.ids, ids);
  }

  /** Writes next-token targets [B*S] (0xFFFFFFFF = ignore) and updates the loss normaliser. */
  setTargets(targets: ArrayLike<number>): void {
    if (targets.length !== this.T) throw new Error(`model pass: ${targets.length} targets for B*S = ${this.T} rows`);
    const count = countTargets(targets, this.dims.V);
    this.model.gpu.write(this.targets, targets);
    setCrossEntropyCount(this.ceDispatches, count);
  }

  /** Changes the position of the first token (RoPE) without rebuilding anything. */
  setPosOffset(posOffset: number): void {
    if (posOffset === this.posOffset) return;
    this.posOffset = posOffset;
    for (const r of this.ropeDispatches) {
      r.dims.posOffset = posOffset;
      r.d.setParams(ropeParams(r.dims, r.backward));
    }
  }

  /** Records the forward, the loss and its logits gradient (zero when no targets are set). */
  recordForward(): void {
    this.model.gpu.record(...this.forwardDispatches, ...this.ceDispatches);
  }

  /** Records the backward; gradients accumulate into the model's / adapter's gradient tensors. */
  recordBackward(): void {
    if (!this.options.backward) throw new Error('this pass was made without backward: true');
    this.model.gpu.record(...this.backwardDispatches);
  }

  destroy(): void {
    for (const t of this.owned) this.model.gpu.destroy(t);
    for (const d of [...this.forwardDispatches, ...this.backwardDispatches, ...this.ceDispatches]) d.destroy();
  }
}
