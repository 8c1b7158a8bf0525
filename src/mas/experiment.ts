// The experiment runner (an ExperimentRunner, src/mas/types.ts): every method of a CompareRequest
// over every seed, on the same held-out and OOD sets per seed; trains what needs training; measures
// accuracy, answer-format validity, answer entropy, message size and training time; runs the
// controls for every method that sends messages (messages shuffled across the batch, traces zeroed,
// and for the latent channel traces replaced by Gaussian noise of their own statistics and received
// K/V rotated per head: run.ts, controls.ts);
// summarises over seeds (mean and 95% t interval) and states its findings in words. Used by the CLI
// (src/cli/experiment.ts) and the worker's compare().
import type { Gpu } from '../gpu/runtime';
import { DEFAULT_EVAL_SEED, makeTask, type Split } from '../tasks/tasks';
import {
  CONTROL_NAMES, METHODS, type CompareRequest, type ControlName, type ExperimentReport, type ExperimentRowSummary, type MethodName,
  type RunConfig,
} from './run-types';
import type { BaseModel, ExperimentRunner, TrainedAdapter } from './types';
import { controlsFor, MasEngine, Run } from './run';
import { methodSpec } from './methods';
import { toEvalRow } from './controller';
import { DivergenceWatch } from '../model/divergence';
import { hasMeasures, measureInto, type MeasureOptions } from './measures';

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
  onAdapters?: (method: MethodName, seed: number, adapters: TrainedAdapter[]) => Promise<void> | void;
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
  const out: ExperimentRowSummary[] = [];
  const keys: [MethodName, Split][] = [];
  for (const r of report.rows) if (!keys.some(([m, s]) => m === r.method && s === r.split)) keys.push([r.method, r.split]);
  for (const [method, split] of keys) {
    const rows = report.rows.filter((r) => r.method === method && r.split === split);
    const acc = meanCi(rows.map((r) => r.accuracy));
    const avg = (f: (r: (typeof rows)[number]) => number) => rows.reduce((a, r) => a + f(r), 0) / rows.length;
    out.push({
      method, split, seeds: rows.length, accuracyMean: acc.mean, accuracyCi: acc.ci,
      validity: avg((r) => r.validity), entropy: avg((r) => r.entropy), messageFloats: avg((r) => r.messageFloats),
      messageTokens: avg((r) => r.messageTokens), trainSeconds: avg((r) => r.trainSeconds),
    });
  }
  return out;
}

