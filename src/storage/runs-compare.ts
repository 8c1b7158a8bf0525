// Several stored runs side by side (issue 21 item 5): the fields of their configurations that differ,
// labels that tell them apart, and their curves put on one x axis (step, or training time) for one
// chart. Pure functions of records: no DOM, tested in tests/runs-table.test.ts.
import type { RunRecord } from './records';

/** One leaf of a configuration: its dotted path (lists by index: topology.agents.1.name) and its value as text. */
export function flattenConfig(v: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v) && v.length && v.every((x) => x === null || typeof x !== 'object')) {
    // a list of plain values (LoRA targets) reads best as one field
    out.set(path, v.map(String).join(','));
  } else if (v !== null && typeof v === 'object') {
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v as Record<string, unknown>);
    if (!entries.length) out.set(path, Array.isArray(v) ? '(none)' : '{}');
    for (const [k, x] of entries) if (x !== undefined) flattenConfig(x, path ? `${path}.${k}` : k, out);
  } else if (v !== undefined) {
    out.set(path, v === null ? 'null' : String(v));
  }
  return out;
}

/** A field that differs among configurations: its path and each one's value (null where that one lacks it). */
export interface DiffRow {
  path: string;
  values: (string | null)[];
}

/**
 * The fields whose values are not all the same, in the first configuration's order (then the others'
 * new fields). A field one configuration lacks (an optional one left at its default) counts as
 * differing and shows as null there: the configurations say different things about it.
 */
export function configDiff(configs: readonly unknown[]): DiffRow[] {
  const flat = configs.map((c) => flattenConfig(c));
  const paths: string[] = [];
  const seen = new Set<string>();
  for (const f of flat) for (const k of f.keys()) if (!seen.has(k)) (seen.add(k), paths.push(k));
  return paths
    .map((path) => ({ path, values: flat.map((f) => f.get(path) ?? null) }))
    .filter((r) => r.values.some((v) => v !== r.values[0]));
}

/**
 * A label per run that tells it apart: its name, and where names repeat, the differing fields that
 * split them (`lr 0.003`), or its position when nothing does.
 */
export function runLabels(names: readonly string[], diff: readonly DiffRow[]): string[] {
  return names.map((n, i) => {
    if (names.filter((x) => x === n).length === 1) return n;
    const twins = names.map((x, j) => (x === n ? j : -1)).filter((j) => j >= 0);
    const parts = diff
      .filter((d) => twins.some((j) => d.values[j] !== d.values[i]))
      .slice(0, 2)
      .map((d) => `${d.path.split('.').pop()} ${d.values[i] ?? '—'}`);
    return parts.length ? `${n} (${parts.join(', ')})` : `${n} (#${twins.indexOf(i) + 1})`;
  });
}

export type OverlayMetric = 'loss' | 'heldoutLoss' | 'heldoutAccuracy';
export type OverlayX = 'step' | 'time';

export interface OverlayCurve {
  xs: number[];
  ys: number[];
  /** Points left out: not finite, or not positive on a log axis. */
  dropped: number;
}

/**
 * Seconds of training at each step of `rec`: a record keeps no clock per step, so its training seconds
 * are spread evenly over the steps it did (the mean pace; TensorBoard's wall times of a page export
 * are made the same way, src/storage/tensorboard.ts).
 */
export function secondsAt(rec: Pick<RunRecord, 'trainSeconds' | 'stepsDone'>, step: number): number {
  return rec.stepsDone > 0 ? (step * rec.trainSeconds) / rec.stepsDone : 0;
}

/**
 * One run's curve for the overlay: training loss by step, or the held-out loss or accuracy at the
 * evaluation steps; x by step or by training seconds; y as log10 when `logY` (the chart labels ticks
 * with 10^y), where values at or below 0 cannot be drawn and are counted in `dropped`.
 */
export function overlayCurve(rec: Pick<RunRecord, 'curves' | 'trainSeconds' | 'stepsDone'>, metric: OverlayMetric, x: OverlayX, logY: boolean): OverlayCurve {
  const pts: [number, number | null][] =
    metric === 'loss'
      ? rec.curves.steps.map((s, i) => [s, rec.curves.loss[i]])
      : rec.curves.evals.map((e) => [e.step, metric === 'heldoutLoss' ? e.loss : e.accuracy]);
  const xs: number[] = [];
  const ys: number[] = [];
  let dropped = 0;
  for (const [s, y] of pts) {
    if (y === null || !Number.isFinite(y) || (logY && y <= 0)) {
      dropped++;
      continue;
    }
    xs.push(x === 'step' ? s : secondsAt(rec, s));
    ys.push(logY ? Math.log10(y) : y);
  }
  return { xs, ys, dropped };
}
