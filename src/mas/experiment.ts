// The experiment runner (an ExperimentRunner, src/mas/types.ts): every method of a CompareRequest
// over every seed, on one held-out and one OOD set (the request's evalSeed, shared by every method and seed); trains what needs training; measures
// accuracy, answer-format validity, answer entropy, message size and training time; runs the
// controls for every method that sends messages (messages shuffled across the batch, traces zeroed,
// and for the latent channel traces replaced by Gaussian noise of their own statistics and received
// K/V rotated per head: run.ts, controls.ts);
// keeps every episode's outcome (correct or not), so methods pair per episode; summarises over seeds
// (mean, a bootstrap interval over seeds and episodes, or the seeds' modes: stats.ts), compares pairs
// and controls paired (paired.ts), sets the budget's bounds beside them (bounds.ts), and states its
// findings in words. Used by the CLI
// (src/cli/experiment.ts) and the worker's compare().
import type { Gpu } from '../gpu/runtime';
import { DEFAULT_EVAL_SEED, makeTask, type Split } from '../tasks/tasks';
import {
  CONTROL_NAMES, METHODS, type CompareRequest, type ControlName, type ExperimentReport, type ExperimentRowSummary, type MethodName,
  type RunConfig,
} from './run-types';
import type { BaseModel, ExperimentRunner, TrainedAdapter } from './types';
import type { FuserWeights } from './c2c-fuser';
import { controlsFor, MasEngine, Run } from './run';
import { methodSpec } from './methods';
import { toEvalRow } from './controller';
import { DivergenceWatch } from '../model/divergence';
import { hasMeasures, measureInto, type MeasureOptions } from './measures';
import { formatAccuracy, formatDifference, MIN_SEEDS, outcomeString } from './stats';
import { accuracySummary, pairedComparisons } from './paired';
import { formatBound, reportBounds } from './bounds';

export const EVAL_SPLITS: readonly Split[] = ['heldout', 'ood'];
/** Every control, in report order; a method runs those of its channel (controlsFor: text has shuffle and zero). */
export const CONTROLS: readonly ControlName[] = CONTROL_NAMES;

/** What each control does, in the findings' words. */
const CONTROL_WORDS: Record<ControlName, string> = {
  shuffle: 'messages shuffled across the batch',
  zero: 'traces zeroed',
  noise: 'traces replaced by Gaussian noise of their own mean and covariance',
  rotate: 'received K/V rotated per head',
  permute: "each sender's latent positions permuted",
};

export interface ExperimentOptions {
  /** Called with each trained run's adapters (the CLI writes them as PEFT folders). */
  onAdapters?: (method: MethodName, seed: number, adapters: TrainedAdapter[], fuser: FuserWeights | null) => Promise<void> | void;
  /** Called after every training step (curves in the CLI). */
  onStep?: (method: MethodName, seed: number, step: number, loss: number) => void;
  /** Which controls to run on heldout for methods that send messages (default every one; false: none).
   * Each method runs those of the list that fit its channel (noise, rotate and permute: latent only). */
  controls?: boolean | readonly ControlName[];
  /** Splits to evaluate (default heldout and ood). */
  splits?: readonly Split[];
  /** An engine over the same base model to reuse (the worker keeps one). */
  engine?: MasEngine;
  /** A partial report of the same request (an interrupted run): its (method, seed) results are kept, not rerun. */
  previous?: ExperimentReport;
  /** Called after every (method, seed) with the report so far (the CLI saves it, so a run can resume). */
  onPartial?: (report: ExperimentReport) => Promise<void> | void;
  /** After evaluation, latent methods only: linear probes of the received K/V, and the bits sweep (src/mas/measures.ts). */
  measure?: MeasureOptions;
}

/** Two-sided 95% quantile of Student's t with df degrees of freedom. */
export function t95(df: number): number {
  const table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086];
  if (df < 1) return NaN;
  if (df <= table.length) return table[df - 1];
  if (df <= 30) return 2.042 + ((30 - df) / 10) * (2.086 - 2.042);
  return 1.96 + 2.4 / df;
}

