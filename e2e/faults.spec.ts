// Faults while working: a full quota (QuotaExceededError from IndexedDB), a diverging run (NaN loss)
// and a lost GPU device each stop what was going on with a message and keep everything stored; after
// a lost device the next run gets a new one. The faults are injected into the engine worker the way
// the browser raises them (Playwright evaluates in the worker): IndexedDB's put throws
// QuotaExceededError, the loss read back from the GPU is NaN, the GPUDevice is destroyed.
import { readFileSync } from 'node:fs';
import { expect, test, type Page, type Worker } from '@playwright/test';
import { validateConfig } from '../src/storage/checkpoint';
import { encodeAdapter, expectedAdapterTensors, type LoraAdapterConfig } from '../src/storage/peft';
import { zipStore } from '../src/storage/zip';
import { ready, shot, smallLink } from './helpers';

const tiny = validateConfig(JSON.parse(readFileSync('public/models/tiny/config.json', 'utf8')));

function engineWorker(page: Page): Worker {
  const w = page.workers().find((x) => x.url().includes('engine'));
  if (!w) throw new Error(`no engine worker among ${page.workers().map((x) => x.url()).join(', ')}`);
  return w;
}

async function counts(page: Page): Promise<{ models: number; adapters: number }> {
  return { models: await page.locator('[data-testid^="model-row-"]').count(), adapters: await page.getByTestId('adapter-row').count() };
}

test('a full quota (QuotaExceededError) stops a save with a message; nothing is half-written', async ({ page }) => {
  await page.goto(smallLink());
  await ready(page);
  const before = await counts(page);
  await engineWorker(page).evaluate(() => {
    const put = IDBObjectStore.prototype.put;
    (self as unknown as { restorePut: () => void }).restorePut = () => (IDBObjectStore.prototype.put = put);
    IDBObjectStore.prototype.put = function (value: unknown, key?: IDBValidKey) {
      if (String(key).startsWith('library:adapter:')) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.call(this, value, key);
    };
  });
  const config: LoraAdapterConfig = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ['q_proj'], lora_dropout: 0, bias: 'none',
    fan_in_fan_out: false, base_model_name_or_path: null, layers_to_transform: null, inference_mode: true,
  };
  const tensors = new Map([...expectedAdapterTensors(config, tiny)].map(([n, s]) => [n, new Float32Array(s[0] * s[1]).fill(0.01)]));
  const zip = Buffer.from(zipStore(encodeAdapter({ config, tensors }, tiny)));
  await page.getByTestId('import-input').setInputFiles({ name: 'adapter.zip', mimeType: 'application/zip', buffer: zip });
  const error = page.getByTestId('library-error');
  await expect(error).toContainText('Browser storage is full');
  await expect(error).toContainText('Nothing was changed');
  expect(await counts(page)).toEqual(before);
  await page.getByTestId('library').scrollIntoViewIfNeeded();
  await shot(page, 'quota-full');
  // with room again the same file is stored
  await engineWorker(page).evaluate(() => (self as unknown as { restorePut: () => void }).restorePut());
  await page.getByTestId('import-input').setInputFiles({ name: 'adapter.zip', mimeType: 'application/zip', buffer: zip });
  await expect(page.getByTestId('library-notice')).toContainText('Imported adapter');
  await page.reload();
  await ready(page);
  expect(await counts(page)).toEqual({ ...before, adapters: before.adapters + 1 });
});

test('a diverging run (NaN loss) and a lost GPU device stop the run with a message; the library is untouched; training starts again', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 50, evalEvery: 0 }));
  await ready(page);
  const before = await counts(page);
  const worker = engineWorker(page);
  const state = page.getByTestId('run-state');
  const msg = page.getByTestId('run-message');
  const counter = page.getByTestId('step-counter');

  // 1. NaN: from now on the loss the GPU hands back (the 2-float loss log) reads NaN
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(counter).not.toHaveText('0000', { timeout: 120_000 });
  await worker.evaluate(() => {
    const get = GPUBuffer.prototype.getMappedRange;
    (self as unknown as { restoreRead: () => void }).restoreRead = () => (GPUBuffer.prototype.getMappedRange = get);
    GPUBuffer.prototype.getMappedRange = function (offset?: number, size?: number) {
      const r = get.call(this, offset, size);
      if (r.byteLength === 8) new Float32Array(r).fill(NaN);
      return r;
    };
  });
  await expect(state).toHaveText('error', { timeout: 120_000 });
  await expect(msg).toContainText('diverged');
  await expect(msg).toContainText('nothing stored was changed');
  await shot(page, 'diverged');
  expect(await counts(page)).toEqual(before);
  await worker.evaluate(() => (self as unknown as { restoreRead: () => void }).restoreRead());

  // 2. the device is lost mid-run (destroyed as a driver reset would)
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(state).toHaveText('running');
  await expect(counter).not.toHaveText('0000', { timeout: 120_000 });
  await worker.evaluate(() => {
    const create = GPUDevice.prototype.createCommandEncoder;
    GPUDevice.prototype.createCommandEncoder = function (d?: GPUCommandEncoderDescriptor) {
      GPUDevice.prototype.createCommandEncoder = create;
      this.destroy();
      return create.call(this, d);
    };
  });
  await expect(state).toHaveText('error', { timeout: 120_000 });
  await expect(msg).toContainText('GPU device lost');
  await expect(msg).toContainText('library is intact');
  expect(await counts(page)).toEqual(before);
  await shot(page, 'device-lost');

  // 3. start again: a new device, training runs; pause holds within one step; reset
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(state).toHaveText('running', { timeout: 60_000 });
  await expect(counter).not.toHaveText('0000', { timeout: 120_000 });
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(state).toHaveText('paused');
  const paused = Number(await counter.innerText());
  await page.waitForTimeout(3000);
  expect(Number(await counter.innerText()) - paused).toBeLessThanOrEqual(1);
  const at = Number(await counter.innerText());
  await page.getByRole('button', { name: 'Step', exact: true }).click();
  await expect(counter).toHaveText(String(at + 1).padStart(4, '0'), { timeout: 60_000 });
  await expect(state).toHaveText('paused');
  // a run with steps taken is discarded only after a confirmation
  await page.getByRole('button', { name: 'Reset', exact: true }).click();
  await page.getByTestId('reset-confirm').getByRole('button', { name: 'Reset' }).click();
  await expect(state).toHaveText('idle');
});
