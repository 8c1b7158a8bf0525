// bench/latency.mjs on synthetic latency reports (the shape `npm run experiment -- --latency T --json
// FILE` writes, args.latency from src/mas/latency.ts): no GPU, no training. It checks the numbers the
// chart and its table print against the runner's own statistics and bounds: which method stands for
// text at T = 0 (single, single-trained), the positions read (the rows' messagePositions, per sender,
// a cache's prompt part), the accuracies and the paired cache - text differences (src/mas/paired.ts,
// stats.ts), the text bound at T tokens (the report's own bounds; at T = 0 the receiver alone) and the
// floor (src/mas/bounds.ts); and that the SVG is well formed with a point per (method, T) and panel.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { summarize } from '../src/mas/experiment';
import { accuracySummary, outcomesOf, pairedComparisons } from '../src/mas/paired';
import { formatAccuracy, formatDifference, pairedDifference } from '../src/mas/stats';
import { constantFloor, reportBounds } from '../src/mas/bounds';
import { latencyPlan } from '../src/mas/latency';
import type { ExperimentReport, MethodName } from '../src/worker/api';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'latency-chart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tool = (): Promise<any> => import(path.join(root, 'bench', 'latency.mjs'));

const EVAL = 200;
const V = 54;
const SEEDS = [1, 2, 3];

/** Seed s right on a shifted window of round(acc x EVAL) episodes: the paired differences are not all alike. */
const outcomes = (acc: number, s: number) => {
  const k = Math.round(acc * EVAL);
  return Array.from({ length: EVAL }, (_, e) => ((e + 7 * s) % EVAL < k ? '1' : '0')).join('');
};

interface Spec {
  task: 'lookup' | 'relay';
  difficulty: number;
  T: number;
  /** Senders of a chain into the receiver (relay 2, lookup 1). */
  senders: number;
  /** Each sender's prompt tokens (the cache reads prompt + T per sender). */
  prompt: number;
  /** Accuracy per requested method, per seed. */
  acc: Record<string, number[]>;
}

function latencyReport(s: Spec): ExperimentReport {
  const plan = latencyPlan(Object.keys(s.acc), s.T);
  const agents = [
    ...Array.from({ length: s.senders }, (_, i) => ({ id: `a${i}`, name: `s${i}`, role: i, latentSteps: s.T, adapter: 'own' })),
    { id: `a${s.senders}`, name: 'receiver', role: s.senders, latentSteps: 0, adapter: 'own' },
  ];
  const textBudget = plan.textBudget ?? 16;
  const rows: ExperimentReport['rows'] = [];
  for (const [i, seed] of SEEDS.entries()) {
    for (const [method, accs] of Object.entries(s.acc)) {
      const m = plan.record.runAs[method];
      const positions = m.endsWith('-full') ? s.senders * (s.prompt + s.T) : m.startsWith('text') ? s.senders * s.T : 0;
      for (const split of ['heldout', 'ood'] as const) {
        const a = split === 'heldout' ? accs[i] : accs[i] / 2;
        const o = outcomes(a, seed);
        rows.push({
          method: m, split, seed, accuracy: [...o].filter((c) => c === '1').length / EVAL, outcomes: o, validity: 1, entropy: 1, episodes: EVAL,
          messageFloats: m.endsWith('-full') ? 64 * positions : 0, messageTokens: m.startsWith('text') ? positions : 0, messagePositions: positions, loss: 1, trainSeconds: 0,
        });
      }
    }
  }
  const keys = Array.from({ length: EVAL }, (_, e) => `ep${e}`);
  const report: ExperimentReport = {
    args: {
      task: s.task, difficulty: s.difficulty, topology: { agents, edges: agents.slice(1).map((a, i) => [agents[i].id, a.id]), final: `a${s.senders}` },
      modelId: 'public/models/toy', lora: { r: 8, alpha: 16, targets: ['q_proj'] }, lr: 0.003, steps: 400, batch: 32, latentMap: 'ridge', textBudget,
      evalEvery: 0, evalSize: EVAL, methods: plan.methods, seeds: SEEDS, preset: 'default', model: 'public/models/toy', vocabSize: V, latency: plan.record,
    } as unknown as ExperimentReport['args'],
    rows, controls: [], summary: [], findings: [], curves: [], chance: { heldout: 0.1, ood: 0.1 }, episodes: { heldout: keys, ood: keys },
  };
  report.summary = summarize(report);
  report.paired = pairedComparisons(report);
  report.bounds = reportBounds(s.task, s.difficulty, V, textBudget, [s.T], ['heldout', 'ood']);
  return report;
}

