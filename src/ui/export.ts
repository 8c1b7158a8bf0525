// "Export run": one zip holding the run bundle (docs/run-bundle.md, made by the worker) at its root,
// and beside it what the page measured: the record as JSON, CSV of the curves and tables, SVG of
// the charts (and PNG of them) and PNG of every heatmap the record holds, each a titled, captioned
// figure (src/ui/figure-run.ts). Zipped with fflate (deflate; PNG and
// safetensors stored as they are).
import { zipSync, type Zippable } from 'fflate';
import type { FileBlob, RunRecord } from '../worker/api';
import { toCsv } from '../storage/report';
import { RECORD_FILE, recordJson } from '../storage/records';
import { recordRuns, tensorboardFiles, TENSORBOARD_DIR } from '../storage/tensorboard';
import { trainHyperOf } from '../mas/run-data';
import { lrAt } from '../model/train';
import { getEngine } from './engine';
import { runChartSvgs, runHeatmapFigures } from './figure-run';
import { svgToPng } from './figure-png';

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

/** The two charts of the Training panel as standalone SVG figures. */
export const chartSvgs = runChartSvgs;

/** Every heatmap of the record's inspections (mean over layers and heads) and its layer x head summary, as PNG figures. */
export async function heatmapPngs(rec: RunRecord): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const f of runHeatmapFigures(rec, slug)) out.set(f.name, await svgToPng(f.svg));
  return out;
}

/** The zip of a stored run: its bundle, plus results/, charts/ and heatmaps/; `say` names each stage (a big base's export takes a while). */
export async function exportRunZip(id: string, say: (stage: string) => void = () => {}): Promise<FileBlob> {
  const engine = getEngine();
  const rec = await engine.runRecord(id);
  say('making the run bundle (base, adapters, episodes, batches, latent map)');
  const bundle = await engine.runBundle(id);
  say(`drawing the charts and heatmaps (the bundle holds ${(bundle.reduce((n, f) => n + f.bytes.length, 0) / 1e6).toFixed(1)} MB)`);
  const files: Zippable = {};
  for (const f of bundle) files[f.name] = /\.(safetensors|png)$/.test(f.name) ? [f.bytes, { level: 0 }] : f.bytes;
  files[RECORD_FILE] = enc.encode(recordJson(rec));
  files['results/curves.csv'] = enc.encode(curvesCsv(rec));
  files['results/heldout.csv'] = enc.encode(heldoutCsv(rec));
  // only a run that was evaluated has the table (a header alone would read as an evaluation with no rows)
  if (rec.evalRows?.length) files['results/evaluation.csv'] = enc.encode(evaluationCsv(rec));
  const charts = chartSvgs(rec);
  files['charts/loss.svg'] = enc.encode(charts.loss);
  files['charts/accuracy.svg'] = enc.encode(charts.accuracy);
  files['charts/loss.png'] = [await svgToPng(charts.loss), { level: 0 }];
  files['charts/accuracy.png'] = [await svgToPng(charts.accuracy), { level: 0 }];
  for (const [name, bytes] of await heatmapPngs(rec)) files[name] = [bytes, { level: 0 }];
  // TensorBoard event files (src/storage/tensorboard.ts states the layout); lr from the run's own schedule
  const runs = recordRuns(rec, { lrOf: (config, step) => lrAt(step, trainHyperOf(config)) });
  for (const [name, bytes] of tensorboardFiles(runs, { host: 'latent-playground', tag: 'page', prefix: `${TENSORBOARD_DIR}/` })) files[name] = bytes;
  say('zipping');
  const bytes = zipSync(files, { level: 6, mtime: new Date(rec.updatedAt) });
  return { name: `${slug(rec.name)}.zip`, bytes };
}

/** Downloads text as a file. */
export function textFile(name: string, text: string): FileBlob {
  return { name, bytes: enc.encode(text) };
}
