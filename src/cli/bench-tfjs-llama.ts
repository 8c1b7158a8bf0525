// The same Llama model as src/model/model.ts written in tfjs ops, as the benchmark's reference for a
// training step (and for attention forward+backward). Same conventions (docs/engine.md): rows
// t = b*S + s, Linear weights (out, in), RMSNorm with the weight, RoPE rotate-half at positions
// posOffset + s, GQA causal attention over an optional prefix, SwiGLU, tied embeddings, mean
// cross-entropy over non-ignored targets; then global-norm clipping and AdamW (decoupled decay, not
// on norms), written by hand because tf.train.adam has no decoupled weight decay.
// tfjs-core without the full tfjs package registers no chained methods: every op is tf.op(x, ...).
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { modelDims, paramShapes, type ModelConfig } from '../model/config';
import { lrAt, type TrainHyper } from '../model/train';
import { ADAMW_DEFAULTS } from '../gpu/ops/optimizer';
import type { Tf } from './tfjs';

const IGNORE = 0xffffffff;

export interface TfAttentionDims {
  B: number;
  S: number;
  P: number;
  Hq: number;
  Hkv: number;
  hd: number;
}

/** Additive mask [rep*S, P+S]: 0 where query row s (of any of the rep heads sharing a kv head) may
 * see the column (every prefix column, own columns 0..s), -1e9 elsewhere. */
export function attentionMask(tf: Tf, d: TfAttentionDims): Tensor {
  const rep = d.Hq / d.Hkv;
  const W = d.P + d.S;
  const m = new Float32Array(rep * d.S * W);
  for (let r = 0; r < rep; r++) {
    for (let s = 0; s < d.S; s++) {
      for (let c = d.P + s + 1; c < W; c++) m[(r * d.S + s) * W + c] = -1e9;
    }
  }
  return tf.tensor2d(m, [rep * d.S, W]);
}

/**
 * Causal GQA attention in tfjs ops. q [B*S, Hq*hd], k and v [B*S, Hkv*hd] (k rotated), prefixK/V
 * [B, P, Hkv*hd] or null; returns o [B*S, Hq*hd]. The rep = Hq/Hkv query heads that share a kv head
 * are stacked into one [rep*S, hd] block per (b, kv head), so K and V are never repeated.
 */
export function tfAttention(
  tf: Tf, q: Tensor, k: Tensor, v: Tensor, prefixK: Tensor | null, prefixV: Tensor | null, mask: Tensor, d: TfAttentionDims,
): Tensor {
  const { B, S, P, Hq, Hkv, hd } = d;
  const rep = Hq / Hkv;
  // [B, S, H, hd] -> [B, H, S, hd]
  const heads = (x: Tensor, H: number, len: number) => tf.transpose(tf.reshape(x, [B, len, H, hd]), [0, 2, 1, 3]);
  const qg = tf.reshape(heads(q, Hq, S), [B, Hkv, rep * S, hd]);
  let kh = heads(k, Hkv, S);
  let vh = heads(v, Hkv, S);
  if (P > 0 && prefixK && prefixV) {
    kh = tf.concat([heads(prefixK, Hkv, P), kh], 2);
    vh = tf.concat([heads(prefixV, Hkv, P), vh], 2);
  }
  const scores = tf.add(tf.mul(tf.matMul(qg, kh, false, true), 1 / Math.sqrt(hd)), mask);
  const p = tf.softmax(scores);
  const o = tf.matMul(p, vh); // [B, Hkv, rep*S, hd]
  return tf.reshape(tf.transpose(tf.reshape(o, [B, Hq, S, hd]), [0, 2, 1, 3]), [B * S, Hq * hd]);
}

/** cos and sin tables [1, S, 1, hd/2] for positions posOffset + s. */
function ropeTables(tf: Tf, S: number, hd: number, theta: number, posOffset = 0): [Tensor, Tensor] {
  const half = hd / 2;
  const c = new Float32Array(S * half);
  const s = new Float32Array(S * half);
  for (let p = 0; p < S; p++) {
    for (let i = 0; i < half; i++) {
      const a = (posOffset + p) * theta ** (-(2 * i) / hd);
      c[p * half + i] = Math.cos(a);
      s[p * half + i] = Math.sin(a);
    }
  }
  return [tf.tensor4d(c, [1, S, 1, half]), tf.tensor4d(s, [1, S, 1, half])];
}

