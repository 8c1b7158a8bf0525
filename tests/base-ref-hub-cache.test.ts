// `--base-ref hub:ORG/NAME[@REV]` resolves where the playground itself fetches Hub models (the CLI's
// cache of src/cli/hub.ts, `--model hf:`) first and then in the Hugging Face cache (huggingface_hub's
// layout), as the companion's base_ref.hub_folder does (python/tests/test_base_ref_hub_cache.py);
// absent from both, the error names both folders. Fake cache folders only: nothing is fetched.
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseRefFolder, hubBaseFolder } from '../src/cli/base-ref-node';
import type { BaseRef } from '../src/storage/base-ref';

const TINY = 'public/models/tiny';
const C1 = 'c'.repeat(40);
const C2 = 'd'.repeat(40);
let work: string;
let ours: string;
let hf: string;

/** Our cache's layout (hub.ts): ORG--NAME/<commit>/ and ORG--NAME/refs/<encoded revision> holding the commit. */
async function putOurs(repo: string, revision: string, commit: string) {
  const top = path.join(ours, repo.replace('/', '--'));
  await mkdir(path.join(top, 'refs'), { recursive: true });
  await writeFile(path.join(top, 'refs', encodeURIComponent(revision)), `${commit}\n`);
  await cp(TINY, path.join(top, commit), { recursive: true });
  return path.join(top, commit);
}

/** huggingface_hub's layout: models--ORG--NAME/refs/<revision> -> snapshots/<commit>/. */
async function putHf(repo: string, revision: string, commit: string) {
  const top = path.join(hf, `models--${repo.replace('/', '--')}`);
  await mkdir(path.join(top, 'refs'), { recursive: true });
  await writeFile(path.join(top, 'refs', revision), commit);
  await cp(TINY, path.join(top, 'snapshots', commit), { recursive: true });
  return path.join(top, 'snapshots', commit);
}

const hubRef = (id: string, revision?: string): BaseRef => ({
  source: 'hub', id, ...(revision ? { revision } : {}), sha256: 'a'.repeat(64),
  fileSha256: { 'config.json': 'a'.repeat(64), 'tokenizer.json': null, 'tokenizer_config.json': null },
});

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'base-ref-hub-'));
  ours = path.join(work, 'ours');
  hf = path.join(work, 'hf');
  await mkdir(ours, { recursive: true });
  await mkdir(hf, { recursive: true });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('a Hub base reference, in both caches', () => {
  it('is found in the playground cache (what --model hf: fetched), by branch, by a slashed revision and by commit', async () => {
    const dir = await putOurs('Org/ours-only', 'main', C1);
    expect(await hubBaseFolder('Org/ours-only', undefined, { ours, hf })).toBe(dir);
    expect(await hubBaseFolder('Org/ours-only', 'main', { ours, hf })).toBe(dir);
    expect(await hubBaseFolder('Org/ours-only', C1, { ours, hf })).toBe(dir);
    const pr = await putOurs('Org/ours-only', 'refs/pr/1', C2);
    expect(await hubBaseFolder('Org/ours-only', 'refs/pr/1', { ours, hf })).toBe(pr);
    expect(await baseRefFolder(hubRef('Org/ours-only'), work, { ours, hf })).toBe(dir);
  });

  it('is found in the Hugging Face cache when the playground cache lacks it', async () => {
    const dir = await putHf('Org/hf-only', 'main', C1);
    expect(await hubBaseFolder('Org/hf-only', undefined, { ours, hf })).toBe(dir);
    expect(await baseRefFolder(hubRef('Org/hf-only', C1), work, { ours, hf })).toBe(dir);
  });

  it('prefers the playground cache when both hold the revision', async () => {
    const mine = await putOurs('Org/both', 'main', C1);
    await putHf('Org/both', 'main', C1);
    expect(await hubBaseFolder('Org/both', 'main', { ours, hf })).toBe(mine);
  });

  it('absent from both: the error names both folders and how to fetch it', async () => {
    await expect(baseRefFolder(hubRef('Org/absent', 'v2'), work, { ours, hf })).rejects.toThrow(
      `the base hub:Org/absent@v2 is not in the playground's Hub cache (${ours}), and not in the Hugging Face cache (${hf}): fetch it (npm run cli -- hub hf:Org/absent@v2, or huggingface-cli download Org/absent --revision v2), or give the base folder`);
    // a revision neither cache has is not taken from another revision
    await expect(hubBaseFolder('Org/ours-only', 'v9', { ours, hf })).rejects.toThrow(/is not in the playground's Hub cache/);
  });
});
