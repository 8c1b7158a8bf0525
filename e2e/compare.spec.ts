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
