import { describe, expect, it } from 'vitest';
import { zipSync } from 'fflate';
import { expectedTensors, type LlamaConfig } from '../src/storage/checkpoint';
import {
  decodeAdapter, encodeAdapter, expectedAdapterTensors, loraKey, loraScale, type LoraAdapterConfig, type LoraTarget,
} from '../src/storage/peft';
import { decodeSafetensors, encodeSafetensors, type TensorToWrite } from '../src/storage/safetensors';
import { crc32, unzip, zipStore } from '../src/storage/zip';
import { randn } from './helpers';

// Base: D=8, q heads 2 x head_dim 4 = 8, kv heads 1 x 4 = 4, I=12, 3 layers. Every module has a
// different (in, out), so a transposed or misplaced tensor cannot pass by accident... except q/o (8, 8).
const BASE: LlamaConfig = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 8, intermediate_size: 12,
  num_hidden_layers: 3, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 11, rope_theta: 10000,
  rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 64, head_dim: 4, torch_dtype: 'float32',
  bos_token_id: 1, eos_token_id: 2, pad_token_id: 0,
};
const ATTN: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
const ALL: LoraTarget[] = [...ATTN, 'gate_proj', 'up_proj', 'down_proj'];

function adapterConfig(patch: Partial<LoraAdapterConfig> = {}): LoraAdapterConfig {
  return {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ATTN, lora_dropout: 0, bias: 'none',
    fan_in_fan_out: false, base_model_name_or_path: 'tiny-llama', layers_to_transform: null, inference_mode: true, ...patch,
  };
}

function randomAdapter(config: LoraAdapterConfig, seed = 1): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let s = seed;
  for (const [name, [a, b]] of expectedAdapterTensors(config, BASE)) out.set(name, randn(a * b, s++));
  return out;
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** Adapter files with a raw config object and tensors with explicit shapes (for refusal fixtures). */
function files(config: unknown, tensors: Map<string, TensorToWrite>): Map<string, Uint8Array> {
  return new Map([
    ['adapter_config.json', json(config)],
    ['adapter_model.safetensors', encodeSafetensors(tensors, { format: 'pt' })],
  ]);
}

function shaped(config: LoraAdapterConfig, tensors: Map<string, Float32Array>): Map<string, TensorToWrite> {
  const shapes = expectedAdapterTensors(config, BASE);
  return new Map([...tensors].map(([n, d]) => [n, { shape: shapes.get(n)!, data: d }]));
}

