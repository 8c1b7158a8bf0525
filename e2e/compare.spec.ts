// Compare: several methods on the same task and seeds, run from the page; the results table and the
// chart with intervals.
import { expect, test } from '@playwright/test';
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
  // one row per method and split
  for (const m of ['single', 'latentmas']) for (const s of ['heldout', 'ood']) await expect(results.locator('tr', { hasText: m }).filter({ hasText: s })).toHaveCount(1);
  await expect(page.getByTestId('compare-chart').locator('circle')).toHaveCount(4 + 2);
  await results.scrollIntoViewIfNeeded();
  await shot(page, 'compare');
});
