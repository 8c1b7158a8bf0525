// The comparison report in the one format both sides write: `npm run experiment -- --json FILE`
// (src/cli/experiment.ts) and the page's Compare export (src/ui). One reader for both
// (readExperimentReport), and the CSV both offer (reportCsv). Plain data, no DOM. It reads reports
// written before per-episode outcomes, paired comparisons and bounds existed (those fields absent),
// and checks them where present: every outcome string '0'/'1' and as long as its split's episode list.
import type { ExperimentReport } from '../mas/run-types';

export class ReportError extends Error {
  constructor(message: string) {
    super(`experiment report: ${message}`);
    this.name = 'ReportError';
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A number as JSON writes it: NaN and infinities become null (a one-seed interval). */
const isNumOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));

/** Parses and checks a report (JSON text); throws ReportError naming the field that is wrong. */
export function readExperimentReport(text: string): ExperimentReport {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ReportError(`not JSON (${(e as Error).message})`);
  }
  if (!isObj(v)) throw new ReportError('not a JSON object');
  if (!isObj(v.args)) throw new ReportError('no args object (what the report was made with)');
  for (const k of ['rows', 'controls', 'summary'] as const) if (!Array.isArray(v[k])) throw new ReportError(`no ${k} list`);
  (v.rows as unknown[]).forEach((r, i) => {
    if (!isObj(r) || typeof r.method !== 'string' || typeof r.split !== 'string' || typeof r.seed !== 'number' || !isNumOrNull(r.accuracy)) {
      throw new ReportError(`rows[${i}] needs method, split, seed and accuracy`);
    }
  });
  (v.controls as unknown[]).forEach((c, i) => {
    if (!isObj(c) || typeof c.method !== 'string' || typeof c.control !== 'string' || typeof c.seed !== 'number' || !isNumOrNull(c.accuracy)) {
      throw new ReportError(`controls[${i}] needs method, seed, control and accuracy`);
    }
  });
  (v.summary as unknown[]).forEach((s, i) => {
    if (!isObj(s) || typeof s.method !== 'string' || typeof s.split !== 'string' || typeof s.seeds !== 'number' || !isNumOrNull(s.accuracyMean) || !isNumOrNull(s.accuracyCi)) {
      throw new ReportError(`summary[${i}] needs method, split, seeds, accuracyMean and accuracyCi`);
    }
  });
  if (v.findings !== undefined && !Array.isArray(v.findings)) throw new ReportError('findings is not a list');
  checkOutcomes(v);
  if (v.paired !== undefined) {
    if (!Array.isArray(v.paired)) throw new ReportError('paired is not a list');
    v.paired.forEach((p, i) => {
      if (!isObj(p) || typeof p.split !== 'string' || typeof p.a !== 'string' || typeof p.b !== 'string' || !isNumOrNull(p.diff) || !isNumOrNull(p.lo) || !isNumOrNull(p.hi) || typeof p.verdict !== 'string') {
        throw new ReportError(`paired[${i}] needs split, a, b, diff, lo, hi and verdict`);
      }
    });
  }
  if (v.bounds !== undefined) {
    const b = v.bounds;
    if (!isObj(b) || typeof b.task !== 'string' || typeof b.vocab !== 'number' || !Array.isArray(b.rows)) throw new ReportError('bounds needs task, vocab and a rows list');
    b.rows.forEach((r, i) => {
      if (!isObj(r) || typeof r.split !== 'string' || typeof r.budget !== 'number' || typeof r.ceiling !== 'number' || typeof r.floor !== 'number') {
        throw new ReportError(`bounds.rows[${i}] needs split, budget, ceiling and floor`);
      }
    });
  }
  checkMeasures(v);
  const report = v as unknown as ExperimentReport;
  // JSON has no NaN: a one-seed interval reads back as NaN, as the runner made it
  for (const s of report.summary) if (s.accuracyCi === null) (s as { accuracyCi: number }).accuracyCi = NaN;
  report.findings ??= [];
  return report;
}

const isNumArray = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number' || x === null);

