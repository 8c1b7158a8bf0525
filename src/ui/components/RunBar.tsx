// The run controls across the top, as TensorFlow Playground's: play/pause, one step, reset, the
// step counter, a progress bar with steps/s and time left, and the run's state or error.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { RunMemoryReport, RunProgress } from '../../worker/api';
import { isTrainedMethod } from '../../mas/run-types';
import { useApp } from '../stores/app';
import { useCompare } from '../stores/compare';
import { useEnv } from '../stores/env';
import { useLibrary } from '../stores/library';
import { useRun } from '../stores/run';
import { baseBlocker, useRunMemory } from '../stores/setup-check';
import { copyBlocker, copyShownIntoNewRun } from '../stores/shown-run';
import { formatBytes as mb, formatDate, formatDuration, formatNum } from '../format';
import { setupVerdict } from '../verdict';
import { runConfigOf } from '../state';
import { TimeEstimate } from './TimeEstimate';

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


/** The run's predicted time left in seconds (the run bar's "left"; null unless it is running with a measured speed). */
export function secondsLeft(state: string, p: Pick<RunProgress, 'step' | 'totalSteps' | 'stepsPerSecond'> | null): number | null {
  return state === 'running' && p && p.stepsPerSecond > 0 ? Math.max(0, p.totalSteps - p.step) / p.stepsPerSecond : null;
}

