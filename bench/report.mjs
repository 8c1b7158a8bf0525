#!/usr/bin/env node
// Turns experiment reports (npm run experiment -- --json FILE) into the Markdown of
// bench/EXPERIMENT.md, and optionally an SVG of the training-loss curves.
//   node bench/report.mjs FILE.json [...]            one section per file: table, controls, curve, findings
//   node bench/report.mjs --svg OUT.svg FILE.json    the loss curves of FILE (mean over seeds, smoothed)
// Accuracies, paired comparisons, controls and bounds are stated by the runner's own statistics
// (src/mas/stats.ts, paired.ts, bounds.ts, bundled by report-lib.mjs), also for reports written
// before those existed (then over seeds only, unpaired, as the tables say).
import { readFileSync, writeFileSync } from 'node:fs';
import { LATENT_METHODS, accuracyOf, accuracyWords, latentStepsOf, loadReport, pairedOf, stats, vocabOf } from './report-lib.mjs';

const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const load = (file) => JSON.parse(readFileSync(file, 'utf8'));
const meanOf = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Mean loss over seeds per step for each trained method. */
function meanCurves(report) {
  const out = new Map();
  for (const method of [...new Set((report.curves ?? []).map((c) => c.method))]) {
    const cs = report.curves.filter((c) => c.method === method);
    const n = Math.min(...cs.map((c) => c.losses.length));
    out.set(method, Array.from({ length: n }, (_, i) => meanOf(cs.map((c) => c.losses[i]))));
  }
  return out;
}

function section(file) {
  const r = loadReport(file);
  const a = r.args;
  const lines = [];
  lines.push(`### ${file}`, '');
  lines.push(
    `task ${a.task} d=${a.difficulty}, base ${a.model ?? a.modelId}, senders' latent steps ${a.topology.agents.map((x) => x.latentSteps).join('/')}, ` +
      `text budget ${a.textBudget}, ${a.steps} steps x batch ${a.batch}, lr ${a.lr}, LoRA r=${a.lora.r} on ${a.lora.targets.join(',')}, ` +
      `seeds ${[...new Set(r.rows.map((x) => x.seed))].join(',')}, ${a.evalSize} episodes per split; chance ${f3(r.chance?.heldout)} (heldout), ${f3(r.chance?.ood)} (ood)` +
      (a.seconds ? `; ${Math.round(a.seconds)} s on ${a.device}` : a.device ? `; on ${a.device}` : ''),
    '',
  );
  lines.push('| method | split | accuracy [95% interval] | validity | answer entropy (nats) | message floats | message tokens | train s/seed |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const s of r.summary) {
    lines.push(
      `| ${s.method} | ${s.split} | ${accuracyWords(accuracyOf(r, s.method, s.split))} | ${s.validity.toFixed(2)} | ${s.entropy.toFixed(2)} | ${Math.round(s.messageFloats)} | ${s.messageTokens.toFixed(1)} | ${Math.round(s.trainSeconds)} |`,
    );
  }
  const paired = pairedOf(r);
  if (paired.length) {
    const basis = paired.some((c) => c.basis === 'seeds') ? ' (this report has no per-episode outcomes: unpaired, over seeds only)' : '';
    lines.push('', `Comparisons: A - B with its 95% bootstrap interval over seeds and shared episodes; "ahead" iff it excludes 0${basis}:`, '', stats.formatPaired(paired));
  }
  const V = vocabOf(r).V;
  const bounds = r.bounds ?? (Number.isFinite(V) ? stats.reportBounds(a.task, a.difficulty, V, a.textBudget, r.rows.some((x) => LATENT_METHODS.includes(x.method)) ? latentStepsOf(r) : [], ['heldout', 'ood']) : null);
  if (bounds) lines.push('', `What a message could carry${r.bounds ? '' : ' (computed here: the report predates bounds)'}:`, '', stats.formatBounds(bounds));
  const curves = meanCurves(r);
  if (curves.size) {
    const n = Math.max(...[...curves.values()].map((c) => c.length));
    const every = Math.max(1, Math.round(n / 8));
    const cols = [];
    for (let i = every; i <= n; i += every) cols.push(i);
    lines.push('', `training loss, mean over seeds, averaged over the ${every} steps before each column:`, '');
    lines.push(`| method | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`);
    for (const [m, c] of curves) lines.push(`| ${m} | ${cols.map((i) => f3(meanOf(c.slice(Math.max(0, i - every), i)))).join(' | ')} |`);
  }
  if (r.probes?.length) lines.push('', 'What the received K/V holds: the best linear probe per target (fitted on train episodes, scored on held-out):', '', stats.formatProbes(r.probes));
  if (r.bits?.length) lines.push('', 'Held-out accuracy with the received K/V quantised to k bits per float:', '', stats.formatBits(r.bits));
  lines.push('', 'Findings as the run wrote them:', '', ...r.findings.map((f) => `- ${f}`), '');
  return lines.join('\n');
}

function svg(file) {
  const curves = meanCurves(load(file));
  const W = 640, H = 300, L = 50, R = 140, T = 14, B = 34;
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
  const smooth = (c, k) => c.map((_, i) => meanOf(c.slice(Math.max(0, i - k + 1), i + 1)));
  const series = [...curves].map(([m, c]) => [m, smooth(c, 25)]);
  const all = series.flatMap(([, c]) => c);
  const n = Math.max(...series.map(([, c]) => c.length));
  const lo = Math.floor(Math.min(...all) * 10) / 10, hi = Math.ceil(Math.max(...all) * 10) / 10;
  const x = (i) => L + (i / (n - 1)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`];
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    out.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`);
  }
  for (let k = 0; k <= 4; k++) {
    const i = Math.round(((n - 1) * k) / 4);
    out.push(`<text x="${x(i)}" y="${H - B + 16}" text-anchor="middle">${i + 1}</text>`);
  }
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle">step (training loss, mean over seeds, 25-step moving average)</text>`);
  series.forEach(([m, c], j) => {
    const d = c.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${colors[j % colors.length]}" stroke-width="1.5"/>`);
    out.push(`<text x="${W - R + 8}" y="${T + 14 + 16 * j}" fill="${colors[j % colors.length]}">${m}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

const argv = process.argv.slice(2);
if (!argv.length || argv.includes('--help')) {
  console.log('usage: node bench/report.mjs FILE.json [...] | node bench/report.mjs --svg OUT.svg FILE.json');
} else if (argv[0] === '--svg') {
  writeFileSync(argv[1], svg(argv[2]));
} else {
  console.log(argv.map(section).join('\n'));
}
