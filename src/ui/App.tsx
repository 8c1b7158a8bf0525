// The page: run controls on top; setup, topology and live curves side by side (everything a person
// configures on one screen); the latent-message view below; then compare, the library and the
// environment. Without WebGPU the environment panel comes first and says why nothing can train.
import { useEffect, useState } from 'react';
import { Guide } from './components/Guide';
import { SOFTWARE_PRESET, isSoftwareAdapter } from './state';
import { formatDate, formatDuration } from './format';
import { ComparePanel } from './components/ComparePanel';
import { CurvesPanel } from './components/CurvesPanel';
import { EnvPanel } from './components/EnvPanel';
import { LatentView } from './components/LatentView';
import { LibraryPanel } from './components/LibraryPanel';
import { RunBar, secondsLeft } from './components/RunBar';
import { SetupPanel } from './components/SetupPanel';
import { TopologyEditor } from './components/TopologyEditor';
import { useApp } from './stores/app';
import { useEnv } from './stores/env';
import { useLibrary } from './stores/library';
import { useRun } from './stores/run';

function GpuChip() {
  const env = useEnv((s) => s.env);
  if (!env) return <span className="chip-status muted">looking for a GPU…</span>;
  if (!env.ok) return <span className="chip-status bad">no WebGPU</span>;
  const r = env.report;
  const name = [r.vendor, r.architecture].filter(Boolean).join(' ') || r.description || 'GPU';
  return (
    <a className={`chip-status ${env.selfTest.passed ? 'good' : 'bad'}`} href="#env-title" title={r.description} onClick={(e) => {
      e.preventDefault();
      document.getElementById('env-title')?.scrollIntoView({ behavior: 'smooth' });
    }}>
      {env.selfTest.passed ? '●' : '✗'} {name}
      {r.isFallbackAdapter ? ' (software)' : ''}
    </a>
  );
}

/** On a CPU implementation of WebGPU: say so, and offer the tiny preset with fewer steps in one click. */
function SoftwareNotice() {
  const env = useEnv((s) => s.env);
  const app = useApp((s) => s.state);
  const set = useApp((s) => s.set);
  const runState = useRun((s) => s.state);
  const progress = useRun((s) => s.progress);
  const [hidden, setHidden] = useState(false);
  if (!env?.ok || !isSoftwareAdapter(env.report) || hidden) return null;
  // offered only while another base is selected (a tiny run with more steps is the person's choice)
  const tinySelected = app.model === SOFTWARE_PRESET.model;
  const name = [env.report.vendor, env.report.architecture, env.report.description].filter(Boolean).join(' ') || 'a software adapter';
  // the time is the run bar's own prediction from the measured speed, never a promise made before measuring
  const left = secondsLeft(runState, progress);
  return (
    <div className="notice compact software-notice" role="status" data-testid="software-notice">
      <span>
        WebGPU is running on the CPU here ({name}): no GPU was found, so training is tens to hundreds of times slower than on a laptop GPU.
        {tinySelected
          ? ` The tiny base model is selected${left !== null ? `; this run ends in about ${formatDuration(left)} at its measured speed` : ''}.`
          : ` The tiny preset (the ${SOFTWARE_PRESET.model.replace('builtin:', '')} base model, ${SOFTWARE_PRESET.steps} steps, batch ${SOFTWARE_PRESET.batch}) is far faster.`}
        {left === null && ' “Estimate time” beside Train times this setup here before it starts.'}
      </span>
      {!tinySelected && (
        <button type="button" className="btn tiny primary" disabled={runState === 'running' || runState === 'paused'} onClick={() => set({ ...SOFTWARE_PRESET })} data-testid="use-tiny-preset">
          Use the tiny model
        </button>
      )}
      <button type="button" className="link" onClick={() => setHidden(true)} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}

/** After a reload or a closed tab: the run that was going on is offered for reopening (its record was saved every few seconds). */
function InterruptedNotice() {
  const r = useLibrary((s) => s.interrupted);
  const dismiss = useLibrary((s) => s.dismissInterrupted);
  const view = useRun((s) => s.view);
  const continueRun = useRun((s) => s.continueRun);
  if (!r) return null;
  return (
    <div className="notice compact" role="status" data-testid="interrupted-notice">
      <span>
        The run <b>{r.name}</b> was interrupted ({r.kind === 'run' ? `step ${r.stepsDone} of ${r.totalSteps}, ` : ''}started {formatDate(r.createdAt)}): the tab was closed or
        reloaded. Its record keeps what it measured until then.
      </span>
      <button type="button" className="btn tiny primary" onClick={() => { dismiss(); void view(r.id); }} data-testid="reopen-interrupted">
        Reopen its record
      </button>
      {r.continueStep !== undefined && r.continueStep !== null && (
        <button type="button" className="btn tiny" onClick={() => { dismiss(); void continueRun(r.id); }} data-testid="continue-interrupted" title="From its adapters and AdamW's state at its last checkpoint (taken every 30 s)">
          Continue it from step {r.continueStep}
        </button>
      )}
      <button type="button" className="link" onClick={dismiss} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}

function LinkProblems() {
  const problems = useApp((s) => s.linkProblems);
  const dismiss = useApp((s) => s.dismissLinkProblems);
  if (!problems.length) return null;
  return (
    <div className="notice compact link-problems" role="status" data-testid="link-problems">
      <div>
        <b>The link had values this page cannot use; the link now holds what is used instead:</b>
        <ul className="link-problem-list">
          {problems.map((p, i) => (
            <li key={i}>{p}</li>
          ))}
        </ul>
      </div>
      <button type="button" className="link" onClick={dismiss} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}

export function App() {
  const env = useEnv((s) => s.env);
  const runState = useRun((s) => s.state);
  const refresh = useLibrary((s) => s.refresh);
  useEffect(() => {
    void refresh();
  }, [refresh]);
  const locked = runState === 'running' || runState === 'paused';
  const noGpu = env !== null && !env.ok;
  const [guide, setGuide] = useState(false);

  return (
    <div className="app">
      <header className="topbar">
        <h1>
          Latent<span>MAS</span> Playground
        </h1>
        <p className="subtitle">Train tiny transformer agents that talk through their key-value caches — on your GPU, in this tab.</p>
        <span className="spacer" />
        <GpuChip />
        <button type="button" className="guide-button" onClick={() => setGuide(true)} aria-label="Guide: how to read this page" title="How to read this page" data-testid="guide-button">
          ?
        </button>
      </header>
      {guide && <Guide onClose={() => setGuide(false)} />}
      <div className="notices">
        <LinkProblems />
        <InterruptedNotice />
        <SoftwareNotice />
      </div>
      {noGpu && (
        <div className="layout">
          <EnvPanel />
        </div>
      )}
      <RunBar />
      <main className="layout">
        <div className="workspace">
          <SetupPanel locked={locked} />
          <div className="center-col">
            <TopologyEditor locked={locked} />
            <LatentView />
          </div>
          <CurvesPanel />
        </div>
        <div className="lower">
          <LibraryPanel />
          <ComparePanel />
        </div>
        {!noGpu && <EnvPanel />}
      </main>
    </div>
  );
}
