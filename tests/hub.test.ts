// The Hub downloader (src/storage/hub.ts) against a local server laid out as the Hub is
// (tests/hub-server.ts): a whole download, a dropped connection resumed with a Range request, a
// server that ignores ranges, a wrong checksum refused with nothing stored, an unsupported
// architecture refused before any weight is requested, a sharded checkpoint, the space check, and
// the names and addresses (hub-host.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../src/storage/checkpoint';
import { DEFAULT_HUB_HOST, hubFileUrl, hubHost, parseHubRef } from '../src/storage/hub-host';
import { downloadFromHub, formatHubProgress, memoryHubStore, type HubProgress } from '../src/storage/hub';
import { byteLevelBpe, hfCheckpoint } from './hf-fixtures';
import { repoFromFolder, startHubServer, type HubServer, type RepoFiles } from './hub-server';

const tiny = repoFromFolder('public/models/tiny');
const sharded = hfCheckpoint({ type: 'qwen2', shards: 3, tokenizer: byteLevelBpe() }).files;
const gpt2: RepoFiles = new Map(tiny);
gpt2.set('config.json', new TextEncoder().encode(JSON.stringify({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: 32 })));
const binOnly: RepoFiles = new Map([['config.json', tiny.get('config.json')!], ['pytorch_model.bin', new Uint8Array(64)]]);

let hub: HubServer;
beforeAll(async () => {
  hub = await startHubServer({ 'test/tiny': tiny, 'test/sharded': sharded, 'test/gpt2': gpt2, 'test/bin-only': binOnly });
});
afterAll(() => hub.close());

