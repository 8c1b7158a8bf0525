// What a base model can do on its own, measured once after pretraining (issue 9): for every task and
// difficulty, held-out accuracy of the skyline (one context holds every part) and of the text channel
// with the model's own messages (senders decode greedily, the receiver reads them), with answer
// validity, episodes and a binomial 95% interval; the skyline also on ood. Built on Run (methods
// 'skyline' and 'text' over the task's preset topology), so these are the numbers an experiment on
// this base would report for the same evalSize and seed.
//
// The CLI's pretrain and the worker's pretrain call it after pretrainBase (src/model never imports
// src/mas) and store the result under `evaluation` in training_args.json; the library panel shows it.
// A cell that fails (an error of the task's pipeline) is kept as an error row and the others still
// run; a lost device ends the evaluation (every later cell would fail the same way).
import type { Gpu } from '../gpu/runtime';
import { DEFAULT_EVAL_SEED, MAX_DIFFICULTY, MIN_DIFFICULTY, PRETRAINED_TASK_NAMES, TASK_NAMES, makeTask, type Split, type TaskName } from '../tasks/tasks';
import type { EvalRowCi } from '../storage/records';
import type { EvalRow, RunConfig } from './run-types';
import { LIMITS } from './methods';
import { resolveTopology } from './presets';
import { MasEngine, Run, defaultRunConfig } from './run';
import { evalEpisodes } from './run-data';
import type { BaseModel } from './types';

export const BASE_EVAL_VERSION = 1;
export type BaseEvalMethod = 'skyline' | 'text';

/** One (task, difficulty, method, split) of the evaluation. */
export interface BaseEvalRow {
  task: TaskName;
  difficulty: number;
  method: BaseEvalMethod;
  split: Split;
  /** Episodes evaluated (0 when the cell failed). */
  episodes: number;
  /** Correct answers (accuracy = correct / episodes). */
  correct: number;
  /** null when the cell failed (JSON has no NaN). */
  accuracy: number | null;
  /** Wilson score 95% interval of the accuracy (null when the cell failed). */
  ci95: [number, number] | null;
  /** Fraction of answers in the task's answer format (null when the cell failed). */
  validity: number | null;
  /** Accuracy of the final agent alone from its own part. */
  chance: number;
  /** Text channel: token budget of a message and mean tokens sent per episode. */
  textBudget?: number;
  messageTokens?: number;
  seconds: number;
  /** Set when this cell failed; accuracy, ci95 and validity are then null. */
  error?: string;
}

/** Stored under `evaluation` in training_args.json. */
export interface BaseEvaluation {
  version: typeof BASE_EVAL_VERSION;
  tasks: TaskName[];
  difficulties: number[];
  /** Splits of each method. */
  splits: Record<BaseEvalMethod, Split[]>;
  /** Episodes per (task, difficulty, split); the same episodes for skyline and text. */
  evalSize: number;
  seed: number;
  /** Text message budget: a fixed number of tokens, or 'auto' (each cell's textBudget: longest ideal message + 1). */
  textBudget: number | 'auto';
  rows: BaseEvalRow[];
  seconds: number;
  /** The GPU adapter it ran on. */
  device: string;
  /** Set when the evaluation ended before every cell (a lost device, a stop). */
  incomplete?: string;
}

/** Stored under `evaluation` when the evaluation as a whole failed (the checkpoint is still written). */
export interface BaseEvaluationFailure {
  version: typeof BASE_EVAL_VERSION;
  error: string;
  seconds: number;
  device: string;
}

export interface BaseEvalOptions {
  /** Default every task. */
  tasks?: readonly TaskName[];
  /** Default 1..5. */
  difficulties?: readonly number[];
  /** Skyline splits (default heldout and ood). */
  splits?: readonly Split[];
  /** Text-channel splits (default heldout). */
  textSplits?: readonly Split[];
  /** Episodes per cell (default 256). */
  evalSize?: number;
  /** Tokens a sender may decode, or 'auto' (default): the longest ideal message of the cell's episodes plus its newline. */
  textBudget?: number | 'auto';
  /** Seed of the evaluation episodes, the runs' evalSeed (default DEFAULT_EVAL_SEED, an experiment's default too). */
  seed?: number;
  /** Sequences per GPU pass (default 32, at most evalSize). */
  batch?: number;
  /** After every cell: a message and the fraction done. */
  onProgress?: (message: string, fraction: number) => void;
  /** Polled between cells: true ends the evaluation (the rows so far are returned, marked incomplete). */
  shouldStop?: () => boolean;
}

