// The engine worker's API, shared by the worker (src/worker/engine.worker.ts), the page
// (src/ui/engine.ts), the CLI and tests. Only plain data crosses this boundary (structured clone;
// large arrays as transferables): the UI never sees a GPUBuffer.
import type { AdapterReport } from '../gpu/device';
import type { SelfTestResult } from '../gpu/selftest';
import type { Split, TaskName } from '../tasks/tasks';
import type { TimeEstimateReport, TimeMode } from '../mas/time-estimate';
export type { TimeEstimateReport, TimeMode } from '../mas/time-estimate';
import type { CompareRequest, EvalRow, ExperimentReport, InspectResult, ProbeReport, RunCheckpoint, RunConfig, RunProgress, RunTrainingState } from '../mas/run-types';
import type { AdapterData, AdapterEntry, ModelEntry, RunEntry, RunRecord } from '../storage/records';

// The run types live in src/mas, the library's records in src/storage; the worker's API re-exports them.
export * from '../mas/run-types';
export * from '../storage/records';

export type EnvReport =
  | { ok: true; report: AdapterReport; selfTest: SelfTestResult }
  | { ok: false; kind: 'no-webgpu' | 'error'; message: string };

/** A file crossing the worker boundary (import by picker or drop; export as a download). */
export interface FileBlob {
  name: string;
  bytes: Uint8Array;
}

export interface PretrainRequest {
  name: string;
  preset: string;
  steps: number;
  seed: number;
  batch: number;
  lr: number;
  /** The held-out evaluation that ends the pretraining (PretrainEvaluation; default: every task and
   * difficulty at 64 episodes); false skips it. */
  evaluation?: PretrainEvaluation | false;
}

/** Progress callbacks are comlink proxies (comlink.proxy(fn)). */
export interface EngineApi {
  /** Acquires the GPU (once) and runs the self-test. Never throws: failures are in the report. */
  init(): Promise<EnvReport>;

  // ---- library (IndexedDB; the built-in toy model is seeded on first use)
  listModels(): Promise<ModelEntry[]>;
  listAdapters(): Promise<AdapterEntry[]>;
  renameModel(id: string, name: string): Promise<void>;
  renameAdapter(id: string, name: string): Promise<void>;
  deleteModel(id: string): Promise<void>;
  deleteAdapter(id: string): Promise<void>;
  /** A base model as one zip of Hugging Face files (config.json, model.safetensors, tokenizer.json). */
  exportModel(id: string): Promise<FileBlob>;
  /** An adapter as one zip of PEFT files (adapter_config.json, adapter_model.safetensors). */
  exportAdapter(id: string): Promise<FileBlob>;
  /**
   * Imports a zip or loose files of a checkpoint, an adapter, or a run bundle (the page's exported run
   * zip or an `experiment --export-run` folder: stored as a run record, its base found by its weights
   * or stored with it); throws a clear message and stores nothing when they do not fit.
   */
  importFiles(
    files: FileBlob[], adapterBaseModelId?: string, onProgress?: (stage: string, fraction: number) => void,
  ): Promise<{ kind: 'model' | 'adapter' | 'run'; id: string; name: string; note?: string }>;
  storageEstimate(): Promise<{ usage: number | null; quota: number | null; persisted: boolean | null }>;
  /** Pretrains a new toy base model and stores it. */
  pretrain(req: PretrainRequest, onProgress: (p: RunProgress) => void): Promise<ModelEntry>;

  // ---- one multi-agent run
  startRun(config: RunConfig, onProgress: (p: RunProgress) => void): Promise<void>;
  pauseRun(): Promise<void>;
  resumeRun(): Promise<void>;
  /** One training step while paused (or before starting). */
  stepRun(): Promise<void>;
  stopRun(): Promise<void>;
  /** Drops the run's adapters and state; the next start begins from the seed again. */
  resetRun(): Promise<void>;
  evaluate(splits: Split[]): Promise<EvalRow[]>;
  inspect(split: Split, index: number): Promise<InspectResult>;
  /** Stores the run's trained adapters (one per agent with its own adapter, or the shared one). */
  saveAdapters(name: string): Promise<AdapterEntry[]>;

  // ---- several methods and seeds, as the command-line experiment
  compare(req: CompareRequest, onProgress: (message: string, fraction: number) => void): Promise<ExperimentReport>;
}

// ---- additions made with the page (additive: nothing above changed)

/** Options of EngineApi.startRun. */
export interface StartOptions {
  /** Build the run and wait paused before its first step (the page's single-step button). */
  paused?: boolean;
}

