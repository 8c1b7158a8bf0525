// Environment panel: the WebGPU adapter the engine worker got, its limits and features, the
// self-test, and the browser storage check. Missing WebGPU is explained, not hidden.
import { useEffect, useState } from 'react';
import { useEnv } from '../stores/env';
import { useLibrary } from '../stores/library';
import { formatBytes, formatLimit } from '../format';
import { NO_WEBGPU_HELP } from '../../gpu/errors';

export function EnvPanel() {
  const { env, storage, loadEnv, loadStorage, persist } = useEnv();
  // one source for the storage figures: the library's estimate (refreshed after every library change)
  const usage = useLibrary((s) => s.usage);
  const quota = useLibrary((s) => s.quota);
  const persisted = useLibrary((s) => s.persisted);
  const [showFeatures, setShowFeatures] = useState(false);
  useEffect(() => {
    // once per page (the panel moves to the top when WebGPU is missing: a second mount must not check again)
    void loadEnv();
    void loadStorage();
  }, [loadEnv, loadStorage]);

  return (
    <section className="panel env-panel" aria-labelledby="env-title">
      <h2 id="env-title">Environment</h2>
      {!env && <p className="muted" data-testid="env-status">Starting the engine worker and looking for a GPU…</p>}
      {env && !env.ok && (
        <div className="alert" role="alert" data-testid="no-webgpu">
          <strong>{env.kind === 'no-webgpu' ? 'WebGPU is not available' : 'The GPU engine failed to start'}</strong>
          <p>{env.message}</p>
          {env.kind === 'no-webgpu' && !env.message.includes(NO_WEBGPU_HELP) && <p>{NO_WEBGPU_HELP}</p>}
        </div>
      )}
      {env?.ok && (
        <>
          <dl className="kv" data-testid="adapter">
            <dt>Adapter</dt>
            <dd data-testid="adapter-name">
              {[env.report.vendor, env.report.architecture, env.report.device].filter(Boolean).join(' · ') || 'unnamed'}
              {env.report.isFallbackAdapter && <span className="tag warn">software fallback</span>}
            </dd>
            {env.report.description && (
              <>
                <dt>Description</dt>
                <dd>{env.report.description}</dd>
              </>
            )}
            <dt>Self-test</dt>
            <dd data-testid="selftest" className={env.selfTest.passed ? 'ok' : 'bad'}>
              {env.selfTest.passed ? '✓ passed' : '✗ failed'} — {env.selfTest.name}, max error{' '}
              {env.selfTest.maxError.toExponential(1)} (tolerance {env.selfTest.tolerance.toExponential(0)}),{' '}
              {env.selfTest.milliseconds.toFixed(0)} ms
            </dd>
          </dl>
          <table className="limits" data-testid="limits">
            <thead>
              <tr>
                <th>Limit</th>
                <th>Device</th>
                <th>Adapter max</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(env.report.limits).map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td>{formatLimit(k, v)}</td>
                  <td className="muted">{formatLimit(k, env.report.adapterLimits[k] ?? v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <button className="link" onClick={() => setShowFeatures((s) => !s)}>
            {showFeatures ? 'Hide' : 'Show'} {env.report.features.length} features
          </button>
          {showFeatures && (
            <ul className="chips" data-testid="features">
              {env.report.features.map((f) => (
                <li key={f} className={env.report.enabledFeatures.includes(f) ? 'on' : undefined}>
                  {f}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      <h3>Storage</h3>
      {!storage && <p className="muted">Checking IndexedDB…</p>}
      {storage && (
        <dl className="kv" data-testid="storage">
          <dt>IndexedDB</dt>
          <dd data-testid="storage-status" className={storage.indexedDb ? 'ok' : 'bad'}>
            {storage.indexedDb ? `✓ read back ${formatBytes(storage.roundTripBytes)}` : storage.error}
          </dd>
          <dt>Used</dt>
          <dd data-testid="env-storage-used">
            {formatBytes(usage ?? storage.usage)} of {formatBytes(quota ?? storage.quota)}
          </dd>
          <dt>Persistent</dt>
          <dd>
            {(persisted ?? storage.persisted) === null ? 'unknown' : (persisted ?? storage.persisted) ? 'yes' : 'no'}
            {(persisted ?? storage.persisted) === false && (
              <button className="link" onClick={() => void persist()}>
                request
              </button>
            )}
          </dd>
        </dl>
      )}
    </section>
  );
}
