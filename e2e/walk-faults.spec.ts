// The rest of the second walk's faults (issue 21 item 8), each checked where a person meets it: link
// values the page corrects are listed and the URL shows what is used; "keep my data" never contradicts
// the storage line; an imported model is named from its zip and marked "no tokenizer", and neither
// Train nor Compare starts on it (no error record, no internal id); the software-adapter notice stops
// offering what is already selected and states the run bar's own prediction; the elapsed time goes on
// after Continue; the storage figure follows new records; the sticky run bar never covers a heading;
// a text method's nodes say nothing of latent steps; a re-imported run says what it left out; an
// unevaluated run's export has no empty evaluation table; "fit y to data" is in the link; the guide
// links the README; the agents' I/O table keeps its output column readable; Compare's summary table
// shows every column at 1280 px (issue 21 item 3).
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { expect, test, type Locator, type Page } from '@playwright/test';
import { zipStore } from '../src/storage/zip';
import { ready, shotBoth, smallLink, trainToEnd } from './helpers';

const CLI_REPORT = 'bench/results/old-instrument/tiny-lookup-d1.json';

async function box(l: Locator) {
  const b = await l.boundingBox();
  if (!b) throw new Error('no box');
  return b;
}

/** Seconds of a duration as the run bar writes it ("1:05", "1:02:03"); null for "—". */
function seconds(text: string): number | null {
  if (!/\d/.test(text)) return null;
  return text.split(':').map(Number).reduce((a, b) => a * 60 + b, 0);
}

async function hashOf(page: Page): Promise<string> {
  return decodeURIComponent(new URL(page.url()).hash);
}

/** Every output cell of the agents' I/O table holds at most `n` lines (screenshots taken first). */
async function ioLinesAtMost(page: Page, n: number, shotName: string): Promise<void> {
  const io = page.getByTestId('agents-io');
  await io.scrollIntoViewIfNeeded();
  await shotBoth(page, shotName, 'agents-io');
  const lines = await io.evaluate((t) =>
    [...t.querySelectorAll('tbody tr')].flatMap((tr) =>
      [...tr.querySelectorAll('td')].slice(2).map((td) => {
        const code = td.querySelector('code')!;
        const lh = parseFloat(getComputedStyle(code).lineHeight) || 18;
        return Math.round(code.getBoundingClientRect().height / lh);
      }),
    ),
  );
  for (const k of lines) expect(k, `output lines: ${lines.join(', ')}`).toBeLessThanOrEqual(n);
}

test('link values the page cannot use are listed with what is used instead, and the link shows what is used', async ({ page }) => {
  await page.goto('/#model=builtin:tiny&task=bogus&steps=-5&layer=7&fitY=1&seed=3');
  await ready(page);
  const note = page.getByTestId('link-problems');
  await expect(note).toContainText('the link now holds what is used instead');
  await expect(note).toContainText('steps=-5: -5 is below 1; 800 is used (the default).');
  await expect(note).toContainText('task=bogus: "bogus" is not one of');
  await expect(note).toContainText('lookup is used (the default)');
  // the layer is known to be wrong only once the model is: the tiny base has 2 layers
  await expect(note).toContainText('layer=7: this model has 2 layers (0 to 1); avg (the mean) is used.');
  await expect(page.getByTestId('steps')).toHaveValue('800');
  await expect(page.getByTestId('task')).toHaveValue('lookup');
  await expect(page.getByTestId('inspect-layer')).toHaveValue('avg');
  // the other values of the link are kept, and the link holds what the page shows
  await expect(page.getByTestId('seed')).toHaveValue('3');
  await expect(page.getByTestId('model')).toHaveValue('builtin:tiny');
  await expect.poll(() => hashOf(page)).toContain('layer=avg');
  const hash = await hashOf(page);
  for (const part of ['task=lookup', 'steps=800', 'seed=3', 'model=builtin:tiny', 'fitY=1']) expect(hash).toContain(part);
  await shotBoth(page, 'walk-link-corrections');

  // a link edited in the open tab: one bad value keeps what the page shows, nothing else changes
  await page.evaluate(() => (location.hash = location.hash.replace('task=lookup', 'task=relay')));
  await expect(page.getByTestId('task')).toHaveValue('relay');
  await expect(page.getByTestId('agent-node-a1')).toBeVisible();
  const relayTopology = (await hashOf(page)).match(/topology=[^&]*/)![0];
  await page.evaluate(() => (location.hash = location.hash.replace('task=relay', 'task=bogus').replace('steps=800', 'steps=12')));
  await expect(note).toContainText('task=bogus: "bogus" is not one of');
  await expect(note).toContainText('relay is used (as before)');
  await expect(page.getByTestId('task')).toHaveValue('relay');
  await expect(page.getByTestId('steps')).toHaveValue('12');
  await expect.poll(() => hashOf(page)).toContain('task=relay');
  expect(await hashOf(page)).toContain(relayTopology);
});

