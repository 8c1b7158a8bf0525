// A llama.cpp GGUF file in the page (issue 23 item 2): a tiny random Llama with a byte-level BPE
// tokenizer, written as llama.cpp writes one (q/k rows permuted, matrices Q8_0; tests/gguf-writer.ts),
// picked in the library's import; the page converts it to Hugging Face files (dequantized to float32,
// config and tokenizer from the metadata), lists it, trains one DiffMAS step on it and inspects it.
// A corrupt GGUF file is refused with the reader's message and nothing is stored.
import { expect, test } from '@playwright/test';
import { ggufFromFixture } from '../tests/gguf-writer';
import { byteLevelBpe, hfCheckpoint } from '../tests/hf-fixtures';
import { ready, shot, smallLink } from './helpers';

test('a GGUF file imports as a base model, trains a DiffMAS step and is inspected', async ({ page }) => {
  const tk = byteLevelBpe();
  const fx = hfCheckpoint({ type: 'llama', tokenizer: tk, config: { hidden_size: 32, intermediate_size: 64 } });
  const gguf = ggufFromFixture(fx, tk, { quant: 'Q8_0', name: 'tiny-llama' });
  await page.goto(smallLink({ steps: 3, batch: 2, evalSize: 4, evalEvery: 0 }));
  await ready(page);

  // a truncated file: the reader's message, nothing stored
  await page.getByTestId('import-input').setInputFiles({ name: 'cut.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from(gguf.subarray(0, gguf.length - 64)) });
  await expect(page.getByTestId('library-error')).toContainText('ut.gguf cannot be imported: the file is truncated: tensor', { timeout: 60_000 });
  await expect(page.locator('[data-testid^="model-row-"]', { hasText: 'cut' })).toHaveCount(0);

  await page.getByTestId('import-input').setInputFiles({ name: 'tiny-llama.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from(gguf) });
  await expect(page.getByTestId('library-notice')).toContainText("Imported base model 'tiny-llama'", { timeout: 60_000 });
  const row = page.locator('[data-testid^="model-row-"]', { hasText: 'tiny-llama' });
  await expect(row).toBeVisible();

  const option = page.getByTestId('model').locator('option', { hasText: 'tiny-llama' });
  await expect(option).toHaveText(/tiny-llama — d32×2, vocab \d+/);
  await page.getByTestId('model').selectOption({ label: (await option.textContent())! });
  await expect(page.getByTestId('memory-line')).toContainText('GPU memory: weights', { timeout: 60_000 });
  await shot(page, 'gguf-imported');

  // one DiffMAS step, then an inspection whose labels are the tokenizer's tokens
  const counter = page.getByTestId('step-counter');
  await page.getByRole('button', { name: 'Step', exact: true }).click();
  await expect(counter).toHaveText('0001', { timeout: 180_000 });
  await expect(page.getByTestId('run-state')).toHaveText('paused');
  await expect(page.getByTestId('last-loss')).not.toHaveText('—');
  await expect(page.getByTestId('heatmap-now-canvas')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('agents-io')).toContainText('Answer:');
  await shot(page, 'gguf-inspected');
});
