// The comparisons of an experiment report, from its per-episode outcomes (src/mas/stats.ts for the
// scheme): each method's accuracy with its interval (or its modes), the paired difference of the
// pairs the findings discuss, and every control against the same method's own uncontrolled
// episodes, with its verdict about chance. Used by the runner's findings (experiment.ts), the CLI,
// the page's Compare and bench/report-lib.mjs, so all of them say the same. Plain data, no GPU.
import type { Split } from '../tasks/tasks';
import { CONTROL_NAMES, type ControlName, type ExperimentReport } from './run-types';
import {
  accuracyInterval, detectModes, formatDifference, MIN_SEEDS, pairedDifference, parseOutcomes, seedsDifference, seedsInterval, verdictOf,
  type Interval, type Modes, type OutcomeTable,
} from './stats';

/** The pairs the findings compare, A then B, where both are in the report. */
export const PAIRS: readonly (readonly [string, string])[] = [
  ['diffmas', 'single'], ['diffmas', 'latentmas'], ['diffmas', 'text'], ['diffmas', 'text-trained'], ['diffmas', 'diffmas-detached'],
  ['diffmas', 'single-trained'], ['diffmas-full', 'latentmas-full'], ['latentmas', 'single'], ['text', 'single'], ['text', 'latentmas'],
  ['text-trained', 'text'], ['skyline', 'diffmas'], ['skyline-trained', 'diffmas'], ['skyline-trained', 'skyline'],
];

/** One comparison: A - B on a split (a control: A is the method under it, B the same method uncontrolled). */
export interface PairedComparison {
  split: Split;
  a: string;
  b: string;
  control?: ControlName;
  /** 'episodes': per-episode paired bootstrap; 'seeds': the report has no outcomes, seeds only and unpaired. */
  basis: 'episodes' | 'seeds';
  seedsA: number;
  seedsB: number;
  /** Shared episodes per seed (0 on the seeds basis). */
  episodes: number;
  /** Mean accuracy of A and of B, and A - B with its 95% interval (null: fewer than MIN_SEEDS seeds). */
  meanA: number;
  meanB: number;
  diff: number;
  lo: number | null;
  hi: number | null;
  /** 'a' or 'b': that side is ahead and the interval excludes 0; 'tie': it holds 0; 'no-interval'. */
  verdict: 'a' | 'b' | 'tie' | 'no-interval';
  /** Where a side's seeds split into modes. */
  modesA: Modes | null;
  modesB: Modes | null;
  /** Controls: chance, the control's own accuracy interval, and whether it is at chance (its interval
   * reaches chance; without an interval, within two binomial SE of it: chanceBand says which). */
  chance?: number;
  controlLo?: number | null;
  controlHi?: number | null;
  atChance?: boolean;
  chanceBand?: string;
  /** Without an interval: two binomial standard errors over the control's episodes (the band above chance). */
  chanceBandWidth?: number | null;
}

type Rows = ExperimentReport['rows'];
type Report = Pick<ExperimentReport, 'rows' | 'controls'> & Partial<Pick<ExperimentReport, 'episodes' | 'chance'>>;

/** Per-seed outcome strings as a table (seed order), or null when any row lacks them or they differ in length. */
function table(rows: { seed: number; outcomes?: string }[]): OutcomeTable | null {
  if (!rows.length || rows.some((r) => typeof r.outcomes !== 'string')) return null;
  const t = [...rows].sort((x, y) => x.seed - y.seed).map((r) => parseOutcomes(r.outcomes!));
  return t.every((x) => x.length === t[0].length && x.length > 0) ? t : null;
}

const rowsOf = (report: Report, method: string, split: Split): Rows => report.rows.filter((r) => r.method === method && r.split === split);
const controlRows = (report: Report, method: string, control: ControlName) => report.controls.filter((c) => c.method === method && c.control === control);

/** The outcome table of (method, split), or of a control on heldout; null without per-episode data. */
export function outcomesOf(report: Report, method: string, split: Split, control?: ControlName): OutcomeTable | null {
  return table(control ? controlRows(report, method, control) : rowsOf(report, method, split));
}

