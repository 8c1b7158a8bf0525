// Compare: several methods on the same task, topology and seeds, run in the worker as the CLI's
// experiment does; the summary as a chart of mean accuracy with 95% bootstrap intervals over seeds and
// episodes (hand-drawn SVG; no interval below the minimum seeds, the seeds' modes where they split)
// and as a table, the paired differences, the controls against their own episodes, the bounds of the
// message budget (CompareStats.tsx), a report's probes and measured bits (CompareMeasures.tsx), and the
// plain-language findings.
import { useEffect, useMemo, useRef, useState } from 'react';
import { reportCsv, reportJson } from '../../storage/report';
import { download } from '../engine';
import { makeTask, type Split } from '../../tasks/tasks';
import { METHODS, type ExperimentReport, type ExperimentRowSummary, type MethodName } from '../../worker/api';
import { formatNum, formatPercent } from '../format';
import { useApp } from '../stores/app';
import { useCompare } from '../stores/compare';
import { useEnv } from '../stores/env';
import { useLibrary } from '../stores/library';
import { useRun } from '../stores/run';
import { compareBlocker, useSetupCheck } from '../stores/setup-check';
import { METHOD_INFO } from './SetupPanel';
import { LineChart, Legend } from './LineChart';
import { compareAccuracySvg, compareCaption, compareLossSeries, compareLossSvg } from '../figure-compare';
import { pngFile, svgFile } from '../figure-png';
import { accuracyOf, BoundsList, comparisonsOf, ControlsTable, intervalWords, PairedTable } from './CompareStats';
import { CompareMeasures } from './CompareMeasures';
import { TimeEstimate } from './TimeEstimate';
import { runConfigOf } from '../state';
import type { AccuracySummary } from '../../mas/paired';

/** Training loss of each trained method, averaged over its seeds (smoothed lightly for display). */
function CompareCurves({ curves }: { curves: NonNullable<ExperimentReport['curves']> }) {
  // the same series as the exported figure (src/ui/figure-compare.ts)
  const { series, xMax } = compareLossSeries(curves);
  if (!series.length) return null;
  return (
    <div className="compare-curves">
      <div className="chart-head">
        <span className="chart-title">Training loss (mean over seeds)</span>
        <Legend items={series.map((x) => ({ name: x.name, color: x.color }))} />
      </div>
      <LineChart height={110} xMax={xMax} series={series} />
    </div>
  );
}

const SPLIT_COLORS: Record<Split, string> = { train: '#868e96', heldout: '#3b5bdb', ood: '#e8590c' };

