// Wrong pictures (issue 21 items 1 and 2): the "after training" heatmap of a finished run is taken
// from its final weights, and says so in the page, in its record and in every exported file name;
// a stored run opened from the Runs list shows its own setup and agents, read-only, never the page's
// current setup beside its numbers, and one button copies that setup into a new run.
import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { unzipSync } from 'fflate';
import { ready, shotBoth, smallLink, trainToEnd } from './helpers';

interface RecordJson {
  stepsDone: number;
  adapters: { finalStep: number | null };
  curves: { steps: number[] };
  inspections: { which: 'before' | 'after'; step: number; result: { split: string; index: number } }[];
}

async function exportZip(page: Page): Promise<{ name: string; files: Map<string, Uint8Array> }> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-run').click()]);
  return { name: download.suggestedFilename(), files: new Map(Object.entries(unzipSync(new Uint8Array(readFileSync(await download.path()))))) };
}

test("a short run's final inspection is taken from its last step: in the page, in record.json and in the exported file names", async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 8, evalEvery: 4, evalSize: 4, batch: 2 }));
  await ready(page);
  await trainToEnd(page);
  await expect(page.getByTestId('step-counter')).toHaveText('0008');
  // the page: the look after training is at step 8, beside the one before (step 0)
  await expect(page.getByTestId('heatmap-now-step')).toContainText('step 8', { timeout: 60_000 });
  await expect(page.getByTestId('heatmap-before-canvas')).toBeVisible();
  const caption = page.locator('figure', { has: page.getByTestId('heatmap-now') }).locator('figcaption');
  await expect(caption).toContainText('After training');
  const [png] = await Promise.all([page.waitForEvent('download'), page.getByTestId('heatmap-now-png').click()]);
  expect(png.suggestedFilename()).toBe('diffmas-heldout-0-after-step8.png');
  const [before] = await Promise.all([page.waitForEvent('download'), page.getByTestId('heatmap-before-png').click()]);
  expect(before.suggestedFilename()).toBe('diffmas-heldout-0-before-step0.png');
  await page.getByTestId('heatmap-now').scrollIntoViewIfNeeded();
  await shotBoth(page, 'pictures-final-inspection', 'heatmap-now');

  // the record and the export: the after inspection, the adapters and the curve all end at step 8
  const { files } = await exportZip(page);
  const rec = JSON.parse(new TextDecoder().decode(files.get('results/record.json')!)) as RecordJson;
  expect(rec.stepsDone).toBe(8);
  expect(rec.curves.steps.at(-1)).toBe(8);
  expect(rec.adapters.finalStep).toBe(8);
  const looks = rec.inspections.map((i) => [i.which, i.step]);
  expect(looks).toContainEqual(['before', 0]);
  expect(looks).toContainEqual(['after', 8]);
  expect(rec.inspections.filter((i) => i.which === 'after').every((i) => i.step === 8)).toBe(true);
  const heatmaps = [...files.keys()].filter((k) => k.startsWith('heatmaps/'));
  expect(heatmaps.filter((k) => k.startsWith('heatmaps/after-step8-')).length).toBeGreaterThanOrEqual(2);
  expect(heatmaps.filter((k) => k.startsWith('heatmaps/after-') && !k.startsWith('heatmaps/after-step8-'))).toEqual([]);
  expect(heatmaps.every((k) => /^heatmaps\/(before-step0|after-step8)-/.test(k))).toBe(true);

  // reopened from the Runs list: the same look at the same step
  await page.getByRole('button', { name: 'Reset', exact: true }).first().click();
  await page.getByTestId('reset-confirm').getByRole('button', { name: 'Reset' }).click();
  await expect(page.getByTestId('run-state')).toHaveText('idle');
  await page.getByTestId('run-row').first().getByTestId('open-run').click();
  await expect(page.getByTestId('view-banner')).toContainText('read-only');
  await expect(page.getByTestId('heatmap-now-step')).toContainText('step 8');
  await expect(caption).toContainText('After training');
});

