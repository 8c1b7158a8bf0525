// The library: storage shown, rename, delete with confirmation, export of a base model as Hugging
// Face files, and pretraining a new toy base model from the page with progress.
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { decodeCheckpoint } from '../src/storage/checkpoint';
import { unzip } from '../src/storage/zip';
import { ready, shot, smallLink } from './helpers';

test('pretrain a base model, rename it, export it as Hugging Face files, delete it', async ({ page }) => {
  test.setTimeout(360_000);
  await page.goto(smallLink());
  await ready(page);
  await expect(page.getByTestId('storage-line')).toContainText('used of');
  await expect(page.getByTestId('storage-line')).toContainText('persistent');

  await page.getByText('Pretrain a new base model').click();
  await page.getByLabel('Name', { exact: true }).last().fill('e2e base');
  await page.getByTestId('pretrain-preset').selectOption('tiny');
  await page.getByTestId('pretrain-steps').fill('3');
  await page.getByTestId('pretrain-batch').fill('2');
  // one episode per cell keeps the closing evaluation (every task and difficulty) cheap on SwiftShader
  await page.getByTestId('pretrain-eval-size').fill('1');
  await page.getByTestId('pretrain-start').click();
  await expect(page.getByTestId('pretrain-done')).toContainText("Stored base model 'e2e base'", { timeout: 300_000 });
  await expect(page.getByTestId('pretrain-progress')).toContainText('step 3/3');
  const row = page.locator('[data-testid^="model-row-model:"]');
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('e2e base');
  // its held-out evaluation: task x difficulty, skyline · text accuracy
  const ev = page.locator('[data-testid^="model-eval-row-model:"]').getByTestId('model-eval');
  await expect(ev).toContainText('1 episode per cell');
  for (const task of ['lookup', 'relay', 'arith']) await expect(ev).toContainText(task);
  await expect(ev.getByTestId('eval-arith-d5')).toHaveText(/^\d\.\d\d · \d\.\d\d$/);
  // a shipped base shows its table or says it has none
  await expect(page.locator('[data-testid="model-row-builtin:tiny"] [data-testid="model-eval-none"], [data-testid="model-eval-row-builtin:tiny"]')).toHaveCount(1);
  await page.getByTestId('library').scrollIntoViewIfNeeded();
  await shot(page, 'pretrained');

  // rename
  await row.getByRole('button', { name: 'Rename e2e base' }).click();
  await row.getByLabel('New name').fill('renamed base');
  await row.getByLabel('New name').press('Enter');
  await expect(row).toContainText('renamed base');

  // export: one zip of config.json, model.safetensors, tokenizer.json that decodes as a checkpoint
  const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Export' }).click()]);
  expect(download.suggestedFilename()).toBe('renamed-base.zip');
  const files = unzip(new Uint8Array(readFileSync(await download.path())));
  const ck = decodeCheckpoint(files);
  expect(ck.config.hidden_size).toBe(32);
  expect(ck.tensors.get('model.embed_tokens.weight')!.length).toBe(54 * 32);
  expect(files.has('training_args.json')).toBe(true);
  const args = JSON.parse(new TextDecoder().decode(files.get('training_args.json')!));
  expect(args.evaluation).toMatchObject({ version: 1, evalSize: 1, tasks: ['lookup', 'relay', 'arith'], difficulties: [1, 2, 3, 4, 5] });
  expect(args.evaluation.rows).toHaveLength(3 * 5 * 3);

  // the shipped model cannot be deleted; this one can, after a confirmation
  await expect(page.getByTestId('model-row-builtin:tiny').getByRole('button', { name: 'Delete' })).toBeDisabled();
  await row.getByRole('button', { name: 'Delete' }).click();
  await row.getByRole('button', { name: 'No' }).click();
  await expect(row).toHaveCount(1);
  await row.getByRole('button', { name: 'Delete' }).click();
  await row.getByRole('button', { name: 'Yes' }).click();
  await expect(row).toHaveCount(0);
  await page.reload();
  await ready(page);
  await expect(page.locator('[data-testid^="model-row-model:"]')).toHaveCount(0);
});
