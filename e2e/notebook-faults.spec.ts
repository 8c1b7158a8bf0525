// The faults a walk through the page found (issue 11, item 6), each checked where a person meets it,
// and the page's other new parts: the first-visit default and the software-adapter offer, the "?"
// guide, compare exports in the format `experiment --json` writes, and non-finite logits in a run.
import { readFileSync } from 'node:fs';
import { expect, test, type Locator, type Page } from '@playwright/test';
import { decodeCheckpoint, encodeCheckpoint, validateConfig } from '../src/storage/checkpoint';
import { encodeAdapter, expectedAdapterTensors, type LoraAdapterConfig } from '../src/storage/peft';
import { readExperimentReport } from '../src/storage/report';
import { zipStore } from '../src/storage/zip';
import { ready, shotBoth, smallLink, trainToEnd } from './helpers';

const tiny = validateConfig(JSON.parse(readFileSync('public/models/tiny/config.json', 'utf8')));
const CLI_REPORT = 'bench/results/old-instrument/tiny-lookup-d1.json';

function adapterZip(fill: number): Buffer {
  const config: LoraAdapterConfig = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ['q_proj'], lora_dropout: 0, bias: 'none',
    fan_in_fan_out: false, base_model_name_or_path: null, layers_to_transform: null, inference_mode: true,
  };
  const tensors = new Map([...expectedAdapterTensors(config, tiny)].map(([n, s]) => [n, new Float32Array(s[0] * s[1]).fill(fill)]));
  return Buffer.from(zipStore(encodeAdapter({ config, tensors }, tiny)));
}

async function box(l: Locator) {
  const b = await l.boundingBox();
  if (!b) throw new Error('no box');
  return b;
}
const inside = (a: { x: number; y: number; width: number; height: number }, o: { x: number; y: number; width: number; height: number }) =>
  a.x >= o.x - 1 && a.y >= o.y - 1 && a.x + a.width <= o.x + o.width + 1 && a.y + a.height <= o.y + o.height + 1;
const overlap = (a: { x: number; y: number; width: number; height: number }, o: { x: number; y: number; width: number; height: number }) =>
  a.x < o.x + o.width && o.x < a.x + a.width && a.y < o.y + o.height && o.y < a.y + a.height;

async function openCliReport(page: Page) {
  await page.getByTestId('open-report-input').setInputFiles(CLI_REPORT);
  await expect(page.getByTestId('compare-results')).toBeVisible();
}

test('first visit: DiffMAS on lookup d1 with a held-out point every few steps; on a software adapter the tiny preset is one click away', async ({ page }) => {
  await page.goto('/');
  await ready(page);
  const hash = new URL(page.url()).hash;
  expect(hash).toContain('task=lookup&difficulty=1&method=diffmas&model=builtin:toy');
  expect(hash).toContain('evalEvery=20');
  const notice = page.getByTestId('software-notice');
  await expect(notice).toContainText('WebGPU is running on the CPU here');
  await shotBoth(page, 'first-visit-software');
  await page.getByTestId('use-tiny-preset').click();
  await expect(page.getByTestId('model')).toHaveValue('builtin:tiny');
  await expect(page.getByTestId('steps')).toHaveValue('200');
  await expect(notice).toContainText('The tiny base model is selected');
  await expect(page.getByTestId('use-tiny-preset')).toHaveCount(0);
});

test('the "?" guide explains the methods, the controls and the heatmap, with links to the papers and the README', async ({ page }) => {
  await page.goto(smallLink());
  await ready(page);
  await page.getByTestId('guide-button').click();
  const g = page.getByTestId('guide');
  await expect(g).toContainText('DiffMAS (latent only)');
  await expect(g).toContainText('shuffle');
  await expect(g).toContainText('Reading the heatmap');
  await expect(g.getByRole('link', { name: /Latent Collaboration in Multi-Agent Systems/ })).toHaveAttribute('href', /arxiv\.org/);
  await expect(g.getByRole('link', { name: /Direct Semantic Communication/ })).toHaveAttribute('href', /arxiv\.org/);
  await expect(g.getByRole('link', { name: /Learning to Communicate/ })).toHaveAttribute('href', 'https://arxiv.org/abs/2604.21794');
  await shotBoth(page, 'guide');
  await g.getByTestId('guide-readme').click();
  await expect(g.locator('.guide-readme')).toContainText('LatentMAS Playground');
  await page.keyboard.press('Escape');
  await expect(g).toHaveCount(0);
});

