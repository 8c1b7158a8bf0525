// Compare runs (issue 21 item 5): the runs ticked in the Runs table overlaid on one chart (training
// loss, held-out loss or held-out accuracy; x by step or training time; log y), a legend by run, and
// the fields of their configurations that differ. The records are read from the library; the curves
// and the diff come from src/storage/runs-compare.ts.
import { useEffect, useMemo } from 'react';
import { configDiff, overlayCurve, runLabels, type OverlayMetric, type OverlayX } from '../../storage/runs-compare';
import { formatNum } from '../format';
import { useApp } from '../stores/app';
import { useLibrary } from '../stores/library';
import { useRunsView, type ComparedRun } from '../stores/runs-view';
import { Legend, LineChart, smooth, type Series } from './LineChart';

/** One colour per run, in the order ticked (distinct in hue and lightness). */
const PALETTE = ['#3b5bdb', '#e8590c', '#2b8a3e', '#c2255c', '#7048e8', '#0b7285', '#a07400', '#495057'];

const METRICS: Record<OverlayMetric, string> = { loss: 'training loss', heldoutLoss: 'held-out loss', heldoutAccuracy: 'held-out accuracy' };

export function CompareRuns() {
  const runs = useLibrary((s) => s.runs);
  const selected = useRunsView((s) => s.selected);
  const loaded = useRunsView((s) => s.loaded);
  const loadError = useRunsView((s) => s.loadError);
  const { metric, x, logY } = useRunsView();
  const setView = useRunsView((s) => s.setView);
  const load = useRunsView((s) => s.load);
  const clearSelection = useRunsView((s) => s.clearSelection);
  const smoothing = useApp((s) => s.state.smoothing);

  // the ticked runs still in the library, each at the state its list entry shows
  const want = useMemo(
    () => selected.map((id) => runs.find((r) => r.id === id)).filter((r): r is NonNullable<typeof r> => !!r).map((r) => ({ id: r.id, updatedAt: r.updatedAt })),
    [selected, runs],
  );
  useEffect(() => {
    void load(want);
  }, [want, load]);
  const recs = want.map((w) => loaded[w.id]).filter((r): r is ComparedRun => !!r);
  const diff = useMemo(() => configDiff(recs.map((r) => r.config)), [recs]);
  // numbered as the diff's columns
  const labels = runLabels(recs.map((r) => r.name), diff).map((l, i) => `${i + 1} · ${l}`);

  if (!want.length) return null;
  const curves = recs.map((r) => overlayCurve(r, metric, x, logY));
  const series: Series[] = [];
  recs.forEach((_, i) => {
    const c = curves[i];
    const color = PALETTE[i % PALETTE.length];
    if (metric === 'loss' && smoothing > 0) {
      series.push({ name: `${labels[i]} raw`, color, xs: c.xs, ys: c.ys, kind: 'raw', quiet: true });
      series.push({ name: labels[i], color, xs: c.xs, ys: smooth(c.ys, smoothing), kind: 'line' });
    } else {
      series.push({ name: labels[i], color, xs: c.xs, ys: c.ys, kind: metric === 'loss' ? 'line' : 'points' });
    }
  });
  const xMax = Math.max(1, ...curves.flatMap((c) => c.xs), ...(x === 'step' ? recs.map((r) => r.config.steps) : []));
  const dropped = curves.reduce((n, c) => n + c.dropped, 0);
  const acc = metric === 'heldoutAccuracy';
  const yFormat = logY ? (v: number) => formatNum(10 ** v, 2) : acc ? (v: number) => `${Math.round(v * 100)}%` : (v: number) => formatNum(v, 3);
  const noEvals = metric !== 'loss' && recs.length > 0 && curves.every((c) => c.xs.length === 0);

  return (
    <div className="compare-runs" data-testid="compare-runs">
      <div className="chart-head">
        <h3 className="inline-h">Compare runs</h3>
        <span className="small muted">{want.length} ticked{want.length < 2 ? ': tick another run to overlay it' : ''}</span>
        <button type="button" className="link small" onClick={clearSelection} data-testid="compare-runs-clear">
          untick all
        </button>
      </div>
      <div className="compare-runs-options small">
        <label className="field inline">
          <span>y</span>
          <select value={metric} onChange={(e) => setView({ metric: e.target.value as OverlayMetric })} data-testid="compare-runs-metric">
            {Object.entries(METRICS).map(([k, v]) => <option key={k} value={k}>{v}</option>)}
          </select>
        </label>
        <label className="field inline">
          <span>x</span>
          <select value={x} onChange={(e) => setView({ x: e.target.value as OverlayX })} data-testid="compare-runs-x">
            <option value="step">step</option>
            <option value="time">training time (s)</option>
          </select>
        </label>
        <label className="check" title="A log10 y axis (values at or below 0 cannot be drawn on it and are left out)">
          <input type="checkbox" checked={logY} onChange={(e) => setView({ logY: e.target.checked })} data-testid="compare-runs-logy" /> log y
        </label>
      </div>
      {loadError && <div className="alert compact" role="alert">{loadError}</div>}
      <div data-testid="compare-runs-legend">
        <Legend items={recs.map((_, i) => ({ name: labels[i], color: PALETTE[i % PALETTE.length] }))} />
      </div>
      <LineChart
        testId="compare-runs-chart"
        height={170}
        xMax={xMax}
        fromZero={!logY && !acc}
        {...(acc && !logY ? { yMin: 0, yMax: 1 } : {})}
        yFormat={yFormat}
        series={series}
        empty={noEvals ? 'None of these runs was evaluated on held-out during training.' : 'Reading the runs…'}
      />
      <div className="small muted" data-testid="compare-runs-caption">
        {METRICS[metric]}{logY ? ' (log scale)' : ''} by {x === 'step' ? 'step' : 'training seconds: a record keeps no clock per step, so each run’s training time is spread evenly over its steps (its mean pace)'}
        {metric === 'loss' && smoothing > 0 ? ` · smoothed ${smoothing.toFixed(2)} as in Training, raw faint` : ''}
        {metric !== 'loss' ? ' · at the evaluation steps' : ''}
        {dropped > 0 ? ` · ${dropped} point${dropped === 1 ? '' : 's'} left out (${logY ? 'at or below 0, or ' : ''}not a number)` : ''}
      </div>
      {recs.length >= 2 && (
        <>
          <h4 className="sub-h">Configuration: the fields that differ</h4>
          {diff.length === 0 ? (
            <div className="small muted" data-testid="compare-runs-diff">These runs have the same configuration (seed included).</div>
          ) : (
            <div className="table-wrap">
              <table className="table diff" data-testid="compare-runs-diff">
                <thead>
                  <tr>
                    <th>field</th>
                    {recs.map((r, i) => (
                      <th key={r.id} title={labels[i]}>
                        <i className="swatch" style={{ background: PALETTE[i % PALETTE.length] }} /> {i + 1}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {diff.map((d) => (
                    <tr key={d.path} data-testid="diff-row">
                      <td className="path">{d.path}</td>
                      {d.values.map((v, i) => (
                        <td key={i} className={v === null ? 'muted' : undefined} title={v ?? 'not set (the default)'}>
                          {v ?? 'not set'}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </div>
  );
}
