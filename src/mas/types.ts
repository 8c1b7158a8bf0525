// Contracts between the multi-agent engine (src/mas), the worker (src/worker) and the CLI.
import type { Gpu } from '../gpu/runtime';
import type { LlamaConfig } from '../model/config';
import type { LoraAdapterConfig } from '../storage/peft';
import type { SlotOffsetData } from '../storage/slot-offset';
import type { TextTokenizer } from '../tokenizers/types';
import type { Split } from '../tasks/tasks';
import type { CompareRequest, EvalRow, ExperimentReport, InspectResult, RunCheckpoint, RunConfig, RunProgress, RunTrainingState } from './run-types';
import type { ProbeReport } from './measure-types';

/** A frozen base model, decoded from its Hugging Face files. */
export interface BaseModel {
  /** Library id ('builtin:toy') or a path, for provenance. */
  id: string;
  /** The name a person knows it by (the library entry's), for messages; the id where absent. */
  name?: string;
  config: LlamaConfig;
  weights: Map<string, Float32Array>;
  /** Null when the checkpoint has no tokenizer.json: it runs on token ids only (generate --ids), not on tasks. */
  tokenizer: TextTokenizer | null;
  /** tokenizer_config.json as stored, when there is one (written back with the base). */
  tokenizerConfig?: Record<string, unknown> | null;
}

/** A trained adapter as PEFT data (keys as src/storage/peft.ts loraKey), one per agent (or shared). */
export interface TrainedAdapter {
  /** Agent id, or 'shared' for the adapter all agents with adapter 'shared' use. */
  agent: string;
  config: LoraAdapterConfig;
  tensors: Map<string, Float32Array>;
  /** The adapter's learned latent slot offsets (a run with RunConfig.latentSlotOffset; src/mas/slot-offset.ts),
   * saved beside the PEFT files as src/storage/slot-offset.ts SLOT_OFFSET_FILE. */
  slotOffset?: SlotOffsetData;
}

/** One multi-agent run on one GPU: what the worker exposes to the page and the CLI drives headless. */
export interface RunControllerApi {
  /** Builds the agents for `config` over `base` and trains (if the method trains) until done, stopped
   * or an error; resolves then. Progress after every step and evaluation. Paused runs wait. */
  start(config: RunConfig, base: BaseModel, onProgress: (p: RunProgress) => void): Promise<void>;
  pause(): void;
  resume(): void;
  /** One training step (while paused, or to start a run step by step). */
  step(): Promise<void>;
  /** Ends the run after the current step (within one step). */
  stop(): void;
  /** Frees the run's adapters and state. */
  reset(): void;
  evaluate(splits: Split[]): Promise<EvalRow[]>;
  inspect(split: Split, index: number): Promise<InspectResult>;
  adapters(): Promise<TrainedAdapter[]>;
  /** Loads adapter weights into the run (optional: the page's reopened adapters). */
  loadAdapters?(adapters: TrainedAdapter[]): Promise<void>;
  /** The run's adapters and training state read together (optional: the page's run records keep them, to continue a run). */
  checkpoint?(): Promise<RunCheckpoint>;
  /** Puts a saved run's adapters and training state into this fresh run (optional: the page's "Continue"). */
  continueFrom?(adapters: TrainedAdapter[], state: RunTrainingState, fuser?: Map<string, Float32Array> | null): Promise<void>;
  /** Inspects with other adapter weights, then restores the run's (optional: the before-training view of any example). */
  inspectWith?(adapters: TrainedAdapter[], split: Split, index: number): Promise<InspectResult>;
  /** Linear probes of the received K/V of the run as it is now (optional: the page's latent view; src/mas/measures.ts). */
  probe?(trainEpisodes?: number): Promise<ProbeReport>;
}

export type ExperimentRunner = (
  gpu: Gpu, base: BaseModel, req: CompareRequest, onProgress: (message: string, fraction: number) => void,
) => Promise<ExperimentReport>;
