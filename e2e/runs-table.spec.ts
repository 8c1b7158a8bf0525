// The notebook's Runs table and Compare runs (issue 21 items 4, 5 and item 8's first fault): three
// short runs listed in a table that fits the library panel (no button clipped, no column cut), sorted
// and filtered by column; notes and tags written on a run survive a reload, and an export and import;
// the three runs overlaid on one chart with a legend of three, and a config diff of only the fields
// that differ. Screenshots at 1280x800 and 1600x1000.
import { readFileSync } from 'node:fs';
import { expect, test, type Locator, type Page } from '@playwright/test';
import { unzipSync } from 'fflate';
import { canvasColours, ready, shotBoth, smallLink, trainToEnd } from './helpers';

const RUNS = [
  { seed: 7, lr: 0.01, rank: 2, alpha: 4 },
  { seed: 8, lr: 0.003, rank: 2, alpha: 4 },
  { seed: 9, lr: 0.01, rank: 4, alpha: 8 },
];

const names = (page: Page) => page.getByTestId('run-name').allTextContents();
const rowOf = (page: Page, seed: number) => page.getByTestId('run-row').filter({ hasText: `seed ${seed}` });

/** Every button and cell of the element lies inside the library panel: nothing clipped or cut. */
async function insidePanel(page: Page, el: Locator): Promise<void> {
  const panel = (await page.getByTestId('library').boundingBox())!;
  const wrap = page.getByTestId('runs-table').locator('xpath=..');
  expect(await wrap.evaluate((w) => w.scrollWidth - w.clientWidth)).toBeLessThanOrEqual(0);
  for (const b of await el.locator('button:visible, td:visible, th:visible').all()) {
    const box = (await b.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(panel.x);
    expect(box.x + box.width).toBeLessThanOrEqual(panel.x + panel.width + 0.5);
    if (await b.evaluate((n) => n.tagName === 'BUTTON')) expect(await b.evaluate((n) => n.scrollWidth <= n.clientWidth + 1)).toBe(true);
  }
}

test('three runs in the Runs table: sorted, filtered, tagged and annotated (kept through a reload and an export/import), overlaid on one chart with their config diff', async ({ page }) => {
  test.setTimeout(600_000);
  for (const r of RUNS) {
    await page.goto(smallLink({ steps: 4, evalEvery: 2, evalSize: 4, batch: 2, seed: r.seed, lr: r.lr, rank: r.rank, alpha: r.alpha }));
    await page.reload();
    await ready(page);
    await trainToEnd(page);
    // its final record is stored before the next page load
    await expect(rowOf(page, r.seed)).toContainText('done');
    await expect(rowOf(page, r.seed)).toContainText('4/4');
  }
  await expect(page.getByTestId('run-row')).toHaveCount(3);
  await expect(page.getByTestId('runs-count')).toContainText('3 runs');
  await page.getByTestId('runs-table').scrollIntoViewIfNeeded();

  // item 8: the table fits the panel at 1280 px, every button whole ("Open", "Delete", not "Ope", "Delet")
  await insidePanel(page, page.getByTestId('runs-table'));
  for (const label of ['Open', 'Export', 'Tags', 'Delete']) await expect(page.getByTestId('run-row').first().getByRole('button', { name: label, exact: true })).toBeVisible();

  // sort: newest first as listed; by seed up and down; by held-out
  expect(await names(page)).toEqual(['lookup d1 · diffmas · seed 9', 'lookup d1 · diffmas · seed 8', 'lookup d1 · diffmas · seed 7']);
  await page.getByTestId('runs-sort-seed').click();
  expect(await names(page)).toEqual(['lookup d1 · diffmas · seed 7', 'lookup d1 · diffmas · seed 8', 'lookup d1 · diffmas · seed 9']);
  await expect(page.getByTestId('runs-sort-seed').locator('xpath=..')).toHaveAttribute('aria-sort', 'ascending');
  await page.getByTestId('runs-sort-seed').click();
  expect(await names(page)).toEqual(['lookup d1 · diffmas · seed 9', 'lookup d1 · diffmas · seed 8', 'lookup d1 · diffmas · seed 7']);
  await page.getByTestId('runs-sort-heldout').click();
  const held = (await page.getByTestId('run-heldout').allTextContents()).map((t) => Number(t.replace('%', '')));
  expect(held).toEqual([...held].sort((a, b) => b - a));

  // filter: by seed, a bad filter said and not used, by method, by steps
  await page.getByTestId('runs-filter-seed').fill('>7');
  await expect(page.getByTestId('run-row')).toHaveCount(2);
  await expect(page.getByTestId('runs-count')).toContainText('2 of 3 runs match the filters');
  await page.getByTestId('runs-filter-seed').fill('7..x');
  await expect(page.getByTestId('runs-filter-error')).toContainText("The seed filter is not used: '7..x' is not a range like 2..5");
  await expect(page.getByTestId('run-row')).toHaveCount(3);
  await page.getByTestId('runs-filter-seed').fill('');
  await page.getByTestId('runs-filter-method').fill('text');
  await expect(page.getByTestId('runs-none-match')).toBeVisible();
  await page.getByTestId('runs-filter-method').fill('diff');
  await page.getByTestId('runs-filter-steps').fill('4');
  await expect(page.getByTestId('run-row')).toHaveCount(3);
  await page.getByTestId('runs-clear-filters').click();

  // notes and tags
  await rowOf(page, 8).getByTestId('edit-notes').click();
  await rowOf(page, 8).getByTestId('run-tags-input').fill('sweep slow,,sweep');
  await rowOf(page, 8).getByTestId('run-notes-input').fill('lr 0.003: slower, as expected');
  await rowOf(page, 8).getByTestId('run-notes-save').click();
  await expect(rowOf(page, 8).getByTestId('run-tags')).toHaveText('sweepslow');
  await expect(rowOf(page, 8).getByTestId('run-notes')).toHaveText('lr 0.003: slower, as expected');
  await rowOf(page, 7).getByTestId('edit-notes').click();
  await rowOf(page, 7).getByTestId('run-tags-input').fill(`sweep ${'x'.repeat(40)}`);
  await rowOf(page, 7).getByTestId('run-notes-save').click();
  await expect(rowOf(page, 7).getByRole('alert')).toContainText('Tags: the tag');
  await expect(rowOf(page, 7).getByRole('alert')).toContainText('is longer than 32 characters');
  await rowOf(page, 7).getByTestId('run-tags-input').fill('sweep baseline');
  await rowOf(page, 7).getByTestId('run-notes-save').click();
  await expect(rowOf(page, 7).getByTestId('run-tags')).toHaveText('sweepbaseline');
  await page.getByTestId('runs-filter-tags').fill('sweep');
  await expect(page.getByTestId('run-row')).toHaveCount(2);
  await page.getByTestId('runs-filter-tags').fill('');
  await rowOf(page, 8).getByTestId('run-tags').getByRole('button', { name: 'slow' }).click();
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('runs-filter-tags')).toHaveValue('slow');
  await page.getByTestId('runs-clear-filters').click();

  // Compare runs: the three ticked, one chart, a legend of three, only the differing fields
  for (const s of [7, 8, 9]) await rowOf(page, s).getByTestId('run-pick').check();
  const cmp = page.getByTestId('compare-runs');
  await expect(cmp.getByTestId('compare-runs-legend').locator('.legend > span')).toHaveCount(3);
  await expect(cmp.getByTestId('compare-runs-legend')).toContainText('1 · lookup d1 · diffmas · seed 7');
  await expect(cmp.getByTestId('compare-runs-chart').locator('canvas')).toHaveCount(1);
  await expect.poll(() => canvasColours(page, 'compare-runs-chart')).toBeGreaterThan(6);
  const diff = cmp.getByTestId('diff-row');
  await expect(diff).toHaveCount(4);
  const paths = await cmp.locator('td.path').allTextContents();
  expect(paths.sort()).toEqual(['lora.alpha', 'lora.r', 'lr', 'seed']);
  await expect(diff.filter({ hasText: 'lr' })).toContainText(/0\.01\s*0\.003\s*0\.01/);
  await expect(diff.filter({ hasText: 'seed' })).toContainText(/7\s*8\s*9/);
  await expect(cmp.getByTestId('compare-runs-diff')).not.toContainText('task');
  await insidePanel(page, cmp);
  await page.getByTestId('runs-table').scrollIntoViewIfNeeded();
  await shotBoth(page, 'runs-table', 'runs-table');
  await shotBoth(page, 'runs-compare', 'compare-runs');
  // x by training time, log y, held-out accuracy
  await cmp.getByTestId('compare-runs-x').selectOption('time');
  await cmp.getByTestId('compare-runs-logy').check();
  await expect(cmp.getByTestId('compare-runs-caption')).toContainText('training loss (log scale) by training seconds');
  await expect.poll(() => canvasColours(page, 'compare-runs-chart')).toBeGreaterThan(6);
  await cmp.getByTestId('compare-runs-logy').uncheck();
  await cmp.getByTestId('compare-runs-metric').selectOption('heldoutAccuracy');
  await cmp.getByTestId('compare-runs-x').selectOption('step');
  await expect(cmp.getByTestId('compare-runs-caption')).toContainText('held-out accuracy by step · at the evaluation steps');
  await expect.poll(() => canvasColours(page, 'compare-runs-chart')).toBeGreaterThan(6);
  await shotBoth(page, 'runs-compare-accuracy', 'compare-runs');
  // unticking one leaves two in the legend and the diff
  await rowOf(page, 9).getByTestId('run-pick').uncheck();
  await expect(cmp.getByTestId('compare-runs-legend').locator('.legend > span')).toHaveCount(2);
  expect((await cmp.locator('td.path').allTextContents()).sort()).toEqual(['lr', 'seed']);

  // a reload keeps notes and tags
  await page.reload();
  await ready(page);
  await expect(rowOf(page, 8).getByTestId('run-tags')).toHaveText('sweepslow');
  await expect(rowOf(page, 8).getByTestId('run-notes')).toHaveText('lr 0.003: slower, as expected');
  await expect(rowOf(page, 7).getByTestId('run-tags')).toHaveText('sweepbaseline');

  // export and import keep them: in results/record.json, and back in the table
  const [download] = await Promise.all([page.waitForEvent('download'), rowOf(page, 8).getByTestId('export-run-row').click()]);
  const zip = unzipSync(new Uint8Array(readFileSync(await download.path())));
  const rec = JSON.parse(new TextDecoder().decode(zip['results/record.json']));
  expect(rec).toMatchObject({ notes: 'lr 0.003: slower, as expected', tags: ['sweep', 'slow'] });
  await rowOf(page, 8).getByTestId('delete').click();
  await rowOf(page, 8).getByRole('button', { name: 'Yes' }).click();
  await expect(page.getByTestId('run-row')).toHaveCount(2);
  await page.getByTestId('import-input').setInputFiles({ name: download.suggestedFilename(), mimeType: 'application/zip', buffer: readFileSync(await download.path()) });
  await expect(page.getByTestId('library-notice')).toContainText("Imported run 'lookup d1 · diffmas · seed 8'");
  await expect(page.getByTestId('run-row')).toHaveCount(3);
  await expect(rowOf(page, 8).getByTestId('run-tags')).toHaveText('sweepslow');
  await expect(rowOf(page, 8).getByTestId('run-notes')).toHaveText('lr 0.003: slower, as expected');
  await page.getByTestId('runs-table').scrollIntoViewIfNeeded();
  await shotBoth(page, 'runs-table-imported', 'runs-table');
});

