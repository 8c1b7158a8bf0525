// Issue 23 item 4: a run bundle may reference its base (by library id, Hub id or folder, with the
// digests of its weights, config.json and tokenizer files) instead of copying it; the reader resolves
// it and refuses other weights, and (issue 20 item 2) the same weights under another config.json or
// tokenizer.
// Bundle writing reuses the ridge latent map of a loaded base (computed once for every bundle) and
// says what it is doing; the experiment says how long it will take before it starts.
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as latentmap from '../src/mas/latentmap';
import { baseRefFolder, hubSnapshotFolder, makeBaseRef, parseBaseRefArg, readBundleFolder } from '../src/cli/base-ref-node';
import { readTree } from '../src/cli/export-run';
import { loadBaseModel, readFolder } from '../src/cli/files';
import { defaultRunConfig } from '../src/mas/run';
import { runBundleContent } from '../src/mas/run-data';
import { presetForTask } from '../src/mas/topology';
import { baseDigests, checkBaseRef, resolveBundleBase, weightsDigest } from '../src/storage/base-ref';
import { readRunBundle, writeRunBundle } from '../src/storage/run-bundle';
import { makeTask } from '../src/tasks/tasks';
import { cli } from './cli-helpers';

// every importer (run.ts's engine, latentmap-cache.ts) sees the counted computeLatentMap
vi.mock('../src/mas/latentmap', async (orig) => {
  const m = await orig<typeof import('../src/mas/latentmap')>();
  return { ...m, computeLatentMap: vi.fn(m.computeLatentMap) };
});
const computeCalls = () => (latentmap.computeLatentMap as unknown as { mock: { calls: unknown[] } }).mock.calls.length;