/** The probes and the bits sweep (src/mas/measure-types.ts), where present: what Compare renders from them. */
function checkMeasures(v: Record<string, unknown>): void {
  if (v.probes !== undefined) {
    if (!Array.isArray(v.probes)) throw new ReportError('probes is not a list');
    v.probes.forEach((p, i) => {
      if (!isObj(p) || typeof p.method !== 'string' || typeof p.seed !== 'number' || !Array.isArray(p.targets) || !Array.isArray(p.cells)) {
        throw new ReportError(`probes[${i}] needs method, seed, targets and cells`);
      }
      const n = p.targets.length;
      p.targets.forEach((t, j) => {
        if (!isObj(t) || typeof t.name !== 'string' || typeof t.chance !== 'number' || typeof t.uniform !== 'number') throw new ReportError(`probes[${i}].targets[${j}] needs name, chance and uniform`);
      });
      p.cells.forEach((c, j) => {
        if (!isObj(c) || typeof c.sender !== 'string' || typeof c.receiver !== 'string' || typeof c.position !== 'number' || typeof c.layer !== 'number' || (c.kind !== 'k' && c.kind !== 'v') || !isNumArray(c.accuracy) || (c.accuracy as unknown[]).length !== n) {
          throw new ReportError(`probes[${i}].cells[${j}] needs sender, receiver, position, layer, kind 'k' or 'v' and one accuracy per target (${n})`);
        }
      });
    });
  }
  if (v.bits !== undefined) {
    if (!Array.isArray(v.bits)) throw new ReportError('bits is not a list');
    v.bits.forEach((b, i) => {
      if (!isObj(b) || typeof b.method !== 'string' || typeof b.seed !== 'number' || !isNumOrNull(b.unquantized) || !Array.isArray(b.levels) || typeof b.textBitsPerToken !== 'number') {
        throw new ReportError(`bits[${i}] needs method, seed, unquantized, levels and textBitsPerToken`);
      }
      b.levels.forEach((l, j) => {
        if (!isObj(l) || typeof l.bits !== 'number' || !isNumOrNull(l.accuracy)) throw new ReportError(`bits[${i}].levels[${j}] needs bits and accuracy`);
      });
    });
  }
}

/**
 * Per-episode outcomes, where a report has them: `episodes` maps each split to its list of episode
 * keys; every row of that split, and every control (heldout), may carry `outcomes`, one '0'/'1' per
 * episode of that list. A row with outcomes in a report without the split's list cannot be paired.
 */
function checkOutcomes(v: Record<string, unknown>): void {
  let lists: Record<string, unknown> = {};
  if (v.episodes !== undefined) {
    if (!isObj(v.episodes)) throw new ReportError('episodes is not an object of lists per split');
    lists = v.episodes;
    for (const [split, keys] of Object.entries(lists)) {
      if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw new ReportError(`episodes.${split} is not a list of episode keys`);
    }
  }
  const check = (what: string, split: string, o: unknown) => {
    if (o === undefined) return;
    if (typeof o !== 'string' || !/^[01]*$/.test(o)) throw new ReportError(`${what}.outcomes is not a string of 0 and 1`);
    const keys = lists[split] as string[] | undefined;
    if (!keys) throw new ReportError(`${what} has outcomes but the report lists no ${split} episodes (episodes.${split})`);
    if (o.length !== keys.length) throw new ReportError(`${what}.outcomes holds ${o.length} episodes, episodes.${split} lists ${keys.length}`);
  };
  (v.rows as Record<string, unknown>[]).forEach((r, i) => check(`rows[${i}]`, String(r.split), r.outcomes));
  (v.controls as Record<string, unknown>[]).forEach((c, i) => check(`controls[${i}]`, 'heldout', c.outcomes));
}

/** The report as JSON text, as `experiment --json` writes it. */
export function reportJson(report: ExperimentReport): string {
  return JSON.stringify(report, null, 2) + '\n';
}

/** One CSV field: quoted when it holds a comma, a quote or a newline. */
function field(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A CSV table (RFC 4180, header first, \n line ends). */
export function toCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return [header, ...rows].map((r) => r.map(field).join(',')).join('\n') + '\n';
}

/**
 * The report as one CSV: a line per method and split of the summary (mean accuracy, 95% interval
 * half-width over seeds, validity, entropy, message size, training seconds), then a line per method
 * and control (split "heldout", the control named, mean accuracy over seeds).
 */
export function reportCsv(report: ExperimentReport): string {
  const rows: unknown[][] = report.summary.map((s) => [
    s.method, s.split, '', s.seeds, s.accuracyMean, s.accuracyCi, s.validity, s.entropy, s.messageFloats, s.messageTokens, s.trainSeconds,
  ]);
  const keys = [...new Set(report.controls.map((c) => `${c.method}\u0000${c.control}`))];
  for (const k of keys) {
    const [method, control] = k.split('\u0000');
    const accs = report.controls.filter((c) => c.method === method && c.control === control).map((c) => c.accuracy);
    rows.push([method, 'heldout', control, accs.length, accs.reduce((a, b) => a + b, 0) / accs.length, '', '', '', '', '', '']);
  }
  return toCsv(['method', 'split', 'control', 'seeds', 'accuracy_mean', 'accuracy_ci95', 'validity', 'entropy', 'message_floats', 'message_tokens', 'train_seconds'], rows);
}
