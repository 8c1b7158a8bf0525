// The training-ablation settings of issue 22 item 2 in the page's Setup (More): the learning-rate
// schedule and the learned latent slot offset come from the link, go back into it when changed, and
// are offered only where they apply; a run with both trains and keeps its setup.
import { expect, test } from '@playwright/test';
import { ready, smallLink } from './helpers';

test('lr schedule and latent slot offset: from the link, into the link, only where they apply', async ({ page }) => {
  await page.goto(smallLink({ method: 'diffmas', lrSchedule: 'constant', latentSlotOffset: 1 }));
  await ready(page);
  await page.getByText('More', { exact: true }).click();
  await expect(page.getByTestId('lr-schedule')).toHaveValue('constant');
  await expect(page.getByTestId('latent-slot-offset')).toBeChecked();
  await expect(page.getByTestId('latent-slot-offset')).toBeEnabled();
  await expect(page.getByTestId('link-problems')).toHaveCount(0);
  // changed here, written to the link
  await page.getByTestId('lr-schedule').selectOption('cosine');
  await page.getByTestId('latent-slot-offset').uncheck();
  await expect.poll(() => new URL(page.url()).hash).toContain('lrSchedule=cosine');
  expect(new URL(page.url()).hash).toContain('latentSlotOffset=0');
  await page.getByTestId('latent-slot-offset').check();
  await expect.poll(() => new URL(page.url()).hash).toContain('latentSlotOffset=1');
  // a method without latent steps to train: the offset is not offered; an untrained one: no schedule either
  await page.getByTestId('method').selectOption('text-trained');
  await expect(page.getByTestId('latent-slot-offset')).toBeDisabled();
  await expect(page.getByTestId('lr-schedule')).toBeEnabled();
  await page.getByTestId('method').selectOption('latentmas');
  await expect(page.getByTestId('lr-schedule')).toBeDisabled();
  await page.getByTestId('method').selectOption('diffmas-full');
  await expect(page.getByTestId('latent-slot-offset')).toBeEnabled();
  // a bad value in a link keeps its default and says so
  await page.goto(smallLink({ method: 'diffmas', lrSchedule: 'linear' }));
  await ready(page);
  await expect(page.getByTestId('link-problems')).toContainText('lrSchedule=linear');
  await page.getByText('More', { exact: true }).click();
  await expect(page.getByTestId('lr-schedule')).toHaveValue('cosine');
});

test('a run with learned slot offsets trains, saves its adapters with them, and they reopen into a run', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ method: 'diffmas', steps: 4, evalEvery: 2, evalSize: 4, batch: 2, lrSchedule: 'constant', latentSlotOffset: 1 }));
  await ready(page);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByTestId('run-state')).toHaveText('done', { timeout: 240_000 });
  await page.getByTestId('adapter-name-input').fill('offsets');
  await page.getByTestId('save-adapters').click();
  await expect(page.getByTestId('adapter-row')).toHaveCount(2);
  // reopened from the library: the sender's offsets come back with its adapter (a run with the option
  // refuses an adapter without them, and one without the option refuses them)
  await page.getByTestId('adapter-row').filter({ hasText: 'offsets · table' }).getByTestId('open-adapter').click();
  await expect(page.getByTestId('run-state')).toHaveText('paused', { timeout: 120_000 });
  await expect(page.getByText("Loaded 'offsets'")).toBeVisible();
  await page.getByText('More', { exact: true }).click();
  await expect(page.getByTestId('latent-slot-offset')).toBeChecked();
  await expect(page.getByTestId('lr-schedule')).toHaveValue('constant');
});