const TINY = 'public/models/tiny';
/** weightsDigest of SHARDED, held the same in python/tests/test_base_ref.py (the companion's digest). */
const SHARDED_DIGEST = '069c51ca0896404c05713faf57dd92e4f0b0a629600d3d1c151ef28126800310';
const enc = new TextEncoder();
const SHARDED = new Map<string, Uint8Array>([
  ['model.safetensors.index.json', enc.encode('{"weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}}')],
  ['model-00001-of-00002.safetensors', enc.encode('first shard')],
  ['model-00002-of-00002.safetensors', enc.encode('second shard')],
]);
const hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'base-ref-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('weightsDigest and checkBaseRef', () => {
  it('is the sha256 of model.safetensors, and for shards the sha256 of "<name> <sha256>" lines (index, then shards by name)', async () => {
    const tiny = await readFolder(TINY);
    expect(await weightsDigest(tiny)).toBe(hex(tiny.get('model.safetensors')!));
    const lines = ['model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'].map((n) => `${n} ${hex(SHARDED.get(n)!)}\n`).join('');
    const d = await weightsDigest(SHARDED);
    expect(d).toBe(hex(lines));
    expect(d).toBe(SHARDED_DIGEST);
    const missing = new Map(SHARDED);
    missing.delete('model-00002-of-00002.safetensors');
    await expect(weightsDigest(missing)).rejects.toThrow(/names the shard model-00002-of-00002.safetensors, which it does not hold/);
  });

  it('refuses a malformed reference, naming the field', () => {
    const sha256 = 'a'.repeat(64);
    const fileSha256 = { 'config.json': 'b'.repeat(64), 'tokenizer.json': 'c'.repeat(64), 'tokenizer_config.json': null };
    expect(checkBaseRef({ source: 'hub', id: 'Org/name', revision: 'main', sha256, fileSha256 })).toEqual({ source: 'hub', id: 'Org/name', revision: 'main', sha256, fileSha256 });
    expect(() => checkBaseRef({ source: 'url', id: 'x', sha256, fileSha256 })).toThrow(/source must be one of library, hub, folder/);
    expect(() => checkBaseRef({ source: 'folder', id: '', sha256, fileSha256 })).toThrow(/id must be a non-empty string/);
    expect(() => checkBaseRef({ source: 'folder', id: 'x', sha256: 'ABC', fileSha256 })).toThrow(/sha256 must be 64 lowercase hex digits/);
    expect(() => checkBaseRef({ source: 'hub', id: 'no-slash', sha256, fileSha256 })).toThrow(/not a Hub repo id/);
    expect(() => checkBaseRef({ source: 'folder', id: 'x', revision: 'main', sha256, fileSha256 })).toThrow(/only for a Hub reference/);
    // the other defining files: every one named, config.json always present, nothing else
    expect(() => checkBaseRef({ source: 'folder', id: 'x', sha256 })).toThrow(/fileSha256 must be an object \{"config.json", "tokenizer.json", "tokenizer_config.json"\}/);
    expect(() => checkBaseRef({ source: 'folder', id: 'x', sha256, fileSha256: { ...fileSha256, 'tokenizer.json': undefined } })).toThrow(/fileSha256\["tokenizer.json"\] must be 64 lowercase hex digits or null, got undefined/);
    const noTc = Object.fromEntries(Object.entries(fileSha256).filter(([k]) => k !== 'tokenizer_config.json'));
    expect(() => checkBaseRef({ source: 'folder', id: 'x', sha256, fileSha256: noTc })).toThrow(/fileSha256 has no entry for tokenizer_config.json/);
    expect(() => checkBaseRef({ source: 'folder', id: 'x', sha256, fileSha256: { ...fileSha256, 'config.json': null } })).toThrow(/fileSha256\["config.json"\] is null, but every base has one/);
    expect(() => checkBaseRef({ source: 'folder', id: 'x', sha256, fileSha256: { ...fileSha256, 'vocab.txt': sha256 } })).toThrow(/fileSha256 names "vocab.txt", which is not one of/);
  });

  it('--base-ref forms: folder, hub:ORG/NAME[@REV], library:ID; anything else is a usage error', async () => {
    expect(parseBaseRefArg('folder', TINY)).toEqual({ source: 'folder', id: path.resolve(TINY) });
    expect(parseBaseRefArg('hub:HuggingFaceTB/SmolLM2-135M-Instruct@v1', TINY)).toEqual({ source: 'hub', id: 'HuggingFaceTB/SmolLM2-135M-Instruct', revision: 'v1' });
    expect(parseBaseRefArg('hub:HuggingFaceTB/SmolLM2-135M-Instruct', TINY)).toEqual({ source: 'hub', id: 'HuggingFaceTB/SmolLM2-135M-Instruct' });
    expect(parseBaseRefArg('library:tiny-1', TINY)).toEqual({ source: 'library', id: 'tiny-1' });
    expect(() => parseBaseRefArg('elsewhere', TINY)).toThrow(/--base-ref must be folder .*got "elsewhere"/);
    expect(() => parseBaseRefArg('hub:nope', TINY)).toThrow(/--base-ref: "nope" is not a Hub model id/);
    const ref = await makeBaseRef('folder', TINY, await readFolder(TINY));
    expect(ref.sha256).toBe(hex(await readFile(path.join(TINY, 'model.safetensors'))));
    // the tiny base has no tokenizer_config.json: recorded as absent
    expect(ref.fileSha256).toEqual({ 'config.json': hex(await readFile(path.join(TINY, 'config.json'))), 'tokenizer.json': hex(await readFile(path.join(TINY, 'tokenizer.json'))), 'tokenizer_config.json': null });
  });

  it('a Hub reference resolves in the Hugging Face cache layout (refs/<rev> -> snapshots/<commit>)', async () => {
    const root = path.join(work, 'hf-cache');
    const repo = path.join(root, 'models--Org--tiny');
    await mkdir(path.join(repo, 'refs'), { recursive: true });
    await writeFile(path.join(repo, 'refs', 'main'), 'c0ffee\n');
    await cp(TINY, path.join(repo, 'snapshots', 'c0ffee'), { recursive: true });
    expect(hubSnapshotFolder('Org/tiny', 'main', root)).toBe(path.join(repo, 'snapshots', 'c0ffee'));
    expect(hubSnapshotFolder('Org/tiny', 'c0ffee', root)).toBe(path.join(repo, 'snapshots', 'c0ffee'));
    expect(hubSnapshotFolder('Org/other', 'main', root)).toBeNull();
    await expect(baseRefFolder({ source: 'library', id: 'x', sha256: 'a'.repeat(64), fileSha256: { 'config.json': 'a'.repeat(64), 'tokenizer.json': null, 'tokenizer_config.json': null } }, work)).rejects.toThrow(/lives in the page's library: export it from the page/);
  });
});

