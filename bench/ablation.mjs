#!/usr/bin/env node
// Seeds that escape the values plateau (issue 22 item 2): for each arm of the training ablation
// (bench/experiments.sh section ablation: one experiment report per arm), how many of its seeds leave
// the plateau, and each seed's accuracy.
//   node bench/ablation.mjs [--split heldout|ood] [--method diffmas] FILE.json [...]
// The rule, computed per seed from the report, never assumed: a seed escapes when the 95% Wilson
// interval of its accuracy over the evaluated episodes (k correct of n: the row's per-episode outcomes,
// else round(accuracy x episodes); the same interval as src/mas/base-eval.ts wilson95) lies wholly
// above the values-only bound the report stores (bounds.valuesOnly[split].accuracy,
// src/mas/bounds.ts: the accuracy of a message that carries the table's values but not their keys,
// 0.383 on lookup d3 held-out). A seed whose interval reaches down to the bound or below stays.
// An arm is named by its report's file name less the prefix the reports share (toy-lookup-d3-ablation-).
// --against FILE (e.g. the main table's bench/results/toy-lookup-d3.json, whose diffmas is the preset):
// each arm's seed minus the same seed there, on the same evaluation episodes (checked, or refused), as a
// paired difference over episodes with a normal 95% interval (mean +- 1.96 sd / sqrt(n) of the per-episode
// differences); an arm that beats the preset does so seed by seed, not by a lucky mean.
// Plain Node, no dependencies.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const Z95 = 1.959963984540054;

/** The Wilson 95% interval of k successes in n (src/mas/base-eval.ts wilson95). */
export function wilson95(k, n) {
  if (!(n > 0)) return [NaN, NaN];
  const p = k / n;
  const z2n = (Z95 * Z95) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (Z95 * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n))) / (1 + z2n);
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

/** Correct answers and episodes of a row: its outcomes ('1'/'0' per episode) where present. */
export function countsOf(row) {
  if (typeof row.outcomes === 'string' && row.outcomes.length) {
    if (!/^[01]+$/.test(row.outcomes)) throw new Error(`seed ${row.seed}: outcomes must be a string of 0 and 1`);
    const k = [...row.outcomes].filter((c) => c === '1').length;
    return { k, n: row.outcomes.length };
  }
  if (!(Number.isInteger(row.episodes) && row.episodes > 0) || !Number.isFinite(row.accuracy)) throw new Error(`seed ${row.seed}: the row has neither outcomes nor accuracy and episodes`);
  return { k: Math.round(row.accuracy * row.episodes), n: row.episodes };
}

/** The values-only bound the report stores for `split`; an error that says so where it has none. */
export function valuesOnlyBound(report, split) {
  const b = report.bounds?.valuesOnly?.[split]?.accuracy;
  if (!Number.isFinite(b)) throw new Error(`${report.file ?? 'the report'} stores no values-only bound for ${split} (bounds.valuesOnly.${split}.accuracy; lookup reports of the current runner have it)`);
  return b;
}

/**
 * One arm: per seed of `method` on `split`, its accuracy, k of n, Wilson interval and whether it
 * escapes (interval wholly above the bound); and how many escape.
 */
export function analyseArm(report, { split = 'heldout', method = 'diffmas' } = {}) {
  const bound = valuesOnlyBound(report, split);
  const rows = report.rows.filter((r) => r.method === method && r.split === split).sort((a, b) => a.seed - b.seed);
  if (!rows.length) throw new Error(`${report.file ?? 'the report'} has no ${method} rows on ${split}`);
  const seeds = rows.map((r) => {
    const { k, n } = countsOf(r);
    const [lo, hi] = wilson95(k, n);
    return { seed: r.seed, accuracy: k / n, k, n, lo, hi, escapes: lo > bound };
  });
  return { bound, split, method, seeds, escaped: seeds.filter((s) => s.escapes).length, n: seeds.length };
}

/** Arm names: each file's base name less the prefix all of them share (up to a '-'). */
export function armNames(files) {
  const bases = files.map((f) => path.basename(f).replace(/\.json$/, ''));
  if (bases.length < 2) return bases;
  let prefix = bases[0];
  for (const b of bases) while (!b.startsWith(prefix)) prefix = prefix.slice(0, -1);
  const cut = prefix.lastIndexOf('-') + 1;
  return bases.map((b) => b.slice(cut) || b);
}

