// The latent-message view, the heart of the page: for one example, what each receiver read from its
// senders' K/V traces, before training (with the run's initial adapters, for any example) and now,
// side by side; a layer x head summary of how much attention lands on the message; K/V norms per
// sender position; every agent's input and output (with the text method, the text message read).
// While training it refreshes every 2 s. A stored run opened read-only shows what its record holds.
// Below, for a latent method, the linear probes of what the message holds (ProbePanel).
import { useEffect, useMemo, useRef, useState } from 'react';
import { SPLITS, type Split } from '../../tasks/tasks';
import type { EdgeInspection, InspectResult, StoredInspection } from '../../worker/api';
import { showText } from '../format';
import { isTrainedMethod } from '../../mas/run-types';
import { useApp } from '../stores/app';
import { useLibrary } from '../stores/library';
import { useRun } from '../stores/run';
import { useShownRun } from '../stores/shown-run';
import { ColorLegend, HeadSummary, Heatmap, attentionSlice, normsOf, type FigureInfo, type Pick } from './Heatmap';
import { runCaption } from '../figure-run';
import { exampleWords } from '../figure-heatmap';
import { ErrorText } from './RunBar';
import { ProbePanel } from './ProbePanel';

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

/** Text with a break opportunity after each newline mark and space, so tokens never break mid-word. */
function Breakable({ text }: { text: string }) {
  const parts = showText(text).split(/(?<=[⏎ ])/);
  return (
    <code className="io">
      {parts.map((p, i) => (
        <span key={i}>
          {p}
          {i < parts.length - 1 && <wbr />}
        </span>
      ))}
    </code>
  );
}

const keyOf = (x: StoredInspection) => `${x.result.split}:${x.result.index}`;