/** Mean and half-width of the 95% t interval (NaN for one value). */
export function meanCi(xs: readonly number[]): { mean: number; ci: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, ci: NaN };
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { mean, ci: (t95(n - 1) * sd) / Math.sqrt(n) };
}

function checkRequest(req: CompareRequest): void {
  if (!req || typeof req !== 'object') throw new Error('experiment: expected a request {base, methods, seeds}');
  if (!Array.isArray(req.methods) || req.methods.length === 0) throw new Error(`experiment: give at least one method (${METHODS.join(', ')})`);
  const seen = new Set<string>();
  for (const m of req.methods) {
    methodSpec(m);
    if (seen.has(m)) throw new Error(`experiment: method ${m} is listed twice`);
    seen.add(m);
  }
  if (!Array.isArray(req.seeds) || req.seeds.length === 0) throw new Error('experiment: give at least one seed');
  for (const s of req.seeds) if (!Number.isSafeInteger(s) || s < 0) throw new Error(`experiment: seed ${s} is not a non-negative integer`);
  if (new Set(req.seeds).size !== req.seeds.length) throw new Error('experiment: a seed is listed twice');
}

/** Whether a control's accuracies are at chance: mean within two binomial standard errors of chance. */
export function atChance(accuracies: readonly number[], chance: number, episodes: number): { mean: number; band: number; yes: boolean } {
  const mean = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
  const band = 2 * Math.sqrt((chance * (1 - chance)) / (episodes * accuracies.length));
  return { mean, band, yes: mean <= chance + band };
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(3) : 'n/a';
}

export function summarize(report: Pick<ExperimentReport, 'rows'>): ExperimentRowSummary[] {
  const withControls = { rows: report.rows, controls: [] };
  const out: ExperimentRowSummary[] = [];
  const keys: [MethodName, Split][] = [];
  for (const r of report.rows) if (!keys.some(([m, s]) => m === r.method && s === r.split)) keys.push([r.method, r.split]);
  for (const [method, split] of keys) {
    const rows = report.rows.filter((r) => r.method === method && r.split === split);
    const acc = meanCi(rows.map((r) => r.accuracy));
    const avg = (f: (r: (typeof rows)[number]) => number) => rows.reduce((a, r) => a + f(r), 0) / rows.length;
    // the interval shown: the bootstrap over seeds x episodes (src/mas/stats.ts); accuracyCi stays the t interval
    const iv = accuracySummary(withControls, method, split)!;
    out.push({
      method, split, seeds: rows.length, accuracyMean: acc.mean, accuracyCi: acc.ci,
      accuracyLo: iv.lo, accuracyHi: iv.hi, basis: iv.basis, modes: iv.modes,
      validity: avg((r) => r.validity), entropy: avg((r) => r.entropy), messageFloats: avg((r) => r.messageFloats),
      messageTokens: avg((r) => r.messageTokens), trainSeconds: avg((r) => r.trainSeconds),
    });
  }
  return out;
}

/** One method's accuracy in words: "0.436 [0.401, 0.470]", "2 seeds: no interval (mean 0.250)" or its modes. */
function accuracyWords(x: ExperimentRowSummary): string {
  const lo = x.accuracyLo ?? null;
  const hi = x.accuracyHi ?? null;
  return formatAccuracy({ mean: x.accuracyMean, lo, hi, seeds: x.seeds, episodes: 0, basis: x.basis ?? 'seeds' }, x.modes ?? null);
}

/**
 * Plain-language findings: orderings; each pair of PAIRS (src/mas/paired.ts) by its paired
 * difference over the shared episodes with a bootstrap interval over seeds and episodes, "A beats B"
 * iff that interval excludes 0; each control against the same method's own uncontrolled episodes,
 * with the rule that decided "at chance"; and the bounds of the budget (src/mas/bounds.ts).
 */
