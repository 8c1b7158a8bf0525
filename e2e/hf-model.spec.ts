// A real-model kind in the page: a tiny random Qwen3 checkpoint (BF16, two shards, a byte-level BPE
// tokenizer.json, written by tests/hf-fixtures.ts) imported as a deflate zip (as zip tools and the
// hub's downloads make them), listed in the setup with its memory estimate, one training step of
// DiffMAS on it and one inspection whose heatmap labels are the tokenizer's tokens.
import { zipSync } from 'fflate';
import { expect, test } from '@playwright/test';
import { byteLevelBpe, hfCheckpoint } from '../tests/hf-fixtures';
import { ready, shot, smallLink } from './helpers';

test('a Qwen3 checkpoint with a BPE tokenizer imports as a deflate zip, trains a step and is inspected', async ({ page }) => {
  const fixture = hfCheckpoint({ type: 'qwen3', dtype: 'BF16', tokenizer: byteLevelBpe(), shards: 2 });
  const zip = zipSync(Object.fromEntries([...fixture.files].map(([n, b]) => [`qwen3-tiny/${n}`, [b, { level: 6 }]])));
  await page.goto(smallLink({ steps: 3, batch: 2, evalSize: 4, evalEvery: 0 }));
  await ready(page);
  await page.getByTestId('import-input').setInputFiles({ name: 'qwen3-tiny.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
  await expect(page.getByTestId('library-notice')).toContainText("Imported base model 'qwen3-tiny'", { timeout: 60_000 });
  const row = page.locator('[data-testid^="model-row-"]', { hasText: 'qwen3-tiny' });
  await expect(row).toBeVisible();

  // the setup lists it (its kind and vocabulary), and the memory it needs is shown before a run
  const option = page.getByTestId('model').locator('option', { hasText: 'qwen3-tiny' });
  await expect(option).toHaveText(/qwen3 d24×2, vocab \d+/);
  await page.getByTestId('model').selectOption({ label: (await option.textContent())! });
  await expect(page.getByTestId('memory-line')).toContainText('GPU memory: weights', { timeout: 60_000 });
  await expect(page.getByTestId('memory-refusal')).toHaveCount(0);
  await shot(page, 'hf-model-imported');

  // one DiffMAS step, then the latent messages of an example: its tokens are the BPE's words
  const counter = page.getByTestId('step-counter');
  await page.getByRole('button', { name: 'Step', exact: true }).click();
  await expect(counter).toHaveText('0001', { timeout: 180_000 });
  await expect(page.getByTestId('run-state')).toHaveText('paused');
  await expect(page.getByTestId('last-loss')).not.toHaveText('—');
  await expect(page.getByTestId('heatmap-now-canvas')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('agents-io')).toContainText('Table:');
  await expect(page.getByTestId('agents-io')).toContainText('Answer:');
  await page.getByTestId('heatmap-now-canvas').scrollIntoViewIfNeeded();
  const box = (await page.getByTestId('heatmap-now-canvas').boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await expect(page.locator('.heatmap-tip').last()).toContainText('attention');
  await shot(page, 'hf-model-inspected');
});
