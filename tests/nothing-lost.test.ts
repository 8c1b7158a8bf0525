// Issue 10, "Nothing lost, nothing silently wrong": one row per case of the issue's list, numbered as
// there (1-14, then "Also"), so this file can be held against the issue. Every row runs without a GPU
// except 11 (a forward pass), which uses the test device like the other GPU tests.
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Args, parseSeeds, UsageError } from '../src/cli/args';
import {
  checkOutputFile, checkOutputFolder, describeFsError, FileError, isExperimentReport, isLogitsJson, loadBaseModel, nodeIo,
  readFolder, saveBaseModel, writeFileAtomic, writeFolder, type WriteIo,
} from '../src/cli/files';
import {
  checkConfigFitsDevice, decodeCheckpoint, encodeCheckpoint, expectedTensors, validateConfig, type LlamaConfig,
} from '../src/storage/checkpoint';
import { Library, LibraryIndexError, memoryStore, type KeyValueStore } from '../src/storage/library';
import { AdapterError, decodeAdapter, encodeAdapter, expectedAdapterTensors, type LoraAdapterConfig } from '../src/storage/peft';
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from '../src/storage/safetensors';
import { unzip, zipStore, ZipError } from '../src/storage/zip';
import { zipSync } from 'fflate';
import type { AdapterEntry, ModelEntry } from '../src/worker/api';
import { Engine } from '../src/worker/engine';
import { DivergenceWatch } from '../src/model/divergence';
import { randn } from './helpers';
import { cli } from './cli-helpers';

const enc = new TextEncoder();
const TINY = 'public/models/tiny';
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'nothing-lost-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fresh folder under the test's temporary folder. */
let n = 0;
async function folder(name = 'f'): Promise<string> {
  const d = path.join(work, `${name}-${n++}`);
  await mkdir(d);
  return d;
}

/** A copy of the shipped tiny checkpoint in a new folder. */
async function tinyCopy(): Promise<string> {
  const d = path.join(work, `tiny-${n++}`);
  await writeFolder(d, await readFolder(TINY));
  return d;
}

/** An io whose writes stop with ENOSPC after `budget` bytes in all (a disk that fills up). */
function diskFullAfter(budget: number): WriteIo {
  let left = budget;
  return {
    async writeFile(p, bytes) {
      const take = Math.min(left, bytes.length);
      left -= take;
      await nodeIo.writeFile(p, bytes.subarray(0, take));
      if (take < bytes.length) throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
    },
  };
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) out[name] = (await readFile(path.join(dir, name))).toString('base64');
  return out;
}

/** Names in `dir` that are temporaries of ours (.NAME.tmp-* or .NAME.old-*). */
async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((x) => /\.(tmp|old)-/.test(x));
}

/** A safetensors file from a raw header text and data bytes. */
function st(header: string, data: number[] | Uint8Array = []): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const CONFIG: LlamaConfig = validateConfig({
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2,
  num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 11, max_position_embeddings: 64, tie_word_embeddings: true,
});
function checkpointFiles(patch: Record<string, unknown> = {}): Map<string, Uint8Array> {
  const tensors = new Map<string, Float32Array>();
  let s = 1;
  for (const [name, shape] of expectedTensors(CONFIG)) tensors.set(name, randn(shape.reduce((a, b) => a * b, 1), s++));
  const files = encodeCheckpoint({ config: CONFIG, tensors, tokenizer: { model: {} } });
  files.set('config.json', enc.encode(JSON.stringify({ ...CONFIG, ...patch })));
  return files;
}

function adapterFor(base: LlamaConfig, patch: Partial<LoraAdapterConfig> = {}, scale = 0.1): Map<string, Uint8Array> {
  const config: LoraAdapterConfig = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'], lora_dropout: 0, bias: 'none',
    fan_in_fan_out: false, base_model_name_or_path: null, layers_to_transform: null, inference_mode: true, ...patch,
  };
  const tensors = new Map<string, Float32Array>();
  let s = 7;
  for (const [name, [a, b]] of expectedAdapterTensors(config, base)) tensors.set(name, randn(a * b, s++, scale));
  return encodeAdapter({ config, tensors }, base);
}

const parse = (argv: string[], specs = [{ name: 'out', help: '' }, { name: 'n', help: '' }, { name: 'ids', help: '' }, { name: 'force', help: '', flag: true }]) =>
  new Args(argv, specs, 'usage');

// ---------------------------------------------------------------------------------- data loss

describe('1. --name=value is split at the first = only', () => {
  it('1a. --out=/x/run=2 is the folder /x/run=2, not /x/run', () => {
    expect(parse(['--out=/x/run=2']).str('out')).toBe('/x/run=2');
  });
  it('1b. --logits=a=b.json writes to a=b.json', () => {
    expect(new Args(['--logits=a=b.json'], [{ name: 'logits', help: '' }], '').str('logits')).toBe('a=b.json');
  });
  it("1c. --prompt='<bos>x=1;y=2' keeps the whole prompt", () => {
    expect(new Args(['--prompt=<bos>x=1;y=2'], [{ name: 'prompt', help: '' }], '').str('prompt')).toBe('<bos>x=1;y=2');
  });
  it('1d. an option given twice, a flag given a value and a forgotten value are refused, naming the option', () => {
    expect(() => parse(['--out', 'a', '--out=b'])).toThrow(/--out is given twice/);
    expect(() => parse(['--force=false'])).toThrow(/--force is a flag and takes no value/);
    expect(() => parse(['--out', '--force'])).toThrow(/--out needs a value, got the option --force/);
  });
});

