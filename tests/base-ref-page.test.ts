// Issue 23 item 4, the page's import: a run bundle that references its base by a library id is
// resolved from the library and checked by its weights' digest; a Hub or folder reference, a library
// id the page does not hold, and other weights are refused with what to do.
import { readFile } from 'node:fs/promises';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { loadBaseModel, readFolder } from '../src/cli/files';
import { defaultRunConfig } from '../src/mas/run';
import { runBundleContent } from '../src/mas/run-data';
import { presetForTask } from '../src/mas/topology';
import { weightsDigest, type BaseRef } from '../src/storage/base-ref';
import { memoryStore } from '../src/storage/library';
import { writeRunBundle } from '../src/storage/run-bundle';
import { makeTask } from '../src/tasks/tasks';
import { Engine } from '../src/worker/engine';

const TINY = 'public/models/tiny';
const engine = () => new Engine({ store: memoryStore(), fetchAsset: (p) => readFile(`public/${p}`).then((b) => new Uint8Array(b)) });

async function refZip(ref: (sha256: string) => BaseRef): Promise<Uint8Array> {
  const base = await loadBaseModel(TINY);
  const baseFiles = await readFolder(TINY);
  const task = makeTask('lookup', 1);
  const content = runBundleContent({
    config: { ...defaultRunConfig({ topology: presetForTask(task), modelId: 'builtin:tiny', steps: 2, batch: 2, evalSize: 2 }), method: 'single', seed: 1 },
    base, baseFiles, adapters: [], initialAdapters: [], createdBy: 'cli experiment', stepsDone: 0, losses: [],
    evaluation: [], heldout: [], wallSeconds: null, now: new Date(0),
  });
  const files = writeRunBundle({ ...content, baseRef: ref(await weightsDigest(baseFiles)) });
  return zipSync(Object.fromEntries([...files].map(([k, v]) => [`single-seed1/${k}`, v])));
}

describe("the page's import of a bundle that references its base", () => {
  it('a library reference is taken from the library (no copy stored); others are refused naming what to do', async () => {
    const e = engine();
    const models = (await e.listModels()).length;
    const r = await e.importFiles([{ name: 'single-seed1.zip', bytes: await refZip((sha256) => ({ source: 'library', id: 'builtin:tiny', sha256 })) }]);
    expect(r.kind).toBe('run');
    expect((await e.runRecord(r.id)).baseModelId).toBe('builtin:tiny');
    expect((await e.listModels()).length).toBe(models);
    const refused = async (ref: (sha256: string) => BaseRef) => (await e.importFiles([{ name: 'x.zip', bytes: await refZip(ref) }]).catch((x) => x as Error)) as Error;
    expect((await refused((sha256) => ({ source: 'hub', id: 'Org/tiny', sha256 }))).message).toMatch(/^this run bundle cannot be read: it references its base as hub Org\/tiny, which only the command line and the companion resolve/);
    expect((await refused((sha256) => ({ source: 'library', id: 'model-gone', sha256 }))).message).toMatch(/it references the library model "model-gone", which this page's library does not hold: import that base first/);
    expect((await refused(() => ({ source: 'library', id: 'builtin:tiny', sha256: '0'.repeat(64) }))).message).toMatch(/the base referenced as library builtin:tiny has weights with sha256 [0-9a-f]{64}, but run.json records 0{64}: these are not the weights/);
  });
});