export interface AccuracySummary extends Interval {
  modes: Modes | null;
}

function summaryOf(t: OutcomeTable | null, accs: number[]): AccuracySummary {
  const iv = t ? accuracyInterval(t) : seedsInterval(accs);
  return { ...iv, modes: detectModes(accs) };
}

/** One method's accuracy on a split: the bootstrap interval (episodes, or seeds for an old report) and its modes. */
export function accuracySummary(report: Report, method: string, split: Split): AccuracySummary | null {
  const rows = rowsOf(report, method, split);
  if (!rows.length) return null;
  return summaryOf(outcomesOf(report, method, split), [...rows].sort((x, y) => x.seed - y.seed).map((r) => r.accuracy));
}

function compare(split: Split, a: string, b: string, ta: OutcomeTable | null, tb: OutcomeTable | null, accA: number[], accB: number[]): PairedComparison {
  const paired = ta && tb && ta[0].length === tb[0].length;
  const d = paired ? pairedDifference(ta, tb) : seedsDifference(accA, accB);
  return {
    split, a, b, basis: d.basis, seedsA: accA.length, seedsB: accB.length, episodes: d.episodes,
    meanA: accA.reduce((x, y) => x + y, 0) / accA.length, meanB: accB.reduce((x, y) => x + y, 0) / accB.length,
    diff: d.mean, lo: d.lo, hi: d.hi, verdict: verdictOf(d), modesA: detectModes(accA), modesB: detectModes(accB),
  };
}

const accsOf = (rows: { seed: number; accuracy: number }[]) => [...rows].sort((x, y) => x.seed - y.seed).map((r) => r.accuracy);

/**
 * Every comparison of the report: the PAIRS present on each split, then each control of each
 * method against that method's uncontrolled heldout episodes (paired on seed and episode).
 */
export function pairedComparisons(report: Report, splits: readonly Split[] = ['heldout', 'ood']): PairedComparison[] {
  const out: PairedComparison[] = [];
  // episodes per seed, for a control's chance band where there is no interval
  const perSeed = Number(report.rows[0]?.episodes ?? NaN);
  for (const split of splits) {
    for (const [a, b] of PAIRS) {
      const ra = rowsOf(report, a, split);
      const rb = rowsOf(report, b, split);
      if (!ra.length || !rb.length) continue;
      out.push(compare(split, a, b, table(ra), table(rb), accsOf(ra), accsOf(rb)));
    }
  }
  const chance = report.chance?.heldout ?? NaN;
  const methods = [...new Set(report.controls.map((c) => c.method))];
  for (const m of methods) {
    const own = rowsOf(report, m, 'heldout');
    for (const control of CONTROL_NAMES) {
      const cr = controlRows(report, m, control);
      if (!cr.length) continue;
      // pair each control seed with the same seed's uncontrolled run (when every seed has both)
      const seeds = new Set(cr.map((c) => c.seed));
      const mine = own.filter((r) => seeds.has(r.seed));
      const ta = table(cr);
      const tb = mine.length === cr.length ? table(mine) : null;
      const accA = accsOf(cr);
      const c: PairedComparison = own.length
        ? compare('heldout', m, m, ta, tb, accA, accsOf(mine.length === cr.length ? mine : own))
        : { split: 'heldout', a: m, b: m, basis: 'seeds', seedsA: cr.length, seedsB: 0, episodes: 0, meanA: accA.reduce((x, y) => x + y, 0) / accA.length, meanB: NaN, diff: NaN, lo: null, hi: null, verdict: 'no-interval', modesA: null, modesB: null };
      c.control = control;
      Object.assign(c, chanceVerdict(ta, accA, chance, perSeed));
      out.push(c);
    }
  }
  return out;
}

/**
 * Whether a control's accuracy is at chance: with >= MIN_SEEDS seeds, when its 95% interval (seeds x
 * episodes, or seeds only for a report without outcomes) reaches chance or lies below it; with fewer,
 * when its mean is within two binomial standard errors of chance over every episode it saw. The
 * sentence chanceBand names which rule decided and the numbers.
 */
