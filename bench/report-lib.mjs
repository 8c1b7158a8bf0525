// Shared by bench/budget.mjs and bench/grid.mjs: reading experiment reports (the JSON of
// `npm run experiment -- --json FILE`, shape: ExperimentReport in src/worker/api.ts) and the
// statistical rules of src/mas/experiment.ts, copied here so these tools stay plain Node with no
// build step. tests/bench-report.test.ts checks that the copies agree with the TypeScript originals.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (bench/..): relative model paths in a report's args are relative to it. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** src/worker/api.ts METHODS, in that order (the column order of the tables). */
export const METHODS = ['single', 'skyline', 'single-trained', 'skyline-trained', 'text', 'latentmas', 'latentmas-full', 'diffmas', 'diffmas-full', 'diffmas-detached'];
/** Methods that send K/V (the latent channels). */
export const LATENT_METHODS = ['latentmas', 'latentmas-full', 'diffmas', 'diffmas-full', 'diffmas-detached'];
/** The controls the experiment can run, in table order ('noise' and 'rotate' may be absent). */
export const CONTROLS = ['shuffle', 'zero', 'noise', 'rotate'];
const TASK_ORDER = ['lookup', 'relay', 'arith'];

export const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
/** JSON writes NaN as null: read it back as NaN. */
const num = (x) => (typeof x === 'number' ? x : NaN);
const meanOf = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

// ---------------------------------------------------------------- statistics (copies)

/** Copy of src/mas/experiment.ts t95: two-sided 95% quantile of Student's t with df degrees of freedom. */
export function t95(df) {
  const table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086];
  if (df < 1) return NaN;
  if (df <= table.length) return table[df - 1];
  if (df <= 30) return 2.042 + ((30 - df) / 10) * (2.086 - 2.042);
  return 1.96 + 2.4 / df;
}

/** Copy of src/mas/experiment.ts meanCi: mean and half-width of the 95% t interval (NaN for one value). */
export function meanCi(xs) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, ci: NaN };
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { mean, ci: (t95(n - 1) * sd) / Math.sqrt(n) };
}

/**
 * Copy of src/mas/experiment.ts atChance: a control's accuracies are at chance when their mean is
 * within two binomial standard errors of chance (or below it), with `episodes` per seed.
 */
export function atChance(accuracies, chance, episodes) {
  const mean = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
  const band = 2 * Math.sqrt((chance * (1 - chance)) / (episodes * accuracies.length));
  return { mean, band, yes: mean <= chance + band };
}

/**
 * The pairwise rule of src/mas/experiment.ts findings(), unchanged: A and B (summary rows:
 * accuracyMean, accuracyCi, seeds) differ reliably when the margin exceeds the sum of both seed
 * intervals AND two binomial standard errors of the difference over evalSize x seeds episodes;
 * with fewer than two seeds there is no interval and no verdict.
 * Returns { margin (A - B), widths, se2 (= 2 SE), seeds, winner: 'a' | 'b' | null, oneSeed }.
 */
export function pairVerdict(A, B, evalSize) {
  const ci0 = (x) => (Number.isFinite(x) ? x : 0);
  const margin = A.accuracyMean - B.accuracyMean;
  const widths = ci0(A.accuracyCi) + ci0(B.accuracyCi);
  const seeds = Math.min(A.seeds, B.seeds);
  const n = evalSize * seeds;
  const se = Math.sqrt((A.accuracyMean * (1 - A.accuracyMean) + B.accuracyMean * (1 - B.accuracyMean)) / n);
  const oneSeed = seeds < 2;
  const reliable = !oneSeed && Math.abs(margin) > widths && Math.abs(margin) > 2 * se;
  return { margin, widths, se2: 2 * se, seeds, oneSeed, winner: reliable ? (margin > 0 ? 'a' : 'b') : null };
}

// ---------------------------------------------------------------- reading reports

