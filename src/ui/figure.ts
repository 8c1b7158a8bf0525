// What every exported figure shares: the series and scale types the live charts use too, ticks, the
// colour map, and the pieces of a standalone SVG figure (escaped text with its font and colour
// inline, an estimate of text width for layout, word wrapping, a framed legend, a caption).
// Pure functions of data: no DOM, so a figure is clean by construction and testable in node.

export interface Series {
  name: string;
  color: string;
  xs: readonly number[];
  ys: readonly number[];
  /** raw: faint, thinned by min/max per column; line: solid; points: line with dots */
  kind: 'raw' | 'line' | 'points';
  /** Hidden from the legend and the hover readout (e.g. the raw twin of a smoothed line). */
  quiet?: boolean;
}

export interface RefLine {
  y: number;
  label: string;
  color: string;
}

/** TensorBoard's debiased exponential moving average. */
export function smooth(ys: readonly number[], weight: number): number[] {
  const out: number[] = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (!Number.isFinite(y)) {
      out[i] = y;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = weight === 0 ? y : last / (1 - weight ** n);
  }
  return out;
}

/** About n round values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The y range a chart draws: fixed ends, or the data's (from 0 when `fromZero`), with a 5% margin. */
export function yRange(series: readonly Series[], refLines: readonly RefLine[], yMin?: number, yMax?: number, fromZero = false): [number, number] {
  let lo = yMin ?? Infinity;
  let hi = yMax ?? -Infinity;
  if (yMin === undefined || yMax === undefined) {
    for (const s of series) {
      for (const y of s.ys) {
        if (!Number.isFinite(y)) continue;
        if (yMin === undefined) lo = Math.min(lo, y);
        if (yMax === undefined) hi = Math.max(hi, y);
      }
    }
    for (const r of refLines) {
      if (yMin === undefined) lo = Math.min(lo, r.y);
      if (yMax === undefined) hi = Math.max(hi, r.y);
    }
    if (!Number.isFinite(lo)) lo = 0;
    if (!Number.isFinite(hi)) hi = 1;
    if (yMin === undefined) lo = fromZero ? Math.min(0, lo) : Math.max(0, lo - (hi - lo) * 0.05);
    if (yMax === undefined) hi = hi + (hi - lo) * 0.05 || 1;
  }
  return [lo, hi];
}

/** Viridis, sampled (matplotlib's perceptually uniform, colour-blind-safe map). */
const VIRIDIS = [
  [68, 1, 84], [72, 35, 116], [64, 67, 135], [52, 94, 141], [41, 120, 142], [32, 144, 140], [34, 167, 132],
  [68, 190, 112], [121, 209, 81], [189, 222, 38], [253, 231, 37],
];

