// The latent-message heatmap (canvas): rows are the receiver's query tokens, columns the sender
// positions it can attend over, grouped by sender and marked apart as prompt tokens (grey band) or
// latent steps (violet band). Only the layer/head asked for is drawn (or their average). Hovering a
// cell shows its value and the two tokens. Under it, the K and V norms of each sender position,
// aligned with the columns.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { EdgeInspection } from '../../worker/api';
import { showToken } from '../format';
import { viridis } from '../figure';
import { attentionSlice, headSummary, headSummaryFigureSvg, heatmapFigureSvg, normsOf, SENDER_COLORS, type Pick } from '../figure-heatmap';
import { pngFile } from '../figure-png';
import { download } from '../engine';

export { attentionSlice, headSummary, normsOf, viridis };
export type { Pick };

const K_COLOR = '#5c7cfa';
const V_COLOR = '#f59f00';

interface Geometry {
  cw: number;
  ch: number;
  left: number;
  top: number;
  width: number;
  height: number;
}

export function geometry(e: EdgeInspection, maxWidth: number): Geometry {
  const R = e.receiverTokens.length;
  const S = e.senderPositions.length;
  const left = 54;
  const top = 42;
  const cw = Math.max(12, Math.min(28, Math.floor((maxWidth - left - 8) / Math.max(1, S))));
  const ch = Math.max(14, Math.min(20, cw));
  return { cw, ch, left, top, width: left + cw * S + 8, height: top + ch * R + 4 };
}

const MONO = '12px ui-monospace, SFMono-Regular, Menlo, monospace';
const SANS_BOLD = '600 12px system-ui, sans-serif';

/** Draws the heatmap (sender bands, position labels, row labels, cells, dividers) into a 2D context of the geometry's size. */
export function paintHeatmap(
  x: CanvasRenderingContext2D, edge: EdgeInspection, m: Float32Array, g: Geometry, vmax: number, names: ReadonlyMap<string, string>, hover: HoverCell | null = null,
): void {
  const R = edge.receiverTokens.length;
  const S = edge.senderPositions.length;
  x.clearRect(0, 0, g.width, g.height);
  x.font = MONO;
  // sender bands: agent name, then prompt/latent marks
  let start = 0;
  const senders = [...new Set(edge.senderPositions.map((p) => p.agent))];
  for (let s = 0; s <= S; s++) {
    const p = edge.senderPositions[s];
    if (s === S || (s > 0 && p.agent !== edge.senderPositions[s - 1].agent)) {
      const agent = edge.senderPositions[start].agent;
      const color = SENDER_COLORS[senders.indexOf(agent) % SENDER_COLORS.length];
      x.fillStyle = color;
      x.fillRect(g.left + start * g.cw, 2, (s - start) * g.cw - 1, 3);
      x.textAlign = 'left';
      x.textBaseline = 'top';
      x.font = SANS_BOLD;
      x.fillText(names.get(agent) ?? agent, g.left + start * g.cw + 1, 7, Math.max(24, (s - start) * g.cw - 2));
      x.font = MONO;
      start = s;
    }
  }
  for (let s = 0; s < S; s++) {
    const p = edge.senderPositions[s];
    x.fillStyle = p.kind === 'latent' ? '#e5dbff' : '#f1f3f5';
    x.fillRect(g.left + s * g.cw, 22, g.cw - 1, 18);
    x.fillStyle = p.kind === 'latent' ? '#5f3dc4' : '#343a40';
    x.textAlign = 'center';
    x.textBaseline = 'middle';
    const label = showToken(p.label);
    x.fillText(label.length > 3 && g.cw < 22 ? label.slice(0, 2) : label, g.left + s * g.cw + g.cw / 2, 31, g.cw - 1);
  }
  // row labels
  x.textAlign = 'right';
  x.textBaseline = 'middle';
  x.fillStyle = '#343a40';
  for (let r = 0; r < R; r++) {
    const t = showToken(edge.receiverTokens[r]);
    x.fillText(t.length > 6 ? t.slice(0, 6) : t, g.left - 4, g.top + r * g.ch + g.ch / 2);
  }
  // cells
  for (let r = 0; r < R; r++) {
    for (let s = 0; s < S; s++) {
      x.fillStyle = viridis(m[r * S + s] / (vmax || 1));
      x.fillRect(g.left + s * g.cw, g.top + r * g.ch, g.cw - 1, g.ch - 1);
    }
  }
  // dividers: between senders (solid) and between a sender's prompt and its latent steps (dashed)
  for (let s = 1; s < S; s++) {
    const a = edge.senderPositions[s - 1];
    const b = edge.senderPositions[s];
    if (a.agent === b.agent && a.kind === b.kind) continue;
    const xx = g.left + s * g.cw - 0.5;
    x.save();
    x.strokeStyle = a.agent !== b.agent ? '#1d2330' : '#ffffff';
    x.lineWidth = a.agent !== b.agent ? 1.5 : 1;
    if (a.agent === b.agent) x.setLineDash([3, 2]);
    x.beginPath();
    x.moveTo(xx, 21);
    x.lineTo(xx, g.top + R * g.ch);
    x.stroke();
    x.restore();
  }
  if (hover) {
    x.strokeStyle = '#ff2d55';
    x.lineWidth = 1.5;
    x.strokeRect(g.left + hover.col * g.cw - 0.5, g.top + hover.row * g.ch - 0.5, g.cw, g.ch);
  }
}