test('compare results save as CSV, JSON in the format `experiment --json` writes, and the chart as SVG; a CLI report opens in the same view', async ({ page }) => {
  await page.goto(smallLink());
  await ready(page);
  await page.getByTestId('compare-run').scrollIntoViewIfNeeded();
  await openCliReport(page);
  await expect(page.getByTestId('compare-shown')).toContainText('tiny-lookup-d1.json');
  const cli = readExperimentReport(readFileSync(CLI_REPORT, 'utf8'));
  const get = async (id: string) => {
    const [d] = await Promise.all([page.waitForEvent('download'), page.getByTestId(id).click()]);
    return readFileSync(await d.path(), 'utf8');
  };
  const json = readExperimentReport(await get('compare-json'));
  expect(json.summary).toEqual(cli.summary);
  expect(json.args).toEqual(cli.args);
  const csv = await get('compare-csv');
  expect(csv.split('\n')[0]).toMatch(/^method,split,control,seeds,accuracy_mean,accuracy_ci95/);
  expect(csv).toContain('diffmas,heldout,,3,');
  const svg = await get('compare-svg');
  expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  expect(svg).toContain('chance');
  // a control line names the uncontrolled accuracy beside the controlled one
  await expect(page.getByTestId('compare-results')).toContainText('(uncontrolled');
  await shotBoth(page, 'compare-report', 'compare-results');
});

test('library: row buttons stay in the panel, and "Delete? Yes" can be clicked with compare results shown; a re-imported zip is not duplicated; keep my data answers', async ({ page }) => {
  await page.goto(smallLink());
  await ready(page);
  await page.getByTestId('import-input').setInputFiles({ name: 'adapter.zip', mimeType: 'application/zip', buffer: adapterZip(0.01) });
  await expect(page.getByTestId('library-notice')).toContainText('Imported adapter');
  await page.getByTestId('import-input').setInputFiles({ name: 'adapter.zip', mimeType: 'application/zip', buffer: adapterZip(0.01) });
  await expect(page.getByTestId('library-error')).toContainText("already in the library as 'adapter'");
  await expect(page.getByTestId('adapter-row')).toHaveCount(1);
  await openCliReport(page);
  const panel = await box(page.getByTestId('library'));
  for (const b of await page.getByTestId('library').locator('td.actions button').all()) expect(inside(await box(b), panel)).toBe(true);
  const row = page.getByTestId('adapter-row');
  await row.getByTestId('delete').click();
  await page.getByTestId('library').scrollIntoViewIfNeeded();
  await shotBoth(page, 'library-with-compare', 'adapters-table');
  await row.getByRole('button', { name: 'Yes' }).click();
  await expect(page.getByTestId('adapter-row')).toHaveCount(0);
  // the two storage figures agree
  const line = (await page.getByTestId('storage-line').innerText()).match(/^(.*?) used of (\S+ \S+)/);
  expect(line).not.toBeNull();
  await expect(page.getByTestId('env-storage-used')).toHaveText(`${line![1]} of ${line![2]}`);
  const keep = page.getByTestId('keep-data');
  if (await keep.isVisible()) {
    await keep.click();
    await expect(page.getByTestId('persist-note')).toContainText(/browser/);
  }
  // the pretrain size select shows its whole text
  await page.getByText('Pretrain a new base model').click();
  const sel = page.getByTestId('pretrain-preset');
  expect(await sel.evaluate((el) => el.scrollWidth <= el.clientWidth + 1)).toBe(true);
});

