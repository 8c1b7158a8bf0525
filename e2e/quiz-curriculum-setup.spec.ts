// The quiz loss and the curriculum of issue 22 item 2 in the page's Setup (More): they come from the
// link, go back into it when changed, are offered only where they apply, and a run with both trains
// and its record keeps them.
import { expect, test } from '@playwright/test';
import { ready, smallLink } from './helpers';

test('quiz loss and curriculum: from the link, into the link, only where they apply', async ({ page }) => {
  await page.goto(smallLink({ task: 'lookup', difficulty: 2, method: 'diffmas', quizLoss: 1, curriculumFrom: 1 }));
  await ready(page);
  await page.getByText('More', { exact: true }).click();
  await expect(page.getByTestId('quiz-loss')).toBeChecked();
  await expect(page.getByTestId('quiz-loss')).toBeEnabled();
  await expect(page.getByTestId('curriculum-from')).toHaveValue('1');
  await expect(page.getByTestId('link-problems')).toHaveCount(0);
  // changed here, written to the link
  await page.getByTestId('quiz-loss').uncheck();
  await expect.poll(() => new URL(page.url()).hash).toContain('quizLoss=0');
  await page.getByTestId('curriculum-from').selectOption('0');
  await expect.poll(() => new URL(page.url()).hash).not.toContain('curriculumFrom=1');
  await page.getByTestId('quiz-loss').check();
  await page.getByTestId('curriculum-from').selectOption('1');
  await expect.poll(() => new URL(page.url()).hash).toContain('curriculumFrom=1');
  // the quiz needs a DiffMAS variant; an untrained method takes neither
  await page.getByTestId('method').selectOption('text-trained');
  await expect(page.getByTestId('quiz-loss')).toBeDisabled();
  await expect(page.getByTestId('curriculum-from')).toBeEnabled();
  await page.getByTestId('method').selectOption('latentmas');
  await expect(page.getByTestId('curriculum-from')).toBeDisabled();
  await page.getByTestId('method').selectOption('diffmas-detached');
  await expect(page.getByTestId('quiz-loss')).toBeEnabled();
});

test('a run with the quiz loss and a curriculum from d1 trains, and its setup is kept', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ task: 'lookup', difficulty: 2, method: 'diffmas', steps: 4, evalEvery: 2, evalSize: 4, batch: 2, quizLoss: 1, curriculumFrom: 1 }));
  await ready(page);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByTestId('run-state')).toHaveText('done', { timeout: 240_000 });
  await page.getByText('More', { exact: true }).click();
  await expect(page.getByTestId('quiz-loss')).toBeChecked();
  await expect(page.getByTestId('curriculum-from')).toHaveValue('1');
  // the stored run is named after its options (src/mas/run-record.ts runName)
  await expect(page.getByText('quiz loss · curriculum from d1').first()).toBeVisible();
});
