// Compare: several methods on the same task and seeds, run from the page; the results table and the
// chart with intervals (none below 3 seeds), the paired differences, the controls and the bounds.
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { readExperimentReport } from '../src/storage/report';
import { ready, shot, smallLink } from './helpers';

test('compare two methods over two seeds: table, chart with intervals, findings', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto(smallLink({ evalSize: 4, compareMethods: 'single,latentmas', compareSeeds: '1,2' }));
  await ready(page);
  await page.getByTestId('compare-run').scrollIntoViewIfNeeded();
  await expect(page.getByTestId('compare-run')).toHaveText('Run 2 × 2');
  await page.getByTestId('compare-run').click();
  const results = page.getByTestId('compare-results');
  await expect(results).toBeVisible({ timeout: 220_000 });
  // labelled by the report's own task and difficulty
  await expect(page.getByTestId('compare-setting')).toHaveText('lookup (difficulty 1), 2 seeds');
  // one row per method and split; 2 seeds are below the 3 an interval needs: none is shown, never one wider than the scale
  const table = page.getByTestId('compare-table');
  for (const m of ['single', 'latentmas']) for (const s of ['heldout', 'ood']) await expect(table.locator('tr', { hasText: m }).filter({ hasText: s })).toHaveCount(1);
  await expect(table.locator('tbody tr').first()).toContainText(/2 seeds: no interval|of 2 seeds reach/);
  await expect(page.getByTestId('compare-chart').locator('circle')).toHaveCount(4 + 2);
  // the paired difference (no verdict below 3 seeds), the controls with their chance rule, and the bounds of the budget
  await expect(page.getByTestId('compare-paired').locator('tr', { hasText: 'latentmas' }).filter({ hasText: 'heldout' })).toContainText('no verdict');
  await expect(page.getByTestId('compare-controls')).toContainText('binomial SE');
  await expect(page.getByTestId('compare-bounds')).toContainText('any protocol');
  await results.scrollIntoViewIfNeeded();
  await shot(page, 'compare');
  // the JSON is the report `experiment --json` writes (one reader), with the page's args beside the request's
  const [d] = await Promise.all([page.waitForEvent('download'), page.getByTestId('compare-json').click()]);
  const report = readExperimentReport(readFileSync(await d.path(), 'utf8'));
  expect(report.args).toMatchObject({ task: 'lookup', methods: ['single', 'latentmas'], seeds: [1, 2], source: 'page', model: 'builtin:tiny' });
  expect(report.summary).toHaveLength(4);
  // the comparison is a record: after a reload it opens again from the Runs list
  await page.reload();
  await ready(page);
  const row = page.getByTestId('run-row').filter({ hasText: 'compare lookup d1' });
  await expect(row).toContainText('done');
  await row.getByTestId('open-run').click();
  await expect(page.getByTestId('compare-shown')).toContainText('the stored comparison');
  await expect(page.getByTestId('compare-chart').locator('circle')).toHaveCount(4 + 2);
});

// A CLI report with probes and measured bits (lookup d3, the probes and bits of seed 1 of each latent
// method; a copy of bench/results/toy-lookup-d3.json as it stood mid-run): Compare shows both tables, as formatProbes and formatBits do.
test('an opened report with probes and bits shows the best probe per target and the bits table', async ({ page }) => {
  await page.goto(smallLink());
  await page.getByTestId('open-report-input').setInputFiles('e2e/fixtures/toy-lookup-d3-seed1.json');
  await expect(page.getByTestId('compare-results')).toBeVisible();
  await expect(page.getByTestId('compare-setting')).toContainText('lookup (difficulty 3)');
  const measures = page.getByTestId('compare-measures');
  // five latent methods of seed 1 × eight targets, each best probe with where it sits, then each target's chance and 1 / classes
  const probes = page.getByTestId('compare-probes');
  await expect(probes).toHaveCount(1);
  await expect(probes.locator('caption')).toContainText('(table → query)');
  await expect(probes.locator('thead th')).toHaveText(['seed 1', 'key 1', 'value 1', 'key 2', 'value 2', 'key 3', 'value 3', 'key 4', 'value 4']);
  await expect(probes.locator('tbody tr')).toHaveCount(5 + 2);
  const probeRow = (name: string) => probes.locator('tbody tr').filter({ has: page.getByRole('cell', { name, exact: true }) }).locator('td');
  await expect(probeRow('diffmas').nth(1)).toHaveText('100.0p1 L0 K');
  await expect(probeRow('diffmas').nth(3)).toHaveText('99.4p3 L0 K');
  await expect(probeRow('chance (majority)')).toHaveText(['chance (majority)', '5.5', '7.8', '2.9', '10.7', '4.1', '12.1', '3.7', '9.8']);
  await expect(probeRow('1 / classes').nth(2)).toHaveText('10.0');
  // one row per method and seed: float32, each width, the smallest k, its bits per latent position beside log2 V per text token
  const bits = page.getByTestId('compare-bits');
  await expect(bits.locator('thead th')).toHaveText(['seed 1', 'float32', 'k bits per float', 'smallest k', 'bits / latent position', 'log2 V bits / text token', '16', '8', '4', '2', '1']);
  await expect(bits.locator('tbody tr')).toHaveCount(5);
  const row = (m: string) => bits.locator('tbody tr').filter({ has: page.getByRole('cell', { name: m, exact: true }) }).locator('td');
  await expect(row('latentmas-full')).toHaveText(['latentmas-full', '75.0', '75.0', '74.6', '78.1', '75.2', '71.5', '2', '384+192 scale', '5.75']);
  await expect(row('latentmas')).toHaveText(['latentmas', '6.4', '6.4', '6.4', '5.9', '5.7', '7.2', '1', '192', '5.75']);
  // latentmas sits below chance (6.4% against 10%): the caption says its smallest k of 1 means nothing
  await expect(bits.locator('caption')).toContainText('on a method at chance (10.0% here)');
  await expect(bits.locator('caption')).toContainText('means nothing');
  // below the sticky run bar
  await measures.evaluate((el) => window.scrollBy(0, el.getBoundingClientRect().top - 125));
  await shot(page, 'compare-measures');
  // the tables fit the panel at 1280 px: no sideways scroll
  for (const t of [probes, bits]) expect(await t.evaluate((el) => ({ fits: el.parentElement!.scrollWidth <= el.parentElement!.clientWidth + 1, scroll: el.parentElement!.scrollWidth, client: el.parentElement!.clientWidth }))).toMatchObject({ fits: true });
});
