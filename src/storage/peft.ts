// Hugging Face PEFT LoRA adapters as files: adapter_config.json and adapter_model.safetensors with
// keys base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight (and
// mlp.{gate,up,down}_proj for MLP targets). A is (r, in), B is (out, r), the LoRA update is
// (lora_alpha / r) * B A, exactly as PEFT's LoraLayer (fan_in_fan_out false). What we write loads with
// PeftModel.from_pretrained on the matching LlamaForCausalLM; what PEFT saves for q/k/v/o/gate/up/down
// targets loads here. Pure TypeScript: no DOM, no Node APIs.
import type { LlamaConfig } from '../model/config';
import { linearShapes } from './checkpoint';
import { decodeSafetensors, encodeSafetensors, type TensorToWrite } from './safetensors';
import { filesPresent } from './text';

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraAdapterConfig {
  peft_type: 'LORA';
  task_type: 'CAUSAL_LM';
  r: number;
  lora_alpha: number;
  target_modules: LoraTarget[];
  lora_dropout: number;
  bias: 'none';
  fan_in_fan_out: false;
  base_model_name_or_path: string | null;
  /** Layer indices that carry adapters, or null for all layers. */
  layers_to_transform: number[] | null;
  inference_mode: boolean;
}

export interface LoraAdapter {
  config: LoraAdapterConfig;
  /** Flat row-major F32 data by PEFT key (see loraKey); shapes from expectedAdapterTensors. */
  tensors: Map<string, Float32Array>;
}

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

export class AdapterError extends Error {
  /** 'format': a file is missing or cannot be read (truncated, not JSON); 'fit': it reads but does not fit the base model. */
  constructor(message: string, readonly kind: 'format' | 'fit' = 'fit') {
    super(message);
    this.name = 'AdapterError';
  }
}

