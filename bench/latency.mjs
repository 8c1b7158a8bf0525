#!/usr/bin/env node
// The latency budget of issue 22: accuracy against T, the sequential passes each sender gets after its
// prompt, from the reports of `npm run experiment -- --latency T --json FILE` (src/mas/latency.ts).
// Text spends T on T decoded tokens; a cache method (latentmas-full, diffmas-full) on T latent steps
// after its prefilled prompt, so its receiver reads the prompt's K/V as well. Beside each point, the
// positions the receiver reads: a cache wins on latency, text on positions, and the chart shows both.
//   node bench/latency.mjs [--out DIR] [--split heldout|ood] FILE.json [...]
// Per (base, task, difficulty) it writes DIR/<base>-<task>-d<d>-latency.svg (DIR: the first report's
// folder unless --out) with two panels, accuracy against T (each point labelled with the positions
// read) and accuracy against positions read, and prints the points as Markdown with the paired
// differences cache - text at each T.
// What each point is, read from the report, never from its file name:
//   T          args.latency.T (a report without args.latency was not made with --latency: refused)
//   method     the requested method (args.latency.runAs's keys); at T = 0 text runs as single and
//              text-trained as single-trained (runAs's values), the rows under those names
//   positions  the rows' messagePositions (mean over seeds): the K/V positions or text tokens the
//              receivers read per episode, as the rollout measured them on the task's rendering (a
//              cache: each sender's prompt tokens + T; text: the tokens sent, at most T per sender);
//              per sender = that / the senders (agents but the final one); a cache's prompt part =
//              per sender - T
//   accuracy   the runner's statement (mean, 95% bootstrap interval over seeds x episodes, or modes;
//              src/mas/stats.ts and paired.ts through report-lib.mjs)
//   text bound the report's own bound at B = T tokens (args.bounds, basis 'text budget', src/mas/bounds.ts;
//              computed the same way where a report lacks it); at T = 0 no message: the receiver alone
//   floor      the receiver alone (best constant message), src/mas/bounds.ts
//   paired     cache - text in the same report (the same episodes): diffmas-full - text-trained (both
//              trained), c2c - text-trained where a report holds c2c, and latentmas-full - text
//              (neither), report-lib compareAcross
// When two reports hold the same (method, T), the one with more seeds is used (then the first given).
// Plain Node, no dependencies.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { accuracyWords, compareAcross, compareSettings, differenceWords, f3, isMain, loadReport, parseArgs, settingOf, stats, summaryOf } from './report-lib.mjs';
import { STYLE as BUDGET_STYLE, esc, marker, splitName } from './budget.mjs';

/** The sides' methods in chart order, and the pairs compared at each T (cache, text): equally trained, then untrained. */
export const LATENCY_METHODS = ['text', 'text-trained', 'latentmas-full', 'diffmas-full', 'c2c'];
export const LATENCY_PAIRS = [['diffmas-full', 'text-trained'], ['c2c', 'text-trained'], ['latentmas-full', 'text']];
const STYLE = { ...BUDGET_STYLE, 'text-trained': { color: '#D55E00', marker: 'circle', dash: '7 4' }, c2c: { color: '#009E73', marker: 'triangle', dash: '2 2' } };
const FLOOR_STYLE = { color: '#B2182B', dash: '4 2', label: 'receiver alone (best constant message)' };
const BOUND_STYLE = { color: '#7B3294', dash: '1 3', label: 'any text protocol of T tokens per sender' };


/** The latency record of a report (args.latency), checked; throws naming the file. */
export function latencyOf(report) {
  const l = report.args.latency;
  if (!l || typeof l !== 'object') throw new Error(`${report.file}: not a latency report (no args.latency: made without --latency T)`);
  if (!Number.isInteger(l.T) || l.T < 0) throw new Error(`${report.file}: args.latency.T must be a non-negative integer, got ${JSON.stringify(l.T)}`);
  if (!l.runAs || typeof l.runAs !== 'object') throw new Error(`${report.file}: args.latency has no runAs (requested method -> method run)`);
  return l;
}

