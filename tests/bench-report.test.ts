// The reporting tools of bench/ (issue 9, item 4) on synthetic experiment reports: no GPU, no
// training. Reports are built in the shape `npm run experiment -- --json FILE` writes (rows per
// method, seed and split; summary and findings made by src/mas/experiment.ts itself), written to a
// temporary folder, and read back by
//  - bench/budget.mjs: one two-panel SVG per setting (well-formed XML, one series per channel and
//    panel, one point per message size), and the same points as a Markdown table;
//  - bench/grid.mjs: the main table, the controls table (at-chance marks) and diffmas against
//    diffmas-detached (verdicts);
// and it checks that the tools state accuracies, paired differences and controls with the runner's
// own statistics (src/mas/stats.ts, paired.ts, bounds.ts, bundled by report-lib.mjs), draw the bounds
// beside every budget, and that the command lines (bench/report.mjs included) still run.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { findings, summarize } from '../src/mas/experiment';
import { accuracySummary, pairedComparisons } from '../src/mas/paired';
import { accuracyInterval, detectModes, formatAccuracy, formatDifference, seedsDifference, seedsInterval } from '../src/mas/stats';
import { budgetBound, constantFloor } from '../src/mas/bounds';
import type { ExperimentReport, MethodName } from '../src/worker/api';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The tools are plain .mjs without type declarations: import them by path (typed as any here).
const tool = (name: string): Promise<any> => import(path.join(root, 'bench', name));

// ---------------------------------------------------------------- synthetic reports

const EVAL = 512;
const CHANCE = 0.1;
const LOG2V = Math.log2(54); // public/models/tiny/config.json vocab_size
type Split = 'heldout' | 'ood';
type Acc = Record<string, { heldout: number[]; ood?: number[] }>;

interface Spec {
  task?: string;
  difficulty?: number;
  seeds?: number[];
  latentSteps?: number;
  textBudget?: number;
  /** Senders (a chain of senders + 1 receiver); relay has 2. */
  senders?: number;
  acc: Acc;
  controls?: Record<string, Record<string, number[]>>;
  args?: Record<string, unknown>;
  /** Per-episode outcomes on one shared evaluation set: seed s of a method right on the first
   * round(accuracy x EVAL) episodes (so the rows' accuracy is that over EVAL). */
  outcomes?: boolean;
}

const ones = (acc: number) => '1'.repeat(Math.round(acc * EVAL)) + '0'.repeat(EVAL - Math.round(acc * EVAL));

/** Per-seed accuracies around a mean: mean + spread × (-1, 0, +1, ...). */
const around = (mean: number, spread: number, n = 3) => Array.from({ length: n }, (_, i) => mean + spread * (i - (n - 1) / 2));

