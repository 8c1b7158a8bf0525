// The CLI's `--model hf:ORG/NAME[@REV]` and `cli hub` against the local Hub (tests/hub-server.ts),
// HF_ENDPOINT and LATENT_PLAYGROUND_HUB_CACHE pointing at it and at a temporary cache: a download
// with a dropped connection, a wrong checksum (no revision folder, its bytes discarded), a download
// stopped earlier resumed from its .part file, the cached revision used again (and offline), and
// generate end to end on hf:test/tiny.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cachedHubFolder, hubCacheDir } from '../src/cli/hub';
import { acquireLock } from '../src/cli/lock';
import { cli } from './cli-helpers';
import { repoFromFolder, startHubServer, type HubServer } from './hub-server';

const tiny = repoFromFolder('public/models/tiny');
let hub: HubServer;
let cache: string;
const saved = { endpoint: process.env.HF_ENDPOINT, cache: process.env.LATENT_PLAYGROUND_HUB_CACHE };

beforeAll(async () => {
  hub = await startHubServer({ 'test/tiny': tiny, 'test/other': new Map(tiny) });
  process.env.HF_ENDPOINT = hub.url;
});
beforeEach(async () => {
  cache = await mkdtemp(path.join(tmpdir(), 'hub-cache-'));
  process.env.LATENT_PLAYGROUND_HUB_CACHE = cache;
  hub.requests.length = 0;
});
afterAll(async () => {
  await hub.close();
  for (const [k, v] of [['HF_ENDPOINT', saved.endpoint], ['LATENT_PLAYGROUND_HUB_CACHE', saved.cache]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const fetched = () => hub.requests.map((r) => r.replace(/^test\/\w+\//, ''));

describe('cli hub and --model hf:', () => {
  it('takes the cache from the environment (or ~/.cache/latent-playground/hub)', () => {
    expect(hubCacheDir({ LATENT_PLAYGROUND_HUB_CACHE: '/x/y' })).toBe('/x/y');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/latent-playground/hub');
  });

  it('fetches a revision into the cache through a dropped connection, then reuses it (also offline)', async () => {
    hub.dropAfter = { file: 'model.safetensors', bytes: 40_000 };
    const r = await cli(['hub', 'hf:test/tiny']);
    expect(r.err).toMatch(/hub: model\.safetensors: the connection (ended|dropped) at byte 40000 of 83296.*resuming/);
    expect(r.code).toBe(0);
    const dir = r.out.trim();
    expect(dir).toBe(path.join(cache, 'test--tiny', hub.commit));
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) expect(new Uint8Array(await readFile(path.join(dir, f)))).toEqual(tiny.get(f));
    expect(fetched()).toEqual(['config.json', 'tokenizer.json', 'model.safetensors', 'model.safetensors (from 40000)']);
    expect((await readFile(path.join(cache, 'test--tiny', 'refs', 'main'), 'utf8')).trim()).toBe(hub.commit);
    // nothing left beside it but the refs
    expect((await readdir(path.join(cache, 'test--tiny'))).sort()).toEqual([hub.commit, 'refs']);

    expect(await cachedHubFolder('test/tiny')).toBe(dir);
    expect(await cachedHubFolder(`test/tiny@${hub.commit}`)).toBe(dir);
    expect(await cachedHubFolder('test/tiny@v2')).toBeNull();
    expect(await cachedHubFolder('test/other')).toBeNull();
    hub.requests.length = 0;
    const again = await cli(['hub', `hf:test/tiny@${hub.commit}`]);
    expect(again.out.trim()).toBe(dir);
    expect(fetched()).toEqual([]);

    process.env.HF_ENDPOINT = 'http://127.0.0.1:1';
    try {
      const offline = await cli(['hub', 'hf:test/tiny']);
      expect(offline.code).toBe(0);
      expect(offline.out.trim()).toBe(dir);
      expect(offline.err).toMatch(/note: cannot reach the Hub at http:\/\/127\.0\.0\.1:1 .*using test\/tiny@main as cached at commit/);
      const none = await cli(['hub', 'hf:test/other']);
      expect(none.code).toBe(1);
      expect(none.err).toMatch(/error: cannot reach the Hub at http:\/\/127\.0\.0\.1:1/);
    } finally {
      process.env.HF_ENDPOINT = hub.url;
    }
  });

  it('refuses a wrong checksum: no revision folder, the bad bytes discarded, and a later run fetches only that file', async () => {
    hub.wrongSha = 'model.safetensors';
    const r = await cli(['hub', 'hf:test/tiny']);
    hub.wrongSha = null;
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error: model\.safetensors has sha256 [0-9a-f]{64}, the Hub says 0{64}: .*discarded and nothing of test\/tiny was stored/);
    const top = path.join(cache, 'test--tiny');
    expect(existsSync(path.join(top, hub.commit))).toBe(false);
    const staging = path.join(top, `.${hub.commit}.download`);
    // the checked files stay for the next run; the wrong one is gone, .part included
    expect((await readdir(staging)).sort()).toEqual(['config.json', 'tokenizer.json']);
    hub.requests.length = 0;
    const ok = await cli(['hub', 'hf:test/tiny']);
    expect(ok.code).toBe(0);
    expect(fetched()).toEqual(['model.safetensors']);
    expect(existsSync(staging)).toBe(false);
  });

  it('resumes a download an earlier command left as a .part file', async () => {
    const staging = path.join(cache, 'test--tiny', `.${hub.commit}.download`);
    await mkdir(staging, { recursive: true });
    await writeFile(path.join(staging, 'model.safetensors.part'), tiny.get('model.safetensors')!.subarray(0, 12_345));
    const r = await cli(['hub', 'hf:test/tiny']);
    expect(r.code).toBe(0);
    expect(fetched()).toEqual(['config.json', 'tokenizer.json', 'model.safetensors (from 12345)']);
    expect(new Uint8Array(await readFile(path.join(r.out.trim(), 'model.safetensors')))).toEqual(tiny.get('model.safetensors'));
  });

  it('one download per revision: a second command is refused while the first holds the lock', async () => {
    const final = path.join(cache, 'test--tiny', hub.commit);
    await mkdir(path.dirname(final), { recursive: true });
    const lock = await acquireLock(final, '--model', 'hub hf:test/tiny (another command)');
    try {
      const r = await cli(['hub', 'hf:test/tiny']);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`--model ${final} is being written by another command (pid ${process.pid}`);
      expect(r.err).toContain('hub hf:test/tiny (another command)');
      expect(fetched()).toEqual([]);
    } finally {
      lock.release();
    }
    expect((await cli(['hub', 'hf:test/tiny'])).code).toBe(0);
  });

  it('refuses a bad id and an unknown model in words', async () => {
    expect((await cli(['hub', 'hf:SmolLM2'])).err).toMatch(/is not a Hub model id: give ORG\/NAME/);
    const r = await cli(['hub', 'hf:test/missing']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/has no model test\/missing at revision main \(404\)/);
  });

  it('experiment --model hf: goes through the Hub too (an unknown model is refused before any GPU work)', async () => {
    const r = await cli(['experiment', '--preset', 'tiny', '--model', 'hf:test/missing@v1', '--seeds', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/has no model test\/missing at revision v1 \(404\)/);
  });

  it('generate --model hf:test/tiny fetches and runs the model', async () => {
    const r = await cli(['generate', '--model', 'hf:test/tiny', '--ids', '1,5,9', '--max-new-tokens', '3']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).ids).toHaveLength(3);
    expect(fetched()).toEqual(['config.json', 'tokenizer.json', 'model.safetensors']);
    await rm(cache, { recursive: true, force: true });
  });
});
