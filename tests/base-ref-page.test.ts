// Issue 23 item 4, the page's import: a run bundle that references its base by a library id is
// resolved from the library and checked by the digests of its weights, config.json and tokenizer
// files; a Hub or folder reference, a library id the page does not hold, other weights and another
// config.json are refused with what to do.
import { readFile } from 'node:fs/promises';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { loadBaseModel, readFolder } from '../src/cli/files';
import { defaultRunConfig } from '../src/mas/run';
import { runBundleContent } from '../src/mas/run-data';
import { presetForTask } from '../src/mas/topology';
import { baseDigests, type BaseRef } from '../src/storage/base-ref';
import { memoryStore } from '../src/storage/library';
import { writeRunBundle } from '../src/storage/run-bundle';
import { makeTask } from '../src/tasks/tasks';
import { Engine } from '../src/worker/engine';

const TINY = 'public/models/tiny';
const engine = () => new Engine({ store: memoryStore(), fetchAsset: (p) => readFile(`public/${p}`).then((b) => new Uint8Array(b)) });

type Digests = Pick<BaseRef, 'sha256' | 'fileSha256'>;

async function refZip(ref: (digests: Digests) => BaseRef): Promise<Uint8Array> {
  const base = await loadBaseModel(TINY);
  const baseFiles = await readFolder(TINY);
  const task = makeTask('lookup', 1);
  const content = runBundleContent({
    config: { ...defaultRunConfig({ topology: presetForTask(task), modelId: 'builtin:tiny', steps: 2, batch: 2, evalSize: 2 }), method: 'single', seed: 1 },
    base, baseFiles, adapters: [], initialAdapters: [], createdBy: 'cli experiment', stepsDone: 0, losses: [],
    evaluation: [], heldout: [], wallSeconds: null, now: new Date(0),
  });
  const files = writeRunBundle({ ...content, baseRef: ref(await baseDigests(baseFiles)) });
  return zipSync(Object.fromEntries([...files].map(([k, v]) => [`single-seed1/${k}`, v])));
}

describe("the page's import of a bundle that references its base", () => {
  it('a library reference is taken from the library (no copy stored); others are refused naming what to do', async () => {
    const e = engine();
    const models = (await e.listModels()).length;
    const r = await e.importFiles([{ name: 'single-seed1.zip', bytes: await refZip((d) => ({ source: 'library', id: 'builtin:tiny', ...d })) }]);
    expect(r.kind).toBe('run');
    expect((await e.runRecord(r.id)).baseModelId).toBe('builtin:tiny');
    expect((await e.listModels()).length).toBe(models);
    const refused = async (ref: (d: Digests) => BaseRef) => (await e.importFiles([{ name: 'x.zip', bytes: await refZip(ref) }]).catch((x) => x as Error)) as Error;
    expect((await refused((d) => ({ source: 'hub', id: 'Org/tiny', ...d }))).message).toMatch(/^this run bundle cannot be read: it references its base as hub Org\/tiny, which only the command line and the companion resolve/);
    expect((await refused((d) => ({ source: 'library', id: 'model-gone', ...d }))).message).toMatch(/it references the library model "model-gone", which this page's library does not hold: import that base first/);
    expect((await refused((d) => ({ source: 'library', id: 'builtin:tiny', ...d, sha256: '0'.repeat(64) }))).message).toMatch(/the base referenced as library builtin:tiny has weights with sha256 [0-9a-f]{64}, but run.json records 0{64}: these are not the weights/);
    // issue 20 item 2: the library's model has the weights but not the config.json the run was trained on
    const cfg = (d: Digests) => ({ source: 'library' as const, id: 'builtin:tiny', ...d, fileSha256: { ...d.fileSha256, 'config.json': '1'.repeat(64) } });
    expect((await refused(cfg)).message).toMatch(/the base referenced as library builtin:tiny has a config.json with sha256 [0-9a-f]{64}, but run.json records 1{64}: this is not the model the run was trained on/);
    expect((await e.listModels()).length).toBe(models);
  });
});