export function findings(
  report: Pick<ExperimentReport, 'rows' | 'controls' | 'summary'> & Partial<Pick<ExperimentReport, 'paired' | 'bounds' | 'episodes'>>,
  chance: Partial<Record<Split, number>>, _evalSize: number,
): string[] {
  const out: string[] = [];
  const comparisons = report.paired ?? pairedComparisons({ ...report, chance });
  const s = (m: string, split: Split) => report.summary.find((x) => x.method === m && x.split === split);
  for (const split of EVAL_SPLITS) {
    const rows = report.summary.filter((x) => x.split === split).sort((a, b) => b.accuracyMean - a.accuracyMean);
    if (!rows.length) continue;
    out.push(`${split} ordering (mean accuracy, chance ${fmt(chance[split] ?? NaN)}): ${rows.map((r) => `${r.method} ${fmt(r.accuracyMean)}`).join(' > ')}`);
    for (const c of comparisons.filter((x) => x.split === split && !x.control)) {
      const A = s(c.a, split);
      const B = s(c.b, split);
      const side = (m: string, x: ExperimentRowSummary | undefined) => `${m} ${x ? accuracyWords(x) : fmt(NaN)}`;
      const how = c.basis === 'episodes'
        ? `paired over ${c.episodes} shared episodes, ${c.seedsA} and ${c.seedsB} seeds`
        : `unpaired, over seeds only (no per-episode outcomes in this report)`;
      const verdict =
        c.verdict === 'no-interval' ? `${Math.min(c.seedsA, c.seedsB)} seed${Math.min(c.seedsA, c.seedsB) === 1 ? '' : 's'}: no interval, no verdict (an interval needs ${MIN_SEEDS} seeds per method)` :
        c.verdict === 'tie' ? 'no reliable difference (the interval holds 0)' :
        `${c.verdict === 'a' ? c.a : c.b} beats ${c.verdict === 'a' ? c.b : c.a} (the interval excludes 0)`;
      const modes = c.modesA || c.modesB ? '; the seeds split into modes, so the difference of means averages unlike runs' : '';
      out.push(`${split}: ${side(c.a, A)} vs ${side(c.b, B)}: difference ${formatDifference({ mean: c.diff, lo: c.lo, hi: c.hi, seeds: Math.min(c.seedsA, c.seedsB), episodes: c.episodes, basis: c.basis })} (${how}): ${verdict}${modes}`);
    }
  }
  const c0 = chance.heldout ?? NaN;
  for (const c of comparisons.filter((x) => x.control)) {
    const m = c.a;
    const what = c.control === 'zero' && methodSpec(m as MethodName).channel === 'text' ? 'messages emptied' : CONTROL_WORDS[c.control!];
    const own = s(m, 'heldout');
    // a method already at chance without the control cannot lose anything to it: say so, not that it "fell"
    const ownAtChance = !own ? false : own.accuracyLo !== undefined && own.accuracyLo !== null ? own.accuracyLo <= c0 : own.accuracyMean <= c0 + (c.chanceBandWidth ?? 0);
    const drop = c.basis === 'episodes'
      ? `${formatDifference({ mean: c.diff, lo: c.lo, hi: c.hi, seeds: Math.min(c.seedsA, c.seedsB), episodes: c.episodes, basis: c.basis })} against its own uncontrolled episodes (paired)`
      : `uncontrolled ${fmt(c.meanB)} (unpaired: no per-episode outcomes)`;
    const verdict =
      c.atChance === undefined ? 'no chance verdict' :
      c.atChance && ownAtChance ? 'falls to chance, as does the uncontrolled run: the channel carries nothing measurable here, so this control shows nothing' :
      c.atChance ? (c.chanceBandWidth ? `falls to chance or below (at most ${fmt(c.chanceBandWidth)} above it)` : 'falls to chance or below') :
      'stays above chance';
    out.push(`${m}, ${what}: heldout accuracy ${fmt(c.meanA)}, ${drop}; chance ${fmt(c0)}, ${c.chanceBand}: ${verdict}`);
  }
  if (report.bounds) {
    for (const b of report.bounds.rows) out.push(`bound: ${formatBound(b)}`);
    for (const [split, v] of Object.entries(report.bounds.valuesOnly ?? {})) {
      out.push(`bound: ${split}, a message of the values but not their keys (${v!.entries} entries): accuracy ${fmt(v!.accuracy)} (as the 1-token message "the most frequent value"), loss floor ${fmt(v!.nats)} nats per answer, ${fmt(v!.natsPerToken)} per answer token with <eos>`);
    }
  }
  return out;
}