export interface TfStepResult {
  loss: number;
  gradNorm: number;
}

/** The Llama model with its AdamW state as tfjs variables, and one training step. */
export class TfLlama {
  private static instances = 0;
  readonly vars = new Map<string, Variable>();
  private readonly m = new Map<string, Variable>();
  private readonly v = new Map<string, Variable>();
  private readonly consts: Tensor[] = [];
  private readonly cos: Tensor;
  private readonly sin: Tensor;
  private readonly mask: Tensor;
  private readonly names: string[];
  step = 0;

  constructor(
    readonly tf: Tf,
    readonly config: ModelConfig,
    weights: Map<string, Float32Array>,
    readonly B: number,
    readonly S: number,
    readonly hyper: TrainHyper,
  ) {
    const id = TfLlama.instances++;
    for (const [name, shape] of paramShapes(config)) {
      const w = weights.get(name);
      if (!w) throw new Error(`tfjs llama: weight ${name} is missing`);
      this.vars.set(name, tf.variable(tf.tensor(w, shape), true, `tfllama${id}/${name}`));
      this.m.set(name, tf.variable(tf.zeros(shape), false, `tfllama${id}/m/${name}`));
      this.v.set(name, tf.variable(tf.zeros(shape), false, `tfllama${id}/v/${name}`));
    }
    this.names = [...this.vars.keys()];
    const { Hq, Hkv, hd } = modelDims(config);
    [this.cos, this.sin] = ropeTables(tf, S, hd, config.rope_theta);
    this.mask = attentionMask(tf, { B, S, P: 0, Hq, Hkv, hd });
    this.consts.push(this.cos, this.sin, this.mask);
  }

  private p(name: string): Tensor {
    return this.vars.get(name)!;
  }

