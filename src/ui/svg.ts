// Line charts as standalone SVG figures for exports and papers (the page draws them on canvas): the
// same series, ticks and reference lines as LineChart, with a title, a framed legend below it (never
// over it), labelled axes and a caption that states the run's configuration. Pure: data in, SVG text
// out, so the file carries no page markup (no test ids, no relative sizes, no stylesheet).
import { formatNum } from './format';
import {
  AXIS, GRID, INK, MARGIN, MUTED, captionBlock, legendBlock, niceTicks, r1, svgOpen, svgText, textWidth, titleBlock, yRange,
  type LegendItem, type RefLine, type Series,
} from './figure';

export interface LineFigure {
  title: string;
  series: Series[];
  /** The x axis runs from 0 to xMax. */
  xMax: number;
  xLabel: string;
  yLabel: string;
  yMin?: number;
  yMax?: number;
  fromZero?: boolean;
  refLines?: RefLine[];
  yFormat?: (v: number) => string;
  /** What the figure shows and under which configuration (wrapped under the plot). */
  caption?: string;
  /** Legend entries; by default every series not marked quiet, then the reference lines. */
  legend?: LegendItem[];
  width?: number;
  plotHeight?: number;
}

const TICK = 11;
const LABEL = 12;

/** The legend a figure shows by default: its loud series, then its reference lines. */
export function defaultLegend(series: readonly Series[], refLines: readonly RefLine[]): LegendItem[] {
  return [
    ...series.filter((s) => !s.quiet).map((s): LegendItem => ({ name: s.name, color: s.color, mark: s.kind === 'points' ? 'points' : s.kind === 'raw' ? 'faint' : 'line' })),
    ...refLines.map((r): LegendItem => ({ name: r.label, color: r.color, mark: 'dashed' })),
  ];
}

/** A line chart as a standalone SVG figure: raw series faint, lines solid, points as dots (the last one larger). */
export function lineFigureSvg(c: LineFigure): string {
  const W = c.width ?? 720;
  const refs = c.refLines ?? [];
  const fy = c.yFormat ?? ((v: number) => formatNum(v, 3));
  const [lo, hi] = yRange(c.series, refs, c.yMin, c.yMax, c.fromZero);
  const yTicks = niceTicks(lo, hi, 5).filter((v) => v >= lo - 1e-12 && v <= hi + 1e-12);
  const tickW = Math.max(...yTicks.map((v) => textWidth(fy(v), TICK)), 10);
  const refW = refs.length ? Math.max(...refs.map((r) => textWidth(r.label, TICK))) + 14 : 0;

  const head = titleBlock(c.title, W);
  const legend = legendBlock(c.legend ?? defaultLegend(c.series, refs), MARGIN, head.bottom + 8, W - 2 * MARGIN);
  const pad = { l: MARGIN + LABEL + 10 + tickW + 8, r: MARGIN + Math.max(8, refW) };
  const plotTop = (legend.box.height ? legend.box.y + legend.box.height : head.bottom) + 16;
  const ph = c.plotHeight ?? 260;
  const plotBottom = plotTop + ph;
  const pw = W - pad.l - pad.r;
  const x1 = Math.max(1, c.xMax);
  const sx = (x: number) => pad.l + (x / x1) * pw;
  const sy = (y: number) => plotTop + (1 - (y - lo) / (hi - lo || 1)) * ph;
  const xLabelY = plotBottom + 18 + TICK + 8 + LABEL * 0.8;
  const cap = captionBlock(c.caption ?? '', xLabelY + 14, W);
  const H = cap.bottom + MARGIN;

  const out: string[] = [svgOpen(W, H, c.title), head.svg, legend.svg];
  out.push('<g class="axes">');
  for (const v of yTicks) {
    const y = r1(sy(v));
    out.push(`<line x1="${r1(pad.l)}" x2="${r1(W - pad.r)}" y1="${y}" y2="${y}" stroke="${GRID}" stroke-width="1"/>`);
    out.push(svgText(pad.l - 6, sy(v), fy(v), { size: TICK, fill: MUTED, anchor: 'end', baseline: 'middle' }));
  }
  const xTicks = niceTicks(0, x1, Math.max(2, Math.min(8, Math.floor(pw / 80))));
  for (const v of xTicks) {
    const x = r1(sx(v));
    out.push(`<line x1="${x}" x2="${x}" y1="${r1(plotBottom)}" y2="${r1(plotBottom + 4)}" stroke="${AXIS}" stroke-width="1"/>`);
    out.push(svgText(sx(v), plotBottom + 18, String(v), { size: TICK, fill: MUTED, anchor: 'middle' }));
  }
  out.push(`<polyline points="${r1(pad.l)},${r1(plotTop)} ${r1(pad.l)},${r1(plotBottom)} ${r1(W - pad.r)},${r1(plotBottom)}" fill="none" stroke="${AXIS}" stroke-width="1"/>`);
  out.push(svgText(pad.l + pw / 2, xLabelY, c.xLabel, { size: LABEL, fill: INK, anchor: 'middle', cls: 'x-label' }));
  const yl = MARGIN + LABEL * 0.8;
  const ym = plotTop + ph / 2;
  out.push(svgText(yl, ym, c.yLabel, { size: LABEL, fill: INK, anchor: 'middle', cls: 'y-label', transform: `rotate(-90 ${r1(yl)} ${r1(ym)})` }));
  out.push('</g>');

  for (const r of refs) {
    const y = sy(r.y);
    out.push(`<line x1="${r1(pad.l)}" x2="${r1(W - pad.r)}" y1="${r1(y)}" y2="${r1(y)}" stroke="${r.color}" stroke-width="1.2" stroke-dasharray="4 3"/>`);
    out.push(svgText(W - pad.r + 6, Math.min(plotBottom - 6, Math.max(plotTop + 6, y)), r.label, { size: TICK, fill: r.color, baseline: 'middle' }));
  }
  for (const s of c.series) {
    const pts: [number, number][] = [];
    for (let i = 0; i < s.xs.length; i++) if (Number.isFinite(s.ys[i])) pts.push([sx(s.xs[i]), sy(s.ys[i])]);
    if (!pts.length) continue;
    const faint = s.kind === 'raw' ? ' stroke-opacity="0.3"' : '';
    out.push(`<polyline points="${pts.map(([x, y]) => `${r1(x)},${r1(y)}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="${s.kind === 'raw' ? 1 : 1.8}" stroke-linejoin="round"${faint}/>`);
    if (s.kind === 'points') {
      // thinned when dense, but the last (final) evaluation is always drawn, larger
      const every = Math.max(1, Math.ceil(pts.length / (pw / 6)));
      pts.forEach(([x, y], i) => {
        const last = i === pts.length - 1;
        if (i % every !== 0 && !last) return;
        out.push(`<circle cx="${r1(x)}" cy="${r1(y)}" r="${last ? 4 : 3}" fill="${s.color}"${last ? ' stroke="#ffffff" stroke-width="1.2"' : ''}/>`);
      });
    }
  }
  out.push(cap.svg);
  out.push('</svg>\n');
  return out.filter(Boolean).join('\n');
}
