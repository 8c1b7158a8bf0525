// "Export run": one zip holding the run bundle (docs/run-bundle.md, made by the worker) at its root,
// and beside it what the page measured: the record as JSON, CSV of the curves and tables, SVG of
// the charts and PNG of every heatmap the record holds. Zipped with fflate (deflate; PNG and
// safetensors stored as they are).
import { zipSync, type Zippable } from 'fflate';
import { makeTask } from '../tasks/tasks';
import type { FileBlob, RunRecord } from '../worker/api';
import { toCsv } from '../storage/report';
import { RECORD_FILE, recordJson } from '../storage/records';
import { getEngine } from './engine';
import { attentionSlice, geometry, headSummary, paintHeatmap, viridis } from './components/Heatmap';
import { lineChartSvg } from './svg';

const enc = new TextEncoder();

export function slug(name: string): string {
  return name.trim().replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'run';
}

export function curvesCsv(rec: RunRecord): string {
  return toCsv(['step', 'loss'], rec.curves.steps.map((s, i) => [s, rec.curves.loss[i]]));
}

export function heldoutCsv(rec: RunRecord): string {
  return toCsv(['step', 'heldout_loss', 'heldout_accuracy'], rec.curves.evals.map((e) => [e.step, e.loss, e.accuracy]));
}

export function evaluationCsv(rec: RunRecord): string {
  return toCsv(
    ['split', 'accuracy', 'ci95_low', 'ci95_high', 'validity', 'entropy', 'episodes', 'loss', 'message_floats', 'message_tokens'],
    (rec.evalRows ?? []).map((r) => [r.split, r.accuracy, r.ci95?.[0], r.ci95?.[1], r.validity, r.entropy, r.episodes, r.loss, r.messageFloats, r.messageTokens]),
  );
}

/** The two charts of the Training panel as SVG. */
export function chartSvgs(rec: RunRecord): { loss: string; accuracy: string } {
  const task = makeTask(rec.config.task, rec.config.difficulty);
  const ev = rec.curves.evals;
  const loss = lineChartSvg({
    title: `Loss · ${rec.name}`, xMax: rec.config.steps, fromZero: true,
    series: [
      { name: 'train', color: '#3b5bdb', xs: rec.curves.steps, ys: rec.curves.loss, kind: 'line' },
      { name: 'held-out', color: '#e8590c', xs: ev.filter((e) => e.loss !== null).map((e) => e.step), ys: ev.filter((e) => e.loss !== null).map((e) => e.loss!), kind: 'points' },
    ],
  });
  const accuracy = lineChartSvg({
    title: `Held-out accuracy · ${rec.name}`, xMax: rec.config.steps, yMin: 0, yMax: 1, yFormat: (v) => `${Math.round(v * 100)}%`,
    refLines: [{ y: task.chance, label: `chance ${Math.round(task.chance * 100)}%`, color: '#868e96' }],
    series: [{ name: 'held-out accuracy', color: '#2b8a3e', xs: ev.filter((e) => e.accuracy !== null).map((e) => e.step), ys: ev.filter((e) => e.accuracy !== null).map((e) => e.accuracy!), kind: 'points' }],
  });
  return { loss, accuracy };
}

async function canvasPng(c: HTMLCanvasElement): Promise<Uint8Array> {
  const blob = await new Promise<Blob | null>((resolve) => c.toBlob(resolve, 'image/png'));
  if (!blob) throw new Error('the browser could not make a PNG of a heatmap');
  return new Uint8Array(await blob.arrayBuffer());
}

/** Every heatmap of the record's inspections (mean over layers and heads) and its layer x head summary, as PNG files. */
export async function heatmapPngs(rec: RunRecord): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const ins of rec.inspections) {
    const names = new Map(ins.result.agents.map((a) => [a.id, a.name]));
    for (const e of ins.result.edges) {
      const base = `heatmaps/${ins.which}-step${ins.step}-${ins.result.split}-${ins.result.index}-${slug(e.receiver)}`;
      const m = attentionSlice(e, 'avg', 'avg');
      let vmax = 0;
      for (const v of m) vmax = Math.max(vmax, v);
      const g = geometry(e, 900);
      const c = document.createElement('canvas');
      c.width = g.width * 2;
      c.height = g.height * 2;
      const x = c.getContext('2d')!;
      x.scale(2, 2);
      x.fillStyle = '#fff';
      x.fillRect(0, 0, g.width, g.height);
      paintHeatmap(x, e, m, g, vmax || 1, names);
      out.set(`${base}.png`, await canvasPng(c));
      // layer x head: share of attention on the message
      const v = headSummary(e);
      const cell = 28;
      const s = document.createElement('canvas');
      s.width = (60 + cell * e.heads) * 2;
      s.height = (24 + cell * e.layers) * 2;
      const y = s.getContext('2d')!;
      y.scale(2, 2);
      y.fillStyle = '#fff';
      y.fillRect(0, 0, s.width, s.height);
      y.font = '11px system-ui, sans-serif';
      y.textBaseline = 'middle';
      for (let h = 0; h < e.heads; h++) {
        y.fillStyle = '#5c6477';
        y.textAlign = 'center';
        y.fillText(`h${h}`, 60 + h * cell + cell / 2, 12);
      }
      for (let l = 0; l < e.layers; l++) {
        y.fillStyle = '#5c6477';
        y.textAlign = 'right';
        y.fillText(`layer ${l}`, 55, 24 + l * cell + cell / 2);
        for (let h = 0; h < e.heads; h++) {
          const val = v[l * e.heads + h];
          y.fillStyle = viridis(val);
          y.fillRect(60 + h * cell, 24 + l * cell, cell - 2, cell - 2);
          y.fillStyle = val > 0.6 ? '#1d2330' : '#fff';
          y.textAlign = 'center';
          y.fillText(val.toFixed(2).replace(/^0/, ''), 60 + h * cell + (cell - 2) / 2, 24 + l * cell + (cell - 2) / 2);
        }
      }
      out.set(`${base}-heads.png`, await canvasPng(s));
    }
  }
  return out;
}

/** The zip of a stored run: its bundle, plus results/, charts/ and heatmaps/. */
export async function exportRunZip(id: string): Promise<FileBlob> {
  const engine = getEngine();
  const rec = await engine.runRecord(id);
  const bundle = await engine.runBundle(id);
  const files: Zippable = {};
  for (const f of bundle) files[f.name] = /\.(safetensors|png)$/.test(f.name) ? [f.bytes, { level: 0 }] : f.bytes;
  files[RECORD_FILE] = enc.encode(recordJson(rec));
  files['results/curves.csv'] = enc.encode(curvesCsv(rec));
  files['results/heldout.csv'] = enc.encode(heldoutCsv(rec));
  files['results/evaluation.csv'] = enc.encode(evaluationCsv(rec));
  const charts = chartSvgs(rec);
  files['charts/loss.svg'] = enc.encode(charts.loss);
  files['charts/accuracy.svg'] = enc.encode(charts.accuracy);
  for (const [name, bytes] of await heatmapPngs(rec)) files[name] = [bytes, { level: 0 }];
  const bytes = zipSync(files, { level: 6, mtime: new Date(rec.updatedAt) });
  return { name: `${slug(rec.name)}.zip`, bytes };
}

/** Downloads text as a file. */
export function textFile(name: string, text: string): FileBlob {
  return { name, bytes: enc.encode(text) };
}