  private rms(x: Tensor, w: Tensor): Tensor {
    const tf = this.tf;
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, this.config.rms_norm_eps))), w);
  }

  private rope(x: Tensor, H: number): Tensor {
    const tf = this.tf;
    const { B, S } = this;
    const hd = this.config.hidden_size / this.config.num_attention_heads;
    const half = hd / 2;
    const x4 = tf.reshape(x, [B, S, H, hd]);
    const x1 = tf.slice(x4, [0, 0, 0, 0], [B, S, H, half]);
    const x2 = tf.slice(x4, [0, 0, 0, half], [B, S, H, half]);
    const y1 = tf.sub(tf.mul(x1, this.cos), tf.mul(x2, this.sin));
    const y2 = tf.add(tf.mul(x2, this.cos), tf.mul(x1, this.sin));
    return tf.reshape(tf.concat([y1, y2], 3), [B * S, H * hd]);
  }

  /** Mean cross-entropy of next-token prediction (a scalar tensor). */
  loss(ids: Tensor, onehot: Tensor, weight: Tensor): Tensor {
    const tf = this.tf;
    const { L, Hq, Hkv, hd } = modelDims(this.config);
    const lin = (x: Tensor, name: string) => tf.matMul(x, this.p(name), false, true);
    const E = this.p('model.embed_tokens.weight');
    let x = tf.gather(E, ids);
    const dims = { B: this.B, S: this.S, P: 0, Hq, Hkv, hd };
    for (let l = 0; l < L; l++) {
      const pre = `model.layers.${l}`;
      const n1 = this.rms(x, this.p(`${pre}.input_layernorm.weight`));
      const q = this.rope(lin(n1, `${pre}.self_attn.q_proj.weight`), Hq);
      const k = this.rope(lin(n1, `${pre}.self_attn.k_proj.weight`), Hkv);
      const v = lin(n1, `${pre}.self_attn.v_proj.weight`);
      const att = tfAttention(tf, q, k, v, null, null, this.mask, dims);
      const x1 = tf.add(x, lin(att, `${pre}.self_attn.o_proj.weight`));
      const n2 = this.rms(x1, this.p(`${pre}.post_attention_layernorm.weight`));
      const g = lin(n2, `${pre}.mlp.gate_proj.weight`);
      const u = lin(n2, `${pre}.mlp.up_proj.weight`);
      const h = tf.mul(tf.mul(g, tf.sigmoid(g)), u);
      x = tf.add(x1, lin(h, `${pre}.mlp.down_proj.weight`));
    }
    const last = this.rms(x, this.p('model.norm.weight'));
    const head = this.config.tie_word_embeddings ? E : this.p('lm_head.weight');
    const logits = tf.matMul(last, head, false, true);
    const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), onehot), -1));
    return tf.sum(tf.mul(nll, weight));
  }

  /** One optimizer step on one micro-batch; reads back the loss and the gradient norm once. */
  async trainStep(ids: ArrayLike<number>, targets: ArrayLike<number>): Promise<TfStepResult> {
    const tf = this.tf;
    const T = this.B * this.S;
    const V = this.config.vocab_size;
    if (ids.length !== T || targets.length !== T) throw new Error(`tfjs llama: ${ids.length} ids / ${targets.length} targets for B*S = ${T}`);
    let count = 0;
    const tgt = new Int32Array(T);
    const w = new Float32Array(T);
    for (let i = 0; i < T; i++) {
      if (targets[i] !== IGNORE && targets[i] < V) {
        tgt[i] = targets[i];
        w[i] = 1;
        count++;
      }
    }
    // loss = sum over rows of weight * nll with weight = 1/count (0 on ignored rows)
    if (count > 0) for (let i = 0; i < T; i++) w[i] /= count;
    this.step++;
    const h = this.hyper;
    const lr = lrAt(this.step, h);
    const b1 = h.beta1 ?? ADAMW_DEFAULTS.beta1;
    const b2 = h.beta2 ?? ADAMW_DEFAULTS.beta2;
    const eps = h.eps ?? ADAMW_DEFAULTS.eps;
    const bc1 = 1 - b1 ** this.step;
    const bc2 = 1 - b2 ** this.step;
    const out = tf.tidy(() => {
      const idT = tf.tensor1d(Int32Array.from(ids), 'int32');
      const onehot = tf.oneHot(tf.tensor1d(tgt, 'int32'), V);
      const weight = tf.tensor1d(w);
      const varList = this.names.map((n) => this.vars.get(n)!);
      const { value, grads } = tf.variableGrads(() => this.loss(idT, onehot, weight) as never, varList);
      const gs = this.names.map((n) => grads[this.vars.get(n)!.name]);
      // summed pairwise: tf.addN over every gradient would bind more storage buffers than WebGPU's 8
      let sq = gs.map((g) => tf.sum(tf.square(g)));
      while (sq.length > 1) sq = Array.from({ length: Math.ceil(sq.length / 2) }, (_, i) => (sq[2 * i + 1] ? tf.add(sq[2 * i], sq[2 * i + 1]) : sq[2 * i]));
      const norm = tf.sqrt(sq[0]);
      const scale = h.clip > 0 ? tf.minimum(1, tf.div(h.clip, tf.add(norm, 1e-6))) : tf.scalar(1);
      this.names.forEach((n, i) => {
        const p = this.vars.get(n)!;
        const m = this.m.get(n)!;
        const v = this.v.get(n)!;
        const g = tf.mul(gs[i], scale);
        m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
        v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
        const decay = n.endsWith('norm.weight') ? 0 : h.weightDecay;
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps);
        p.assign(tf.sub(tf.mul(p, 1 - lr * decay), tf.mul(tf.div(m, denom), lr / bc1)));
      });
      return tf.stack([value, norm]);
    });
    const r = await out.data();
    out.dispose();
    return { loss: r[0], gradNorm: r[1] };
  }

  dispose(): void {
    for (const t of [...this.vars.values(), ...this.m.values(), ...this.v.values(), ...this.consts]) t.dispose();
  }
}
