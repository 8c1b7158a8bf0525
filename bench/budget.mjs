#!/usr/bin/env node
// The budget curve of issue 9: accuracy against message size, one line per channel, from
// experiment reports (`npm run experiment -- --json FILE`) of one or more (task, difficulty) settings:
// text at token budgets B (args.textBudget), latentmas and diffmas at m latent steps (the senders'
// latentSteps in args.topology). Which point a report holds is read from its args and its rows,
// never from its file name.
//   node bench/budget.mjs [--out DIR] [--split heldout|ood] [--methods text,latentmas,diffmas] [--vocab V] FILE.json [...]
// For each setting it writes DIR/<base>-<task>-d<d>-budget.svg (DIR: the first report's folder
// unless --out) with two panels, size as positions crossing and as bits crossing, log-scale x;
// skyline, single agent and chance as horizontal lines; and prints the same points as Markdown.
//   positions: the rows' messagePositions (text: tokens sent; latent: the K/V positions receivers read)
//   bits: text = tokens sent (messageTokens) × log2 V, V the base's vocabulary (args.vocabSize or
//         the base's config.json); latent = 32 × the K/V floats crossing (messageFloats)
// Accuracy: mean over seeds with the runner's 95% bootstrap interval over seeds and episodes (or, where
// the seeds split into modes, those modes; src/mas/stats.ts through report-lib.mjs).
// Beside every budget, what a message of that size could carry (src/mas/bounds.ts): the best accuracy
// any protocol of B tokens from V can reach (Fano, or exactly 1 where the message can name the whole
// content), drawn as a curve over each panel's x (bits: per message, the bits crossing over the
// messages per episode), and the receiver alone (the best constant message) as a line.
// When two reports hold the same (method, size), the one with more seeds is used (then the first given).
// Plain Node, no dependencies.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  LATENT_METHODS, TEXT_METHODS, accuracyWords, compareSettings, differencesNote, f3, isMain, latentStepsOf, loadReport, parseArgs,
  settingOf, stats, summaryOf, vocabOf,
} from './report-lib.mjs';

export const DEFAULT_METHODS = ['text', 'latentmas', 'diffmas'];

/** Okabe–Ito colours (safe for the common colour-vision deficiencies), with a marker and dash each, so no line relies on colour alone. */
export const STYLE = {
  text: { color: '#E69F00', marker: 'circle', dash: '' },
  latentmas: { color: '#0072B2', marker: 'square', dash: '7 4' },
  diffmas: { color: '#009E73', marker: 'triangle', dash: '' },
  'latentmas-full': { color: '#56B4E9', marker: 'square', dash: '2 3' },
  'diffmas-full': { color: '#CC79A7', marker: 'diamond', dash: '' },
  'diffmas-detached': { color: '#D55E00', marker: 'down', dash: '7 4' },
};
const REF_STYLE = {
  skyline: { color: '#000000', dash: '9 4', label: 'skyline (one context)' },
  single: { color: '#555555', dash: '2 3', label: 'single agent' },
  chance: { color: '#999999', dash: '7 3 2 3', label: 'chance' },
};
const BOUND_STYLE = {
  ceiling: { color: '#7B3294', dash: '1 3', label: 'any protocol of that size (Fano)' },
  floor: { color: '#B2182B', dash: '4 2', label: 'receiver alone (best constant message)' },
};

/**
 * Groups the reports by setting and reads every point: for each setting (sorted)
 * { setting, split, points, refs, vocab, notes, files } where a point is
 * { method, param, size ('B=4' | 'm=2'), positions, bits, tokens, floats, accuracyMean, accuracyCi, seeds, file, alsoIn }
 * and refs holds skyline, single and chance ({ accuracyMean, accuracyCi, seeds, file } or null).
 */
