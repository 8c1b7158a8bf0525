// The attention heatmaps as standalone SVG figures (the page draws them on canvas; a PNG is this SVG
// rasterized, src/ui/figure-png.ts): a title, the layer/head and the step, the map with its sender
// bands and token labels, a colour bar with its two ends, a caption. No hover outline: a figure is
// drawn from the data, never copied from the screen. Also the pure matrix helpers both views use.
import type { EdgeInspection, InspectResult } from '../worker/api';
import { showToken } from './format';
import {
  INK, MARGIN, MONO_FONT, MUTED, captionBlock, colourBar, r1, svgOpen, svgText, textWidth, titleBlock, viridis, wrapText,
} from './figure';

export type Pick = number | 'avg';

/** The [R, S] matrix of one layer and head, or an average over either or both. */
export function attentionSlice(e: EdgeInspection, layer: Pick, head: Pick): Float32Array {
  const R = e.receiverTokens.length;
  const S = e.senderPositions.length;
  const out = new Float32Array(R * S);
  const layers = layer === 'avg' ? Array.from({ length: e.layers }, (_, i) => i) : [layer];
  const heads = head === 'avg' ? Array.from({ length: e.heads }, (_, i) => i) : [head];
  for (const l of layers) {
    for (const h of heads) {
      const base = (l * e.heads + h) * R * S;
      for (let i = 0; i < R * S; i++) out[i] += e.attention[base + i];
    }
  }
  const n = layers.length * heads.length;
  for (let i = 0; i < out.length; i++) out[i] /= n;
  return out;
}

/** K and V norms per sender position for one layer or averaged over layers. */
export function normsOf(e: EdgeInspection, layer: Pick): { k: Float32Array; v: Float32Array } {
  const S = e.senderPositions.length;
  const k = new Float32Array(S);
  const v = new Float32Array(S);
  const layers = layer === 'avg' ? Array.from({ length: e.layers }, (_, i) => i) : [layer];
  for (const l of layers) {
    for (let s = 0; s < S; s++) {
      k[s] += e.keyNorms[l * S + s] / layers.length;
      v[s] += e.valueNorms[l * S + s] / layers.length;
    }
  }
  return { k, v };
}

/**
 * Share of each head's attention that lands on the message: for every layer and head, the attention
 * mass on the sender positions summed per receiver token, averaged over its tokens ([layers, heads]).
 * The rest goes to the receiver's own tokens.
 */
export function headSummary(e: EdgeInspection): Float32Array {
  const R = e.receiverTokens.length;
  const S = e.senderPositions.length;
  const out = new Float32Array(e.layers * e.heads);
  for (let l = 0; l < e.layers; l++) {
    for (let h = 0; h < e.heads; h++) {
      const base = (l * e.heads + h) * R * S;
      let sum = 0;
      for (let i = 0; i < R * S; i++) sum += e.attention[base + i];
      out[l * e.heads + h] = R ? sum / R : 0;
    }
  }
  return out;
}

export const SENDER_COLORS = ['#4263eb', '#f08c00', '#0ca678', '#ae3ec9', '#e03131', '#1098ad'];
export const PROMPT_FILL = '#f1f3f5';
export const LATENT_FILL = '#e5dbff';

/** "layer 1 of 2, mean over 4 heads": which slice of the attention a map shows. */
export function pickWords(e: { layers: number; heads: number }, layer: Pick, head: Pick): string {
  const l = layer === 'avg' ? `mean over ${e.layers} layers` : `layer ${layer} of ${e.layers}`;
  const h = head === 'avg' ? `mean over ${e.heads} heads` : `head ${head} of ${e.heads}`;
  return `${l}, ${h}`;
}

/** "heldout example #2, answered '7' (correct)": which example a map is of, and how it went. */
export function exampleWords(r: InspectResult): string {
  const said = r.predicted ? `'${r.predicted}'` : 'nothing';
  return `${r.split} example #${r.index}, answered ${said} (${r.correct ? 'correct' : `expected '${r.answer}'`})`;
}

function maxOf(m: Float32Array): number {
  let v = 0;
  for (const x of m) if (x > v) v = x;
  return v;
}

/** A name cut (with an ellipsis) to fit a width. */
function fitName(t: string, room: number): string {
  let cut = t;
  while (cut.length > 1 && textWidth(`${cut}…`, 12, true) > room) cut = cut.slice(0, -1);
  return textWidth(t, 12, true) <= room ? t : `${cut}…`;
}

const fmtScale = (v: number) => (v >= 0.01 || v === 0 ? v.toFixed(2) : v.toPrecision(2));