function makeReport(spec: Spec): ExperimentReport {
  const { task = 'lookup', difficulty = 1, seeds = [1, 2, 3], latentSteps = 4, textBudget = 8, senders = 1 } = spec;
  const agents = [
    ...Array.from({ length: senders }, (_, i) => ({ id: `a${i}`, name: `s${i}`, role: i, latentSteps, adapter: 'own' })),
    { id: `a${senders}`, name: 'receiver', role: senders, latentSteps: 0, adapter: 'own' },
  ];
  const edges = agents.slice(1).map((a, i) => [agents[i].id, a.id]);
  const args: Record<string, unknown> = {
    task, difficulty, topology: { agents, edges, final: `a${senders}` }, modelId: 'public/models/tiny',
    lora: { r: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }, lr: 0.003, steps: 800, batch: 32,
    latentMap: 'ridge', textBudget, evalEvery: 0, evalSize: EVAL, methods: Object.keys(spec.acc), seeds,
    preset: 'tiny', model: 'public/models/tiny', topologyArg: 'preset', device: 'synthetic', seconds: 1, ...spec.args,
  };
  const rows: ExperimentReport['rows'] = [];
  for (const [s, seed] of seeds.entries()) {
    for (const [method, a] of Object.entries(spec.acc)) {
      for (const split of ['heldout', 'ood'] as Split[]) {
        const accs = split === 'heldout' ? a.heldout : a.ood ?? a.heldout.map((x) => x / 2);
        const latent = method.startsWith('latentmas') || method.startsWith('diffmas');
        const full = method.endsWith('-full');
        // the tiny base: 2 layers, 2 K/V heads of 8 -> K and V of one position are 64 floats
        const positions = latent ? senders * (latentSteps + (full ? 10 : 0)) : method === 'text' ? Math.min(textBudget, 5) : 0;
        rows.push({
          method: method as MethodName, split, accuracy: spec.outcomes ? Math.round(accs[s] * EVAL) / EVAL : accs[s], validity: 1, entropy: 1, episodes: EVAL,
          ...(spec.outcomes ? { outcomes: ones(accs[s]) } : {}),
          messageFloats: latent ? 64 * positions : 0, messageTokens: method === 'text' ? positions : 0,
          messagePositions: positions, loss: 1, seed, trainSeconds: method.startsWith('diffmas') ? 10 : 0,
        });
      }
    }
  }
  const controls: ExperimentReport['controls'] = [];
  for (const [method, cs] of Object.entries(spec.controls ?? {})) {
    for (const [control, accs] of Object.entries(cs)) {
      // the runner's type lists 'shuffle' | 'zero'; 'noise' and 'rotate' are being added
      for (const [s, seed] of seeds.entries()) {
        controls.push({
          method: method as MethodName, seed, control: control as 'shuffle', accuracy: spec.outcomes ? Math.round(accs[s] * EVAL) / EVAL : accs[s],
          ...(spec.outcomes ? { outcomes: ones(accs[s]) } : {}),
        });
      }
    }
  }
  const summary = summarize({ rows });
  const keys = Array.from({ length: EVAL }, (_, e) => `ep${e}`);
  const report: ExperimentReport = {
    args, rows, controls, summary, findings: [], curves: [], chance: { heldout: CHANCE, ood: CHANCE },
    ...(spec.outcomes ? { episodes: { heldout: keys, ood: keys } } : {}),
  };
  report.paired = pairedComparisons(report);
  report.findings = findings(report, report.chance!, EVAL);
  return report;
}

function write(name: string, r: ExperimentReport): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n'); // NaN intervals become null, as in real reports
  return file;
}

// ---------------------------------------------------------------- a small XML well-formedness check

interface El { name: string; attrs: Record<string, string>; parent: number }

/** Parses XML strictly enough for our SVG: tags nest and close, attributes are quoted, entities known, one root. */
function parseXml(xml: string): El[] {
  const els: El[] = [];
  const stack: number[] = [];
  const entity = /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  let i = 0;
  let roots = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (entity.test(text)) throw new Error(`bad entity in text near ${JSON.stringify(text.slice(0, 40))}`);
    if (text.trim() && !stack.length) throw new Error('text outside the root element');
    if (lt < 0) break;
    const gt = xml.indexOf('>', lt);
    if (gt < 0) throw new Error('unclosed tag');
    const tag = xml.slice(lt, gt + 1);
    if (tag.startsWith('</')) {
      const name = tag.slice(2, -1).trim();
      const open = stack.pop();
      if (open === undefined || els[open].name !== name) throw new Error(`</${name}> closes ${open === undefined ? 'nothing' : `<${els[open].name}>`}`);
    } else {
      const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"<]*")*)\s*(\/?)>$/.exec(tag);
      if (!m) throw new Error(`malformed tag ${tag.slice(0, 80)}`);
      const attrs: Record<string, string> = {};
      for (const a of m[2].matchAll(/([A-Za-z_][\w.:-]*)="([^"]*)"/g)) {
        if (a[1] in attrs) throw new Error(`attribute ${a[1]} twice in ${tag.slice(0, 60)}`);
        if (entity.test(a[2])) throw new Error(`bad entity in attribute ${a[1]}`);
        attrs[a[1]] = a[2];
      }
      if (!stack.length && ++roots > 1) throw new Error('more than one root element');
      els.push({ name: m[1], attrs, parent: stack.length ? stack[stack.length - 1] : -1 });
      if (!m[3]) stack.push(els.length - 1);
    }
    i = gt + 1;
  }
  if (stack.length) throw new Error(`<${els[stack[stack.length - 1]].name}> is never closed`);
  return els;
}