export function collectBudget(reports, { split = 'heldout', methods = DEFAULT_METHODS, vocab } = {}) {
  const groups = new Map();
  for (const r of reports) {
    const s = settingOf(r);
    if (!groups.has(s.key)) groups.set(s.key, { setting: s, reports: [] });
    groups.get(s.key).reports.push(r);
  }
  const out = [];
  for (const { setting, reports: rs } of groups.values()) {
    const notes = [];
    const V = vocab ? { V: Number(vocab), source: '--vocab' } : (rs.map(vocabOf).find((v) => Number.isFinite(v.V)) ?? { V: NaN, source: 'unknown' });
    if (!Number.isFinite(V.V) && rs.some((r) => r.rows.some((x) => x.method === 'text'))) {
      notes.push('The vocabulary size is unknown (no args.vocabSize, no readable config.json at args.model; --vocab V gives it): text has no bits.');
    }
    const byKey = new Map();
    const better = (a, b) => a.seeds > b.seeds; // a replaces b only with more seeds: ties keep the first given
    for (const r of rs) {
      for (const method of methods) {
        const s = summaryOf(r, method, split);
        if (!s) continue;
        let param, size, positions, bits;
        if (TEXT_METHODS.includes(method)) {
          param = Number(r.args.textBudget);
          size = `B=${param}`;
          positions = Number.isFinite(s.messagePositions) ? s.messagePositions : s.messageTokens;
          bits = s.messageTokens * Math.log2(V.V);
        } else {
          const steps = latentStepsOf(r);
          param = Math.max(...steps);
          size = `m=${steps.join('/')}`;
          positions = s.messagePositions;
          if (!Number.isFinite(positions)) {
            positions = steps.reduce((a, b) => a + b, 0);
            notes.push(`${method} ${size} of \`${r.file}\`: the rows carry no messagePositions; positions = the senders' latent steps.`);
          }
          bits = 32 * s.messageFloats;
        }
        // beside the budget: any protocol of param tokens (for a latent channel, m positions as m tokens)
        const bound = Number.isFinite(V.V) ? stats.budgetBound(setting.task, setting.difficulty, split, param, V.V) : null;
        const p = {
          method, param, size, positions, bits, tokens: s.messageTokens, floats: s.messageFloats,
          accuracyMean: s.accuracyMean, accuracyCi: s.accuracyCi, acc: s.acc, seeds: s.seeds, validity: s.validity, file: r.file, alsoIn: [], bound,
        };
        const key = `${method} ${size}`;
        const old = byKey.get(key);
        if (!old) byKey.set(key, p);
        else if (better(p, old)) byKey.set(key, { ...p, alsoIn: [...old.alsoIn, old.file] });
        else old.alsoIn.push(r.file);
      }
    }
    const points = [...byKey.values()].sort((a, b) => methods.indexOf(a.method) - methods.indexOf(b.method) || a.param - b.param);
    for (const p of points) {
      const off = ['positions', 'bits'].filter((k) => !(Number.isFinite(p[k]) && p[k] > 0));
      if (off.length) notes.push(`${p.method} ${p.size} is not drawn against ${off.join(' or ')} (size 0 or unknown on a log scale).`);
    }
    for (const p of points) if (p.alsoIn.length) notes.push(`${p.method} ${p.size} is also in ${p.alsoIn.map((f) => `\`${f}\``).join(', ')} (not used: ${p.seeds} seeds in \`${p.file}\` are at least as many).`);
    const ref = (m) => rs.map((r) => summaryOf(r, m, split)).filter(Boolean).reduce((b, s) => (!b || s.seeds > b.seeds ? s : b), null);
    const chances = rs.filter((r) => typeof r.chance?.[split] === 'number');
    const chance = chances.length ? { accuracyMean: chances[0].chance[split], accuracyCi: NaN, seeds: NaN, file: chances[0].file } : null;
    if (new Set(chances.map((r) => r.chance[split])).size > 1) notes.push(`The reports give different chance levels (${[...new Set(chances.map((r) => r.chance[split]))].join(', ')}); the first is drawn.`);
    const used = rs.filter((r) => points.some((p) => p.file === r.file) || ['skyline', 'single'].some((m) => ref(m)?.file === r.file));
    const diff = differencesNote(used);
    if (diff) notes.push(diff);
    const shape = stats.shapeOf(setting.task, setting.difficulty, split);
    const floor = stats.constantFloor(setting.task, setting.difficulty, split);
    if (!Number.isFinite(V.V)) notes.push('The vocabulary size is unknown: no bound on what B tokens can carry is drawn.');
    out.push({ setting, split, points, refs: { skyline: ref('skyline'), single: ref('single'), chance }, vocab: V, notes, files: used.map((r) => r.file), floor, messagesPerEpisode: shape.messages });
  }
  return out.sort((a, b) => compareSettings(a.setting, b.setting));
}

