// Import by file picker and drag-and-drop: good files are stored; bad ones (a random file, a damaged zip, a checkpoint
// whose tensors do not match its config, an adapter made for another base model) show what is wrong
// and change nothing stored.
import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { decodeCheckpoint, encodeCheckpoint, validateConfig, type LlamaConfig } from '../src/storage/checkpoint';
import { encodeAdapter, expectedAdapterTensors, type LoraAdapterConfig } from '../src/storage/peft';
import { zipStore } from '../src/storage/zip';
import { ready, shot, smallLink } from './helpers';

const tiny = validateConfig(JSON.parse(readFileSync('public/models/tiny/config.json', 'utf8')));
const tinyFiles = ['config.json', 'model.safetensors', 'tokenizer.json'].map((n) => [n, new Uint8Array(readFileSync(`public/models/tiny/${n}`))] as const);

/** PEFT files of an adapter for `base` with small deterministic weights. */
function adapterFiles(base: LlamaConfig, r = 2, targets: LoraAdapterConfig['target_modules'] = ['q_proj', 'v_proj']): Map<string, Uint8Array> {
  const config: LoraAdapterConfig = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r, lora_alpha: 2 * r, target_modules: targets, lora_dropout: 0,
    bias: 'none', fan_in_fan_out: false, base_model_name_or_path: null, layers_to_transform: null, inference_mode: true,
  };
  const tensors = new Map<string, Float32Array>();
  let seed = 1;
  for (const [name, shape] of expectedAdapterTensors(config, base)) {
    tensors.set(name, Float32Array.from({ length: shape[0] * shape[1] }, () => ((seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5) * 0.1));
  }
  return encodeAdapter({ config, tensors }, base);
}

const adapterZip = (base: LlamaConfig, r = 2) => Buffer.from(zipStore(adapterFiles(base, r)));

async function counts(page: Page): Promise<{ models: number; adapters: number }> {
  return {
    models: await page.locator('[data-testid^="model-row-"]').count(),
    adapters: await page.getByTestId('adapter-row').count(),
  };
}

async function importFile(page: Page, name: string, buffer: Buffer, mimeType = 'application/octet-stream'): Promise<void> {
  await page.getByTestId('import-input').setInputFiles({ name, mimeType, buffer });
}

test('bad files show what is wrong and change nothing; good ones are stored', async ({ page }) => {
  await page.goto(smallLink());
  await ready(page);
  const before = await counts(page);
  const error = page.getByTestId('library-error');

  // 1. a random file
  const random = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) % 251));
  await importFile(page, 'weights.bin', random);
  await expect(error).toContainText('neither a base model nor an adapter');
  await expect(error).toContainText('weights.bin');
  expect(await counts(page)).toEqual(before);
  await page.getByTestId('library').scrollIntoViewIfNeeded();
  await shot(page, 'import-random-file');

  // 2. a damaged zip
  await importFile(page, 'model.zip', random, 'application/zip');
  await expect(error).toContainText('cannot be read as a zip archive');
  expect(await counts(page)).toEqual(before);

  // 3. a checkpoint whose config.json does not fit its weights
  const wrong = new Map<string, Uint8Array>(tinyFiles);
  wrong.set('config.json', new TextEncoder().encode(JSON.stringify({ ...tiny, hidden_size: 48, head_dim: 12 })));
  await importFile(page, 'misfit-checkpoint.zip', Buffer.from(zipStore(wrong)), 'application/zip');
  await expect(error).toContainText('This checkpoint cannot be used');
  await expect(error).toContainText('expected [54, 48]');
  expect(await counts(page)).toEqual(before);

  // 4. an adapter made for a larger base model than the selected (tiny) one
  const toyLike = validateConfig({ ...tiny, hidden_size: 64, intermediate_size: 176, num_hidden_layers: 2, head_dim: 16 });
  await importFile(page, 'big-adapter.zip', adapterZip(toyLike), 'application/zip');
  await expect(error).toContainText("does not fit the base model 'tiny (shipped)'");
  await expect(error).toContainText('shape');
  expect(await counts(page)).toEqual(before);
  await shot(page, 'import-misfit-adapter');

  // 5. dropped on the library: a config.json alone
  const dt = await page.evaluateHandle(() => {
    const d = new DataTransfer();
    d.items.add(new File(['{"model_type": "llama"}'], 'config.json', { type: 'application/json' }));
    return d;
  });
  await page.getByTestId('library').dispatchEvent('dragover', { dataTransfer: dt });
  await page.getByTestId('library').dispatchEvent('drop', { dataTransfer: dt });
  await expect(error).toContainText('a checkpoint without weights');
  expect(await counts(page)).toEqual(before);

  // a fitting adapter (loose files) and a checkpoint (zip) are stored
  const loose = adapterFiles(tiny, 2, ['q_proj']);
  await page.getByTestId('import-input').setInputFiles(
    [...loose].map(([name, bytes]) => ({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) })),
  );
  await expect(page.getByTestId('library-notice')).toContainText("Imported adapter");
  await expect(page.getByTestId('adapter-row')).toHaveCount(before.adapters + 1);
  // the shipped tiny model itself is already there: said, not duplicated
  await importFile(page, 'my-tiny.zip', Buffer.from(zipStore(new Map(tinyFiles))), 'application/zip');
  await expect(error).toContainText("This base model is already in the library as 'tiny (shipped)'");
  expect((await counts(page)).models).toBe(before.models);
  // a checkpoint with other weights is stored
  const ck = decodeCheckpoint(new Map(tinyFiles));
  ck.tensors.get('model.norm.weight')![0] += 0.5;
  await importFile(page, 'my-tiny.zip', Buffer.from(zipStore(encodeCheckpoint(ck))), 'application/zip');
  await expect(page.getByTestId('library-notice')).toContainText("Imported base model 'my-tiny'");
  await expect(page.locator('[data-testid^="model-row-"]')).toHaveCount(before.models + 1);
});
