#!/usr/bin/env node
// The grid of bench/EXPERIMENT.md from experiment reports of several (task, difficulty) settings on
// one base (`npm run experiment -- --json FILE`), as Markdown:
//   1. the main table: one row per setting and split, one column per method present, accuracy
//      mean ± 95% t interval over seeds (the report's own summary);
//   2. the controls of every latent method: uncontrolled / shuffle / zero / noise / rotate, each
//      marked at chance or above it (the atChance rule of src/mas/experiment.ts);
//   3. where the gradient stops: diffmas against diffmas-detached with the verdict of the findings
//      rule of src/mas/experiment.ts (margin beyond both seed intervals and two binomial SE).
// Under every table: the report each number comes from.
//   node bench/grid.mjs [--split heldout,ood] FILE.json [...]
// When several reports hold the same (setting, method) — a grid run and a budget run, say — the
// one with the setting's main message budget is used (that of the report with the most methods),
// then the one with more seeds, then the first given; the others are listed as not used.
// Plain Node, no dependencies.
import {
  CONTROLS, LATENT_METHODS, METHODS, atChance, bLabel, compareSettings, controlAccuracies, differencesNote, evalSizeOf, f3,
  isMain, latentStepsOf, loadReport, mLabel, pairVerdict, parseArgs, settingOf, summaryOf,
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
    const fits = (r, m) => (m === 'text' ? r.args.textBudget === main.args.textBudget : LATENT_METHODS.includes(m) ? sameSteps(r, main) : true);
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
          ? `another message budget, ${m === 'text' ? bLabel(r) : mLabel(r)}`
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
      const cell = (c) => (c ? `${f3(c.accuracyMean)} ± ${f3(c.accuracyCi)}${c.seeds < most ? ` (${c.seeds} seeds)` : ''}` : '–');
      const budget = [
        ...new Set(methods.filter((m) => LATENT_METHODS.includes(m) && g.pick.has(m)).map((m) => mLabel(g.pick.get(m)))),
        ...(g.pick.has('text') ? [bLabel(g.pick.get('text'))] : []),
      ].join(', ') || '–';
      lines.push(`| ${labelOf(g, grid)} | ${split} | ${f3(chanceOf(g.main, split))} | ${cells.map(cell).join(' | ')} | ${range(seeds)} | ${budget} |`);
    }
  }
  lines.push('', 'Accuracy: mean over seeds ± half-width of the 95% t interval (the reports\u2019 summaries); – = not run.', ...sources(grid, methods));
  return lines.join('\n');
}

