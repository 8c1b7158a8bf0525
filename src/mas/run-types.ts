// The engine's run types: what one multi-agent run is (RunConfig), what it streams (RunProgress) and
// measures (EvalRow, InspectResult), and the comparison's request and report (the format
// `experiment --json` writes). src/mas owns them; src/worker/api.ts re-exports them for the page,
// the CLI and tests. Plain data only (structured clone).
import type { Proj } from '../model/config';
import type { Split, TaskName } from '../tasks/tasks';
import type { Topology } from './topology';
import type { TrainedAdapter } from './types';
import type { BitsReport, ProbeReport } from './measure-types';

export type { BitsReport, ProbeReport } from './measure-types';
import type { ReportBounds } from './bounds';
import type { PairedComparison } from './paired';
import type { Modes } from './stats';

/** Every communication mode of shared/DESIGN.md section 1 (issue 4). */
export const METHODS = [
  'single', 'skyline', 'single-trained', 'skyline-trained', 'text', 'text-trained', 'latentmas', 'latentmas-full', 'diffmas', 'diffmas-full', 'diffmas-detached', 'c2c',
] as const;
export type MethodName = (typeof METHODS)[number];

/** Methods that train adapters. */
export const TRAINED_METHODS: readonly MethodName[] = ['single-trained', 'skyline-trained', 'text-trained', 'diffmas', 'diffmas-full', 'diffmas-detached', 'c2c'];
/** Whether a method trains adapters (the others evaluate the base model as it is). */
export const isTrainedMethod = (m: MethodName) => TRAINED_METHODS.includes(m);

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
  /** Token budget of a text message (text method; text-trained writes exactly this many tokens). */
  textBudget: number;
  /** Temperature tau of text-trained's straight-through softmax (optional, default 1): the backward of each
   * message token is that of softmax(logits / tau); the forward writes the greedy token whatever tau. */
  textTemperature?: number;
  /** Learning-rate schedule after the linear warmup (optional, src/model/train.ts lrAt): 'cosine' (default)
   * decays to lr / 10 at the last step, 'constant' holds lr. */
  lrSchedule?: 'cosine' | 'constant';
  /** A learned input offset per latent slot (optional, default false; src/mas/slot-offset.ts): latent step k
   * of a sender feeds back e_k + o_k, with o_k a trained vector of the sender's adapter (zero at the start). */
  latentSlotOffset?: boolean;
  /** The pretraining quiz as the training loss (optional, default false; src/mas/quiz.ts; lookup and trained
   * latent methods only): each training episode's senders run once and the receiver answers every key of
   * the table reading that one message; the loss is the mean answer cross-entropy over all those queries.
   * The episodes drawn and the evaluation (one query per episode) are unchanged. */
  quizLoss?: boolean;
  /** A curriculum (optional; src/mas/curriculum.ts; trained methods only): training batches come from
   * difficulty curriculumFrom, then each next one up to the run's difficulty, the steps split evenly over
   * the stages (the first stages take one more where they do not divide); evaluation is at the run's
   * difficulty. Must be below the run's difficulty. */
  curriculumFrom?: number;
  /** Evaluate on held-out every N steps during training (0: only at the end). */
  evalEvery: number;
  /** Episodes per evaluation (fewer when a split holds fewer distinct episodes: each is evaluated once). */
  evalSize: number;
  /** Seed of the evaluation sets (optional, default DEFAULT_EVAL_SEED of src/tasks/tasks.ts), apart from the
   * run seed so that every method and seed of an experiment is evaluated on the same episodes. */
  evalSeed?: number;
  /** RoPE positions of the agents (optional, src/mas rollout.ts): 'stream' (default) puts each agent's
   * prompt and latent steps after the previous agent's, so a receiver continues after every position it
   * reads; 'prefix' starts each agent at its prefix length. */
  positions?: 'stream' | 'prefix';
  /** How the task's episodes become text (optional, src/tasks/render.ts): 'char', the compact format of the
   * shipped character-level toys, 'word', plain words for a real model's vocabulary, or 'chat', the word
   * text through the model's chat template (src/tasks/chat-render.ts; refused without one). Default: 'char'
   * for a character tokenizer, 'word' for a tokenizer.json. */
  rendering?: 'char' | 'word' | 'chat';
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
  /** The training step of the weights it was taken with (set by the run controller, between two steps; absent from older records). */
  step?: number;
}

