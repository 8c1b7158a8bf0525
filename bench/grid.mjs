#!/usr/bin/env node
// The grid of bench/EXPERIMENT.md from experiment reports of several (task, difficulty) settings on
// one base (`npm run experiment -- --json FILE`), as Markdown:
//   1. the main table: one row per setting and split, one column per method present, accuracy
//      mean and 95% bootstrap interval over seeds and episodes, or "k of n seeds reach >= x" where
//      the seeds split into modes (src/mas/stats.ts, as the runner's findings);
//   2. the controls of every message-sending method, each against the method's own uncontrolled
//      episodes (paired), marked at chance or above it by the runner's rule (src/mas/paired.ts);
//   3. where the gradient stops: diffmas against diffmas-detached, the paired difference with its
//      interval; "beats" iff the interval excludes 0.
// Under every table: the report each number comes from.
//   node bench/grid.mjs [--split heldout,ood] FILE.json [...]
// When several reports hold the same (setting, method) — a grid run and a budget run, say — the
// one with the setting's main message budget is used (that of the report with the most methods),
// then the one with more seeds, then the first given; the others are listed as not used.
// Plain Node, no dependencies.
import {
  CONTROLS, LATENT_METHODS, METHODS, TEXT_METHODS, accuracyWords, bLabel, compareAcross, compareSettings, controlAccuracies, differenceWords,
  differencesNote, f3, isMain, latentStepsOf, loadReport, mLabel, pairedOf, parseArgs, settingOf, stats, summaryOf,
} from './report-lib.mjs';

const methodsOf = (r) => [...new Set([...(r.summary ?? []), ...r.rows].map((x) => x.method))];
const sameSteps = (a, b) => latentStepsOf(a).join('/') === latentStepsOf(b).join('/');

/**
 * Groups reports by setting (base, task, difficulty) and picks, per method, the report it is read
 * from. Returns settings sorted (lookup, relay, arith; difficulty), each
 * { setting, reports, main, pick: Map(method -> report), unused: [{ method, file, why }] }.
 */
export function pickGrid(reports) {
  const groups = new Map();
  for (const r of reports) {
    const s = settingOf(r);
    if (!groups.has(s.key)) groups.set(s.key, { setting: s, reports: [] });
    groups.get(s.key).reports.push(r);
  }
  const out = [];
  for (const g of groups.values()) {
    // the report with the most methods sets the setting's message budget
    const main = g.reports.reduce((best, r) => (methodsOf(r).length > methodsOf(best).length ? r : best));
    const fits = (r, m) => (TEXT_METHODS.includes(m) ? r.args.textBudget === main.args.textBudget : LATENT_METHODS.includes(m) ? sameSteps(r, main) : true);
    const seeds = (r, m) => summaryOf(r, m, 'heldout')?.seeds ?? summaryOf(r, m, 'ood')?.seeds ?? 0;
    const pick = new Map(), unused = [];
    for (const m of METHODS.filter((x) => g.reports.some((r) => methodsOf(r).includes(x)))) {
      const cands = g.reports.filter((r) => methodsOf(r).includes(m));
      const best = cands.reduce((b, r) => {
        const k = (x) => [fits(x, m) ? 1 : 0, seeds(x, m)];
        const [fb, sb] = k(b), [fr, sr] = k(r);
        return fr > fb || (fr === fb && sr > sb) ? r : b;
      });
      pick.set(m, best);
      for (const r of cands) {
        if (r === best) continue;
        const why = !fits(r, m) && fits(best, m)
          ? `another message budget, ${TEXT_METHODS.includes(m) ? bLabel(r) : mLabel(r)}`
          : seeds(r, m) < seeds(best, m) ? `fewer seeds, ${seeds(r, m)}` : 'given later';
        unused.push({ method: m, file: r.file, why });
      }
    }
    out.push({ setting: g.setting, reports: g.reports, main, pick, unused });
  }
  return out.sort((a, b) => compareSettings(a.setting, b.setting));
}

const bases = (grid) => [...new Set(grid.map((g) => g.setting.base))];
const labelOf = (g, grid) => (bases(grid).length > 1 ? `${g.setting.base} ${g.setting.label}` : g.setting.label);
const chanceOf = (r, split) => (typeof r.chance?.[split] === 'number' ? r.chance[split] : NaN);
const range = (xs) => (xs.length ? (Math.min(...xs) === Math.max(...xs) ? `${xs[0]}` : `${Math.min(...xs)}–${Math.max(...xs)}`) : '–');