export function MemoryLine({ report, error, batch }: { report: RunMemoryReport | null; error: string | null; batch: number }) {
  if (error) {
    return (
      <div className="memory-line refused small" role="alert" data-testid="memory-line">
        This run cannot start: {error}
      </div>
    );
  }
  if (!report) return null;
  return (
    <div className={`memory-line small${report.problem ? ' refused' : ''}`} data-testid="memory-line" title="Built on an accounting device by the engine's own code: the bytes the run will hold on the GPU (f32)">
      GPU memory: weights <b>{mb(report.weights)}</b> · adapters, gradients and AdamW <b>{mb(report.adapters)}</b> · activations at batch {batch} <b>{mb(report.activations)}</b> ={' '}
      <b data-testid="memory-total">{mb(report.total)}</b>; largest buffer {mb(report.largest.bytes)} of the {mb(report.bufferLimit)} one buffer may hold
      {report.problem && <span data-testid="memory-refusal"> — refused: {report.problem}</span>}
    </div>
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

  const [confirmReset, setConfirmReset] = useState(false);
  const blockers = useMemo(() => {
    const out: string[] = [];
    const verdict = setupVerdict(app);
    if (verdict.reason) out.push(`the ${verdict.kind === 'topology' ? 'topology' : 'setup'} cannot run: ${verdict.reason} (see Agents and messages)`);
    if (run.viewing) out.push('a stored run is open (close it to train)');
    const base = baseBlocker(app, models, libraryLoaded);
    if (base) out.push(base);
    if (pretraining) out.push('a base model is being pretrained');
    if (comparing) out.push('a comparison is running');
    return out;
  }, [app, models, libraryLoaded, pretraining, comparing, run.viewing]);
  const idle = run.state === 'idle' || run.state === 'done' || run.state === 'stopped' || run.state === 'error';
  // asked only once the library lists the base: on a first visit the shipped models are still being
  // stored when the setup first renders, and an estimate asked then is refused ("no base model") and
  // would stay refused until the setup changed
  const baseListed = libraryLoaded && models.some((m) => m.id === app.model);
  const memory = useRunMemory(app, envOk && idle && blockers.length === 0 && baseListed);
  const memoryBlocker = memory.error ?? memory.report?.problem ?? null;

  // a stored run opened read-only: its own figures (the live run's controls stay as they are)
  const v = run.viewing;
  const lastEval = v ? [...v.curves.evals].reverse().find((e) => e.accuracy !== null) : undefined;
  const p: RunProgress | null = v
    ? {
        state: 'done', step: v.stepsDone, totalSteps: v.config.steps, loss: v.curves.loss[v.curves.loss.length - 1] ?? NaN, heldoutLoss: lastEval?.loss ?? null,
        heldoutAccuracy: lastEval?.accuracy ?? null, tokensPerSecond: 0, stepsPerSecond: 0, elapsedSeconds: v.trainSeconds,
      }
    : run.progress;
  const total = p?.totalSteps ?? app.steps;
  const step = p?.step ?? 0;
  const frac = total > 0 ? Math.min(1, step / total) : 0;
  const sps = p?.stepsPerSecond ?? 0;
  const left = v ? null : secondsLeft(run.state, p);
  const active = run.state === 'running' || run.state === 'paused';
  const canStart = envOk && blockers.length === 0 && !memoryBlocker;
  const playDisabled = run.state === 'running' ? false : !canStart && run.state !== 'paused';

  // the bar sticks to the top: its height goes to --runbar-h, which the headings' scroll-margin-top
  // clears, so a link or a jump to a section never lands under the bar
  const barRef = useRef<HTMLElement>(null);
  useEffect(() => {
    const el = barRef.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const put = () => document.documentElement.style.setProperty('--runbar-h', `${Math.ceil(el.getBoundingClientRect().height)}px`);
    put();
    const ro = new ResizeObserver(put);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  return (
    <section className="runbar" aria-label="Run controls" ref={barRef}>
      <div className="runbar-buttons">
        <button
          className="round reset"
          title="Reset: drop the run's adapters; the next start begins from the seed (the run's record stays in the library)"
          aria-label="Reset"
          onClick={() => {
            // a run with steps taken is discarded only after a confirmation
            if (run.history.steps.length > 0 || run.state === 'running' || run.state === 'paused') setConfirmReset(true);
            else void run.reset();
          }}
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
            title={canStart || run.state === 'paused' ? 'Train' : `Cannot start: ${[...blockers, ...(memoryBlocker ? [memoryBlocker] : [])].join('; ') || 'WebGPU is not available'}`}
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
          <span className="muted">{isTrainedMethod(v?.config.method ?? run.config?.method ?? app.method) ? `/ ${total}` : 'evaluation only (training-free method)'}</span>
          <span className={`state-chip ${v ? v.status : run.starting ? 'starting' : run.state}`} data-testid={v ? 'view-state' : 'run-state'} title={run.starting ? 'building the agents and looking at them before training' : undefined}>
            {v ? `stored · ${v.status}` : run.starting && run.state === 'running' ? 'starting' : run.state}
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
          <span title={!v && run.priorSeconds > 0 ? `${formatDuration(run.priorSeconds)} before this leg (the run was continued)` : undefined}>
            elapsed <b data-testid="elapsed">{formatDuration(p ? p.elapsedSeconds + (v ? 0 : run.priorSeconds) : null)}</b>
          </span>
          <span>
            left <b data-testid="time-left">{formatDuration(left)}</b>
          </span>
        </div>
        {!v && <MemoryLine report={memory.report} error={memory.error} batch={app.batch} />}
        {!v && (
          <TimeEstimate
            mode="run"
            request={envOk && blockers.length === 0 && !memoryBlocker ? (({ method, seed, ...base }) => ({ base, methods: [method], seeds: [seed] }))(runConfigOf(app)) : null}
            blocked={active ? 'a run is active: its time left is shown above' : !envOk ? 'WebGPU is not available' : blockers[0] ?? memoryBlocker}
          />
        )}
      </div>
      <div className="runbar-side">
        {confirmReset && run.state !== 'idle' && (
          <div className="confirm-box small" role="alertdialog" aria-label="Discard this run?" data-testid="reset-confirm">
            Discard this run{run.history.steps.length ? ` (${run.history.steps.length} steps)` : ''}? Its adapters are dropped unless saved; its record stays under Runs.{' '}
            <button type="button" className="btn tiny danger" onClick={() => { setConfirmReset(false); void run.reset(); }}>
              Reset
            </button>{' '}
            <button type="button" className="btn tiny" onClick={() => setConfirmReset(false)}>
              Cancel
            </button>
          </div>
        )}
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
      {run.viewing && (
        <div className="runbar-message notice compact view-banner" role="status" data-testid="view-banner">
          <span>
            Viewing the stored run <b>{run.viewing.name}</b> ({run.viewing.status}, {run.viewing.stepsDone} steps, {formatDate(run.viewing.createdAt)}): read-only.
            {run.viewing.message ? ` ${run.viewing.message}.` : ''}
          </span>
          <button type="button" className="btn tiny" disabled={copyBlocker(run.state) !== null} onClick={copyShownIntoNewRun} title="Its setup (shown under Setup) into the page and the link, editable, for a new run; the stored run closes" data-testid="view-copy-setup">
            Copy its setup into a new run
          </button>
          <button type="button" className="btn tiny" onClick={run.closeView} data-testid="close-view">
            Close
          </button>
        </div>
      )}
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