const noWait = async () => undefined;
const run = (repo: string, extra: Partial<Parameters<typeof downloadFromHub>[0]> = {}) => {
  const store = memoryHubStore();
  const progress: HubProgress[] = [];
  const p = downloadFromHub({ host: hub.url, ref: parseHubRef(repo), store, sleep: noWait, onProgress: (x) => progress.push(x), ...extra });
  return { store, progress, p };
};
const weightRequests = () => hub.requests.filter((r) => r.endsWith('.safetensors') || /\.safetensors \(/.test(r));

describe('hub names and addresses', () => {
  it('parses ORG/NAME[@REV] with or without hf:, and refuses what is not one', () => {
    expect(parseHubRef('HuggingFaceTB/SmolLM2-135M-Instruct')).toEqual({ repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', revision: 'main' });
    expect(parseHubRef('hf:Qwen/Qwen2-0.5B@refs/pr/1')).toEqual({ repo: 'Qwen/Qwen2-0.5B', revision: 'refs/pr/1' });
    for (const bad of ['SmolLM2', 'a/b/c', '../x/y', 'a/b@', 'a/b@../main', 'a b/c']) expect(() => parseHubRef(bad), bad).toThrow(/not a (Hub model id|revision)/);
  });
  it('keeps the host in one place and builds the Hub paths', () => {
    expect(hubHost()).toBe(DEFAULT_HUB_HOST);
    expect(hubHost('http://127.0.0.1:9/')).toBe('http://127.0.0.1:9');
    expect(() => hubHost('ftp://x')).toThrow(/https:\/\/ or http:\/\//);
    expect(hubFileUrl('https://h', 'o/n', 'refs/pr/1', 'a b.json')).toBe('https://h/o/n/resolve/refs%2Fpr%2F1/a%20b.json');
  });
  it('formats progress as bytes, rate and time left', () => {
    expect(formatHubProgress({ file: 'f', bytes: 12.3e6, total: 540e6, rate: 4.1e6, secondsLeft: 128, note: null })).toBe('12.3 MB of 540.0 MB, 4.1 MB/s, 3 min left');
  });
});

describe('downloadFromHub on a local Hub', () => {
  it('fetches config, tokenizer and weights, checked, config.json first, with progress', async () => {
    hub.requests.length = 0;
    const { store, progress, p } = run('test/tiny');
    const r = await p;
    expect(r.files).toEqual(['config.json', 'tokenizer.json', 'model.safetensors']);
    expect(hub.requests.map((x) => x.split('/').pop())).toEqual(['config.json', 'tokenizer.json', 'model.safetensors']);
    for (const f of r.files) expect(store.files.get(f)).toEqual(tiny.get(f));
    expect(decodeCheckpoint(store.files).config.hidden_size).toBe(32);
    const last = progress[progress.length - 1];
    const total = ['config.json', 'tokenizer.json', 'model.safetensors'].reduce((n, f) => n + tiny.get(f)!.length, 0);
    expect(last.bytes).toBe(total);
    expect(last.total).toBe(total);
    expect(r.transferred).toBe(total);
  });

  it('resumes a dropped connection with a Range request and keeps the bytes it had', async () => {
    hub.requests.length = 0;
    hub.dropAfter = { file: 'model.safetensors', bytes: 30_000 };
    const { store, progress, p } = run('test/tiny');
    const r = await p;
    expect(hub.dropAfter).toBeNull();
    const weights = weightRequests();
    expect(weights).toHaveLength(2);
    // the retry asks from where the kept bytes end (all 30000 arrived before the drop)
    expect(weights[1]).toBe('test/tiny/model.safetensors (from 30000)');
    expect(store.files.get('model.safetensors')).toEqual(tiny.get('model.safetensors'));
    expect(progress.some((x) => x.note?.includes('model.safetensors: the connection') && x.note.includes('resuming'))).toBe(true);
    // nothing fetched twice: the bytes moved equal the files' sizes
    expect(r.transferred).toBe(['config.json', 'tokenizer.json', 'model.safetensors'].reduce((n, f) => n + tiny.get(f)!.length, 0));
  });

  it('starts a file over when the server ignores the range', async () => {
    hub.dropAfter = { file: 'model.safetensors', bytes: 10_000 };
    hub.ignoreRange = true;
    try {
      const { store, p } = run('test/tiny');
      await p;
      expect(store.files.get('model.safetensors')).toEqual(tiny.get('model.safetensors'));
    } finally {
      hub.ignoreRange = false;
    }
  });

  it('gives up after the retries, keeping the partial bytes so a second call resumes', async () => {
    const store = memoryHubStore();
    let calls = 0;
    // a connection that fails every time once the weights are asked for
    const flaky: typeof fetch = (input, init) => {
      if (String(input).includes('/cdn/') || String(input).endsWith('.safetensors')) {
        calls++;
        if (calls === 1) hub.dropAfter = { file: 'model.safetensors', bytes: 5000 };
        else return Promise.reject(new TypeError('fetch failed'));
      }
      return fetch(input, init);
    };
    await expect(downloadFromHub({ host: hub.url, ref: parseHubRef('test/tiny'), store, sleep: noWait, retries: 2, fetch: flaky }))
      .rejects.toThrow(/model\.safetensors: the connection dropped at byte 5000 of 83296 .*3 tries in a row without progress; the 5000 bytes fetched are kept/);
    expect(await store.partial('model.safetensors')).toBe(5000);
    hub.requests.length = 0;
    await downloadFromHub({ host: hub.url, ref: parseHubRef('test/tiny'), store, sleep: noWait });
    expect(weightRequests()).toEqual(['test/tiny/model.safetensors (from 5000)']);
    expect(store.files.get('model.safetensors')).toEqual(tiny.get('model.safetensors'));
  });

  it('refuses a wrong checksum and keeps nothing of the file', async () => {
    for (const file of ['model.safetensors', 'tokenizer.json']) {
      hub.wrongSha = file;
      try {
        const { store, p } = run('test/tiny');
        await expect(p).rejects.toThrow(file === 'tokenizer.json' ? /tokenizer\.json has git blob id [0-9a-f]{40}, the Hub says 0{40}.*discarded and nothing of test\/tiny was stored/ : /model\.safetensors has sha256 [0-9a-f]{64}, the Hub says 0{64}/);
        expect(store.files.has(file)).toBe(false);
        expect(await store.partial(file)).toBe(0);
      } finally {
        hub.wrongSha = null;
      }
    }
  });

  it('refuses an unsupported architecture before any weight is requested', async () => {
    hub.requests.length = 0;
    const { store, p } = run('test/gpt2');
    await expect(p).rejects.toThrow(/test\/gpt2 cannot be used here, so its weights were not fetched: config\.json describes GPT2LMHeadModel/);
    expect(hub.requests).toEqual(['test/gpt2/config.json']);
    expect([...store.files.keys()]).toEqual(['config.json']);
  });

  it('refuses a repository without safetensors and an unknown one, in words', async () => {
    await expect(run('test/bin-only').p).rejects.toThrow(/has no model\.safetensors .*only pytorch_model\.bin: this engine reads safetensors/);
    await expect(run('test/nothing').p).rejects.toThrow(/has no model test\/nothing at revision main \(404\)/);
    await expect(downloadFromHub({ host: 'http://127.0.0.1:1', ref: parseHubRef('a/b'), store: memoryHubStore() })).rejects.toThrow(/cannot reach the Hub at http:\/\/127\.0\.0\.1:1/);
  });

  it('fetches a sharded checkpoint through its index, and it loads', async () => {
    hub.requests.length = 0;
    hub.dropAfter = { file: 'model-00002-of-00003.safetensors', bytes: 100 };
    const { store, p } = run('test/sharded');
    const r = await p;
    expect(r.files).toEqual(['config.json', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json',
      'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    expect(weightRequests()).toContain('test/sharded/model-00002-of-00003.safetensors (from 100)');
    const ck = decodeCheckpoint(store.files);
    expect(ck.config.model_type).toBe('qwen2');
    expect(ck.tokenizer).toBeTruthy();
  });

  it('checks the room needed before the weights, and stores nothing of them when it is short', async () => {
    hub.requests.length = 0;
    let asked = -1;
    const { p } = run('test/tiny', { ensureSpace: async (n) => {
      asked = n;
      throw new Error(`not enough storage for ${n} bytes`);
    } });
    await expect(p).rejects.toThrow(/not enough storage/);
    expect(asked).toBe(tiny.get('tokenizer.json')!.length + tiny.get('model.safetensors')!.length);
    expect(weightRequests()).toEqual([]);
  });
});