test('"keep my data" and the storage line agree; the figure follows a new record', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto(smallLink({ steps: 3, evalEvery: 0 }));
  await ready(page);
  const line = page.getByTestId('storage-line');
  await expect(line).toContainText('persistent:');
  if (await page.getByTestId('keep-data').count()) {
    await page.getByTestId('keep-data').click();
    const note = page.getByTestId('persist-note');
    await expect(note).not.toContainText('asking the browser');
    const said = (await note.textContent())!;
    // the note and the line state one answer
    if (said.includes('declined')) await expect(line).toContainText('persistent: no');
    else {
      expect(said).toContain('will keep');
      await expect(line).toContainText('persistent: yes');
    }
    await shotBoth(page, 'walk-keep-data', 'storage-line');
  }
  // the figure is the browser's estimate as it is after the run's record was written
  await trainToEnd(page);
  const used = async () => (await line.textContent())!.split(' used of ')[0].trim();
  const estimate = () =>
    page.evaluate(async () => {
      const u = (await navigator.storage.estimate()).usage ?? 0;
      const units = ['B', 'KB', 'MB', 'GB'];
      let v = u;
      let k = 0;
      while (v >= 1024 && k < units.length - 1) {
        v /= 1024;
        k++;
      }
      return { u, v, k };
    });
  await expect.poll(async () => {
    const e = await estimate();
    const shown = await used();
    // the same figure to the displayed precision (the estimate may move by a few bytes between the two reads)
    const [num, unit] = shown.split(' ');
    return unit === ['B', 'KB', 'MB', 'GB'][e.k] && Math.abs(Number(num) - e.v) <= Math.max(0.011, e.v * 0.002);
  }, { timeout: 30_000 }).toBe(true);
});

test('an imported model is named from its zip and marked "no tokenizer"; neither Train nor Compare starts on it', async ({ page }) => {
  await page.goto(smallLink());
  await ready(page);
  const runsBefore = await page.getByTestId('run-row').count();
  // the tiny base without its tokenizer, as one zip
  const zip = zipStore(new Map([
    ['config.json', new Uint8Array(readFileSync('public/models/tiny/config.json'))],
    ['model.safetensors', new Uint8Array(readFileSync('public/models/tiny/model.safetensors'))],
  ]));
  await page.getByTestId('import-input').setInputFiles({ name: 'tiny-without-tokenizer.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
  await expect(page.getByTestId('library-notice')).toContainText("Imported base model 'tiny-without-tokenizer'", { timeout: 60_000 });
  const row = page.locator('[data-testid^="model-row-"]').filter({ hasText: 'tiny-without-tokenizer' });
  await expect(row).toHaveCount(1);
  await expect(row.getByTestId('no-tokenizer')).toHaveText('no tokenizer');
  await row.getByRole('button', { name: 'Use' }).click();
  // refused by name, never by the library's id
  const blockers = page.getByTestId('run-blockers');
  await expect(blockers).toContainText("the base model 'tiny-without-tokenizer' has no tokenizer.json");
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeDisabled();
  await expect(page.getByTestId('compare-run')).toBeDisabled();
  await expect(page.getByTestId('compare-blocked')).toContainText("the base model 'tiny-without-tokenizer' has no tokenizer.json");
  await expect(page.locator('body')).not.toContainText(/model-[0-9a-z]{6,}/);
  await shotBoth(page, 'walk-no-tokenizer', 'library');
  await page.getByTestId('compare-run').scrollIntoViewIfNeeded();
  await shotBoth(page, 'walk-compare-blocked', 'compare-run');
  // nothing was started, so nothing was recorded
  expect(await page.getByTestId('run-row').count()).toBe(runsBefore);
});

test('on a software adapter the notice stops offering the tiny model once it is selected and states the run bar\'s own prediction', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto(smallLink({ steps: 400, evalEvery: 0 }));
  await ready(page);
  const notice = page.getByTestId('software-notice');
  await expect(notice).toContainText('The tiny base model is selected.');
  await expect(page.getByTestId('use-tiny-preset')).toHaveCount(0);
  await expect(notice).not.toContainText('minutes');
  await expect(notice).toContainText('“Estimate time” beside Train');
  await expect(page.getByTestId('time-estimate-run-button')).toBeVisible();
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(notice).toContainText('this run ends in about', { timeout: 120_000 });
  // the notice's time is the run bar's "left", read in the same frame
  const [said, left] = await page.evaluate(() => [
    document.querySelector('[data-testid="software-notice"]')!.textContent!,
    document.querySelector('[data-testid="time-left"]')!.textContent!,
  ]);
  expect(said).toContain(`this run ends in about ${left} at its measured speed`);
  await shotBoth(page, 'walk-software-notice');
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByRole('button', { name: 'Resume' })).toBeVisible();
  // another base: the offer comes back
  await page.getByRole('button', { name: 'Reset', exact: true }).click();
  await page.getByTestId('reset-confirm').getByRole('button', { name: 'Reset' }).click();
  await expect(page.getByTestId('run-state')).toHaveText('idle');
  await page.getByTestId('model').selectOption('builtin:toy');
  await expect(page.getByTestId('use-tiny-preset')).toBeVisible();
  await expect(notice).toContainText('“Estimate time” beside Train times this setup here before it starts.');
});

