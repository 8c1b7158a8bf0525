// What a run will hold on the GPU, known before anything is allocated: the run is built on an
// accounting device (src/gpu/accounting.ts), on which the engine's own construction code runs and
// every tensor it makes is counted, so the figures are the bytes the real run allocates (tests compare
// them with a real device's Gpu.memory()). Split into the frozen weights, the adapters with their
// gradients and AdamW moments, and the activations of the passes at this batch (the longest prompts of
// a sample of episodes); with the largest single buffer, which must fit the adapter's
// maxStorageBufferBindingSize and maxBufferSize (WebGPU cannot bind a larger one).
import { accountingGpu } from '../gpu/accounting';
import type { LatentMapKind } from './latentmap';
import { GpuLatentMap } from './rollout';
import { MasEngine, Run } from './run';
import type { RunConfig } from './run-types';
import type { BaseModel } from './types';

export interface RunMemory {
  /** The frozen base model's parameters. */
  weights: number;
  /** LoRA A and B, their gradients, AdamW's two moments (0 when nothing trains), and the latent map. */
  adapters: number;
  /** The passes' activations, saved tensors and gradients at this batch. */
  activations: number;
  total: number;
  /** The largest single buffer. */
  largest: { label: string; bytes: number };
}

/** A MasEngine whose latent maps have their real shapes but are not computed (a ridge solve over the vocabulary takes seconds). */
class CountingEngine extends MasEngine {
  private readonly stubs = new Map<LatentMapKind, GpuLatentMap>();
  override latentMap(kind: LatentMapKind): GpuLatentMap {
    let m = this.stubs.get(kind);
    if (!m) {
      const D = this.base.config.hidden_size;
      m = new GpuLatentMap(this.gpu, { kind, D, Wa: kind === 'ridge' ? new Float64Array(D * D) : null, targetNorm: 1, lambda: 0 });
      this.stubs.set(kind, m);
    }
    return m;
  }
}

/** The memory `config` needs on `base` (no GPU used). */
export function estimateRunMemory(base: BaseModel, config: RunConfig, limits?: Record<string, number>, runOptions: { senderLogits?: boolean } = {}): RunMemory {
  const { gpu, largest } = accountingGpu(limits ? { limits } : undefined);
  const engine = new CountingEngine(gpu, base);
  const weights = gpu.memory().current;
  // the run's constructor makes the adapters, their gradients, AdamW's moments and the latent map
  const run = new Run(engine, config, runOptions);
  const withRun = gpu.memory().current;
  run.prepareShapes();
  const built = gpu.memory();
  run.destroy();
  engine.destroy();
  return { weights, adapters: withRun - weights, activations: built.current - withRun, total: built.peak, largest: largest() };
}

/** The refusal, in words, when a run's largest buffer exceeds what the device can bind (null when it fits). */
export function memoryProblem(m: RunMemory, limits: { maxBufferSize: number; maxStorageBufferBindingSize: number }, config: Pick<RunConfig, 'batch'>): string | null {
  const limit = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  if (m.largest.bytes <= limit) return null;
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
  return (
    `this run needs a GPU buffer of ${mb(m.largest.bytes)} (${m.largest.label}), more than the ${mb(limit)} this adapter can bind as one buffer ` +
    `(maxStorageBufferBindingSize / maxBufferSize); lower the batch (now ${config.batch}) or the text budget, or use a GPU with larger limits`
  );
}