/** Saves a figure (standalone SVG) as a PNG download: drawn from the data, so no hover outline or selection mark. */
function saveFigurePng(svg: string, name: string): void {
  void pngFile(name, svg).then(download, (e: unknown) => console.error('could not save the figure', e));
}

/** What a saved figure says about the map besides its layer and head: a title, the step, the example. */
export interface FigureInfo {
  title: string;
  step: number;
  context?: string;
  caption?: string;
}

export interface HoverCell {
  row: number;
  col: number;
}

export function Heatmap({
  edge, layer, head, vmax, maxWidth, testId, normMax, names, fileName, figure,
}: {
  /** Name of the PNG the save button writes (with `figure`, what the saved figure says). */
  fileName?: string;
  figure?: FigureInfo;
  edge: EdgeInspection;
  /** Display names of agents by id. */
  names: ReadonlyMap<string, string>;
  layer: Pick;
  head: Pick;
  vmax: number;
  maxWidth: number;
  testId?: string;
  normMax: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const normCanvas = useRef<HTMLCanvasElement>(null);
  const [hover, setHover] = useState<HoverCell | null>(null);
  const m = useMemo(() => attentionSlice(edge, layer, head), [edge, layer, head]);
  const norms = useMemo(() => normsOf(edge, layer), [edge, layer]);
  const g = geometry(edge, maxWidth);
  const R = edge.receiverTokens.length;
  const S = edge.senderPositions.length;
  const normH = 58;

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(g.width * dpr);
    c.height = Math.round(g.height * dpr);
    const x = c.getContext('2d')!;
    x.setTransform(dpr, 0, 0, dpr, 0, 0);
    paintHeatmap(x, edge, m, g, vmax, names, hover);
  }, [edge, m, g.width, g.height, g.cw, g.ch, g.left, g.top, R, S, vmax, hover, names]);

  useEffect(() => {
    const c = normCanvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(g.width * dpr);
    c.height = Math.round(normH * dpr);
    const x = c.getContext('2d')!;
    x.setTransform(dpr, 0, 0, dpr, 0, 0);
    x.clearRect(0, 0, g.width, normH);
    const top = 4;
    const h = normH - top - 12;
    const scale = normMax || 1;
    x.strokeStyle = '#dee2e6';
    x.beginPath();
    x.moveTo(g.left, top + h + 0.5);
    x.lineTo(g.left + S * g.cw, top + h + 0.5);
    x.stroke();
    for (let s = 0; s < S; s++) {
      const bw = Math.max(2, (g.cw - 2) / 2);
      const kh = (norms.k[s] / scale) * h;
      const vh = (norms.v[s] / scale) * h;
      x.fillStyle = K_COLOR;
      x.fillRect(g.left + s * g.cw, top + h - kh, bw, kh);
      x.fillStyle = V_COLOR;
      x.fillRect(g.left + s * g.cw + bw, top + h - vh, bw, vh);
    }
    x.fillStyle = '#5c6477';
    x.font = '11px system-ui, sans-serif';
    x.textAlign = 'right';
    x.textBaseline = 'top';
    x.fillText(scale.toPrecision(2), g.left - 4, top - 2);
    x.textBaseline = 'bottom';
    x.fillText('0', g.left - 4, top + h + 4);
  }, [norms, g.width, g.left, g.cw, S, normMax]);

  const cell = hover
    ? {
        q: edge.receiverTokens[hover.row],
        p: edge.senderPositions[hover.col],
        v: m[hover.row * S + hover.col],
        k: norms.k[hover.col],
        vn: norms.v[hover.col],
      }
    : null;

  return (
    <div className="heatmap" data-testid={testId}>
      <div className="heatmap-scroll">
        <canvas
          ref={canvas}
          style={{ width: g.width, height: g.height }}
          data-testid={testId ? `${testId}-canvas` : undefined}
          onMouseMove={(e) => {
            const r = e.currentTarget.getBoundingClientRect();
            const col = Math.floor((e.clientX - r.left - g.left) / g.cw);
            const row = Math.floor((e.clientY - r.top - g.top) / g.ch);
            setHover(col >= 0 && col < S && row >= 0 && row < R ? { row, col } : null);
          }}
          onMouseLeave={() => setHover(null)}
        />
        <canvas ref={normCanvas} style={{ width: g.width, height: normH }} aria-label="K and V norms per sender position" />
      </div>
      {fileName && figure && (
        <button
          type="button"
          className="link small save-png"
          title="The map as a figure: title, layer and head, step, colour scale"
          onClick={() => saveFigurePng(heatmapFigureSvg({ edge, names, layer, head, vmax, ...figure }), fileName)}
          data-testid={testId ? `${testId}-png` : undefined}
        >
          Save PNG
        </button>
      )}
      <div className="heatmap-tip" aria-live="polite">
        {cell ? (
          <>
            query <code>{showToken(cell.q)}</code> (#{hover!.row}) → {names.get(cell.p.agent) ?? cell.p.agent} <code>{showToken(cell.p.label)}</code>{' '}
            <span className={cell.p.kind === 'latent' ? 'tag latent' : 'tag'}>{cell.p.kind}</span> attention <b>{cell.v.toFixed(3)}</b> · |k|{' '}
            {cell.k.toFixed(2)} · |v| {cell.vn.toFixed(2)}
          </>
        ) : (
          <span className="muted">hover a cell for its value and tokens</span>
        )}
      </div>
    </div>
  );
}