export const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
export const splitName = (split) => (split === 'heldout' ? 'held-out' : split);

/** Log-scale ticks covering [lo, hi]: powers of `base`, at most about 8. */
function logTicks(lo, hi, base) {
  let a = Math.floor(Math.log(lo) / Math.log(base) + 1e-9), b = Math.ceil(Math.log(hi) / Math.log(base) - 1e-9);
  if (a === b) { a -= 1; b += 1; }
  const every = Math.ceil((b - a + 1) / 8);
  const ticks = [];
  for (let k = a; k <= b; k += every) ticks.push(base ** k);
  return { ticks, lo: base ** a, hi: base ** b };
}
const bitsLabel = (v) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : v >= 1 ? `${v}` : `${v}`);

export function marker(kind, x, y, color) {
  const r = 4.5, f = (n) => n.toFixed(1);
  switch (kind) {
    case 'square': return `<rect x="${f(x - r)}" y="${f(y - r)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
    case 'triangle': return `<path d="M${f(x)},${f(y - r - 1)}L${f(x + r + 1)},${f(y + r)}L${f(x - r - 1)},${f(y + r)}Z" fill="${color}"/>`;
    case 'down': return `<path d="M${f(x)},${f(y + r + 1)}L${f(x + r + 1)},${f(y - r)}L${f(x - r - 1)},${f(y - r)}Z" fill="${color}"/>`;
    case 'diamond': return `<path d="M${f(x)},${f(y - r - 1)}L${f(x + r + 1)},${f(y)}L${f(x)},${f(y + r + 1)}L${f(x - r - 1)},${f(y)}Z" fill="${color}"/>`;
    default: return `<circle cx="${f(x)}" cy="${f(y)}" r="${r}" fill="${color}"/>`;
  }
}

/**
 * One setting's chart as SVG (800 px wide): two panels, accuracy against positions and against bits,
 * log-scale x, one series per channel (<g class="series" data-method data-panel>, one
 * <g class="point"> per point with its 95% interval), skyline / single / chance as lines.
 */
export function budgetSvg(b) {
  const W = 800, H = 480, top = 110, bottom = H - 58;
  const panels = [
    { key: 'positions', x0: 62, x1: 380, title: 'by positions crossing', axis: 'positions per episode (text: tokens sent; latent: K/V positions)', base: 2, fmt: (v) => `${v}` },
    {
      key: 'bits', x0: 462, x1: 780, title: 'by bits crossing', base: 10, fmt: bitsLabel,
      axis: `bits per episode (text: tokens × ${Number.isFinite(b.vocab.V) ? Math.log2(b.vocab.V).toFixed(2) : 'log2 V'}; latent: 32 × K/V floats)`,
    },
  ];
  const methods = [...new Set(b.points.map((p) => p.method))];
  const y = (v) => top + (1 - Math.max(0, Math.min(1, v))) * (bottom - top);
  const f = (n) => n.toFixed(1);
  const o = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(`${b.setting.task} d${b.setting.difficulty} (${b.setting.base} base): ${splitName(b.split)} accuracy against message size`)}</text>`,
    `<text x="${W / 2}" y="38" text-anchor="middle" fill="#444">${esc('mean over seeds; bars: 95% bootstrap interval (seeds × episodes), ticks: two modes; log-scale x; points nudged sideways')}</text>`,
  ];
  // legend: the channels on one row, the reference lines with their values on the next, each centred
  const rows = [
    methods.map((m) => ({ kind: 'series', m, label: m })),
    [
      ...Object.entries(b.refs).filter(([, r]) => r).map(([k, r]) => ({ kind: 'ref', k, label: `${REF_STYLE[k].label} ${f3(r.accuracyMean)}` })),
      ...(Number.isFinite(b.vocab.V) ? [{ kind: 'bound', k: 'ceiling', label: BOUND_STYLE.ceiling.label }] : []),
      { kind: 'bound', k: 'floor', label: `${BOUND_STYLE.floor.label} ${f3(b.floor)}` },
    ],
  ];
  o.push('<g class="legend">');
  rows.forEach((row, ri) => {
    const ly = 56 + 18 * ri;
    const widths = row.map((e) => 34 + 6.6 * e.label.length);
    let lx = Math.max(8, (W - widths.reduce((a, w) => a + w + 18, -18)) / 2);
    row.forEach((e, i) => {
      if (e.kind === 'series') {
        const s = STYLE[e.m] ?? STYLE.text;
        o.push(`<line x1="${f(lx)}" x2="${f(lx + 26)}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`, marker(s.marker, lx + 13, ly, s.color));
      } else {
        const s = e.kind === 'bound' ? BOUND_STYLE[e.k] : REF_STYLE[e.k];
        o.push(`<line x1="${f(lx)}" x2="${f(lx + 26)}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="1.5" stroke-dasharray="${s.dash}"/>`);
      }
      o.push(`<text x="${f(lx + 32)}" y="${ly + 4}">${esc(e.label)}</text>`);
      lx += widths[i] + 18;
    });
  });
  o.push('</g>');
  for (const P of panels) {
    const xs = b.points.map((p) => p[P.key]).filter((v) => Number.isFinite(v) && v > 0);
    const { ticks, lo, hi } = xs.length ? logTicks(Math.min(...xs), Math.max(...xs), P.base) : { ticks: [1, P.base], lo: 1, hi: P.base };
    // a margin of 6% of the range on each side keeps the end points off the frame
    const pad = 0.06 * (Math.log(hi) - Math.log(lo)), l0 = Math.log(lo) - pad, l1 = Math.log(hi) + pad;
    const x = (v) => P.x0 + ((Math.log(v) - l0) / (l1 - l0)) * (P.x1 - P.x0);
    o.push(`<g class="panel" data-panel="${P.key}">`);
    o.push(`<text x="${(P.x0 + P.x1) / 2}" y="${top - 10}" text-anchor="middle" font-weight="bold">${esc(P.title)}</text>`);
    o.push(`<rect x="${P.x0}" y="${top}" width="${P.x1 - P.x0}" height="${bottom - top}" fill="none" stroke="#888"/>`);
    for (let k = 0; k <= 5; k++) {
      const v = k / 5;
      o.push(`<line x1="${P.x0}" x2="${P.x1}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#e4e4e4"/><text x="${P.x0 - 6}" y="${f(y(v) + 4)}" text-anchor="end">${v.toFixed(1)}</text>`);
    }
    for (const t of ticks) {
      o.push(`<line x1="${f(x(t))}" x2="${f(x(t))}" y1="${top}" y2="${bottom}" stroke="#e4e4e4"/><text x="${f(x(t))}" y="${bottom + 16}" text-anchor="middle">${esc(P.fmt(t))}</text>`);
    }
    o.push(`<text x="${(P.x0 + P.x1) / 2}" y="${bottom + 34}" text-anchor="middle" font-size="11">${esc(P.axis)}</text>`);
    o.push(`<text transform="translate(${P.x0 - 40},${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(`${splitName(b.split)} accuracy`)}</text>`);
    for (const [k, r] of Object.entries(b.refs)) {
      if (!r || !Number.isFinite(r.accuracyMean)) continue;
      const s = REF_STYLE[k];
      o.push(`<line class="ref" data-ref="${k}" x1="${P.x0}" x2="${P.x1}" y1="${f(y(r.accuracyMean))}" y2="${f(y(r.accuracyMean))}" stroke="${s.color}" stroke-width="1.5" stroke-dasharray="${s.dash}"><title>${esc(`${s.label}: ${f3(r.accuracyMean)} ± ${f3(r.accuracyCi)} (${r.file})`)}</title></line>`);
    }
    // the bounds: the receiver alone as a line; the ceiling of any protocol as a curve over x
    // (positions: B tokens per message, at x = B x the messages per episode; bits: each message carrying
    // x / messagesPerEpisode bits)
    o.push(`<line class="bound" data-bound="floor" x1="${P.x0}" x2="${P.x1}" y1="${f(y(b.floor))}" y2="${f(y(b.floor))}" stroke="${BOUND_STYLE.floor.color}" stroke-width="1.5" stroke-dasharray="${BOUND_STYLE.floor.dash}"><title>${esc(`${BOUND_STYLE.floor.label}: ${f3(b.floor)}`)}</title></line>`);
    if (Number.isFinite(b.vocab.V)) {
      const { task, difficulty } = b.setting;
      const xLo = Math.exp(l0), xHi = Math.exp(l1);
      const pts = [];
      if (P.key === 'positions') {
        const k = b.messagesPerEpisode;
        for (let B = Math.max(1, Math.ceil(xLo / k)); B <= Math.min(256, Math.floor(xHi / k)); B++) pts.push([B * k, stats.budgetBound(task, difficulty, b.split, B, b.vocab.V).ceiling]);
      } else {
        for (let k = 0; k <= 60; k++) {
          const bits = Math.exp(Math.log(xLo) + (k / 60) * (Math.log(xHi) - Math.log(xLo)));
          pts.push([bits, stats.ceilingAtBits(task, difficulty, b.split, bits / b.messagesPerEpisode).ceiling]);
        }
      }
      if (pts.length > 1) {
        const d = pts.map(([v, c], i) => `${i ? 'L' : 'M'}${f(x(v))},${f(y(c))}`).join('');
        o.push(`<path class="bound" data-bound="ceiling" d="${d}" fill="none" stroke="${BOUND_STYLE.ceiling.color}" stroke-width="1.5" stroke-dasharray="${BOUND_STYLE.ceiling.dash}"><title>${esc(`${BOUND_STYLE.ceiling.label}, V = ${b.vocab.V}`)}</title></path>`);
      }
    }
    methods.forEach((m, j) => {
      const s = STYLE[m] ?? STYLE.text;
      const dx = (j - (methods.length - 1) / 2) * 5;
      const pts = b.points.filter((p) => p.method === m && Number.isFinite(p[P.key]) && p[P.key] > 0).sort((a, c) => a[P.key] - c[P.key]);
      o.push(`<g class="series" data-method="${esc(m)}" data-panel="${P.key}">`);
      if (pts.length > 1) {
        const d = pts.map((p, i) => `${i ? 'L' : 'M'}${f(x(p[P.key]) + dx)},${f(y(p.accuracyMean))}`).join('');
        o.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
      }
      for (const p of pts) {
        const px = x(p[P.key]) + dx, py = y(p.accuracyMean);
        const beside = p.bound ? `; any protocol of ${p.param} tokens ${p.bound.exact ? '= 1 (exact)' : `<= ${f3(p.bound.ceiling)}`}` : '';
        const tip = `${m} ${p.size}: ${accuracyWords(p.acc)}, ${p.positions.toFixed(1)} positions, ${Math.round(p.bits)} bits, ${p.seeds} seeds${beside} (${p.file})`;
        o.push(`<g class="point" data-size="${esc(p.size)}"><title>${esc(tip)}</title>`);
        if (p.acc?.modes) {
          // seeds in two modes: no mean +- interval, a tick at the top of the lower mode and at the bottom of the upper
          for (const v of [p.acc.modes.below, p.acc.modes.at]) o.push(`<path class="mode" d="M${f(px - 6)},${f(y(v))}H${f(px + 6)}" stroke="${s.color}" stroke-width="2.5"/>`);
        } else if (p.acc && p.acc.lo !== null && p.acc.hi !== null && p.acc.hi > p.acc.lo) {
          const a = y(p.acc.hi), c = y(p.acc.lo);
          o.push(`<path d="M${f(px)},${f(a)}V${f(c)}M${f(px - 4)},${f(a)}H${f(px + 4)}M${f(px - 4)},${f(c)}H${f(px + 4)}" stroke="${s.color}" stroke-width="1.5" fill="none"/>`);
        }
        o.push(marker(s.marker, px, py, s.color), '</g>');
      }
      o.push('</g>');
    });
    o.push('</g>');
  }
  o.push('</svg>');
  return o.join('\n') + '\n';
}