/** Table 2: every latent method's controls on the held-out split, each marked at chance (✓) or above (✗). */
export function controlsTable(grid) {
  const present = CONTROLS.filter((c) => grid.some((g) => [...g.pick].some(([m, r]) => controlAccuracies(r, m, c).length)));
  const missing = CONTROLS.filter((c) => !present.includes(c));
  const lines = [
    `| setting | method | uncontrolled | ${CONTROLS.join(' | ')} | chance | above chance under |`,
    `|---|---|---:|${CONTROLS.map(() => '---:|').join('')}---:|---|`,
  ];
  const methods = [];
  for (const g of grid) {
    for (const m of LATENT_METHODS) {
      const r = g.pick.get(m);
      if (!r) continue;
      const chance = chanceOf(r, 'heldout'), episodes = evalSizeOf(r);
      const own = summaryOf(r, m, 'heldout');
      const ownAccs = r.rows.filter((x) => x.method === m && x.split === 'heldout').map((x) => x.accuracy);
      const ownMark = ownAccs.length && Number.isFinite(chance) ? (atChance(ownAccs, chance, episodes).yes ? ' ✓' : ' ✗') : '';
      const above = [];
      let band = NaN;
      const cells = CONTROLS.map((c) => {
        const accs = controlAccuracies(r, m, c);
        if (!accs.length || !Number.isFinite(chance)) return accs.length ? f3(accs.reduce((a, b) => a + b, 0) / accs.length) : '–';
        const t = atChance(accs, chance, episodes);
        band = Number.isFinite(band) ? Math.max(band, t.band) : t.band;
        if (!t.yes) above.push(c);
        return `${f3(t.mean)} ${t.yes ? '✓' : '✗'}`;
      });
      if (!cells.some((c) => c !== '–') && !own) continue;
      if (!methods.includes(m)) methods.push(m);
      const ran = CONTROLS.filter((c) => controlAccuracies(r, m, c).length);
      lines.push(
        `| ${labelOf(g, grid)} | ${m} | ${own ? `${f3(own.accuracyMean)} ± ${f3(own.accuracyCi)}${ownMark}` : '–'} | ${cells.join(' | ')} | ` +
          `${f3(chance)}${Number.isFinite(band) ? ` + ${f3(band)}` : ''} | ${ran.length ? (above.length ? above.join(', ') : 'none') : 'no control run'} |`,
      );
    }
  }
  lines.push(
    '',
    'Held-out accuracy, mean over seeds. ✓: at chance — the mean is at most chance + two binomial standard errors over ' +
      'evalSize × seeds episodes (the band after "+"; the rule of atChance in src/mas/experiment.ts); ✗: above that band. ' +
      'A ✓ on the uncontrolled column means the channel had nothing to lose. – = not run.' +
      (missing.length ? ` No report holds the ${missing.join(' and ')} control${missing.length > 1 ? 's' : ''}.` : ''),
    ...sources(grid, methods),
  );
  return lines.join('\n');
}

/** Table 3: diffmas (gradient through the sender) against diffmas-detached (only the receiver learns). */
export function gradientTable(grid, splits = ['heldout', 'ood']) {
  const lines = [
    '| setting | split | diffmas | diffmas-detached | margin | seed intervals | 2 binomial SE | verdict |',
    '|---|---|---:|---:|---:|---:|---:|---|',
  ];
  const methods = ['diffmas', 'diffmas-detached'];
  for (const g of grid) {
    const ra = g.pick.get('diffmas'), rb = g.pick.get('diffmas-detached');
    if (!ra && !rb) continue;
    for (const split of splits) {
      const A = ra && summaryOf(ra, 'diffmas', split), B = rb && summaryOf(rb, 'diffmas-detached', split);
      const acc = (s) => (s ? `${f3(s.accuracyMean)} ± ${f3(s.accuracyCi)} (${s.seeds} seeds)` : 'not run');
      if (!A || !B) {
        if (A || B) lines.push(`| ${labelOf(g, grid)} | ${split} | ${acc(A)} | ${acc(B)} | – | – | – | no comparison |`);
        continue;
      }
      // the verdict rule of findings() in src/mas/experiment.ts (pairVerdict in report-lib.mjs is its copy);
      // when the two come from different reports, the smaller evaluation size is the cautious one
      const v = pairVerdict(A, B, Math.min(evalSizeOf(ra), evalSizeOf(rb)));
      const verdict = v.oneSeed ? 'one seed: no interval'
        : v.winner === 'a' ? '**diffmas wins** (the gradient through the sender helps)'
          : v.winner === 'b' ? '**diffmas-detached wins**' : 'no reliable difference';
      lines.push(`| ${labelOf(g, grid)} | ${split} | ${acc(A)} | ${acc(B)} | ${v.margin >= 0 ? '+' : ''}${f3(v.margin)} | ${f3(v.widths)} | ${f3(v.se2)} | ${verdict} |`);
    }
  }
  if (lines.length === 2) return '(no report holds diffmas or diffmas-detached)';
  lines.push(
    '',
    'Margin = diffmas − diffmas-detached. A method wins when |margin| exceeds both the sum of the two 95% seed intervals ' +
      'and two binomial standard errors of the difference (the rule of findings() in src/mas/experiment.ts).',
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