/** Reads one report and keeps its file name beside it (every printed number names its source). */
export function loadReport(file) {
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a JSON file (${e.message})`);
  }
  if (!r || typeof r.args !== 'object' || !Array.isArray(r.rows)) throw new Error(`${file}: not an experiment report (no args and rows)`);
  return { ...r, controls: r.controls ?? [], file };
}

/** The base model's label: the last part of args.model (a folder) or args.modelId. */
export function baseOf(report) {
  const m = String(report.args.model ?? report.args.modelId ?? '?');
  return m.replace(/^builtin:/, '').replace(/\/+$/, '').split('/').pop();
}

/** Latent steps of the senders (every agent but the final one), e.g. [4]; several when they differ. */
export function latentStepsOf(report) {
  const topo = report.args.topology;
  if (!topo || !Array.isArray(topo.agents)) return [];
  const senders = topo.agents.filter((a) => a.id !== topo.final);
  return [...new Set(senders.map((a) => a.latentSteps))];
}

/** 'm=4' (or 'm=1/4' for senders with different steps). */
export const mLabel = (report) => `m=${latentStepsOf(report).join('/') || '?'}`;
export const bLabel = (report) => `B=${report.args.textBudget ?? '?'}`;

/** The task/difficulty setting of a report: { key, task, difficulty, base, label }. */
export function settingOf(report) {
  const task = String(report.args.task), difficulty = Number(report.args.difficulty), base = baseOf(report);
  return { key: `${base}\u0000${task}\u0000${difficulty}`, task, difficulty, base, label: `${task} d${difficulty}` };
}

export function compareSettings(a, b) {
  const t = (x) => (TASK_ORDER.includes(x.task) ? TASK_ORDER.indexOf(x.task) : TASK_ORDER.length);
  return a.base.localeCompare(b.base) || t(a) - t(b) || a.task.localeCompare(b.task) || a.difficulty - b.difficulty;
}

/** Episodes per split and seed (args.evalSize, else the rows' episodes). */
export function evalSizeOf(report) {
  const e = Number(report.args.evalSize);
  return Number.isFinite(e) && e > 0 ? e : Number(report.rows[0]?.episodes);
}

/**
 * The summary of one (method, split) — the report's own summary row (mean over seeds, 95% t
 * interval), or, for a report without one, the same computed from its rows — with the mean
 * message positions from the rows (the summary does not carry them). Null when absent.
 */
export function summaryOf(report, method, split) {
  const rows = report.rows.filter((r) => r.method === method && r.split === split);
  let s = (report.summary ?? []).find((x) => x.method === method && x.split === split);
  if (!s && !rows.length) return null;
  if (s) {
    s = { ...s, accuracyMean: num(s.accuracyMean), accuracyCi: num(s.accuracyCi), messageFloats: num(s.messageFloats), messageTokens: num(s.messageTokens) };
  } else {
    const acc = meanCi(rows.map((r) => r.accuracy));
    s = {
      method, split, seeds: rows.length, accuracyMean: acc.mean, accuracyCi: acc.ci,
      validity: meanOf(rows.map((r) => r.validity)), entropy: meanOf(rows.map((r) => r.entropy)),
      messageFloats: meanOf(rows.map((r) => r.messageFloats)), messageTokens: meanOf(rows.map((r) => r.messageTokens)),
      trainSeconds: meanOf(rows.map((r) => r.trainSeconds)),
    };
  }
  const pos = rows.map((r) => r.messagePositions).filter((x) => typeof x === 'number');
  return { ...s, messagePositions: pos.length ? meanOf(pos) : NaN, file: report.file };
}

/** Accuracies of one control of one method (per seed), [] when it was not run. */
export function controlAccuracies(report, method, control) {
  return report.controls.filter((c) => c.method === method && c.control === control).map((c) => c.accuracy);
}

/**
 * The vocabulary size V of a report's base: args.vocabSize (or vocab_size) when the report carries
 * it, else vocab_size of the base's config.json (args.model, resolved against the working directory,
 * then the repository root). Returns { V, source } or { V: NaN, source: 'unknown' }.
 */
export function vocabOf(report) {
  const a = report.args;
  for (const k of ['vocabSize', 'vocab_size']) if (Number(a[k]) > 0) return { V: Number(a[k]), source: `${report.file} args.${k}` };
  const m = a.model ?? a.modelId;
  if (typeof m === 'string') {
    for (const dir of [path.resolve(m), path.resolve(ROOT, m)]) {
      const cfg = path.join(dir, 'config.json');
      if (!existsSync(cfg)) continue;
      try {
        const V = Number(JSON.parse(readFileSync(cfg, 'utf8')).vocab_size);
        if (V > 0) return { V, source: path.relative(process.cwd(), cfg) || cfg };
      } catch {
        // not readable: try the next place
      }
    }
  }
  return { V: NaN, source: 'unknown' };
}

/** Parses `--name value` flags and positional files. */
export function parseArgs(argv, valued) {
  const opts = {}, files = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') opts.help = true;
    else if (a.startsWith('--') && valued.includes(a.slice(2))) {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      opts[a.slice(2)] = argv[++i];
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else files.push(a);
  }
  return { opts, files };
}

/** Whether this module is the one Node was started with (the CLI part of a tool). */
export function isMain(metaUrl) {
  return !!process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(metaUrl);
}

/** The settings that decide a report's numbers besides task, method and budget. */
export const RUN_FIELDS = ['steps', 'lr', 'batch', 'evalSize', 'lora', 'latentMap', 'positions'];

/** Fields of RUN_FIELDS whose values differ between the reports: [{ field, values: [...] }]. */
export function differences(reports, fields = RUN_FIELDS) {
  const out = [];
  for (const f of fields) {
    const values = [...new Set(reports.map((r) => JSON.stringify(r.args[f] ?? null)))];
    if (values.length > 1) out.push({ field: f, values });
  }
  return out;
}

/** A sentence naming such differences, or '' when the reports agree. */
export function differencesNote(reports) {
  const d = differences(reports);
  return d.length ? `Note: these reports differ in ${d.map((x) => `${x.field} (${x.values.join(' / ')})`).join(', ')}.` : '';
}