test("a stored run shows its own setup and agents, read-only, whatever the page's setup; one button copies it into a new run", async ({ page }) => {
  test.setTimeout(300_000);
  // a run with a setup unlike the one the page is changed to below
  await page.goto(smallLink({ steps: 3, rank: 4, alpha: 8, lr: 0.005, seed: 11, evalEvery: 0, evalSize: 4, batch: 2 }));
  await ready(page);
  await trainToEnd(page);
  await expect(page.getByTestId('run-row')).toHaveCount(1);

  // the page's setup changes: another method (text MAS, training-free), rank, learning rate and steps
  await page.getByTestId('steps').fill('12');
  await page.getByTestId('steps').press('Enter');
  await page.getByTestId('lr').fill('0.01');
  await page.getByTestId('lr').press('Enter');
  await page.getByTestId('rank').selectOption('2');
  await page.getByTestId('seed').fill('5');
  await page.getByTestId('seed').press('Enter');
  await expect(page.getByTestId('run-state')).toHaveText('idle');
  await page.getByTestId('method').selectOption('text');
  await expect(page.getByTestId('topology-canvas')).toContainText('text ≤8');
  await expect(page.getByTestId('setup-stored')).toHaveCount(0);

  // the stored run opens with its own setup, read-only
  await page.getByTestId('run-row').first().getByTestId('open-run').click();
  await expect(page.getByTestId('view-banner')).toContainText('read-only');
  const marker = page.getByTestId('setup-stored');
  await expect(marker).toContainText('lookup d1 · diffmas · seed 11');
  await expect(marker).toContainText('read-only');
  const fields: [string, string][] = [['method', 'diffmas'], ['rank', '4'], ['alpha', '8'], ['lr', '0.005'], ['steps', '3'], ['seed', '11'], ['batch', '2'], ['model', 'builtin:tiny']];
  for (const [id, value] of fields) {
    await expect(page.getByTestId(id)).toHaveValue(value);
    await expect(page.getByTestId(id)).toBeDisabled();
  }
  await expect(page.getByTestId('topology-stored')).toBeVisible();
  await expect(page.getByTestId('topology-canvas')).toContainText('z×');
  await expect(page.getByTestId('topology-canvas')).not.toContainText('text ≤');
  await expect(page.getByTestId('preset-default')).toBeDisabled();
  await expect(page.getByTestId('add-agent')).toBeDisabled();
  // the run bar speaks of the stored run: its 3 steps, not "evaluation only" of the page's text method
  await expect(page.locator('.runbar-counter')).toContainText('/ 3');
  await expect(page.locator('.runbar-counter')).not.toContainText('evaluation only');
  // an agent's form shows the stored agent, read-only
  await page.getByTestId('agent-node-a0').click();
  await expect(page.getByTestId('agent-steps')).toBeDisabled();
  await expect(page.getByTestId('delete-agent')).toBeDisabled();
  await page.evaluate(() => window.scrollTo(0, 0));
  await shotBoth(page, 'pictures-stored-setup');

  // the page's own setup was left as it was (the link too)
  expect(page.url()).toContain('method=text');
  expect(page.url()).toContain('steps=12');

  // one button: the stored setup becomes the page's, editable, and the record closes
  await page.getByTestId('copy-into-new-run').click();
  await expect(page.getByTestId('view-banner')).toHaveCount(0);
  await expect(page.getByTestId('setup-stored')).toHaveCount(0);
  await expect(page.getByTestId('topology-stored')).toHaveCount(0);
  for (const [id, value] of fields) {
    await expect(page.getByTestId(id)).toHaveValue(value);
    await expect(page.getByTestId(id)).toBeEnabled();
  }
  expect(page.url()).toContain('method=diffmas');
  expect(page.url()).toContain('steps=3');
  expect(page.url()).toContain('seed=11');
  await expect(page.getByTestId('topology-canvas')).not.toContainText('text ≤');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shotBoth(page, 'pictures-copied-setup');
  // and it trains as a new run of that setup: a second record, the same name and steps
  await trainToEnd(page);
  await expect(page.getByTestId('run-row')).toHaveCount(2);
  await expect(page.getByTestId('run-row').filter({ hasText: 'lookup d1 · diffmas · seed 11' })).toHaveCount(2);
});