test('a link opened in the same tab updates the Compare seeds and the agent form', async ({ page }) => {
  await page.goto(smallLink({ compareSeeds: '1,2,3' }));
  await ready(page);
  await expect(page.getByTestId('compare-seeds')).toHaveValue('1, 2, 3');
  await page.getByTestId('agent-node-a0').click();
  await expect(page.getByTestId('agent-form').getByLabel('Name')).toHaveValue('table');
  await page.evaluate((h) => (location.hash = h), smallLink({ compareSeeds: '4,5', compareMethods: 'single,diffmas', topology: 'v1;a0:0:3:o:tabula,a1:1:0:o:query;a0-a1;a1' }).slice(1));
  await expect(page.getByTestId('compare-seeds')).toHaveValue('4, 5');
  await expect(page.getByTestId('compare-run')).toHaveText('Run 2 × 2');
  await expect(page.getByTestId('agent-form').getByLabel('Name')).toHaveValue('tabula');
  await expect(page.getByTestId('agent-steps')).toHaveValue('3');
});

test('topology editor: the star fits above the hint, a cycle refits, a deleted edge leaves no button, labels are whole; one verdict with its reason', async ({ page }) => {
  await page.goto(smallLink({ task: 'arith', method: 'diffmas-full' }));
  await ready(page);
  await page.getByTestId('preset-star').click();
  await page.waitForTimeout(400);
  const canvas = await box(page.getByTestId('topology-canvas'));
  const nodes = page.locator('.react-flow__node');
  for (const n of await nodes.all()) expect(inside(await box(n), canvas)).toBe(true);
  // edge labels whole, not under a node
  const labels = page.locator('.react-flow__edge-text');
  expect(await labels.count()).toBeGreaterThan(1);
  for (const l of await labels.all()) {
    await expect(l).toHaveText(/^prompt\+z×\d+$/);
    for (const n of await nodes.all()) expect(overlap(await box(l), await box(n))).toBe(false);
  }
  await shotBoth(page, 'topology-star', 'topology-canvas');
  // a stale "remove edge" button after Delete
  await page.locator('.react-flow__edge').first().click({ force: true });
  await expect(page.getByRole('button', { name: 'remove edge' })).toBeVisible();
  await page.keyboard.press('Delete');
  await expect(page.getByRole('button', { name: 'remove edge' })).toHaveCount(0);
  // a cycle: the graph is refitted, every node stays on the canvas
  await page.getByTestId('preset-chain').click();
  await page.waitForTimeout(300);
  const last = page.locator('.react-flow__node').last();
  await last.click();
  await page.getByTestId('agent-form').getByRole('button').filter({ hasText: /./ }).first().click();
  await expect(page.getByTestId('topology-problems')).toContainText('Cycle');
  await page.waitForTimeout(400);
  for (const n of await nodes.all()) expect(inside(await box(n), canvas)).toBe(true);
  await expect(page.getByTestId('run-blockers')).toContainText('topology cannot run: Cycle');

  // one verdict: a graph that is fine as a graph but that this method cannot run says so in the editor, not "valid"
  await page.goto(smallLink());
  await ready(page);
  await page.getByTestId('agent-node-a0').click();
  await page.getByTestId('agent-steps').fill('0');
  await expect(page.getByTestId('setup-verdict')).toContainText('cannot run: method diffmas passes on only the latent positions');
  await expect(page.getByTestId('topology-status')).not.toContainText('valid');
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeDisabled();
  await expect(page.getByTestId('run-blockers')).toContainText('has 0 latent steps');
  // latent steps 99: the limit is said, the node shows it, the run is blocked
  await page.getByTestId('agent-steps').fill('99');
  await expect(page.getByTestId('agent-steps-error')).toHaveText('at most 64');
  await expect(page.getByTestId('agent-node-a0')).toContainText('z×99');
  await expect(page.getByTestId('topology-problems')).toContainText('the range is 0..64');
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeDisabled();
  await shotBoth(page, 'topology-latent-99', 'topology-canvas');
  await page.getByTestId('agent-steps').fill('4');
  await expect(page.getByTestId('topology-status')).toContainText('✓ valid');
});

