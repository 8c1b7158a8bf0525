// Charts as standalone SVG text for exports (the page draws them on canvas): the same series, axes,
// ticks and reference lines as LineChart, as a file a paper or a notebook can take. No DOM needed.
import { formatNum } from './format';
import { yRange, type RefLine, type Series } from './components/LineChart';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceTicks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export interface SvgChart {
  title: string;
  series: Series[];
  xMax: number;
  xLabel?: string;
  yMin?: number;
  yMax?: number;
  fromZero?: boolean;
  refLines?: RefLine[];
  yFormat?: (v: number) => string;
  width?: number;
  height?: number;
}

/** A line chart as SVG text: raw series faint, lines solid, points as dots (the last one larger), a legend. */
export function lineChartSvg(c: SvgChart): string {
  const W = c.width ?? 640;
  const H = c.height ?? 300;
  const refs = c.refLines ?? [];
  const pad = { l: 56, r: refs.length ? 96 : 16, t: 34, b: 40 };
  const pw = W - pad.l - pad.r;
  const ph = H - pad.t - pad.b;
  const [lo, hi] = yRange(c.series, refs, c.yMin, c.yMax, c.fromZero);
  const x1 = Math.max(1, c.xMax);
  const sx = (x: number) => pad.l + (x / x1) * pw;
  const sy = (y: number) => pad.t + (1 - (y - lo) / (hi - lo || 1)) * ph;
  const fy = c.yFormat ?? ((v: number) => formatNum(v, 3));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${pad.l}" y="18" font-weight="600" font-size="13" fill="#1d2330">${esc(c.title)}</text>`);
  for (const v of niceTicks(lo, hi, 5)) {
    const y = sy(v).toFixed(1);
    out.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y}" y2="${y}" stroke="#eef0f4"/>`);
    out.push(`<text x="${pad.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#5c6477">${esc(fy(v))}</text>`);
  }
  for (const v of niceTicks(0, x1, 6)) {
    const x = sx(v).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${H - pad.b}" y2="${H - pad.b + 4}" stroke="#c5cad6"/>`);
    out.push(`<text x="${x}" y="${H - pad.b + 16}" text-anchor="middle" fill="#5c6477">${v}</text>`);
  }
  out.push(`<text x="${pad.l + pw / 2}" y="${H - 6}" text-anchor="middle" fill="#5c6477">${esc(c.xLabel ?? 'step')}</text>`);
  out.push(`<polyline points="${pad.l},${pad.t} ${pad.l},${H - pad.b} ${W - pad.r},${H - pad.b}" fill="none" stroke="#c5cad6"/>`);
  for (const r of refs) {
    const y = sy(r.y).toFixed(1);
    out.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y}" y2="${y}" stroke="${r.color}" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${W - pad.r + 6}" y="${y}" dominant-baseline="middle" fill="${r.color}">${esc(r.label)}</text>`);
  }
  for (const s of c.series) {
    const pts: string[] = [];
    for (let i = 0; i < s.xs.length; i++) if (Number.isFinite(s.ys[i])) pts.push(`${sx(s.xs[i]).toFixed(1)},${sy(s.ys[i]).toFixed(1)}`);
    if (!pts.length) continue;
    const faint = s.kind === 'raw' ? ' stroke-opacity="0.3"' : '';
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="${s.kind === 'raw' ? 1 : 1.8}"${faint}><title>${esc(s.name)}</title></polyline>`);
    if (s.kind === 'points') {
      pts.forEach((p, i) => {
        const [x, y] = p.split(',');
        out.push(`<circle cx="${x}" cy="${y}" r="${i === pts.length - 1 ? 4 : 3}" fill="${s.color}"${i === pts.length - 1 ? ' stroke="#fff"' : ''}/>`);
      });
    }
  }
  let lx = pad.l + 180;
  for (const s of c.series.filter((x) => !x.quiet)) {
    out.push(`<rect x="${lx}" y="10" width="14" height="3" fill="${s.color}"/><text x="${lx + 18}" y="14" dominant-baseline="middle" fill="#5c6477">${esc(s.name)}</text>`);
    lx += 30 + s.name.length * 7;
  }
  out.push('</svg>\n');
  return out.join('\n');
}
