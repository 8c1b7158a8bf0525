// LoRA adapters on the GPU <-> Hugging Face PEFT data (src/storage/peft.ts).
import type { Gpu } from '../gpu/runtime';
import { adapterLayers, loraKey, type LoraAdapter, type LoraAdapterConfig, type LoraTarget } from '../storage/peft';
import type { LlamaConfig } from './config';
import { LoraGpu } from './model';
import type { ModelConfig } from './config';

/** Reads an adapter back as PEFT config + tensors (keys as loraKey). */
export async function loraToPeft(lora: LoraGpu, baseModelName: string | null): Promise<LoraAdapter> {
  const layers = [...new Set([...lora.modules.values()].map((m) => m.layer))].sort((a, b) => a - b);
  const all = layers.length === lora.modelConfig.num_hidden_layers;
  const config: LoraAdapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: lora.config.r,
    lora_alpha: lora.config.alpha,
    target_modules: [...lora.config.targets] as LoraTarget[],
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: false,
    base_model_name_or_path: baseModelName,
    layers_to_transform: all ? null : layers,
    inference_mode: true,
  };
  const tensors = new Map<string, Float32Array>();
  for (const m of lora.modules.values()) {
    tensors.set(loraKey(m.layer, m.proj as LoraTarget, 'A'), await lora.gpu.read(m.A));
    tensors.set(loraKey(m.layer, m.proj as LoraTarget, 'B'), await lora.gpu.read(m.B));
  }
  return { config, tensors };
}

/** Puts a decoded PEFT adapter (already checked against the base by decodeAdapter) on the GPU. */
export function peftToLora(gpu: Gpu, modelConfig: ModelConfig & Partial<LlamaConfig>, adapter: LoraAdapter): LoraGpu {
  const base = modelConfig as LlamaConfig;
  const layers = adapterLayers(adapter.config, base);
  const lora = new LoraGpu(gpu, modelConfig, {
    r: adapter.config.r,
    alpha: adapter.config.lora_alpha,
    targets: [...adapter.config.target_modules],
    layers,
  });
  const weights = new Map<string, { A: Float32Array; B: Float32Array }>();
  for (const m of lora.modules.values()) {
    const A = adapter.tensors.get(loraKey(m.layer, m.proj as LoraTarget, 'A'));
    const B = adapter.tensors.get(loraKey(m.layer, m.proj as LoraTarget, 'B'));
    if (!A || !B) throw new Error(`adapter: ${m.name} has no lora_A/lora_B tensors`);
    weights.set(m.name, { A, B });
  }
  lora.load(weights);
  return lora;
}