/** The file name of a setting's chart. */
export const svgName = (b) => `${b.setting.base}-${b.setting.task}-d${b.setting.difficulty}-budget${b.split === 'heldout' ? '' : `-${b.split}`}.svg`;

/** The same points as a Markdown table, with the vocabulary, notes and source files under it. */
export function budgetMarkdown(b, svgPath) {
  const lines = [
    `#### ${b.setting.task} d${b.setting.difficulty} (${b.setting.base}): ${splitName(b.split)} accuracy against message size`, '',
    '| channel | size | positions | bits | accuracy [95% interval] | any protocol of that many tokens | validity | seeds | source |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  const n = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  for (const p of b.points) {
    const ceil = p.bound ? (p.bound.exact ? '1.000 (exact)' : `<= ${f3(p.bound.ceiling)}`) : 'n/a';
    lines.push(`| ${p.method} | ${p.size} | ${n(p.positions)} | ${Number.isFinite(p.bits) ? Math.round(p.bits) : 'n/a'} | ${accuracyWords(p.acc)} | ${ceil} | ${n(p.validity, 2)} | ${p.seeds} | \`${p.file}\` |`);
  }
  for (const [k, r] of Object.entries(b.refs)) {
    if (!r) continue;
    lines.push(`| ${k} | – | – | – | ${k === 'chance' ? f3(r.accuracyMean) : accuracyWords(r.acc)} | – | ${k === 'chance' ? '–' : n(r.validity, 2)} | ${k === 'chance' ? '–' : r.seeds} | \`${r.file}\` |`);
  }
  lines.push(`| receiver alone (best constant message) | – | 0 | 0 | ${f3(b.floor)} | – | – | – | src/mas/bounds.ts |`);
  const V = b.vocab;
  lines.push(
    '',
    'Positions: the rows\u2019 messagePositions, mean over seeds (text: tokens sent; latent: K/V positions the receivers read). ' +
      `Bits: text = tokens sent × log2 V${Number.isFinite(V.V) ? ` (V = ${V.V} from ${V.source}: ${Math.log2(V.V).toFixed(2)} bits per token)` : ' (V unknown)'}; ` +
      'latent = 32 × the K/V floats crossing. Size: B = the text budget (args.textBudget), m = the senders\u2019 latent steps (args.topology). ' +
      'Any protocol: the best accuracy a message of that many tokens from V can reach (Fano\u2019s inequality on the entropy the receiver ' +
      'lacks; exactly 1 where it can name the sender\u2019s whole content); for a latent channel, m positions read as m tokens ' +
      '(a position holds floats, not a token). Receiver alone: the best guess from its own part (src/mas/bounds.ts).',
    ...b.notes.map((x) => `- ${x}`),
    '',
    `Sources: ${b.files.map((f) => `\`${f}\``).join(', ')}${svgPath ? `; chart: \`${svgPath}\`` : ''}`,
    '',
  );
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  try {
    const { opts, files } = parseArgs(process.argv.slice(2), ['out', 'split', 'methods', 'vocab']);
    if (opts.help || !files.length) {
      console.log('usage: node bench/budget.mjs [--out DIR] [--split heldout|ood] [--methods text,latentmas,diffmas] [--vocab V] FILE.json [...]\n' +
        '  writes DIR/<base>-<task>-d<d>-budget.svg per setting (DIR: the first report\u2019s folder) and prints the points as Markdown');
      process.exit(opts.help ? 0 : 1);
    }
    const methods = (opts.methods ?? DEFAULT_METHODS.join(',')).split(',').filter(Boolean);
    const known = ['text', ...LATENT_METHODS];
    const bad = methods.filter((m) => !known.includes(m));
    if (bad.length) throw new Error(`--methods: ${bad.join(', ')} send no message (have: ${known.join(', ')})`);
    if (opts.vocab !== undefined && !(Number(opts.vocab) > 1)) throw new Error('--vocab must be a vocabulary size > 1');
    const split = opts.split ?? 'heldout';
    const out = opts.out ?? path.dirname(files[0]);
    const settings = collectBudget(files.map(loadReport), { split, methods, vocab: opts.vocab });
    if (!settings.some((b) => b.points.length)) throw new Error(`no report holds ${methods.join(', ')} on the ${split} split`);
    mkdirSync(out, { recursive: true });
    const md = [];
    for (const b of settings) {
      if (!b.points.length) continue;
      const file = path.join(out, svgName(b));
      writeFileSync(file, budgetSvg(b));
      console.error(`wrote ${file} (${b.points.length} points)`);
      md.push(budgetMarkdown(b, file));
    }
    console.log(md.join('\n'));
  } catch (e) {
    console.error(`budget: ${e.message}`);
    process.exit(1);
  }
}
