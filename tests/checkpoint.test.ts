import { describe, expect, it } from 'vitest';
import {
  decodeCheckpoint, encodeCheckpoint, expectedTensors, validateConfig, type LlamaConfig,
} from '../src/storage/checkpoint';
import { decodeSafetensors, encodeSafetensors, type TensorToWrite } from '../src/storage/safetensors';
import { randn } from './helpers';

// A tiny grouped-query Llama: D=8, 2 query heads and 1 kv head of head_dim 4, I=12, V=11, 2 layers.
const CONFIG: LlamaConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  vocab_size: 11,
  rope_theta: 10000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
  max_position_embeddings: 64,
  head_dim: 4,
  torch_dtype: 'float32',
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
};
const TIED: LlamaConfig = { ...CONFIG, tie_word_embeddings: true };
const TOKENIZER = { version: '1.0', model: { type: 'WordLevel', vocab: { '<pad>': 0, '<s>': 1, '</s>': 2 } } };

function randomTensors(config: LlamaConfig, seed = 1): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let s = seed;
  for (const [name, shape] of expectedTensors(config)) out.set(name, randn(shape.reduce((a, b) => a * b, 1), s++));
  return out;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** The three files of a valid checkpoint with the model file replaced by `tensors` (shapes given). */
function filesWith(config: unknown, tensors: Map<string, TensorToWrite>): Map<string, Uint8Array> {
  return new Map([
    ['config.json', json(config)],
    ['model.safetensors', encodeSafetensors(tensors, { format: 'pt' })],
    ['tokenizer.json', json(TOKENIZER)],
  ]);
}

function withShapes(config: LlamaConfig, tensors: Map<string, Float32Array>): Map<string, TensorToWrite> {
  const shapes = expectedTensors(config);
  return new Map([...tensors].map(([n, d]) => [n, { shape: shapes.get(n) ?? [d.length], data: d }]));
}

describe('LlamaForCausalLM tensor names and shapes', () => {
  it('lists every tensor in Hugging Face order with (out, in) Linear shapes', () => {
    const t = expectedTensors(CONFIG);
    expect(t.size).toBe(1 + 2 * 9 + 1 + 1);
    expect([...t.keys()].slice(0, 10)).toEqual([
      'model.embed_tokens.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.k_proj.weight',
      'model.layers.0.self_attn.v_proj.weight',
      'model.layers.0.self_attn.o_proj.weight',
      'model.layers.0.post_attention_layernorm.weight',
      'model.layers.0.mlp.gate_proj.weight',
      'model.layers.0.mlp.up_proj.weight',
      'model.layers.0.mlp.down_proj.weight',
    ]);
    expect(t.get('model.embed_tokens.weight')).toEqual([11, 8]);
    expect(t.get('model.layers.1.input_layernorm.weight')).toEqual([8]);
    expect(t.get('model.layers.1.self_attn.q_proj.weight')).toEqual([8, 8]); // 2 heads * 4
    expect(t.get('model.layers.1.self_attn.k_proj.weight')).toEqual([4, 8]); // 1 kv head * 4
    expect(t.get('model.layers.1.self_attn.v_proj.weight')).toEqual([4, 8]);
    expect(t.get('model.layers.1.self_attn.o_proj.weight')).toEqual([8, 8]);
    expect(t.get('model.layers.1.post_attention_layernorm.weight')).toEqual([8]);
    expect(t.get('model.layers.1.mlp.gate_proj.weight')).toEqual([12, 8]);
    expect(t.get('model.layers.1.mlp.up_proj.weight')).toEqual([12, 8]);
    expect(t.get('model.layers.1.mlp.down_proj.weight')).toEqual([8, 12]);
    expect(t.get('model.norm.weight')).toEqual([8]);
    expect(t.get('lm_head.weight')).toEqual([11, 8]);
    expect([...t.keys()].at(-1)).toBe('lm_head.weight');
    expect(expectedTensors(TIED).has('lm_head.weight')).toBe(false);
  });
});