describe('2. pretrain --out onto an existing checkpoint', () => {
  it('2a. is refused without --force, before any GPU work, and the checkpoint is untouched', async () => {
    const dir = await tinyCopy();
    const before = await snapshot(dir);
    const r = await cli(['pretrain', '--preset', 'tiny', '--steps', '1', '--out', dir, '--no-eval']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --out ${dir} already holds a checkpoint (config.json, model.safetensors, tokenizer.json, training_args.json); give --force to replace it, or choose another folder`);
    expect(r.out).not.toMatch(/device:/); // refused before the GPU was asked for
    expect(await snapshot(dir)).toEqual(before);
  });
  it('2b. --force replaces only a folder of checkpoint files; a folder with anything else is refused even then', async () => {
    const dir = await tinyCopy();
    await expect(checkOutputFolder(dir, { force: true, option: '--out' })).resolves.toBeUndefined();
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    await mkdir(path.join(dir, 'runs'));
    await expect(checkOutputFolder(dir, { force: true, option: '--out' })).rejects.toThrow(
      /--out .* is not empty and holds more than a checkpoint \(notes\.txt, runs\/\); choose a new or empty folder \(--force replaces only a folder of checkpoint files\)/,
    );
  });
  it('2c. a new or empty folder needs no --force', async () => {
    await expect(checkOutputFolder(path.join(work, 'new', 'nested'), { force: false, option: '--out' })).resolves.toBeUndefined();
    await expect(readdir(path.join(work))).resolves.not.toContain('new'); // the check creates nothing
    await expect(checkOutputFolder(await folder(), { force: false, option: '--out' })).resolves.toBeUndefined();
  });
});

describe('3. checkpoint writes are atomic', () => {
  it('3a. a disk-full error while writing over a checkpoint leaves the old one complete and nothing half-written', async () => {
    const dir = await tinyCopy();
    const before = await snapshot(dir);
    const base = await loadBaseModel(dir);
    const err = await saveBaseModel(dir, base, { preset: 'other' }, diskFullAfter(20_000)).catch((e) => e as Error);
    expect(err).toBeInstanceOf(FileError);
    expect((err as Error).message).toBe(`cannot write ${dir}: no space left on the device (disk full) (ENOSPC)`);
    expect(await snapshot(dir)).toEqual(before);
    expect(await leftovers(path.dirname(dir))).toEqual([]);
  });
  it('3b. a complete write replaces the folder as a whole: no stale training_args.json from the old run', async () => {
    const dir = await tinyCopy();
    const base = await loadBaseModel(dir);
    await saveBaseModel(dir, base); // no provenance this time
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(await leftovers(path.dirname(dir))).toEqual([]);
    expect((await loadBaseModel(dir)).weights.get('model.norm.weight')).toEqual(base.weights.get('model.norm.weight'));
  });
  it('3c. a write into a new folder that fails leaves no folder under the target name', async () => {
    const dir = path.join(work, `never-${n++}`);
    await expect(writeFolder(dir, new Map([['a.bin', new Uint8Array(100)]]), diskFullAfter(10))).rejects.toThrow(/ENOSPC/);
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
    expect(await leftovers(work)).toEqual([]);
  });
  it('3d. --out through a symbolic link replaces the folder it points at and keeps the link', async () => {
    const real = await tinyCopy();
    const link = path.join(work, `link-${n++}`);
    await symlink(real, link);
    await checkOutputFolder(link, { force: true, option: '--out' });
    await saveBaseModel(link, await loadBaseModel(real));
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect((await readdir(real)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
  });
});

describe('4. the experiment report rewrite is atomic', () => {
  it('4a. a disk-full error during a rewrite leaves the previous report whole (a later --resume still reads it)', async () => {
    const dir = await folder();
    const file = path.join(dir, 'report.json');
    const report = JSON.stringify({ args: { task: 'lookup' }, rows: Array.from({ length: 500 }, (_, i) => ({ seed: i })), controls: [] });
    await writeFileAtomic(file, report);
    await expect(writeFileAtomic(file, report + ' '.repeat(10_000), diskFullAfter(4096))).rejects.toThrow(
      `cannot write ${file}: no space left on the device (disk full) (ENOSPC)`,
    );
    expect(await readFile(file, 'utf8')).toBe(report);
    expect(isExperimentReport(await readFile(file, 'utf8'))).toBe(true);
    expect(await readdir(dir)).toEqual(['report.json']);
  });
});

describe('5. --logits and --json refuse files the command does not write', () => {
  it("5a. generate --logits onto the model's own model.safetensors is refused before loading anything, file untouched", async () => {
    const dir = await tinyCopy();
    const before = await snapshot(dir);
    const target = path.join(dir, 'model.safetensors');
    const r = await cli(['generate', '--model', dir, '--prompt', '<bos>a', `--logits=${target}`]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --logits ${target} exists and is not a logits JSON written by generate; give --force to replace it, or choose another file`);
    expect(await snapshot(dir)).toEqual(before);
  });
  it('5b. experiment --json onto a file that is not a report is refused before any GPU work', async () => {
    const dir = await folder();
    const file = path.join(dir, 'notes.json');
    await writeFile(file, '{"mine": true}');
    const r = await cli(['experiment', '--preset', 'tiny', '--seeds', '1', '--methods', 'single', '--json', file]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --json ${file} exists and is not an experiment report; give --force to replace it, or choose another file`);
    expect(r.out).toBe('');
    expect(await readFile(file, 'utf8')).toBe('{"mine": true}');
  });
  it('5c. what the command writes itself may be rewritten; --force allows any regular file, never a folder', async () => {
    const dir = await folder();
    const logits = path.join(dir, 'l.json');
    await writeFile(logits, JSON.stringify({ ids: [1], logits: [0.5] }));
    const opts = { option: '--logits', what: 'a logits JSON', isOurs: isLogitsJson };
    await expect(checkOutputFile(logits, { ...opts, force: false })).resolves.toBeUndefined();
    await writeFile(logits, 'not json');
    await expect(checkOutputFile(logits, { ...opts, force: false })).rejects.toThrow(/exists and is not a logits JSON/);
    await expect(checkOutputFile(logits, { ...opts, force: true })).resolves.toBeUndefined();
    await expect(checkOutputFile(dir, { ...opts, force: true })).rejects.toThrow(`--logits ${dir} is a folder, not a file`);
  });
});

describe('6. an unreadable library index is never treated as empty', () => {
  const model = (id: string, name = id): ModelEntry => ({ id, name, size: 0, createdAt: 1, builtin: false, config: { hidden_size: 8 } });
  const adapter = (id: string): AdapterEntry => ({ id, name: `adapter ${id}`, size: 0, createdAt: 2, baseModelId: 'm1', agent: 'a0', runConfig: null, config: { r: 2 } });
  const files = (s: string) => new Map([['config.json', enc.encode(`{"n":"${s}"}`)]]);
  async function stocked(): Promise<{ kv: KeyValueStore; lib: Library }> {
    const kv = memoryStore();
    const lib = new Library(kv, async () => ({ usage: null, quota: null }));
    await lib.saveModel(model('m1', 'first base'), files('m1'));
    await lib.saveAdapters([{ entry: adapter('a1'), files: files('a1') }]);
    return { kv, lib };
  }

  it('6a. an index from a newer build: listing says so, a save is refused, nothing is written over it', async () => {
    const { kv, lib } = await stocked();
    const newer = { version: 2, models: [{ id: 'm1', fancy: true }], adapters: [] };
    await kv.set('library:index', newer);
    await expect(lib.listModels()).rejects.toThrow(LibraryIndexError);
    await expect(lib.listModels()).rejects.toThrow(/written by a newer version of the playground \(index version 2; this page reads version 1\)/);
    await expect(lib.saveModel(model('m2'), files('m2'))).rejects.toThrow(/The library index cannot be read/);
    await expect(lib.remove('model', 'm1')).rejects.toThrow(/The library index cannot be read/);
    expect(await kv.get('library:index')).toEqual(newer);
    expect(await kv.get('library:model:m2')).toBeUndefined();
    expect(await kv.get('library:model:m1')).toBeDefined();
  });
  it('6b. a corrupt index and null entries are refused with a message, not a TypeError', async () => {
    const { kv, lib } = await stocked();
    await kv.set('library:index', { version: 1, models: [null], adapters: [] });
    await expect(lib.listModels()).rejects.toThrow('The library index cannot be read: model entry 1 of 1 is null, not an entry.');
    await kv.set('library:index', 'garbage');
    await expect(lib.listAdapters()).rejects.toThrow(/cannot be read: it is string, not an index object/);
  });
  it('6c. rebuildIndex lists every stored record again (names kept), and keeps the old index as a backup', async () => {
    const { kv, lib } = await stocked();
    await lib.rename('model', 'm1', 'renamed base');
    // a record saved by an older build carries no copy of its entry: one is made from its files
    await kv.set('library:model:builtin:tiny', { files: { 'config.json': enc.encode('{"hidden_size":32}') } });
    await kv.set('library:index', { version: 1, models: [null], adapters: [] });
    const r = await lib.rebuildIndex();
    expect(r).toMatchObject({ models: 2, adapters: 1, skipped: [] });
    expect(await kv.get(r.backup!)).toEqual({ version: 1, models: [null], adapters: [] });
    const models = await lib.listModels();
    expect(models.map((m) => [m.id, m.name])).toEqual([['builtin:tiny', 'tiny (shipped)'], ['m1', 'renamed base']]);
    expect(models.find((m) => m.id === 'builtin:tiny')).toMatchObject({ builtin: true, config: { hidden_size: 32 } });
    expect((await lib.listAdapters()).map((a) => [a.id, a.name, a.baseModelId])).toEqual([['a1', 'adapter a1', 'm1']]);
    expect(await lib.files('model', 'm1')).toEqual(files('m1'));
  });
  it('6d. a failed re-save of a listed entry does not delete the files it already had', async () => {
    const { kv, lib } = await stocked();
    const failing: KeyValueStore = { ...kv, update: async () => { throw new Error('disk I/O error'); } };
    const lib2 = new Library(failing, async () => ({ usage: null, quota: null }));
    await expect(lib2.saveModel(model('m1'), files('m1 again'))).rejects.toThrow('disk I/O error');
    expect(await kv.get('library:model:m1')).toBeDefined();
    expect(await lib.files('model', 'm1')).toBeDefined();
  });
});

// ---------------------------------------------------------------------------------- crash, hang, resource exhaustion

describe('7. zip entries that share bytes, and the total size', () => {
  // one body, then 1,000 central records all pointing at its local header
  function sharedBody(records: number): Uint8Array {
    const one = zipStore(new Map([['w', new Uint8Array(1024).fill(7)]]));
    const v = new DataView(one.buffer);
    const eocd = one.length - 22;
    const cd = v.getUint32(eocd + 16, true);
    const rec = one.subarray(cd, eocd);
    const out = new Uint8Array(cd + rec.length * records + 22);
    out.set(one.subarray(0, cd));
    for (let k = 0; k < records; k++) {
      out.set(rec, cd + k * rec.length);
      out[cd + k * rec.length + 46] = 'w'.charCodeAt(0); // same name bytes: the overlap is found first
    }
    out.set(one.subarray(eocd), cd + rec.length * records);
    const ov = new DataView(out.buffer);
    ov.setUint16(out.length - 22 + 8, records, true);
    ov.setUint16(out.length - 22 + 10, records, true);
    ov.setUint32(out.length - 22 + 12, rec.length * records, true);
    return out;
  }
  it('7a. 1,000 central records on one body are refused as overlapping, before anything is copied', () => {
    const zip = sharedBody(1000);
    const t0 = performance.now();
    expect(() => unzip(zip)).toThrow('zip: entries "w" and "w" share bytes of the archive (overlapping entries: a malformed or malicious zip)');
    expect(performance.now() - t0).toBeLessThan(200);
  });
  it('7b. the total extracted size is capped before allocating', () => {
    const zip = zipStore(new Map([['a', new Uint8Array(600)], ['b', new Uint8Array(600)]]));
    expect(() => unzip(zip, { maxBytes: 1000 })).toThrow('zip: the entries add up to 1200 bytes, more than the 1000 this reader extracts');
    expect(unzip(zip, { maxBytes: 1200 }).size).toBe(2);
  });
});

describe('8. sizes are bounded before allocating', () => {
  it('8a. a config.json with num_hidden_layers 1e9 fails at once, naming the field', () => {
    const files = checkpointFiles({ num_hidden_layers: 1e9 });
    const t0 = performance.now();
    expect(() => decodeCheckpoint(files)).toThrow(/config\.json: num_hidden_layers 1000000000 implies 9000000002 tensors, but model\.safetensors holds 20; num_hidden_layers is wrong for these weights/);
    expect(performance.now() - t0).toBeLessThan(100);
  });
  it('8b. a config whose parameters the weights cannot hold names the field to blame', () => {
    expect(() => decodeCheckpoint(checkpointFiles({ intermediate_size: 1e7 }))).toThrow(
      /config\.json: intermediate_size 10000000 implies .* parameters .* but model\.safetensors holds \d+ bytes; intermediate_size is wrong for these weights/,
    );
  });
  it("8c. a tensor larger than one of the device's buffers is refused before upload, naming the fields", () => {
    const big = validateConfig({ ...CONFIG, vocab_size: 1_000_000, hidden_size: 4096, num_attention_heads: 32, head_dim: 128, num_key_value_heads: 8 });
    expect(() => checkConfigFitsDevice(big, { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 27 })).toThrow(
      'config.json: vocab_size x hidden_size (the embeddings) = 4096000000 values is 16384000000 bytes as float32, more than the 134217728 bytes one buffer of this device can hold',
    );
  });
  it('8d. experiment --seeds 100000000 is refused at once', async () => {
    expect(() => parseSeeds('100000000')).toThrow("--seeds (a count K of seeds 1..K, or a comma-separated list) must be a plain decimal integer in [1, 1000], got '100000000'");
    const r = await cli(['experiment', '--preset', 'tiny', '--seeds', '100000000']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: --seeds .* got '100000000' \(see --help\)$/);
  });
});

describe('9. output paths are checked before any GPU work', () => {
  it('9a. --out under /proc is refused at once (a write there hung)', async () => {
    const t0 = performance.now();
    const r = await cli(['pretrain', '--preset', 'tiny', '--out', '/proc/nothing-lost/run']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('error: cannot write under /proc/nothing-lost/run: /proc is a virtual file system, not a place for files');
    expect(performance.now() - t0).toBeLessThan(2000);
  });
  it('9b. an --out below a file, and a --json in a missing folder, are refused before training', async () => {
    const file = path.join(await folder(), 'plain.txt');
    await writeFile(file, 'x');
    const r = await cli(['pretrain', '--preset', 'tiny', '--out', path.join(file, 'run')]);
    expect(r.err).toBe(`error: cannot write under ${path.join(file, 'run')}: ${file} is a file, not a folder`);
    const j = path.join(work, 'missing-folder', 'r.json');
    const e = await cli(['experiment', '--preset', 'tiny', '--seeds', '1', '--json', j]);
    expect(e.err).toBe(`error: --json ${j}: the folder ${path.dirname(j)} does not exist`);
  });
});

// ---------------------------------------------------------------------------------- silently wrong

describe('10. duplicate safetensors keys are refused, naming the key', () => {
  const norm16 = '"n":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}';
  const norm16b = '"n":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}';
  it('10a. the same tensor twice (F16, then BF16): which one is meant is ambiguous', () => {
    expect(() => decodeSafetensors(st(`{${norm16},${norm16b}}`, new Uint8Array(8)))).toThrow(
      'safetensors: tensor "n" is listed twice in the header (the file is ambiguous: which one is meant?)',
    );
  });
  it('10b. __metadata__ twice, a key twice inside __metadata__ or inside a tensor', () => {
    expect(() => decodeSafetensors(st('{"__metadata__":{},"__metadata__":{}}'))).toThrow('safetensors: __metadata__ is listed twice in the header');
    expect(() => decodeSafetensors(st('{"__metadata__":{"format":"pt","format":"np"}}'))).toThrow('safetensors: the key "format" in __metadata__ is given twice');
    expect(() => decodeSafetensors(st('{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4)))).toThrow(
      'safetensors: the key "dtype" in tensor "a" is given twice',
    );
  });
});

describe('11. non-finite outputs are an error that says where', () => {
  it('11a. rms_norm_eps 1e300 is refused at load', () => {
    expect(() => validateConfig({ ...CONFIG, rms_norm_eps: 1e300 })).toThrow(
      'config.json: rms_norm_eps must be a positive number at most 1 (it is added to the mean square of the activations; Llama uses 1e-5 or 1e-6), got 1e+300',
    );
    expect(() => validateConfig({ ...CONFIG, rope_theta: 1e300 })).toThrow(/rope_theta must be a positive number at most 3\.4028234663852886e\+38 \(the engine computes in float32\)/);
  });
  it('11b. generate with finite but huge weights (3e38 in a norm) fails, naming the position, instead of printing <pad><pad>', async () => {
    const dir = await tinyCopy();
    const base = await loadBaseModel(dir);
    base.weights.get('model.norm.weight')!.fill(3e38);
    await saveBaseModel(dir, base);
    const r = await cli(['generate', '--model', dir, '--prompt', '<bos>ab', '--max-new-tokens', '2']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: the forward pass produced non-finite logits \((-?Infinity|NaN); \d+ of the row's values\) at the last prompt position 2 of sequence 0 \(the prefill\): the weights, rms_norm_eps or the adapter scale \(lora_alpha \/ r\) overflow float32$/);
    expect(r.out).toBe('');
  });
  it('11c. generate with lora_alpha 1e38 fails the same way', async () => {
    const dir = await tinyCopy();
    const base = await loadBaseModel(dir);
    const ad = path.join(work, `adapter-${n++}`);
    await writeFolder(ad, adapterFor(base.config, { r: 1, lora_alpha: 1e38 }, 10));
    const r = await cli(['generate', '--model', dir, '--adapter', ad, '--prompt', '<bos>ab', '--max-new-tokens', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: the forward pass produced non-finite logits .* at the last prompt position 2 of sequence 0 \(the prefill\)/);
  });
  it('11d. an evaluation-only experiment on such a base fails, naming the split, episode, agent and position, instead of reporting accuracy 0', async () => {
    const dir = await tinyCopy();
    const base = await loadBaseModel(dir);
    base.weights.get('model.norm.weight')!.fill(3e38);
    await saveBaseModel(dir, base);
    const json = path.join(work, `report-${n++}.json`);
    const r = await cli(['experiment', '--model', dir, '--methods', 'single', '--seeds', '1', '--eval-size', '2', '--batch', '2', '--no-controls', '--quiet', '--json', json]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^error: the forward pass produced non-finite logits \((-?Infinity|NaN); \d+ of the row's values\) in the heldout evaluation of single, episode 0: the final agent '[^']+' \(\w+\) decoding answer token 1 at position \d+: the weights, rms_norm_eps or the adapter scale \(lora_alpha \/ r\) overflow float32$/,
    );
    expect(r.out).not.toMatch(/accuracy|0\.000/);
    await expect(lstat(json)).rejects.toThrow(/ENOENT/);
  });
});

describe('12. counts are plain decimal integers in range; lists have no empty items', () => {
  it.each([['1e9'], ['0x3'], ['1e2'], [''], ['+3'], ['3.0'], [' 3'], ['007']])("12a. --n '%s' is refused", (v) => {
    expect(() => parse([`--n=${v}`]).int('n', 0, 1000)).toThrow(`--n must be a plain decimal integer in [0, 1000], got '${v}'`);
  });
  it('12b. --seeds 1e9 and a seed list with a bad item are refused; 3 and 4,9 are fine', () => {
    expect(() => parseSeeds('1e9')).toThrow(/--seeds .* got '1e9'/);
    expect(() => parseSeeds('1,x')).toThrow("each seed in --seeds must be a plain decimal integer in [0, 2147483647], got 'x'");
    expect(() => parseSeeds('4,4')).toThrow('--seeds lists seed 4 twice');
    expect(parseSeeds('3')).toEqual([1, 2, 3]);
    expect(parseSeeds('4,9')).toEqual([4, 9]);
  });
  it('12c. --ids 1,,,13 and a trailing comma are refused', () => {
    expect(() => parse(['--ids', '1,,,13']).list('ids')).toThrow("--ids has an empty item (item 2 of 4) in '1,,,13'; separate items with single commas");
    expect(() => parse(['--ids', '1,']).list('ids')).toThrow(/--ids has an empty item \(item 2 of 2\)/);
    expect(() => parse(['--max-new-tokens='], [{ name: 'max-new-tokens', help: '' }]).int('max-new-tokens', 0)).toThrow(/got ''/);
  });
  it('12d. a number option refuses hex and empty values', () => {
    expect(() => parse(['--n=0x10']).num('n')).toThrow(UsageError);
    expect(() => parse(['--n=']).num('n')).toThrow(UsageError);
    expect(parse(['--n=3e-3']).num('n')).toBe(0.003);
  });
});

describe('13. lenient format details are refused with a message', () => {
  const f32 = (shape: string, offsets = '[0,4]') => `{"a":{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}}`;
  it.each([
    ['13a. a shape entry 1e308', f32('[1e308]'), 'safetensors: tensor "a": shape must be a list of non-negative integers, got [1e308] (plain decimal digits: no 1.0, 1e3 or sign)'],
    ['13b. 1.0 in a shape', f32('[1.0]'), 'safetensors: tensor "a": shape must be a list of non-negative integers, got [1.0]'],
    ['13c. 1.0 in the offsets', f32('[1]', '[0,4.0]'), 'safetensors: tensor "a": data_offsets must be [begin, end] (non-negative integers), got [0,4.0]'],
    ['13d. an empty tensor name', '{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 'safetensors: a tensor has an empty name ""'],
    ['13e. a "__proto__" key', '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 'safetensors: the key "__proto__" is not allowed'],
    ['13f. a shape whose element count overflows', f32('[4294967296,4294967296]'), 'safetensors: tensor "a": shape [4294967296, 4294967296] has more elements than any file can hold'],
  ])('%s', (_what, header, message) => {
    expect(() => decodeSafetensors(st(header, new Uint8Array(4)))).toThrow(message);
  });
  it('13g. a leading byte-order mark', () => {
    const h = st(`\ufeff${f32('[1]')}`, new Uint8Array(4));
    expect(() => decodeSafetensors(h)).toThrow('safetensors: the header starts with a byte-order mark (EF BB BF)');
  });
  it('13h. a zip whose local header names another file than its central record', () => {
    const zip = zipStore(new Map([['config.json', enc.encode('{}')]]));
    zip[30] = 'C'.charCodeAt(0); // the local header's name: Config.json
    expect(() => unzip(zip)).toThrow('zip: entry "config.json": its local header names "Config.json" (the central directory and the local header disagree about the file\'s name)');
  });
});

// ---------------------------------------------------------------------------------- unclear messages

describe('14. each of these says what is wrong', () => {
  it('14a. dtype "toString" is an unknown dtype, not "needs NaN"', () => {
    expect(() => decodeSafetensors(st('{"a":{"dtype":"toString","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4)))).toThrow(
      'safetensors: tensor "a" has unknown dtype "toString" (supported: F32, F16, BF16)',
    );
  });
  it('14b. a duplicate key is reported as such, not as a "hole"', () => {
    const e = (() => {
      try {
        decodeSafetensors(st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)));
      } catch (x) {
        return x as Error;
      }
    })();
    expect(e).toBeInstanceOf(SafetensorsError);
    expect(e!.message).toMatch(/tensor "a" is listed twice/);
    expect(e!.message).not.toMatch(/hole/);
  });
  it('14c. a head_dim this engine cannot run (weights made for it) is refused at load with one clear message', async () => {
    // q_proj is (2 heads x 130, 8): a valid Hugging Face checkpoint whose heads are wider than the
    // attention kernels hold (a head_dim apart from hidden_size / heads, as Qwen3's, is fine)
    const wide = validateConfig({ ...CONFIG, head_dim: 130 });
    const tensors = new Map<string, Float32Array>();
    for (const [name, shape] of expectedTensors(wide)) tensors.set(name, randn(shape.reduce((a, b) => a * b, 1), 3));
    const dir = path.join(work, `wide-${n++}`);
    await writeFolder(dir, encodeCheckpoint({ config: wide, tensors, tokenizer: null }));
    expect(() => decodeCheckpoint(checkpointFiles())).not.toThrow();
    await expect(loadBaseModel(dir)).rejects.toThrow(`${dir}: config.json: head_dim 130 is above the 128 this engine's attention kernels hold`);
  });
  it('14d. lora_alpha 1e999 says Infinity, not null', () => {
    const files = adapterFor(CONFIG);
    const cfg = new TextDecoder().decode(files.get('adapter_config.json')!).replace('"lora_alpha": 4', '"lora_alpha": 1e999');
    files.set('adapter_config.json', enc.encode(cfg));
    expect(() => decodeAdapter(files, CONFIG)).toThrow('adapter_config.json: lora_alpha must be a positive number, got Infinity');
  });
  it('14e. zip errors show names escaped, never raw binary, and long lists cut', () => {
    const zip = zipStore(new Map([['ok\u0001\u001b[31m.json', new Uint8Array(3)]]));
    zip[zip.length - 22 - 46 - 13 + 16] ^= 1; // the central CRC
    expect(() => unzip(zip)).toThrow('zip: entry "ok\\u0001\\u001b[31m.json" is corrupt (CRC-32 mismatch)');
    const many = new Map(Array.from({ length: 1000 }, (_, i) => [`file${i}.bin`, new Uint8Array(0)] as [string, Uint8Array]));
    expect(() => decodeCheckpoint(many)).toThrow('the checkpoint has no config.json (files present: file0.bin, file1.bin, file2.bin, file3.bin, file4.bin and 995 more)');
  });
  it("14e'. the page's import lists at most five names of a zip, escaped, and a truncated adapter there is 'cannot be read'", async () => {
    const engine = new Engine({ store: memoryStore(), fetchAsset: () => Promise.reject(new Error('no assets in this test')) });
    const many = new Map(Array.from({ length: 1000 }, (_, i) => [`junk${i}\u0007.bin`, new Uint8Array(1)] as [string, Uint8Array]));
    const err = await engine.importFiles([{ name: 'junk.zip', bytes: zipStore(many) }]).catch((e) => e as Error);
    expect((err as Error).message).toMatch(/^these files are neither a base model nor an adapter: found "junk0\\u0007\.bin" \(1 B\), .* and 995 more\. /);
    expect((err as Error).message.length).toBeLessThan(600);
    // a truncated adapter for a stored base: 'cannot be read', not 'does not fit'
    const tiny = await readFolder(TINY);
    await engine.library.saveModel({ id: 'm:tiny', name: 'tiny', size: 0, createdAt: 1, builtin: false, config: {} }, tiny);
    const files = adapterFor(validateConfig(JSON.parse(new TextDecoder().decode(tiny.get('config.json')))));
    const w = files.get('adapter_model.safetensors')!;
    files.set('adapter_model.safetensors', w.subarray(0, w.length - 10));
    const cut = await engine.importFiles([{ name: 'cut.zip', bytes: zipStore(files) }], 'm:tiny').catch((e) => e as Error);
    expect((cut as Error).message).toMatch(/^this adapter cannot be read: adapter_model\.safetensors cannot be read: safetensors: /);
    expect(await engine.listAdapters()).toEqual([]);
  });
  it('14f. file-system errors name the path and say what happened in words', async () => {
    expect(describeFsError(Object.assign(new Error('EROFS: read-only file system, open'), { code: 'EROFS' }), 'write', '/ro/x').message).toBe(
      'cannot write /ro/x: the file system is read-only (EROFS)',
    );
    await expect(readFolder(path.join(work, 'absent'))).rejects.toThrow(`${path.join(work, 'absent')} does not exist`);
    const r = await cli(['generate', '--model', path.join(work, 'absent'), '--prompt', 'a']);
    expect(r.err).toBe(`error: ${path.join(work, 'absent')} does not exist`);
  });
  it('14g. a truncated adapter file says it cannot be read, not that it does not fit the base model', () => {
    const files = adapterFor(CONFIG);
    const w = files.get('adapter_model.safetensors')!;
    files.set('adapter_model.safetensors', w.subarray(0, w.length - 10));
    const e = (() => {
      try {
        decodeAdapter(files, CONFIG);
      } catch (x) {
        return x as AdapterError;
      }
    })()!;
    expect(e.kind).toBe('format');
    expect(e.message).toMatch(/^adapter_model\.safetensors cannot be read: safetensors: .*run past the end of the data/);
  });
});

// ---------------------------------------------------------------------------------- also

describe('Also', () => {
  // mulberry32: seeded, so a failure names the input that made it
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const INTERESTING = [0, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x31, 0x39, 0x2e, 0x65, 0x2d, 0x20, 0x5c, 0x50, 0x4b];
  function mutate(seed: Uint8Array, r: () => number): Uint8Array {
    let b = seed.slice();
    const ops = 1 + Math.floor(r() * 4);
    for (let k = 0; k < ops; k++) {
      const at = Math.floor(r() * Math.max(1, b.length));
      const op = Math.floor(r() * 6);
      if (op === 0) b[at] ^= 1 << Math.floor(r() * 8);
      else if (op === 1) b[at] = INTERESTING[Math.floor(r() * INTERESTING.length)];
      else if (op === 2) b = b.slice(0, at);
      else if (op === 3) {
        const len = Math.floor(r() * 16);
        const piece = b.slice(Math.floor(r() * b.length), Math.floor(r() * b.length) + len);
        const out = new Uint8Array(b.length + piece.length);
        out.set(b.subarray(0, at));
        out.set(piece, at);
        out.set(b.subarray(at), at + piece.length);
        b = out;
      } else if (op === 4 && b.length >= 4) new DataView(b.buffer).setUint32(Math.min(at, b.length - 4), Math.floor(r() * 2 ** 32), true);
      else b[at] = Math.floor(r() * 256);
    }
    return b;
  }
  // Seed and count from the environment (issue 20 "Also"); CI keeps the defaults. A new seed:
  //   LP_FUZZ_SEED=12345 LP_FUZZ_COUNT=1000000 bash scripts/with-vulkan.sh npx vitest run tests/nothing-lost.test.ts -t fuzz
  const envInt = (name: string, fallback: number): number => {
    const v = process.env[name];
    if (v === undefined || v === '') return fallback;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const FUZZ_SEED = envInt('LP_FUZZ_SEED', 20240610);
  const FUZZ_COUNT = envInt('LP_FUZZ_COUNT', 100_000);
  // The per-input limit is on this process's CPU time (user + system), which other processes on a loaded
  // machine do not inflate; wall time gets a bound 30x wider, so a real hang (a sleep, a lock) still fails.
  const CPU_LIMIT_MS = 1000;
  const WALL_LIMIT_MS = 30_000;
  // the default count takes seconds; a larger one gets 2 ms per input
  const FUZZ_TIMEOUT = Math.max(300_000, FUZZ_COUNT * 2);
  function fuzz(name: string, seeds: Uint8Array[], count: number, read: (b: Uint8Array) => unknown, ownError: new (...a: never[]) => Error) {
    const r = prng(FUZZ_SEED);
    console.info(`fuzz ${name}: seed ${FUZZ_SEED} (LP_FUZZ_SEED), ${count} inputs (LP_FUZZ_COUNT)`);
    let refused = 0;
    let slowest = 0;
    for (let i = 0; i < count; i++) {
      const input = mutate(seeds[i % seeds.length], r);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      try {
        read(input);
      } catch (e) {
        if (!(e instanceof ownError)) {
          throw new Error(`${name} input ${i} of seed ${FUZZ_SEED} (${Buffer.from(input).toString('base64').slice(0, 200)}) threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
        }
        refused++;
      }
      const c = process.cpuUsage(c0);
      const cpu = (c.user + c.system) / 1000;
      const wall = performance.now() - t0;
      slowest = Math.max(slowest, cpu);
      if (cpu > CPU_LIMIT_MS || wall > WALL_LIMIT_MS) {
        throw new Error(`${name} input ${i} of seed ${FUZZ_SEED} took ${cpu.toFixed(0)} ms of CPU (${wall.toFixed(0)} ms wall)`);
      }
    }
    // the seed and count it ran, for the log
    console.info(`fuzz ${name}: seed ${FUZZ_SEED}, ${count} mutated inputs, ${refused} refused with ${ownError.name}, slowest ${slowest.toFixed(2)} ms of CPU`);
    return refused;
  }

  it('Also-c. a diverging run (loss 10x its first value, still finite) gets one warning; a healthy one none', () => {
    const w = new DivergenceWatch();
    expect([4, 3, 2.5, 2].map((l, i) => w.push(i + 1, l))).toEqual([null, null, null, null]);
    expect(w.push(5, 30)).toBeNull();
    expect(w.push(6, 4e3)).toBe('the loss is 4000 at step 6, 1000x its first value 4.000 (lowest 2.000 at step 4): the run is diverging; try a lower learning rate');
    expect(w.push(7, 4e5)).toBeNull(); // once
    expect(new DivergenceWatch().push(1, NaN)).toBeNull(); // NaN is DivergedError's to report
  });

  it(`Also-a. fuzz: ${FUZZ_COUNT} mutated safetensors files (seed ${FUZZ_SEED}) raise only SafetensorsError, each within 1 s of CPU`, { timeout: FUZZ_TIMEOUT }, () => {
    const seeds = [
      encodeSafetensors(new Map([['a', { shape: [2, 3], data: randn(6, 1) }], ['b', { shape: [1], data: new Float32Array([1]) }]]), { format: 'pt' }),
      st('{"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"y":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]}}', new Uint8Array(6)),
      st('{"__metadata__":{"k":"v"},"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'),
    ];
    expect(fuzz('safetensors', seeds, FUZZ_COUNT, decodeSafetensors, SafetensorsError)).toBeGreaterThan(0);
  });
  it(`Also-b. fuzz: ${FUZZ_COUNT} mutated zip archives (seed ${FUZZ_SEED}) raise only ZipError, each within 1 s of CPU`, { timeout: FUZZ_TIMEOUT }, () => {
    const seeds = [
      zipStore(new Map([['config.json', enc.encode('{"a":1}')], ['model.safetensors', new Uint8Array(40).fill(3)]])),
      zipStore(new Map([['d/', new Uint8Array(0)], ['d/x', enc.encode('xyz')]])),
      zipStore(new Map([['one', new Uint8Array(1)]])),
      // deflate entries (fflate's writer), so mutations also reach the inflater
      zipSync({ 'config.json': enc.encode('{"a":1,"b":[1,2,3,4,5,6,7,8]}'), 'w.bin': [new Uint8Array(64).fill(5), { level: 9 }] }),
    ];
    expect(fuzz('zip', seeds, FUZZ_COUNT, unzip, ZipError)).toBeGreaterThan(0);
  });
});
