// Model configuration: the fields of Hugging Face's LlamaConfig (and of its Qwen2 and Qwen3 variants)
// the engine reads, derived sizes, parameter names and shapes (LlamaForCausalLM's, Qwen2ForCausalLM's,
// Qwen3ForCausalLM's), and the toy presets the playground ships. src/storage reads and writes these
// configs as config.json; this module owns their shape.

/** The architectures the engine runs: Llama, and its Qwen2 (q/k/v biases) and Qwen3 (per-head q/k norm) variants. */
export const MODEL_TYPES = ['llama', 'qwen2', 'qwen3'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];
export const ARCHITECTURES: Record<ModelType, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

/**
 * transformers 5's rope_parameters when they are not plain RoPE: Llama 3.x's frequency scaling
 * (rope_type "llama3"; src/reference/rope.ts ropeInvFreq has the formula). rope_theta repeats the
 * config's, as transformers 5 writes it.
 */
export interface Llama3RopeParameters {
  rope_type: 'llama3';
  rope_theta: number;
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/**
 * The fields of a transformers config.json (LlamaConfig, Qwen2Config, Qwen3Config) this project uses,
 * in Hugging Face's snake_case names, normalized (defaults filled in) by src/storage/checkpoint.ts.
 */
export interface LlamaConfig {
  architectures: [string];
  model_type: ModelType;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  vocab_size: number;
  rope_theta: number;
  /** Llama 3.x's RoPE scaling; absent for plain RoPE (rope_type "default"). */
  rope_parameters?: Llama3RopeParameters;
  rms_norm_eps: number;
  tie_word_embeddings: boolean;
  max_position_embeddings: number;
  /** Width of one attention head; Qwen3 sets it apart from hidden_size / num_attention_heads. */
  head_dim: number;
  /** Llama and Qwen3: biases on q, k, v and o_proj (Qwen2 always has q/k/v biases and no o bias). */
  attention_bias?: boolean;
  /** Llama: biases on gate, up and down_proj. */
  mlp_bias?: boolean;
  torch_dtype: string;
  bos_token_id: number | null;
  /** Llama 3 lists several end tokens. */
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
}

/** The part of a Hugging Face config the engine needs (a full LlamaConfig is one). */
export type ModelConfig = Pick<
  LlamaConfig,
  | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads' | 'num_key_value_heads'
  | 'vocab_size' | 'rope_theta' | 'rms_norm_eps' | 'tie_word_embeddings'
> & Partial<Pick<LlamaConfig, 'max_position_embeddings' | 'head_dim' | 'model_type' | 'attention_bias' | 'mlp_bias' | 'rope_parameters'>>;

export interface ModelDims {
  D: number;
  I: number;
  L: number;
  Hq: number;
  Hkv: number;
  hd: number;
  V: number;
  qDim: number;
  kvDim: number;
  /** Projections that carry a bias (Qwen2: q, k, v; Llama/Qwen3 with attention_bias: q, k, v, o; mlp_bias: gate, up, down). */
  biases: readonly Proj[];
  /** Qwen3: RMSNorm over each head of q and k (weights [hd]) before RoPE. */
  qkNorm: boolean;
}

/** The projections of a config that carry a bias, by its architecture's rules (transformers' modeling files). */
export function biasedProjs(c: ModelConfig): Proj[] {
  const out: Proj[] = [];
  const type = c.model_type ?? 'llama';
  if (type === 'qwen2') out.push('q_proj', 'k_proj', 'v_proj');
  else if (c.attention_bias) out.push('q_proj', 'k_proj', 'v_proj', 'o_proj');
  if (type === 'llama' && c.mlp_bias) out.push('gate_proj', 'up_proj', 'down_proj');
  return out;
}

/** Derived sizes; throws naming the field when the config cannot be run by our kernels. */
export function modelDims(c: ModelConfig): ModelDims {
  const fail = (m: string): never => {
    throw new Error(`model config: ${m}`);
  };
  for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) fail(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (!(c.rope_theta > 0)) fail(`rope_theta must be positive, got ${c.rope_theta}`);
  if (!(c.rms_norm_eps >= 0)) fail(`rms_norm_eps must be >= 0, got ${c.rms_norm_eps}`);
  const D = c.hidden_size;
  const Hq = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  if (Hq % Hkv !== 0) fail(`num_attention_heads=${Hq} is not a multiple of num_key_value_heads=${Hkv}`);
  if (c.head_dim === undefined && D % Hq !== 0) fail(`hidden_size=${D} is not a multiple of num_attention_heads=${Hq} (and no head_dim is given)`);
  const hd = c.head_dim ?? D / Hq;
  if (!Number.isInteger(hd) || hd <= 0) fail(`head_dim must be a positive integer, got ${hd}`);
  if (hd % 2 !== 0) fail(`head size ${hd} must be even for rotary embeddings`);
  if (hd > 128) fail(`head size ${hd} is above the 128 our attention kernels hold`);
  const type = c.model_type ?? 'llama';
  if (!(MODEL_TYPES as readonly string[]).includes(type)) fail(`model_type ${type} is not one of ${MODEL_TYPES.join(', ')}`);
  return {
    D, I: c.intermediate_size, L: c.num_hidden_layers, Hq, Hkv, hd, V: c.vocab_size, qDim: Hq * hd, kvDim: Hkv * hd,
    biases: biasedProjs(c), qkNorm: type === 'qwen3',
  };
}

export const PROJS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Proj = (typeof PROJS)[number];
export const ATTENTION_PROJS: readonly Proj[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];

/** Module name of a projection, e.g. 'model.layers.0.self_attn.q_proj' (its weight adds '.weight'). */
export function projName(layer: number, proj: Proj): string {
  const mod = proj === 'gate_proj' || proj === 'up_proj' || proj === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${mod}.${proj}`;
}

/** (out, in) of a projection's weight. */
export function projShape(c: ModelConfig, proj: Proj): [number, number] {
  const { D, I, qDim, kvDim } = modelDims(c);
  switch (proj) {
    case 'q_proj':
      return [qDim, D];
    case 'k_proj':
    case 'v_proj':
      return [kvDim, D];
    case 'o_proj':
      return [D, qDim];
    case 'gate_proj':
    case 'up_proj':
      return [I, D];
    case 'down_proj':
      return [D, I];
  }
}

/**
 * Every parameter by name (no lm_head.weight when embeddings are tied). Llama's tensors come first in
 * each layer, in the order weight init draws them; a Qwen variant's biases (zero at init) and q/k norms
 * (one at init) follow them, so a Llama config's init is unchanged.
 */
export function paramShapes(c: ModelConfig): Map<string, number[]> {
  const { D, L, V, hd, biases, qkNorm } = modelDims(c);
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [V, D]);
  for (let l = 0; l < L; l++) {
    for (const p of PROJS) m.set(`${projName(l, p)}.weight`, projShape(c, p));
    m.set(`model.layers.${l}.input_layernorm.weight`, [D]);
    m.set(`model.layers.${l}.post_attention_layernorm.weight`, [D]);
    for (const p of biases) m.set(`${projName(l, p)}.bias`, [projShape(c, p)[0]]);
    if (qkNorm) {
      m.set(`model.layers.${l}.self_attn.q_norm.weight`, [hd]);
      m.set(`model.layers.${l}.self_attn.k_norm.weight`, [hd]);
    }
  }
  m.set('model.norm.weight', [D]);
  if (!c.tie_word_embeddings) m.set('lm_head.weight', [V, D]);
  return m;
}

export function countParams(c: ModelConfig): number {
  let n = 0;
  for (const s of paramShapes(c).values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/** Toy base models. `vocab_size` is filled in from the tokenizer. */
export const MODEL_PRESETS: Record<string, Omit<ModelConfig, 'vocab_size'>> = {
  // CI-sized: trains in seconds on SwiftShader.
  tiny: {
    hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 256,
  },
  // The playground's default toy base model (shipped in public/).
  toy: {
    hidden_size: 64, intermediate_size: 176, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2,
    rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 256,
  },
  // Larger, for a laptop GPU.
  small: {
    hidden_size: 128, intermediate_size: 352, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 4,
    rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 512,
  },
};

export function presetConfig(name: string, vocabSize: number): ModelConfig {
  const p = MODEL_PRESETS[name];
  if (!p) throw new Error(`unknown model preset '${name}' (have: ${Object.keys(MODEL_PRESETS).join(', ')})`);
  return { ...p, vocab_size: vocabSize };
}