const ACC: Record<number, Record<string, number[]>> = {
  0: { text: [0.12, 0.12, 0.12], 'text-trained': [0.2, 0.22, 0.21], 'latentmas-full': [0.3, 0.3, 0.3], 'diffmas-full': [0.6, 0.65, 0.55] },
  1: { text: [0.25, 0.25, 0.25], 'text-trained': [0.35, 0.4, 0.3], 'latentmas-full': [0.32, 0.32, 0.32], 'diffmas-full': [0.7, 0.72, 0.68] },
  4: { text: [0.6, 0.6, 0.6], 'text-trained': [0.9, 0.95, 0.85], 'latentmas-full': [0.35, 0.35, 0.35], 'diffmas-full': [0.8, 0.82, 0.78] },
};
const PROMPT = { lookup: 14, relay: 9 } as const;

function writeAll(): { files: string[]; reports: Map<string, ExperimentReport> } {
  const files: string[] = [];
  const reports = new Map<string, ExperimentReport>();
  for (const [task, difficulty, senders] of [['lookup', 3, 1], ['relay', 2, 2]] as const) {
    for (const T of [0, 1, 4]) {
      const r = latencyReport({ task, difficulty, T, senders, prompt: PROMPT[task], acc: ACC[T] });
      const file = path.join(dir, `toy-${task}-d${difficulty}-latency-T${T}.json`);
      writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
      files.push(file);
      reports.set(file, r);
    }
  }
  return { files, reports };
}

/** The rows of the first Markdown table after a line containing `heading`. */
function tableAfter(md: string, heading: string, nth = 0): string[][] {
  const lines = md.split('\n');
  let i = lines.findIndex((l) => l.includes(heading));
  expect(i, `no "${heading}"`).toBeGreaterThanOrEqual(0);
  for (let k = 0; k <= nth; k++) {
    if (k) while (lines[i].startsWith('|')) i++;
    while (!lines[i].startsWith('|')) i++;
  }
  const rows: string[][] = [];
  for (; i < lines.length && lines[i].startsWith('|'); i++) rows.push(lines[i].slice(1, -1).split('|').map((c) => c.trim()));
  return rows.slice(2);
}

