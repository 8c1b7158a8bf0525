// A stored run's figures for its export: the loss and held-out accuracy charts and every heatmap of
// its inspections, each titled and captioned with the run's key configuration, as SVG text (the
// export rasterizes the heatmaps and the charts to PNG from these, src/ui/figure-png.ts).
import { makeTask } from '../tasks/tasks';
import type { RunRecord, StoredInspection } from '../storage/records';
import { baseLabel, smooth } from './figure';
import { exampleWords, headSummaryFigureSvg, heatmapFigureSvg } from './figure-heatmap';
import { lineFigureSvg } from './svg';

export const FIGURE_COLORS = { train: '#3b5bdb', heldout: '#e8590c', acc: '#2b8a3e', chance: '#868e96' };
/** The exported loss chart's smoothing (the page's default): the raw loss is drawn faintly under it. */
export const FIGURE_SMOOTHING = 0.6;

const num = (v: number) => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4))));

/** The run's key configuration in one sentence: method, task, difficulty, base, seed, steps, lr, rank, batch. */
export function runCaption(rec: Pick<RunRecord, 'config' | 'baseName' | 'baseModelId' | 'stepsDone'>): string {
  const c = rec.config;
  const steps = rec.stepsDone < c.steps && rec.stepsDone > 0 ? `${c.steps} steps (${rec.stepsDone} done)` : `${c.steps} steps`;
  return (
    `Method ${c.method}, task ${c.task} (difficulty ${c.difficulty}), base ${baseLabel(rec.baseModelId || c.modelId, rec.baseName)}, seed ${c.seed}, ` +
    `${steps}, lr ${num(c.lr)}, LoRA rank ${c.lora.r} (alpha ${num(c.lora.alpha)}), batch ${c.batch}.`
  );
}

/** The two charts of the Training panel as standalone SVG figures: the loss smoothed as on the page, its y axis from 0 unless `fitY`. */
export function runChartSvgs(rec: RunRecord, opts: { smoothing?: number; fitY?: boolean } = {}): { loss: string; accuracy: string } {
  const w = opts.smoothing ?? FIGURE_SMOOTHING;
  const task = makeTask(rec.config.task, rec.config.difficulty);
  const ev = rec.curves.evals;
  const evLoss = ev.filter((e) => e.loss !== null);
  const evAcc = ev.filter((e) => e.accuracy !== null);
  const caption = runCaption(rec);
  const when = rec.config.evalEvery ? `every ${rec.config.evalEvery} steps and at the end` : 'at the end';
  const xMax = Math.max(rec.config.steps, ...rec.curves.steps, ...ev.map((e) => e.step));
  const C = FIGURE_COLORS;
  const loss = lineFigureSvg({
    title: `Training loss · ${rec.name}`,
    xMax, fromZero: !opts.fitY, xLabel: 'training step', yLabel: 'loss (cross-entropy)',
    series: [
      ...(w > 0
        ? [
            { name: 'train (per step)', color: C.train, xs: rec.curves.steps, ys: rec.curves.loss, kind: 'raw' as const },
            { name: `train (EMA ${w})`, color: C.train, xs: rec.curves.steps, ys: smooth(rec.curves.loss, w), kind: 'line' as const },
          ]
        : [{ name: 'train', color: C.train, xs: rec.curves.steps, ys: rec.curves.loss, kind: 'line' as const }]),
      { name: 'held-out', color: C.heldout, xs: evLoss.map((e) => e.step), ys: evLoss.map((e) => e.loss!), kind: 'points' },
    ],
    caption: `${w > 0 ? `Training loss of each step (faint), its debiased moving average (weight ${w})` : 'Training loss of each step'}, and the held-out loss on ${rec.config.evalSize} episodes ${when}. ${caption}`,
  });
  const accuracy = lineFigureSvg({
    title: `Held-out accuracy · ${rec.name}`,
    xMax, yMin: 0, yMax: 1, yFormat: (v) => `${Math.round(v * 100)}%`, xLabel: 'training step', yLabel: 'held-out accuracy',
    refLines: [{ y: task.chance, label: `chance ${Math.round(task.chance * 100)}%`, color: C.chance }],
    series: [{ name: 'held-out accuracy', color: C.acc, xs: evAcc.map((e) => e.step), ys: evAcc.map((e) => e.accuracy!), kind: 'points' }],
    caption: `Exact-match accuracy on ${rec.config.evalSize} held-out episodes ${when}; dashed: chance of the final agent alone. ${caption}`,
  });
  return { loss, accuracy };
}

const WHEN: Record<StoredInspection['which'], string> = { before: 'before training', after: 'after training' };

/** Every heatmap of the record's inspections (mean over layers and heads) and its layer x head summary, as named SVG figures. */
export function runHeatmapFigures(rec: RunRecord, slug: (s: string) => string): { name: string; svg: string }[] {
  const out: { name: string; svg: string }[] = [];
  const caption = runCaption(rec);
  for (const ins of rec.inspections) {
    const names = new Map(ins.result.agents.map((a) => [a.id, a.name]));
    const r = ins.result;
    const context = exampleWords(r);
    for (const e of r.edges) {
      const base = `heatmaps/${ins.which}-step${ins.step}-${r.split}-${r.index}-${slug(e.receiver)}`;
      const who = `${names.get(e.receiver) ?? e.receiver} ← ${e.senders.map((s) => names.get(s) ?? s).join(', ')}`;
      const title = `Attention on the message, ${who} · ${WHEN[ins.which] ?? ins.which}, step ${ins.step} · ${rec.name}`;
      out.push({ name: `${base}.png`, svg: heatmapFigureSvg({ edge: e, names, layer: 'avg', head: 'avg', step: ins.step, title, context, caption }) });
      const titleHeads = `Attention on the message by layer and head, ${who} · ${WHEN[ins.which] ?? ins.which}, step ${ins.step} · ${rec.name}`;
      out.push({ name: `${base}-heads.png`, svg: headSummaryFigureSvg({ edge: e, names, step: ins.step, title: titleHeads, context, caption }) });
    }
  }
  return out;
}