/** "Sources:" lines: for each setting, which file each method was read from, and what was not used. */
function sources(grid, methods) {
  const lines = ['', 'Sources:'];
  for (const g of grid) {
    const byFile = new Map();
    for (const m of methods) {
      const r = g.pick.get(m);
      if (!r) continue;
      if (!byFile.has(r.file)) byFile.set(r.file, []);
      byFile.get(r.file).push(m);
    }
    if (!byFile.size) continue;
    const used = [...byFile].map(([f, ms]) => `\`${f}\` (${ms.join(', ')}; ${mLabel(g.pick.get(ms[0]))}, ${bLabel(g.pick.get(ms[0]))})`);
    lines.push(`- ${labelOf(g, grid)}: ${used.join('; ')}`);
    const skipped = new Map();
    for (const u of g.unused.filter((x) => methods.includes(x.method))) {
      const k = `\`${u.file}\` (${u.why})`;
      skipped.set(k, [...(skipped.get(k) ?? []), u.method]);
    }
    if (skipped.size) lines.push(`  - not used: ${[...skipped].map(([k, ms]) => `${ms.join(', ')} of ${k}`).join('; ')}`);
    const note = differencesNote([...new Set([...byFile.keys()])].map((f) => g.reports.find((r) => r.file === f)));
    if (note) lines.push(`  - ${note}`);
  }
  return lines;
}

/** Table 1: rows = setting × split, columns = the methods present, accuracy mean ± 95% CI. */
export function mainTable(grid, splits = ['heldout', 'ood']) {
  const methods = METHODS.filter((m) => grid.some((g) => g.pick.has(m)));
  const lines = [
    `| setting | split | chance | ${methods.join(' | ')} | seeds | budget |`,
    `|---|---|---:|${methods.map(() => '---:|').join('')}---:|---|`,
  ];
  for (const g of grid) {
    for (const split of splits) {
      const cells = methods.map((m) => (g.pick.has(m) ? summaryOf(g.pick.get(m), m, split) : null));
      if (cells.every((c) => !c)) continue;
      const seeds = cells.filter(Boolean).map((c) => c.seeds);
      const most = Math.max(...seeds);
      const cell = (c) => (c ? `${accuracyWords(c.acc)}${c.seeds < most && !c.acc?.modes && c.acc?.lo !== null ? ` (${c.seeds} seeds)` : ''}` : '–');
      const budget = [
        ...new Set(methods.filter((m) => LATENT_METHODS.includes(m) && g.pick.has(m)).map((m) => mLabel(g.pick.get(m)))),
        ...(g.pick.has('text') ? [bLabel(g.pick.get('text'))] : []),
      ].join(', ') || '–';
      lines.push(`| ${labelOf(g, grid)} | ${split} | ${f3(chanceOf(g.main, split))} | ${cells.map(cell).join(' | ')} | ${range(seeds)} | ${budget} |`);
    }
  }
  lines.push(
    '',
    `Accuracy: mean over seeds [95% bootstrap interval over seeds and episodes, percentile, ${stats.REPLICATES} replicates] (src/mas/stats.ts; ` +
      `over seeds only for a report without per-episode outcomes); no interval below ${stats.MIN_SEEDS} seeds; where a gap above ${stats.MODE_GAP} ` +
      'splits the seeds, "k of n seeds reach >= x" instead; – = not run.',
    ...sources(grid, methods),
  );
  return lines.join('\n');
}

/** Table 2: every message-sending method's controls on the held-out split, each against its own uncontrolled episodes, marked at chance (✓) or above (✗). */
export function controlsTable(grid) {
  const present = CONTROLS.filter((c) => grid.some((g) => [...g.pick].some(([m, r]) => controlAccuracies(r, m, c).length)));
  const lines = [
    `| setting | method | uncontrolled | ${present.join(' | ')} | chance | above chance under |`,
    `|---|---|---:|${present.map(() => '---:|').join('')}---:|---|`,
  ];
  const methods = [];
  const rules = new Set();
  for (const g of grid) {
    for (const m of [...TEXT_METHODS, ...LATENT_METHODS]) {
      const r = g.pick.get(m);
      if (!r) continue;
      const own = summaryOf(r, m, 'heldout');
      const list = pairedOf(r).filter((c) => c.control && c.a === m);
      if (!list.length) continue;
      if (!methods.includes(m)) methods.push(m);
      const above = [];
      const cells = present.map((k) => {
        const c = list.find((x) => x.control === k);
        if (!c) return '–';
        rules.add(c.controlLo === null || c.controlLo === undefined ? 'band' : 'interval');
        if (c.atChance === false) above.push(k);
        const mark = c.atChance === undefined ? '' : c.atChance ? ' ✓' : ' ✗';
        return `${f3(c.meanA)}${mark} (${differenceWords(c)})`;
      });
      const chance = list[0].chance;
      lines.push(`| ${labelOf(g, grid)} | ${m} | ${own ? accuracyWords(own.acc) : '–'} | ${cells.join(' | ')} | ${f3(chance)} | ${above.length ? above.join(', ') : 'none'} |`);
    }
  }
  if (lines.length === 2) return '(no report holds a control)';
  lines.push(
    '',
    'Held-out accuracy under each control, mean over seeds, and in brackets its difference from the same method\u2019s uncontrolled run ' +
      '(paired per episode where the report has per-episode outcomes; over seeds only otherwise). ✓: at chance; ✗: above it. ' +
      (rules.has('interval') ? `With ${stats.MIN_SEEDS} seeds or more: at chance when the control\u2019s 95% bootstrap interval reaches chance. ` : '') +
      (rules.has('band') ? 'With fewer: when its mean is within two binomial standard errors of chance over every episode it saw. ' : '') +
      '– = not run.',
    ...sources(grid, methods),
  );
  return lines.join('\n');
}