describe('config.json validation', () => {
  it('fills Hugging Face defaults for fields older configs omit', () => {
    const { head_dim: _h, num_key_value_heads: _k, rope_theta: _r, ...old } = CONFIG;
    const c = validateConfig(old);
    expect(c.head_dim).toBe(4);
    expect(c.num_key_value_heads).toBe(2);
    expect(c.rope_theta).toBe(10000);
    expect(validateConfig({ ...CONFIG, eos_token_id: [2, 3] }).eos_token_id).toEqual([2, 3]);
  });

  it('reads RoPE in both layouts as transformers 5 does: rope_parameters (5.x) and top-level rope_theta / rope_scaling (4.x)', () => {
    const { rope_theta: _r, ...noTheta } = CONFIG;
    // transformers 5 writes rope_parameters only
    expect(validateConfig({ ...noTheta, rope_parameters: { rope_type: 'default', rope_theta: 100000 } }).rope_theta).toBe(100000);
    // the one inside wins over a top-level one (PreTrainedConfig.convert_rope_params_to_dict)
    expect(validateConfig({ ...CONFIG, rope_theta: 7, rope_parameters: { rope_theta: 100000 } }).rope_theta).toBe(100000);
    // the old key "type" and a missing rope_type mean the same as transformers reads them
    expect(validateConfig({ ...CONFIG, rope_parameters: { type: 'default' } }).rope_theta).toBe(10000);
    const llama3 = { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 };
    for (const c of [{ ...noTheta, rope_parameters: llama3 }, { ...CONFIG, rope_theta: 500000, rope_scaling: { ...llama3, rope_theta: undefined } }]) {
      const v = validateConfig(c);
      expect(v.rope_theta).toBe(500000);
      expect(v.rope_parameters).toEqual(llama3);
      // written in transformers 5's layout and read back the same
      expect(validateConfig(JSON.parse(text(encodeCheckpoint({ config: v, tensors: randomTensors(v), tokenizer: null }).get('config.json')!)))).toEqual(v);
    }
    // original_max_position_embeddings: the top level first, then max_position_embeddings
    const { original_max_position_embeddings: _o, ...noOld } = llama3;
    expect(validateConfig({ ...CONFIG, rope_parameters: noOld }).rope_parameters?.original_max_position_embeddings).toBe(64);
    expect(validateConfig({ ...CONFIG, original_max_position_embeddings: 16, rope_parameters: llama3 }).rope_parameters?.original_max_position_embeddings).toBe(16);
    // plain RoPE keeps the config.json it had: no rope_parameters written
    expect(validateConfig({ ...CONFIG, rope_parameters: { rope_type: 'default', rope_theta: 3 } })).not.toHaveProperty('rope_parameters');
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['hidden_size not divisible by heads (no head_dim)', { hidden_size: 10, num_attention_heads: 4, head_dim: undefined }, /hidden_size 10 is not divisible by num_attention_heads 4 \(and no head_dim is given\)/],
    ['heads not divisible by kv heads', { num_attention_heads: 4, num_key_value_heads: 3, hidden_size: 16 }, /num_attention_heads 4 is not divisible by num_key_value_heads 3/],
    ['a zero size', { intermediate_size: 0 }, /intermediate_size must be an integer >= 1, got 0/],
    ['a negative size', { vocab_size: -5 }, /vocab_size must be an integer >= 1, got -5/],
    ['a fractional size', { hidden_size: 8.5 }, /hidden_size must be an integer >= 1, got 8.5/],
    ['a size given as a string', { num_hidden_layers: '2' }, /num_hidden_layers must be an integer >= 1, got "2"/],
    ['an odd head_dim', { hidden_size: 6, num_attention_heads: 2, head_dim: 3 }, /head_dim 3 must be even/],
    ['a non-positive rms_norm_eps', { rms_norm_eps: 0 }, /rms_norm_eps must be a positive number, got 0/],
    ['a non-boolean tie_word_embeddings', { tie_word_embeddings: 'yes' }, /tie_word_embeddings must be true or false, got "yes"/],
    ['a token id beyond the vocabulary', { eos_token_id: 11 }, /eos_token_id must be a token id or a list of token ids in \[0, 11\) or null, got 11/],
    ['a rope scaling type not implemented', { rope_scaling: { rope_type: 'yarn', factor: 8 } }, /rope_scaling rope_type "yarn" is not supported: this engine runs "default" \(plain RoPE with rope_theta\) and "llama3"/],
    ['a rope type inside rope_parameters', { rope_parameters: { rope_type: 'linear', rope_theta: 1e4, factor: 2 } }, /rope_parameters rope_type "linear" is not supported/],
    ['a rope type transformers does not know', { rope_parameters: { rope_type: 'llama4', rope_theta: 1e4 } }, /rope_parameters rope_type "llama4" is not a RoPE type transformers knows/],
    ['llama3 without its factors', { rope_parameters: { rope_type: 'llama3', rope_theta: 5e5, factor: 8 } }, /rope_parameters.low_freq_factor must be a positive number, got missing/],
    ['llama3 with high_freq_factor below low_freq_factor', { rope_parameters: { rope_type: 'llama3', rope_theta: 5e5, factor: 8, low_freq_factor: 4, high_freq_factor: 1 } }, /rope_parameters.high_freq_factor 1 must be above low_freq_factor 4/],
    ['a non-positive theta inside rope_parameters', { rope_parameters: { rope_type: 'default', rope_theta: -1 } }, /rope_parameters.rope_theta must be a positive number, got -1/],
    ['per-layer-type rope settings', { rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1e4 } } }, /rope_parameters holds per-layer-type settings \(full_attention\)/],
    ['partial rotary embeddings', { rope_parameters: { rope_type: 'default', rope_theta: 1e4, partial_rotary_factor: 0.5 } }, /partial_rotary_factor 0.5 is not supported/],
    ['a non-boolean bias switch', { attention_bias: 'yes' }, /attention_bias must be true or false, got "yes"/],
    ['an MLP bias on Qwen3', { model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], mlp_bias: true }, /mlp_bias true is not a Qwen3 setting/],
    ['a sliding window', { model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], use_sliding_window: true }, /use_sliding_window true is not supported/],
    ['an architecture that does not match model_type', { model_type: 'qwen2' }, /describes LlamaForCausalLM \(model_type "qwen2"\)/],
    ['another activation', { hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
  ];
  for (const [what, patch, message] of bad) {
    it(`refuses ${what}, naming the field and value`, () => {
      expect(() => validateConfig({ ...CONFIG, ...patch })).toThrow(message);
    });
  }
});

