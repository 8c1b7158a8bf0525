import { EnvPanel } from './components/EnvPanel';

export function App() {
  return (
    <div className="app">
      <header className="topbar">
        <h1>
          Latent<span>MAS</span> Playground
        </h1>
        <p className="subtitle">Train tiny transformer agents that talk through their key-value caches — on your GPU, in this tab.</p>
      </header>
      <main className="layout">
        <EnvPanel />
      </main>
    </div>
  );
}
