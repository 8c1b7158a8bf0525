// The run controls across the top, as TensorFlow Playground's: play/pause, one step, reset, the
// step counter, a progress bar with steps/s and time left, and the run's state or error.
import { useMemo } from 'react';
import { validateTopology } from '../../mas/topology';
import { validateRunConfig } from '../../mas/methods';
import { runConfigOf } from '../state';
import { isTrainedMethod, useApp, useCompare, useEnv, useLibrary, useRun } from '../store';
import { formatDuration, formatNum } from '../format';

/** A message with the engine's technical tail (the kernels in flight) folded away. */
export function ErrorText({ text }: { text: string }) {
  const m = /\s*\[last kernels: ([^\]]*)\]/.exec(text);
  if (!m) return <span>{text}</span>;
  const main = (text.slice(0, m.index) + text.slice(m.index + m[0].length)).replace(/\.(\s*\.)+/g, '.');
  return (
    <span>
      {main}{' '}
      <details className="inline-details">
        <summary>kernels in flight</summary>
        <code>{m[1]}</code>
      </details>
    </span>
  );
}

export function RunBar() {
  const app = useApp((s) => s.state);
  const run = useRun();
  const envOk = useEnv((s) => s.env?.ok === true);
  const models = useLibrary((s) => s.models);
  const libraryLoaded = useLibrary((s) => s.loaded);
  const pretraining = useLibrary((s) => s.pretrain.running);
  const comparing = useCompare((s) => s.running);

  const blockers = useMemo(() => {
    const out: string[] = [];
    try {
      validateRunConfig(runConfigOf(app));
    } catch (e) {
      const msg = (e as Error).message.replace(/^run config: /, '');
      out.push(validateTopology(app.topology).length ? 'the topology is not valid (see the editor)' : msg);
    }
    if (libraryLoaded && !models.some((m) => m.id === app.model)) out.push(`the base model '${app.model}' is not in the library`);
    if (pretraining) out.push('a base model is being pretrained');
    if (comparing) out.push('a comparison is running');
    return out;
  }, [app, models, libraryLoaded, pretraining, comparing]);

  const p = run.progress;
  const total = p?.totalSteps ?? app.steps;
  const step = p?.step ?? 0;
  const frac = total > 0 ? Math.min(1, step / total) : 0;
  const sps = p?.stepsPerSecond ?? 0;
  const left = run.state === 'running' && sps > 0 ? (total - step) / sps : null;
  const active = run.state === 'running' || run.state === 'paused';
  const canStart = envOk && blockers.length === 0;
  const playDisabled = run.state === 'running' ? false : !canStart && run.state !== 'paused';

  return (
    <section className="runbar" aria-label="Run controls">
      <div className="runbar-buttons">
        <button
          className="round reset"
          title="Reset: drop the run's adapters; the next start begins from the seed"
          aria-label="Reset"
          onClick={() => void run.reset()}
          disabled={run.state === 'idle'}
        >
          ⟲
        </button>
        {run.state === 'running' ? (
          <button className="round play" aria-label="Pause" title="Pause (takes effect within one step)" onClick={() => void run.pause()}>
            ❚❚
          </button>
        ) : (
          <button
            className="round play"
            aria-label={run.state === 'paused' ? 'Resume' : 'Train'}
            title={canStart || run.state === 'paused' ? 'Train' : `Cannot start: ${blockers.join('; ') || 'WebGPU is not available'}`}
            onClick={() => void run.play()}
            disabled={playDisabled}
          >
            ▶
          </button>
        )}
        <button
          className="round step"
          aria-label="Step"
          title="One training step"
          onClick={() => void run.step()}
          disabled={!isTrainedMethod(run.config?.method ?? app.method) || !(run.state === 'paused' || (!active && canStart))}
        >
          ▶❙
        </button>
      </div>
      <div className="runbar-progress">
        <div className="runbar-counter">
          <span className="label">Step</span>
          <span className="big" data-testid="step-counter">
            {String(step).padStart(4, '0')}
          </span>
          <span className="muted">{isTrainedMethod(run.config?.method ?? app.method) ? `/ ${total}` : 'evaluation only (training-free method)'}</span>
          <span className={`state-chip ${run.starting ? 'starting' : run.state}`} data-testid="run-state" title={run.starting ? 'building the agents and looking at them before training' : undefined}>
            {run.starting && run.state === 'running' ? 'starting' : run.state}
          </span>
        </div>
        <div className="bar" role="progressbar" aria-valuemin={0} aria-valuemax={total} aria-valuenow={step} aria-label="Training progress">
          <div className="fill" style={{ width: `${(frac * 100).toFixed(2)}%` }} />
        </div>
        <div className="runbar-stats">
          <span title="training loss of the last step">
            loss <b data-testid="last-loss">{formatNum(p?.loss ?? null, 4)}</b>
          </span>
          <span title="accuracy on held-out episodes at the last evaluation">
            held-out acc <b data-testid="last-acc">{p?.heldoutAccuracy != null ? `${(p.heldoutAccuracy * 100).toFixed(1)}%` : '—'}</b>
          </span>
          <span>
            <b>{sps ? sps.toFixed(sps < 10 ? 2 : 1) : '—'}</b> steps/s
          </span>
          <span>
            <b>{p?.tokensPerSecond ? Math.round(p.tokensPerSecond).toLocaleString('en-US') : '—'}</b> tok/s
          </span>
          <span>
            elapsed <b>{formatDuration(p?.elapsedSeconds ?? null)}</b>
          </span>
          <span>
            left <b data-testid="time-left">{formatDuration(left)}</b>
          </span>
        </div>
      </div>
      <div className="runbar-side">
        {!run.message && !canStart && run.state === 'idle' && envOk && blockers.length > 0 && (
          <div className="muted small" data-testid="run-blockers">
            Cannot train yet: {blockers.join('; ')}.
          </div>
        )}
        {!run.message && run.savedNote && (
          <div className="ok small" role="status">
            {run.savedNote}
          </div>
        )}
      </div>
      {run.message && (
        <div className={`runbar-message ${run.state === 'error' ? 'alert' : 'notice'} compact`} role={run.state === 'error' ? 'alert' : 'status'} data-testid="run-message">
          <ErrorText text={run.message} />
          <button className="link" onClick={run.dismiss} aria-label="Dismiss">
            ✕
          </button>
        </div>
      )}
    </section>
  );
}
