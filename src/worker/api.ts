// The engine worker's API, shared by the worker (src/worker/engine.worker.ts), the page
// (src/ui/engine.ts), the CLI and tests. Only plain data crosses this boundary (structured clone;
// large arrays as transferables): the UI never sees a GPUBuffer.
import type { AdapterReport } from '../gpu/device';
import type { SelfTestResult } from '../gpu/selftest';
import type { Topology } from '../mas/topology';
import type { TaskName, Split } from '../tasks/tasks';
import type { Proj } from '../model/config';

export type EnvReport =
  | { ok: true; report: AdapterReport; selfTest: SelfTestResult }
  | { ok: false; kind: 'no-webgpu' | 'error'; message: string };

/** Every communication mode of shared/DESIGN.md section 1 (issue 4). */
export const METHODS = [
  'single', 'skyline', 'text', 'latentmas', 'latentmas-full', 'diffmas', 'diffmas-full', 'diffmas-detached',
] as const;
export type MethodName = (typeof METHODS)[number];

/** Methods that train adapters. */
export const TRAINED_METHODS: readonly MethodName[] = ['diffmas', 'diffmas-full', 'diffmas-detached'];

/** One multi-agent run: everything that decides its numbers (it fits in the URL hash). */
export interface RunConfig {
  task: TaskName;
  /** 1..5 */
  difficulty: number;
  topology: Topology;
  method: MethodName;
  /** Library id of the frozen base model (e.g. 'builtin:toy'). */
  modelId: string;
  lora: { r: number; alpha: number; targets: Proj[] };
  lr: number;
  steps: number;
  batch: number;
  seed: number;
  /** Latent map for latentmas/diffmas: the ridge map W_a back to input space, or identity. */
  latentMap: 'ridge' | 'identity';
  /** Token budget of a text message (text method). */
  textBudget: number;
  /** Evaluate on held-out every N steps during training (0: only at the end). */
  evalEvery: number;
  /** Episodes per evaluation. */
  evalSize: number;
  /** RoPE positions of the agents (optional, src/mas rollout.ts): 'stream' (default) puts each agent's
   * prompt and latent steps after the previous agent's, so a receiver continues after every position it
   * reads; 'prefix' starts each agent at its prefix length. */
  positions?: 'stream' | 'prefix';
}

export type RunState = 'idle' | 'running' | 'paused' | 'done' | 'stopped' | 'error';

/** Streamed to the page after every step (and after every evaluation). */
export interface RunProgress {
  state: RunState;
  step: number;
  totalSteps: number;
  /** Training loss of this step (NaN before the first). */
  loss: number;
  /** Latest held-out loss and accuracy (null until the first evaluation). */
  heldoutLoss: number | null;
  heldoutAccuracy: number | null;
  /** The step at which heldoutLoss and heldoutAccuracy were measured (optional: null or absent until the first evaluation). */
  heldoutStep?: number | null;
  tokensPerSecond: number;
  stepsPerSecond: number;
  elapsedSeconds: number;
  /** Set with state 'error' (a lost device, a diverging run, ...), or a notice. */
  message?: string;
}

export interface EvalRow {
  method: MethodName;
  split: Split;
  accuracy: number;
  /** Fraction of answers in the task's answer format. */
  validity: number;
  /** Entropy (nats) of the distribution of answers given: our operational decoding stability. */
  entropy: number;
  episodes: number;
  /** Size of what crosses between agents per episode. */
  messageFloats: number;
  messageTokens: number;
  /** Positions that cross per episode: latent K/V positions read by receivers, or text tokens (optional, src/mas). */
  messagePositions?: number;
  /** Teacher-forced cross-entropy per answer token (optional, src/mas). */
  loss?: number;
}

/** One sender position a receiver can attend over. */
export interface SenderPosition {
  agent: string;
  /** 'prompt': a token of the sender's own input (full-trace variants); 'latent': a latent step. */
  kind: 'prompt' | 'latent';
  /** Display label: the token's text, or 'z1', 'z2', ... for latent steps. */
  label: string;
}