/** Episodes per evaluation actually evaluated: the fewest of any row (a split with fewer distinct
 * episodes than evalSize evaluates each once), evalSize before any row exists. */
function evaluated(report: Pick<ExperimentReport, 'rows'>, evalSize: number): number {
  return report.rows.length ? Math.min(...report.rows.map((r) => r.episodes)) : evalSize;
}

/**
 * Runs every method over every seed. Same request -> same numbers (seeded streams; the GPU work
 * is deterministic). Progress: a message and the fraction done.
 */
export async function runExperiment(
  gpu: Gpu, base: BaseModel, req: CompareRequest, onProgress: (message: string, fraction: number) => void,
  opts: ExperimentOptions = {},
): Promise<ExperimentReport> {
  checkRequest(req);
  const task = makeTask(req.base.task, req.base.difficulty);
  const splits = opts.splits ?? EVAL_SPLITS;
  if (!splits.length || splits.some((s) => !EVAL_SPLITS.includes(s))) throw new Error(`experiment: splits must be among ${EVAL_SPLITS.join(', ')}`);
  const controls = opts.controls === false ? [] : opts.controls === true || opts.controls === undefined ? CONTROLS : opts.controls;
  for (const c of controls) if (!CONTROLS.includes(c)) throw new Error(`experiment: unknown control ${JSON.stringify(c)} (have: ${CONTROLS.join(', ')})`);
  const engine = opts.engine ?? new MasEngine(gpu, base);
  // one evaluation set for every method and seed (never the run seed): results pair per episode
  const evalSeed = req.base.evalSeed ?? DEFAULT_EVAL_SEED;
  const report: ExperimentReport = {
    args: { ...req.base, evalSeed, methods: req.methods, seeds: req.seeds },
    rows: [], controls: [], summary: [], findings: [], curves: [],
    chance: Object.fromEntries(EVAL_SPLITS.map((s) => [s, task.chanceFor(s)])),
  };
  // what a message of the text budget, and of the latent senders' m positions as tokens, could carry
  const latent = req.methods.some((m) => methodSpec(m).channel === 'latent');
  const steps = latent ? req.base.topology.agents.filter((a) => a.id !== req.base.topology.final).map((a) => a.latentSteps) : [];
  report.bounds = reportBounds(task.name, task.difficulty, base.config.vocab_size, req.base.textBudget, steps, splits);
  const units = req.seeds.length * req.methods.length;
  let done = 0;
  const say = (m: string, within = 0) => {
    try {
      onProgress(m, Math.min(1, (done + within) / units));
    } catch {
      // progress is informational
    }
  };
  try {
    for (const seed of req.seeds) {
      for (const method of req.methods) {
        const prev = opts.previous;
        const spec = methodSpec(method);
        const ofPair = (x: { method: string; seed: number }) => x.method === method && x.seed === seed;
        // kept only when it holds everything this run would make: every split, every control, and
        // no adapters to save (those exist only by training again)
        const keep =
          prev &&
          splits.every((sp) => prev.rows.some((r) => ofPair(r) && r.split === sp)) &&
          controlsFor(spec.channel).filter((c) => controls.includes(c)).every((c) => prev.controls.some((x) => ofPair(x) && x.control === c)) &&
          !(opts.onAdapters && spec.train !== 'none') &&
          (spec.channel !== 'latent' || !opts.measure || hasMeasures(prev, method, seed, opts.measure));
        if (prev && keep) {
          for (const sp of splits) if (prev.episodes?.[sp]) sameEpisodes(report, sp, prev.episodes[sp]!, 'the previous report');
          report.rows.push(...prev.rows.filter((r) => ofPair(r) && splits.includes(r.split)));
          report.controls.push(...prev.controls.filter((c) => ofPair(c) && controls.includes(c.control)));
          report.curves!.push(...(prev.curves ?? []).filter(ofPair));
          if (opts.measure?.probe && prev.probes?.some(ofPair)) (report.probes ??= []).push(...prev.probes.filter(ofPair));
          if (opts.measure?.bits && prev.bits?.some(ofPair)) (report.bits ??= []).push(...prev.bits.filter(ofPair));
          done++;
          say(`seed ${seed} ${method}: kept from the previous run`);
          continue;
        }
        const config: RunConfig = { ...req.base, evalSeed, method, seed };
        const run = new Run(engine, config);
        try {
          const t0 = performance.now();
          if (run.trains) {
            const watch = new DivergenceWatch();
            for (let s = 0; s < config.steps; s++) {
              const r = await run.trainStep();
              opts.onStep?.(method, seed, r.step, r.loss);
              const diverging = watch.push(r.step, r.loss);
              if (diverging) say(`seed ${seed} ${method}: warning: ${diverging}`, (0.8 * r.step) / config.steps);
              if (r.step % 25 === 0 || r.step === config.steps) say(`seed ${seed} ${method}: step ${r.step}/${config.steps} loss ${r.loss.toFixed(4)}`, (0.8 * r.step) / config.steps);
            }
            report.curves!.push({ method, seed, losses: run.losses.slice() });
          }
          const trainSeconds = (performance.now() - t0) / 1000;
          for (const split of splits) {
            say(`seed ${seed} ${method}: evaluating ${split}`, run.trains ? 0.85 : 0.3);
            const o = await run.evaluate(split);
            sameEpisodes(report, split, run.evalSet(split).map((e) => e.key), `seed ${seed} ${method}`);
            report.rows.push({ ...toEvalRow(o), seed, trainSeconds, outcomes: outcomeString(o.correct) });
          }
          if (run.spec.channel !== 'none') {
            for (const control of controls.filter((c) => controlsFor(run.spec.channel).includes(c))) {
              say(`seed ${seed} ${method}: control ${control}`, 0.95);
              const o = await run.evaluate('heldout', control);
              sameEpisodes(report, 'heldout', run.evalSet('heldout').map((e) => e.key), `seed ${seed} ${method} (${control})`);
              report.controls.push({ method, seed, control, accuracy: o.accuracy, outcomes: outcomeString(o.correct) });
            }
          }
          if (opts.measure) await measureInto(run, report, opts.measure, (m) => say(m, 0.97));
          if (run.trains && opts.onAdapters) await opts.onAdapters(method, seed, await run.exportAdapters(), await run.exportFuser());
        } finally {
          run.destroy();
        }
        done++;
        say(`seed ${seed} ${method}: done`);
        if (opts.onPartial) {
          // a partial report is a whole one over the pairs done so far
          report.summary = summarize(report);
          report.paired = pairedComparisons(report, splits);
          report.findings = findings(report, report.chance!, evaluated(report, req.base.evalSize));
          await opts.onPartial(report);
        }
      }
    }
  } finally {
    if (!opts.engine) engine.destroy();
  }
  report.summary = summarize(report);
  report.paired = pairedComparisons(report, splits);
  report.findings = findings(report, report.chance!, evaluated(report, req.base.evalSize));
  return report;
}

