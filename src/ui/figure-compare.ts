// A comparison's figures for export: accuracy by method with its intervals, and the training loss of
// each trained method (mean over seeds), as standalone SVG figures titled and captioned with the
// comparison's configuration (read from the report's args, which may come from an older or foreign
// report: every field is checked before it is said).
import type { ExperimentReport, ExperimentRowSummary } from '../worker/api';
import type { AccuracySummary } from '../mas/paired';
import type { Split } from '../tasks/tasks';
import {
  AXIS, GRID, INK, MARGIN, MUTED, baseLabel, captionBlock, legendBlock, r1, smooth, svgOpen, svgText, textWidth, titleBlock, type LegendItem, type Series,
} from './figure';
import { lineFigureSvg } from './svg';

export const METHOD_COLORS = ['#3b5bdb', '#e8590c', '#2b8a3e', '#ae3ec9', '#1098ad', '#f08c00', '#c2255c', '#5c940d'];
export const SPLIT_COLORS: Record<Split, string> = { train: '#868e96', heldout: '#3b5bdb', ood: '#e8590c' };
/** The compare loss chart's display smoothing (the page and the export draw the same lines). */
export const COMPARE_SMOOTHING = 0.6;

/** Training loss of each trained method, averaged over its seeds, smoothed for display. */
export function compareLossSeries(curves: NonNullable<ExperimentReport['curves']>): { series: Series[]; xMax: number } {
  const methods = [...new Set(curves.map((c) => c.method))];
  let xMax = 1;
  const series: Series[] = methods.map((m, i) => {
    const runs = curves.filter((c) => c.method === m);
    const n = Math.max(...runs.map((r) => r.losses.length));
    xMax = Math.max(xMax, n);
    const mean = Array.from({ length: n }, (_, s) => {
      const vals = runs.map((r) => r.losses[s]).filter((v) => Number.isFinite(v));
      return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
    });
    return { name: m, color: METHOD_COLORS[i % METHOD_COLORS.length], xs: mean.map((_, s) => s + 1), ys: smooth(mean, COMPARE_SMOOTHING), kind: 'line' };
  });
  return { series, xMax };
}

const str = (v: unknown) => (typeof v === 'string' && v ? v : null);
const fin = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The comparison's configuration in one sentence, from the report's args (fields it lacks are left out). */
export function compareCaption(r: Pick<ExperimentReport, 'args' | 'rows'>): string {
  const a = r.args;
  const parts: string[] = [];
  const methods = Array.isArray(a.methods) ? (a.methods as unknown[]).filter((m) => typeof m === 'string') : [...new Set(r.rows.map((x) => x.method))];
  if (methods.length) parts.push(`Methods ${methods.join(', ')}`);
  const task = str(a.task);
  const d = fin(a.difficulty);
  if (task) parts.push(`task ${task}${d !== null ? ` (difficulty ${d})` : ''}`);
  const base = str(a.model) ?? str(a.modelId);
  if (base) parts.push(`base ${baseLabel(base)}`);
  const seeds = Array.isArray(a.seeds) ? (a.seeds as unknown[]).filter((s) => typeof s === 'number') : [...new Set(r.rows.map((x) => x.seed))];
  if (seeds.length) parts.push(`seed${seeds.length === 1 ? '' : 's'} ${seeds.join(', ')}`);
  const steps = fin(a.steps);
  if (steps !== null) parts.push(`${steps} steps`);
  const lr = fin(a.lr);
  if (lr !== null) parts.push(`lr ${lr}`);
  const lora = a.lora && typeof a.lora === 'object' ? (a.lora as { r?: unknown; alpha?: unknown }) : null;
  const rank = lora ? fin(lora.r) : null;
  if (rank !== null) parts.push(`LoRA rank ${rank}${lora && fin(lora.alpha) !== null ? ` (alpha ${fin(lora.alpha)})` : ''}`);
  const batch = fin(a.batch);
  if (batch !== null) parts.push(`batch ${batch}`);
  const evalSize = fin(a.evalSize);
  if (evalSize !== null) parts.push(`${evalSize} evaluation episodes per split`);
  return parts.length ? `${parts.join(', ')}.` : '';
}

/** The training loss of each trained method (mean over seeds) as a standalone SVG figure; null without curves. */
export function compareLossSvg(r: ExperimentReport, title: string): string | null {
  if (!r.curves?.length) return null;
  const { series, xMax } = compareLossSeries(r.curves);
  return lineFigureSvg({
    title, series, xMax, fromZero: true, xLabel: 'training step', yLabel: 'loss (cross-entropy)',
    caption: `Training loss of each trained method, mean over its seeds, smoothed for display (debiased moving average, weight ${COMPARE_SMOOTHING}). ${compareCaption(r)}`,
  });
}