/** Engine calls the page uses beyond EngineApi (implemented by src/worker/engine.ts). */
export interface EngineApiExtras {
  /** startRun with options (a paused start for stepping). */
  startRun(config: RunConfig, onProgress: (p: RunProgress) => void, options?: StartOptions): Promise<void>;
  /** Ends a pretraining after its current step; the weights so far are stored. */
  cancelPretrain(): Promise<void>;
  /** Problems met while adding the shipped base models to the library (empty when all is well). */
  libraryNotes(): Promise<string[]>;
  /**
   * What a run of this configuration would hold on the GPU (weights, adapters with their gradients and
   * AdamW moments, activations at its batch) and, when it cannot run on this adapter, why (its largest
   * buffer beyond what the device can bind). Nothing is allocated. Imports, to include it.
   */
  estimateRun(config: RunConfig): Promise<RunMemoryReport>;
  /**
   * How long Train ('run': the first method, first seed) or Compare ('compare': every method and seed,
   * both splits and the controls) of this setup would take: one training step and one evaluation
   * batch per method are timed on this device (src/mas/time-estimate.ts); the report has the warning
   * past 30 minutes. Refused while a run, pretraining or comparison holds the GPU.
   */
  estimateTime(req: CompareRequest, mode: TimeMode): Promise<TimeEstimateReport>;
  /**
   * Linear probes from the current run's received K/V (each latent position, layer, K and V) to each
   * part of the senders' content, fitted on train-split episodes and scored on heldout (src/mas/probe.ts);
   * latent methods only. trainEpisodes: default 512.
   */
  probeRun(trainEpisodes?: number): Promise<ProbeReport>;
  /** Rebuilds an unreadable library index from the stored records (the old index is kept as a backup). */
  rebuildLibraryIndex(): Promise<{ models: number; adapters: number; skipped: string[]; backup: string | null }>;
}

/** EngineApiExtras.estimateRun: src/mas/memory.ts's figures and the refusal, if any. */
export interface RunMemoryReport {
  weights: number;
  adapters: number;
  activations: number;
  total: number;
  largest: { label: string; bytes: number };
  /** The device's limit on one buffer (min of maxBufferSize and maxStorageBufferBindingSize). */
  bufferLimit: number;
  /** Why this run cannot start here (null: it fits). */
  problem: string | null;
}

/** What the worker exposes. */
export type PageEngineApi = EngineApi & EngineApiExtras & EngineRunRecords;

// ---- runs as records (issue 11): what a run measured outlives the tab

/** Engine calls for run records, reopened adapters and the run bundle. */
export interface EngineRunRecords {
  listRuns(): Promise<RunEntry[]>;
  saveRun(record: RunRecord): Promise<RunEntry>;
  runRecord(id: string): Promise<RunRecord>;
  deleteRun(id: string): Promise<void>;
  /** The current run's adapters now (the initial ones before the first step). */
  runAdapters(): Promise<AdapterData[]>;
  /** Inspects an example of the current run with other adapter weights (its initial ones: the before-training view). */
  inspectWith(adapters: AdapterData[], split: Split, index: number): Promise<InspectResult>;
  /** A saved adapter set, decoded for its base (to load it into a run). */
  adapterSet(ids: string[]): Promise<AdapterData[]>;
  /** Loads adapters into the current run (paused or before its first step). */
  loadRunAdapters(adapters: AdapterData[]): Promise<void>;
  /** The current run's adapters and training state (AdamW's step and moments, the losses), read together between two steps. */
  runCheckpoint(): Promise<RunCheckpoint>;
  /** Puts a stored run's adapters and training state into the current, freshly started run, which then continues it exactly. */
  continueRun(adapters: AdapterData[], state: RunTrainingState, fuser?: Map<string, Float32Array> | null): Promise<void>;
  /** The run bundle of a stored run (docs/run-bundle.md), as files with '/' in their names. */
  runBundle(id: string): Promise<FileBlob[]>;
}

/** The base-model evaluation stored under `evaluation` in training_args.json (src/mas/base-eval.ts). */
export type { BaseEvalRow, BaseEvaluation, BaseEvaluationFailure } from '../mas/base-eval';

/** Settings of the evaluation that ends a pretraining in the worker (src/mas/base-eval.ts options). */
export interface PretrainEvaluation {
  /** Episodes per task, difficulty and split. */
  evalSize: number;
  tasks?: TaskName[];
  difficulties?: number[];
  textBudget?: number | 'auto';
  seed?: number;
}