/** Records a split's evaluation episodes (keys in order) or checks that a run saw the same ones: outcomes pair by index. */
function sameEpisodes(report: ExperimentReport, split: Split, keys: string[], who: string): void {
  const eps = (report.episodes ??= {});
  const have = eps[split];
  if (!have) {
    eps[split] = keys;
    return;
  }
  const at = have.length !== keys.length ? -1 : keys.findIndex((k, i) => k !== have[i]);
  if (have.length !== keys.length || at >= 0) {
    throw new Error(
      `experiment: ${who} evaluated other ${split} episodes than the runs before it (` +
        (at < 0 ? `${keys.length} against ${have.length}` : `episode ${at}: ${keys[at]} against ${have[at]}`) +
        `): per-episode outcomes would not pair; every run of an experiment must share one evaluation set (evalSeed)`,
    );
  }
}

export const experimentRunner: ExperimentRunner = (gpu, base, req, onProgress) => runExperiment(gpu, base, req, onProgress);

// ---------------------------------------------------------------- text output

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The summary table (one row per method and split) as fixed-width text. */
export function formatTable(report: ExperimentReport): string {
  const head = ['method', 'split', 'accuracy [95% bootstrap interval]', 'valid', 'entropy', 'msg pos', 'msg floats', 'msg tok', 'train s'];
  const rows = report.summary.map((r) => {
    const pos = report.rows.filter((x) => x.method === r.method && x.split === r.split);
    const positions = pos.reduce((a, x) => a + (x.messagePositions ?? 0), 0) / pos.length;
    return [
      r.method, r.split, accuracyWords(r),
      r.validity.toFixed(2), r.entropy.toFixed(2), positions.toFixed(1), r.messageFloats.toFixed(0), r.messageTokens.toFixed(1), r.trainSeconds.toFixed(1),
    ];
  });
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => pad(c, w[i], i >= 2)).join(' | ') + ' |';
  return [line(head), '|' + w.map((x, i) => (i >= 2 ? '-'.repeat(x + 1) + ':' : '-'.repeat(x + 2))).join('|') + '|', ...rows.map(line)].join('\n');
}