/** Table 3: diffmas (gradient through the sender) against diffmas-detached (only the receiver learns), paired. */
export function gradientTable(grid, splits = ['heldout', 'ood']) {
  const lines = [
    '| setting | split | diffmas | diffmas-detached | difference [95% interval] | basis | verdict |',
    '|---|---|---:|---:|---:|---|---|',
  ];
  const methods = ['diffmas', 'diffmas-detached'];
  for (const g of grid) {
    const ra = g.pick.get('diffmas'), rb = g.pick.get('diffmas-detached');
    if (!ra && !rb) continue;
    for (const split of splits) {
      const A = ra && summaryOf(ra, 'diffmas', split), B = rb && summaryOf(rb, 'diffmas-detached', split);
      const acc = (s) => (s ? `${accuracyWords(s.acc)} (${s.seeds} seeds)` : 'not run');
      if (!A || !B) {
        if (A || B) lines.push(`| ${labelOf(g, grid)} | ${split} | ${acc(A)} | ${acc(B)} | – | – | no comparison |`);
        continue;
      }
      const c = compareAcross(ra, 'diffmas', rb, 'diffmas-detached', split);
      const verdict = c.verdict === 'no-interval' ? `no interval (< ${stats.MIN_SEEDS} seeds)`
        : c.verdict === 'a' ? '**diffmas beats diffmas-detached** (the gradient through the sender helps)'
          : c.verdict === 'b' ? '**diffmas-detached beats diffmas**' : 'no reliable difference';
      const basis = c.basis === 'episodes' ? `paired, ${c.episodes} shared episodes` : 'unpaired, seeds only';
      lines.push(`| ${labelOf(g, grid)} | ${split} | ${acc(A)} | ${acc(B)} | ${differenceWords(c)} | ${basis} | ${verdict} |`);
    }
  }
  if (lines.length === 2) return '(no report holds diffmas or diffmas-detached)';
  lines.push(
    '',
    'Difference = diffmas − diffmas-detached with its 95% bootstrap interval: episodes drawn once for both methods (paired), the seeds ' +
      'of each apart (src/mas/stats.ts); a report without per-episode outcomes gives an unpaired interval over seeds only. ' +
      'One method beats the other iff the interval excludes 0.',
    ...sources(grid, methods),
  );
  return lines.join('\n');
}

/** The whole grid report (three tables with their sources). */
export function gridMarkdown(reports, { splits = ['heldout', 'ood'] } = {}) {
  const grid = pickGrid(reports);
  const b = bases(grid);
  return [
    `#### The grid (base ${b.join(', ')})`, '', mainTable(grid, splits), '',
    '#### Controls (held-out)', '', controlsTable(grid), '',
    '#### Where the gradient stops: diffmas against diffmas-detached', '', gradientTable(grid, splits), '',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  try {
    const { opts, files } = parseArgs(process.argv.slice(2), ['split']);
    if (opts.help || !files.length) {
      console.log('usage: node bench/grid.mjs [--split heldout,ood] FILE.json [...]   (Markdown on stdout: main table, controls, diffmas vs diffmas-detached)');
      process.exit(opts.help ? 0 : 1);
    }
    const splits = (opts.split ?? 'heldout,ood').split(',').filter(Boolean);
    const grid = pickGrid(files.map(loadReport));
    if (bases(grid).length > 1) console.error(`grid: the reports are on ${bases(grid).length} bases (${bases(grid).join(', ')}): the setting names say which`);
    const unused = grid.reduce((n, g) => n + g.unused.length, 0);
    if (unused) console.error(`grid: ${unused} (setting, method) results held by more than one report were not used: see "not used" under the tables`);
    console.log(gridMarkdown(files.map(loadReport), { splits }));
  } catch (e) {
    console.error(`grid: ${e.message}`);
    process.exit(1);
  }
}