export interface HeatmapFigure {
  edge: EdgeInspection;
  /** Display names of agents by id. */
  names: ReadonlyMap<string, string>;
  layer: Pick;
  head: Pick;
  /** The training step the inspection was taken at. */
  step: number;
  title: string;
  /** Said after the layer/head and step (e.g. the example and the answer). */
  context?: string;
  caption?: string;
  /** Top of the colour scale (default: this map's maximum); pass one value to figures meant to compare. */
  vmax?: number;
  /** Widest the map may be, in px (cells shrink to 12 px, then the figure grows). */
  maxWidth?: number;
}

/** The receiver-by-sender-position attention map as a standalone SVG figure. */
export function heatmapFigureSvg(f: HeatmapFigure): string {
  const e = f.edge;
  const R = e.receiverTokens.length;
  const S = e.senderPositions.length;
  const m = attentionSlice(e, f.layer, f.head);
  const vmax = f.vmax ?? (maxOf(m) || 1);
  const rowLabel = (t: string) => {
    const s = showToken(t);
    return s.length > 6 ? s.slice(0, 6) : s;
  };
  const labelW = Math.max(24, ...e.receiverTokens.map((t) => rowLabel(t).length * 7.4));
  const left = MARGIN + labelW + 8;
  const cw = Math.max(12, Math.min(28, Math.floor(((f.maxWidth ?? 900) - left - MARGIN) / Math.max(1, S))));
  const ch = Math.max(14, Math.min(20, cw));
  const W = Math.max(left + cw * S + MARGIN, 520);

  const head = titleBlock(f.title, W);
  const sub = wrapText(`${pickWords(e, f.layer, f.head)} · step ${f.step}${f.context ? ` · ${f.context}` : ''}`, 12, W - 2 * MARGIN);
  const subSvg = sub.map((l, i) => svgText(MARGIN, head.bottom + 14 + i * 16, l, { size: 12, fill: MUTED, cls: 'subtitle' })).join('\n');
  const top = head.bottom + 4 + sub.length * 16 + 12;
  const cellsTop = top + 44;
  const out: string[] = [];

  // sender bands: agent name over its positions, then each position's label (grey: prompt, violet: latent)
  const senders = [...new Set(e.senderPositions.map((p) => p.agent))];
  let start = 0;
  for (let s = 1; s <= S; s++) {
    if (s < S && e.senderPositions[s].agent === e.senderPositions[start].agent) continue;
    const agent = e.senderPositions[start].agent;
    const color = SENDER_COLORS[senders.indexOf(agent) % SENDER_COLORS.length];
    out.push(`<rect x="${r1(left + start * cw)}" y="${r1(top)}" width="${r1((s - start) * cw - 1)}" height="3" fill="${color}"/>`);
    const name = f.names.get(agent) ?? agent;
    // a name is cut to its band so names never overlap (the last band's may run on into the figure's free width)
    const room = (s - start) * cw - 2 + (s === S ? W - MARGIN / 2 - (left + S * cw) : 0);
    out.push(svgText(left + start * cw + 1, top + 16, fitName(name, room), { size: 12, weight: 600 }));
    start = s;
  }
  for (let s = 0; s < S; s++) {
    const p = e.senderPositions[s];
    const latent = p.kind === 'latent';
    out.push(`<rect x="${r1(left + s * cw)}" y="${r1(top + 22)}" width="${cw - 1}" height="18" fill="${latent ? LATENT_FILL : PROMPT_FILL}"/>`);
    const label = showToken(p.label);
    out.push(svgText(left + s * cw + cw / 2, top + 31, label.length > 3 && cw < 22 ? label.slice(0, 2) : label, { size: 11, family: MONO_FONT, fill: latent ? '#5f3dc4' : '#343a40', anchor: 'middle', baseline: 'middle' }));
  }
  for (let r = 0; r < R; r++) out.push(svgText(left - 6, cellsTop + r * ch + ch / 2, rowLabel(e.receiverTokens[r]), { size: 12, family: MONO_FONT, fill: '#343a40', anchor: 'end', baseline: 'middle' }));
  for (let r = 0; r < R; r++) {
    for (let s = 0; s < S; s++) {
      out.push(`<rect x="${r1(left + s * cw)}" y="${r1(cellsTop + r * ch)}" width="${cw - 1}" height="${ch - 1}" fill="${viridis(m[r * S + s] / vmax)}"/>`);
    }
  }
  // dividers: between senders (solid) and between a sender's prompt and its latent steps (dashed)
  for (let s = 1; s < S; s++) {
    const a = e.senderPositions[s - 1];
    const b = e.senderPositions[s];
    if (a.agent === b.agent && a.kind === b.kind) continue;
    const x = r1(left + s * cw - 0.5);
    const other = a.agent !== b.agent;
    out.push(`<line x1="${x}" x2="${x}" y1="${r1(top + 21)}" y2="${r1(cellsTop + R * ch)}" stroke="${other ? INK : '#ffffff'}" stroke-width="${other ? 1.5 : 1}"${other ? '' : ' stroke-dasharray="3 2"'}/>`);
  }
  const barTop = cellsTop + R * ch + 14;
  const bar = colourBar(MARGIN, barTop, Math.min(360, W - 2 * MARGIN), 0, vmax, 'attention probability (colour scale)', fmtScale);
  const keyY = bar.bottom + 18;
  const key = [
    `<rect x="${MARGIN}" y="${r1(keyY - 6)}" width="12" height="12" fill="${PROMPT_FILL}" stroke="#ced4da"/>`,
    svgText(MARGIN + 17, keyY, 'prompt token', { size: 11, fill: INK, baseline: 'middle' }),
    `<rect x="${MARGIN + 110}" y="${r1(keyY - 6)}" width="12" height="12" fill="${LATENT_FILL}" stroke="#ced4da"/>`,
    svgText(MARGIN + 127, keyY, 'latent step', { size: 11, fill: INK, baseline: 'middle' }),
  ].join('\n');
  const rows = `Rows: the tokens of ${f.names.get(e.receiver) ?? e.receiver} (the receiver). Columns: every position of ${e.senders.map((x) => f.names.get(x) ?? x).join(', ')} it attends over. A row's remaining attention goes to its own tokens.`;
  const cap = captionBlock(f.caption ? `${rows}\n${f.caption}` : rows, keyY + 16, W);
  const H = cap.bottom + MARGIN;
  return [svgOpen(W, H, f.title), head.svg, subSvg, `<g class="heatmap">`, ...out, '</g>', bar.svg, key, cap.svg, '</svg>\n'].join('\n');
}

