// The main journey: a first visit (an empty browser profile) seeds the library with the shipped base
// models, trains a two-agent DiffMAS run on the tiny model, the curves move and the latent-message
// heatmap is drawn, the adapters are saved, survive a reload, and export as PEFT files whose tensor
// names and shapes are those PEFT expects.
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { validateConfig } from '../src/storage/checkpoint';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, decodeAdapter, loraKey } from '../src/storage/peft';
import { decodeSafetensors } from '../src/storage/safetensors';
import { unzip } from '../src/storage/zip';
import { canvasColours, ready, shot, shotFull, smallLink } from './helpers';

const tinyConfig = validateConfig(JSON.parse(readFileSync('public/models/tiny/config.json', 'utf8')));

test('first visit -> train -> curves and heatmap -> save -> reload -> export as PEFT', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 4, evalEvery: 2, evalSize: 4, batch: 2 }));
  await ready(page);
  // the default setup: split-key lookup, two agents, DiffMAS
  await expect(page.getByTestId('task')).toHaveValue('lookup');
  await expect(page.getByTestId('method')).toHaveValue('diffmas');
  await expect(page.getByTestId('topology-status')).toContainText('valid: 2 agents, 1 message');
  await expect(page.getByTestId('latent-empty')).toBeVisible();
  await shot(page, 'first-visit');
  const lossBefore = await canvasColours(page, 'loss-chart');

  await page.getByRole('button', { name: 'Train', exact: true }).click();
  // the untrained agents are inspected first, then training runs to the end
  await expect(page.getByTestId('heatmap-now-canvas')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('run-state')).toHaveText('done', { timeout: 240_000 });
  await expect(page.getByTestId('step-counter')).toHaveText('0004');
  await expect(page.getByTestId('last-loss')).not.toHaveText('—');
  await expect(page.getByTestId('last-acc')).toHaveText(/%/);
  expect(await canvasColours(page, 'loss-chart')).toBeGreaterThan(lossBefore);
  // before and after side by side, each drawn (many colours, not a blank canvas)
  await expect(page.getByTestId('heatmap-before-canvas')).toBeVisible({ timeout: 60_000 });
  expect(await canvasColours(page, 'heatmap-before-canvas')).toBeGreaterThan(8);
  expect(await canvasColours(page, 'heatmap-now-canvas')).toBeGreaterThan(8);
  await expect(page.getByTestId('agents-io')).toContainText('tbl:');
  // hovering a cell names its value and the two tokens
  await page.getByTestId('heatmap-now-canvas').scrollIntoViewIfNeeded();
  const box = (await page.getByTestId('heatmap-now-canvas').boundingBox())!;
  await page.mouse.move(box.x + box.width - 20, box.y + 45);
  await expect(page.locator('.heatmap-tip').last()).toContainText('attention');
  await shot(page, 'trained');
  // accuracy on every split
  await page.getByTestId('evaluate').click();
  await expect(page.getByTestId('eval-table')).toContainText('heldout', { timeout: 120_000 });
  await expect(page.getByTestId('eval-table')).toContainText('ood');

  await page.getByTestId('adapter-name-input').fill('e2e lookup');
  await page.getByTestId('save-adapters').click();
  await expect(page.getByTestId('adapter-row')).toHaveCount(2);
  await expect(page.getByTestId('adapters-table')).toContainText('e2e lookup · table');

  await page.reload();
  await ready(page);
  await expect(page.getByTestId('adapter-row')).toHaveCount(2);
  await expect(page.getByTestId('adapters-table')).toContainText('e2e lookup · query');
  await page.getByTestId('library').scrollIntoViewIfNeeded();
  await shot(page, 'library-after-reload');

  const row = page.getByTestId('adapter-row').filter({ hasText: 'e2e lookup · table' });
  const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('export-adapter').click()]);
  expect(download.suggestedFilename()).toMatch(/\.zip$/);
  const files = unzip(new Uint8Array(readFileSync(await download.path())));
  expect([...files.keys()]).toEqual(expect.arrayContaining([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]));
  const adapter = decodeAdapter(files, tinyConfig);
  expect(adapter.config.r).toBe(2);
  expect(adapter.config.lora_alpha).toBe(4);
  expect(adapter.config.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
  // names and shapes exactly as PEFT writes them: A (r, in), B (out, r)
  const raw = decodeSafetensors(files.get(ADAPTER_WEIGHTS_FILE)!).tensors;
  const D = tinyConfig.hidden_size;
  const kv = tinyConfig.num_key_value_heads * tinyConfig.head_dim;
  const expected = new Map<string, number[]>();
  for (let l = 0; l < tinyConfig.num_hidden_layers; l++) {
    for (const [m, out] of [['q_proj', D], ['k_proj', kv], ['v_proj', kv], ['o_proj', D]] as const) {
      expected.set(loraKey(l, m, 'A'), [2, D]);
      expected.set(loraKey(l, m, 'B'), [out, 2]);
    }
  }
  expect([...raw.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, shape] of expected) expect(raw.get(name)!.shape, name).toEqual(shape);
  // trained: B is no longer all zeros (it starts at zero)
  const b = raw.get(loraKey(0, 'v_proj', 'B'))!.data;
  expect(b.some((v) => v !== 0)).toBe(true);
  await shotFull(page, 'full-page');
});

test('the page opens on a ready default: lookup, two agents, DiffMAS on the shipped toy model', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('selftest')).toContainText('✓ passed');
  await expect(page.getByTestId('model-row-builtin:toy')).toBeVisible();
  await expect(page.getByTestId('model')).toHaveValue('builtin:toy');
  await expect(page.getByTestId('task')).toHaveValue('lookup');
  await expect(page.getByTestId('method')).toHaveValue('diffmas');
  await expect(page.getByTestId('agent-node-a0')).toContainText('table');
  await expect(page.getByTestId('agent-node-a1')).toContainText('query');
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeEnabled();
  // the setup is in the link
  expect(new URL(page.url()).hash).toContain('task=lookup&difficulty=1&method=diffmas&model=builtin:toy');
  await shot(page, 'default');
});
