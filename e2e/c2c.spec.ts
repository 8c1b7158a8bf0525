// Cache-to-Cache on the page: the method selector offers c2c with its description, its LoRA settings
// are marked unused (it trains a fuser), a run trains to the end and inspects, and its exported run
// bundle holds the trained fuser (c2c_fuser.safetensors, named by run.json's files.fuser).
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { unzipSync } from 'fflate';
import { ready, shot, smallLink, trainToEnd } from './helpers';

test('c2c trains in the page, and its exported bundle carries its fuser', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ method: 'c2c', steps: 4, evalEvery: 2, evalSize: 4, batch: 2 }));
  await ready(page);
  const method = page.getByTestId('method');
  await expect(method).toHaveValue('c2c');
  await expect(method.locator('option[value="c2c"]')).toHaveText('Cache-to-Cache (C2C)');
  await expect(page.getByText('fused into the receiver’s by a learned projector and gate per layer').first()).toBeVisible();
  await expect(page.getByRole('heading', { name: 'LoRA · unused' })).toBeVisible();
  await expect(page.getByTestId('rank')).toBeDisabled();
  await expect(page.getByTestId('steps')).toBeEnabled();

  await trainToEnd(page);
  await expect(page.getByTestId('last-loss')).not.toHaveText('—');
  await expect(page.getByTestId('c2c-fuser-note')).toBeVisible();
  await expect(page.getByTestId('save-adapters')).toHaveCount(0);
  await expect(page.getByTestId('heatmap-now-canvas')).toBeVisible({ timeout: 60_000 });
  await shot(page, 'c2c-trained');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-run').click()]);
  const files = new Map(Object.entries(unzipSync(new Uint8Array(readFileSync(await download.path())))));
  const runJson = [...files.keys()].find((k) => k === 'run.json' || k.endsWith('/run.json'))!;
  const root = runJson.slice(0, runJson.length - 'run.json'.length);
  const meta = JSON.parse(new TextDecoder().decode(files.get(runJson)!));
  expect(meta.method).toMatchObject({ name: 'c2c', train: 'fuser' });
  expect(meta.training.stepsDone).toBe(4);
  expect(meta.files.fuser).toBe('c2c_fuser.safetensors');
  expect(meta.files.adapters).toEqual({});
  expect(files.get(`${root}c2c_fuser.safetensors`)!.length).toBeGreaterThan(100);
});