export interface HeadSummaryFigure {
  edge: EdgeInspection;
  names: ReadonlyMap<string, string>;
  step: number;
  title: string;
  context?: string;
  caption?: string;
}

/** The layer x head summary (share of each head's attention on the message) as a standalone SVG figure. */
export function headSummaryFigureSvg(f: HeadSummaryFigure): string {
  const e = f.edge;
  const v = headSummary(e);
  const cell = 32;
  const left = MARGIN + 58;
  const W = Math.max(left + cell * e.heads + MARGIN, 420);
  const head = titleBlock(f.title, W);
  const sub = wrapText(`share of each head's attention on the message, ${e.layers} layers × ${e.heads} heads · step ${f.step}${f.context ? ` · ${f.context}` : ''}`, 12, W - 2 * MARGIN);
  const subSvg = sub.map((l, i) => svgText(MARGIN, head.bottom + 14 + i * 16, l, { size: 12, fill: MUTED, cls: 'subtitle' })).join('\n');
  const top = head.bottom + 4 + sub.length * 16 + 10;
  const gridTop = top + 18;
  const out: string[] = [];
  for (let h = 0; h < e.heads; h++) out.push(svgText(left + h * cell + (cell - 2) / 2, top + 8, `head ${h}`.length * 6 > cell ? `h${h}` : `head ${h}`, { size: 11, fill: MUTED, anchor: 'middle', baseline: 'middle' }));
  for (let l = 0; l < e.layers; l++) {
    out.push(svgText(left - 6, gridTop + l * cell + (cell - 2) / 2, `layer ${l}`, { size: 11, fill: MUTED, anchor: 'end', baseline: 'middle' }));
    for (let h = 0; h < e.heads; h++) {
      const val = v[l * e.heads + h];
      const x = left + h * cell;
      const y = gridTop + l * cell;
      out.push(`<rect x="${r1(x)}" y="${r1(y)}" width="${cell - 2}" height="${cell - 2}" fill="${viridis(val)}"/>`);
      out.push(svgText(x + (cell - 2) / 2, y + (cell - 2) / 2, val.toFixed(2).replace(/^0/, ''), { size: 10.5, fill: val > 0.6 ? INK : '#ffffff', anchor: 'middle', baseline: 'middle' }));
    }
  }
  const bar = colourBar(MARGIN, gridTop + e.layers * cell + 12, Math.min(320, W - 2 * MARGIN), 0, 1, 'share of attention on the message (colour scale)', (x) => x.toFixed(1));
  const what = `Each cell: the attention mass that ${f.names.get(e.receiver) ?? e.receiver}'s tokens put on the message of ${e.senders.map((x) => f.names.get(x) ?? x).join(', ')}, averaged over its tokens; the rest goes to its own tokens.`;
  const cap = captionBlock(f.caption ? `${what}\n${f.caption}` : what, bar.bottom + 14, W);
  const H = cap.bottom + MARGIN;
  return [svgOpen(W, H, f.title), head.svg, subSvg, `<g class="head-summary">`, ...out, '</g>', bar.svg, cap.svg, '</svg>\n'].join('\n');
}