describe('PEFT LoRA adapter format', () => {
  it('uses PEFT key names with A (r, in) and B (out, r) for attention and MLP targets', () => {
    const t = expectedAdapterTensors(adapterConfig({ r: 2, target_modules: ALL }), BASE);
    expect(t.size).toBe(3 * 7 * 2);
    const p = 'base_model.model.model.layers.1';
    expect(Object.fromEntries([...t].filter(([k]) => k.startsWith(`${p}.`)))).toEqual({
      [`${p}.self_attn.q_proj.lora_A.weight`]: [2, 8],
      [`${p}.self_attn.q_proj.lora_B.weight`]: [8, 2],
      [`${p}.self_attn.k_proj.lora_A.weight`]: [2, 8],
      [`${p}.self_attn.k_proj.lora_B.weight`]: [4, 2],
      [`${p}.self_attn.v_proj.lora_A.weight`]: [2, 8],
      [`${p}.self_attn.v_proj.lora_B.weight`]: [4, 2],
      [`${p}.self_attn.o_proj.lora_A.weight`]: [2, 8],
      [`${p}.self_attn.o_proj.lora_B.weight`]: [8, 2],
      [`${p}.mlp.gate_proj.lora_A.weight`]: [2, 8],
      [`${p}.mlp.gate_proj.lora_B.weight`]: [12, 2],
      [`${p}.mlp.up_proj.lora_A.weight`]: [2, 8],
      [`${p}.mlp.up_proj.lora_B.weight`]: [12, 2],
      [`${p}.mlp.down_proj.lora_A.weight`]: [2, 12],
      [`${p}.mlp.down_proj.lora_B.weight`]: [8, 2],
    });
    expect(loraKey(0, 'q_proj', 'A')).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(loraKey(2, 'down_proj', 'B')).toBe('base_model.model.model.layers.2.mlp.down_proj.lora_B.weight');
    // Orientation matches the base Linear (out, in): B A has the shape of the adapted weight.
    const base = expectedTensors(BASE);
    for (const m of ALL) {
      const block = ATTN.includes(m) ? 'self_attn' : 'mlp';
      const [out, inp] = base.get(`model.layers.1.${block}.${m}.weight`)!;
      expect([t.get(loraKey(1, m, 'B'))![0], t.get(loraKey(1, m, 'A'))![1]]).toEqual([out, inp]);
    }
    expect(loraScale(adapterConfig({ r: 8, lora_alpha: 16 }))).toBe(2);
  });

  it('round-trips an adapter, writing the PEFT adapter_config.json fields', () => {
    const config = adapterConfig({ layers_to_transform: [2, 0], target_modules: ['v_proj', 'q_proj', 'down_proj'] });
    const tensors = randomAdapter({ ...config, layers_to_transform: [0, 2], target_modules: ['q_proj', 'v_proj', 'down_proj'] });
    const out = encodeAdapter({ config, tensors }, BASE);
    expect([...out.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const cfg = JSON.parse(new TextDecoder().decode(out.get('adapter_config.json')));
    expect(cfg).toMatchObject({
      peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj', 'down_proj'],
      lora_dropout: 0, bias: 'none', fan_in_fan_out: false, base_model_name_or_path: 'tiny-llama',
      layers_to_transform: [0, 2], inference_mode: true, use_dora: false, use_rslora: false,
    });
    const st = decodeSafetensors(out.get('adapter_model.safetensors')!);
    expect(st.metadata).toEqual({ format: 'pt' });
    expect([...st.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    expect(st.tensors.get('base_model.model.model.layers.2.mlp.down_proj.lora_A.weight')!.shape).toEqual([2, 12]);
    const back = decodeAdapter(out, BASE);
    expect(back.config).toEqual({ ...config, layers_to_transform: [0, 2], target_modules: ['q_proj', 'v_proj', 'down_proj'] });
    for (const [name, data] of tensors) expect(back.tensors.get(name)).toEqual(data);
  });

  it('reads what PEFT writes: extra default fields, a single layer index, F16 weights', () => {
    const config = adapterConfig();
    const tensors = randomAdapter(config, 5);
    const peftConfig = {
      ...config, layers_to_transform: null, alpha_pattern: {}, rank_pattern: {}, auto_mapping: null, init_lora_weights: true,
      layers_pattern: null, modules_to_save: null, revision: null, use_dora: false, use_rslora: false, megatron_config: null,
      megatron_core: 'megatron.core', loftq_config: {}, lora_dropout: 0.05, target_modules: ['v_proj', 'k_proj', 'o_proj', 'q_proj'],
    };
    const back = decodeAdapter(files(peftConfig, shaped(config, tensors)), BASE);
    expect(back.config.target_modules).toEqual(ATTN);
    expect(back.config.lora_dropout).toBe(0.05);
    const one = decodeAdapter(
      files({ ...config, layers_to_transform: 1 }, shaped(config, new Map([...tensors].filter(([k]) => k.includes('.layers.1.'))))),
      BASE,
    );
    expect(one.config.layers_to_transform).toEqual([1]);
    expect(one.tensors.size).toBe(8);
  });
});

describe('PEFT adapter decoder refuses an adapter that does not fit the base model', () => {
  const config = adapterConfig();
  const good = () => shaped(config, randomAdapter(config));

  it('wrong in size for a module, naming tensor, expected and found shapes', () => {
    const t = good();
    t.set(loraKey(0, 'k_proj', 'A'), { shape: [2, 16], data: new Float32Array(32) });
    expect(() => decodeAdapter(files(config, t), BASE)).toThrow(
      'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight has shape [2, 16], expected [2, 8]: (r, in) with in = 8 for k_proj',
    );
  });

  it('wrong out size for a module (an adapter made for a model without grouped-query attention)', () => {
    const t = good();
    t.set(loraKey(1, 'v_proj', 'B'), { shape: [8, 2], data: new Float32Array(16) });
    expect(() => decodeAdapter(files(config, t), BASE)).toThrow(
      /layers.1.self_attn.v_proj.lora_B.weight has shape \[8, 2\], expected \[4, 2\]: \(out, r\) with out = 4 for v_proj of the base model \(hidden_size=8, .*kv heads=1, head_dim=4\)/,
    );
  });

  it('a layer index beyond num_hidden_layers, in the tensors or in layers_to_transform', () => {
    const t = good();
    t.set(loraKey(5, 'q_proj', 'A'), { shape: [2, 8], data: new Float32Array(16) });
    expect(() => decodeAdapter(files(config, t), BASE)).toThrow(
      'tensor base_model.model.model.layers.5.self_attn.q_proj.lora_A.weight is for layer 5, but the base model has 3 layers (num_hidden_layers)',
    );
    expect(() => decodeAdapter(files({ ...config, layers_to_transform: [0, 3] }, good()), BASE)).toThrow(
      'layers_to_transform lists layer 3, but the base model has 3 layers (num_hidden_layers)',
    );
  });

  it('an unknown target module, in the config or in the tensors', () => {
    expect(() => decodeAdapter(files({ ...config, target_modules: ['q_proj', 'c_attn'] }, good()), BASE)).toThrow(
      /unknown target module "c_attn" \(a Llama layer has q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj\)/,
    );
    const t = good();
    t.set('base_model.model.model.layers.0.self_attn.c_attn.lora_A.weight', { shape: [2, 8], data: new Float32Array(16) });
    expect(() => decodeAdapter(files(config, t), BASE)).toThrow(/layers.0.self_attn.c_attn.lora_A.weight adapts unknown target module self_attn.c_attn/);
    const u = good();
    u.set('base_model.model.model.layers.0.mlp.up_proj.lora_A.weight', { shape: [2, 8], data: new Float32Array(16) });
    expect(() => decodeAdapter(files(config, u), BASE)).toThrow(/adapts up_proj, which target_modules \["q_proj","k_proj","v_proj","o_proj"\] in adapter_config.json does not list/);
    expect(() => decodeAdapter(files({ ...config, target_modules: 'all-linear' }, good()), BASE)).toThrow(/only an explicit list of module names is supported/);
  });

  it('an r mismatch between adapter_config.json and the tensors', () => {
    const r4 = adapterConfig({ r: 4 });
    const t = shaped(r4, randomAdapter(r4));
    expect(() => decodeAdapter(files(config, t), BASE)).toThrow(
      'r mismatch: adapter_config.json says r=2 but base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight has rank 4 (shape [4, 8], expected [2, 8])',
    );
    const u = good();
    u.set(loraKey(2, 'o_proj', 'B'), { shape: [8, 3], data: new Float32Array(24) });
    expect(() => decodeAdapter(files(config, u), BASE)).toThrow(/r mismatch: adapter_config.json says r=2 but .*layers.2.self_attn.o_proj.lora_B.weight has rank 3/);
  });

  it('a missing A or B', () => {
    for (const which of ['A', 'B'] as const) {
      const t = good();
      t.delete(loraKey(1, 'o_proj', which));
      expect(() => decodeAdapter(files(config, t), BASE)).toThrow(
        `adapter_model.safetensors is missing base_model.model.model.layers.1.self_attn.o_proj.lora_${which}.weight (lora_${which} of layer 1 o_proj)`,
      );
    }
  });

  it('keys that are not PEFT LoRA keys, missing files, NaN, and PEFT features this engine lacks', () => {
    const t = good();
    t.set('base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight', { shape: [2, 8], data: new Float32Array(16) });
    expect(() => decodeAdapter(files(config, t), BASE)).toThrow(/tensor .*lora_A.default.weight is not a LoRA weight of a Llama layer/);
    const f = files(config, good());
    f.delete('adapter_model.safetensors');
    expect(() => decodeAdapter(f, BASE)).toThrow('the adapter has no adapter_model.safetensors (files present: adapter_config.json)');
    const n = good();
    n.get(loraKey(0, 'q_proj', 'B'))!.data[3] = NaN;
    expect(() => decodeAdapter(files(config, n), BASE)).toThrow(/q_proj.lora_B.weight contains NaN at index 3/);
    expect(() => decodeAdapter(files({ ...config, use_dora: true }, good()), BASE)).toThrow(/use_dora true is not supported/);
    expect(() => decodeAdapter(files({ ...config, peft_type: 'IA3' }, good()), BASE)).toThrow(/peft_type "IA3" is not supported/);
    expect(() => decodeAdapter(files({ ...config, rank_pattern: { q_proj: 8 } }, good()), BASE)).toThrow(/rank_pattern .* is not supported/);
    const bad = files(config, good());
    bad.set('adapter_config.json', new TextEncoder().encode('{r: 2}'));
    expect(() => decodeAdapter(bad, BASE)).toThrow(/adapter_config.json is not valid JSON/);
  });

  it('the encoder refuses an adapter that does not fit, before writing', () => {
    const t = randomAdapter(config);
    t.set(loraKey(0, 'q_proj', 'A'), new Float32Array(5));
    expect(() => encodeAdapter({ config, tensors: t }, BASE)).toThrow(/q_proj.lora_A.weight has 5 values, expected shape \[2, 8\] \(16 values\)/);
    const u = randomAdapter(config);
    u.delete(loraKey(2, 'v_proj', 'B'));
    expect(() => encodeAdapter({ config, tensors: u }, BASE)).toThrow(/missing .*layers.2.self_attn.v_proj.lora_B.weight/);
  });
});

describe('stored zip', () => {
  // Made by Python's zipfile (ZIP_STORED): a directory entry "adapter/", "adapter/config.json" = '{"r": 4}',
  // "w.bin" = bytes 0..9.
  const PY_STORED =
    'UEsDBBQAAAAAAIMYIlgAAAAAAAAAAAAAAAAIAAAAYWRhcHRlci9QSwMEFAAAAAAAgxgiWOcKlAMIAAAACAAAABMAAABhZGFwdGVyL2NvbmZpZy5qc29ueyJyIjogNH1QSwMEFAAAAAAAgxgiWEbXbEUKAAAACgAAAAUAAAB3LmJpbgABAgMEBQYHCAlQSwECFAMUAAAAAACDGCJYAAAAAAAAAAAAAAAACAAAAAAAAAAAAAAAgAEAAAAAYWRhcHRlci9QSwECFAMUAAAAAACDGCJY5wqUAwgAAAAIAAAAEwAAAAAAAAAAAAAAgAEmAAAAYWRhcHRlci9jb25maWcuanNvblBLAQIUAxQAAAAAAIMYIlhG12xFCgAAAAoAAAAFAAAAAAAAAAAAAACAAV8AAAB3LmJpblBLBQYAAAAAAwADAKoAAACMAAAAAAA=';
  // Made by Python's zipfile (ZIP_DEFLATED): "config.json".
  const PY_DEFLATED =
    'UEsDBBQAAAAIAIMYIliCsokdEwAAABoAAAALAAAAY29uZmlnLmpzb26rVipSslIw0VFQKjKCMYxBjFoAUEsBAhQDFAAAAAgAgxgiWIKyiR0TAAAAGgAAAAsAAAAAAAAAAAAAAIABAAAAAGNvbmZpZy5qc29uUEsFBgAAAAABAAEAOQAAADwAAAAAAA==';
  const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

  it('computes the standard CRC-32 check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('round-trips an adapter and a checkpoint-sized set of files, deterministically', () => {
    const config = adapterConfig();
    const adapterFiles = encodeAdapter({ config, tensors: randomAdapter(config) }, BASE);
    adapterFiles.set('README.md', new TextEncoder().encode('# adapter — ünïcödé name test\n'));
    adapterFiles.set('dir/émpty.bin', new Uint8Array(0));
    const zip = zipStore(adapterFiles);
    expect(zipStore(adapterFiles)).toEqual(zip);
    const back = unzip(zip);
    expect([...back.keys()]).toEqual([...adapterFiles.keys()]);
    for (const [name, data] of adapterFiles) expect(back.get(name)).toEqual(data);
    expect(decodeAdapter(back, BASE).tensors.size).toBe(3 * 4 * 2);
  });

  it('reads a stored zip made by another tool, skipping directory entries', () => {
    const got = unzip(b64(PY_STORED));
    expect([...got.keys()]).toEqual(['adapter/config.json', 'w.bin']);
    expect(new TextDecoder().decode(got.get('adapter/config.json'))).toBe('{"r": 4}');
    expect(Array.from(got.get('w.bin')!)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('reads deflate zips as zip tools make them (Python\'s zipfile, fflate\'s zipSync with folders and mixed methods)', () => {
    expect(new TextDecoder().decode(unzip(b64(PY_DEFLATED)).get('config.json'))).toBe('{"r": 4, "r2": 4, "r3": 4}');
    const enc = new TextEncoder();
    const weights = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251);
    const zip = zipSync({
      'model/config.json': enc.encode('{"model_type": "qwen3"}'),
      'model/model.safetensors': [weights, { level: 9 }],
      'model/tokenizer.json': [enc.encode('{"model": {}}'), { level: 0 }],
    });
    const back = unzip(zip);
    expect([...back.keys()].sort()).toEqual(['model/config.json', 'model/model.safetensors', 'model/tokenizer.json']);
    expect(back.get('model/model.safetensors')).toEqual(weights);
    expect(new TextDecoder().decode(back.get('model/tokenizer.json'))).toBe('{"model": {}}');
  });

  it('refuses other compression methods, damaged deflate data and false size claims with clear messages', () => {
    const enc = new TextEncoder();
    const deflated = zipSync({ 'a.txt': [enc.encode('hello hello hello hello'), { level: 6 }] });
    const v = new DataView(deflated.buffer);
    const central = deflated.length - 22 - 46 - 5;
    const bz = deflated.slice();
    new DataView(bz.buffer).setUint16(central + 10, 12, true); // method 12 in the central record
    expect(() => unzip(bz)).toThrow('zip: entry "a.txt" is compressed with bzip2; only stored and deflate entries can be read');
    const damaged = deflated.slice();
    damaged[30 + 5] = 0xff; // the first byte of the deflate stream: an invalid block type
    expect(() => unzip(damaged)).toThrow(/zip: entry "a.txt": its deflate data is damaged/);
    const small = deflated.slice();
    new DataView(small.buffer).setUint32(central + 24, v.getUint32(central + 24, true) - 3, true); // claims 3 bytes fewer
    expect(() => unzip(small)).toThrow('zip: entry "a.txt" inflates to more than 20 bytes, not the 20 its record claims');
    const big = deflated.slice();
    new DataView(big.buffer).setUint32(central + 24, 2 ** 31, true);
    // a 2 GiB claim from a few compressed bytes is a zip bomb's ratio (issue 20 item 9); the total cap holds without that bound too
    expect(() => unzip(big)).toThrow(/zip: entry "a.txt" claims 2147483648 bytes from \d+ compressed, \d+:1, more than the 100:1 a model's files reach/);
    expect(() => unzip(big, { maxBytes: 2 ** 30, maxRatio: Infinity })).toThrow(/the entries add up to 2147483648 bytes, more than the 1073741824/);
  });

  it('refuses corruption and non-zip data with clear messages', () => {
    const zip = zipStore(new Map([['a.txt', new TextEncoder().encode('hello')]]));
    const corrupt = zip.slice();
    corrupt[30 + 5 + 1] ^= 0xff; // a byte of the data after the 30-byte header and the name
    expect(() => unzip(corrupt)).toThrow('zip: entry "a.txt" is corrupt (CRC-32 mismatch)');
    expect(() => unzip(new TextEncoder().encode('this is not a zip archive at all'))).toThrow(/not a zip archive \(no end-of-central-directory record\)/);
    expect(() => unzip(new Uint8Array(5))).toThrow(/not a zip archive: 5 bytes is too short/);
    expect(() => unzip(zip.subarray(20))).toThrow(/zip: /);
    expect(() => zipStore(new Map([['../evil', new Uint8Array(1)]]))).toThrow(/bad file name/);
  });
});