/** The controls as a table: per method, heldout accuracy uncontrolled and under each control (means over seeds; n/a: not run or not applicable). */
export function formatControls(report: ExperimentReport): string {
  const methods = [...new Set(report.controls.map((c) => c.method))];
  if (!methods.length) return '(no method sends messages: no controls)';
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const heads: Record<ControlName, string> = { shuffle: 'shuffled', zero: 'zeroed', noise: 'noise', rotate: 'rotated', permute: 'permuted' };
  const lines = [`| method | heldout | ${CONTROLS.map((c) => heads[c]).join(' | ')} | chance |`, `|---|---:|${CONTROLS.map(() => '---:|').join('')}---:|`];
  for (const m of methods) {
    const own = report.summary.find((x) => x.method === m && x.split === 'heldout');
    const cells = CONTROLS.map((k) => fmt(mean(report.controls.filter((c) => c.method === m && c.control === k).map((c) => c.accuracy))));
    lines.push(`| ${m} | ${fmt(own?.accuracyMean ?? NaN)} | ${cells.join(' | ')} | ${fmt(report.chance?.heldout ?? NaN)} |`);
  }
  return lines.join('\n');
}

/** Loss curves as a text table: mean training loss over seeds every `every` steps, one column per trained method. */
export function formatCurves(report: ExperimentReport, every = 25): string {
  const curves = report.curves ?? [];
  const methods = [...new Set(curves.map((c) => c.method))];
  if (!methods.length) return '(nothing trained)';
  const steps = Math.max(...curves.map((c) => c.losses.length));
  const lines = [`| step | ${methods.join(' | ')} |`, `|---:|${methods.map(() => '---:').join('|')}|`];
  for (let s = every; s <= steps || s - every < steps; s += every) {
    const at = Math.min(s, steps);
    const cells = methods.map((m) => {
      // mean over seeds of the mean loss in the window (at-every, at]
      const vals = curves.filter((c) => c.method === m).map((c) => {
        const w = c.losses.slice(Math.max(0, at - every), at);
        return w.reduce((a, b) => a + b, 0) / w.length;
      });
      return fmt(vals.reduce((a, b) => a + b, 0) / vals.length);
    });
    lines.push(`| ${at} | ${cells.join(' | ')} |`);
    if (at === steps) break;
  }
  return lines.join('\n');
}
