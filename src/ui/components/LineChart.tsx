// A small hand-drawn canvas line chart (no chart library): the full history is kept by the caller and
// only thinned here for drawing (min/max per pixel column for raw lines, so spikes stay visible).
// Raw lines are drawn faintly, smoothed ones on top; hovering shows the values at that step.
import { useEffect, useRef, useState } from 'react';
import { formatNum } from '../format';
import { niceTicks, smooth, yRange, type RefLine, type Series } from '../figure';

export { smooth, yRange };
export type { RefLine, Series };

function useWidth(ref: React.RefObject<HTMLElement | null>): number {
  const [w, setW] = useState(300);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setW(Math.max(120, Math.floor(el.clientWidth))));
    ro.observe(el);
    setW(Math.max(120, Math.floor(el.clientWidth)));
    return () => ro.disconnect();
  }, [ref]);
  return w;
}

const PAD = { l: 44, r: 12, t: 8, b: 22 };
/** Right margin that holds the reference lines' labels (never under the data). */
const REF_PAD = 78;

export function LineChart({
  series, xMax, yMin, yMax, height = 130, refLines = [], yFormat = (v: number) => formatNum(v, 3), testId, empty, fromZero = false,
}: {
  /** The y axis starts at 0 (loss: noise is not zoomed into cliffs). */
  fromZero?: boolean;
  series: Series[];
  xMax: number;
  yMin?: number;
  yMax?: number;
  height?: number;
  refLines?: RefLine[];
  yFormat?: (v: number) => string;
  testId?: string;
  empty?: string;
}) {
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const width = useWidth(wrap);
  const [hover, setHover] = useState<{ x: number; step: number } | null>(null);

  const [lo, hi] = yRange(series, refLines, yMin, yMax, fromZero);
  const x1 = Math.max(1, xMax);
  const padR = refLines.length ? REF_PAD : PAD.r;
  const plotW = width - PAD.l - padR;
  const plotH = height - PAD.t - PAD.b;
  const sx = (x: number) => PAD.l + (x / x1) * plotW;
  const sy = (y: number) => PAD.t + (1 - (y - lo) / (hi - lo || 1)) * plotH;
  const hasData = series.some((s) => s.xs.length > 0);

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(height * dpr);
    const g = c.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = '11px system-ui, sans-serif';
    // grid and axes
    g.strokeStyle = '#eef0f4';
    g.fillStyle = '#7a849c';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const v of niceTicks(lo, hi, 4)) {
      const y = Math.round(sy(v)) + 0.5;
      g.beginPath();
      g.moveTo(PAD.l, y);
      g.lineTo(width - padR, y);
      g.stroke();
      g.fillText(yFormat(v), PAD.l - 4, y);
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const v of niceTicks(0, x1, Math.max(2, Math.floor(plotW / 70)))) {
      const x = Math.round(sx(v)) + 0.5;
      g.fillText(String(v), x, height - PAD.b + 5);
      g.beginPath();
      g.moveTo(x, height - PAD.b);
      g.lineTo(x, height - PAD.b + 3);
      g.strokeStyle = '#c5cad6';
      g.stroke();
    }
    g.strokeStyle = '#c5cad6';
    g.beginPath();
    g.moveTo(PAD.l + 0.5, PAD.t);
    g.lineTo(PAD.l + 0.5, height - PAD.b + 0.5);
    g.lineTo(width - padR, height - PAD.b + 0.5);
    g.stroke();
    g.save();
    g.beginPath();
    // a little room past the plot so the first and last points are whole
    g.rect(PAD.l - 4, PAD.t - 4, plotW + 8, plotH + 8);
    g.clip();
    for (const r of refLines) {
      const y = Math.round(sy(r.y)) + 0.5;
      g.save();
      g.setLineDash([4, 3]);
      g.strokeStyle = r.color;
      g.beginPath();
      g.moveTo(PAD.l, y);
      g.lineTo(width - padR, y);
      g.stroke();
      g.restore();
    }
    for (const s of series) {
      const n = s.xs.length;
      if (!n) continue;
      g.strokeStyle = s.color;
      g.fillStyle = s.color;
      if (s.kind === 'raw') {
        // min/max per pixel column: thinned for drawing, extremes kept
        g.globalAlpha = 0.28;
        g.lineWidth = 1;
        g.beginPath();
        let col = -1;
        let mn = 0;
        let mx = 0;
        let started = false;
        const flush = () => {
          if (col < 0) return;
          const yA = sy(mx);
          const yB = sy(mn);
          if (!started) {
            g.moveTo(col, yA);
            started = true;
          } else g.lineTo(col, yA);
          if (yB !== yA) g.lineTo(col, yB);
        };
        for (let i = 0; i < n; i++) {
          const y = s.ys[i];
          if (!Number.isFinite(y)) continue;
          const c = Math.round(sx(s.xs[i]));
          if (c !== col) {
            flush();
            col = c;
            mn = y;
            mx = y;
          } else {
            mn = Math.min(mn, y);
            mx = Math.max(mx, y);
          }
        }
        flush();
        g.stroke();
        g.globalAlpha = 1;
      } else {
        g.lineWidth = 1.8;
        g.beginPath();
        let col = -1;
        let started = false;
        for (let i = 0; i < n; i++) {
          const y = s.ys[i];
          if (!Number.isFinite(y)) continue;
          const c = Math.round(sx(s.xs[i]));
          if (c === col && i !== n - 1 && s.kind !== 'points') continue;
          col = c;
          if (!started) {
            g.moveTo(sx(s.xs[i]), sy(y));
            started = true;
          } else g.lineTo(sx(s.xs[i]), sy(y));
        }
        g.stroke();
        if (s.kind === 'points') {
          const every = Math.max(1, Math.ceil(n / (plotW / 6)));
          for (let i = 0; i < n; i++) {
            // thinned when dense, but the last (final) evaluation is always drawn, larger
            const last = i === n - 1;
            if ((i % every !== 0 && !last) || !Number.isFinite(s.ys[i])) continue;
            g.beginPath();
            g.arc(sx(s.xs[i]), sy(s.ys[i]), last ? 3.6 : 2.8, 0, Math.PI * 2);
            g.fill();
            if (last) {
              g.strokeStyle = '#fff';
              g.lineWidth = 1.2;
              g.stroke();
              g.strokeStyle = s.color;
            }
          }
        }
      }
    }
    g.restore();
    // reference labels in the right margin, never under the data
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    for (const r of refLines) {
      g.fillStyle = r.color;
      g.fillText(r.label, width - padR + 5, Math.min(height - PAD.b - 6, Math.max(PAD.t + 6, sy(r.y))));
    }
    if (hover) {
      g.strokeStyle = 'rgba(29,35,48,0.35)';
      g.beginPath();
      g.moveTo(Math.round(hover.x) + 0.5, PAD.t);
      g.lineTo(Math.round(hover.x) + 0.5, height - PAD.b);
      g.stroke();
    }
  });

  const readout = hover
    ? series
        .filter((s) => !s.quiet && s.xs.length)
        .map((s) => {
          // nearest point at or before the hovered step
          let best = -1;
          for (let lo2 = 0, hi2 = s.xs.length - 1; lo2 <= hi2; ) {
            const mid = (lo2 + hi2) >> 1;
            if (s.xs[mid] <= hover.step) {
              best = mid;
              lo2 = mid + 1;
            } else hi2 = mid - 1;
          }
          return best < 0 ? null : { name: s.name, color: s.color, x: s.xs[best], y: s.ys[best] };
        })
        .filter((r): r is NonNullable<typeof r> => r !== null)
    : [];

  return (
    <div className="chart" ref={wrap} data-testid={testId}>
      <canvas
        ref={canvas}
        style={{ width, height }}
        onMouseMove={(e) => {
          const r = e.currentTarget.getBoundingClientRect();
          const x = Math.min(Math.max(e.clientX - r.left, PAD.l), width - padR);
          setHover({ x, step: ((x - PAD.l) / plotW) * x1 });
        }}
        onMouseLeave={() => setHover(null)}
      />
      {!hasData && empty && <div className="chart-empty muted small">{empty}</div>}
      {hover && readout.length > 0 && (
        <div className="chart-tip" style={{ left: Math.min(hover.x + 8, width - 150) }}>
          {readout.map((r) => (
            <div key={r.name}>
              <i style={{ background: r.color }} /> {r.name} <b>{yFormat(r.y)}</b> <span className="muted">@{r.x}</span>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

export function Legend({ items }: { items: { name: string; color: string; faint?: boolean; dashed?: boolean }[] }) {
  return (
    <div className="legend">
      {items.map((it) => (
        <span key={it.name}>
          <i className={it.dashed ? 'dashed' : undefined} style={{ background: it.dashed ? undefined : it.color, borderColor: it.color, opacity: it.faint ? 0.35 : 1 }} />
          {it.name}
        </span>
      ))}
    </div>
  );
}
