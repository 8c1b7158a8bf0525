// What the message holds, for the open run (issue 19 item 6): linear probes from the received K/V of
// each latent position and layer to each part of the senders' content, computed in the worker on
// request (src/mas/measures.ts probeRun: fitted on train-split episodes, scored on held-out). One
// layer x position table per target, K or V, each cell's held-out accuracy shaded by how far it is
// above the target's chance (the training majority's accuracy), which is printed beside it.
import { useEffect, useState } from 'react';
import type { ProbeReport } from '../../worker/api';
import { getEngine } from '../engine';
import { useRun } from '../stores/run';
import { methodSpec } from '../../mas/methods';
import { ErrorText } from './RunBar';

/** Shade of a cell: 0 at or below chance, 1 at perfect accuracy. */
function lift(acc: number, chance: number): number {
  return chance >= 1 ? 0 : Math.max(0, Math.min(1, (acc - chance) / (1 - chance)));
}

function ProbeTable({ report, target, edge, kind }: { report: ProbeReport; target: number; edge: { receiver: string; sender: string; positions: number }; kind: 'k' | 'v' }) {
  const t = report.targets[target];
  const at = (layer: number, position: number) =>
    report.cells.find((c) => c.receiver === edge.receiver && c.sender === edge.sender && c.layer === layer && c.position === position && c.kind === kind);
  return (
    <figure className="probe-table">
      <figcaption>
        <b>{t.name}</b> <span className="muted small">chance {t.chance.toFixed(2)} · 1/{t.classes} = {t.uniform.toFixed(2)}</span>
      </figcaption>
      <table className="table dense" data-testid="probe-table">
        <thead>
          <tr>
            <th>layer</th>
            {Array.from({ length: edge.positions }, (_, j) => (
              <th key={j}>z{j + 1}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: report.layers }, (_, l) => (
            <tr key={l}>
              <td>{l}</td>
              {Array.from({ length: edge.positions }, (_, j) => {
                const c = at(l, j + 1);
                const a = c ? c.accuracy[target] : NaN;
                return (
                  <td key={j} className="num" style={{ background: `rgba(112, 72, 232, ${(0.6 * lift(a, t.chance)).toFixed(3)})` }} title={c ? `lambda ${c.lambda[target]}` : ''}>
                    {Number.isFinite(a) ? a.toFixed(2) : 'n/a'}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

export function ProbePanel() {
  const state = useRun((s) => s.state);
  const config = useRun((s) => s.config);
  const viewing = useRun((s) => s.viewing);
  const step = useRun((s) => s.progress?.step ?? 0);
  const [report, setReport] = useState<{ report: ProbeReport; step: number } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [kind, setKind] = useState<'k' | 'v'>('v');
  const [edgeIndex, setEdgeIndex] = useState(0);
  // a new run (or none) drops the probes of the previous one
  useEffect(() => {
    setReport(null);
    setError(null);
    setEdgeIndex(0);
  }, [config]);
  if (viewing || !config || methodSpec(config.method).channel !== 'latent') return null;
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      const at = step;
      setReport({ report: await getEngine().probeRun(), step: at });
    } catch (e) {
      setError((e as Error).message ?? String(e));
    } finally {
      setBusy(false);
    }
  };
  const r = report?.report;
  const edge = r?.edges[Math.min(edgeIndex, r.edges.length - 1)];
  return (
    <div className="probe-panel" data-testid="probe-panel">
      <div className="latent-head">
        <h3>What the message holds</h3>
        <span className="spacer" />
        <button type="button" className="btn small" disabled={busy || state === 'idle'} onClick={() => void run()} data-testid="probe-run">
          {busy ? 'Probing…' : r ? '⟳ Probe again' : 'Probe the message'}
        </button>
      </div>
      <p className="caption small">
        A linear (ridge) probe per target reads one received vector (a latent position z, a layer, K or V) and predicts that part of the
        senders’ content; fitted on {r?.trainEpisodes ?? 512} train-split episodes, scored on the {r ? `${r.heldoutEpisodes} ` : ''}held-out ones.
        Chance: the held-out accuracy of always answering the training set’s most frequent class. Shading: how far above chance.
      </p>
      {error && (
        <div className="alert compact" role="alert">
          Could not probe: <ErrorText text={error} />
        </div>
      )}
      {r && edge && (
        <>
          <div className="latent-controls">
            <span className="muted small">probed at step {report!.step}</span>
            {r.edges.length > 1 && (
              <label>
                edge
                <select value={edgeIndex} onChange={(e) => setEdgeIndex(Number(e.target.value))}>
                  {r.edges.map((e, i) => (
                    <option key={i} value={i}>
                      {e.sender} → {e.receiver}
                    </option>
                  ))}
                </select>
              </label>
            )}
            <label>
              read
              <select value={kind} onChange={(e) => setKind(e.target.value as 'k' | 'v')} data-testid="probe-kind">
                <option value="k">keys</option>
                <option value="v">values</option>
              </select>
            </label>
          </div>
          <div className="probe-tables" style={{ display: 'flex', flexWrap: 'wrap', gap: 16 }}>
            {r.targets.map((_, i) => (
              <ProbeTable key={i} report={r} target={i} edge={edge} kind={kind} />
            ))}
          </div>
        </>
      )}
      {r && !edge && <p className="muted">No sender has latent steps: there is no latent position to probe.</p>}
    </div>
  );
}