test('the elapsed time goes on after Continue; the sticky run bar never covers a heading', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 400, evalEvery: 0 }));
  await ready(page);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect.poll(async () => seconds((await page.getByTestId('elapsed').textContent())!) ?? 0, { timeout: 120_000 }).toBeGreaterThanOrEqual(3);
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByRole('button', { name: 'Resume' })).toBeVisible();
  await page.waitForTimeout(500);
  const before = seconds((await page.getByTestId('elapsed').textContent())!)!;
  expect(before).toBeGreaterThanOrEqual(3);

  // headings jumped to land below the bar (scroll-margin-top from the bar's own height)
  const bar = await box(page.locator('.runbar'));
  for (const id of ['library-title', 'compare-title', 'env-title']) {
    await page.evaluate((x) => document.getElementById(x)!.scrollIntoView(), id);
    await page.waitForTimeout(200);
    const h = await box(page.locator(`#${id}`));
    expect(h.y, id).toBeGreaterThanOrEqual(bar.height);
  }
  await page.evaluate(() => document.getElementById('compare-title')!.scrollIntoView());
  await shotBoth(page, 'walk-heading-below-bar');
  await page.evaluate(() => window.scrollTo(0, 0));

  page.on('dialog', (d) => void d.accept());
  await page.reload();
  await ready(page);
  await expect(page.getByTestId('continue-interrupted')).toBeVisible();
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid="elapsed"]')!;
    const seen: string[] = ((window as unknown as { seenElapsed: string[] }).seenElapsed = []);
    new MutationObserver(() => seen.push(el.textContent!)).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await page.getByTestId('continue-interrupted').click();
  await expect(page.getByTestId('run-state')).toHaveText('running', { timeout: 120_000 });
  await expect.poll(async () => seconds((await page.getByTestId('elapsed').textContent())!) ?? 0, { timeout: 120_000 }).toBeGreaterThan(before);
  const seen = await page.evaluate(() => (window as unknown as { seenElapsed: string[] }).seenElapsed);
  const shown = seen.map(seconds).filter((s): s is number => s !== null);
  expect(shown.length).toBeGreaterThan(0);
  expect(shown.filter((s) => s < before), `elapsed shown: ${seen.join(', ')}`).toEqual([]);
  await page.getByRole('button', { name: 'Pause' }).click();
});