test('an evaluation-only run and a comparison in the Runs table: their steps read as what they did, a comparison is filtered by any of its methods, takes tags, and is not overlaid', async ({ page }) => {
  test.setTimeout(400_000);
  await page.goto(smallLink({ method: 'text', steps: 4, evalSize: 4, batch: 2, compareMethods: 'single,diffmas', compareSeeds: '1' }));
  await page.reload();
  await ready(page);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByTestId('run-state')).toHaveText('done', { timeout: 200_000 });
  await page.getByTestId('compare-run').scrollIntoViewIfNeeded();
  await page.getByTestId('compare-run').click();
  await expect(page.getByTestId('compare-results')).toBeVisible({ timeout: 300_000 });
  const cmpRow = page.getByTestId('run-row').filter({ hasText: 'compare lookup d1' });
  const textRow = page.getByTestId('run-row').filter({ hasText: 'lookup d1 · text · seed 7' });
  await expect(cmpRow).toContainText('done');
  await expect(textRow).toContainText('eval only');
  await expect(cmpRow).toContainText('2 methods');
  await expect(cmpRow).toContainText('4 each');
  await expect(cmpRow.getByTestId('run-pick')).toBeDisabled();
  await expect(textRow.getByTestId('run-pick')).toBeEnabled();
  await page.getByTestId('runs-filter-method').fill('diffmas');
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('run-row')).toContainText('compare lookup d1');
  await page.getByTestId('runs-filter-method').fill('text');
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('run-row')).toContainText('lookup d1 · text · seed 7');
  await page.getByTestId('runs-clear-filters').click();
  await cmpRow.getByTestId('edit-notes').click();
  await cmpRow.getByTestId('run-tags-input').fill('controls');
  await cmpRow.getByTestId('run-notes-input').fill('single vs diffmas, one seed');
  await cmpRow.getByTestId('run-notes-save').click();
  await page.reload();
  await ready(page);
  await expect(cmpRow.getByTestId('run-tags')).toHaveText('controls');
  await expect(cmpRow.getByTestId('run-notes')).toHaveText('single vs diffmas, one seed');
  await insidePanel(page, page.getByTestId('runs-table'));
  await page.getByTestId('runs-table').scrollIntoViewIfNeeded();
  await shotBoth(page, 'runs-table-kinds', 'runs-table');
});
