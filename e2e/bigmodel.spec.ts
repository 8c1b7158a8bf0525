// Issue 23 item 4: before a run the page says how long it will take, from a training step and an
// evaluation batch timed here ("Estimate time" beside Train and beside Compare), and warns plainly
// past 30 minutes. The tiny setup ends in seconds (no warning); 40,000 steps of it run past 30 minutes.
import { expect, test } from '@playwright/test';
import { ready, smallLink } from './helpers';

test('Train and Compare estimate their time from measured steps, and warn past 30 minutes', async ({ page }) => {
  test.setTimeout(180_000);
  await page.goto(smallLink({ evalSize: 4, method: 'diffmas', compareMethods: 'single,diffmas', compareSeeds: '1,2' }));
  await ready(page);
  const run = page.getByTestId('time-estimate-run');
  await expect(run.getByTestId('time-estimate-run-button')).toBeEnabled({ timeout: 30_000 });
  await run.getByTestId('time-estimate-run-button').click();
  await expect(run.getByTestId('time-estimate-run-text')).toContainText(/This run: about .+ training steps and \d+ evaluation episodes \(measured here: diffmas [\d.]+ s\/step, [\d.]+ s\/episode\)/, { timeout: 90_000 });
  await expect(run.getByTestId('time-estimate-run-warning')).toHaveCount(0);

  const cmp = page.getByTestId('time-estimate-compare');
  await cmp.scrollIntoViewIfNeeded();
  await cmp.getByTestId('time-estimate-compare-button').click();
  await expect(cmp.getByTestId('time-estimate-compare-text')).toContainText(/This comparison: about .+ evaluation episodes over 4 runs \(measured here: single [\d.]+ s\/episode; diffmas [\d.]+ s\/step, [\d.]+ s\/episode\)/, { timeout: 90_000 });

  // a setup that runs for hours: the figure hides on the change, and the new one comes with the warning
  await page.goto(smallLink({ evalSize: 4, method: 'diffmas', steps: 40000 }));
  await ready(page);
  await expect(run.getByTestId('time-estimate-run-button')).toBeEnabled({ timeout: 30_000 });
  await run.getByTestId('time-estimate-run-button').click();
  await expect(run.getByTestId('time-estimate-run-warning')).toContainText(/Long run: this takes about .+, past 30 min/, { timeout: 90_000 });
  await expect(run.getByTestId('time-estimate-run-text')).toContainText('40000 training steps');
});
