// Curves, right column: training loss (raw faint, smoothed on top) with held-out loss, and held-out
// accuracy against chance, both drawn only at the steps where an evaluation was made. A method that
// trains nothing shows its evaluation as a labelled value. Evaluate on every split (with intervals),
// save the run's adapters, export the run. A stored run opened read-only shows its record.
import { useMemo, useState } from 'react';
import { makeTask } from '../../tasks/tasks';
import { formatNum, formatPercent } from '../format';
import { isTrainedMethod } from '../../mas/run-types';
import { useApp } from '../stores/app';
import { useLibrary } from '../stores/library';
import { useRun } from '../stores/run';
import { useShownRun } from '../stores/shown-run';
import { LineChart, Legend, smooth } from './LineChart';
import { download, getEngine } from '../engine';
import { slug } from '../export';
import { runChartSvgs } from '../figure-run';
import { pngFile, svgFile } from '../figure-png';

const C = { train: '#3b5bdb', heldout: '#e8590c', acc: '#2b8a3e', chance: '#868e96' };

export function CurvesPanel() {
  const app = useApp((s) => s.state);
  const set = useApp((s) => s.set);
  const run = useRun();
  const shown = useShownRun();
  const exportRun = useLibrary((s) => s.exportRun);
  const libBusy = useLibrary((s) => s.busy);
  const { history, version } = shown;
  const cfg = shown.config;
  const task = useMemo(() => makeTask(cfg?.task ?? app.task, cfg?.difficulty ?? app.difficulty), [cfg, app.task, app.difficulty]);
  const total = shown.progress?.totalSteps || cfg?.steps || app.steps;
  // in the link like the smoothing (a shared link shows the chart as its author saw it)
  const fit = app.fitY;
  const setFit = (fitY: boolean) => set({ fitY });

  const smoothed = useMemo(() => smooth(history.loss, app.smoothing), [version, history, app.smoothing]); // eslint-disable-line react-hooks/exhaustive-deps
  const ev = history.evals;
  const evLoss = ev.filter((e) => e.loss !== null);
  const evAcc = ev.filter((e) => e.accuracy !== null);

  const method = cfg?.method ?? app.method;
  const trained = isTrainedMethod(method);
  const live = !shown.readOnly;
  const canSave = live && trained && (run.state === 'paused' || run.state === 'done' || run.state === 'stopped') && (history.steps.length > 0 || !!run.loadedFrom);
  const [name, setName] = useState('');
  const defaultName = `${cfg?.task ?? app.task}-${method}-seed${cfg?.seed ?? app.seed}`;
  const recordId = shown.record?.id ?? run.recordId;
  const ended = shown.readOnly || run.state === 'done' || run.state === 'stopped' || run.state === 'paused' || run.state === 'error';
  const untrainedEval = !trained ? evAcc[evAcc.length - 1] ?? null : null;
  const heldRow = shown.evalRows?.find((r) => r.split === 'heldout');
  // a chart as a figure for a paper, from the stored record (titled, captioned with its config), smoothed and scaled as shown
  const [figureError, setFigureError] = useState<string | null>(null);
  const canFigure = !!recordId && ended && !libBusy && !(live && run.state === 'running');
  const saveChart = async (which: 'loss' | 'accuracy', format: 'svg' | 'png') => {
    if (!recordId) return;
    setFigureError(null);
    try {
      if (live) await run.persist(true);
      const rec = await getEngine().runRecord(recordId);
      const svg = runChartSvgs(rec, { smoothing: app.smoothing, fitY: fit })[which];
      const file = `${slug(rec.name)}-${which}.${format}`;
      download(format === 'svg' ? svgFile(file, svg) : await pngFile(file, svg));
    } catch (e) {
      setFigureError(`Could not save the ${which} chart: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const saveLinks = (which: 'loss' | 'accuracy') => (
    <span className="small muted" title={canFigure ? 'The chart as a figure: title, axis labels, legend, the run’s configuration in a caption' : 'Available once the run has stopped'}>
      save{' '}
      {(['svg', 'png'] as const).map((f) => (
        <button key={f} type="button" className="link small" disabled={!canFigure} onClick={() => void saveChart(which, f)} data-testid={`${which}-chart-${f}`}>
          {f.toUpperCase()}
        </button>
      ))}
    </span>
  );

  return (
    <section className="panel curves" aria-labelledby="curves-title">
      <h2 id="curves-title">{shown.readOnly ? 'Training (stored run)' : 'Training'}</h2>
      {!trained && (shown.state !== 'idle' || shown.readOnly) ? (
        <div className="untrained-value" data-testid="untrained-value">
          <div className="muted small">{method} trains nothing: its held-out evaluation</div>
          {untrainedEval ? (
            <>
              <div className="big-value">
                {formatPercent(untrainedEval.accuracy)} <span className="muted small">held-out accuracy</span>
              </div>
              <div className="small">
                loss {formatNum(untrainedEval.loss, 3)} · {cfg?.evalSize ?? app.evalSize} episodes
                {heldRow?.ci95 ? ` · 95% interval ${formatPercent(heldRow.ci95[0])}–${formatPercent(heldRow.ci95[1])}` : ''} · chance {formatPercent(task.chance, 0)}
              </div>
            </>
          ) : (
            <div className="muted">evaluating…</div>
          )}
        </div>
      ) : (
        <>
          <div className="chart-head">
            <span className="chart-title">Loss</span>
            <Legend
              items={[
                { name: 'train (raw)', color: C.train, faint: true },
                { name: 'train (smoothed)', color: C.train },
                { name: 'held-out', color: C.heldout },
              ]}
            />
            {saveLinks('loss')}
          </div>
          <LineChart
            testId="loss-chart"
            height={132}
            xMax={total}
            fromZero={!fit}
            empty={trained || shown.state !== 'idle' ? 'Press ▶ to train: the loss appears here step by step.' : 'This method does not train; press ▶ to evaluate it.'}
            series={[
              { name: 'train raw', color: C.train, xs: history.steps, ys: history.loss, kind: 'raw', quiet: true },
              { name: 'train', color: C.train, xs: history.steps, ys: smoothed, kind: 'line' },
              { name: 'held-out', color: C.heldout, xs: evLoss.map((e) => e.step), ys: evLoss.map((e) => e.loss!), kind: 'points' },
            ]}
          />
          <div className="curves-options small">
            <div className="field inline small">
              <label htmlFor="smoothing">Smoothing</label>
              <input id="smoothing" type="range" min={0} max={0.99} step={0.01} value={app.smoothing} onChange={(e) => set({ smoothing: Number(e.target.value) })} />
              <output>{app.smoothing.toFixed(2)}</output>
            </div>
            <label className="check" title="Fit the y axis to the data (small changes look large), or start it at 0">
              <input type="checkbox" checked={fit} onChange={(e) => setFit(e.target.checked)} data-testid="loss-fit" /> fit y to data
            </label>
          </div>
          <div className="chart-head">
            <span className="chart-title">Held-out accuracy</span>
            <Legend
              items={[
                { name: 'held-out (at each evaluation)', color: C.acc },
                { name: 'chance', color: C.chance, dashed: true },
              ]}
            />
            {saveLinks('accuracy')}
          </div>
          <LineChart
            testId="accuracy-chart"
            height={116}
            xMax={total}
            yMin={0}
            yMax={1}
            yFormat={(v) => `${Math.round(v * 100)}%`}
            refLines={[{ y: task.chance, label: `chance ${formatPercent(task.chance, 0)}`, color: C.chance }]}
            empty={`Evaluated ${(cfg?.evalEvery ?? app.evalEvery) ? `every ${cfg?.evalEvery ?? app.evalEvery} steps and at the end` : 'at the end'} on ${cfg?.evalSize ?? app.evalSize} held-out episodes.`}
            series={[{ name: 'held-out', color: C.acc, xs: evAcc.map((e) => e.step), ys: evAcc.map((e) => e.accuracy!), kind: 'points' }]}
          />
        </>
      )}
      {figureError && (
        <div className="alert compact" role="alert">
          {figureError}
        </div>
      )}
      <div className="curves-actions">
        {live && (
          <button
            type="button"
            className="btn small"
            disabled={run.state === 'idle' || run.state === 'running' || run.state === 'error' || run.evaluating}
            onClick={() => void run.evaluate()}
            data-testid="evaluate"
            title="Accuracy on the train, held-out and out-of-distribution splits"
          >
            {run.evaluating ? 'Evaluating…' : 'Evaluate all splits'}
          </button>
        )}
        <button
          type="button"
          className="btn small"
          disabled={!recordId || !ended || !!libBusy || (live && run.state === 'running')}
          title="One zip: the run bundle (run.json, base, PEFT adapters, episodes, batches: docs/run-bundle.md) with CSV, SVG and PNG of the curves, tables and heatmaps"
          onClick={async () => {
            if (!recordId) return;
            if (live) await run.persist(true);
            await exportRun(recordId);
          }}
          data-testid="export-run"
        >
          Export run
        </button>
        {live && method === 'c2c' && (
          <span className="muted small" data-testid="c2c-fuser-note">c2c trains a fuser, not adapters: it is kept in the run&rsquo;s record and its exported run bundle (c2c_fuser.safetensors)</span>
        )}
        {live && trained && method !== 'c2c' && (
          <form
            className="save-form"
            onSubmit={(e) => {
              e.preventDefault();
              void run.save(name.trim() || defaultName);
            }}
          >
            <input
              aria-label="Adapter name"
              placeholder={defaultName}
              value={name}
              onChange={(e) => setName(e.target.value)}
              disabled={!canSave || run.saving}
              data-testid="adapter-name-input"
            />
            <button type="submit" className="btn small primary" disabled={!canSave || run.saving} data-testid="save-adapters" title={canSave ? 'Store the trained adapters in the library' : 'Pause or finish a training run to save its adapters'}>
              {run.saving ? 'Saving…' : 'Save adapters'}
            </button>
          </form>
        )}
      </div>
      {shown.evalRows && (
        <table className="table dense" data-testid="eval-table">
          <thead>
            <tr>
              <th>split</th>
              <th>accuracy</th>
              <th title="Wilson 95% interval over the episodes">95% interval</th>
              <th title="answers in the task's format">valid</th>
              <th title="entropy of the answers given (nats)">entropy</th>
              <th>n</th>
            </tr>
          </thead>
          <tbody>
            {shown.evalRows.map((r) => (
              <tr key={r.split}>
                <td>{r.split}</td>
                <td>
                  <b>{formatPercent(r.accuracy)}</b>
                </td>
                <td className="muted">{r.ci95 ? `${formatPercent(r.ci95[0])}–${formatPercent(r.ci95[1])}` : '—'}</td>
                <td>{formatPercent(r.validity, 0)}</td>
                <td>{formatNum(r.entropy, 2)}</td>
                <td>{r.episodes}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