test('a run: layer=2 of a link on a 2-layer model goes back to the mean; Reset asks first; the single baseline says what it is; labels are readable', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto(smallLink({ steps: 2, evalEvery: 0, evalSize: 4, batch: 2, layer: 2, head: 9 }));
  await ready(page);
  await trainToEnd(page);
  await expect(page.getByTestId('heatmap-now-canvas')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('inspect-layer')).toHaveValue('avg');
  await expect.poll(() => new URL(page.url()).hash).toContain('layer=avg&head=avg');
  // heatmap and axis text at a readable size
  expect(await page.locator('.color-legend').evaluate((el) => parseFloat(getComputedStyle(el).fontSize))).toBeGreaterThanOrEqual(12);
  expect(await page.getByTestId('heatmap-caption').evaluate((el) => parseFloat(getComputedStyle(el).fontSize))).toBeGreaterThanOrEqual(12);
  // reset asks first
  await page.getByRole('button', { name: 'Reset', exact: true }).click();
  await expect(page.getByTestId('reset-confirm')).toContainText('Discard this run');
  await page.getByTestId('reset-confirm').getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('run-state')).toHaveText('done');
  await page.getByRole('button', { name: 'Reset', exact: true }).click();
  await page.getByTestId('reset-confirm').getByRole('button', { name: 'Reset' }).click();
  await expect(page.getByTestId('run-state')).toHaveText('idle');
  await page.getByTestId('method').selectOption('single');
  await expect(page.locator('.setup')).toContainText('no information about the answer reaches it');
  await expect(page.locator('.setup')).not.toContainText('the floor (chance)');
});

test('the text method shows the text message the final agent read; an evaluation-only method shows its value, not a dot at step 0', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto(smallLink({ method: 'text', evalSize: 4, batch: 2 }));
  await ready(page);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByTestId('run-state')).toHaveText('done', { timeout: 200_000 });
  await expect(page.getByTestId('text-read')).toContainText('read this text message', { timeout: 60_000 });
  await expect(page.getByTestId('text-read')).toContainText('msg:');
  await expect(page.getByTestId('untrained-value')).toContainText('held-out accuracy');
  await expect(page.getByTestId('loss-chart')).toHaveCount(0);
  await shotBoth(page, 'text-method');
});

test('a base whose forward pass gives non-finite logits stops an evaluation with an error that says where, not accuracy 0', async ({ page }) => {
  test.setTimeout(240_000);
  const ck = decodeCheckpoint(new Map(['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => [f, new Uint8Array(readFileSync(`public/models/tiny/${f}`))])));
  ck.tensors.get('model.norm.weight')!.fill(3e38);
  const zip = Buffer.from(zipStore(encodeCheckpoint(ck)));
  await page.goto(smallLink({ method: 'single', evalSize: 4, batch: 2 }));
  await ready(page);
  await page.getByTestId('import-input').setInputFiles({ name: 'broken.zip', mimeType: 'application/zip', buffer: zip });
  await expect(page.getByTestId('library-notice')).toContainText("Imported base model 'broken'");
  const row = page.locator('[data-testid^="model-row-model:"]');
  await row.getByRole('button', { name: 'Use' }).click();
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByTestId('run-state')).toHaveText('error', { timeout: 120_000 });
  const msg = page.getByTestId('run-message');
  await expect(msg).toContainText('non-finite logits');
  await expect(msg).toContainText('in the heldout evaluation of single, episode 0');
  await expect(page.getByTestId('last-acc')).toHaveText('—');
  // the run's record says so too (the error arrives after the run's promise settled)
  await expect(page.getByTestId('run-row').first()).toContainText('error');
  await shotBoth(page, 'non-finite');
});
