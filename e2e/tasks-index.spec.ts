// Issue 22's index task in the page: picked in Setup, its description shown, the default topology
// (array -> asker) valid, a few DiffMAS steps trained on the tiny base, the agents' inputs in the index
// format, and an evaluation on both splits.
import { expect, test } from '@playwright/test';
import { ready, smallLink } from './helpers';

test('Setup picks the index task and DiffMAS trains a few steps on it', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 3, evalEvery: 3, evalSize: 4, batch: 2 }));
  await ready(page);
  await page.getByTestId('task').selectOption('index');
  await page.getByTestId('difficulty').selectOption('3');
  await expect(page.getByTestId('task')).toHaveValue('index');
  await expect(page.locator('.task-about')).toContainText('dense array of digits');
  await expect(page.getByTestId('method')).toHaveValue('diffmas');
  await expect(page.getByTestId('topology-status')).toContainText('valid: 2 agents, 1 message');
  // the URL carries the task, so a shared link opens it
  await expect.poll(() => page.evaluate(() => location.hash)).toContain('task=index');

  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByTestId('run-state')).toHaveText('done', { timeout: 240_000 });
  await expect(page.getByTestId('step-counter')).toHaveText('0003');
  await expect(page.getByTestId('last-loss')).not.toHaveText('—');
  await expect(page.getByTestId('agents-io')).toContainText('arr:');
  await expect(page.getByTestId('agents-io')).toContainText('idx:');

  await page.getByTestId('evaluate').click();
  await expect(page.getByTestId('eval-table')).toContainText('heldout', { timeout: 120_000 });
  await expect(page.getByTestId('eval-table')).toContainText('ood');
});
