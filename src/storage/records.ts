// The library's records as plain data: base models, adapters and runs (issue 11: what a run measured
// outlives the tab). src/storage/library.ts stores them; src/worker/api.ts re-exports them.
import type { LoraAdapterConfig } from './peft';
import type { SlotOffsetData } from './slot-offset';
import type { CompareRequest, EvalRow, ExperimentReport, InspectResult, MethodName, RunConfig, RunTrainingState } from '../mas/run-types';
import type { TaskName } from '../tasks/tasks';

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
  /** false when the checkpoint has no tokenizer.json (set at import): it runs on token ids only, not on the tasks. */
  tokenizer?: false;
  /** true when its tokenizer_config.json has a chat template (set when saved): the page offers the chat rendering. */
  chatTemplate?: true;
  /** The model's identity (optional): "model:" and a SHA-256 over config.json, the tokenizer files and the weights as stored (src/worker/engine.ts); a re-import of the same model is recognised, and older weights-only digests are re-hashed when compared. */
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
  config: LoraAdapterConfig;
  tensors: Map<string, Float32Array>;
  /** Learned latent slot offsets (config.latentSlotOffset; slot-offset.ts), when the run trains them. */
  slotOffset?: SlotOffsetData;
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
    /** At the last save that read them (the end, a pause, and every 30 s while it trains): at finalStep. */
    final: AdapterData[];
    finalStep: number | null;
    /** The training state at finalStep (AdamW's moments, the losses): with `final`, what continuing the run exactly needs. Older records have none. */
    training?: RunTrainingState | null;
    /** Method c2c: its Cache-to-Cache fuser at finalStep (src/mas/c2c-fuser.ts), which trains instead of adapters. */
    fuser?: Map<string, Float32Array> | null;
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
  /** The researcher's notes on the run (optional; src/storage/runs-table.ts checks them where a record is read back). */
  notes?: string;
  /** Single-word tags (optional, at most MAX_TAGS of src/storage/runs-table.ts). */
  tags?: string[];
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
  /** For a run stopped short of its steps whose record holds adapters and training state: the step it continues from (its last checkpoint). */
  continueStep?: number | null;
  /** The record's notes and tags (absent when it has none) and its base's name when the record kept it. */
  notes?: string;
  tags?: string[];
  baseName?: string;
}


/** Where the page's exported run zip keeps the record, beside the run bundle (src/ui/export.ts; read back by src/mas/run-import.ts). */
export const RECORD_FILE = 'results/record.json';

/** The record as JSON: typed arrays as lists, maps as objects, the adapters' tensors left to the bundle's PEFT folders. */
export function recordJson(rec: RunRecord): string {
  const slim = { ...rec, adapters: { ...rec.adapters, training: undefined, fuser: undefined, initial: rec.adapters.initial.map((a) => ({ agent: a.agent, config: a.config })), final: rec.adapters.final.map((a) => ({ agent: a.agent, config: a.config })) } };
  return JSON.stringify(slim, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v), 2) + '\n';
}

/** What a record says of its adapters: rank, alpha, targets, keys and trainable parameters. */
export function adapterInfo(list: AdapterData[]): RunRecord['adapters']['info'] {
  if (!list.length) return null;
  const c = list[0].config;
  let parameters = 0;
  for (const a of list) for (const t of a.tensors.values()) parameters += t.length;
  return { r: c.r, alpha: c.lora_alpha, targets: [...c.target_modules], keys: list.map((a) => a.agent), parameters };
}