/** Plain-language findings: orderings with their margins against the seed intervals, and the controls. */
export function findings(report: Pick<ExperimentReport, 'rows' | 'controls' | 'summary'>, chance: Partial<Record<Split, number>>, evalSize: number): string[] {
  const out: string[] = [];
  const s = (m: MethodName, split: Split) => report.summary.find((x) => x.method === m && x.split === split);
  const ci0 = (x: number) => (Number.isFinite(x) ? x : 0);
  for (const split of EVAL_SPLITS) {
    const rows = report.summary.filter((x) => x.split === split).sort((a, b) => b.accuracyMean - a.accuracyMean);
    if (!rows.length) continue;
    out.push(`${split} ordering (accuracy, chance ${fmt(chance[split] ?? NaN)}): ${rows.map((r) => `${r.method} ${fmt(r.accuracyMean)}`).join(' > ')}`);
    const pairs: [MethodName, MethodName][] = [
      ['diffmas', 'single'], ['diffmas', 'latentmas'], ['diffmas', 'text'], ['diffmas', 'diffmas-detached'],
      ['diffmas-full', 'latentmas-full'], ['latentmas', 'single'], ['text', 'single'], ['text', 'latentmas'], ['skyline', 'diffmas'],
    ];
    for (const [a, b] of pairs) {
      const A = s(a, split);
      const Bs = s(b, split);
      if (!A || !Bs) continue;
      const margin = A.accuracyMean - Bs.accuracyMean;
      const widths = ci0(A.accuracyCi) + ci0(Bs.accuracyCi);
      const seeds = Math.min(A.seeds, Bs.seeds);
      // also more than two binomial standard errors of the difference (seed intervals can be 0 by chance)
      const n = evalSize * seeds;
      const se = Math.sqrt((A.accuracyMean * (1 - A.accuracyMean) + Bs.accuracyMean * (1 - Bs.accuracyMean)) / n);
      const verdict =
        seeds < 2 ? 'one seed: no interval' :
        Math.abs(margin) > widths && Math.abs(margin) > 2 * se
          ? `${margin > 0 ? a : b} wins by more than the seed intervals (${fmt(Math.abs(margin))} > ${fmt(A.accuracyCi)} + ${fmt(Bs.accuracyCi)}, and > 2 binomial SE ${fmt(2 * se)})`
          : `no reliable difference (the seed intervals overlap or the margin is within 2 binomial SE ${fmt(2 * se)})`;
      out.push(`${split}: ${a} ${fmt(A.accuracyMean)} ± ${fmt(A.accuracyCi)} vs ${b} ${fmt(Bs.accuracyMean)} ± ${fmt(Bs.accuracyCi)}: ${verdict}`);
    }
  }
  const methods = [...new Set(report.controls.map((c) => c.method))];
  const c = chance.heldout ?? NaN;
  for (const m of methods) {
    const own = s(m, 'heldout');
    for (const control of CONTROLS) {
      const accs = report.controls.filter((x) => x.method === m && x.control === control).map((x) => x.accuracy);
      if (!accs.length) continue;
      const r = atChance(accs, c, evalSize);
      const what = control === 'zero' && methodSpec(m).channel === 'text' ? 'messages emptied' : CONTROL_WORDS[control];
      // a method already at chance without the control cannot lose anything to it: say so, not that it "fell"
      const uncontrolled = own ? atChance([own.accuracyMean], c, evalSize * own.seeds) : null;
      const moot = r.yes && uncontrolled?.yes;
      out.push(
        `${m}, ${what}: heldout accuracy ${fmt(r.mean)} (uncontrolled ${fmt(own?.accuracyMean ?? NaN)}, chance ${fmt(c)}): ` +
          (moot
            ? `falls to chance or below, as does the uncontrolled run: the channel carries nothing measurable here, so this control shows nothing`
            : r.yes ? `falls to chance or below (at most ${fmt(r.band)} above it)` : `stays above chance by ${fmt(r.mean - c)} (more than the band ${fmt(r.band)})`),
      );
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
            report.rows.push({ ...toEvalRow(await run.evaluate(split)), seed, trainSeconds });
          }
          if (run.spec.channel !== 'none') {
            for (const control of controls.filter((c) => controlsFor(run.spec.channel).includes(c))) {
              say(`seed ${seed} ${method}: control ${control}`, 0.95);
              const o = await run.evaluate('heldout', control);
              report.controls.push({ method, seed, control, accuracy: o.accuracy });
            }
          }
          if (opts.measure) await measureInto(run, report, opts.measure, (m) => say(m, 0.97));
          if (run.trains && opts.onAdapters) await opts.onAdapters(method, seed, await run.exportAdapters());
        } finally {
          run.destroy();
        }
        done++;
        say(`seed ${seed} ${method}: done`);
        if (opts.onPartial) {
          // a partial report is a whole one over the pairs done so far
          report.summary = summarize(report);
          report.findings = findings(report, report.chance!, evaluated(report, req.base.evalSize));
          await opts.onPartial(report);
        }
      }
    }
  } finally {
    if (!opts.engine) engine.destroy();
  }
  report.summary = summarize(report);
  report.findings = findings(report, report.chance!, evaluated(report, req.base.evalSize));
  return report;
}

export const experimentRunner: ExperimentRunner = (gpu, base, req, onProgress) => runExperiment(gpu, base, req, onProgress);

// ---------------------------------------------------------------- text output

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The summary table (one row per method and split) as fixed-width text. */
export function formatTable(report: ExperimentReport): string {
  const head = ['method', 'split', 'accuracy (95% CI)', 'valid', 'entropy', 'msg pos', 'msg floats', 'msg tok', 'train s'];
  const rows = report.summary.map((r) => {
    const pos = report.rows.filter((x) => x.method === r.method && x.split === r.split);
    const positions = pos.reduce((a, x) => a + (x.messagePositions ?? 0), 0) / pos.length;
    return [
      r.method, r.split, `${r.accuracyMean.toFixed(3)} ± ${Number.isFinite(r.accuracyCi) ? r.accuracyCi.toFixed(3) : 'n/a'}`,
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