export function LatentView() {
  const app = useApp((s) => s.state);
  const set = useApp((s) => s.set);
  const correct = useApp((s) => s.correct);
  const shown = useShownRun();
  const inspecting = useRun((s) => s.inspecting);
  const inspectError = useRun((s) => s.inspectError);
  const state = shown.state;
  const method = shown.config?.method ?? app.method;
  const trained = isTrainedMethod(method);
  const body = useRef<HTMLDivElement>(null);
  const width = useWidth(body);
  const [receiver, setReceiver] = useState<string | null>(null);
  const live = !shown.readOnly;

  // Steady refresh while training; a fresh look (now, and before training) when the example changes.
  useEffect(() => {
    if (!live || state !== 'running') return;
    const h = setInterval(() => void useRun.getState().inspect('after'), REFRESH_MS);
    return () => clearInterval(h);
  }, [state, live]);
  const key = `${app.split}:${app.example}`;
  useEffect(() => {
    const s = useRun.getState();
    if (s.viewing || s.state === 'idle' || s.starting || !s.inspections.length) return;
    void (async () => {
      await s.inspect('after', true);
      if (isTrainedMethod(s.config?.method ?? 'single') && !useRun.getState().inspections.some((x) => x.which === 'before' && keyOf(x) === key)) {
        await useRun.getState().inspect('before');
      }
    })();
  }, [key]);

  const list = shown.inspections;
  const afterItem = list.find((x) => x.which === 'after' && keyOf(x) === key);
  const beforeItem = list.find((x) => x.which === 'before' && keyOf(x) === key);
  const nowItem = afterItem ?? beforeItem;
  const now = nowItem?.result ?? null;
  const shownBefore = beforeItem && afterItem && afterItem.step > 0 ? beforeItem.result : null;
  const edges = now?.edges ?? [];
  const edge: EdgeInspection | undefined = edges.find((e) => e.receiver === receiver) ?? edges[edges.length - 1];
  const beforeEdge = shownBefore?.edges.find((e) => e.receiver === edge?.receiver);
  const layer = edge ? parsePick(app.layer, edge.layers) : 'avg';
  const head = edge ? parsePick(app.head, edge.heads) : 'avg';
  // a layer or head the model does not have (a link made for a bigger model) is put back to 'mean' in the link too
  // (and said so): by the inspection's shape, or before any inspection by the selected base's config
  const baseConfig = useLibrary((s) => s.models.find((m) => m.id === app.model)?.config);
  const dims = edge
    ? { layers: edge.layers, heads: edge.heads }
    : typeof baseConfig?.num_hidden_layers === 'number' && typeof baseConfig?.num_attention_heads === 'number'
      ? { layers: baseConfig.num_hidden_layers, heads: baseConfig.num_attention_heads }
      : null;
  useEffect(() => {
    if (!dims || shown.readOnly) return;
    const patch: { layer?: string; head?: string } = {};
    if (app.layer !== 'avg' && parsePick(app.layer, dims.layers) === 'avg') patch.layer = 'avg';
    if (app.head !== 'avg' && parsePick(app.head, dims.heads) === 'avg') patch.head = 'avg';
    const said = (what: 'layer' | 'head', n: number) => `${what}=${app[what]}: this model has ${n} ${what}s (0 to ${n - 1}); avg (the mean) is used.`;
    if (Object.keys(patch).length) correct(patch, [...(patch.layer ? [said('layer', dims.layers)] : []), ...(patch.head ? [said('head', dims.heads)] : [])]);
  }, [dims?.layers, dims?.heads, app.layer, app.head, correct]); // eslint-disable-line react-hooks/exhaustive-deps
  const sideBySide = trained && !!shownBefore && !!afterItem;
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
  const finalAgent = agents[agents.length - 1];
  // text method: what the final agent read is in its input, as "msg:<content>" lines
  const textRead = (method === 'text' || method === 'text-trained') && finalAgent ? agents.slice(0, -1).map((a) => ({ from: a.name, text: a.output.replace(/^msg:/, '') })) : [];
  const stored = shown.readOnly ? [...new Set(list.map(keyOf))] : [];
  // every saved file names the step of the weights it shows
  const file = (what: string, step: number) => `${method}-${app.split}-${app.example}-${what}-step${step}${layer === 'avg' ? '' : `-l${layer}`}${head === 'avg' ? '' : `-h${head}`}.png`;
  // what a saved PNG figure says: which map, when (the step), the example and the run's configuration
  const figure = (r: InspectResult, e: EdgeInspection, when: string, step: number, heads = false): FigureInfo => ({
    title: `Attention on the message${heads ? ' by layer and head' : ''}, ${names.get(e.receiver) ?? e.receiver} ← ${e.senders.map((x) => names.get(x) ?? x).join(', ')} · ${when}, step ${step}`,
    step,
    context: exampleWords(r),
    caption: shown.config ? runCaption({ config: shown.config, baseModelId: shown.record?.baseModelId ?? shown.config.modelId, baseName: shown.record?.baseName, stepsDone: shown.record?.stepsDone ?? shown.progress?.step ?? shown.config.steps }) : undefined,
  });
  const nowWhen = !trained ? 'training-free method' : afterItem && afterItem.step > 0 ? 'after training' : 'before training';
  const nowStep = nowItem?.step ?? 0;
  // a live run that can still train shows "Now"; a finished or stored one, the look at its final weights
  const nowLabel = !trained ? 'Training-free method' : !(afterItem && afterItem.step > 0) ? 'Before training' : live && (state === 'running' || state === 'paused') ? 'Now' : 'After training';

  return (
    <section className="panel latent" aria-labelledby="latent-title">
      <div className="latent-head">
        <h2 id="latent-title">Latent messages</h2>
        <span className="spacer" />
        {live && state === 'running' && <span className="muted small live-dot">live · every {REFRESH_MS / 1000} s</span>}
        {shown.readOnly && <span className="tag">stored run · read-only</span>}
        {live && (
          <button type="button" className="btn small" disabled={state === 'idle' || inspecting} onClick={() => void useRun.getState().inspect('after')}>
            {inspecting ? 'Reading…' : '⟳ Refresh'}
          </button>
        )}
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
                data-testid="inspect-example"
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
        {state === 'idle' && !now && !shown.readOnly && (
          <div className="empty-state" data-testid="latent-empty">
            <p>
              Press <b>▶</b> (or <b>▶❙</b> for one step) to build the agents. This view then shows, for the chosen example, how
              strongly each of the receiver’s tokens attends to each position of its senders’ K/V trace: the prompt tokens they
              read and the latent steps they thought, before training and as training goes on.
            </p>
          </div>
        )}
        {shown.readOnly && !now && (
          <p className="muted" data-testid="latent-not-stored">
            This record holds no inspection of {app.split} #{app.example}.{' '}
            {stored.length > 0 && (
              <>
                It has:{' '}
                {stored.map((k) => (
                  <button key={k} type="button" className="link" onClick={() => set({ split: k.split(':')[0] as Split, example: Number(k.split(':')[1]) })}>
                    {k.replace(':', ' #')}
                  </button>
                ))}
              </>
            )}
          </p>
        )}
        {inspectError && live && (
          <div className="alert compact" role="alert">
            Could not inspect this example: <ErrorText text={inspectError} />
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
        {now && !edge && textRead.length > 0 && (
          <div className="text-read" data-testid="text-read">
            <b>{finalAgent.name}</b> read {textRead.length === 1 ? 'this text message' : 'these text messages'} (text has no K/V to draw):
            {textRead.map((t, i) => (
              <div key={i}>
                from <b>{t.from}</b>: <code>msg:{showText(t.text) || '∅ (empty)'}</code>
              </div>
            ))}
          </div>
        )}
        {now && !edge && textRead.length === 0 && (
          <p className="muted">
            No messages to show: with this method or topology the final agent receives nothing from other agents.
          </p>
        )}
        {edge && (
          <>
            <p className="caption small" data-testid="heatmap-caption">
              <b>Rows</b>: the tokens of {names.get(edge.receiver) ?? edge.receiver} (the receiver) and its latent steps. <b>Columns</b>: every
              position of {edge.senders.map((x) => names.get(x) ?? x).join(', ')} it can attend over (grey: prompt tokens, violet: latent steps z1, z2…).{' '}
              <b>Colour</b>: attention probability ({layer === 'avg' ? 'mean over layers' : `layer ${layer}`}, {head === 'avg' ? 'mean over heads' : `head ${head}`}); a row’s
              remaining attention goes to its own tokens. Bars under it: |k| and |v| of each position.
            </p>
            <ColorLegend vmax={vmax} />
            <div className={sideBySide ? 'heat-pair' : 'heat-single'}>
              {sideBySide && beforeEdge && (
                <figure>
                  <figcaption>
                    Before training <span className="muted">· step 0</span> · <Verdict r={shownBefore!} />
                  </figcaption>
                  <Heatmap edge={beforeEdge} layer={layer} head={head} vmax={vmax} normMax={normMax} maxWidth={panelWidth} names={names} testId="heatmap-before" fileName={file('before', beforeItem!.step)} figure={figure(shownBefore!, beforeEdge, 'before training', beforeItem!.step)} />
                </figure>
              )}
              <figure>
                <figcaption>
                  {nowLabel}{' '}
                  {trained && <span className="muted" data-testid="heatmap-now-step">· step {nowStep} · </span>}
                  <Verdict r={now!} />
                </figcaption>
                <Heatmap edge={edge} layer={layer} head={head} vmax={vmax} normMax={normMax} maxWidth={panelWidth} names={names} testId="heatmap-now" fileName={file(sideBySide ? 'after' : 'now', nowStep)} figure={figure(now!, edge, nowWhen, nowStep)} />
              </figure>
            </div>
            <div className="head-summaries">
              {sideBySide && beforeEdge && (
                <figure>
                  <figcaption>Attention on the message, layer × head · before, step {beforeItem!.step}</figcaption>
                  <HeadSummary edge={beforeEdge} layer={layer} head={head} testId="head-summary-before" fileName={file('heads-before', beforeItem!.step)} names={names} figure={figure(shownBefore!, beforeEdge, 'before training', beforeItem!.step, true)} onPick={(l, h) => set({ layer: String(l), head: String(h) })} />
                </figure>
              )}
              <figure>
                <figcaption>Attention on the message, layer × head{sideBySide ? ` · ${nowLabel === 'Now' ? 'now' : 'after'}` : ''}{trained ? `, step ${nowStep}` : ''}</figcaption>
                <HeadSummary edge={edge} layer={layer} head={head} testId="head-summary" fileName={file('heads', nowStep)} names={names} figure={figure(now!, edge, nowWhen, nowStep, true)} onPick={(l, h) => set({ layer: String(l), head: String(h) })} />
              </figure>
            </div>
          </>
        )}
        {agents.length > 0 && (
          <table className={`table agents-io${sideBySide ? ' side' : ''}`} data-testid="agents-io">
            <thead>
              <tr>
                <th>agent</th>
                <th>input</th>
                {sideBySide && <th>output before training</th>}
                <th>output {sideBySide ? (nowLabel === 'Now' ? 'now' : `after training (step ${nowStep})`) : ''}</th>
              </tr>
            </thead>
            <tbody>
              {agents.map((a) => (
                <tr key={a.id}>
                  <td className="io-agent">
                    <b>{a.name}</b> <span className="muted small">{a.id}</span>
                  </td>
                  <td>
                    <Breakable text={a.input} />
                  </td>
                  {sideBySide && (
                    <td>
                      <Breakable text={beforeAgents.get(a.id)?.output ?? ''} />
                    </td>
                  )}
                  <td>
                    <Breakable text={a.output} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {live && <ProbePanel />}
      </div>
    </section>
  );
}