describe('bench/latency.mjs', () => {
  const { files, reports } = writeAll();

  it('reads each point: text at T = 0 is single / single-trained, the positions read per episode and per sender, the cache\u2019s prompt part', async () => {
    const lib = await tool();
    const settings = lib.collectLatency(files.map((f) => ({ ...JSON.parse(readFileSync(f, 'utf8')), controls: [], file: f })));
    expect(settings.map((b: any) => `${b.setting.task} d${b.setting.difficulty}`)).toEqual(['lookup d3', 'relay d2']);
    for (const b of settings) {
      const senders = b.setting.task === 'relay' ? 2 : 1;
      const prompt = PROMPT[b.setting.task as 'lookup' | 'relay'];
      expect(b.points).toHaveLength(12);
      const at = (m: string, T: number) => b.points.find((p: any) => p.method === m && p.T === T);
      expect(at('text', 0).runAs).toBe('single');
      expect(at('text-trained', 0).runAs).toBe('single-trained');
      expect(at('text', 0).positions).toBe(0);
      expect(at('text', 4).runAs).toBe('text');
      expect(at('text-trained', 4).positions).toBe(4 * senders);
      for (const T of [0, 1, 4]) {
        const c = at('diffmas-full', T);
        expect(c.positions).toBe(senders * (prompt + T));
        expect(c.perSender).toBe(prompt + T);
        expect(c.prompt).toBe(prompt);
        expect(c.seeds).toBe(3);
      }
      expect(b.floor).toBe(constantFloor(b.setting.task, b.setting.difficulty, 'heldout'));
      // the text bound at T tokens: the report's own bound row; at T = 0 the receiver alone
      expect(at('text', 0).bound.accuracy).toBe(b.floor);
      const row = reports.get(at('text', 4).file)!.bounds!.rows.find((x) => x.split === 'heldout' && x.basis === 'text budget')!;
      expect(row.budget).toBe(4);
      expect(at('text-trained', 4).bound.accuracy).toBe(row.exact ? 1 : row.sphere ?? row.ceiling);
      expect(at('diffmas-full', 4).bound).toBeNull();
    }
  });

  it('prints the runner\u2019s accuracies, the paired cache - text differences and the bounds; writes one well-formed SVG per setting', async () => {
    const out = path.join(dir, 'out');
    const { stdout, stderr } = await run(process.execPath, [path.join(root, 'bench', 'latency.mjs'), '--out', out, ...files], { cwd: root });
    expect(stderr).toMatch(/wrote .*toy-lookup-d3-latency\.svg \(12 points\)/);
    expect(readdirSync(out).sort()).toEqual(['toy-lookup-d3-latency.svg', 'toy-relay-d2-latency.svg']);
    for (const [task, d, senders] of [['lookup', 3, 1], ['relay', 2, 2]] as const) {
      const heading = `${task} d${d} (toy)`;
      const rows = tableAfter(stdout, heading);
      const file = (T: number) => path.join(dir, `toy-${task}-d${d}-latency-T${T}.json`);
      // | method | run as | T | positions read | per sender | accuracy | text bound | seeds | source |
      for (const [method, T] of [['text', 0], ['text-trained', 0], ['diffmas-full', 0], ['text-trained', 4], ['latentmas-full', 1]] as const) {
        const r = reports.get(file(T))!;
        const runAs = r.args.latency ? (r.args as any).latency.runAs[method] : method;
        const row = rows.find((x) => x[0] === method && x[2] === String(T))!;
        expect(row, `${method} T = ${T}`).toBeDefined();
        expect(row[1]).toBe(runAs);
        const acc = accuracySummary(r, runAs, 'heldout')!;
        expect(row[5]).toBe(formatAccuracy(acc, acc.modes));
        const positions = method.endsWith('-full') ? senders * (PROMPT[task] + T) : method.startsWith('text') && T > 0 ? senders * T : 0;
        expect(row[3]).toBe(positions.toFixed(1));
        if (method.endsWith('-full')) expect(row[4]).toBe(`${(PROMPT[task] + T).toFixed(1)} (prompt ${PROMPT[task].toFixed(1)} + ${T})`);
        expect(row[7]).toBe('3');
      }
      const floor = constantFloor(task, d, 'heldout');
      expect(rows.find((x) => x[0] === 'text' && x[2] === '0')![6]).toBe(`${floor.toFixed(3)} (no message)`);
      expect(rows.find((x) => x[0].startsWith('receiver alone'))![5]).toBe(floor.toFixed(3));
      const b4 = reports.get(file(4))!.bounds!.rows.find((x) => x.split === 'heldout' && x.basis === 'text budget')!;
      expect(rows.find((x) => x[0] === 'text' && x[2] === '4')![6]).toBe(b4.exact ? '1.000 (exact)' : `<= ${(b4.sphere ?? b4.ceiling).toFixed(3)}`);
      // cache - text at each T, paired per episode in one report: | T | pair | difference | verdict | basis |
      const pairs = tableAfter(stdout, heading, 1);
      expect(pairs).toHaveLength(6);
      for (const T of [0, 1, 4]) {
        const r = reports.get(file(T))!;
        for (const [a, b] of [['diffmas-full', 'text-trained'], ['latentmas-full', 'text']] as const) {
          const rb = (r.args as any).latency.runAs[b] as MethodName;
          const d = pairedDifference(outcomesOf(r, a, 'heldout')!, outcomesOf(r, rb, 'heldout')!);
          const row = pairs.find((x) => x[0] === String(T) && x[1].startsWith(a))!;
          expect(row[1]).toBe(`${a} − ${b}${rb !== b ? ` (${rb})` : ''}`);
          expect(row[2]).toBe(formatDifference(d));
          expect(row[4]).toBe(`paired, ${EVAL} episodes`);
          expect(row[3]).toBe(d.lo! > 0 ? `**${a} beats ${b}**` : d.hi! < 0 ? `**${b} beats ${a}**` : 'no reliable difference');
        }
      }
      const svg = readFileSync(path.join(out, `toy-${task}-d${d}-latency.svg`), 'utf8');
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.trim().endsWith('</svg>')).toBe(true);
      expect((svg.match(/<g class="series"/g) ?? []).length).toBe(8);
      expect((svg.match(/<g class="point"/g) ?? []).length).toBe(24);
      // the T panel labels every point with the positions read
      const labels = [...svg.matchAll(/<text class="positions"[^>]*>(\d+)<\/text>/g)].map((m) => Number(m[1]));
      expect(labels).toHaveLength(12);
      expect(labels).toContain(senders * (PROMPT[task] + 4));
      expect(svg).toMatch(/data-bound="floor"/);
      expect(svg).toMatch(/data-bound="text"/);
      // balanced tags (the SVG is plain XML)
      const opens = (svg.match(/<(g|svg|text|path|line|rect)\b[^>]*[^/]>/g) ?? []).length;
      const closes = (svg.match(/<\/(g|svg|text|path|line|rect)>/g) ?? []).length;
      expect(opens).toBe(closes);
    }
  });

  it('a cache method beside the sweep\u2019s (c2c, where a report holds it): its point, prompt part and c2c - text-trained', async () => {
    const r = latencyReport({ task: 'lookup', difficulty: 3, T: 2, senders: 1, prompt: 14, acc: { 'text-trained': [0.4, 0.45, 0.5], 'diffmas-full': [0.7, 0.7, 0.7] } });
    // c2c's rows as a cache method's: the prompt + T positions per sender (built here, not through latencyPlan)
    for (const x of r.rows.filter((y) => y.method === 'diffmas-full')) r.rows.push({ ...x, method: 'c2c' as MethodName, outcomes: outcomes(0.6, x.seed), accuracy: Math.round(0.6 * EVAL) / EVAL });
    (r.args as any).latency.runAs.c2c = 'c2c';
    r.summary = summarize(r);
    const lib = await tool();
    const [b] = lib.collectLatency([{ ...r, file: 'c2c.json' }]);
    const c = b.points.find((p: any) => p.method === 'c2c');
    expect(c).toMatchObject({ T: 2, positions: 16, perSender: 16, prompt: 14, seeds: 3, bound: null });
    const pair = b.pairs.find((q: any) => q.a === 'c2c');
    expect(pair.b).toBe('text-trained');
    const d = pairedDifference(outcomesOf(r, 'c2c', 'heldout')!, outcomesOf(r, 'text-trained', 'heldout')!);
    expect(lib.latencyMarkdown(b)).toContain(`| 2 | c2c − text-trained | ${formatDifference(d)} |`);
    expect(lib.latencySvg(b)).toMatch(/<g class="series" data-method="c2c" data-panel="T">/);
  });

  it('refuses a report made without --latency, and prints usage with no files', async () => {
    const plain = latencyReport({ task: 'lookup', difficulty: 3, T: 1, senders: 1, prompt: 14, acc: ACC[1] });
    delete (plain.args as any).latency;
    const file = path.join(dir, 'plain.json');
    writeFileSync(file, JSON.stringify(plain));
    await expect(run(process.execPath, [path.join(root, 'bench', 'latency.mjs'), '--out', dir, file], { cwd: root })).rejects.toMatchObject({ stderr: expect.stringMatching(/not a latency report \(no args\.latency/) });
    const usage = await run(process.execPath, [path.join(root, 'bench', 'latency.mjs'), '--help'], { cwd: root });
    expect(usage.stdout).toMatch(/usage: node bench\/latency\.mjs/);
  });
});