function CompareChart({ rows, acc, chance }: { rows: ExperimentRowSummary[]; acc: (x: ExperimentRowSummary) => AccuracySummary; chance: number }) {
  const methods = [...new Set(rows.map((r) => r.method))];
  const splits = [...new Set(rows.map((r) => r.split))];
  const W = Math.max(360, methods.length * 92 + 60);
  const H = 226;
  // the bottom holds the method labels, then the split legend, then the caption on a line of its own
  // (beside the legend it overlapped the second split's name at the narrowest width)
  const pad = { l: 40, r: 10, t: 12, b: 60 };
  const pw = W - pad.l - pad.r;
  const ph = H - pad.t - pad.b;
  const x = (i: number, j: number) => pad.l + ((i + 0.5) / methods.length) * pw + (j - (splits.length - 1) / 2) * 14;
  const y = (v: number) => pad.t + (1 - Math.min(1, Math.max(0, v))) * ph;
  return (
    <svg xmlns="http://www.w3.org/2000/svg" className="compare-chart" viewBox={`0 0 ${W} ${H}`} width="100%" style={{ maxWidth: W }} role="img" aria-label="Accuracy by method with 95% intervals" data-testid="compare-chart" fontFamily="system-ui, sans-serif">
      <rect width={W} height={H} fill="#fff" />
      {[0, 0.25, 0.5, 0.75, 1].map((v) => (
        <g key={v}>
          <line x1={pad.l} x2={W - pad.r} y1={y(v)} y2={y(v)} stroke="#eef0f4" />
          <text x={pad.l - 5} y={y(v)} textAnchor="end" dominantBaseline="middle" fontSize={11} fill="#5c6477">
            {Math.round(v * 100)}%
          </text>
        </g>
      ))}
      <line x1={pad.l} x2={W - pad.r} y1={y(chance)} y2={y(chance)} stroke="#868e96" strokeDasharray="4 3" />
      <text x={pad.l + 4} y={y(chance) - 4} textAnchor="start" fontSize={11} fill="#5c6477" stroke="#fff" strokeWidth={3} paintOrder="stroke">
        chance {Math.round(chance * 100)}%
      </text>
      {methods.map((m, i) => (
        <text key={m} x={pad.l + ((i + 0.5) / methods.length) * pw} y={H - pad.b + 16} textAnchor="middle" fontSize={11.5} fill="#343a40">
          {m}
        </text>
      ))}
      {rows.map((r) => {
        const i = methods.indexOf(r.method);
        const j = splits.indexOf(r.split);
        const cx = x(i, j);
        const c = SPLIT_COLORS[r.split];
        const a = acc(r);
        // the bootstrap interval lies in [0, 1] by construction; none below the minimum seeds, none over modes
        const bar = !a.modes && a.lo !== null && a.hi !== null;
        return (
          <g key={`${r.method}-${r.split}`}>
            <title>
              {r.method} · {r.split}: {formatPercent(r.accuracyMean)} {intervalWords(a)} ({r.seeds} seeds)
            </title>
            {bar && (
              <>
                <line x1={cx} x2={cx} y1={y(a.lo!)} y2={y(a.hi!)} stroke={c} strokeWidth={1.5} />
                <line x1={cx - 4} x2={cx + 4} y1={y(a.lo!)} y2={y(a.lo!)} stroke={c} />
                <line x1={cx - 4} x2={cx + 4} y1={y(a.hi!)} y2={y(a.hi!)} stroke={c} />
              </>
            )}
            {a.modes && (
              // the two modes: a tick at the top of the lower one and at the bottom of the upper one
              <>
                <line x1={cx - 5} x2={cx + 5} y1={y(a.modes.below)} y2={y(a.modes.below)} stroke={c} strokeWidth={2} />
                <line x1={cx - 5} x2={cx + 5} y1={y(a.modes.at)} y2={y(a.modes.at)} stroke={c} strokeWidth={2} />
              </>
            )}
            <circle cx={cx} cy={y(r.accuracyMean)} r={4} fill={a.modes ? '#fff' : c} stroke={c} />
          </g>
        );
      })}
      {splits.map((s, j) => (
        <g key={s} transform={`translate(${pad.l + j * 90}, ${H - 28})`}>
          <circle cx={5} cy={0} r={4} fill={SPLIT_COLORS[s]} />
          <text x={13} y={0} dominantBaseline="middle" fontSize={11.5} fill="#343a40">
            {s}
          </text>
        </g>
      ))}
      <text x={pad.l} y={H - 9} dominantBaseline="middle" fontSize={11} fill="#5c6477">
        mean, 95% interval over seeds × episodes
      </text>
    </svg>
  );
}

