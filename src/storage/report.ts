// The comparison report in the one format both sides write: `npm run experiment -- --json FILE`
// (src/cli/experiment.ts) and the page's Compare export (src/ui). One reader for both
// (readExperimentReport), and the CSV both offer (reportCsv). Plain data, no DOM.
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
  const report = v as unknown as ExperimentReport;
  // JSON has no NaN: a one-seed interval reads back as NaN, as the runner made it
  for (const s of report.summary) if (s.accuracyCi === null) (s as { accuracyCi: number }).accuracyCi = NaN;
  report.findings ??= [];
  return report;
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
