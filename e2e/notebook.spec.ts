// The page as a research notebook (issue 11): a run is a record that survives a reload and reopens
// read-only with its curves, tables and heatmaps; deleting one asks first; closing the tab mid-run
// asks, and the next visit offers to reopen the interrupted run; a saved adapter set reopens to be
// evaluated, inspected and trained further (switching to its base); a run exports as one zip (the
// run bundle with CSV, SVG and PNG), parsed here, and imports back as the run.
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { unzipSync } from 'fflate';
import { decodeCheckpoint } from '../src/storage/checkpoint';
import { decodeAdapter } from '../src/storage/peft';
import { readRunBundle } from '../src/storage/run-bundle';
import { canvasColours, ready, shotBoth, smallLink, trainToEnd } from './helpers';

test('a run survives a reload, reopens read-only with its curves, table and heatmaps, exports as one zip, and is deleted after a confirmation', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 4, evalEvery: 2, evalSize: 4, batch: 2 }));
  await ready(page);
  await trainToEnd(page);
  await expect(page.getByTestId('heatmap-before-canvas')).toBeVisible({ timeout: 60_000 });
  await page.getByTestId('evaluate').click();
  await expect(page.getByTestId('eval-table')).toContainText('ood', { timeout: 120_000 });
  await expect(page.getByTestId('eval-table')).toContainText('–'); // the 95% interval
  await shotBoth(page, 'notebook-trained');
  // the before-training view of any example (the initial adapters are put in for the look), and a PNG of a heatmap
  await page.getByRole('button', { name: 'Next example' }).click();
  await page.getByRole('button', { name: 'Next example' }).click();
  await expect(page.getByTestId('example-line')).toContainText('#2', { timeout: 60_000 });
  await expect(page.getByTestId('heatmap-before-canvas')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('heatmap-before')).toBeVisible();
  await page.getByTestId('heatmap-now-canvas').scrollIntoViewIfNeeded();
  const [png] = await Promise.all([page.waitForEvent('download'), page.getByTestId('heatmap-now-png').click()]);
  expect(png.suggestedFilename()).toMatch(/^diffmas-heldout-2-after-step4\.png$/);
  expect(readFileSync(await png.path()).subarray(1, 4).toString()).toBe('PNG');
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('run-row')).toContainText('done');

  await page.reload();
  await ready(page);
  const row = page.getByTestId('run-row');
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('lookup d1 · diffmas · seed 7');
  await expect(row).toContainText('4/4');
  await page.getByTestId('latent-empty').waitFor();
  const blankLoss = await canvasColours(page, 'loss-chart');
  await row.getByTestId('open-run').click();
  await expect(page.getByTestId('view-banner')).toContainText('read-only');
  expect(await canvasColours(page, 'loss-chart')).toBeGreaterThan(blankLoss);
  expect(await canvasColours(page, 'accuracy-chart')).toBeGreaterThan(2);
  await expect(page.getByTestId('eval-table')).toContainText('heldout');
  await expect(page.getByTestId('heatmap-now-canvas')).toBeVisible();
  await expect(page.getByTestId('heatmap-before-canvas')).toBeVisible();
  expect(await canvasColours(page, 'heatmap-now-canvas')).toBeGreaterThan(8);
  await expect(page.getByTestId('head-summary-canvas')).toBeVisible();
  await expect(page.getByTestId('heatmap-caption')).toContainText('Rows');
  // read-only: no training while a stored run is open
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeDisabled();
  await shotBoth(page, 'notebook-reopened');
  await page.getByTestId('library').scrollIntoViewIfNeeded();
  await shotBoth(page, 'notebook-runs-list', 'runs-table');

  // export: one zip with the run bundle, CSV, SVG, PNG
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-run').click()]);
  expect(download.suggestedFilename()).toMatch(/^lookup-d1-diffmas-seed-7\.zip$/);
  const zip = unzipSync(new Uint8Array(readFileSync(await download.path())));
  const files = new Map(Object.entries(zip));
  const b = readRunBundle(files);
  expect(b.json.config).toMatchObject({ task: 'lookup', method: 'diffmas', seed: 7, steps: 4 });
  expect(b.json.training.stepsDone).toBe(4);
  const base = decodeCheckpoint(b.base);
  for (const key of ['a0', 'a1']) expect(decodeAdapter(b.adapters[key], base.config).config.r).toBe(2);
  expect(Object.keys(b.initialAdapters).sort()).toEqual(['a0', 'a1']);
  expect(b.episodes.heldout).toHaveLength(4);
  const text = (n: string) => new TextDecoder().decode(files.get(n)!);
  expect(text('results/curves.csv').split('\n')[0]).toBe('step,loss');
  expect(text('results/curves.csv').trim().split('\n')).toHaveLength(5);
  expect(text('results/heldout.csv').trim().split('\n').map((l) => l.split(',')[0])).toEqual(['step', '2', '4']);
  expect(text('results/evaluation.csv')).toContain('heldout');
  expect(JSON.parse(text('results/record.json'))).toMatchObject({ kind: 'run', status: 'done', stepsDone: 4 });
  for (const c of ['charts/loss.svg', 'charts/accuracy.svg']) expect(text(c)).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const pngs = [...files.keys()].filter((k) => k.startsWith('heatmaps/') && k.endsWith('.png'));
  expect(pngs.length).toBeGreaterThanOrEqual(4);
  for (const p of pngs) expect([...files.get(p)!.slice(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');

  // delete asks first
  await page.getByTestId('close-view').click();
  await row.getByTestId('delete').click();
  await row.getByRole('button', { name: 'No' }).click();
  await expect(row).toHaveCount(1);
  await row.getByTestId('delete').click();
  await row.getByRole('button', { name: 'Yes' }).click();
  await expect(page.getByTestId('run-row')).toHaveCount(0);
  await page.reload();
  await ready(page);
  await expect(page.getByTestId('runs-table')).toContainText('No runs yet');

  // the exported zip imports back as the run: listed, and it reopens with its curves and heatmaps
  await page.getByTestId('import-input').setInputFiles({ name: download.suggestedFilename(), mimeType: 'application/zip', buffer: readFileSync(await download.path()) });
  await expect(page.getByTestId('library-notice')).toContainText("Imported run 'lookup d1 · diffmas · seed 7'");
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('run-row')).toContainText('4/4');
  await page.getByTestId('run-row').getByTestId('open-run').click();
  await expect(page.getByTestId('view-banner')).toContainText('read-only');
  await expect(page.getByTestId('eval-table')).toContainText('heldout');
  expect(await canvasColours(page, 'heatmap-now-canvas')).toBeGreaterThan(8);
  expect(await canvasColours(page, 'loss-chart')).toBeGreaterThan(blankLoss);
});