/** Senders of a report's topology: every agent but the final one. */
export function sendersOf(report) {
  const t = report.args.topology;
  return t && Array.isArray(t.agents) ? t.agents.filter((a) => a.id !== t.final).length : NaN;
}

/** The text bound at T tokens per sender on a split: the report's own row (basis 'text budget', budget T), else computed; at T = 0 the floor. */
export function textBoundAt(report, setting, split, T) {
  const floor = stats.constantFloor(setting.task, setting.difficulty, split);
  if (T === 0) return { accuracy: floor, exact: false, source: 'no message: the receiver alone' };
  const row = report.bounds?.rows?.find((b) => b.split === split && b.basis === 'text budget' && b.budget === T);
  const V = Number(report.args.vocabSize ?? report.bounds?.vocab);
  const b = row ?? (Number.isFinite(V) && V > 1 ? stats.budgetBound(setting.task, setting.difficulty, split, T, V) : null);
  if (!b) return null;
  return { accuracy: b.exact ? 1 : (b.sphere ?? b.ceiling), exact: !!b.exact, source: row ? `${report.file} bounds` : `src/mas/bounds.ts (V = ${V})` };
}

/**
 * Groups the latency reports by setting and reads every point: for each setting (sorted)
 * { setting, split, points, pairs, floor, notes, files } where a point is
 * { method, runAs, T, positions, perSender, prompt, senders, accuracyMean, acc, seeds, bound, file, alsoIn }
 * and a pair { T, a, b, runA, runB, comparison, file } (comparison: report-lib compareAcross, null when absent).
 */
export function collectLatency(reports, { split = 'heldout' } = {}) {
  const groups = new Map();
  for (const r of reports) {
    latencyOf(r);
    const s = settingOf(r);
    if (!groups.has(s.key)) groups.set(s.key, { setting: s, reports: [] });
    groups.get(s.key).reports.push(r);
  }
  const out = [];
  for (const { setting, reports: rs } of groups.values()) {
    const notes = [];
    const byKey = new Map();
    for (const r of rs) {
      const { T, runAs } = latencyOf(r);
      const senders = sendersOf(r);
      for (const method of LATENCY_METHODS) {
        const run = runAs[method];
        if (!run) continue;
        const s = summaryOf(r, run, split);
        if (!s) {
          notes.push(`\`${r.file}\` lists ${method} (run as ${run}) but holds no ${split} rows of it.`);
          continue;
        }
        const rows = r.rows.filter((x) => x.method === run && x.split === split);
        // what the receivers read per episode; a run with no channel (text at T = 0: single) reads nothing
        const positions = run !== method && T === 0 ? 0 : s.messagePositions;
        if (!Number.isFinite(positions)) notes.push(`${method} T = ${T} of \`${r.file}\`: the rows carry no messagePositions.`);
        const perSender = positions / senders;
        const cache = !method.startsWith('text');
        const p = {
          method, runAs: run, T, positions, perSender, prompt: cache ? perSender - T : 0, senders,
          accuracyMean: s.accuracyMean, acc: s.acc, seeds: rows.length, validity: s.validity,
          bound: method.startsWith('text') ? textBoundAt(r, setting, split, T) : null, file: r.file, alsoIn: [],
        };
        const key = `${method} ${T}`;
        const old = byKey.get(key);
        if (!old) byKey.set(key, p);
        else if (p.seeds > old.seeds) byKey.set(key, { ...p, alsoIn: [...old.alsoIn, old.file] });
        else old.alsoIn.push(r.file);
      }
    }
    const points = [...byKey.values()].sort((a, b) => LATENCY_METHODS.indexOf(a.method) - LATENCY_METHODS.indexOf(b.method) || a.T - b.T);
    for (const p of points) if (p.alsoIn.length) notes.push(`${p.method} T = ${p.T} is also in ${p.alsoIn.map((f) => `\`${f}\``).join(', ')} (not used: ${p.seeds} seeds in \`${p.file}\` are at least as many).`);
    // cache - text at each T, where one report holds both (the same evaluation episodes: paired)
    const pairs = [];
    const Ts = [...new Set(points.map((p) => p.T))].sort((a, b) => a - b);
    for (const T of Ts) {
      for (const [a, b] of LATENCY_PAIRS) {
        const pa = points.find((p) => p.method === a && p.T === T), pb = points.find((p) => p.method === b && p.T === T);
        if (!pa || !pb) continue;
        const r = rs.find((x) => x.file === pa.file);
        if (pa.file !== pb.file) notes.push(`${a} and ${b} at T = ${T} come from different reports (\`${pa.file}\`, \`${pb.file}\`): compared over seeds where their episodes differ.`);
        const rb = rs.find((x) => x.file === pb.file);
        pairs.push({ T, a, b, runA: pa.runAs, runB: pb.runAs, comparison: compareAcross(r, pa.runAs, rb, pb.runAs, split), file: pa.file });
      }
    }
    const chances = rs.filter((r) => typeof r.chance?.[split] === 'number');
    const chance = chances.length ? chances[0].chance[split] : NaN;
    const floor = stats.constantFloor(setting.task, setting.difficulty, split);
    const files = [...new Set(points.map((p) => p.file))];
    out.push({ setting, split, points, pairs, floor, chance, notes, files });
  }
  return out.sort((a, b) => compareSettings(a.setting, b.setting));
}