describe('a bundle that references its base', () => {
  it('the ridge latent map of a loaded base is computed once for two bundles', async () => {
    const base = await loadBaseModel(TINY);
    const baseFiles = await readFolder(TINY);
    const task = makeTask('lookup', 1);
    const before = computeCalls();
    const contents = [1, 2].map((seed) => runBundleContent({
      config: { ...defaultRunConfig({ topology: presetForTask(task), modelId: TINY, steps: 2, batch: 2, evalSize: 2 }), method: 'diffmas', seed },
      base, baseFiles, adapters: [], initialAdapters: [], createdBy: 'test', stepsDone: 0, losses: [], evaluation: [], heldout: [], wallSeconds: null, now: new Date(0),
    }));
    expect(computeCalls() - before).toBe(1);
    expect(contents[1].latentMap!.Wa).toEqual(contents[0].latentMap!.Wa);
    // another load of the base is another key (its weights could differ): computed again
    const again = await loadBaseModel(TINY);
    runBundleContent({
      config: { ...defaultRunConfig({ topology: presetForTask(task), modelId: TINY, steps: 2, batch: 2, evalSize: 2 }), method: 'diffmas', seed: 3 },
      base: again, baseFiles, adapters: [], initialAdapters: [], createdBy: 'test', stepsDone: 0, losses: [], evaluation: [], heldout: [], wallSeconds: null, now: new Date(0),
    });
    expect(computeCalls() - before).toBe(2);
  });

  it('written and read back in memory: no base files, version 2, refused unresolved and with other weights', async () => {
    const base = await loadBaseModel(TINY);
    const baseFiles = await readFolder(TINY);
    const task = makeTask('lookup', 1);
    const content = runBundleContent({
      config: { ...defaultRunConfig({ topology: presetForTask(task), modelId: TINY, steps: 2, batch: 2, evalSize: 2 }), method: 'single', seed: 1 },
      base, baseFiles, adapters: [], initialAdapters: [], createdBy: 'test', stepsDone: 0, losses: [], evaluation: [], heldout: [], wallSeconds: null, now: new Date(0),
    });
    const baseRef = { source: 'library' as const, id: 'tiny', ...(await baseDigests(baseFiles)) };
    const files = writeRunBundle({ ...content, baseRef });
    expect([...files.keys()].some((k) => k.startsWith('base/'))).toBe(false);
    const json = JSON.parse(new TextDecoder().decode(files.get('run.json')));
    expect(json.version).toBe(2);
    expect(json.files.base).toBeNull();
    expect(json.files.baseRef).toEqual(baseRef);
    expect(() => readRunBundle(files)).toThrow(/the base is referenced \(library tiny, sha256 [0-9a-f]{64}\), not held: resolve it first/);
    const resolved = await resolveBundleBase(json, async () => baseFiles);
    const back = readRunBundle(files, { base: resolved! });
    expect(back.base.get('config.json')).toEqual(baseFiles.get('config.json'));
    expect(back.json.files.baseRef).toEqual(baseRef);
    const other = new Map(baseFiles);
    const w = other.get('model.safetensors')!.slice();
    w[w.length - 1] ^= 1;
    other.set('model.safetensors', w);
    await expect(resolveBundleBase(json, async () => other)).rejects.toThrow(/run bundle: the base referenced as library tiny has weights with sha256 [0-9a-f]{64}, but run.json records [0-9a-f]{64}: these are not the weights the run was trained on/);
    // issue 20 item 2: the same weights under another config.json (rms eps, rope_theta) or tokenizer are another model
    const with_ = (name: string, bytes: Uint8Array | null) => {
      const m = new Map(baseFiles);
      if (bytes) m.set(name, bytes);
      else m.delete(name);
      return m;
    };
    const cfg = JSON.parse(new TextDecoder().decode(baseFiles.get('config.json')));
    const otherCfg = enc.encode(JSON.stringify({ ...cfg, rms_norm_eps: cfg.rms_norm_eps * 10, rope_theta: (cfg.rope_theta ?? 10000) * 10 }));
    const cfgMsg = `run bundle: the base referenced as library tiny has a config.json with sha256 ${hex(otherCfg)}, but run.json records ${baseRef.fileSha256['config.json']}: ` +
      'this is not the model the run was trained on (the same weights, but another file that defines what it computes or how it reads text)';
    await expect(resolveBundleBase(json, async () => with_('config.json', otherCfg))).rejects.toThrow(cfgMsg);
    const tok = baseFiles.get('tokenizer.json')!;
    // a lowercasing normalizer: the same vocabulary, other token streams
    const otherTok = enc.encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(tok)), normalizer: { type: 'Lowercase' } }));
    await expect(resolveBundleBase(json, async () => with_('tokenizer.json', otherTok))).rejects.toThrow(
      `has a tokenizer.json with sha256 ${hex(otherTok)}, but run.json records ${baseRef.fileSha256['tokenizer.json']}: this is not the model the run was trained on`);
    await expect(resolveBundleBase(json, async () => with_('tokenizer.json', null))).rejects.toThrow(`has no tokenizer.json, but run.json records one with sha256 ${baseRef.fileSha256['tokenizer.json']}`);
    const tc = enc.encode('{"model_max_length": 64}');
    await expect(resolveBundleBase(json, async () => with_('tokenizer_config.json', tc))).rejects.toThrow(`has a tokenizer_config.json with sha256 ${hex(tc)}, but run.json records none`);
    // every mismatch named at once, the weights first
    const both = with_('config.json', otherCfg);
    both.set('model.safetensors', w);
    await expect(resolveBundleBase(json, async () => both)).rejects.toThrow(/has weights with sha256 [0-9a-f]{64}, but run.json records [0-9a-f]{64}; has a config.json with sha256 [0-9a-f]{64}, but run.json records [0-9a-f]{64}: these are not the weights/);
    // files beside the defining ones (training_args.json, a README) do not matter
    expect(await resolveBundleBase(json, async () => with_('README.md', enc.encode('notes')))).not.toBeNull();
    await expect(resolveBundleBase(json, async () => { throw new Error('gone'); })).rejects.toThrow(/the base referenced as library tiny cannot be read: gone/);
    // a bundle that holds its base reads as before (no resolver asked)
    expect(await resolveBundleBase({ files: { base: 'base' } }, async () => { throw new Error('asked'); })).toBeNull();
  });

  it('experiment says its estimate, writes bundles with progress, references the folder base, and the map is solved once for the run and both bundles', async () => {
    const dir = path.join(work, 'export');
    const before = computeCalls();
    const r = await cli(['experiment', '--preset', 'tiny', '--methods', 'diffmas', '--seeds', '2', '--steps', '2', '--batch', '2', '--eval-size', '2', '--no-controls', '--export-run', dir, '--base-ref', 'folder']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(computeCalls() - before).toBe(1);
    expect(r.out).toMatch(/timing one step and one evaluation batch of diffmas/);
    expect(r.out).toMatch(/estimate: about \d+ (s|min) for 2 runs \(1 method x 2 seeds\): training .*, evaluation .*; measured here: diffmas [\d.]+ s\/step, [\d.]+ s\/episode/);
    expect(r.out).not.toMatch(/^warning: this takes/m);
    // the estimate comes before the first training step
    expect(r.out.indexOf('estimate: about')).toBeLessThan(r.out.indexOf('step 2/2'));
    expect(r.out).toMatch(/bundle 1\/2 diffmas-seed1: episodes, batches, latent map \(once per base\)\.\.\./);
    expect(r.out).toMatch(/bundle 2\/2 diffmas-seed2: writing [\d.]+ MB \(the base referenced, not copied\)\.\.\./);
    expect(r.out).toMatch(/bundle 2\/2 diffmas-seed2: written in [\d.]+ s/);
    const tree = await readTree(path.join(dir, 'diffmas-seed1'));
    expect([...tree.keys()].some((k) => k.startsWith('base/'))).toBe(false);
    const { bundle, baseDir } = await readBundleFolder(path.join(dir, 'diffmas-seed1'));
    expect(baseDir).toBe(path.resolve(TINY));
    expect(bundle.json.files.baseRef).toEqual({
      source: 'folder', id: path.resolve(TINY), sha256: hex(await readFile(path.join(TINY, 'model.safetensors'))),
      fileSha256: { 'config.json': hex(await readFile(path.join(TINY, 'config.json'))), 'tokenizer.json': hex(await readFile(path.join(TINY, 'tokenizer.json'))), 'tokenizer_config.json': null },
    });
    expect(bundle.latentMap!.Wa).toHaveLength(32 * 32);
    expect(bundle.json.training.stepsDone).toBe(2);
    // the same bundle pointed at a base with one weight byte changed is refused
    const altered = path.join(work, 'altered');
    await cp(TINY, altered, { recursive: true });
    const w = await readFile(path.join(altered, 'model.safetensors'));
    w[w.length - 1] ^= 1;
    await writeFile(path.join(altered, 'model.safetensors'), w);
    await expect(readBundleFolder(path.join(dir, 'diffmas-seed1'), { baseDir: altered })).rejects.toThrow(/has weights with sha256 .* but run.json records/);
    // and one with the same weights but another config.json (rope_theta)
    const reconfigured = path.join(work, 'reconfigured');
    await cp(TINY, reconfigured, { recursive: true });
    const cfg = JSON.parse(await readFile(path.join(TINY, 'config.json'), 'utf8'));
    await writeFile(path.join(reconfigured, 'config.json'), JSON.stringify({ ...cfg, rope_theta: 100000 }));
    await expect(readBundleFolder(path.join(dir, 'diffmas-seed1'), { baseDir: reconfigured })).rejects.toThrow(/the base referenced as folder .* has a config.json with sha256 [0-9a-f]{64}, but run.json records [0-9a-f]{64}: this is not the model the run was trained on/);
    const moved = path.join(work, 'moved');
    await cp(path.join(dir, 'diffmas-seed1'), moved, { recursive: true });
    const runJson = JSON.parse(await readFile(path.join(moved, 'run.json'), 'utf8'));
    runJson.files.baseRef.id = '../altered';
    await writeFile(path.join(moved, 'run.json'), JSON.stringify(runJson));
    await expect(readBundleFolder(moved)).rejects.toThrow(/the base referenced as folder \.\.\/altered has weights with sha256/);
    // --base-ref without --export-run, and a bad form, before any work
    const lone = await cli(['experiment', '--preset', 'tiny', '--methods', 'single', '--seeds', '1', '--base-ref', 'folder']);
    expect(lone.err).toMatch(/--base-ref sets what --export-run writes/);
    const bad = await cli(['experiment', '--preset', 'tiny', '--methods', 'single', '--seeds', '1', '--export-run', path.join(work, 'x'), '--base-ref', 'nowhere']);
    expect(bad.err).toMatch(/--base-ref must be folder/);
  });
});