export function viridis(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// ---- standalone SVG pieces ----

/** The figures' fonts: common system fonts first, so a file renders the same in a browser, Inkscape or a LaTeX toolchain. */
export const FONT = "Helvetica, Arial, 'Liberation Sans', sans-serif";
export const MONO_FONT = "Menlo, Consolas, 'DejaVu Sans Mono', monospace";
export const INK = '#1d2330';
export const MUTED = '#495057';
export const GRID = '#e9ecef';
export const AXIS = '#868e96';

export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Width of a line of sans-serif text in px, an upper estimate: advance widths grouped coarsely at
 * DejaVu Sans's (the widest of the fonts a viewer substitutes for Helvetica), so layout never overlaps.
 */
export function textWidth(text: string, size: number, bold = false): number {
  let em = 0;
  for (const ch of text) {
    if (/[ilj.,:;'|!Iíì\s]/.test(ch)) em += 0.33;
    else if (/[()[\]{}ftr\-1]/.test(ch)) em += 0.44;
    else if (/[mwMW%@]/.test(ch)) em += 0.98;
    else if (/[A-Z]/.test(ch)) em += 0.76;
    else if (ch === '·') em += 0.33;
    else if (ch === '…') em += 1;
    else if (/[\u2190-\u21ff\u2200-\u22ff×±≤≥]/.test(ch)) em += 0.84;
    else if (ch.codePointAt(0)! > 0x2e80) em += 1;
    else em += 0.63;
  }
  return em * size * (bold ? 1.1 : 1);
}

/** Words wrapped into lines no wider than maxWidth (a word wider than that gets a line of its own). */
export function wrapText(text: string, size: number, maxWidth: number, bold = false): string[] {
  const lines: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(/\s+/).filter(Boolean)) {
      const next = line ? `${line} ${word}` : word;
      if (line && textWidth(next, size, bold) > maxWidth) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    lines.push(line);
  }
  return lines;
}

export interface TextStyle {
  size?: number;
  fill?: string;
  weight?: number;
  anchor?: 'start' | 'middle' | 'end';
  baseline?: 'middle' | 'hanging' | 'auto';
  family?: string;
  cls?: string;
  transform?: string;
}

/** One <text> with its font, size and colour inline (no stylesheet to travel with the file). */
export function svgText(x: number, y: number, text: string, st: TextStyle = {}): string {
  const a = [`x="${r1(x)}"`, `y="${r1(y)}"`, `font-family="${st.family ?? FONT}"`, `font-size="${st.size ?? 12}"`, `fill="${st.fill ?? INK}"`];
  if (st.weight) a.push(`font-weight="${st.weight}"`);
  if (st.anchor && st.anchor !== 'start') a.push(`text-anchor="${st.anchor}"`);
  if (st.baseline && st.baseline !== 'auto') a.push(`dominant-baseline="${st.baseline}"`);
  if (st.cls) a.push(`class="${st.cls}"`);
  if (st.transform) a.push(`transform="${st.transform}"`);
  return `<text ${a.join(' ')}>${esc(text)}</text>`;
}

export const r1 = (v: number) => String(Math.round(v * 10) / 10);

/** The opening of a standalone figure: explicit size and viewBox, a white background. */
export function svgOpen(width: number, height: number, title: string): string {
  const W = Math.ceil(width);
  const H = Math.ceil(height);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
  ].join('\n');
}

export const TITLE_SIZE = 15;
export const TITLE_LINE = 19;
export const CAPTION_SIZE = 11;
export const CAPTION_LINE = 15;
export const MARGIN = 16;

/** The title lines from y = 0: returns the SVG and the y below them. */
export function titleBlock(title: string, width: number): { svg: string; bottom: number } {
  const lines = wrapText(title, TITLE_SIZE, width - 2 * MARGIN, true);
  const svg = lines.map((l, i) => svgText(MARGIN, MARGIN + TITLE_SIZE * 0.8 + i * TITLE_LINE, l, { size: TITLE_SIZE, weight: 700, cls: 'title' })).join('\n');
  return { svg, bottom: MARGIN + lines.length * TITLE_LINE };
}

/** The caption (wrapped) from y = top: returns the SVG and the y below it. */
export function captionBlock(caption: string, top: number, width: number): { svg: string; bottom: number } {
  const lines = caption ? wrapText(caption, CAPTION_SIZE, width - 2 * MARGIN) : [];
  const svg = lines.map((l, i) => svgText(MARGIN, top + CAPTION_SIZE * 0.8 + i * CAPTION_LINE, l, { size: CAPTION_SIZE, fill: MUTED, cls: 'caption' })).join('\n');
  return { svg, bottom: top + lines.length * CAPTION_LINE };
}

export interface LegendItem {
  name: string;
  color: string;
  /** line: a solid stroke; points: a stroke with a dot; dashed: a reference line; faint: a raw series; dot: a marker alone */
  mark: 'line' | 'points' | 'dashed' | 'faint' | 'dot';
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

const LEGEND_SIZE = 12;
const LEGEND_ROW = 18;
const SWATCH = 22;

/** A framed legend flowing in rows within [x, x + maxWidth], from y = top: the SVG and its box. */
export function legendBlock(items: readonly LegendItem[], x: number, top: number, maxWidth: number): { svg: string; box: Box } {
  if (!items.length) return { svg: '', box: { x, y: top, width: 0, height: 0 } };
  const pad = 7;
  const rows: { item: LegendItem; dx: number; w: number }[][] = [[]];
  let cx = 0;
  let widest = 0;
  for (const item of items) {
    const w = SWATCH + 6 + textWidth(item.name, LEGEND_SIZE);
    if (cx > 0 && cx + w > maxWidth - 2 * pad) {
      rows.push([]);
      cx = 0;
    }
    rows[rows.length - 1].push({ item, dx: cx, w });
    cx += w + 16;
    widest = Math.max(widest, cx - 16);
  }
  const box = { x, y: top, width: widest + 2 * pad, height: rows.length * LEGEND_ROW + 2 * pad - 4 };
  const out = [`<g class="legend">`, `<rect class="legend-frame" x="${r1(box.x)}" y="${r1(box.y)}" width="${r1(box.width)}" height="${r1(box.height)}" fill="#ffffff" stroke="#ced4da" stroke-width="1"/>`];
  rows.forEach((row, ri) => {
    const cy = top + pad + ri * LEGEND_ROW + (LEGEND_ROW - 4) / 2;
    for (const { item, dx } of row) {
      const sx = x + pad + dx;
      const c = item.color;
      if (item.mark === 'dot') out.push(`<circle cx="${r1(sx + SWATCH / 2)}" cy="${r1(cy)}" r="4" fill="${c}"/>`);
      else {
        const extra = item.mark === 'dashed' ? ' stroke-dasharray="4 3"' : item.mark === 'faint' ? ' stroke-opacity="0.35"' : '';
        out.push(`<line x1="${r1(sx)}" x2="${r1(sx + SWATCH)}" y1="${r1(cy)}" y2="${r1(cy)}" stroke="${c}" stroke-width="${item.mark === 'faint' ? 1.2 : 2}"${extra}/>`);
        if (item.mark === 'points') out.push(`<circle cx="${r1(sx + SWATCH / 2)}" cy="${r1(cy)}" r="3" fill="${c}"/>`);
      }
      out.push(svgText(sx + SWATCH + 6, cy, item.name, { size: LEGEND_SIZE, fill: INK, baseline: 'middle' }));
    }
  });
  out.push('</g>');
  return { svg: out.join('\n'), box };
}

/** A horizontal colour bar (viridis over [min, max]) with its two values and a label: the SVG and its height. */
export function colourBar(x: number, top: number, width: number, min: number, max: number, label: string, fmt: (v: number) => string): { svg: string; bottom: number } {
  const n = 64;
  const h = 12;
  const out = [`<g class="colour-scale">`, svgText(x, top + 9, label, { size: 11, fill: MUTED })];
  const y = top + 16;
  const minLabel = fmt(min);
  const bx = x + textWidth(minLabel, 11) + 6;
  const bw = width - (bx - x) - textWidth(fmt(max), 11) - 6;
  out.push(svgText(x, y + h / 2, minLabel, { size: 11, fill: INK, baseline: 'middle', cls: 'scale-min' }));
  for (let i = 0; i < n; i++) out.push(`<rect x="${r1(bx + (i * bw) / n)}" y="${r1(y)}" width="${r1(bw / n + 0.6)}" height="${h}" fill="${viridis(i / (n - 1))}"/>`);
  out.push(`<rect x="${r1(bx)}" y="${r1(y)}" width="${r1(bw)}" height="${h}" fill="none" stroke="#adb5bd" stroke-width="0.8"/>`);
  out.push(svgText(bx + bw + 6, y + h / 2, fmt(max), { size: 11, fill: INK, baseline: 'middle', cls: 'scale-max' }));
  out.push('</g>');
  return { svg: out.join('\n'), bottom: y + h };
}

/** A method's base model as people name it: 'builtin:toy' and 'public/models/toy' are 'toy'. */
export function baseLabel(id: string, name?: string): string {
  if (name) return name;
  return id.replace(/^builtin:/, '').replace(/^.*\//, '') || id;
}