/**
 * Per seed present in both, the arm's accuracy minus the reference's on the same episodes: the mean
 * per-episode difference and its normal 95% interval. Refuses reports evaluated on other episodes.
 */
export function pairedAgainst(report, reference, { split = 'heldout', method = 'diffmas' } = {}) {
  const a = report.episodes?.[split], b = reference.episodes?.[split];
  if (!Array.isArray(a) || !Array.isArray(b)) throw new Error(`${split}: both reports must list their evaluation episodes (report.episodes.${split})`);
  if (a.length !== b.length || a.some((k, i) => k !== b[i])) throw new Error(`${reference.file ?? 'the reference'} was evaluated on other ${split} episodes than ${report.file ?? 'the arm'}: no paired comparison`);
  const bySeed = (r) => new Map(r.rows.filter((x) => x.method === method && x.split === split && typeof x.outcomes === 'string').map((x) => [x.seed, x.outcomes]));
  const mine = bySeed(report), theirs = bySeed(reference);
  const out = [];
  for (const [seed, o] of [...mine].sort((x, y) => x[0] - y[0])) {
    const p = theirs.get(seed);
    if (p === undefined) continue;
    if (p.length !== o.length) throw new Error(`seed ${seed}: ${o.length} outcomes against ${p.length}`);
    const d = [...o].map((c, i) => Number(c) - Number(p[i]));
    const n = d.length, mean = d.reduce((s, x) => s + x, 0) / n;
    const sd = Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, n - 1));
    const half = Z95 * sd / Math.sqrt(n);
    out.push({ seed, diff: mean, lo: mean - half, hi: mean + half, n });
  }
  return out;
}

const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;

export function formatArms(arms) {
  const lines = [];
  for (const { name, arm, against } of arms) {
    lines.push(`${name}: ${arm.escaped} of ${arm.n} seeds escape (${arm.method}, ${arm.split}; 95% Wilson interval wholly above the values-only bound ${arm.bound.toFixed(3)})`);
    const vs = new Map((against?.seeds ?? []).map((d) => [d.seed, d]));
    for (const s of arm.seeds) {
      const d = vs.get(s.seed);
      const paired = d ? `; against ${against.name}: ${signed(d.diff)} [${signed(d.lo)}, ${signed(d.hi)}]` : '';
      lines.push(`  seed ${s.seed}: ${s.accuracy.toFixed(3)} (${s.k}/${s.n}) [${s.lo.toFixed(3)}, ${s.hi.toFixed(3)}]${s.escapes ? ' escapes' : ''}${paired}`);
    }
    if (against?.seeds.length) {
      const up = against.seeds.filter((d) => d.lo > 0).length, down = against.seeds.filter((d) => d.hi < 0).length;
      lines.push(`  against ${against.name}, same seeds and episodes: ${up} of ${against.seeds.length} seeds higher, ${down} lower, ${against.seeds.length - up - down} within their paired interval`);
    }
  }
  return lines.join('\n');
}

function main(argv) {
  const opts = { split: 'heldout', method: 'diffmas', against: null };
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--split' || a === '--method' || a === '--against') {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      opts[a.slice(2)] = argv[++i];
    } else if (a === '--help' || a === '-h') {
      console.log('usage: node bench/ablation.mjs [--split heldout|ood] [--method diffmas] [--against REFERENCE.json] FILE.json [...]');
      return;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else files.push(a);
  }
  if (!files.length) throw new Error('give the arms\u2019 experiment reports (bench/results/toy-lookup-d3-ablation-*.json)');
  if (opts.split !== 'heldout' && opts.split !== 'ood') throw new Error(`--split must be heldout or ood, got ${opts.split}`);
  const names = armNames(files);
  const load = (f) => {
    let report;
    try {
      report = { ...JSON.parse(readFileSync(f, 'utf8')), file: f };
    } catch (e) {
      throw new Error(`${f}: not a JSON report (${e.message})`);
    }
    if (!Array.isArray(report.rows)) throw new Error(`${f}: not an experiment report (no rows)`);
    return report;
  };
  const reference = opts.against ? load(opts.against) : null;
  const arms = files.map((f, i) => {
    const report = load(f);
    const against = reference ? { name: path.basename(opts.against).replace(/\.json$/, ''), seeds: pairedAgainst(report, reference, opts) } : undefined;
    return { name: names[i], arm: analyseArm(report, opts), against };
  });
  console.log(formatArms(arms));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`ablation: ${e.message}`);
    process.exit(1);
  }
}
