// The computed bounds of bench/EXPERIMENT.md: for every grid setting, split and message budget, the
// best accuracy any protocol of B tokens from the base's vocabulary can reach (Fano, or exact where
// the message can name the whole content) and the receiver-alone floor, and lookup's values-only
// floors. Nothing here is measured: it is src/mas/bounds.ts evaluated, written as a JSON report so
// that every such figure in EXPERIMENT.md comes from a file.
//   node bench/bounds.mjs [--model public/models/toy] [--out bench/results/bounds.json]
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { ROOT, stats, parseArgs, isMain } from './report-lib.mjs';

export const SETTINGS = [['lookup', 1], ['lookup', 2], ['lookup', 3], ['relay', 1], ['relay', 2], ['arith', 1]];
/** Issue 22's tasks where the channels can differ: index of 4 and 8 digits, relay of 4 and 6 letters (rows carry the Hamming-sphere ceiling too). */
export const CHANNEL_SETTINGS = [['index', 3], ['index', 5], ['relay', 3], ['relay', 5]];
export const BUDGETS = [1, 2, 4, 8, 16];
const SPLITS = ['heldout', 'ood'];

/** Every bound for a vocabulary of V tokens. */
export function allBounds(V) {
  const rows = [];
  for (const [task, d] of [...SETTINGS, ...CHANNEL_SETTINGS]) {
    for (const split of SPLITS) {
      for (const B of BUDGETS) rows.push(stats.budgetBound(task, d, split, B, V));
    }
  }
  const valuesOnly = [2, 3, 4, 6].map((n) => stats.valuesOnly(n));
  return { vocab: V, budgets: BUDGETS, rows, valuesOnly };
}

if (isMain(import.meta.url)) {
  const { opts: flags } = parseArgs(process.argv.slice(2), ['model', 'out']);
  const model = flags.model ?? 'public/models/toy';
  const V = Number(JSON.parse(readFileSync(path.resolve(ROOT, model, 'config.json'), 'utf8')).vocab_size);
  const out = flags.out ?? path.join(ROOT, 'bench/results/bounds.json');
  const report = { model, ...allBounds(V) };
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(report, null, 1) + '\n');
  renameSync(tmp, out);
  const f3 = (x) => x.toFixed(3);
  console.log(`| setting | split | ${BUDGETS.map((b) => `B=${b}`).join(' | ')} | receiver alone |`);
  console.log(`|---|---|${BUDGETS.map(() => '---:').join('|')}|---:|`);
  for (const [task, d] of [...SETTINGS, ...CHANNEL_SETTINGS]) {
    for (const split of SPLITS) {
      const rs = report.rows.filter((r) => r.task === task && r.difficulty === d && r.split === split);
      // where the Hamming-sphere ceiling applies (index, relay): "sphere / Fano"
      const cell = (r) => (r.exact ? '1 (exact)' : r.sphere !== undefined ? `${f3(r.sphere)} / ${f3(r.ceiling)}` : f3(r.ceiling));
      console.log(`| ${task} d${d} | ${split} | ${rs.map(cell).join(' | ')} | ${f3(rs[0].floor)} |`);
    }
  }
  console.log('(index and relay: the Hamming-sphere ceiling / Fano\'s; the smaller is the bound)');
  for (const v of report.valuesOnly) console.log(`values-only, ${v.entries} entries: accuracy ${f3(v.accuracy)}, loss ${f3(v.natsPerToken)} nats per answer token (with <eos>)`);
  console.log(`wrote ${path.relative(process.cwd(), out)} (V = ${V} from ${model})`);
}