/** What a receiver read from its predecessors, for the latent-message heatmap. */
export interface EdgeInspection {
  receiver: string;
  senders: string[];
  layers: number;
  heads: number;
  senderPositions: SenderPosition[];
  /** The receiver's own tokens (query rows). */
  receiverTokens: string[];
  /** Attention probability of each receiver query over each sender position:
   * [layers, heads, receiverTokens.length, senderPositions.length], row-major. */
  attention: Float32Array;
  /** L2 norms per layer and sender position: [layers, senderPositions.length]. */
  keyNorms: Float32Array;
  valueNorms: Float32Array;
}

export interface AgentInspection {
  id: string;
  name: string;
  /** The agent's own input text (its prompt). */
  input: string;
  /** What it produced: decoded text (text method / final answer) or a description of its latent steps. */
  output: string;
}

export interface InspectResult {
  split: Split;
  index: number;
  parts: string[];
  answer: string;
  predicted: string;
  correct: boolean;
  agents: AgentInspection[];
  edges: EdgeInspection[];
}

export interface ModelEntry {
  id: string;
  name: string;
  /** Bytes of the stored files. */
  size: number;
  createdAt: number;
  builtin: boolean;
  /** The Hugging Face config.json content. */
  config: Record<string, unknown>;
  /** How it was made (preset, steps, seed), when known. */
  provenance?: Record<string, unknown>;
  /** SHA-256 of the stored model.safetensors (optional): a re-import of the same weights is recognised. */
  digest?: string;
}

export interface AdapterEntry {
  id: string;
  name: string;
  size: number;
  createdAt: number;
  /** Library id of the base model it belongs to. */
  baseModelId: string;
  /** The agent it was trained for and the run configuration it came from. */
  agent: string;
  runConfig: RunConfig | null;
  /** The PEFT adapter_config.json content. */
  config: Record<string, unknown>;
  /** Adapters saved together from one run share it (optional: older entries have none). */
  setId?: string;
  /** SHA-256 of the stored adapter_model.safetensors (optional): a re-import of the same weights is recognised. */
  digest?: string;
}

export interface ExperimentRowSummary {
  method: MethodName;
  split: Split;
  seeds: number;
  accuracyMean: number;
  /** Half-width of the 95% interval over seeds (t distribution). */
  accuracyCi: number;
  validity: number;
  entropy: number;
  messageFloats: number;
  messageTokens: number;
  trainSeconds: number;
}

/**
 * The evaluation controls (src/mas/run.ts, src/mas/controls.ts): 'shuffle' pairs every receiver with
 * another episode's senders; 'zero' zeroes every received K/V prefix (text: empties every message);
 * 'noise' (latent only) replaces it by Gaussian noise of its own per-layer mean and covariance;
 * 'rotate' (latent only) turns the received K/V by a random rotation per head.
 */
export const CONTROL_NAMES = ['shuffle', 'zero', 'noise', 'rotate'] as const;
export type ControlName = (typeof CONTROL_NAMES)[number];

export interface ExperimentReport {
  args: Record<string, unknown>;
  rows: (EvalRow & { seed: number; trainSeconds: number })[];
  controls: { method: MethodName; seed: number; control: ControlName; accuracy: number }[];
  summary: ExperimentRowSummary[];
  /** Plain-language findings (ordering, controls collapsing to chance or not). */
  findings: string[];
  /** Training loss per step of every trained run (optional, src/mas). */
  curves?: { method: MethodName; seed: number; losses: number[] }[];
  /** Chance accuracy of the final agent alone, per split (optional, src/mas). */
  chance?: Partial<Record<Split, number>>;
}

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