export interface ExperimentRowSummary {
  method: MethodName;
  split: Split;
  seeds: number;
  accuracyMean: number;
  /** Half-width of the 95% interval over seeds (t distribution). */
  accuracyCi: number;
  /** 95% interval of the bootstrap over seeds x episodes (src/mas/stats.ts; seeds only for a report
   * without per-episode outcomes); null below MIN_SEEDS seeds (optional: older reports lack it). */
  accuracyLo?: number | null;
  accuracyHi?: number | null;
  /** What the interval resamples: 'episodes' (seeds x episodes) or 'seeds' (per-seed accuracies only). */
  basis?: 'episodes' | 'seeds';
  /** Where the seeds split into modes: k of n seeds reach at least `at` (then no mean +- interval is shown). */
  modes?: Modes | null;
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
 * 'rotate' (latent only) turns the received K/V by a random rotation per head; 'permute' (latent only)
 * reorders each sender's latent positions by a seeded derangement, each key turned to its new slot's
 * RoPE angles (controls.ts).
 */
export const CONTROL_NAMES = ['shuffle', 'zero', 'noise', 'rotate', 'permute'] as const;
export type ControlName = (typeof CONTROL_NAMES)[number];

export interface ExperimentReport {
  args: Record<string, unknown>;
  /** outcomes (optional): '1'/'0' per episode, correct or not, aligned with episodes[split]. */
  rows: (EvalRow & { seed: number; trainSeconds: number; outcomes?: string })[];
  /** outcomes (optional): per episode of episodes.heldout under the control. */
  controls: { method: MethodName; seed: number; control: ControlName; accuracy: number; outcomes?: string }[];
  /** The canonical key of every evaluation episode per split, in evaluation order: one set for every
   * method and seed, which the rows' outcomes follow (optional: older reports lack it). */
  episodes?: Partial<Record<Split, string[]>>;
  /** Paired differences with bootstrap intervals, and each control against its method's own episodes (src/mas/paired.ts). */
  paired?: PairedComparison[];
  /** What a message of the run's budget could carry: ceilings and floors (src/mas/bounds.ts). */
  bounds?: ReportBounds;
  summary: ExperimentRowSummary[];
  /** Plain-language findings (ordering, controls collapsing to chance or not). */
  findings: string[];
  /** Training loss per step of every trained run (optional, src/mas). */
  curves?: { method: MethodName; seed: number; losses: number[] }[];
  /** Chance accuracy of the final agent alone, per split (optional, src/mas). */
  chance?: Partial<Record<Split, number>>;
  /** Linear probes of the received K/V per latent method and seed (--probe; src/mas/measures.ts). */
  probes?: ProbeReport[];
  /** Accuracy with the received K/V quantised to k bits per float per latent method and seed (--bits; src/mas/measures.ts). */
  bits?: BitsReport[];
}

export interface CompareRequest {
  base: Omit<RunConfig, 'method' | 'seed'>;
  methods: MethodName[];
  seeds: number[];
}


/**
 * A run's training state at a step, to continue it exactly (the adapters go apart): AdamW's step
 * count and both moments of every trained tensor, in the optimizer's parameter order, and the loss of
 * every step so far. The page keeps it in the run record (src/storage/records.ts).
 */
export interface RunTrainingState {
  step: number;
  names: string[];
  m: Float32Array[];
  v: Float32Array[];
  losses: number[];
}

/** A run's adapters and training state at one step (null training: the method trains nothing). */
export interface RunCheckpoint {
  step: number;
  adapters: TrainedAdapter[];
  training: RunTrainingState | null;
  /** Method c2c: the Cache-to-Cache fuser at that step (src/mas/c2c-fuser.ts; it trains instead of adapters). */
  fuser?: Map<string, Float32Array> | null;
}