const within = (els: El[], k: number, i: number): boolean => {
  for (let p = els[i].parent; p >= 0; p = els[p].parent) if (p === k) return true;
  return false;
};

/** The rows of the first Markdown table after a line containing `heading` (cells trimmed). */
function tableAfter(md: string, heading: string): string[][] {
  const lines = md.split('\n');
  let i = lines.findIndex((l) => l.includes(heading));
  expect(i, `no "${heading}" in the output`).toBeGreaterThanOrEqual(0);
  while (!lines[i].startsWith('|')) i++;
  const rows: string[][] = [];
  for (; i < lines.length && lines[i].startsWith('|'); i++) rows.push(lines[i].slice(1, -1).split('|').map((c) => c.trim()));
  return rows.filter((r) => !/^-+:?$/.test(r[0]) && !/^---/.test(r[0]));
}

const f3 = (x: number) => x.toFixed(3);
/** An accuracy cell of per-seed accuracies without outcomes, as the runner words it (seeds-only bootstrap, or modes). */
const pm = (xs: number[]) => formatAccuracy(seedsInterval(xs), detectModes(xs));

// ---------------------------------------------------------------- the runner's statistics, not copies

describe('bench/report-lib.mjs: the runner\u2019s own statistics', () => {
  it('accuracies, paired differences and verdicts are those of src/mas/stats.ts and paired.ts', async () => {
    const lib = await tool('report-lib.mjs');
    const t = [[1, 0, 1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0, 1, 1]];
    expect(lib.stats.accuracyInterval(t)).toEqual(accuracyInterval(t));
    expect(lib.stats.seedsDifference([0.3, 0.4, 0.35], [0.2, 0.25, 0.3])).toEqual(seedsDifference([0.3, 0.4, 0.35], [0.2, 0.25, 0.3]));
    expect(lib.stats.budgetBound('relay', 2, 'heldout', 2, 54)).toEqual(budgetBound('relay', 2, 'heldout', 2, 54));
    for (const outcomes of [true, false]) {
      const r = makeReport({
        outcomes,
        acc: {
          single: { heldout: around(0.1, 0.01) }, latentmas: { heldout: around(0.12, 0.02) }, text: { heldout: around(0.5, 0.2) },
          diffmas: { heldout: around(0.3, 0.03) }, 'diffmas-detached': { heldout: around(0.26, 0.01) }, skyline: { heldout: around(0.31, 0.001) },
        },
        controls: { diffmas: { shuffle: around(0.1, 0.01), zero: around(0.2, 0.01) } },
      });
      const back = lib.loadReport(write(`stats-${outcomes}.json`, r));
      expect(lib.accuracyOf(back, 'diffmas', 'heldout')).toEqual(accuracySummary(r, 'diffmas', 'heldout'));
      const { paired: _p, ...bare } = back;
      const computed = lib.pairedOf(bare);
      expect(computed).toEqual(JSON.parse(JSON.stringify(r.paired)));
      expect(computed.every((c: { basis: string }) => c.basis === (outcomes ? 'episodes' : 'seeds'))).toBe(true);
      // the verdict the findings print is the one the tools read
      for (const c of computed.filter((x: { control?: string }) => !x.control)) {
        const line = r.findings.find((f) => f.startsWith(`${c.split}: ${c.a} `) && f.includes(` vs ${c.b} `))!;
        expect(line).toBeDefined();
        const words = c.verdict === 'a' ? `${c.a} beats ${c.b}` : c.verdict === 'b' ? `${c.b} beats ${c.a}` : c.verdict === 'tie' ? 'no reliable difference' : 'no interval';
        expect(line, line).toContain(words);
        expect(line).toContain(lib.differenceWords(c));
      }
    }
  });
});