const fail = (msg: string): never => {
  throw new AdapterError(msg);
};
const failFormat = (msg: string): never => {
  throw new AdapterError(msg, 'format');
};
/** A value as it reads in the file (Infinity, which JSON.parse makes of 1e999, is not "null"). */
const show = (v: unknown): string => {
  if (v === undefined) return 'missing';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
};
const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const ATTN: readonly string[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
const blockOf = (m: LoraTarget): 'self_attn' | 'mlp' => (ATTN.includes(m) ? 'self_attn' : 'mlp');

/** The PEFT key of a LoRA weight, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight. */
export function loraKey(layer: number, module: LoraTarget, which: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${blockOf(module)}.${module}.lora_${which}.weight`;
}

/** The LoRA scale PEFT applies: lora_alpha / r. */
export function loraScale(config: Pick<LoraAdapterConfig, 'lora_alpha' | 'r'>): number {
  return config.lora_alpha / config.r;
}

/**
 * Checks a parsed adapter_config.json against the base model and returns it normalized. Refuses PEFT
 * features this engine does not implement (DoRA, rsLoRA, per-module ranks, biases, extra saved modules).
 */
export function validateAdapterConfig(c: unknown, base: LlamaConfig): LoraAdapterConfig {
  if (!isObject(c)) return fail(`adapter_config.json must be a JSON object, got ${show(c)}`);
  if (c.peft_type !== 'LORA') fail(`adapter_config.json: peft_type ${show(c.peft_type)} is not supported (only "LORA")`);
  const task = c.task_type ?? 'CAUSAL_LM';
  if (task !== 'CAUSAL_LM') fail(`adapter_config.json: task_type ${show(task)} is not supported (only "CAUSAL_LM")`);
  const r = c.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail(`adapter_config.json: r must be an integer >= 1, got ${show(r)}`);
  const alpha = c.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) {
    fail(`adapter_config.json: lora_alpha must be a positive number, got ${show(c.lora_alpha)}`);
  }
  const tm = c.target_modules;
  if (typeof tm === 'string') {
    fail(`adapter_config.json: target_modules is the pattern ${show(tm)}; only an explicit list of module names is supported (${LORA_TARGETS.join(', ')})`);
  }
  if (!Array.isArray(tm) || tm.length === 0) fail(`adapter_config.json: target_modules must be a non-empty list, got ${show(tm)}`);
  for (const m of tm as unknown[]) {
    if (!(LORA_TARGETS as readonly unknown[]).includes(m)) {
      fail(`adapter_config.json: unknown target module ${show(m)} (a Llama layer has ${LORA_TARGETS.join(', ')})`);
    }
  }
  const targets = LORA_TARGETS.filter((m) => (tm as unknown[]).includes(m));
  const dropout = c.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail(`adapter_config.json: lora_dropout must be in [0, 1), got ${show(dropout)}`);
  const bias = c.bias ?? 'none';
  if (bias !== 'none') fail(`adapter_config.json: bias ${show(bias)} is not supported (only "none": Llama linears have no bias)`);
  if ((c.fan_in_fan_out ?? false) !== false) fail(`adapter_config.json: fan_in_fan_out ${show(c.fan_in_fan_out)} is not supported (Llama linears are (out, in))`);
  const refuse = (field: string, ok: (v: unknown) => boolean, why: string) => {
    if (c[field] !== undefined && !ok(c[field])) fail(`adapter_config.json: ${field} ${show(c[field])} is not supported (${why})`);
  };
  const emptyOrNull = (v: unknown) => v === null || (isObject(v) && Object.keys(v).length === 0) || (Array.isArray(v) && v.length === 0);
  refuse('use_dora', (v) => v === false, 'DoRA needs magnitude vectors this engine does not apply');
  refuse('use_rslora', (v) => v === false, 'rsLoRA scales by alpha/sqrt(r); this engine uses alpha/r');
  refuse('rank_pattern', emptyOrNull, 'one r for every module');
  refuse('alpha_pattern', emptyOrNull, 'one lora_alpha for every module');
  refuse('modules_to_save', emptyOrNull, 'only LoRA A/B weights are loaded');
  refuse('layer_replication', emptyOrNull, 'layers are not replicated');
  const baseName = c.base_model_name_or_path ?? null;
  if (baseName !== null && typeof baseName !== 'string') fail(`adapter_config.json: base_model_name_or_path must be a string or null, got ${show(baseName)}`);
  let layers = c.layers_to_transform ?? null;
  if (typeof layers === 'number') layers = [layers];
  if (layers !== null) {
    if (!Array.isArray(layers) || layers.length === 0) fail(`adapter_config.json: layers_to_transform must be a non-empty list of layer indices or null, got ${show(layers)}`);
    for (const l of layers as unknown[]) {
      if (typeof l !== 'number' || !Number.isInteger(l) || l < 0) fail(`adapter_config.json: layers_to_transform has ${show(l)}, not a layer index`);
      if ((l as number) >= base.num_hidden_layers) {
        fail(`adapter_config.json: layers_to_transform lists layer ${l}, but the base model has ${base.num_hidden_layers} layers (num_hidden_layers)`);
      }
    }
    layers = [...new Set(layers as number[])].sort((a, b) => a - b);
  }
  const inference = c.inference_mode ?? true;
  if (typeof inference !== 'boolean') fail(`adapter_config.json: inference_mode must be true or false, got ${show(inference)}`);
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: r as number,
    lora_alpha: alpha as number,
    target_modules: targets,
    lora_dropout: dropout as number,
    bias: 'none',
    fan_in_fan_out: false,
    base_model_name_or_path: baseName as string | null,
    layers_to_transform: layers as number[] | null,
    inference_mode: inference as boolean,
  };
}

/** The layers that carry adapters. */
export function adapterLayers(config: LoraAdapterConfig, base: LlamaConfig): number[] {
  return config.layers_to_transform ?? Array.from({ length: base.num_hidden_layers }, (_, i) => i);
}

/** Every tensor of the adapter with its shape: lora_A (r, in) and lora_B (out, r) per layer and target. */
export function expectedAdapterTensors(config: LoraAdapterConfig, base: LlamaConfig): Map<string, number[]> {
  const lin = linearShapes(base);
  const out = new Map<string, number[]>();
  for (const layer of adapterLayers(config, base)) {
    for (const m of config.target_modules) {
      out.set(loraKey(layer, m, 'A'), [config.r, lin[m].in]);
      out.set(loraKey(layer, m, 'B'), [lin[m].out, config.r]);
    }
  }
  return out;
}

const KEY_RE = /^base_model\.model\.model\.layers\.(\d+)\.(\w+)\.(\w+)\.lora_([AB])\.weight$/;

/** Checks tensors against the adapter config and base model; returns them in expected order. */
function checkAdapterTensors(
  config: LoraAdapterConfig, base: LlamaConfig, found: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
): Map<string, Float32Array> {
  const layers = adapterLayers(config, base);
  for (const name of found.keys()) {
    const k = KEY_RE.exec(name);
    if (!k) {
      fail(`${ADAPTER_WEIGHTS_FILE}: tensor ${name} is not a LoRA weight of a Llama layer (expected names like ${loraKey(0, 'q_proj', 'A')})`);
    }
    const [, layerStr, block, module] = k!;
    const layer = Number(layerStr);
    if (!(LORA_TARGETS as readonly string[]).includes(module) || blockOf(module as LoraTarget) !== block) {
      const known = LORA_TARGETS.map((m) => `${blockOf(m)}.${m}`).join(', ');
      fail(`${ADAPTER_WEIGHTS_FILE}: tensor ${name} adapts unknown target module ${block}.${module} (a Llama layer has ${known})`);
    }
    if (layer >= base.num_hidden_layers) {
      fail(`${ADAPTER_WEIGHTS_FILE}: tensor ${name} is for layer ${layer}, but the base model has ${base.num_hidden_layers} layers (num_hidden_layers)`);
    }
    if (!config.target_modules.includes(module as LoraTarget)) {
      fail(`${ADAPTER_WEIGHTS_FILE}: tensor ${name} adapts ${module}, which target_modules ${show(config.target_modules)} in ${ADAPTER_CONFIG_FILE} does not list`);
    }
    if (!layers.includes(layer)) {
      fail(`${ADAPTER_WEIGHTS_FILE}: tensor ${name} is for layer ${layer}, which layers_to_transform ${show(config.layers_to_transform)} excludes`);
    }
  }
  const lin = linearShapes(base);
  const out = new Map<string, Float32Array>();
  for (const layer of layers) {
    for (const m of config.target_modules) {
      for (const which of ['A', 'B'] as const) {
        const name = loraKey(layer, m, which);
        const t = found.get(name);
        if (!t) fail(`${ADAPTER_WEIGHTS_FILE} is missing ${name} (lora_${which} of layer ${layer} ${m})`);
        const { in: fanIn, out: fanOut } = lin[m];
        const expected = which === 'A' ? [config.r, fanIn] : [fanOut, config.r];
        const s = t!.shape;
        if (s.length !== 2 || s[0] !== expected[0] || s[1] !== expected[1]) {
          const rank = which === 'A' ? s[0] : s[1];
          const other = which === 'A' ? s[1] === fanIn : s[0] === fanOut;
          if (s.length === 2 && other && rank !== config.r) {
            fail(`r mismatch: ${ADAPTER_CONFIG_FILE} says r=${config.r} but ${name} has rank ${rank} (shape ${fmtShape(s)}, expected ${fmtShape(expected)})`);
          }
          const dims = which === 'A' ? `(r, in) with in = ${fanIn}` : `(out, r) with out = ${fanOut}`;
          fail(
            `${name} has shape ${fmtShape(s)}, expected ${fmtShape(expected)}: ${dims} for ${m} of the base model ` +
              `(hidden_size=${base.hidden_size}, intermediate_size=${base.intermediate_size}, ` +
              `heads=${base.num_attention_heads}, kv heads=${base.num_key_value_heads}, head_dim=${base.head_dim})`,
          );
        }
        const data = t!.data;
        for (let i = 0; i < data.length; i++) {
          if (!Number.isFinite(data[i])) fail(`${name} contains ${data[i]} at index ${i}; adapter weights must be finite`);
        }
        out.set(name, data);
      }
    }
  }
  return out;
}

function adapterConfigJson(c: LoraAdapterConfig): Record<string, unknown> {
  // The fields of the brief first; the rest are PEFT defaults written out so PEFT reads our intent.
  return {
    ...c,
    modules_to_save: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    layers_pattern: null,
    revision: null,
  };
}

/** Encodes an adapter as adapter_config.json + adapter_model.safetensors, after checking it fits `base`. */
export function encodeAdapter(
  adapter: { config: LoraAdapterConfig; tensors: ReadonlyMap<string, Float32Array> }, base: LlamaConfig,
): Map<string, Uint8Array> {
  const config = validateAdapterConfig(adapter.config, base);
  const expected = expectedAdapterTensors(config, base);
  const found = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const [name, data] of adapter.tensors) {
    const shape = expected.get(name);
    if (shape && data.length !== shape[0] * shape[1]) {
      fail(`${name} has ${data.length} values, expected shape ${fmtShape(shape)} (${shape[0] * shape[1]} values)`);
    }
    found.set(name, { shape: shape ?? [data.length], data });
  }
  const tensors = checkAdapterTensors(config, base, found);
  const toWrite = new Map<string, TensorToWrite>();
  for (const [name, data] of tensors) toWrite.set(name, { shape: expected.get(name)!, data });
  return new Map([
    [ADAPTER_CONFIG_FILE, new TextEncoder().encode(JSON.stringify(adapterConfigJson(config), null, 2) + '\n')],
    [ADAPTER_WEIGHTS_FILE, encodeSafetensors(toWrite, { format: 'pt' })],
  ]);
}

/** Decodes an adapter's files and checks that it fits `base`; throws AdapterError naming what does not. */
export function decodeAdapter(files: ReadonlyMap<string, Uint8Array>, base: LlamaConfig): LoraAdapter {
  const get = (name: string) => files.get(name) ?? failFormat(`the adapter has no ${name} (files present: ${filesPresent(files)})`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(get(ADAPTER_CONFIG_FILE)));
  } catch (e) {
    if (e instanceof AdapterError) throw e;
    failFormat(`${ADAPTER_CONFIG_FILE} is not valid JSON (truncated or not an adapter file?): ${(e as Error).message}`);
  }
  const config = validateAdapterConfig(raw, base);
  let found;
  try {
    found = decodeSafetensors(get(ADAPTER_WEIGHTS_FILE)).tensors;
  } catch (e) {
    if (e instanceof AdapterError) throw e;
    return failFormat(`${ADAPTER_WEIGHTS_FILE} cannot be read: ${(e as Error).message}`);
  }
  return { config, tensors: checkAdapterTensors(config, base, found) };
}
