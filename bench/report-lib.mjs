// Shared by bench/budget.mjs, bench/grid.mjs and bench/report.mjs: reading experiment reports (the
// JSON of `npm run experiment -- --json FILE`, shape: ExperimentReport in src/mas/run-types.ts) and
// the statistics of the runner itself. Those are not copied: src/mas/paired.ts, stats.ts and
// bounds.ts are bundled with esbuild (as scripts/bundle.mjs bundles the CLI) into .cache/bench/ at
// import, so every table says exactly what the runner's findings say. No other build step.
import { build } from 'esbuild';
import { existsSync, readFileSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root (bench/..): relative model paths in a report's args are relative to it. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** src/mas/paired.ts, stats.ts and bounds.ts (and measures.ts's probe and bits tables) as one ES module, bundled for this process (a file of its own, renamed into place). */
async function loadStats() {
  const out = path.join(ROOT, '.cache', 'bench', 'stats.mjs');
  const tmp = `${out}.${process.pid}.tmp`;
  mkdirSync(path.dirname(out), { recursive: true });
  try {
    await build({
      stdin: {
        contents: "export * from './src/mas/stats';\nexport * from './src/mas/paired';\nexport * from './src/mas/bounds';\nexport { formatProbes, formatBits } from './src/mas/measures';\n",
        resolveDir: ROOT, loader: 'ts', sourcefile: 'bench-stats.ts',
      },
      outfile: tmp, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning',
    });
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return import(`${pathToFileURL(out).href}?${process.pid}`);
}

/** The runner's statistics and bounds (src/mas/stats.ts, paired.ts, bounds.ts). */
export const stats = await loadStats();

/** src/mas/run-types.ts METHODS, in that order (the column order of the tables). */
export const METHODS = ['single', 'skyline', 'single-trained', 'skyline-trained', 'text', 'text-trained', 'latentmas', 'latentmas-full', 'diffmas', 'diffmas-full', 'diffmas-detached'];
/** Methods that send K/V (the latent channels). */
export const LATENT_METHODS = ['latentmas', 'latentmas-full', 'diffmas', 'diffmas-full', 'diffmas-detached'];
/** Methods that send text. */
export const TEXT_METHODS = ['text', 'text-trained'];
/** The controls the experiment can run, in table order (a report may lack some). */
export const CONTROLS = ['shuffle', 'zero', 'noise', 'rotate', 'permute'];
const TASK_ORDER = ['lookup', 'relay', 'arith'];

export const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
/** JSON writes NaN as null: read it back as NaN. */
const num = (x) => (typeof x === 'number' ? x : NaN);
const meanOf = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

// ---------------------------------------------------------------- statistics (the runner's own)

/**
 * One method's accuracy on a split as the runner states it: { mean, lo, hi, seeds, episodes, basis,
 * modes } (src/mas/paired.ts accuracySummary: a bootstrap over seeds x episodes, seeds only for a
 * report without per-episode outcomes; lo/hi null below stats.MIN_SEEDS seeds). Null when absent.
 */
export function accuracyOf(report, method, split) {
  return stats.accuracySummary(report, method, split);
}

/** An accuracy in words: "0.436 [0.401, 0.470]", "2 seeds: no interval (mean 0.250)" or "3 of 6 seeds reach >= 0.800 (...)". */
export const accuracyWords = (a) => (a ? stats.formatAccuracy(a, a.modes) : '–');

/** The report's paired comparisons (its own `paired`, else computed as the runner does). */
export function pairedOf(report) {
  return report.paired ?? stats.pairedComparisons(report);
}

/**
 * A - B where A and B may come from different reports: paired per episode when both reports list
 * the same episodes of the split and every row carries outcomes, else over seeds only (unpaired).
 * Returns the comparison in the shape of src/mas/paired.ts PairedComparison.
 */
export function compareAcross(ra, a, rb, b, split) {
  if (ra === rb) {
    const own = pairedOf(ra).find((c) => c.split === split && c.a === a && c.b === b && !c.control);
    if (own) return own;
  }
  const rows = (r, m) => r.rows.filter((x) => x.method === m && x.split === split).sort((x, y) => x.seed - y.seed);
  const A = rows(ra, a), B = rows(rb, b);
  if (!A.length || !B.length) return null;
  const ka = ra.episodes?.[split], kb = rb.episodes?.[split];
  const same = ka && kb && ka.length === kb.length && ka.every((k, i) => k === kb[i]);
  const ta = same ? stats.outcomesOf(ra, a, split) : null, tb = same ? stats.outcomesOf(rb, b, split) : null;
  const d = ta && tb ? stats.pairedDifference(ta, tb) : stats.seedsDifference(A.map((x) => x.accuracy), B.map((x) => x.accuracy));
  return {
    split, a, b, basis: d.basis, seedsA: A.length, seedsB: B.length, episodes: d.episodes, meanA: meanOf(A.map((x) => x.accuracy)),
    meanB: meanOf(B.map((x) => x.accuracy)), diff: d.mean, lo: d.lo, hi: d.hi, verdict: stats.verdictOf(d),
    modesA: stats.detectModes(A.map((x) => x.accuracy)), modesB: stats.detectModes(B.map((x) => x.accuracy)),
  };
}

/** A difference in words: "+0.040 [+0.012, +0.069]" or "+0.040 (2 seeds: no interval)". */
export const differenceWords = (c) => stats.formatDifference({ mean: c.diff, lo: c.lo, hi: c.hi, seeds: Math.min(c.seedsA, c.seedsB), episodes: c.episodes, basis: c.basis });

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
 * The summary of one (method, split) — the report's own summary row, or, for a report without one,
 * the same computed from its rows — with `acc`, the accuracy as the runner states it (accuracyOf:
 * mean, bootstrap interval or modes), and the mean message positions from the rows (the summary
 * does not carry them). Null when absent.
 */
export function summaryOf(report, method, split) {
  const rows = report.rows.filter((r) => r.method === method && r.split === split);
  let s = (report.summary ?? []).find((x) => x.method === method && x.split === split);
  if (!s && !rows.length) return null;
  if (s) {
    s = { ...s, accuracyMean: num(s.accuracyMean), accuracyCi: num(s.accuracyCi), messageFloats: num(s.messageFloats), messageTokens: num(s.messageTokens) };
  } else {
    s = {
      method, split, seeds: rows.length, accuracyMean: meanOf(rows.map((r) => r.accuracy)), accuracyCi: NaN,
      validity: meanOf(rows.map((r) => r.validity)), entropy: meanOf(rows.map((r) => r.entropy)),
      messageFloats: meanOf(rows.map((r) => r.messageFloats)), messageTokens: meanOf(rows.map((r) => r.messageTokens)),
      trainSeconds: meanOf(rows.map((r) => r.trainSeconds)),
    };
  }
  const pos = rows.map((r) => r.messagePositions).filter((x) => typeof x === 'number');
  const acc = rows.length ? accuracyOf(report, method, split) : null;
  return { ...s, acc, messagePositions: pos.length ? meanOf(pos) : NaN, file: report.file };
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
