// The page: run controls on top; setup, topology and live curves side by side (everything a person
// configures on one screen); the latent-message view below; then compare, the library and the
// environment. Without WebGPU the environment panel comes first and says why nothing can train.
import { useEffect } from 'react';
import { ComparePanel } from './components/ComparePanel';
import { CurvesPanel } from './components/CurvesPanel';
import { EnvPanel } from './components/EnvPanel';
import { LatentView } from './components/LatentView';
import { LibraryPanel } from './components/LibraryPanel';
import { RunBar } from './components/RunBar';
import { SetupPanel } from './components/SetupPanel';
import { TopologyEditor } from './components/TopologyEditor';
import { useApp, useEnv, useLibrary, useRun } from './store';

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

function LinkProblems() {
  const problems = useApp((s) => s.linkProblems);
  const dismiss = useApp((s) => s.dismissLinkProblems);
  if (!problems.length) return null;
  return (
    <div className="notice compact link-problems" role="status" data-testid="link-problems">
      <div>
        {problems.map((p, i) => (
          <div key={i}>{p}</div>
        ))}
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

  return (
    <div className="app">
      <header className="topbar">
        <h1>
          Latent<span>MAS</span> Playground
        </h1>
        <p className="subtitle">Train tiny transformer agents that talk through their key-value caches — on your GPU, in this tab.</p>
        <span className="spacer" />
        <GpuChip />
      </header>
      <LinkProblems />
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