export function ComparePanel() {
  const app = useApp((s) => s.state);
  const set = useApp((s) => s.set);
  const cmp = useCompare();
  const envOk = useEnv((s) => s.env?.ok === true);
  const runActive = useRun((s) => s.state === 'running' || s.state === 'paused');
  const pretraining = useLibrary((s) => s.pretrain.running);
  const [seedText, setSeedText] = useState(app.compareSeeds.join(', '));
  // the field follows the setup when it changes elsewhere (a link opened in this tab)
  useEffect(() => setSeedText(app.compareSeeds.join(', ')), [app.compareSeeds]);
  const fileRef = useRef<HTMLInputElement>(null);
  const r = cmp.report;
  // the results are labelled by the report's own task and difficulty (a stored or opened report need not match the setup)
  const shownTask = r && typeof r.args.task === 'string' ? r.args.task : app.task;
  const shownDifficulty = r && Number.isInteger(Number(r.args.difficulty)) ? Number(r.args.difficulty) : app.difficulty;
  const base = `compare-${shownTask}-d${shownDifficulty}`;
  const save = (name: string, text: string) => download({ name, bytes: new TextEncoder().encode(text) });
  const task = useMemo(() => {
    try {
      return makeTask(shownTask, shownDifficulty);
    } catch {
      return makeTask(app.task, app.difficulty);
    }
  }, [shownTask, shownDifficulty, app.task, app.difficulty]);
  const comparisons = useMemo(() => (r ? comparisonsOf(r) : []), [r]);
  const accOf = useMemo(() => {
    const cache = new Map<string, AccuracySummary>();
    return (x: ExperimentRowSummary) => {
      const k = `${x.method}\u0000${x.split}`;
      if (!cache.has(k)) cache.set(k, accuracyOf(r!, x));
      return cache.get(k)!;
    };
  }, [r]);
  // the exported figures, drawn from the report (never copied from the page)
  const chartTitle = `${shownTask} d${shownDifficulty}, ${r ? new Set(r.rows.map((x) => x.seed)).size : 0} seeds`;
  const accuracyFigure = () =>
    compareAccuracySvg({ rows: r!.summary.filter((x) => x.split !== 'train'), acc: accOf, chance: r!.chance?.heldout ?? task.chance, title: `Accuracy by method · ${chartTitle}`, caption: compareCaption(r!) });
  const lossFigure = useMemo(() => (r ? compareLossSvg(r, `Training loss by method · ${chartTitle}`) : null), [r, chartTitle]);
  const seedsBad = !/^\s*\d+(\s*,\s*\d+)*\s*$/.test(seedText);

  const toggle = (m: MethodName) => {
    const on = app.compareMethods.includes(m);
    set({ compareMethods: METHODS.filter((x) => (x === m ? !on : app.compareMethods.includes(x))) });
  };
  const commitSeeds = () => {
    if (seedsBad) return;
    const seeds = [...new Set(seedText.split(',').map((s) => Number(s.trim())))];
    set({ compareSeeds: seeds });
  };
  // the run bar's own refusals of this setup (the base model, each method's verdict, the worker's estimate): a comparison that cannot run is not started
  const models = useLibrary((s) => s.models);
  const libraryLoaded = useLibrary((s) => s.loaded);
  const check = useSetupCheck();
  const setupBlocked = compareBlocker(app, app.compareMethods, models, libraryLoaded, check);
  const blocked = !envOk ? 'WebGPU is not available' : runActive ? 'a training run is active: reset it first' : pretraining ? 'a base model is being pretrained' : setupBlocked;

  return (
    <section className="panel compare" aria-labelledby="compare-title">
      <h2 id="compare-title">Compare methods</h2>
      <p className="muted small">
        Trains and evaluates each method on <b>{app.task}</b> (difficulty {app.difficulty}) with this page’s topology, model and
        settings, once per seed; accuracy on held-out and out-of-distribution episodes.
      </p>
      <div className="chips toggle" role="group" aria-label="Methods to compare">
        {METHODS.map((m) => (
          <button key={m} type="button" className={app.compareMethods.includes(m) ? 'on' : ''} aria-pressed={app.compareMethods.includes(m)} title={METHOD_INFO[m].about} disabled={cmp.running} onClick={() => toggle(m)}>
            {m}
          </button>
        ))}
      </div>
      <div className="compare-run">
        <div className="field inline">
          <label htmlFor="compare-seeds">Seeds</label>
          <input
            id="compare-seeds"
            value={seedText}
            aria-invalid={seedsBad || undefined}
            disabled={cmp.running}
            onChange={(e) => setSeedText(e.target.value)}
            onBlur={commitSeeds}
            onKeyDown={(e) => e.key === 'Enter' && commitSeeds()}
            data-testid="compare-seeds"
          />
        </div>
        <button
          type="button"
          className="btn primary"
          disabled={cmp.running || !!blocked || seedsBad || app.compareMethods.length === 0}
          title={blocked ?? undefined}
          onClick={() => {
            commitSeeds();
            void cmp.run();
          }}
          data-testid="compare-run"
        >
          {cmp.running ? 'Running…' : `Run ${app.compareMethods.length} × ${app.compareSeeds.length}`}
        </button>
        {blocked && !cmp.running && <span className="muted small" data-testid="compare-blocked">Cannot compare: {blocked}</span>}
      </div>
      <TimeEstimate
        mode="compare"
        request={blocked || seedsBad || app.compareMethods.length === 0 ? null : (({ method: _m, seed: _s, ...base }) => ({ base, methods: app.compareMethods, seeds: app.compareSeeds }))(runConfigOf(app))}
        blocked={cmp.running ? 'a comparison is running' : blocked ?? (seedsBad ? 'the seeds must be numbers separated by commas' : app.compareMethods.length === 0 ? 'choose at least one method' : null)}
      />
      {(cmp.running || cmp.fraction > 0) && (
        <div className="compare-progress">
          <div className="bar thin" role="progressbar" aria-valuemin={0} aria-valuemax={1} aria-valuenow={cmp.fraction}>
            <div className="fill" style={{ width: `${(cmp.fraction * 100).toFixed(1)}%` }} />
          </div>
          <span className="muted small">{cmp.message}</span>
        </div>
      )}
      {cmp.error && (
        <div className="alert compact" role="alert">
          {cmp.error}
        </div>
      )}
      <div className="compare-files small">
        <button type="button" className="link" onClick={() => fileRef.current?.click()} data-testid="open-report" title="Show a report written by this page's export or by `npm run experiment -- --json`">
          Open a report (JSON)…
        </button>
        <input
          ref={fileRef}
          type="file"
          hidden
          accept=".json,application/json"
          data-testid="open-report-input"
          onChange={async (e) => {
            const f = e.target.files?.[0];
            e.target.value = '';
            if (f) cmp.openReport(await f.text(), f.name);
          }}
        />
      </div>
      {r && cmp.shown && (
        <div className="notice compact" role="status" data-testid="compare-shown">
          <span>
            Showing {cmp.shown.id ? 'the stored comparison' : 'the report'} <b>{cmp.shown.name}</b> (read-only).
          </span>
          <button type="button" className="link" onClick={cmp.clearShown} aria-label="Close the report">
            ✕
          </button>
        </div>
      )}
      {r && (
        <div className="compare-results" data-testid="compare-results">
          <h3 className="compare-title" data-testid="compare-setting">
            {shownTask} (difficulty {shownDifficulty}), {[...new Set(r.rows.map((x) => x.seed))].length} seeds
          </h3>
          <div className="compare-exports">
            <span className="muted small">Save:</span>
            <button type="button" className="btn tiny" onClick={() => save(`${base}.csv`, reportCsv(r))} data-testid="compare-csv">
              CSV
            </button>
            <button type="button" className="btn tiny" onClick={() => save(`${base}.json`, reportJson(r))} data-testid="compare-json" title="The format `npm run experiment -- --json` writes">
              JSON
            </button>
            <button type="button" className="btn tiny" data-testid="compare-svg" title="Accuracy by method as a standalone figure (title, axes, caption)" onClick={() => download(svgFile(`${base}.svg`, accuracyFigure()))}>
              Chart SVG
            </button>
            <button type="button" className="btn tiny" data-testid="compare-png" onClick={() => void pngFile(`${base}.png`, accuracyFigure()).then(download, (e: unknown) => console.error('could not save the figure', e))}>
              Chart PNG
            </button>
            {lossFigure && (
              <>
                <button type="button" className="btn tiny" data-testid="compare-loss-svg" title="Training loss by method as a standalone figure" onClick={() => download(svgFile(`${base}-loss.svg`, lossFigure))}>
                  Loss SVG
                </button>
                <button type="button" className="btn tiny" data-testid="compare-loss-png" onClick={() => void pngFile(`${base}-loss.png`, lossFigure).then(download, (e: unknown) => console.error('could not save the figure', e))}>
                  Loss PNG
                </button>
              </>
            )}
          </div>
          <CompareChart rows={r.summary.filter((x) => x.split !== 'train')} acc={accOf} chance={r.chance?.heldout ?? task.chance} />
          {r.curves && <CompareCurves curves={r.curves} />}
          <div className="table-wrap">
          <table className="table dense summary" data-testid="compare-table">
            <thead>
              <tr>
                <th>method</th>
                <th>split</th>
                <th>accuracy</th>
                <th title="95% bootstrap interval over seeds and episodes; none below 3 seeds; where the seeds split into modes, how many reach the upper one">95% interval</th>
                <th title="answers in the task's format">valid</th>
                <th title="entropy of the answers (nats)">entropy</th>
                <th title="floats crossing between agents per episode">msg floats</th>
                <th title="tokens crossing between agents per episode">msg tokens</th>
                <th title="seconds of training per seed">train&nbsp;s</th>
              </tr>
            </thead>
            <tbody>
              {r.summary.map((x) => (
                <tr key={`${x.method}-${x.split}`}>
                  <td>{x.method}</td>
                  <td>{x.split}</td>
                  <td>
                    <b>{formatPercent(x.accuracyMean)}</b>
                  </td>
                  <td>{intervalWords(accOf(x))}</td>
                  <td>{formatPercent(x.validity, 0)}</td>
                  <td>{formatNum(x.entropy, 2)}</td>
                  <td>{x.messageFloats.toLocaleString('en-US')}</td>
                  <td>{formatNum(x.messageTokens, 3)}</td>
                  <td>{x.trainSeconds < 0.01 ? '0' : formatNum(x.trainSeconds, 3)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          </div>
          <PairedTable list={comparisons} />
          <ControlsTable list={comparisons} />
          <BoundsList report={r} />
          <CompareMeasures report={r} />
          {r.findings.length > 0 && (
            <ul className="findings">
              {r.findings.map((f, i) => (
                <li key={i}>{f}</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