export interface CompareRequest {
  base: Omit<RunConfig, 'method' | 'seed'>;
  methods: MethodName[];
  seeds: number[];
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
  /** Imports a zip or loose files of a checkpoint or an adapter; throws a clear message and stores nothing when they do not fit. */
  importFiles(files: FileBlob[], adapterBaseModelId?: string): Promise<{ kind: 'model' | 'adapter'; id: string; name: string }>;
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
  /** Rebuilds an unreadable library index from the stored records (the old index is kept as a backup). */
  rebuildLibraryIndex(): Promise<{ models: number; adapters: number; skipped: string[]; backup: string | null }>;
}

/** What the worker exposes. */
export type PageEngineApi = EngineApi & EngineApiExtras & EngineRunRecords;

// ---- runs as records (issue 11): what a run measured outlives the tab

/** A held-out evaluation during training: only at the steps where one was made. */
export interface EvalPoint {
  step: number;
  loss: number | null;
  accuracy: number | null;
}

/** The full curves of a run (never thinned: charts thin only what they draw). */
export interface RunCurves {
  steps: number[];
  loss: number[];
  evals: EvalPoint[];
}

/** An evaluation row with its Wilson 95% interval over episodes. */
export type EvalRowCi = EvalRow & { ci95: [number, number] | null };

/** One latent-message inspection: with the initial adapters ('before') or those of step `step` ('after'). */
export interface StoredInspection {
  which: 'before' | 'after';
  step: number;
  result: InspectResult;
}

/** A LoRA adapter as data (PEFT config and tensors by PEFT key): src/mas/types.ts TrainedAdapter. */
export interface AdapterData {
  agent: string;
  config: import('../storage/peft').LoraAdapterConfig;
  tensors: Map<string, Float32Array>;
}

export type RunRecordStatus = 'running' | 'paused' | 'done' | 'stopped' | 'error' | 'interrupted';

/** One run (training, evaluation-only, or a comparison) as stored: at the end, and at intervals while it runs. */
export interface RunRecord {
  id: string;
  kind: 'run' | 'compare';
  name: string;
  createdAt: number;
  updatedAt: number;
  status: RunRecordStatus;
  /** The run's configuration (kind 'run'), or the comparison's shared part with its first method and seed (kind 'compare'). */
  config: RunConfig;
  baseModelId: string;
  baseName?: string;
  curves: RunCurves;
  /** 'Evaluate all splits' (or the comparison's summary rows are in `compare`). */
  evalRows: EvalRowCi[] | null;
  /** Inspections taken, the latest per (which, split, example). */
  inspections: StoredInspection[];
  adapters: {
    /** At step 0 (or as loaded, when the run continues a saved set). */
    initial: AdapterData[];
    /** At the last save that read them (the end, a pause). */
    final: AdapterData[];
    finalStep: number | null;
    /** Library adapters saved from this run. */
    saved: { id: string; name: string }[];
    info: { r: number; alpha: number; targets: string[]; keys: string[]; parameters: number } | null;
  };
  /** The adapter set this run started from (reopened from the library), if any. */
  loadedFrom?: { name: string; ids: string[] };
  /** Seconds from start to the last save. */
  wallSeconds: number;
  /** Seconds spent in training steps. */
  trainSeconds: number;
  stepsDone: number;
  message?: string;
  device?: string;
  /** kind 'compare': the request and the report (the format `experiment --json` writes). */
  compare?: { request: CompareRequest; report: ExperimentReport | null };
}

/** A run's line in the Runs list. */
export interface RunEntry {
  id: string;
  kind: 'run' | 'compare';
  name: string;
  createdAt: number;
  updatedAt: number;
  status: RunRecordStatus;
  task: TaskName;
  difficulty: number;
  method: MethodName;
  methods?: MethodName[];
  seeds?: number[];
  baseModelId: string;
  seed: number;
  stepsDone: number;
  totalSteps: number;
  heldoutAccuracy: number | null;
  size: number;
}

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