export const DEFAULT_EVAL_SIZE = 256;

/** Wilson score interval at 95% for k successes out of n (well-behaved at 0 and n). */
export function wilson95(k: number, n: number): [number, number] {
  if (!(n > 0)) return [NaN, NaN];
  const z = 1.959963984540054;
  const p = k / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n))) / (1 + z2n);
  // at k = 0 (k = n) the bound is exactly 0 (1); rounding would leave 5e-17 there
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

/** Wilson 95% interval of each row's accuracy. */
export function withIntervals(rows: EvalRow[]): EvalRowCi[] {
  return rows.map((r) => ({ ...r, ci95: r.episodes > 0 ? wilson95(Math.round(r.accuracy * r.episodes), r.episodes) : null }));
}

export interface ResolvedBaseEvalOptions {
  tasks: TaskName[];
  difficulties: number[];
  splits: Split[];
  textSplits: Split[];
  evalSize: number;
  textBudget: number | 'auto';
  seed: number;
  batch: number;
}

/** The options with their defaults filled in; throws, naming the setting, on one that is out of range
 * (the CLI calls it before pretraining, so a typo does not cost a whole run). */
export function resolveBaseEvalOptions(o: BaseEvalOptions = {}): ResolvedBaseEvalOptions {
  // by default the tasks a base was pretrained on (index is asked for by name)
  const tasks = [...(o.tasks ?? PRETRAINED_TASK_NAMES)];
  for (const t of tasks) if (!TASK_NAMES.includes(t)) throw new Error(`base evaluation: unknown task ${JSON.stringify(t)} (known: ${TASK_NAMES.join(', ')})`);
  const difficulties = [...(o.difficulties ?? [1, 2, 3, 4, 5])];
  for (const d of difficulties) {
    if (!Number.isInteger(d) || d < MIN_DIFFICULTY || d > MAX_DIFFICULTY) throw new Error(`base evaluation: difficulty must be an integer in ${MIN_DIFFICULTY}..${MAX_DIFFICULTY}, got ${d}`);
  }
  const splits = [...(o.splits ?? ['heldout', 'ood'])];
  const textSplits = [...(o.textSplits ?? ['heldout'])];
  for (const s of [...splits, ...textSplits]) if (s !== 'heldout' && s !== 'ood') throw new Error(`base evaluation: split must be heldout or ood, got ${JSON.stringify(s)}`);
  if (!tasks.length || !difficulties.length || (!splits.length && !textSplits.length)) throw new Error('base evaluation: nothing to evaluate (no task, difficulty or split)');
  const evalSize = o.evalSize ?? DEFAULT_EVAL_SIZE;
  if (!Number.isInteger(evalSize) || evalSize < LIMITS.evalSize[0] || evalSize > LIMITS.evalSize[1]) {
    throw new Error(`base evaluation: evalSize must be an integer in ${LIMITS.evalSize[0]}..${LIMITS.evalSize[1]}, got ${evalSize}`);
  }
  const textBudget = o.textBudget ?? 'auto';
  if (textBudget !== 'auto' && (!Number.isInteger(textBudget) || textBudget < LIMITS.textBudget[0] || textBudget > LIMITS.textBudget[1])) {
    throw new Error(`base evaluation: textBudget must be 'auto' or an integer in ${LIMITS.textBudget[0]}..${LIMITS.textBudget[1]}, got ${textBudget}`);
  }
  const seed = o.seed ?? DEFAULT_EVAL_SEED;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`base evaluation: seed must be a non-negative integer, got ${seed}`);
  const batch = Math.min(o.batch ?? 32, evalSize);
  if (!Number.isInteger(batch) || batch < 1 || batch > LIMITS.batch[1]) throw new Error(`base evaluation: batch must be an integer in 1..${LIMITS.batch[1]}, got ${o.batch}`);
  return { tasks, difficulties, splits, textSplits, evalSize, textBudget, seed, batch };
}

/**
 * The budget 'auto' gives a cell: the longest ideal message over the episodes the text method will
 * read (Run's evaluation sets: same task, split, evalSize and seed), plus the newline that ends it.
 */