// ---------------------------------------------------------------- the budget curve

describe('bench/budget.mjs', () => {
  // lookup d3: a grid run (B=8, m=4) beside budget runs; the file names say nothing true about what
  // they hold (the tool must read args), one run duplicates m=2 with fewer seeds
  const lat = (m: number) => ({ latentmas: { heldout: around(0.1 + 0.02 * m, 0.01) }, diffmas: { heldout: around(0.3 + 0.05 * m, 0.04) } });
  const files = {
    main: write('toy-lookup-d3.json', makeReport({
      difficulty: 3, acc: { single: { heldout: around(0.05, 0) }, skyline: { heldout: around(0.95, 0.01) }, text: { heldout: around(0.8, 0.05) }, ...lat(4) },
    })),
    t1: write('a.json', makeReport({ difficulty: 3, textBudget: 1, acc: { text: { heldout: around(0.1, 0.02) } } })),
    t2: write('b.json', makeReport({ difficulty: 3, textBudget: 2, acc: { text: { heldout: around(0.3, 0.02) } } })),
    t4: write('c.json', makeReport({ difficulty: 3, textBudget: 4, acc: { text: { heldout: around(0.6, 0.02) } } })),
    t16: write('d.json', makeReport({ difficulty: 3, textBudget: 16, acc: { text: { heldout: around(0.85, 0.02) } } })),
    m1: write('toy-lookup-d3-budget-m8.json', makeReport({ difficulty: 3, latentSteps: 1, acc: lat(1) })),
    m2: write('e.json', makeReport({ difficulty: 3, latentSteps: 2, acc: lat(2) })),
    m2few: write('f.json', makeReport({ difficulty: 3, latentSteps: 2, seeds: [1, 2], acc: { diffmas: { heldout: [0.99, 0.98] } } })),
    m8: write('g.json', makeReport({ difficulty: 3, latentSteps: 8, acc: lat(8) })),
    // relay d2: two senders, one report with everything at m=4 and one at m=1 (one seed: no interval)
    relay: write('relay.json', makeReport({ task: 'relay', difficulty: 2, senders: 2, acc: { skyline: { heldout: around(0.9, 0.02) }, text: { heldout: around(0.5, 0.1) }, ...lat(4) } })),
    relay1: write('relay1.json', makeReport({ task: 'relay', difficulty: 2, senders: 2, latentSteps: 1, seeds: [7], acc: { diffmas: { heldout: [0.4] } } })),
  };

  it('writes one SVG per setting with a series per channel and panel and a point per size, and prints the same points', async () => {
    const budget = await tool('budget.mjs');
    const lib = await tool('report-lib.mjs');
    const reports = Object.values(files).map(lib.loadReport);
    const settings = budget.collectBudget(reports, { split: 'heldout' });
    expect(settings.map((b: { setting: { label: string } }) => b.setting.label)).toEqual(['lookup d3', 'relay d2']);
    const [lookup, relay] = settings;

    // the checker itself refuses what is not well-formed
    for (const bad of ['<svg><g></svg>', '<svg a="1 & 2"/>', '<svg a=1/>', '<svg/><svg/>', '<svg>a < b</svg>', '<svg><g>']) expect(() => parseXml(bad), bad).toThrow();
    const svg = budget.budgetSvg(lookup);
    const els = parseXml(svg);
    expect(els[0].name).toBe('svg');
    expect(els[0].attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    expect(Number(els[0].attrs.width)).toBe(800);
    const series = els.map((e, i) => [e, i] as const).filter(([e]) => e.attrs.class === 'series');
    expect(series).toHaveLength(6); // text, latentmas, diffmas × positions, bits
    const expected: Record<string, number> = { text: 5, latentmas: 4, diffmas: 4 };
    for (const [e, k] of series) {
      const points = els.filter((p, i) => p.attrs.class === 'point' && within(els, k, i));
      expect(points.map((p) => p.attrs['data-size']), `${e.attrs['data-method']} ${e.attrs['data-panel']}`).toEqual(
        e.attrs['data-method'] === 'text' ? ['B=1', 'B=2', 'B=4', 'B=8', 'B=16'] : ['m=1', 'm=2', 'm=4', 'm=8'],
      );
      expect(points).toHaveLength(expected[e.attrs['data-method']]);
    }
    // skyline, single and chance in both panels
    expect(els.filter((e) => e.attrs.class === 'ref').map((e) => e.attrs['data-ref']).sort()).toEqual(['chance', 'chance', 'single', 'single', 'skyline', 'skyline']);
    // the bounds beside every budget: the receiver alone and the ceiling of any protocol, in both panels
    expect(els.filter((e) => e.attrs.class === 'bound').map((e) => e.attrs['data-bound']).sort()).toEqual(['ceiling', 'ceiling', 'floor', 'floor']);
    const ceiling = els.find((e) => e.attrs.class === 'bound' && e.attrs['data-bound'] === 'ceiling')!;
    // positions panel: one vertex per token budget B = 1, 2, ... across the panel (positions up to 8 here)
    expect(ceiling.attrs.d.split('L').length).toBeGreaterThanOrEqual(8);
    expect(els.filter((e) => e.attrs.class === 'panel').map((e) => e.attrs['data-panel'])).toEqual(['positions', 'bits']);

    // the same points in Markdown, with positions, bits, accuracy ± CI, seeds and the source file
    const md = budget.budgetMarkdown(lookup, 'out.svg');
    const rows = tableAfter(md, 'lookup d3');
    expect(rows[0]).toEqual(['channel', 'size', 'positions', 'bits', 'accuracy [95% interval]', 'any protocol of that many tokens', 'validity', 'seeds', 'source']);
    const body = rows.slice(1);
    expect(body.map((r) => `${r[0]} ${r[1]}`)).toEqual([
      'text B=1', 'text B=2', 'text B=4', 'text B=8', 'text B=16', 'latentmas m=1', 'latentmas m=2', 'latentmas m=4', 'latentmas m=8',
      'diffmas m=1', 'diffmas m=2', 'diffmas m=4', 'diffmas m=8', 'skyline –', 'single –', 'chance –', 'receiver alone (best constant message) –',
    ]);
    const row = (ch: string, size: string) => body.find((r) => r[0] === ch && r[1] === size)!;
    // text: the tokens actually sent (the sender stops after 5) × log2 V, V = 54 from the base's config.json
    expect(row('text', 'B=16').slice(2, 5)).toEqual(['5.0', String(Math.round(5 * LOG2V)), pm(around(0.85, 0.02))]);
    expect(row('text', 'B=16')[8]).toBe(`\`${files.t16}\``);
    expect(row('text', 'B=8')[8]).toBe(`\`${files.main}\``);
    // beside each budget: Fano's ceiling for that many tokens of V = 54 (B = 1: below 1; B = 16: the whole table fits)
    const b1 = budgetBound('lookup', 3, 'heldout', 1, 54);
    expect(b1.exact).toBe(false);
    expect(row('text', 'B=1')[5]).toBe(`<= ${f3(b1.ceiling)}`);
    expect(row('text', 'B=16')[5]).toBe('1.000 (exact)');
    expect(row('diffmas', 'm=1')[5]).toBe(`<= ${f3(b1.ceiling)}`); // m positions read as m tokens
    expect(row('receiver alone (best constant message)', '–')[4]).toBe(f3(constantFloor('lookup', 3, 'heldout')));
    // latent: positions = m, bits = 32 × floats; m=1 comes from the file named "-m8"
    expect([...row('diffmas', 'm=1').slice(2, 5), ...row('diffmas', 'm=1').slice(6, 9)]).toEqual(['1.0', String(32 * 64), pm(around(0.35, 0.04)), '1.00', '3', `\`${files.m1}\``]);
    expect(row('diffmas', 'm=2')[8]).toBe(`\`${files.m2}\``); // 3 seeds beat the 2 of f.json
    expect(md).toContain(`diffmas m=2 is also in \`${files.m2few}\``);
    expect(row('skyline', '–')[4]).toBe(pm(around(0.95, 0.01)));
    expect(row('chance', '–')[4]).toBe('0.100');
    expect(md).toContain('V = 54 from');
    expect(md).toContain(`Sources: \``);

    // relay: two senders, so a latent step puts 2 positions across; the one-seed point has no interval
    const r = tableAfter(budget.budgetMarkdown(relay), 'relay d2').slice(1);
    expect(r.map((x) => `${x[0]} ${x[1]} ${x[2]}`)).toEqual(['text B=8 5.0', 'latentmas m=4 8.0', 'diffmas m=1 2.0', 'diffmas m=4 8.0', 'skyline – –', 'chance – –', 'receiver alone (best constant message) – 0']);
    expect(r[2][4]).toBe('1 seed: no interval (mean 0.400)');
    const relayEls = parseXml(budget.budgetSvg(relay));
    expect(relayEls.filter((e) => e.attrs.class === 'series')).toHaveLength(6);
    expect(relayEls.filter((e) => e.attrs.class === 'ref')).toHaveLength(4); // skyline and chance; no single agent
  });

  it('runs as a command: one SVG per setting in --out, the Markdown on stdout', async () => {
    const out = path.join(dir, 'svg');
    const { stdout } = await run('node', [path.join(root, 'bench', 'budget.mjs'), '--out', out, ...Object.values(files)], { cwd: root });
    expect(readdirSync(out).sort()).toEqual(['tiny-lookup-d3-budget.svg', 'tiny-relay-d2-budget.svg']);
    for (const f of readdirSync(out)) parseXml(readFileSync(path.join(out, f), 'utf8'));
    expect(stdout).toContain('#### lookup d3 (tiny): held-out accuracy against message size');
    expect(stdout).toContain('#### relay d2 (tiny)');
    // importing the module ran nothing (the command part is guarded)
    expect(readdirSync(dir).filter((f) => f.endsWith('.svg'))).toEqual([]);
  });
});

// ---------------------------------------------------------------- the grid

describe('bench/grid.mjs', () => {
  const all = (d: number, diff: number, det: number, n = 3): Acc => ({
    single: { heldout: around(0.1, 0.01, n) }, skyline: { heldout: around(0.95, 0.01, n) }, text: { heldout: around(0.9, 0.02, n) },
    latentmas: { heldout: around(0.5, 0.05, n) }, 'latentmas-full': { heldout: around(0.7, 0.05, n) },
    diffmas: { heldout: around(d, diff, n) }, 'diffmas-full': { heldout: around(0.9, 0.01, n) }, 'diffmas-detached': { heldout: around(det, diff, n) },
  });
  const five = [1, 2, 3, 4, 5];
  const files = {
    // lookup d1, 5 seeds, all four controls: diffmas beats detached clearly
    d1: write('g-lookup-d1.json', makeReport({
      seeds: five, acc: all(0.9, 0.01, 0.3, 5),
      controls: {
        diffmas: { shuffle: around(0.1, 0.01, 5), zero: around(0.08, 0.01, 5), noise: around(0.3, 0.02, 5), rotate: around(0.11, 0.01, 5) },
        latentmas: { shuffle: around(0.1, 0.01, 5), zero: around(0.0, 0, 5), noise: around(0.105, 0.01, 5), rotate: around(0.14, 0.01, 5) },
        text: { shuffle: around(0.1, 0.01, 5), zero: around(0.0, 0, 5) },
      },
    })),
    // lookup d1 again at m=1 (a budget run): must not replace the grid run's latent methods
    d1m1: write('g-lookup-d1-m1.json', makeReport({ seeds: five, latentSteps: 1, acc: { latentmas: { heldout: around(0.2, 0.01, 5) }, diffmas: { heldout: around(0.5, 0.01, 5) } } })),
    // lookup d2: shuffle and zero only (no noise/rotate yet), per-episode outcomes: no reliable difference
    d2: write('g-lookup-d2.json', makeReport({
      difficulty: 2, acc: all(0.5, 0.2, 0.45), outcomes: true,
      controls: { diffmas: { shuffle: around(0.2, 0.01), zero: around(0.1, 0.01) }, 'diffmas-detached': { shuffle: around(0.1, 0.01), zero: around(0.1, 0.01) } },
    })),
    // relay d1: detached wins; no controls at all
    relay: write('g-relay-d1.json', makeReport({ task: 'relay', senders: 2, acc: all(0.2, 0.01, 0.6) })),
  };

  it('prints the main table, the controls with their marks and diffmas against diffmas-detached, with sources', async () => {
    const grid = await tool('grid.mjs');
    const lib = await tool('report-lib.mjs');
    const reports = [files.relay, files.d2, files.d1m1, files.d1].map(lib.loadReport); // any order
    const md: string = grid.gridMarkdown(reports);

    // 1. main: rows = setting × split in task and difficulty order, columns = every method
    const main = tableAfter(md, '#### The grid');
    expect(main[0]).toEqual(['setting', 'split', 'chance', 'single', 'skyline', 'text', 'latentmas', 'latentmas-full', 'diffmas', 'diffmas-full', 'diffmas-detached', 'seeds', 'budget']);
    expect(main.slice(1).map((r) => `${r[0]} ${r[1]}`)).toEqual(['lookup d1 heldout', 'lookup d1 ood', 'lookup d2 heldout', 'lookup d2 ood', 'relay d1 heldout', 'relay d1 ood']);
    const cell = (setting: string, split: string, m: string) => {
      const r = main.find((x) => x[0] === setting && x[1] === split)!;
      return r[main[0].indexOf(m)];
    };
    expect(cell('lookup d1', 'heldout', 'diffmas')).toBe(pm(around(0.9, 0.01, 5))); // the m=4 run, not m=1's 0.5
    expect(cell('lookup d1', 'ood', 'diffmas')).toBe(pm(around(0.9, 0.01, 5).map((x) => x / 2)));
    expect(cell('relay d1', 'heldout', 'diffmas-detached')).toBe(pm(around(0.6, 0.01)));
    expect(cell('lookup d1', 'heldout', 'seeds')).toBe('5');
    expect(cell('lookup d1', 'heldout', 'budget')).toBe('m=4, B=8');
    expect(md).toContain(`latentmas, diffmas of \`${files.d1m1}\` (another message budget, m=1)`);
    expect(md).toContain(`- lookup d1: \`${files.d1}\``);

    // 2. controls: every method with controls, each against its own uncontrolled run, marked by the runner's rule
    const ctl = tableAfter(md, '#### Controls');
    expect(ctl[0]).toEqual(['setting', 'method', 'uncontrolled', 'shuffle', 'zero', 'noise', 'rotate', 'chance', 'above chance under']);
    const crow = (setting: string, m: string) => ctl.find((r) => r[0] === setting && r[1] === m)!;
    expect(ctl.slice(1).filter((r) => r[0] === 'lookup d1').map((r) => r[1])).toEqual(['text', 'latentmas', 'diffmas']);
    // lookup d1 has no outcomes and 5 seeds: at chance when the seeds-only interval reaches chance
    const own = around(0.9, 0.01, 5);
    const mark = (accs: number[], base: number[]) => {
      const d = seedsDifference(accs, base);
      return `${f3(accs.reduce((a, b) => a + b, 0) / accs.length)} ${seedsInterval(accs).lo! <= CHANCE ? '✓' : '✗'} (${formatDifference(d)})`;
    };
    const d = crow('lookup d1', 'diffmas');
    expect(d.slice(2, 7)).toEqual([
      pm(own), mark(around(0.1, 0.01, 5), own), mark(around(0.08, 0.01, 5), own), mark(around(0.3, 0.02, 5), own), mark(around(0.11, 0.01, 5), own),
    ]);
    expect(d[5]).toContain('✗'); // noise keeps 0.3: above chance
    expect(d[3]).toContain('✓');
    expect(d[7]).toBe('0.100');
    expect(d[8]).toBe('noise');
    // latentmas: noise at 0.105 +- 0.02 reaches chance, rotate at 0.14 +- 0.02 does not
    expect(crow('lookup d1', 'latentmas')[5]).toMatch(/^0\.105 ✓/);
    expect(crow('lookup d1', 'latentmas')[6]).toMatch(/^0\.140 ✗/);
    expect(crow('lookup d1', 'latentmas')[8]).toBe('rotate');
    // lookup d2 has no noise/rotate: '–', graceful; its outcomes make the differences paired
    expect(crow('lookup d2', 'diffmas').slice(5, 7)).toEqual(['–', '–']);
    expect(crow('lookup d2', 'diffmas')[8]).toBe('shuffle');
    expect(crow('lookup d2', 'diffmas-detached')[8]).toBe('none');
    expect(md).toContain('With 3 seeds or more: at chance when the control\u2019s 95% bootstrap interval reaches chance.');
    // relay d1 ran no control: no row
    expect(ctl.slice(1).some((r) => r[0] === 'relay d1')).toBe(false);

    // 3. where the gradient stops: the verdicts of findings() in each report
    const grad = tableAfter(md, '#### Where the gradient stops');
    expect(grad[0]).toEqual(['setting', 'split', 'diffmas', 'diffmas-detached', 'difference [95% interval]', 'basis', 'verdict']);
    const verdict = (setting: string, split: string) => grad.find((r) => r[0] === setting && r[1] === split)![6];
    const fromFindings = (file: string, split: string) => {
      const r = JSON.parse(readFileSync(file, 'utf8')) as ExperimentReport;
      return r.findings.find((f) => f.startsWith(`${split}: diffmas `) && f.includes(' vs diffmas-detached '))!;
    };
    for (const [setting, file] of [['lookup d1', files.d1], ['lookup d2', files.d2], ['relay d1', files.relay]]) {
      for (const split of ['heldout', 'ood']) {
        const f = fromFindings(file, split);
        const v = verdict(setting, split);
        if (f.includes('diffmas beats diffmas-detached')) expect(v, f).toMatch(/^\*\*diffmas beats diffmas-detached/);
        else if (f.includes('diffmas-detached beats diffmas')) expect(v, f).toBe('**diffmas-detached beats diffmas**');
        else expect(v, f).toBe('no reliable difference');
      }
    }
    expect(verdict('lookup d1', 'heldout')).toMatch(/^\*\*diffmas beats/);
    expect(verdict('lookup d2', 'heldout')).toBe('no reliable difference');
    expect(verdict('relay d1', 'heldout')).toBe('**diffmas-detached beats diffmas**');
    const g1 = grad.find((r) => r[0] === 'lookup d1' && r[1] === 'heldout')!;
    expect(g1[4]).toMatch(/^\+0\.600 \[\+0\.5\d\d, \+0\.6\d\d\]$/);
    expect(g1[5]).toBe('unpaired, seeds only');
    expect(grad.find((r) => r[0] === 'lookup d2' && r[1] === 'heldout')![5]).toBe(`paired, ${EVAL} shared episodes`);
    expect(md.split('Sources:').length - 1).toBe(3); // under each table
  });

  it('runs as a command, and bench/report.mjs still prints a report', async () => {
    const { stdout } = await run('node', [path.join(root, 'bench', 'grid.mjs'), files.d1, files.d2], { cwd: root });
    expect(stdout).toContain('#### The grid (base tiny)');
    expect(stdout).toContain('| lookup d2 | heldout |');
    const rep = await run('node', [path.join(root, 'bench', 'report.mjs'), files.d1], { cwd: root });
    expect(rep.stdout).toContain(`### ${files.d1}`);
    expect(rep.stdout).toContain('| diffmas | heldout |');
  });
});
