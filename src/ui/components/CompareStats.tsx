// The statistics of a comparison on the page, as the runner states them (src/mas/stats.ts,
// paired.ts, bounds.ts): each method's accuracy with its bootstrap interval (or its modes, or no
// interval below the minimum seeds), the paired differences, each control against its method's own
// episodes with the rule that decided "at chance", and what a message of the budget could carry.
// A report written before these existed gets them computed here from its rows (over seeds only).
import { formatBound } from '../../mas/bounds';
import { accuracySummary, pairedComparisons, type AccuracySummary, type PairedComparison } from '../../mas/paired';
import { MIN_SEEDS } from '../../mas/stats';
import type { ControlName, ExperimentReport, ExperimentRowSummary } from '../../worker/api';
import type { Split } from '../../tasks/tasks';
import { formatPercent } from '../format';

/** How each control reads (src/mas/run.ts: noise, rotate and permute act on latent K/V only). */
export const CONTROL_LABELS: Record<ControlName, string> = {
  shuffle: 'messages shuffled',
  zero: 'trace zeroed',
  noise: 'trace replaced by matched Gaussian noise',
  rotate: 'received K/V rotated per head',
  permute: "each sender's latent positions permuted",
};

/** A summary row's accuracy as the runner states it: its own interval fields, or computed from the report's rows. */
export function accuracyOf(report: ExperimentReport, x: ExperimentRowSummary): AccuracySummary {
  if (x.accuracyLo !== undefined) {
    return { mean: x.accuracyMean, lo: x.accuracyLo ?? null, hi: x.accuracyHi ?? null, seeds: x.seeds, episodes: 0, basis: x.basis ?? 'seeds', modes: x.modes ?? null };
  }
  return accuracySummary(report, x.method, x.split) ?? { mean: x.accuracyMean, lo: null, hi: null, seeds: x.seeds, episodes: 0, basis: 'seeds', modes: null };
}

/** "[40.1%, 47.0%]", "2 seeds: no interval", or "3 of 6 seeds reach ≥ 80.3%". */
export function intervalWords(a: AccuracySummary): string {
  if (a.modes) return `${a.modes.k} of ${a.modes.n} seeds reach ≥ ${formatPercent(a.modes.at)} (the others ≤ ${formatPercent(a.modes.below)})`;
  if (a.lo === null || a.hi === null) return `${a.seeds} seed${a.seeds === 1 ? '' : 's'}: no interval`;
  return `[${formatPercent(a.lo)}, ${formatPercent(a.hi)}]`;
}

const points = (x: number) => `${x >= 0 ? '+' : '−'}${(Math.abs(x) * 100).toFixed(1)}`;

/** "+4.0 [+1.2, +6.9] points" or "+4.0 points (2 seeds: no interval)". */
export function differenceWords(c: Pick<PairedComparison, 'diff' | 'lo' | 'hi' | 'seedsA' | 'seedsB'>): string {
  if (c.lo === null || c.hi === null) {
    const n = Math.min(c.seedsA, c.seedsB);
    return `${points(c.diff)} points (${n} seed${n === 1 ? '' : 's'}: no interval)`;
  }
  return `${points(c.diff)} [${points(c.lo)}, ${points(c.hi)}] points`;
}

function verdictWords(c: PairedComparison): string {
  if (c.verdict === 'no-interval') return `no verdict (an interval needs ${MIN_SEEDS} seeds per method)`;
  if (c.verdict === 'tie') return 'no reliable difference (the interval holds 0)';
  return `${c.verdict === 'a' ? c.a : c.b} ahead (the interval excludes 0)`;
}

/** The report's comparisons: its own, or computed from its rows (a report written before they existed). */
export function comparisonsOf(report: ExperimentReport): PairedComparison[] {
  return report.paired ?? pairedComparisons(report, ['heldout', 'ood'] as Split[]);
}

export function PairedTable({ list }: { list: PairedComparison[] }) {
  const pairs = list.filter((c) => !c.control);
  if (!pairs.length) return null;
  const unpaired = pairs.some((c) => c.basis === 'seeds');
  return (
    <div className="table-wrap">
      <table className="table dense" data-testid="compare-paired">
        <caption className="small">
          A − B: the difference of accuracies with its 95% bootstrap interval over seeds and the shared episodes (paired per episode);
          A is ahead only when the interval excludes 0.
          {unpaired && ' This report has no per-episode outcomes: the intervals are over seeds only, unpaired.'}
        </caption>
        <thead>
          <tr>
            <th>split</th>
            <th>A</th>
            <th>B</th>
            <th>A − B</th>
            <th>seeds</th>
            <th>verdict</th>
          </tr>
        </thead>
        <tbody>
          {pairs.map((c) => (
            <tr key={`${c.split}-${c.a}-${c.b}`}>
              <td>{c.split}</td>
              <td>{c.a}</td>
              <td>{c.b}</td>
              <td>{differenceWords(c)}</td>
              <td>
                {c.seedsA} / {c.seedsB}
              </td>
              <td>
                {verdictWords(c)}
                {(c.modesA || c.modesB) && <span className="muted"> · seeds split into modes</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ControlsTable({ list }: { list: PairedComparison[] }) {
  const controls = list.filter((c) => c.control);
  if (!controls.length) return null;
  return (
    <div className="table-wrap">
      <table className="table dense" data-testid="compare-controls">
        <caption className="small">
          Controls on held-out, each against the same method’s uncontrolled run on the same episodes; “at chance” is decided by the
          rule named beside it (its interval reaching chance, or within two binomial standard errors of chance with fewer than {MIN_SEEDS} seeds).
        </caption>
        <thead>
          <tr>
            <th>method</th>
            <th>control</th>
            <th>accuracy</th>
            <th>against uncontrolled</th>
            <th>at chance?</th>
          </tr>
        </thead>
        <tbody>
          {controls.map((c) => (
            <tr key={`${c.a}-${c.control}`}>
              <td>{c.a}</td>
              <td>{CONTROL_LABELS[c.control!] ?? c.control}</td>
              <td>
                {formatPercent(c.meanA)}
                {c.controlLo !== null && c.controlLo !== undefined && <span className="muted"> [{formatPercent(c.controlLo)}, {formatPercent(c.controlHi)}]</span>}
              </td>
              <td>
                {differenceWords(c)} <span className="muted">(uncontrolled {formatPercent(c.meanB)})</span>
              </td>
              <td>
                {c.atChance === undefined ? '—' : c.atChance ? 'yes' : 'no'}
                <span className="muted"> ({c.chanceBand})</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function BoundsList({ report }: { report: ExperimentReport }) {
  const b = report.bounds;
  if (!b) return <p className="muted small">This report predates the bounds of its message budget (npm run experiment writes them now).</p>;
  return (
    <div className="small" data-testid="compare-bounds">
      <b>What a message could carry</b> ({b.task}, difficulty {b.difficulty}, vocabulary {b.vocab}):
      <ul>
        {b.rows.map((x, i) => (
          <li key={i}>{formatBound(x)}</li>
        ))}
        {Object.entries(b.valuesOnly ?? {}).map(([split, v]) => (
          <li key={split}>
            {split}: a message of the values without their keys ({v!.entries} entries) reaches {formatPercent(v!.accuracy)}, as does the 1-token
            message “the most frequent value”; its loss floor is {v!.natsPerToken.toFixed(3)} nats per answer token
          </li>
        ))}
      </ul>
    </div>
  );
}
