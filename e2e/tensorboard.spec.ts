// TensorBoard out (issue 21 item 7): a run trained in the page exports a zip whose
// tensorboard/<method>/seed<seed>/ folder holds one event file (src/storage/tensorboard.ts); read back
// with the TS reader, it holds the record's values (results/record.json in the same zip): every
// training loss with its learning rate, the held-out evaluations during training, "Evaluate all
// splits" at the last step, and the config as text at step 0.
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { unzipSync } from 'fflate';
import type { RunRecord } from '../src/storage/records';
import { readRunBundle } from '../src/storage/run-bundle';
import { readEventFile, scalarsByTag } from '../src/storage/tensorboard-read';
import { ready, smallLink, trainToEnd } from './helpers';

const f32 = (x: number) => Math.fround(x);

test('the exported run holds a TensorBoard event file with the record\u2019s curves, evaluations and config', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 4, evalEvery: 2, evalSize: 4, batch: 2 }));
  await ready(page);
  await trainToEnd(page);
  await page.getByTestId('evaluate').click();
  await expect(page.getByTestId('eval-table')).toContainText('ood', { timeout: 120_000 });
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-run').click()]);
  const zip = unzipSync(new Uint8Array(readFileSync(await download.path())));
  const rec = JSON.parse(new TextDecoder().decode(zip['results/record.json'])) as RunRecord;
  expect(rec).toMatchObject({ kind: 'run', status: 'done', stepsDone: 4 });

  const names = Object.keys(zip).filter((k) => k.startsWith('tensorboard/'));
  expect(names).toEqual([`tensorboard/diffmas/seed7/events.out.tfevents.${Math.floor(rec.createdAt / 1000)}.latent-playground.page`]);
  const events = readEventFile(zip[names[0]]);
  expect(events[0]).toMatchObject({ step: 0, fileVersion: 'brain.Event:2' });
  const text = events[1].values[0];
  expect(text).toMatchObject({ tag: 'config/text_summary', pluginName: 'text' });
  expect(JSON.parse(text.tensor!.strings[0].replace(/^```json\n/, '').replace(/\n```$/, ''))).toEqual(rec.config);
  expect(events.map((e) => e.step)).toEqual([...events.map((e) => e.step)].sort((a, b) => a - b));

  const s = scalarsByTag(events);
  expect(rec.curves.steps).toEqual([1, 2, 3, 4]);
  expect(s.get('train/loss')).toEqual(rec.curves.steps.map((step, i) => [step, f32(rec.curves.loss[i])]));
  // the learning rate of the schedule the bundle's run.json states (linear warm-up, then cosine to minLr over the steps)
  const opt = readRunBundle(new Map(Object.entries(zip))).json.training.optimizer;
  expect(opt.schedule).toMatch(/warm-?up.*cosine/i);
  const lr = (step: number) => step <= opt.warmupSteps ? (rec.config.lr * step) / opt.warmupSteps
    : opt.minLr + 0.5 * (rec.config.lr - opt.minLr) * (1 + Math.cos((Math.PI * (step - opt.warmupSteps)) / Math.max(1, rec.config.steps - opt.warmupSteps)));
  const lrs = s.get('train/lr')!;
  expect(lrs.map(([step]) => step)).toEqual(rec.curves.steps);
  lrs.forEach(([step, v]) => expect(v, `lr at step ${step}`).toBeCloseTo(lr(step), 8)); // float32 of a rate <= 0.01: within 6e-10
  // held-out during training (steps 2 and 4), the table's held-out row at the last step in place of its point
  const rows = rec.evalRows!;
  expect(rows.map((r) => r.split).sort()).toEqual(['heldout', 'ood', 'train']);
  const held = new Map(rec.curves.evals.map((e) => [e.step, e] as const));
  expect([...held.keys()]).toEqual([2, 4]);
  const table = rows.find((r) => r.split === 'heldout')!;
  expect(s.get('eval/heldout/accuracy')).toEqual([[2, f32(held.get(2)!.accuracy!)], [4, f32(table.accuracy)]]);
  expect(s.get('eval/heldout/loss')).toEqual([[2, f32(held.get(2)!.loss!)], [4, f32(table.loss!)]]);
  for (const split of ['train', 'ood'] as const) {
    const r = rows.find((x) => x.split === split)!;
    expect(s.get(`eval/${split}/accuracy`)).toEqual([[4, f32(r.accuracy)]]);
    expect(s.get(`eval/${split}/loss`)).toEqual([[4, f32(r.loss!)]]);
  }
  expect([...s.keys()].sort()).toEqual(['eval/heldout/accuracy', 'eval/heldout/loss', 'eval/ood/accuracy', 'eval/ood/loss', 'eval/train/accuracy', 'eval/train/loss', 'train/loss', 'train/lr']);
});