test('a text method\'s agents say nothing of latent steps; "fit y to data" is in the link; the I/O table keeps its output readable', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto(smallLink({ method: 'text', steps: 3, evalEvery: 0 }));
  await ready(page);
  for (const id of ['a0', 'a1']) await expect(page.getByTestId(`agent-node-${id}`)).not.toContainText('z×');
  await expect(page.getByTestId('topology-canvas')).toContainText('text ≤8');
  await trainToEnd(page);
  // the agents' inputs and outputs (a text method's messages, an untrained agent's babble): no output cell runs to many lines at 1280 px
  await ioLinesAtMost(page, 3, 'walk-agents-io');
  await page.getByTestId('method').selectOption('diffmas');
  await expect(page.getByTestId('agent-node-a0')).toContainText('z×');
  // trained: before and after side by side, four columns
  await trainToEnd(page);
  await ioLinesAtMost(page, 3, 'walk-agents-io-trained');
  await page.getByTestId('loss-fit').check();
  await expect.poll(() => hashOf(page)).toContain('fitY=1');
  await page.reload();
  await ready(page);
  await expect(page.getByTestId('loss-fit')).toBeChecked();
});

test('a run never evaluated exports no empty evaluation table; its re-import says what it left out and why', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto(smallLink({ steps: 3, evalEvery: 0 }));
  await ready(page);
  await trainToEnd(page);
  await expect(page.getByTestId('run-row').first()).toContainText('done');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-run').click()]);
  const path = await download.path();
  const files = unzipSync(new Uint8Array(readFileSync(path)));
  expect(Object.keys(files)).not.toContain('results/evaluation.csv');
  expect(Object.keys(files)).toContain('results/curves.csv');
  // the same run again: refused as already there; after deleting it, imported with a word on what is not kept
  await page.getByTestId('run-row').first().getByTestId('delete').click();
  await page.getByTestId('run-row').first().getByRole('button', { name: 'Yes' }).click();
  await expect(page.getByTestId('run-row')).toHaveCount(0);
  await page.getByTestId('import-input').setInputFiles({ name: 'again.zip', mimeType: 'application/zip', buffer: readFileSync(path) });
  const notice = page.getByTestId('library-notice');
  await expect(notice).toContainText("Imported run 'lookup d1 · diffmas · seed 7'", { timeout: 60_000 });
  await expect(notice).toContainText('Not kept: results/ (CSV tables), charts/ (chart figures)');
  await expect(notice).toContainText('tensorboard/ (TensorBoard event files)');
  await expect(notice).toContainText("the run's export makes them again");
  await shotBoth(page, 'walk-reimport-note', 'library-notice');
});

test('the guide links the README; Compare\'s summary table shows every column at 1280 px, intervals within the scale', async ({ page }) => {
  await page.goto(smallLink());
  await ready(page);
  await page.getByTestId('guide-button').click();
  const link = page.getByTestId('guide-readme-link');
  await expect(link).toHaveAttribute('href', /README.*\.md$/);
  const res = await page.request.get(new URL((await link.getAttribute('href'))!, page.url()).toString());
  expect(res.ok()).toBe(true);
  expect(await res.text()).toContain('LatentMAS Playground');
  await link.scrollIntoViewIfNeeded();
  await shotBoth(page, 'walk-guide-readme');
  await page.keyboard.press('Escape');

  await page.getByTestId('open-report-input').setInputFiles(CLI_REPORT);
  const table = page.getByTestId('compare-table');
  await expect(table).toBeVisible();
  // the report's own task above its results
  const report = JSON.parse(readFileSync(CLI_REPORT, 'utf8')) as { args: { task: string; difficulty: number } };
  await expect(page.getByTestId('compare-setting')).toContainText(`${report.args.task} (difficulty ${report.args.difficulty})`);
  await shotBoth(page, 'walk-compare-table', 'compare-table');
  for (const [w, h] of [[1280, 800], [1600, 1000]] as const) {
    await page.setViewportSize({ width: w, height: h });
    await table.scrollIntoViewIfNeeded();
    const wrap = await box(table.locator('xpath=..'));
    const last = await box(table.locator('thead th').last());
    expect(last.x + last.width, `at ${w}px`).toBeLessThanOrEqual(wrap.x + wrap.width + 1);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  // no interval beyond the scale
  const cells = await table.locator('tbody td:nth-child(4)').allTextContents();
  for (const c of cells) {
    for (const m of c.matchAll(/(-?\d+(?:\.\d+)?)%/g)) {
      expect(Number(m[1]), c).toBeLessThanOrEqual(100);
      expect(Number(m[1]), c).toBeGreaterThanOrEqual(0);
    }
  }
  await expect(table).not.toContainText('±');
  // a control's verdict states its band
  const controls = page.getByTestId('compare-controls');
  if (await controls.count()) await expect(controls).toContainText(/chance \d\.\d{3}/);
});