/** x = log2(1 + v): 0 has a place, and 1, 2, 4, 8 spread as on a log scale. */
const lg = (v) => Math.log2(1 + v);
/** Ticks 0, 1, 2, 4, ... up to hi (every other power past eight of them). */
function ticksTo(hi) {
  const t = [0];
  for (let v = 1; v <= Math.max(1, hi) * 2; v *= 2) t.push(v);
  const every = Math.ceil(t.length / 9);
  return t.filter((_, i) => i === 0 || i % every === 0);
}

/**
 * One setting's chart as SVG (860 px wide): accuracy against T (each point labelled with the positions
 * read per episode) and accuracy against positions read, x on log2(1 + v); one <g class="series"
 * data-method data-panel> per method and panel, one <g class="point" data-t data-positions> per point
 * with its 95% interval; the text bound at T tokens and the receiver-alone floor.
 */
export function latencySvg(b) {
  const W = 860, H = 500, top = 110, bottom = H - 64;
  const f = (n) => n.toFixed(1);
  const maxT = Math.max(1, ...b.points.map((p) => p.T));
  const maxP = Math.max(1, ...b.points.map((p) => p.positions).filter(Number.isFinite));
  const panels = [
    { key: 'T', x0: 62, x1: 410, title: 'by sequential sender passes T', axis: 'T per sender: text tokens decoded, or latent steps after the prompt', hi: maxT },
    { key: 'positions', x0: 492, x1: 840, title: 'by positions the receivers read', axis: 'positions read per episode (text: tokens; cache: prompt + T)', hi: maxP },
  ];
  const methods = LATENCY_METHODS.filter((m) => b.points.some((p) => p.method === m));
  const y = (v) => top + (1 - Math.max(0, Math.min(1, v))) * (bottom - top);
  const o = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(`${b.setting.task} d${b.setting.difficulty} (${b.setting.base} base): ${splitName(b.split)} accuracy under a latency budget`)}</text>`,
    `<text x="${W / 2}" y="38" text-anchor="middle" fill="#444">${esc('mean over seeds; bars: 95% interval, ticks: two modes; numbers: positions read per episode; text at T = 0: the receiver alone')}</text>`,
  ];
  const legend = [
    methods.map((m) => ({ m, label: m })),
    [{ bound: BOUND_STYLE, label: BOUND_STYLE.label }, { bound: FLOOR_STYLE, label: `${FLOOR_STYLE.label} ${f3(b.floor)}` }],
  ];
  o.push('<g class="legend">');
  legend.forEach((row, ri) => {
    const ly = 56 + 18 * ri;
    const widths = row.map((e) => 34 + 6.6 * e.label.length);
    let lx = Math.max(8, (W - widths.reduce((a, w) => a + w + 18, -18)) / 2);
    row.forEach((e, i) => {
      if (e.m) {
        const s = STYLE[e.m];
        o.push(`<line x1="${f(lx)}" x2="${f(lx + 26)}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`, marker(s.marker, lx + 13, ly, s.color));
      } else {
        o.push(`<line x1="${f(lx)}" x2="${f(lx + 26)}" y1="${ly}" y2="${ly}" stroke="${e.bound.color}" stroke-width="1.5" stroke-dasharray="${e.bound.dash}"/>`);
      }
      o.push(`<text x="${f(lx + 32)}" y="${ly + 4}">${esc(e.label)}</text>`);
      lx += widths[i] + 18;
    });
  });
  o.push('</g>');
  // the text bound at T tokens per sender: at x = T (left), at x = T x senders (right: text's positions)
  const bounds = [...new Map(b.points.filter((p) => p.bound).map((p) => [p.T, { T: p.T, senders: p.senders, accuracy: p.bound.accuracy }])).values()].sort((a, c) => a.T - c.T);
  for (const P of panels) {
    const ticks = ticksTo(P.hi);
    const l1 = lg(ticks[ticks.length - 1]), pad = 0.05 * l1;
    const x = (v) => P.x0 + ((lg(v) + pad) / (l1 + 2 * pad)) * (P.x1 - P.x0);
    o.push(`<g class="panel" data-panel="${P.key}">`);
    o.push(`<text x="${(P.x0 + P.x1) / 2}" y="${top - 10}" text-anchor="middle" font-weight="bold">${esc(P.title)}</text>`);
    o.push(`<rect x="${P.x0}" y="${top}" width="${P.x1 - P.x0}" height="${bottom - top}" fill="none" stroke="#888"/>`);
    for (let k = 0; k <= 5; k++) {
      const v = k / 5;
      o.push(`<line x1="${P.x0}" x2="${P.x1}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#e4e4e4"/><text x="${P.x0 - 6}" y="${f(y(v) + 4)}" text-anchor="end">${v.toFixed(1)}</text>`);
    }
    for (const t of ticks) o.push(`<line x1="${f(x(t))}" x2="${f(x(t))}" y1="${top}" y2="${bottom}" stroke="#e4e4e4"/><text x="${f(x(t))}" y="${bottom + 16}" text-anchor="middle">${t}</text>`);
    o.push(`<text x="${(P.x0 + P.x1) / 2}" y="${bottom + 34}" text-anchor="middle" font-size="11">${esc(P.axis)}</text>`);
    o.push(`<text transform="translate(${P.x0 - 40},${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(`${splitName(b.split)} accuracy`)}</text>`);
    o.push(`<line class="bound" data-bound="floor" x1="${P.x0}" x2="${P.x1}" y1="${f(y(b.floor))}" y2="${f(y(b.floor))}" stroke="${FLOOR_STYLE.color}" stroke-width="1.5" stroke-dasharray="${FLOOR_STYLE.dash}"><title>${esc(`${FLOOR_STYLE.label}: ${f3(b.floor)}`)}</title></line>`);
    if (bounds.length) {
      const xs = bounds.map((q) => (P.key === 'T' ? q.T : q.T * q.senders));
      const d = bounds.map((q, i) => `${i ? 'L' : 'M'}${f(x(xs[i]))},${f(y(q.accuracy))}`).join('');
      o.push(`<path class="bound" data-bound="text" d="${d}" fill="none" stroke="${BOUND_STYLE.color}" stroke-width="1.5" stroke-dasharray="${BOUND_STYLE.dash}"><title>${esc(`${BOUND_STYLE.label}: ${bounds.map((q) => `T = ${q.T}: ${f3(q.accuracy)}`).join(', ')}`)}</title></path>`);
    }
    methods.forEach((m, j) => {
      const s = STYLE[m];
      const dx = (j - (methods.length - 1) / 2) * 4;
      const pts = b.points.filter((p) => p.method === m && Number.isFinite(p[P.key])).sort((a, c) => a[P.key] - c[P.key]);
      o.push(`<g class="series" data-method="${esc(m)}" data-panel="${P.key}">`);
      if (pts.length > 1) o.push(`<path d="${pts.map((p, i) => `${i ? 'L' : 'M'}${f(x(p[P.key]) + dx)},${f(y(p.accuracyMean))}`).join('')}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
      for (const p of pts) {
        const px = x(p[P.key]) + dx, py = y(p.accuracyMean);
        const tip = `${m}${p.runAs !== m ? ` (run as ${p.runAs})` : ''} T = ${p.T}: ${accuracyWords(p.acc)}, ${f(p.positions)} positions read (${f(p.perSender)} per sender), ${p.seeds} seeds (${p.file})`;
        o.push(`<g class="point" data-t="${p.T}" data-positions="${f(p.positions)}"><title>${esc(tip)}</title>`);
        if (p.acc?.modes) {
          for (const v of [p.acc.modes.below, p.acc.modes.at]) o.push(`<path class="mode" d="M${f(px - 6)},${f(y(v))}H${f(px + 6)}" stroke="${s.color}" stroke-width="2.5"/>`);
        } else if (p.acc && p.acc.lo !== null && p.acc.hi !== null && p.acc.hi > p.acc.lo) {
          const a = y(p.acc.hi), c = y(p.acc.lo);
          o.push(`<path d="M${f(px)},${f(a)}V${f(c)}M${f(px - 4)},${f(a)}H${f(px + 4)}M${f(px - 4)},${f(c)}H${f(px + 4)}" stroke="${s.color}" stroke-width="1.5" fill="none"/>`);
        }
        o.push(marker(s.marker, px, py, s.color));
        // beside each point on the T panel: the positions read (the other axis), each method in its own
        // quadrant around the point, so coinciding points keep readable labels
        if (P.key === 'T') {
          const right = j % 4 < 2, above = j % 2 === 0, dy = j >= 4 ? (above ? -10 : 10) : 0;
          o.push(`<text class="positions" x="${f(px + (right ? 7 : -7))}" y="${f(py + dy + (above ? -6 : 13))}" text-anchor="${right ? 'start' : 'end'}" font-size="10" fill="${s.color}">${esc(`${Math.round(p.positions)}`)}</text>`);
        }
        o.push('</g>');
      }
      o.push('</g>');
    });
    o.push('</g>');
  }
  o.push('</svg>');
  return o.join('\n') + '\n';
}

/** The file name of a setting's chart. */
export const latencySvgName = (b) => `${b.setting.base}-${b.setting.task}-d${b.setting.difficulty}-latency${b.split === 'heldout' ? '' : `-${b.split}`}.svg`;

/** The points as Markdown: one row per (method, T), then cache - text at each T, then notes and sources. */
export function latencyMarkdown(b, svgPath) {
  const n = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const lines = [
    `#### ${b.setting.task} d${b.setting.difficulty} (${b.setting.base}): ${splitName(b.split)} accuracy under a latency budget of T sequential sender passes`, '',
    '| method | run as | T | positions read | per sender | accuracy [95% interval] | text bound at T tokens | seeds | source |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const p of b.points) {
    const perSender = !p.method.startsWith('text') ? `${n(p.perSender)} (prompt ${n(p.prompt)} + ${p.T})` : n(p.perSender);
    const bound = !p.bound ? '–' : p.T === 0 ? `${f3(p.bound.accuracy)} (no message)` : p.bound.exact ? '1.000 (exact)' : `<= ${f3(p.bound.accuracy)}`;
    lines.push(`| ${p.method} | ${p.runAs} | ${p.T} | ${n(p.positions)} | ${perSender} | ${accuracyWords(p.acc)} | ${bound} | ${p.seeds} | \`${p.file}\` |`);
  }
  lines.push(`| receiver alone (best constant message) | – | – | 0 | 0 | ${f3(b.floor)} | – | – | src/mas/bounds.ts |`);
  if (Number.isFinite(b.chance)) lines.push(`| chance | – | – | – | – | ${f3(b.chance)} | – | – | – |`);
  if (b.pairs.length) {
    lines.push('', '| T | cache − text | difference [95% interval] | verdict | basis |', '|---:|---|---:|---|---|');
    for (const q of b.pairs) {
      const c = q.comparison;
      const names = `${q.a}${q.runA !== q.a ? ` (${q.runA})` : ''} − ${q.b}${q.runB !== q.b ? ` (${q.runB})` : ''}`;
      const verdict = !c ? 'n/a' : c.verdict === 'no-interval' ? `no interval (< ${stats.MIN_SEEDS} seeds)` : c.verdict === 'a' ? `**${q.a} beats ${q.b}**` : c.verdict === 'b' ? `**${q.b} beats ${q.a}**` : 'no reliable difference';
      lines.push(`| ${q.T} | ${names} | ${c ? differenceWords(c) : 'n/a'} | ${verdict} | ${c ? (c.basis === 'episodes' ? `paired, ${c.episodes} episodes` : 'seeds only (unpaired)') : '–'} |`);
    }
  }
  lines.push(
    '',
    'T: sequential passes per sender after its prompt (args.latency.T): text decodes T tokens, a cache method runs T latent steps after ' +
      'its prefilled prompt. At T = 0 no text message exists: text runs as single and text-trained as single-trained (the receiver alone). ' +
      'Positions read: the rows\u2019 messagePositions per episode, mean over seeds (text: tokens sent; cache: the K/V positions the receivers ' +
      'read, each sender\u2019s prompt as the task renders it + T); per sender = over the topology\u2019s senders. Text bound: the best accuracy any ' +
      'protocol of T tokens per sender can reach (the report\u2019s bounds, src/mas/bounds.ts); at T = 0 the receiver alone. cache − text: paired ' +
      'per episode within one report (report-lib compareAcross); "beats" iff the interval excludes 0.',
    ...b.notes.map((x) => `- ${x}`),
    '',
    `Sources: ${b.files.map((x) => `\`${x}\``).join(', ')}${svgPath ? `; chart: \`${svgPath}\`` : ''}`,
    '',
  );
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  try {
    const { opts, files } = parseArgs(process.argv.slice(2), ['out', 'split']);
    if (opts.help || !files.length) {
      console.log('usage: node bench/latency.mjs [--out DIR] [--split heldout|ood] FILE.json [...]\n' +
        '  reads reports of `npm run experiment -- --latency T --json FILE`; writes DIR/<base>-<task>-d<d>-latency.svg per setting\n' +
        '  (DIR: the first report\u2019s folder) and prints the points as Markdown');
      process.exit(opts.help ? 0 : 1);
    }
    const split = opts.split ?? 'heldout';
    if (split !== 'heldout' && split !== 'ood') throw new Error(`--split must be heldout or ood, got ${split}`);
    const out = opts.out ?? path.dirname(files[0]);
    const settings = collectLatency(files.map(loadReport), { split });
    if (!settings.some((b) => b.points.length)) throw new Error(`no report holds ${LATENCY_METHODS.join(', ')} on the ${split} split`);
    mkdirSync(out, { recursive: true });
    const md = [];
    for (const b of settings) {
      if (!b.points.length) continue;
      const file = path.join(out, latencySvgName(b));
      writeFileSync(file, latencySvg(b));
      console.error(`wrote ${file} (${b.points.length} points)`);
      md.push(latencyMarkdown(b, file));
    }
    console.log(md.join('\n'));
  } catch (e) {
    console.error(`latency: ${e.message}`);
    process.exit(1);
  }
}
