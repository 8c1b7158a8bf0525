// The latent-message view, the heart of the page: for one example, what each receiver read from its
// senders' K/V traces, before training and now, side by side; K/V norms per sender position; every
// agent's input and output. While training it refreshes every 2 s.
import { useEffect, useMemo, useRef, useState } from 'react';
import { SPLITS, type Split } from '../../tasks/tasks';
import type { EdgeInspection, InspectResult } from '../../worker/api';
import { showText } from '../format';
import { isTrainedMethod, useApp, useRun } from '../store';
import { ColorLegend, Heatmap, attentionSlice, normsOf, type Pick } from './Heatmap';
import { ErrorText } from './RunBar';

const REFRESH_MS = 2000;

function useWidth(ref: React.RefObject<HTMLElement | null>): number {
  const [w, setW] = useState(560);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setW(el.clientWidth));
    ro.observe(el);
    setW(el.clientWidth);
    return () => ro.disconnect();
  }, [ref]);
  return w;
}

const parsePick = (v: string, n: number): Pick => {
  if (v === 'avg') return 'avg';
  const i = Number(v);
  return Number.isInteger(i) && i >= 0 && i < n ? i : 'avg';
};

function maxOf(arr: Float32Array): number {
  let m = 0;
  for (const v of arr) if (v > m) m = v;
  return m;
}

function Verdict({ r }: { r: InspectResult }) {
  return (
    <span className={r.correct ? 'ok' : 'bad'}>
      answered <code>{showText(r.predicted) || '∅'}</code> {r.correct ? '✓' : '✗'}
    </span>
  );
}