export function autoTextBudget(task: TaskName, difficulty: number, splits: readonly Split[], evalSize: number, seed: number): number {
  const t = makeTask(task, difficulty);
  let longest = 0;
  for (const s of splits) {
    for (const ep of evalEpisodes(t, { evalSize, evalSeed: seed }, s)) {
      for (const m of ep.messages) longest = Math.max(longest, m.length);
    }
  }
  return Math.min(LIMITS.textBudget[1], Math.max(LIMITS.textBudget[0], longest + 1));
}

function describe(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

/** Evaluates `base` on every (task, difficulty): the skyline on `splits`, the text channel on `textSplits`. */
export async function evaluateBase(gpu: Gpu, base: BaseModel, options: BaseEvalOptions = {}): Promise<BaseEvaluation> {
  const o = resolveBaseEvalOptions(options);
  const t0 = performance.now();
  const rows: BaseEvalRow[] = [];
  const out: BaseEvaluation = {
    version: BASE_EVAL_VERSION, tasks: o.tasks, difficulties: o.difficulties,
    splits: { skyline: o.splits, text: o.textSplits }, evalSize: o.evalSize, seed: o.seed, textBudget: o.textBudget,
    rows, seconds: 0, device: gpu.report.description || gpu.report.vendor || 'unknown',
  };
  const cells: { task: TaskName; difficulty: number; method: BaseEvalMethod; splits: Split[] }[] = [];
  for (const task of o.tasks) {
    for (const difficulty of o.difficulties) {
      if (o.splits.length) cells.push({ task, difficulty, method: 'skyline', splits: o.splits });
      if (o.textSplits.length) cells.push({ task, difficulty, method: 'text', splits: o.textSplits });
    }
  }
  const say = (m: string, f: number) => {
    try {
      options.onProgress?.(m, f);
    } catch {
      // progress is informational
    }
  };
  const engine = new MasEngine(gpu, base);
  try {
    for (let c = 0; c < cells.length; c++) {
      if (options.shouldStop?.()) {
        out.incomplete = `stopped after ${c} of ${cells.length} (task, difficulty, method) cells`;
        break;
      }
      const { task, difficulty, method, splits } = cells[c];
      const t = makeTask(task, difficulty);
      const textBudget = method === 'text' ? (o.textBudget === 'auto' ? autoTextBudget(task, difficulty, splits, o.evalSize, o.seed) : o.textBudget) : undefined;
      say(`evaluating ${task} d${difficulty} ${method} (${c + 1}/${cells.length})`, c / cells.length);
      let run: Run | null = null;
      let failed: string | null = null;
      try {
        const config: RunConfig = defaultRunConfig({
          topology: resolveTopology('preset', t, 0), task, difficulty, method, modelId: base.id,
          steps: 0, batch: o.batch, seed: o.seed, evalSeed: o.seed, evalEvery: 0, evalSize: o.evalSize, textBudget: textBudget ?? 8,
          // the pretraining corpus is in the char format whatever the tokenizer (pretrain --init-from a real model)
          rendering: 'char',
        });
        run = new Run(engine, config);
        for (const split of splits) {
          const s0 = performance.now();
          const r = await run.evaluate(split);
          const correct = r.correct.filter(Boolean).length;
          rows.push({
            task, difficulty, method, split, episodes: r.episodes, correct, accuracy: r.accuracy, ci95: wilson95(correct, r.episodes),
            validity: r.validity, chance: t.chanceFor(split), ...(method === 'text' ? { textBudget, messageTokens: r.messageTokens } : {}),
            seconds: (performance.now() - s0) / 1000,
          });
        }
      } catch (e) {
        failed = describe(e);
      } finally {
        try {
          run?.destroy();
        } catch {
          // a run on a lost device may fail to free
        }
      }
      if (failed !== null) {
        for (const split of splits) {
          if (rows.some((r) => r.task === task && r.difficulty === difficulty && r.method === method && r.split === split)) continue;
          rows.push({
            task, difficulty, method, split, episodes: 0, correct: 0, accuracy: null, ci95: null, validity: null,
            chance: t.chanceFor(split), ...(textBudget !== undefined ? { textBudget } : {}), seconds: 0, error: failed,
          });
        }
        if (gpu.lost) {
          out.incomplete = `the GPU device was lost at ${task} d${difficulty} ${method}: ${failed}`;
          break;
        }
      }
    }
  } finally {
    engine.destroy();
    out.seconds = (performance.now() - t0) / 1000;
  }
  say('evaluation done', 1);
  return out;
}

// ---------------------------------------------------------------- text output

const fx = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/**
 * The evaluation as a fixed-width table: one line per (task, difficulty), one column group per
 * (method, split): accuracy [95% interval] and validity. Failed cells say 'error' (listed below the table).
 */
/** Episodes per split of one cell ("38/256"): a split with fewer distinct episodes than evalSize evaluates each once. */
function episodeCounts(rows: readonly BaseEvalRow[]): string {
  const of = (split: Split) => Math.max(0, ...rows.filter((r) => r.split === split).map((r) => r.episodes));
  const counts = (['heldout', 'ood'] as const).map(of).filter((n) => n > 0);
  return counts.length ? counts.join('/') : '0';
}

export function formatBaseEvaluation(ev: BaseEvaluation): string {
  const groups: [BaseEvalMethod, Split][] = [
    ...ev.splits.skyline.map((s) => ['skyline', s] as [BaseEvalMethod, Split]),
    ...ev.splits.text.map((s) => ['text', s] as [BaseEvalMethod, Split]),
  ];
  const head = ['task', 'd', 'chance', ...groups.flatMap(([m, s]) => [`${m} ${s} (95% CI)`, 'valid']), 'budget', 'msg tok', 'n (heldout/ood)'];
  const lines: string[][] = [];
  const errors: string[] = [];
  for (const task of ev.tasks) {
    for (const d of ev.difficulties) {
      const at = (m: BaseEvalMethod, s: Split) => ev.rows.find((r) => r.task === task && r.difficulty === d && r.method === m && r.split === s);
      const any = groups.map(([m, s]) => at(m, s)).filter((r): r is BaseEvalRow => !!r);
      if (!any.length) continue;
      const cells = groups.flatMap(([m, s]) => {
        const r = at(m, s);
        if (!r) return ['-', '-'];
        if (r.error !== undefined || r.accuracy === null || !r.ci95) return ['error', '-'];
        return [`${fx(r.accuracy)} [${fx(r.ci95[0])}, ${fx(r.ci95[1])}]`, fx(r.validity ?? NaN, 2)];
      });
      const text = any.find((r) => r.method === 'text' && r.error === undefined);
      const budget = any.find((r) => r.textBudget !== undefined)?.textBudget;
      const heldout = any.find((r) => r.split === 'heldout') ?? any[0];
      lines.push([
        task, String(d), fx(heldout.chance), ...cells, budget !== undefined ? String(budget) : '-',
        text?.messageTokens !== undefined ? fx(text.messageTokens, 1) : '-', episodeCounts(any),
      ]);
      for (const r of any) if (r.error !== undefined) errors.push(`${task} d${d} ${r.method} ${r.split}: ${r.error}`);
    }
  }
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const row = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
  const budget = ev.textBudget === 'auto' ? 'auto (longest message + 1)' : `${ev.textBudget} tokens`;
  const out = [
    `held-out evaluation of the base: ${ev.evalSize} episodes per cell, seed ${ev.seed}, text budget ${budget}, ${fx(ev.seconds, 1)} s on ${ev.device}`,
    row(head),
    w.map((n) => '-'.repeat(n)).join('  '),
    ...lines.map(row),
  ];
  if (errors.length) out.push('', `${errors.length} cell(s) failed:`, ...errors.map((e) => `  ${e}`));
  if (ev.incomplete) out.push('', `incomplete: ${ev.incomplete}`);
  return out.join('\n');
}

/**
 * evaluateBase that never throws: a failure of the whole evaluation (a bad option, a model that does
 * not fit the engine) comes back as a BaseEvaluationFailure with the message, so the caller can still
 * store the checkpoint and report it.
 */
export async function evaluateBaseOrError(gpu: Gpu, base: BaseModel, options: BaseEvalOptions = {}): Promise<BaseEvaluation | BaseEvaluationFailure> {
  const t0 = performance.now();
  try {
    return await evaluateBase(gpu, base, options);
  } catch (e) {
    return { version: BASE_EVAL_VERSION, error: describe(e), seconds: (performance.now() - t0) / 1000, device: gpu.report.description || gpu.report.vendor || 'unknown' };
  }
}

/** How many cells failed (the CLI says so and the library marks them). */
export function failedCells(ev: BaseEvaluation): number {
  return ev.rows.filter((r) => r.error !== undefined).length;
}