test('closing the tab mid-run asks first; a reload offers to reopen the interrupted run, and to continue it from its last checkpoint', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 400, evalEvery: 0 }));
  await ready(page);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByTestId('step-counter')).not.toHaveText('0000', { timeout: 120_000 });
  // a pause takes a checkpoint (adapters and AdamW's state; the autosave takes one every 30 s)
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByRole('button', { name: 'Resume' })).toBeVisible();
  await page.waitForTimeout(1000);
  const pausedAt = Number(await page.getByTestId('step-counter').textContent());
  expect(pausedAt).toBeGreaterThan(0);
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.waitForTimeout(6000); // an autosave (every 5 s)
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.type());
    void d.accept();
  });
  await page.reload();
  expect(dialogs).toContain('beforeunload');
  await ready(page);
  const notice = page.getByTestId('interrupted-notice');
  await expect(notice).toContainText('was interrupted');
  await expect(notice).toContainText('lookup d1 · diffmas · seed 7');
  await shotBoth(page, 'notebook-interrupted');
  // from the pause's checkpoint, or a later one if an autosave took one (every 30 s)
  await expect(page.getByTestId('continue-interrupted')).toHaveText(/^Continue it from step \d+$/);
  const from = Number((await page.getByTestId('continue-interrupted').textContent())!.replace(/\D+/g, ''));
  expect(from).toBeGreaterThanOrEqual(pausedAt);
  await page.getByTestId('reopen-interrupted').click();
  await expect(page.getByTestId('view-banner')).toContainText('interrupted');
  await expect(page.getByTestId('run-row').first()).toContainText('interrupted');
  expect(await canvasColours(page, 'loss-chart')).toBeGreaterThan(2);
  // continue it: the same record goes on from the checkpoint
  await page.getByTestId('close-view').click();
  // every value the step counter shows from now on: a continued run never shows a step between 0 and the checkpoint's
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid="step-counter"]')!;
    const seen: number[] = ((window as unknown as { seenSteps: number[] }).seenSteps = []);
    new MutationObserver(() => seen.push(Number(el.textContent))).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await page.getByTestId('run-row').first().getByTestId('continue-run').click();
  await expect.poll(async () => Number(await page.getByTestId('step-counter').textContent()), { timeout: 120_000 }).toBeGreaterThan(from);
  const seen = await page.evaluate(() => (window as unknown as { seenSteps: number[] }).seenSteps);
  expect(seen.filter((n) => n > 0 && n < from), `steps shown: ${seen.join(', ')}`).toEqual([]);
  expect(seen).toContain(from + 1);
  await expect(page.getByTestId('run-row')).toHaveCount(1);
  await expect(page.getByTestId('run-row').first()).toContainText('live');
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByTestId('run-row').first()).toContainText('paused');
});

test('a saved adapter set reopens: its base is switched to, it is evaluated on every split, inspected and trained further', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 4, evalEvery: 2, evalSize: 4, batch: 2 }));
  await ready(page);
  await trainToEnd(page);
  await page.getByTestId('adapter-name-input').fill('reopen me');
  await page.getByTestId('save-adapters').click();
  await expect(page.getByTestId('adapter-row')).toHaveCount(2);
  // another base selected: opening the set switches back to the one it was trained on
  await page.getByTestId('model').selectOption('builtin:toy');
  await expect(page.getByTestId('run-state')).toHaveText('idle');
  await page.getByTestId('adapter-row').filter({ hasText: 'reopen me · table' }).getByTestId('open-adapter').click();
  await expect(page.getByTestId('model')).toHaveValue('builtin:tiny');
  await expect(page.getByTestId('library-notice')).toContainText("Switched the base model to 'tiny (shipped)'");
  await expect(page.getByTestId('run-state')).toHaveText('paused', { timeout: 120_000 });
  await expect(page.getByText("Loaded 'reopen me'")).toBeVisible();
  await expect(page.getByTestId('heatmap-now-canvas')).toBeVisible({ timeout: 60_000 });
  await page.getByTestId('evaluate').click();
  for (const s of ['train', 'heldout', 'ood']) await expect(page.getByTestId('eval-table')).toContainText(s, { timeout: 120_000 });
  await shotBoth(page, 'notebook-adapter-reopened');
  // train it further from the loaded weights
  await page.getByRole('button', { name: 'Resume' }).click();
  await expect(page.getByTestId('run-state')).toHaveText('done', { timeout: 240_000 });
  await expect(page.getByTestId('step-counter')).toHaveText('0004');
  await expect(page.getByTestId('run-row').first()).toContainText("from 'reopen me'");
});