function chanceVerdict(t: OutcomeTable | null, accs: number[], chance: number, perSeed: number): Pick<PairedComparison, 'chance' | 'controlLo' | 'controlHi' | 'atChance' | 'chanceBand' | 'chanceBandWidth'> {
  const mean = accs.reduce((x, y) => x + y, 0) / accs.length;
  if (!Number.isFinite(chance)) return { chance, controlLo: null, controlHi: null, chanceBandWidth: null, chanceBand: 'the report states no chance level: no chance verdict' };
  if (accs.length >= MIN_SEEDS) {
    const iv = t ? accuracyInterval(t) : seedsInterval(accs);
    const at = iv.lo! <= chance;
    // An interval wholly below chance is "at chance or below" too, but it does not reach chance: say which.
    const where = !at ? 'lies above' : iv.hi! < chance ? 'lies below' : 'reaches';
    return { chance, controlLo: iv.lo, controlHi: iv.hi, atChance: at, chanceBandWidth: null, chanceBand: `its 95% interval [${iv.lo!.toFixed(3)}, ${iv.hi!.toFixed(3)}] ${where} chance ${chance.toFixed(3)}` };
  }
  const episodes = (t ? t[0].length : perSeed) * accs.length;
  const band = 2 * Math.sqrt((chance * (1 - chance)) / episodes);
  const yes = mean <= chance + band;
  return {
    chance, controlLo: null, controlHi: null, atChance: yes, chanceBandWidth: band,
    chanceBand: `${accs.length} seed${accs.length === 1 ? '' : 's'}, no interval: mean ${mean.toFixed(3)} ${yes ? 'within' : 'beyond'} 2 binomial SE (${band.toFixed(3)}, over ${episodes} episodes) of chance ${chance.toFixed(3)}`,
  };
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

/** The verdict of a comparison in a few words. */
export function verdictWords(c: PairedComparison): string {
  if (c.verdict === 'no-interval') return `no interval (< ${MIN_SEEDS} seeds)`;
  if (c.verdict === 'tie') return 'no reliable difference';
  return `${c.verdict === 'a' ? c.a : c.b} ahead`;
}

/** The comparisons as two Markdown tables: the pairs, then the controls against their own episodes. */
export function formatPaired(list: readonly PairedComparison[]): string {
  const iv = (c: PairedComparison) => formatDifference({ mean: c.diff, lo: c.lo, hi: c.hi, seeds: Math.min(c.seedsA, c.seedsB), episodes: c.episodes, basis: c.basis });
  const basis = (c: PairedComparison) => (c.basis === 'episodes' ? `paired, ${c.episodes} episodes` : 'unpaired, seeds only');
  const pairs = list.filter((c) => !c.control);
  const controls = list.filter((c) => c.control);
  const lines: string[] = [];
  if (pairs.length) {
    lines.push('| split | A | B | A - B [95% interval] | seeds | basis | verdict |', '|---|---|---|---:|---:|---|---|');
    for (const c of pairs) lines.push(`| ${c.split} | ${c.a} | ${c.b} | ${iv(c)} | ${c.seedsA}/${c.seedsB} | ${basis(c)} | ${verdictWords(c)} |`);
  }
  if (controls.length) {
    if (lines.length) lines.push('');
    lines.push('| method | control | accuracy | control - uncontrolled [95%] | basis | at chance? |', '|---|---|---:|---:|---|---|');
    for (const c of controls) {
      const acc = c.controlLo !== undefined && c.controlLo !== null ? `${f3(c.meanA)} [${f3(c.controlLo)}, ${f3(c.controlHi!)}]` : f3(c.meanA);
      lines.push(`| ${c.a} | ${c.control} | ${acc} | ${iv(c)} | ${basis(c)} | ${c.atChance === undefined ? 'n/a' : c.atChance ? 'yes' : 'no'}: ${c.chanceBand} |`);
    }
  }
  return lines.length ? lines.join('\n') : '(no pair of methods to compare)';
}
