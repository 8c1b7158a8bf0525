// @vitest-environment node
// Exported figures are standalone and readable by construction (issue 21 item 6): the SVG text of the
// run's charts, the comparison's charts and the heatmaps is well formed, declares its own size and
// viewBox, carries no page markup (relative width, test ids, classes of the page's stylesheet, inline
// CSS), has its fonts and colours inline, a white background, a title, labelled axes, a caption with
// the run's key configuration, and a legend whose box clears the title's (by computed coordinates,
// with a text width estimate independent of the one the layout uses, and wider).
import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/storage/records';
import type { EdgeInspection, ExperimentReport, ExperimentRowSummary } from '../src/worker/api';
import { runCaption, runChartSvgs, runHeatmapFigures } from '../src/ui/figure-run';
import { compareAccuracySvg, compareCaption, compareLossSvg } from '../src/ui/figure-compare';
import { exampleWords, headSummaryFigureSvg, heatmapFigureSvg } from '../src/ui/figure-heatmap';
import { lineFigureSvg } from '../src/ui/svg';
import { wrapText } from '../src/ui/figure';

interface El {
  tag: string;
  attrs: Record<string, string>;
  text: string;
}

/** A tiny XML reader: every element with its attributes and direct text; throws on unbalanced tags. */
function parse(svg: string): El[] {
  const out: El[] = [];
  const stack: El[] = [];
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>|([^<]+)/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(svg))) {
    if (m.index !== consumed) throw new Error(`unparsed text at ${consumed}: ${svg.slice(consumed, consumed + 40)}`);
    consumed = re.lastIndex;
    if (m[5] !== undefined) {
      if (stack.length) stack[stack.length - 1].text += m[5];
      else if (m[5].trim()) throw new Error(`text outside the root: ${m[5]}`);
      continue;
    }
    const [, close, tag, attrText, selfClose] = m;
    if (close) {
      const top = stack.pop();
      if (top?.tag !== tag) throw new Error(`</${tag}> closes <${top?.tag}>`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]} on <${tag}>`);
      attrs[a[1]] = a[2];
    }
    const el = { tag, attrs, text: '' };
    out.push(el);
    if (!selfClose) stack.push(el);
  }
  if (consumed !== svg.length) throw new Error('trailing text');
  if (stack.length) throw new Error(`<${stack[stack.length - 1].tag}> is never closed`);
  return out;
}

const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** A text element's box, with a deliberately generous width: 0.7 em per character (0.75 bold; `em` where given). */
function textBox(t: El, em?: number): Box {
  const size = Number(t.attrs['font-size']);
  const w = unescape(t.text).length * size * (em ?? (t.attrs['font-weight'] ? 0.75 : 0.7));
  const x = Number(t.attrs.x);
  const x0 = t.attrs['text-anchor'] === 'middle' ? x - w / 2 : t.attrs['text-anchor'] === 'end' ? x - w : x;
  const y = Number(t.attrs.y);
  const mid = t.attrs['dominant-baseline'] === 'middle';
  return { x0, x1: x0 + w, y0: mid ? y - size / 2 : y - size, y1: mid ? y + size / 2 : y + size * 0.25 };
}

const overlap = (a: Box, b: Box) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;

/** Everything a standalone figure must be; returns its elements. */
function checkStandalone(svg: string, title: string): El[] {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  for (const bad of ['width="100%"', 'data-testid', 'style=', 'var(--', 'className', 'class="chart', 'class="compare-chart', 'currentColor', 'ff2d55']) expect(svg).not.toContain(bad);
  const els = parse(svg);
  const root = els[0];
  expect(root.tag).toBe('svg');
  const W = Number(root.attrs.width);
  const H = Number(root.attrs.height);
  expect(W).toBeGreaterThan(200);
  expect(H).toBeGreaterThan(100);
  expect(root.attrs.viewBox).toBe(`0 0 ${W} ${H}`);
  // a white background covering the whole figure, drawn first
  const bg = els.find((e) => e.tag === 'rect')!;
  expect(els.indexOf(bg)).toBeLessThanOrEqual(2);
  expect(bg.attrs).toMatchObject({ width: String(W), height: String(H), fill: '#ffffff' });
  expect(unescape(els.find((e) => e.tag === 'title')!.text)).toBe(title);
  // fonts and colours inline on every text; everything inside the figure
  for (const t of els.filter((e) => e.tag === 'text')) {
    expect(t.attrs['font-family']).toMatch(/sans-serif|monospace/);
    expect(Number(t.attrs['font-size'])).toBeGreaterThanOrEqual(10);
    expect(t.attrs.fill).toMatch(/^#[0-9a-f]{6}$/);
    if (!t.attrs.transform) {
      expect(Number(t.attrs.x)).toBeGreaterThanOrEqual(0);
      expect(Number(t.attrs.x)).toBeLessThanOrEqual(W);
      expect(Number(t.attrs.y)).toBeLessThanOrEqual(H);
    }
  }
  for (const e of els.filter((x) => ['rect', 'line', 'circle', 'polyline'].includes(x.tag))) {
    const fill = e.attrs.fill ?? 'none';
    expect(fill === 'none' || /^(#[0-9a-f]{6}|rgb\(\d+,\d+,\d+\))$/.test(fill)).toBe(true);
    for (const k of ['x', 'x1', 'x2', 'cx']) if (k in e.attrs) expect(Number(e.attrs[k])).toBeLessThanOrEqual(W + 0.5);
    for (const k of ['y', 'y1', 'y2', 'cy']) if (k in e.attrs) expect(Number(e.attrs[k])).toBeLessThanOrEqual(H + 0.5);
  }
  // the title as visible text (wrapped lines joined)
  const titleText = els.filter((e) => e.attrs.class === 'title').map((e) => unescape(e.text)).join(' ');
  expect(titleText).toBe(title);
  return els;
}

/** The legend's frame clears every title line and the plot, and the x-axis label sits above the caption. */
function checkLayout(els: El[]): void {
  const frame = els.find((e) => e.attrs.class === 'legend-frame')!;
  expect(frame).toBeDefined();
  const lb: Box = { x0: Number(frame.attrs.x), y0: Number(frame.attrs.y), x1: Number(frame.attrs.x) + Number(frame.attrs.width), y1: Number(frame.attrs.y) + Number(frame.attrs.height) };
  for (const t of els.filter((e) => e.attrs.class === 'title')) expect(overlap(textBox(t), lb)).toBe(false);
  // the legend's entries lie inside its frame
  const legendTexts = els.filter((e) => e.tag === 'text' && Number(e.attrs.y) > lb.y0 && Number(e.attrs.y) < lb.y1 && Number(e.attrs.x) >= lb.x0 && Number(e.attrs.x) < lb.x1);
  expect(legendTexts.length).toBeGreaterThan(0);
  // the plot's axes start below the legend
  const axes = els.find((e) => e.tag === 'polyline' && e.attrs.stroke === '#868e96')!;
  const plotTop = Number(axes.attrs.points.split(' ')[0].split(',')[1]);
  expect(plotTop).toBeGreaterThan(lb.y1);
  const xLabel = els.find((e) => e.attrs.class === 'x-label')!;
  const caption = els.filter((e) => e.attrs.class === 'caption');
  expect(caption.length).toBeGreaterThan(0);
  for (const c of caption) expect(textBox(c).y0).toBeGreaterThan(textBox(xLabel).y1);
  expect(els.find((e) => e.attrs.class === 'y-label')).toBeDefined();
}

const captionOf = (els: El[]) => els.filter((e) => e.attrs.class === 'caption').map((e) => unescape(e.text)).join(' ');

function edge(): EdgeInspection {
  const L = 2;
  const Hh = 3;
  const R = 4;
  const S = 7;
  const attention = new Float32Array(L * Hh * R * S);
  for (let i = 0; i < attention.length; i++) attention[i] = ((i * 37) % 11) / 40;
  return {
    receiver: 'a1', senders: ['a0'], layers: L, heads: Hh,
    senderPositions: [
      ...['k', '=', '3', '\n'].map((label) => ({ agent: 'a0', kind: 'prompt' as const, label })),
      ...['z1', 'z2', 'z3'].map((label) => ({ agent: 'a0', kind: 'latent' as const, label })),
    ],
    receiverTokens: ['q', '?', ' ', 'k'],
    attention, keyNorms: new Float32Array(L * S).fill(1), valueNorms: new Float32Array(L * S).fill(2),
  };
}

function record(name = 'lookup d1 · diffmas · seed 7'): RunRecord {
  return {
    id: 'r1', kind: 'run', name, createdAt: 0, updatedAt: 0, status: 'done',
    config: {
      task: 'lookup', difficulty: 1, topology: { agents: [], edges: [], final: 'a1' } as never, method: 'diffmas', modelId: 'builtin:tiny',
      lora: { r: 2, alpha: 4, targets: ['q_proj'] }, lr: 0.01, steps: 6, batch: 4, seed: 7, latentMap: 'ridge', textBudget: 8, evalEvery: 3, evalSize: 8,
    },
    baseModelId: 'builtin:tiny', baseName: 'tiny',
    curves: { steps: [1, 2, 3, 4, 5, 6], loss: [3.2, 2.9, 2.5, 2.6, 2.1, 1.9], evals: [{ step: 3, loss: 2.7, accuracy: 0.25 }, { step: 6, loss: 2.2, accuracy: 0.5 }] },
    evalRows: null,
    inspections: [{
      which: 'after', step: 6,
      result: {
        split: 'heldout', index: 2, parts: ['k=3'], answer: '3', predicted: '3', correct: true,
        agents: [{ id: 'a0', name: 'table', input: 'k=3', output: 'z' }, { id: 'a1', name: 'query', input: 'q?', output: '3' }], edges: [edge()],
      },
    }],
    adapters: { initial: [], final: [], finalStep: 6, saved: [], info: null },
    wallSeconds: 1, trainSeconds: 1, stepsDone: 6,
  };
}

describe('exported figures are standalone', () => {
  it("the run's loss and accuracy charts: title, axis labels, legend below the title, the key config in the caption", () => {
    const rec = record();
    const { loss, accuracy } = runChartSvgs(rec);
    const l = checkStandalone(loss, 'Training loss · lookup d1 · diffmas · seed 7');
    checkLayout(l);
    expect(l.find((e) => e.attrs.class === 'x-label')!.text).toBe('training step');
    expect(l.find((e) => e.attrs.class === 'y-label')!.text).toBe('loss (cross-entropy)');
    const a = checkStandalone(accuracy, 'Held-out accuracy · lookup d1 · diffmas · seed 7');
    checkLayout(a);
    expect(a.find((e) => e.attrs.class === 'y-label')!.text).toBe('held-out accuracy');
    for (const els of [l, a]) {
      const cap = captionOf(els);
      for (const want of ['Method diffmas', 'task lookup', 'difficulty 1', 'base tiny', 'seed 7', '6 steps', 'lr 0.01', 'LoRA rank 2', 'batch 4']) expect(cap).toContain(want);
    }
    expect(runCaption(rec)).toBe('Method diffmas, task lookup (difficulty 1), base tiny, seed 7, 6 steps, lr 0.01, LoRA rank 2 (alpha 4), batch 4.');
    expect(runCaption({ ...rec, stepsDone: 4 })).toContain('6 steps (4 done)');
    // the legend names the three lines, and the chance line is labelled
    expect(l.filter((e) => e.tag === 'text').map((e) => e.text)).toEqual(expect.arrayContaining(['train (per step)', 'train (EMA 0.6)', 'held-out']));
    expect(a.filter((e) => e.tag === 'text').map((e) => e.text)).toContain('chance 10%');
  });

  it("the loss chart follows the page's smoothing and y scale when asked", () => {
    const rec = record();
    const raw = parse(runChartSvgs(rec, { smoothing: 0 }).loss);
    expect(raw.filter((e) => e.tag === 'polyline' && e.attrs['stroke-opacity'])).toHaveLength(0);
    expect(raw.filter((e) => e.tag === 'text').map((e) => e.text)).toContain('train');
    expect(captionOf(raw)).toContain('Training loss of each step, and the held-out loss');
    const tick = (els: El[]) => els.filter((e) => e.tag === 'text' && e.attrs['text-anchor'] === 'end' && e.attrs['dominant-baseline'] === 'middle').map((e) => Number(e.text));
    expect(Math.min(...tick(parse(runChartSvgs(rec).loss)))).toBe(0);
    expect(Math.min(...tick(parse(runChartSvgs(rec, { fitY: true, smoothing: 0.9 }).loss)))).toBeGreaterThan(0);
    expect(captionOf(parse(runChartSvgs(rec, { smoothing: 0.9 }).loss))).toContain('weight 0.9');
  });

  it('a long title wraps, and the legend moves down with it', () => {
    const name = 'a run with a long descriptive name that a researcher gave it · lookup d1 · diffmas · seed 7 · lr sweep 3 of 5';
    const els = checkStandalone(runChartSvgs(record(name)).loss, `Training loss · ${name}`);
    expect(els.filter((e) => e.attrs.class === 'title').length).toBeGreaterThan(1);
    checkLayout(els);
  });

  it('many legend entries flow into rows inside the frame, clear of the title', () => {
    const series = Array.from({ length: 11 }, (_, i) => ({ name: `method-number-${i}`, color: '#3b5bdb', xs: [1, 2], ys: [i, i + 1], kind: 'line' as const }));
    const els = checkStandalone(lineFigureSvg({ title: 'Eleven methods', series, xMax: 2, xLabel: 'step', yLabel: 'loss', caption: 'c' }), 'Eleven methods');
    checkLayout(els);
    const frame = els.find((e) => e.attrs.class === 'legend-frame')!;
    expect(Number(frame.attrs.height)).toBeGreaterThan(40);
    expect(Number(frame.attrs.x) + Number(frame.attrs.width)).toBeLessThanOrEqual(Number(els[0].attrs.width));
  });

  it("the comparison's accuracy and loss charts, captioned from the report's args", () => {
    const report = {
      args: { task: 'lookup', difficulty: 3, model: 'public/models/toy', lora: { r: 8, alpha: 16 }, lr: 0.003, steps: 400, batch: 32, evalSize: 512, methods: ['single', 'diffmas'], seeds: [1, 2, 3] },
      rows: [], controls: [], summary: [], findings: [],
      curves: [1, 2, 3].flatMap((seed) => (['single-trained', 'diffmas'] as const).map((method) => ({ method, seed, losses: Array.from({ length: 40 }, (_, i) => 3 / (1 + i / 10) + seed / 100) }))),
    } as unknown as ExperimentReport;
    const cap = compareCaption(report);
    expect(cap).toBe('Methods single, diffmas, task lookup (difficulty 3), base toy, seeds 1, 2, 3, 400 steps, lr 0.003, LoRA rank 8 (alpha 16), batch 32, 512 evaluation episodes per split.');
    const loss = compareLossSvg(report, 'Training loss by method · lookup d3')!;
    const l = checkStandalone(loss, 'Training loss by method · lookup d3');
    checkLayout(l);
    expect(captionOf(l)).toContain('base toy');
    expect(compareLossSvg({ ...report, curves: [] }, 'x')).toBeNull();

    const rows = (['single', 'diffmas'] as const).flatMap((method, i) => (['heldout', 'ood'] as const).map((split): ExperimentRowSummary => ({
      method, split, seeds: 3, accuracyMean: 0.3 + i * 0.3, accuracyCi: 0.1, validity: 1, entropy: 1, episodes: 512, messageFloats: 0, messageTokens: 0, trainSeconds: 1,
    } as ExperimentRowSummary)));
    const acc = (x: ExperimentRowSummary) => ({ mean: x.accuracyMean, lo: x.accuracyMean - 0.05, hi: x.accuracyMean + 0.05, seeds: 3, episodes: 512, basis: 'episodes' as const, modes: null });
    const svg = compareAccuracySvg({ rows, acc, chance: 0.1, title: 'Accuracy by method · lookup d3', caption: cap });
    const a = checkStandalone(svg, 'Accuracy by method · lookup d3');
    checkLayout(a);
    expect(a.filter((e) => e.tag === 'text').map((e) => e.text)).toEqual(expect.arrayContaining(['single', 'diffmas', 'held-out', 'out-of-distribution', 'chance 10%', 'method', 'accuracy']));
    expect(captionOf(a)).toContain('LoRA rank 8');
  });

  it('an older report without args still gets a caption from its rows', () => {
    const r = { args: {}, rows: [{ method: 'single', seed: 4 }, { method: 'text', seed: 4 }] } as unknown as ExperimentReport;
    expect(compareCaption(r)).toBe('Methods single, text, seed 4.');
  });

  it('heatmaps: title, layer/head and step, a colour bar with its two ends, no hover outline', () => {
    const e = edge();
    const names = new Map([['a0', 'table'], ['a1', 'query']]);
    const svg = heatmapFigureSvg({ edge: e, names, layer: 1, head: 'avg', step: 6, title: 'Attention · after training, step 6', vmax: 0.5 });
    const els = checkStandalone(svg, 'Attention · after training, step 6');
    const sub = els.filter((x) => x.attrs.class === 'subtitle').map((x) => x.text).join(' ');
    expect(sub).toContain('layer 1 of 2, mean over 3 heads · step 6');
    expect(els.find((x) => x.attrs.class === 'scale-min')!.text).toBe('0.00');
    expect(els.find((x) => x.attrs.class === 'scale-max')!.text).toBe('0.50');
    // one cell per (row, column), and the row and column labels (newline and space made visible)
    const cells = els.filter((x) => x.tag === 'rect' && x.attrs.fill?.startsWith('rgb(') && x.attrs.height === String(19));
    expect(cells.length).toBe(4 * 7);
    expect(els.filter((x) => x.tag === 'text').map((x) => x.text)).toEqual(expect.arrayContaining(['⏎', '␣', 'z1', 'table']));
    for (const t of els.filter((x) => x.attrs.class === 'title')) for (const s of els.filter((x) => x.attrs.class === 'subtitle')) expect(overlap(textBox(t), textBox(s))).toBe(false);

    const heads = headSummaryFigureSvg({ edge: e, names, step: 6, title: 'By head · step 6' });
    const h = checkStandalone(heads, 'By head · step 6');
    expect(h.filter((x) => x.attrs.class === 'subtitle').map((x) => x.text).join(' ')).toContain('2 layers × 3 heads · step 6');
    expect(h.find((x) => x.attrs.class === 'scale-max')!.text).toBe('1.0');
  });

  it("a run's heatmap figures are named by which, step, example and receiver, and carry the run's config", () => {
    const figs = runHeatmapFigures(record(), (s) => s);
    expect(figs.map((f) => f.name)).toEqual(['heatmaps/after-step6-heldout-2-a1.png', 'heatmaps/after-step6-heldout-2-a1-heads.png']);
    for (const f of figs) {
      const els = parse(f.svg);
      const title = unescape(els.find((x) => x.tag === 'title')!.text);
      expect(title).toContain('after training, step 6');
      expect(title).toContain('query ← table');
      checkStandalone(f.svg, title);
      expect(captionOf(els)).toContain('Method diffmas, task lookup (difficulty 1), base tiny, seed 7');
    }
  });

  it('the example a map is of, in words', () => {
    const r = record().inspections[0].result;
    expect(exampleWords(r)).toBe("heldout example #2, answered '3' (correct)");
    expect(exampleWords({ ...r, predicted: '', correct: false })).toBe("heldout example #2, answered nothing (expected '3')");
  });

  it('wrapping keeps every word and breaks only between words', () => {
    const text = 'one two three four five six seven eight nine ten eleven twelve';
    const lines = wrapText(text, 12, 90);
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.join(' ')).toBe(text);
  });
});

describe('heatmap labels', () => {
  it("a sender's name is cut to its band, so two senders' names never overlap", () => {
    const e = edge();
    // two senders: a1 reads a0's first two positions and b0's five
    const two = { ...e, senders: ['a0', 'b0'], senderPositions: e.senderPositions.map((p, i) => ({ ...p, agent: i < 2 ? 'a0' : 'b0' })) };
    const names = new Map([['a0', 'a-very-long-sender-name'], ['b0', 'other'], ['a1', 'query']]);
    const els = parse(heatmapFigureSvg({ edge: two, names, layer: 'avg', head: 'avg', step: 1, title: 't', maxWidth: 300 }));
    const bold = els.filter((x) => x.tag === 'text' && x.attrs['font-weight'] === '600');
    expect(bold.map((x) => x.text)).toEqual([expect.stringMatching(/^a-.*…$/), 'other']);
    // DejaVu Sans Bold, the widest of the fonts a viewer substitutes, averages under 0.7 em a character here
    expect(textBox(bold[0], 0.7).x1).toBeLessThanOrEqual(Number(bold[1].attrs.x));
  });
});