/** Accuracy by method and split with 95% intervals (or the seeds' two modes) as a standalone SVG figure. */
export function compareAccuracySvg(opts: {
  rows: ExperimentRowSummary[];
  acc: (x: ExperimentRowSummary) => AccuracySummary;
  chance: number;
  title: string;
  caption: string;
}): string {
  const { rows, acc, chance } = opts;
  const methods = [...new Set(rows.map((r) => r.method))];
  const splits = [...new Set(rows.map((r) => r.split))];
  // method names under their slots, turned 30 degrees when the widest would not fit across one
  const slot = 84;
  const nameW = Math.max(0, ...methods.map((m) => textWidth(m, 11.5)));
  const turned = nameW > slot - 8;
  const W = Math.max(560, methods.length * slot + 100);
  const head = titleBlock(opts.title, W);
  const legendItems: LegendItem[] = [
    ...splits.map((s): LegendItem => ({ name: s === 'heldout' ? 'held-out' : s === 'ood' ? 'out-of-distribution' : s, color: SPLIT_COLORS[s], mark: 'dot' })),
    { name: `chance ${Math.round(chance * 100)}%`, color: AXIS, mark: 'dashed' },
  ];
  const legend = legendBlock(legendItems, MARGIN, head.bottom + 8, W - 2 * MARGIN);
  const pad = { l: MARGIN + 12 + 10 + 34 + 6, r: MARGIN };
  const top = legend.box.y + legend.box.height + 16;
  const ph = 220;
  const bottom = top + ph;
  const pw = W - pad.l - pad.r;
  const xc = (i: number) => pad.l + ((i + 0.5) / methods.length) * pw;
  const x = (i: number, j: number) => xc(i) + (j - (splits.length - 1) / 2) * 14;
  const y = (v: number) => top + (1 - Math.min(1, Math.max(0, v))) * ph;
  const out: string[] = [svgOpen(W, 0, opts.title), head.svg, legend.svg, '<g class="axes">'];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${r1(pad.l)}" x2="${r1(W - pad.r)}" y1="${r1(y(v))}" y2="${r1(y(v))}" stroke="${GRID}" stroke-width="1"/>`);
    out.push(svgText(pad.l - 6, y(v), `${Math.round(v * 100)}%`, { size: 11, fill: MUTED, anchor: 'end', baseline: 'middle' }));
  }
  out.push(`<polyline points="${r1(pad.l)},${r1(top)} ${r1(pad.l)},${r1(bottom)} ${r1(W - pad.r)},${r1(bottom)}" fill="none" stroke="${AXIS}" stroke-width="1"/>`);
  methods.forEach((m, i) =>
    out.push(turned
      ? svgText(xc(i) + 4, bottom + 14, m, { size: 11.5, fill: INK, anchor: 'end', transform: `rotate(-30 ${r1(xc(i) + 4)} ${r1(bottom + 14)})` })
      : svgText(xc(i), bottom + 18, m, { size: 11.5, fill: INK, anchor: 'middle' })));
  const xLabelY = bottom + 42 + (turned ? nameW * 0.5 : 0);
  out.push(svgText(pad.l + pw / 2, xLabelY, 'method', { size: 12, fill: INK, anchor: 'middle', cls: 'x-label' }));
  const yl = MARGIN + 10;
  out.push(svgText(yl, top + ph / 2, 'accuracy', { size: 12, fill: INK, anchor: 'middle', cls: 'y-label', transform: `rotate(-90 ${r1(yl)} ${r1(top + ph / 2)})` }));
  out.push('</g>');
  out.push(`<line x1="${r1(pad.l)}" x2="${r1(W - pad.r)}" y1="${r1(y(chance))}" y2="${r1(y(chance))}" stroke="${AXIS}" stroke-width="1.2" stroke-dasharray="4 3"/>`);
  for (const r of rows) {
    const cx = x(methods.indexOf(r.method), splits.indexOf(r.split));
    const c = SPLIT_COLORS[r.split];
    const a = acc(r);
    // the bootstrap interval lies in [0, 1] by construction; none below the minimum seeds, none over modes
    if (!a.modes && a.lo !== null && a.hi !== null) {
      out.push(`<line x1="${r1(cx)}" x2="${r1(cx)}" y1="${r1(y(a.lo))}" y2="${r1(y(a.hi))}" stroke="${c}" stroke-width="1.5"/>`);
      for (const v of [a.lo, a.hi]) out.push(`<line x1="${r1(cx - 4)}" x2="${r1(cx + 4)}" y1="${r1(y(v))}" y2="${r1(y(v))}" stroke="${c}" stroke-width="1"/>`);
    }
    if (a.modes) for (const v of [a.modes.below, a.modes.at]) out.push(`<line x1="${r1(cx - 5)}" x2="${r1(cx + 5)}" y1="${r1(y(v))}" y2="${r1(y(v))}" stroke="${c}" stroke-width="2"/>`);
    out.push(`<circle cx="${r1(cx)}" cy="${r1(y(r.accuracyMean))}" r="4" fill="${a.modes ? '#ffffff' : c}" stroke="${c}" stroke-width="1"/>`);
  }
  const what = 'Dots: mean accuracy; bars: 95% bootstrap interval over seeds × episodes (none below 3 seeds); two ticks and a hollow dot: the seeds split into two modes.';
  const cap = captionBlock(opts.caption ? `${what}\n${opts.caption}` : what, xLabelY + 14, W);
  out.push(cap.svg, '</svg>\n');
  const H = cap.bottom + MARGIN;
  out[0] = svgOpen(W, H, opts.title);
  return out.join('\n');
}