describe('checkpoint files', () => {
  it('round-trips config, tensors and tokenizer exactly', () => {
    const tensors = randomTensors(CONFIG);
    const files = encodeCheckpoint({ config: CONFIG, tensors, tokenizer: TOKENIZER });
    expect([...files.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    const cfg = JSON.parse(text(files.get('config.json')!));
    expect(cfg).toEqual(CONFIG);
    expect(Object.keys(cfg).sort()).toEqual([
      'architectures', 'bos_token_id', 'eos_token_id', 'head_dim', 'hidden_size', 'intermediate_size',
      'max_position_embeddings', 'model_type', 'num_attention_heads', 'num_hidden_layers', 'num_key_value_heads',
      'pad_token_id', 'rms_norm_eps', 'rope_theta', 'tie_word_embeddings', 'torch_dtype', 'vocab_size',
    ]);
    const st = decodeSafetensors(files.get('model.safetensors')!);
    expect(st.metadata).toEqual({ format: 'pt' }); // transformers refuses safetensors without it
    expect(st.tensors.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([4, 8]);
    const back = decodeCheckpoint(files);
    expect(back.config).toEqual(CONFIG);
    expect(back.tokenizer).toEqual(TOKENIZER);
    expect([...back.tensors.keys()]).toEqual([...expectedTensors(CONFIG).keys()]);
    for (const [name, data] of tensors) expect(back.tensors.get(name)).toEqual(data);
  });

  it('a tied checkpoint has no lm_head, and one that carries lm_head equal to embed_tokens is accepted', () => {
    const tensors = randomTensors(TIED);
    const files = encodeCheckpoint({ config: TIED, tensors, tokenizer: TOKENIZER });
    expect(decodeSafetensors(files.get('model.safetensors')!).tensors.has('lm_head.weight')).toBe(false);
    expect(decodeCheckpoint(files).tensors.has('lm_head.weight')).toBe(false);

    const withHead = withShapes(TIED, tensors);
    withHead.set('lm_head.weight', { shape: [11, 8], data: tensors.get('model.embed_tokens.weight')!.slice() });
    const back = decodeCheckpoint(filesWith(TIED, withHead));
    expect(back.tensors.has('lm_head.weight')).toBe(false);
    expect(back.tensors.get('model.embed_tokens.weight')).toEqual(tensors.get('model.embed_tokens.weight'));

    const different = tensors.get('model.embed_tokens.weight')!.slice();
    different[5] += 1;
    withHead.set('lm_head.weight', { shape: [11, 8], data: different });
    expect(() => decodeCheckpoint(filesWith(TIED, withHead))).toThrow(
      /tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight/,
    );
  });

  it('reads what Hugging Face writes: BF16 weights, a torch_dtype of bfloat16, old inv_freq buffers, extra config fields', () => {
    const tensors = randomTensors(CONFIG, 7);
    const expected = expectedTensors(CONFIG);
    // Hand-built BF16 file: every value truncated to its top 16 bits.
    const names = [...expected.keys()];
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    const chunks: Uint8Array[] = [];
    let offset = 0;
    const bf16Values = new Map<string, Float32Array>();
    for (const name of [...names, 'model.layers.0.self_attn.rotary_emb.inv_freq']) {
      const data = tensors.get(name) ?? new Float32Array([1, 0.1]);
      const shape = expected.get(name) ?? [2];
      const bits = new Uint32Array(data.buffer.slice(0));
      const bytes = new Uint8Array(data.length * 2);
      const kept = new Float32Array(data.length);
      const keptBits = new Uint32Array(kept.buffer);
      for (let i = 0; i < data.length; i++) {
        const top = bits[i] >>> 16;
        bytes[2 * i] = top & 0xff;
        bytes[2 * i + 1] = top >>> 8;
        keptBits[i] = top << 16;
      }
      bf16Values.set(name, kept);
      header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes.length] };
      chunks.push(bytes);
      offset += bytes.length;
    }
    const h = new TextEncoder().encode(JSON.stringify(header));
    const file = new Uint8Array(8 + h.length + offset);
    new DataView(file.buffer).setUint32(0, h.length, true);
    file.set(h, 8);
    let at = 8 + h.length;
    for (const c of chunks) {
      file.set(c, at);
      at += c.length;
    }
    const hfConfig = { ...CONFIG, torch_dtype: 'bfloat16', hidden_act: 'silu', attention_bias: false, transformers_version: '4.46.0', initializer_range: 0.02 };
    const back = decodeCheckpoint(new Map([
      ['config.json', json(hfConfig)],
      ['model.safetensors', file],
      ['tokenizer.json', json(TOKENIZER)],
      ['generation_config.json', json({})],
    ]));
    expect(back.config.torch_dtype).toBe('bfloat16');
    expect(back.tensors.has('model.layers.0.self_attn.rotary_emb.inv_freq')).toBe(false);
    for (const name of names) expect(back.tensors.get(name)).toEqual(bf16Values.get(name));
  });

  it('reads a sharded checkpoint (model.safetensors.index.json)', () => {
    const tensors = randomTensors(CONFIG, 3);
    const shaped = withShapes(CONFIG, tensors);
    const names = [...shaped.keys()];
    const first = new Map(names.slice(0, 7).map((n) => [n, shaped.get(n)!]));
    const second = new Map(names.slice(7).map((n) => [n, shaped.get(n)!]));
    const weightMap = Object.fromEntries(names.map((n, i) => [n, i < 7 ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
    const files = new Map([
      ['config.json', json(CONFIG)],
      ['tokenizer.json', json(TOKENIZER)],
      ['model.safetensors.index.json', json({ metadata: { total_size: 0 }, weight_map: weightMap })],
      ['model-00001-of-00002.safetensors', encodeSafetensors(first)],
      ['model-00002-of-00002.safetensors', encodeSafetensors(second)],
    ]);
    const back = decodeCheckpoint(files);
    for (const [name, data] of tensors) expect(back.tensors.get(name)).toEqual(data);
    files.delete('model-00002-of-00002.safetensors');
    expect(() => decodeCheckpoint(files)).toThrow(/names shard "model-00002-of-00002.safetensors", which is not among the files/);
  });
});

describe('checkpoint decoder refuses what does not load, with a message a user can act on', () => {
  const good = () => encodeCheckpoint({ config: CONFIG, tensors: randomTensors(CONFIG), tokenizer: TOKENIZER });

  it('no tokenizer.json: the checkpoint loads without one (token ids need none)', () => {
    const files = good();
    files.delete('tokenizer.json');
    const ck = decodeCheckpoint(files);
    expect(ck.tokenizer).toBeNull();
    expect(ck.tensors.size).toBe(expectedTensors(CONFIG).size);
  });

  for (const missing of ['config.json', 'model.safetensors']) {
    it(`a missing ${missing}`, () => {
      const files = good();
      files.delete(missing);
      expect(() => decodeCheckpoint(files)).toThrow(new RegExp(`the checkpoint has no ${missing.replace('.', '\\.')} \\(files present: `));
    });
  }

  it("a foreign architecture (GPT-2's config.json)", () => {
    const gpt2 = {
      activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_ctx: 1024, n_embd: 768,
      n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257, bos_token_id: 50256, eos_token_id: 50256,
    };
    const files = good();
    files.set('config.json', json(gpt2));
    expect(() => decodeCheckpoint(files)).toThrow(
      /config.json describes GPT2LMHeadModel \(model_type "gpt2"\), not a causal LM this engine runs: only architectures \["LlamaForCausalLM"\] with model_type "llama", architectures \["Qwen2ForCausalLM"\]/,
    );
    files.set('config.json', json({ ...CONFIG, architectures: ['LlamaForSequenceClassification'] }));
    expect(() => decodeCheckpoint(files)).toThrow(/describes LlamaForSequenceClassification/);
  });

  it('a config.json that is not JSON', () => {
    const files = good();
    files.set('config.json', new TextEncoder().encode('{"hidden_size": 8,'));
    expect(() => decodeCheckpoint(files)).toThrow(/config.json is not valid JSON/);
  });

  it('a corrupt model.safetensors, naming the file', () => {
    const files = good();
    files.set('model.safetensors', files.get('model.safetensors')!.subarray(0, 100));
    expect(() => decodeCheckpoint(files)).toThrow(/^model.safetensors: safetensors: /);
  });

  it('a missing tensor, named', () => {
    const t = randomTensors(CONFIG);
    t.delete('model.layers.1.mlp.up_proj.weight');
    expect(() => decodeCheckpoint(filesWith(CONFIG, withShapes(CONFIG, t)))).toThrow(
      /model.safetensors is missing 1 tensor\(s\) that config.json implies: model.layers.1.mlp.up_proj.weight/,
    );
  });

  it('a missing lm_head when embeddings are not tied', () => {
    const t = randomTensors(CONFIG);
    t.delete('lm_head.weight');
    expect(() => decodeCheckpoint(filesWith(CONFIG, withShapes(CONFIG, t)))).toThrow(/missing 1 tensor\(s\).*: lm_head.weight/);
  });

  it('an extra tensor, named (a third layer the config does not have)', () => {
    const t = withShapes(CONFIG, randomTensors(CONFIG));
    t.set('model.layers.2.input_layernorm.weight', { shape: [8], data: new Float32Array(8) });
    expect(() => decodeCheckpoint(filesWith(CONFIG, t))).toThrow(
      /model.safetensors has 1 tensor\(s\) that a LlamaForCausalLM with this config.json does not have: model.layers.2.input_layernorm.weight/,
    );
  });

  it('a shape mismatch, naming the tensor, the expected and the found shapes', () => {
    const t = withShapes(CONFIG, randomTensors(CONFIG));
    t.set('model.layers.0.self_attn.k_proj.weight', { shape: [8, 8], data: new Float32Array(64) }); // MHA-sized k
    expect(() => decodeCheckpoint(filesWith(CONFIG, t))).toThrow(
      /tensor model.layers.0.self_attn.k_proj.weight has shape \[8, 8\], expected \[4, 8\] from config.json \(hidden_size=8, .*num_key_value_heads=1, head_dim=4\)/,
    );
    const u = withShapes(CONFIG, randomTensors(CONFIG));
    u.set('model.layers.1.mlp.down_proj.weight', { shape: [12, 8], data: new Float32Array(96) }); // transposed
    expect(() => decodeCheckpoint(filesWith(CONFIG, u))).toThrow(/down_proj.weight has shape \[12, 8\], expected \[8, 12\]/);
  });

  it('NaN or Inf in the weights, with the tensor and index', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const t = randomTensors(CONFIG);
      t.get('model.layers.1.self_attn.o_proj.weight')![13] = bad;
      expect(() => decodeCheckpoint(filesWith(CONFIG, withShapes(CONFIG, t)))).toThrow(
        new RegExp(`tensor model.layers.1.self_attn.o_proj.weight contains ${bad} at index 13; weights must be finite`),
      );
    }
  });

  it('the encoder refuses the same problems before writing anything', () => {
    const t = randomTensors(CONFIG);
    t.set('model.norm.weight', new Float32Array(7));
    expect(() => encodeCheckpoint({ config: CONFIG, tensors: t, tokenizer: TOKENIZER })).toThrow(
      /tensor model.norm.weight has 7 values, expected shape \[8\] \(8 values\)/,
    );
    const u = randomTensors(CONFIG);
    u.get('model.embed_tokens.weight')![0] = NaN;
    expect(() => encodeCheckpoint({ config: CONFIG, tensors: u, tokenizer: TOKENIZER })).toThrow(/contains NaN at index 0/);
    expect(() => encodeCheckpoint({ config: { ...CONFIG, num_key_value_heads: 3 }, tensors: randomTensors(CONFIG), tokenizer: TOKENIZER })).toThrow(
      /num_attention_heads 2 is not divisible by num_key_value_heads 3/,
    );
  });
});