export function LatentView() {
  const app = useApp((s) => s.state);
  const set = useApp((s) => s.set);
  const run = useRun();
  const { before, after, state } = run;
  const trained = isTrainedMethod(run.config?.method ?? app.method);
  const body = useRef<HTMLDivElement>(null);
  const width = useWidth(body);
  const [receiver, setReceiver] = useState<string | null>(null);

  // Steady refresh while training; a fresh look when the example changes or the run stops.
  useEffect(() => {
    if (state !== 'running') return;
    const h = setInterval(() => void useRun.getState().inspect('after'), REFRESH_MS);
    return () => clearInterval(h);
  }, [state]);
  const key = `${app.split}:${app.example}`;
  useEffect(() => {
    const s = useRun.getState();
    if (s.state !== 'idle' && s.before) void s.inspect('after');
  }, [key]);

  const now = after ?? before;
  const shownBefore = before && run.beforeKey === key ? before : null;
  const edges = now?.edges ?? [];
  const edge: EdgeInspection | undefined = edges.find((e) => e.receiver === receiver) ?? edges[edges.length - 1];
  const beforeEdge = shownBefore?.edges.find((e) => e.receiver === edge?.receiver);
  const layer = edge ? parsePick(app.layer, edge.layers) : 'avg';
  const head = edge ? parsePick(app.head, edge.heads) : 'avg';
  const sideBySide = trained && !!shownBefore && !!after;
  const panelWidth = sideBySide ? Math.floor((width - 24) / 2) : width;

  // One colour scale (and one norm scale) for both sides, so they compare.
  const vmax = useMemo(() => {
    let m = 0;
    for (const e of [edge, beforeEdge]) if (e) m = Math.max(m, maxOf(attentionSlice(e, layer, head)));
    return m || 1;
  }, [edge, beforeEdge, layer, head]);
  const normMax = useMemo(() => {
    let m = 0;
    for (const e of [edge, beforeEdge]) {
      if (!e) continue;
      const n = normsOf(e, layer);
      m = Math.max(m, maxOf(n.k), maxOf(n.v));
    }
    return m || 1;
  }, [edge, beforeEdge, layer]);

  const agents = now?.agents ?? [];
  const names = useMemo(() => new Map(agents.map((a) => [a.id, a.name])), [agents]);
  const beforeAgents = new Map((shownBefore?.agents ?? []).map((a) => [a.id, a]));

  return (
    <section className="panel latent" aria-labelledby="latent-title">
      <div className="latent-head">
        <h2 id="latent-title">Latent messages</h2>
        <span className="spacer" />
        {state === 'running' && <span className="muted small live-dot">live · every {REFRESH_MS / 1000} s</span>}
        <button type="button" className="btn small" disabled={state === 'idle' || run.inspecting} onClick={() => void run.inspect('after')}>
          {run.inspecting ? 'Reading…' : '⟳ Refresh'}
        </button>
      </div>
      <div className="latent-toolbar">
        <div className="latent-controls">
          <label>
            split
            <select value={app.split} onChange={(e) => set({ split: e.target.value as Split })} data-testid="inspect-split">
              {SPLITS.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <label>
            example
            <span className="stepper">
              <button type="button" aria-label="Previous example" disabled={app.example === 0} onClick={() => set({ example: Math.max(0, app.example - 1) })}>
                ‹
              </button>
              <input
                type="number"
                min={0}
                value={app.example}
                aria-label="Example index"
                onChange={(e) => /^\d+$/.test(e.target.value) && set({ example: Number(e.target.value) })}
              />
              <button type="button" aria-label="Next example" onClick={() => set({ example: app.example + 1 })}>
                ›
              </button>
            </span>
          </label>
          {edges.length > 1 && (
            <label>
              receiver
              <select value={edge?.receiver ?? ''} onChange={(e) => setReceiver(e.target.value)}>
                {edges.map((e) => (
                  <option key={e.receiver} value={e.receiver}>
                    {names.get(e.receiver) ?? e.receiver} ← {e.senders.map((x) => names.get(x) ?? x).join(', ')}
                  </option>
                ))}
              </select>
            </label>
          )}
          <label>
            layer
            <select value={String(layer)} onChange={(e) => set({ layer: e.target.value })} disabled={!edge} data-testid="inspect-layer">
              <option value="avg">mean</option>
              {Array.from({ length: edge?.layers ?? 0 }, (_, i) => (
                <option key={i} value={i}>
                  {i}
                </option>
              ))}
            </select>
          </label>
          <label>
            head
            <select value={String(head)} onChange={(e) => set({ head: e.target.value })} disabled={!edge} data-testid="inspect-head">
              <option value="avg">mean</option>
              {Array.from({ length: edge?.heads ?? 0 }, (_, i) => (
                <option key={i} value={i}>
                  {i}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
      <div ref={body} className="latent-body">
        {state === 'idle' && !now && (
          <div className="empty-state" data-testid="latent-empty">
            <p>
              Press <b>▶</b> (or <b>▶❙</b> for one step) to build the agents. This view then shows, for the chosen example, how
              strongly each of the receiver’s tokens attends to each position of its senders’ K/V trace: the prompt tokens they
              read and the latent steps they thought, before training and as training goes on.
            </p>
          </div>
        )}
        {run.inspectError && (
          <div className="alert compact" role="alert">
            Could not inspect this example: <ErrorText text={run.inspectError} />
          </div>
        )}
        {now && (
          <div className="example-line" data-testid="example-line">
            <span>
              <b>{now.split}</b> #{now.index}
            </span>
            {now.parts.map((p, i) => (
              <code key={i} title={`part ${i}`}>
                {showText(p)}
              </code>
            ))}
            <span>
              answer <code>{now.answer}</code>
            </span>
          </div>
        )}
        {now && !edge && (
          <p className="muted">
            No messages to show: with this method or topology the final agent receives nothing from other agents.
          </p>
        )}
        {edge && (
          <>
            <ColorLegend vmax={vmax} />
            <div className={sideBySide ? 'heat-pair' : 'heat-single'}>
              {sideBySide && beforeEdge && (
                <figure>
                  <figcaption>
                    Before training <span className="muted">· step 0</span> · <Verdict r={shownBefore!} />
                  </figcaption>
                  <Heatmap edge={beforeEdge} layer={layer} head={head} vmax={vmax} normMax={normMax} maxWidth={panelWidth} names={names} testId="heatmap-before" />
                </figure>
              )}
              <figure>
                <figcaption>
                  {!trained ? 'Training-free method' : after && run.afterStep ? 'Now' : 'Before training'}{' '}
                  {trained && <span className="muted">· step {after ? run.afterStep ?? 0 : 0} · </span>}
                  <Verdict r={now!} />
                  {trained && !shownBefore && before && (
                    <span className="muted small"> (the before-training view was taken for {run.beforeKey?.replace(':', ' #')})</span>
                  )}
                </figcaption>
                <Heatmap edge={edge} layer={layer} head={head} vmax={vmax} normMax={normMax} maxWidth={panelWidth} names={names} testId="heatmap-now" />
              </figure>
            </div>
          </>
        )}
        {agents.length > 0 && (
          <table className="table agents-io" data-testid="agents-io">
            <thead>
              <tr>
                <th>agent</th>
                <th>input</th>
                {sideBySide && <th>output before training</th>}
                <th>output {sideBySide ? 'now' : ''}</th>
              </tr>
            </thead>
            <tbody>
              {agents.map((a) => (
                <tr key={a.id}>
                  <td>
                    <b>{a.name}</b> <span className="muted small">{a.id}</span>
                  </td>
                  <td>
                    <code className="io">{showText(a.input)}</code>
                  </td>
                  {sideBySide && (
                    <td>
                      <code className="io">{showText(beforeAgents.get(a.id)?.output ?? '')}</code>
                    </td>
                  )}
                  <td>
                    <code className="io">{showText(a.output)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
