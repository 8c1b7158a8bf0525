// Live curves, right column: training loss (raw faint, smoothed on top) with held-out loss, and
// held-out accuracy against chance. Evaluate on every split, and save the run's adapters.
import { useMemo, useState } from 'react';
import { makeTask } from '../../tasks/tasks';
import { formatNum, formatPercent } from '../format';
import { isTrainedMethod, useApp, useRun } from '../store';
import { LineChart, Legend, smooth } from './LineChart';

const C = { train: '#3b5bdb', heldout: '#e8590c', acc: '#2b8a3e', chance: '#868e96' };

export function CurvesPanel() {
  const app = useApp((s) => s.state);
  const set = useApp((s) => s.set);
  const run = useRun();
  const { history, version } = run;
  const cfg = run.config;
  const task = useMemo(() => makeTask(cfg?.task ?? app.task, cfg?.difficulty ?? app.difficulty), [cfg, app.task, app.difficulty]);
  const total = run.progress?.totalSteps ?? cfg?.steps ?? app.steps;

  const smoothed = useMemo(() => smooth(history.loss, app.smoothing), [version, history, app.smoothing]); // eslint-disable-line react-hooks/exhaustive-deps
  const ev = history.evals;
  const evLossX = ev.filter((e) => e.loss !== null).map((e) => e.step);
  const evLossY = ev.filter((e) => e.loss !== null).map((e) => e.loss!);
  const evAccX = ev.filter((e) => e.accuracy !== null).map((e) => e.step);
  const evAccY = ev.filter((e) => e.accuracy !== null).map((e) => e.accuracy!);

  const method = cfg?.method ?? app.method;
  const trained = isTrainedMethod(method);
  const canSave = trained && (run.state === 'paused' || run.state === 'done' || run.state === 'stopped') && history.steps.length > 0;
  const [name, setName] = useState('');
  const defaultName = `${cfg?.task ?? app.task}-${method}-seed${cfg?.seed ?? app.seed}`;

  return (
    <section className="panel curves" aria-labelledby="curves-title">
      <h2 id="curves-title">Training</h2>
      <div className="chart-head">
        <span className="chart-title">Loss</span>
        <Legend
          items={[
            { name: 'train (raw)', color: C.train, faint: true },
            { name: 'train (smoothed)', color: C.train },
            { name: 'held-out', color: C.heldout },
          ]}
        />
      </div>
      <LineChart
        testId="loss-chart"
        height={128}
        xMax={total}
        empty={trained || run.state !== 'idle' ? 'Press ▶ to train: the loss appears here step by step.' : 'This method does not train; press ▶ to evaluate it.'}
        series={[
          { name: 'train raw', color: C.train, xs: history.steps, ys: history.loss, kind: 'raw', quiet: true },
          { name: 'train', color: C.train, xs: history.steps, ys: smoothed, kind: 'line' },
          { name: 'held-out', color: C.heldout, xs: evLossX, ys: evLossY, kind: 'points' },
        ]}
      />
      <div className="field inline small">
        <label htmlFor="smoothing">Smoothing</label>
        <input
          id="smoothing"
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={app.smoothing}
          onChange={(e) => set({ smoothing: Number(e.target.value) })}
        />
        <output>{app.smoothing.toFixed(2)}</output>
      </div>
      <div className="chart-head">
        <span className="chart-title">Held-out accuracy</span>
        <Legend
          items={[
            { name: 'held-out', color: C.acc },
            { name: 'chance', color: C.chance, dashed: true },
          ]}
        />
      </div>
      <LineChart
        testId="accuracy-chart"
        height={112}
        xMax={total}
        yMin={0}
        yMax={1}
        yFormat={(v) => `${Math.round(v * 100)}%`}
        refLines={[{ y: task.chance, label: `chance ${formatPercent(task.chance, 0)}`, color: C.chance }]}
        empty={`Evaluated ${!trained ? 'once' : (cfg?.evalEvery ?? app.evalEvery) ? `every ${cfg?.evalEvery ?? app.evalEvery} steps` : 'at the end'} on ${cfg?.evalSize ?? app.evalSize} held-out episodes.`}
        series={[{ name: 'accuracy', color: C.acc, xs: evAccX, ys: evAccY, kind: 'points' }]}
      />
      <div className="curves-actions">
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
        {trained && (
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
      {run.evalRows && (
        <table className="table dense" data-testid="eval-table">
          <thead>
            <tr>
              <th>split</th>
              <th>accuracy</th>
              <th title="answers in the task's format">valid</th>
              <th title="entropy of the answers given (nats)">entropy</th>
              <th>n</th>
            </tr>
          </thead>
          <tbody>
            {run.evalRows.map((r) => (
              <tr key={r.split}>
                <td>{r.split}</td>
                <td>
                  <b>{formatPercent(r.accuracy)}</b>
                </td>
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
