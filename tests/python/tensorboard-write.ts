// Writes the TensorBoard event files of tests/fixtures/tensorboard-records.json as the engine does
// (src/storage/tensorboard.ts, with the run's learning-rate schedule), for
// python/tests/test_tensorboard_engine.py to read back with the tensorboard package's reader.
//   node scripts/bundle.mjs tests/python/tensorboard-write.ts OUT.mjs && node OUT.mjs FIXTURE DIR
// Each record's runs go under DIR/<record id>/<method>/seed<seed>/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { trainHyperOf } from '../../src/mas/run-data';
import { lrAt } from '../../src/model/train';
import type { RunRecord } from '../../src/storage/records';
import { recordRuns, tensorboardFiles } from '../../src/storage/tensorboard';

const [fixture, out] = process.argv.slice(2);
if (!fixture || !out) {
  console.error('usage: node tensorboard-write.mjs FIXTURE.json OUT_DIR');
  process.exit(2);
}
const { records } = JSON.parse(readFileSync(fixture, 'utf8')) as { records: RunRecord[] };
for (const rec of records) {
  const runs = recordRuns(rec, { lrOf: (c, step) => lrAt(step, trainHyperOf(c)) });
  for (const [name, bytes] of tensorboardFiles(runs, { host: 'fixture', tag: 'test', prefix: `${rec.id}/` })) {
    const p = path.join(out, ...name.split('/'));
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, bytes);
  }
}