export function ColorLegend({ vmax }: { vmax: number }) {
  const stops = Array.from({ length: 11 }, (_, i) => `${viridis(i / 10)} ${i * 10}%`).join(', ');
  return (
    <div className="color-legend" aria-label={`colour scale from 0 to ${vmax.toFixed(2)}`}>
      <span className="muted small">attention</span>
      <span>0</span>
      <span className="ramp" style={{ background: `linear-gradient(to right, ${stops})` }} />
      <span>{vmax.toFixed(2)}</span>
      <span className="sep" />
      <span className="swatch" style={{ background: '#f1f3f5' }} /> prompt token
      <span className="swatch" style={{ background: '#e5dbff' }} /> latent step
      <span className="sep" />
      <span className="swatch" style={{ background: K_COLOR }} /> |k|
      <span className="swatch" style={{ background: V_COLOR }} /> |v|
    </div>
  );
}

/** The layer x head summary: how much of each head's attention lands on the message (one small heatmap, Inspectus's view). */
export function HeadSummary({ edge, testId, onPick, layer, head, fileName, figure, names }: {
  edge: EdgeInspection; testId?: string; onPick?(layer: number, head: number): void; layer: Pick; head: Pick; fileName?: string; figure?: FigureInfo;
  /** Display names of agents by id (for the saved figure). */
  names?: ReadonlyMap<string, string>;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const v = useMemo(() => headSummary(edge), [edge]);
  const [hover, setHover] = useState<{ l: number; h: number } | null>(null);
  const cell = 26;
  const left = 56;
  const top = 22;
  const W = left + cell * edge.heads + 4;
  const H = top + cell * edge.layers + 4;
  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(W * dpr);
    c.height = Math.round(H * dpr);
    const x = c.getContext('2d')!;
    x.setTransform(dpr, 0, 0, dpr, 0, 0);
    x.clearRect(0, 0, W, H);
    x.font = '11px system-ui, sans-serif';
    x.fillStyle = '#5c6477';
    x.textAlign = 'center';
    x.textBaseline = 'middle';
    for (let h = 0; h < edge.heads; h++) x.fillText(`h${h}`, left + h * cell + cell / 2, top / 2);
    x.textAlign = 'right';
    for (let l = 0; l < edge.layers; l++) x.fillText(`layer ${l}`, left - 5, top + l * cell + cell / 2);
    for (let l = 0; l < edge.layers; l++) {
      for (let h = 0; h < edge.heads; h++) {
        const val = v[l * edge.heads + h];
        x.fillStyle = viridis(val);
        x.fillRect(left + h * cell, top + l * cell, cell - 2, cell - 2);
        x.fillStyle = val > 0.6 ? '#1d2330' : '#ffffff';
        x.textAlign = 'center';
        x.fillText(val.toFixed(2).replace(/^0/, ''), left + h * cell + (cell - 2) / 2, top + l * cell + (cell - 2) / 2);
        const picked = (layer === 'avg' || layer === l) && (head === 'avg' || head === h) && !(layer === 'avg' && head === 'avg');
        if (picked) {
          x.strokeStyle = '#ff2d55';
          x.lineWidth = 1.5;
          x.strokeRect(left + h * cell - 0.5, top + l * cell - 0.5, cell - 1, cell - 1);
        }
      }
    }
  }, [edge, v, W, H, layer, head]);
  const at = (e: React.MouseEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const h = Math.floor((e.clientX - r.left - left) / cell);
    const l = Math.floor((e.clientY - r.top - top) / cell);
    return h >= 0 && h < edge.heads && l >= 0 && l < edge.layers ? { l, h } : null;
  };
  return (
    <div className="head-summary" data-testid={testId}>
      <canvas
        ref={canvas}
        style={{ width: W, height: H, cursor: onPick ? 'pointer' : undefined }}
        data-testid={testId ? `${testId}-canvas` : undefined}
        onMouseMove={(e) => setHover(at(e))}
        onMouseLeave={() => setHover(null)}
        onClick={(e) => {
          const p = at(e);
          if (p && onPick) onPick(p.l, p.h);
        }}
      />
      <div className="muted small head-summary-tip">
        {hover ? `layer ${hover.l}, head ${hover.h}: ${(v[hover.l * edge.heads + hover.h] * 100).toFixed(1)}% of its attention on the message` : 'share of each head\u2019s attention on the message (click to show that head)'}
      </div>
      {fileName && figure && (
        <button
          type="button"
          className="link small save-png"
          title="The layer × head summary as a figure: title, step, colour scale"
          onClick={() => saveFigurePng(headSummaryFigureSvg({ edge, names: names ?? new Map(), ...figure }), fileName)}
          data-testid={testId ? `${testId}-png` : undefined}
        >
          Save PNG
        </button>
      )}
    </div>
  );
}
