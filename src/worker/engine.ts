// The engine behind the worker API. Plain class, no DOM: the worker exposes it through comlink and
// tests can call it directly (with an in-memory library and their own GPU entry point).
//
// It owns the one GPU device and decides who may use it: one multi-agent run, one pretraining or one
// comparison at a time. Every failure that ends a run (a lost device, a diverging loss, a full quota)
// reaches the page as a RunProgress with state 'error' and a message; what is stored is never touched
// by a failed run.
import { transfer } from 'comlink';
import { browserGpu } from '../gpu/device';
import { DeviceLostError, NoWebGPUError } from '../gpu/errors';
import { Gpu } from '../gpu/runtime';
import { matmulSelfTest } from '../gpu/selftest';
import type { BaseModel, ExperimentRunner, RunControllerApi } from '../mas/types';
import { validateRunConfig } from '../mas/methods';
import { evaluateBaseOrError } from '../mas/base-eval';
import { modelDims } from '../model/config';
import { pretrainBase } from '../model/pretrain';
import {
  CONFIG_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, checkArchiveWeights, decodeCheckpoint, encodeCheckpoint,
  engineConfigProblem, type Checkpoint,
} from '../storage/checkpoint';
import { Library, filesSize, idbStore, newId, type FileMap, type KeyValueStore } from '../storage/library';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, AdapterError, decodeAdapter, encodeAdapter } from '../storage/peft';
import { slotOffsetOfFiles, withSlotOffsetFile } from '../storage/slot-offset';
import { listShort, printableName } from '../storage/text';
import { unzip, zipStore } from '../storage/zip';
import type { Split } from '../tasks/tasks';
import { loadTokenizer } from '../tokenizers';
import type {
  AdapterData, AdapterEntry, CompareRequest, EngineApi, EngineRunRecords, EnvReport, EvalRow, ExperimentReport, FileBlob, InspectResult, ModelEntry,
  PretrainRequest, ProbeReport, RunConfig, RunEntry, RunMemoryReport, RunProgress, RunRecord, RunState, RunCheckpoint, RunTrainingState, StartOptions,
} from './api';
import { runBundleContent } from '../mas/run-data';
import { estimateRunMemory, memoryProblem } from '../mas/memory';
import { estimateSetupTime, type TimeEstimateReport, type TimeMode } from '../mas/time-estimate';
import { describeBaseRef, resolveBundleBase } from '../storage/base-ref';
import { isRunBundle, RunBundleError, writeRunBundle } from '../storage/run-bundle';
import { importLabel, modelNameFromConfig, uniqueName } from '../storage/import-name';
import { leftOutOfRun, leftOutWords } from '../storage/import-leftout';
import { runRecordFromBundle } from '../mas/run-import';

/** The base models the page ships (public/models/<name>/) and seeds into the library on first use. */
export const BUILTIN_MODELS = ['toy', 'tiny'] as const;
export const builtinId = (name: string) => `builtin:${name}`;
/** Extra file in an exported adapter zip: which agent and run it came from (PEFT ignores it). */
export const RUN_INFO_FILE = 'playground_run.json';
/** Extra file of a checkpoint: how it was made (the CLI's pretrain writes it too). */
export const PROVENANCE_FILE = 'training_args.json';
/** Episodes per cell of the evaluation that ends a pretraining in the page (the CLI's default is 256). */
export const PAGE_EVAL_SIZE = 64;

export interface EngineOptions {
  /** WebGPU entry point (navigator.gpu in the browser). */
  gpu?: () => GPU | undefined;
  /** Key-value store of the library (IndexedDB in the browser). */
  store?: KeyValueStore;
  /** Reads a file the page ships, by path below the site's base URL (e.g. 'models/toy/config.json'). */
  fetchAsset?: (path: string) => Promise<Uint8Array>;
  /** Makes the multi-agent run controller (src/mas). */
  createController?: (gpu: Gpu) => RunControllerApi;
  /** Runs a comparison of several methods and seeds (src/mas). */
  runExperiment?: ExperimentRunner;
  /** The storage estimate the import checks against (default navigator.storage.estimate(); tests give their own). */
  storageEstimate?: () => Promise<{ usage: number | null; quota: number | null }>;
}

type Busy = 'run' | 'pretrain' | 'compare' | 'time' | null;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function baseUrl(): string {
  return (import.meta as { env?: { BASE_URL?: string } }).env?.BASE_URL ?? '/';
}

/** fetch() of a file below the page's base URL; a missing file (or the preview server's HTML fallback) is an error. */
export async function fetchAsset(path: string): Promise<Uint8Array> {
  const href = (globalThis as { location?: { href: string } }).location?.href ?? 'http://localhost/';
  const url = new URL(baseUrl() + path, href);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url.pathname}: HTTP ${res.status} ${res.statusText}`);
  if ((res.headers.get('content-type') ?? '').includes('text/html')) throw new Error(`${url.pathname} is not on the server`);
  return new Uint8Array(await res.arrayBuffer());
}

function basename(name: string): string {
  const parts = name.split(/[\\/]/);
  return parts[parts.length - 1] || name;
}

function slug(name: string): string {
  return name.trim().replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'export';
}

function parseJson(bytes: Uint8Array | undefined): Record<string, unknown> | undefined {
  if (!bytes) return undefined;
  try {
    const v = JSON.parse(decoder.decode(bytes));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1 << 20)).toFixed(1)} MB`;
}

/** The checks that a decoded checkpoint can run here: its tokenizer (if any) and kernel limits. */
function toBaseModel(id: string, ck: Checkpoint): BaseModel {
  const tokenizer = loadTokenizer(ck);
  const problem = engineConfigProblem(ck.config);
  if (problem) throw new Error(problem);
  modelDims(ck.config);
  return { id, config: ck.config, weights: ck.tensors, tokenizer, tokenizerConfig: ck.tokenizerConfig ?? null };
}

/** Words for an error that ended a run or a job; the lost device and a full disk say what to do. */
export function describeError(e: unknown): string {
  const err = e as Error;
  const text = (err?.message ?? String(e)).replace(/\.\s*$/, '');
  if (e instanceof DeviceLostError || err?.name === 'DeviceLostError') {
    return `${text}. The GPU is gone for this run; your library is intact. Press Train to start again on a new device.`;
  }
  if (err?.name === 'DivergedError') return `${text}. The run stopped; nothing stored was changed.`;
  return err?.message ?? String(e);
}

/** SHA-256 of some bytes, hex (crypto.subtle: the worker and Node both have it). */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The files that define a base model: what it computes (config, weights) and how it reads text (tokenizer). */
const MODEL_DEFINING_FILES = [CONFIG_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, WEIGHTS_FILE];

/** A base model's files as the library stores them (normalized config.json, F32 weights), whatever form they came in. */
function storedForm(base: BaseModel): FileMap {
  return encodeCheckpoint({
    config: base.config, tensors: base.weights, tokenizer: base.tokenizer?.toJSON() ?? null, tokenizerConfig: base.tokenizerConfig ?? null,
  });
}

/**
 * A base model's identity (issue 20 item 2): SHA-256 over every file that defines it, in the stored
 * form, each by name and length, so two models with the same weights but another config.json (eps,
 * rope_theta) or tokenizer are told apart. "model:" marks it apart from the weights-only digests older
 * libraries hold.
 */
export async function modelDigest(stored: FileMap): Promise<string> {
  const parts: Uint8Array[] = [];
  for (const name of MODEL_DEFINING_FILES) {
    const b = stored.get(name);
    parts.push(encoder.encode(`${name}\n${b ? b.length : -1}\n`), b ?? new Uint8Array(0));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return `model:${await sha256(all)}`;
}

export class Engine implements EngineApi, EngineRunRecords {
  private gpu: Promise<Gpu> | null = null;
  private env: Promise<EnvReport> | null = null;
  readonly library: Library;
  private seeding: Promise<void> | null = null;
  private seedNotes: string[] = [];
  private base: { id: string; model: Promise<BaseModel> } | null = null;
  private busy: Busy = null;
  private ctl: RunControllerApi | null = null;
  private runBaseId: string | null = null;
  private runConfig: RunConfig | null = null;
  private runState: RunState = 'idle';
  private runDone: Promise<void> | null = null;
  private pretrainStop = false;

  constructor(private readonly opts: EngineOptions = {}) {
    this.library = new Library(opts.store ?? idbStore());
  }

  async device(): Promise<Gpu> {
    const entry = this.opts.gpu ?? browserGpu;
    this.gpu ??= Gpu.create(entry());
    const gpu = await this.gpu.catch((e) => {
      this.gpu = null;
      throw e;
    });
    if (gpu.lost) {
      // A lost device cannot be revived: get a new one (and drop everything made on the old one).
      this.dropRun();
      this.gpu = null;
      return this.device();
    }
    return gpu;
  }

  init(): Promise<EnvReport> {
    this.env ??= (async (): Promise<EnvReport> => {
      try {
        const gpu = await this.device();
        const selfTest = await matmulSelfTest(gpu);
        return { ok: true, report: gpu.report, selfTest };
      } catch (e) {
        this.gpu = null;
        const err = e as Error;
        return { ok: false, kind: e instanceof NoWebGPUError ? 'no-webgpu' : 'error', message: err.message };
      }
    })();
    return this.env;
  }

  // ---------------------------------------------------------------- library

  /** Seeds the shipped base models once per profile (each one only if it is not already stored). */
  private ensureBuiltins(): Promise<void> {
    this.seeding ??= (async () => {
      const fetchOne = this.opts.fetchAsset ?? fetchAsset;
      const notes: string[] = [];
      for (const name of BUILTIN_MODELS) {
        const id = builtinId(name);
        if (await this.library.hasModel(id)) continue;
        try {
          const files: FileMap = new Map();
          for (const f of [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE]) files.set(f, await fetchOne(`models/${name}/${f}`));
          const provenance = await fetchOne(`models/${name}/${PROVENANCE_FILE}`).then(parseJson, () => undefined);
          const ck = decodeCheckpoint(files);
          toBaseModel(id, ck);
          const entry: ModelEntry = {
            id, name: `${name} (shipped)`, size: filesSize(files), createdAt: Date.now(), builtin: true,
            config: { ...ck.config }, provenance: { source: `public/models/${name}`, ...(provenance ?? {}) },
          };
          await this.library.saveModel(entry, files);
        } catch (e) {
          notes.push(`The shipped base model '${name}' could not be added to the library: ${(e as Error).message}`);
        }
      }
      this.seedNotes = notes;
      // Try again on the next call if something was missing (the files may appear later).
      if (notes.length) this.seeding = null;
    })();
    // an unreadable index rejects here; the next call tries again (after a rebuild, say)
    return this.seeding.catch((e) => {
      this.seeding = null;
      throw e;
    });
  }

  /** Problems met while seeding the shipped models (empty when all is well). */
  async libraryNotes(): Promise<string[]> {
    await this.ensureBuiltins();
    return this.seedNotes;
  }

  /** A new index from the stored records, when the old one cannot be read; the shipped models are seeded again after. */
  async rebuildLibraryIndex(): Promise<{ models: number; adapters: number; skipped: string[]; backup: string | null }> {
    const r = await this.library.rebuildIndex();
    this.seeding = null;
    return r;
  }

  async listModels(): Promise<ModelEntry[]> {
    await this.ensureBuiltins();
    return this.library.listModels();
  }

  async listAdapters(): Promise<AdapterEntry[]> {
    return this.library.listAdapters();
  }

  renameModel(id: string, name: string): Promise<void> {
    return this.library.rename('model', id, name);
  }

  renameAdapter(id: string, name: string): Promise<void> {
    return this.library.rename('adapter', id, name);
  }

  async deleteModel(id: string): Promise<void> {
    const entry = await this.library.model(id);
    if (entry.builtin) throw new Error(`'${entry.name}' ships with the page and cannot be deleted (it would come back on the next visit)`);
    if (this.runBaseId === id && this.ctl) throw new Error(`'${entry.name}' is the base model of the current run: reset the run first`);
    if (this.base?.id === id) this.base = null;
    await this.library.remove('model', id);
  }

  async deleteAdapter(id: string): Promise<void> {
    await this.library.adapter(id);
    await this.library.remove('adapter', id);
  }

  async exportModel(id: string): Promise<FileBlob> {
    const entry = await this.library.model(id);
    const files = await this.library.files('model', id);
    if (entry.provenance && !files.has(PROVENANCE_FILE)) {
      files.set(PROVENANCE_FILE, encoder.encode(JSON.stringify(entry.provenance, null, 2) + '\n'));
    }
    const bytes = zipStore(files);
    return transfer({ name: `${slug(entry.name)}.zip`, bytes }, [bytes.buffer]);
  }

  async exportAdapter(id: string): Promise<FileBlob> {
    const entry = await this.library.adapter(id);
    const files = await this.library.files('adapter', id);
    const info = { agent: entry.agent, baseModelId: entry.baseModelId, runConfig: entry.runConfig, name: entry.name };
    files.set(RUN_INFO_FILE, encoder.encode(JSON.stringify(info, null, 2) + '\n'));
    const bytes = zipStore(files);
    return transfer({ name: `${slug(entry.name)}.zip`, bytes }, [bytes.buffer]);
  }

  /** Reads zips and loose files into one name -> bytes map; refuses duplicates and unreadable zips. */
  /** Every file given, zips opened, each with its path (a folder's relative path, or inside its zip) and where it came from. */
  private collectFiles(files: FileBlob[]): { entries: { path: string; bytes: Uint8Array; from: string }[]; label: string } {
    if (!files.length) throw new Error('no files were given');
    const entries: { path: string; bytes: Uint8Array; from: string }[] = [];
    for (const f of files) {
      const isZip = /\.zip$/i.test(f.name) || (f.bytes.length >= 4 && f.bytes[0] === 0x50 && f.bytes[1] === 0x4b && f.bytes[2] === 3 && f.bytes[3] === 4);
      if (isZip) {
        let inner: Map<string, Uint8Array>;
        try {
          inner = unzip(f.bytes, { skip: (n) => n.startsWith('__MACOSX/'), check: checkArchiveWeights });
        } catch (e) {
          throw new Error(`${f.name} cannot be read as a zip archive: ${(e as Error).message}`);
        }
        for (const [n, b] of inner) if (!n.startsWith('__MACOSX/')) entries.push({ path: n, bytes: b, from: f.name });
      } else entries.push({ path: f.name, bytes: f.bytes, from: f.name });
    }
    // the zip's or the file's name, or the folder's (a folder picked in the page gives 'folder/config.json')
    return { entries, label: importLabel(files.map((f) => f.name)) };
  }

  /** A model's or an adapter's files by bare name (one of each name). */
  private flatFiles(entries: { path: string; bytes: Uint8Array; from: string }[]): FileMap {
    const out: FileMap = new Map();
    for (const { path, bytes, from } of entries) {
      const b = basename(path);
      if (b.startsWith('.') || b === '') continue;
      if (out.has(b)) throw new Error(`${printableName(b)} appears twice (in ${printableName(from)}); give one model or one adapter at a time`);
      out.set(b, bytes);
    }
    return out;
  }

  /** Refuses a write of `bytes` that the site's storage quota cannot take, before anything is written. */
  private async checkQuota(bytes: number, what: string): Promise<void> {
    const est = await (this.opts.storageEstimate ?? (() => this.storageEstimate()))().catch(() => null);
    if (!est || est.usage === null || est.quota === null) return;
    const free = est.quota - est.usage;
    // IndexedDB stores a little more than the bytes themselves: keep a 5% margin
    if (bytes * 1.05 > free) {
      throw new Error(
        `not enough storage for ${what}: it needs ${fmtBytes(bytes)} but this site may store only ${fmtBytes(Math.max(0, free))} more ` +
          `(${fmtBytes(est.usage)} used of ${fmtBytes(est.quota)}); delete entries from the library or free disk space; nothing was written`,
      );
    }
  }

  async importFiles(
    blobs: FileBlob[], adapterBaseModelId?: string, onProgress?: (stage: string, fraction: number) => void,
  ): Promise<{ kind: 'model' | 'adapter' | 'run'; id: string; name: string; note?: string }> {
    const say = (stage: string, fraction: number) => void Promise.resolve(onProgress?.(stage, fraction)).catch(() => undefined);
    say('reading the files', 0.05);
    const { entries, label } = this.collectFiles(blobs);
    const paths: FileMap = new Map(entries.map((e) => [e.path.replace(/\\/g, '/'), e.bytes]));
    // a run is named by its zip, else by its record (a folder's name is not the run's)
    if (isRunBundle(paths)) return this.importRun(paths, blobs.length === 1 ? label : '', say);
    const files = this.flatFiles(entries);
    // names from a zip may hold anything: escaped, and at most five of them
    const listing = listShort([...files].map(([n, b]) => `${/^[\w.+@ -]{1,80}$/.test(n) ? n : printableName(n)} (${fmtBytes(b.length)})`));
    if (files.has(ADAPTER_CONFIG_FILE)) {
      const info = parseJson(files.get(RUN_INFO_FILE));
      const cfg = parseJson(files.get(ADAPTER_CONFIG_FILE));
      const named = typeof cfg?.base_model_name_or_path === 'string' ? cfg.base_model_name_or_path : undefined;
      const candidates = [adapterBaseModelId, named].filter((x): x is string => !!x);
      let baseId: string | undefined;
      for (const c of candidates) if (await this.library.hasModel(c)) { baseId = c; break; }
      if (!baseId) {
        throw new Error(
          'choose the base model this adapter belongs to first' +
            (named ? ` (its adapter_config.json names ${JSON.stringify(named)}, which is not in the library)` : ''),
        );
      }
      const base = await this.loadBase(baseId);
      const baseEntry = await this.library.model(baseId);
      let adapter;
      try {
        adapter = decodeAdapter(files, base.config);
      } catch (e) {
        // a file that cannot be read (truncated, not JSON) is not a misfit with the base: say which it is
        if (e instanceof AdapterError && e.kind === 'format') throw new Error(`this adapter cannot be read: ${e.message}`);
        throw new Error(`this adapter does not fit the base model '${baseEntry.name}': ${(e as Error).message}`);
      }
      // learned latent slot offsets beside the PEFT files (latentSlotOffset runs) are kept with them
      let offset;
      try {
        offset = slotOffsetOfFiles(files, base.config.hidden_size);
      } catch (e) {
        throw new Error(`this adapter does not fit the base model '${baseEntry.name}': ${(e as Error).message}`);
      }
      const stored = withSlotOffsetFile(encodeAdapter({ config: { ...adapter.config, base_model_name_or_path: adapter.config.base_model_name_or_path ?? baseId }, tensors: adapter.tensors }, base.config), offset);
      const digest = await sha256(stored.get(ADAPTER_WEIGHTS_FILE)!);
      const same = await this.findDigest('adapter', digest);
      if (same) throw new Error(`this adapter is already in the library as '${same}' (the same weights); nothing was imported`);
      const name = (typeof info?.name === 'string' && info.name) || label || 'imported adapter';
      const entry: AdapterEntry = {
        id: newId('adapter'), name, size: 0, createdAt: Date.now(), baseModelId: baseId,
        agent: typeof info?.agent === 'string' ? info.agent : 'imported',
        runConfig: (info?.runConfig as RunConfig | undefined) ?? null,
        config: parseJson(stored.get(ADAPTER_CONFIG_FILE)) ?? {},
        digest,
      };
      await this.checkQuota(filesSize(stored), 'this adapter');
      say('storing the adapter', 0.8);
      const [saved] = await this.library.saveAdapters([{ entry, files: stored }]);
      say('done', 1);
      return { kind: 'adapter', id: saved.id, name: saved.name };
    }
    if (files.has(CONFIG_FILE) && (files.has(WEIGHTS_FILE) || files.has(WEIGHTS_INDEX_FILE))) {
      let base: BaseModel;
      say('checking the checkpoint (config, weights, tokenizer)', 0.2);
      try {
        base = toBaseModel('import', decodeCheckpoint(files));
      } catch (e) {
        throw new Error(`this checkpoint cannot be used: ${(e as Error).message}`);
      }
      say('converting the weights to float32', 0.5);
      const stored = storedForm(base);
      const provenance = parseJson(files.get(PROVENANCE_FILE));
      const digest = await modelDigest(stored);
      const same = await this.findDigest('model', digest);
      if (same) throw new Error(`this base model is already in the library as '${same}' (the same config.json, tokenizer and weights); nothing was imported`);
      const entry: ModelEntry = {
        id: newId('model'), size: 0, createdAt: Date.now(), builtin: false,
        // named as a person chose the files (the zip, the folder), else as its config says; never two alike
        name: uniqueName(label || modelNameFromConfig(parseJson(files.get(CONFIG_FILE)) ?? { ...base.config }), (await this.library.listModels()).map((m) => m.name)),
        config: { ...base.config }, provenance: { source: `imported from ${blobs.map((b) => b.name).join(', ')}`, ...(provenance ?? {}) }, digest,
        // without tokenizer.json it runs on token ids only: the library row says so, and no run or comparison starts on it
        ...(base.tokenizer ? {} : { tokenizer: false }),
      };
      await this.checkQuota(filesSize(stored), 'this model (stored as float32)');
      say('storing the model in the library', 0.75);
      const saved = await this.library.saveModel(entry, stored);
      say('done', 1);
      return { kind: 'model', id: saved.id, name: saved.name };
    }
    if (files.has(CONFIG_FILE)) {
      throw new Error(`this looks like a checkpoint without weights: found ${listing}; ${WEIGHTS_FILE} is missing`);
    }
    throw new Error(
      `these files are neither a base model nor an adapter: found ${listing}. A base model needs ${CONFIG_FILE} and ` +
        `${WEIGHTS_FILE} (or its shards with ${WEIGHTS_INDEX_FILE}), and ${TOKENIZER_FILE} to run tasks; a PEFT adapter needs ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE} ` +
        '(loose, as a folder, or together in one zip).',
    );
  }

  /** The name of a stored entry whose weights have this digest (entries without one are hashed now), or null. */
  private async findDigest(kind: 'model' | 'adapter', digest: string): Promise<string | null> {
    return (await this.findDigestEntry(kind, digest))?.name ?? null;
  }

  private async findDigestEntry(kind: 'model' | 'adapter', digest: string): Promise<ModelEntry | AdapterEntry | null> {
    const entries: (ModelEntry | AdapterEntry)[] = kind === 'model' ? await this.library.listModels() : await this.library.listAdapters();
    for (const e of entries) {
      if (e.digest === digest) return e;
      // a model is known by all its defining files: entries with a weights-only digest (older libraries) are hashed again
      if (e.digest && (kind === 'adapter' || e.digest.startsWith('model:'))) continue;
      const files = await this.library.files(kind, e.id).catch(() => null);
      if (!files) continue;
      if (kind === 'adapter') {
        const w = files.get(ADAPTER_WEIGHTS_FILE);
        if (w && (await sha256(w)) === digest) return e;
        continue;
      }
      // the shipped models are stored as shipped: bring them to the stored form first
      let stored: FileMap | null = files;
      if ((e as ModelEntry).builtin) {
        try {
          stored = storedForm(toBaseModel(e.id, decodeCheckpoint(files)));
        } catch {
          stored = null;
        }
      }
      if (stored && (await modelDigest(stored)) === digest) return e;
    }
    return null;
  }

  /**
   * A run bundle (the page's "Export run" zip, or a folder `experiment --export-run` wrote) stored as a
   * run record: its base is the library's model with the same weights, or is stored from the bundle.
   */
  private async importRun(files: FileMap, label: string, say: (stage: string, fraction: number) => void): Promise<{ kind: 'run'; id: string; name: string; note?: string }> {
    say('checking the run bundle', 0.2);
    let base: BaseModel | null = null;
    let imported;
    const runJson = files.get('run.json') ?? [...files].find(([k]) => /^[^/]+\/run\.json$/.test(k))?.[1];
    const fallbackId = `run-import-${(await sha256(runJson ?? new Uint8Array())).slice(0, 16)}`;
    const top = [...files.keys()][0]?.split('/')[0] ?? '';
    try {
      // a bundle that references its base (files.baseRef): the page resolves a library reference, checked by its weights' digest
      let refBase: FileMap | null = null;
      if (runJson) {
        let parsed: unknown = null;
        try {
          parsed = JSON.parse(decoder.decode(runJson));
        } catch {
          // readRunBundle names what is wrong
        }
        if (parsed && typeof parsed === 'object') {
          refBase = await resolveBundleBase(parsed as { files?: { baseRef?: unknown } }, async (ref) => {
            if (ref.source !== 'library') {
              throw new RunBundleError(`it references its base as ${describeBaseRef(ref)}, which only the command line and the companion resolve; the page resolves a library model (write the bundles with --base-ref library:ID, or without --base-ref)`);
            }
            if (!(await this.library.hasModel(ref.id))) throw new RunBundleError(`it references the library model ${JSON.stringify(ref.id)}, which this page's library does not hold: import that base first`);
            return this.library.files('model', ref.id);
          });
        }
      }
      imported = runRecordFromBundle(files, (b) => {
        base = toBaseModel('import', decodeCheckpoint(b));
        return base.config;
      }, { fallbackId, label: label || (files.has('run.json') ? '' : top), now: Date.now(), ...(refBase ? { base: refBase } : {}) });
    } catch (e) {
      throw new Error(`this run bundle cannot be read: ${(e as Error).message.replace(/^run bundle: /, '')}`);
    }
    const { record } = imported;
    const b = base as BaseModel | null;
    if (!b) throw new Error('this run bundle cannot be read: it has no base model');
    if ((await this.library.listRuns()).some((r) => r.id === record.id)) {
      const same = await this.library.runRecord(record.id).catch(() => null);
      throw new Error(`this run is already in the library as '${same?.name ?? record.id}'; nothing was imported`);
    }
    say('finding its base model', 0.4);
    const stored = storedForm(b);
    const digest = await modelDigest(stored);
    let baseEntry = (await this.findDigestEntry('model', digest)) as ModelEntry | null;
    if (!baseEntry) {
      const name = `${record.baseName ?? imported.json.base.name ?? imported.json.base.id} (from run '${record.name}')`;
      const entry: ModelEntry = {
        id: newId('model'), name, size: 0, createdAt: Date.now(), builtin: false, config: { ...b.config },
        provenance: { source: `the base of the run bundle ${label || record.name}`, ...(parseJson(imported.baseFiles.get(PROVENANCE_FILE)) ?? {}) }, digest,
      };
      await this.checkQuota(filesSize(stored), "the run's base model (stored as float32)");
      say('storing its base model', 0.6);
      baseEntry = await this.library.saveModel(entry, stored);
    }
    const full: RunRecord = { ...record, baseModelId: baseEntry.id, baseName: record.baseName ?? baseEntry.name };
    say('storing the run', 0.85);
    const saved = await this.library.saveRun(full);
    say('done', 1);
    // the export's derived files (tables, figures, TensorBoard) are not stored: say so, and why
    const note = leftOutWords(leftOutOfRun(files));
    return { kind: 'run', id: saved.id, name: saved.name, ...(note ? { note } : {}) };
  }

  async estimateRun(config: RunConfig): Promise<RunMemoryReport> {
    this.checkConfig(config);
    // the limits the device was made with (the init report): asking for an estimate never acquires
    // or replaces a device, so it cannot race a run that is starting on a new one after a loss
    const env = await this.init();
    if (!env.ok) throw new Error(env.message);
    const limits = env.report.limits as { maxBufferSize: number; maxStorageBufferBindingSize: number } & Record<string, number>;
    const base = await this.loadBase(config.modelId);
    const m = estimateRunMemory(base, config, limits);
    return { ...m, bufferLimit: Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize), problem: memoryProblem(m, limits, config) };
  }

  /** The setup's time from one training step and one evaluation batch per method timed on this device (src/mas/time-estimate.ts). */
  async estimateTime(req: CompareRequest, mode: TimeMode): Promise<TimeEstimateReport> {
    if (this.runState === 'running' || this.runState === 'paused') throw new Error('the GPU is busy: a training run is active (reset it first)');
    this.claim('time');
    try {
      for (const method of mode === 'run' ? req.methods.slice(0, 1) : req.methods) this.checkConfig({ ...req.base, method, seed: req.seeds[0] ?? 1 });
      const base = await this.loadBase(req.base.modelId);
      const gpu = await this.device();
      return await estimateSetupTime(gpu, base, req, mode);
    } catch (e) {
      if (e instanceof DeviceLostError) this.gpu = null;
      throw new Error(describeError(e));
    } finally {
      this.busy = null;
    }
  }

  async storageEstimate(): Promise<{ usage: number | null; quota: number | null; persisted: boolean | null }> {
    const storage = (globalThis.navigator as Navigator | undefined)?.storage;
    const est = storage?.estimate ? await storage.estimate() : undefined;
    const persisted = storage?.persisted ? await storage.persisted().catch(() => null) : null;
    return { usage: est?.usage ?? null, quota: est?.quota ?? null, persisted };
  }

  /** The decoded base model, kept while it is the one in use. */
  private loadBase(id: string): Promise<BaseModel> {
    if (this.base?.id !== id) {
      const model = (async () => {
        const files = await this.library.files('model', id);
        // the entry's name goes with it, so that a refusal names the model as the library shows it (never its id)
        const name = await this.library.model(id).then((e) => e.name, () => undefined);
        return { ...toBaseModel(id, decodeCheckpoint(files)), ...(name ? { name } : {}) };
      })();
      this.base = { id, model };
      model.catch(() => {
        if (this.base?.model === model) this.base = null;
      });
    }
    return this.base.model;
  }

  private claim(what: Exclude<Busy, null>): void {
    if (this.busy && this.busy !== what) {
      const doing = { run: 'a training run is active (reset it first)', pretrain: 'a base model is being pretrained', compare: 'a comparison is running', time: 'a setup\u2019s time is being measured' }[this.busy];
      throw new Error(`the GPU is busy: ${doing}`);
    }
    this.busy = what;
  }

  async pretrain(req: PretrainRequest, onProgress: (p: RunProgress) => void): Promise<ModelEntry> {
    if (this.runState === 'running' || this.runState === 'paused') throw new Error('the GPU is busy: a training run is active (reset it first)');
    this.claim('pretrain');
    this.pretrainStop = false;
    const report = (p: RunProgress) => void Promise.resolve(onProgress(p)).catch(() => undefined);
    const name = req.name.trim() || `${req.preset} base model`;
    try {
      if (!Number.isInteger(req.steps) || req.steps < 1) throw new Error(`steps must be a whole number >= 1, got ${req.steps}`);
      if (!Number.isInteger(req.batch) || req.batch < 1) throw new Error(`batch must be a whole number >= 1, got ${req.batch}`);
      if (!(req.lr > 0 && req.lr < 1)) throw new Error(`the learning rate must be in (0, 1), got ${req.lr}`);
      const gpu = await this.device();
      let last: RunProgress | null = null;
      const result = await pretrainBase(gpu, {
        preset: req.preset, steps: req.steps, seed: req.seed, batch: req.batch, lr: req.lr,
        shouldStop: () => this.pretrainStop,
        onStep: (r) => {
          if (!Number.isFinite(r.loss)) throw Object.assign(new Error(`pretraining diverged at step ${r.step}: loss is ${r.loss} (try a lower learning rate)`), { name: 'DivergedError' });
          last = {
            state: 'running', step: r.step, totalSteps: r.totalSteps, loss: r.loss, heldoutLoss: null, heldoutAccuracy: null,
            tokensPerSecond: r.tokensPerSecond, stepsPerSecond: r.step / Math.max(r.elapsedSeconds, 1e-9), elapsedSeconds: r.elapsedSeconds,
          };
          report(last);
        },
      });
      if (!result.losses.length) throw new Error('pretraining was cancelled before its first step; nothing was stored');
      const stoppedEarly = this.pretrainStop;
      const files = encodeCheckpoint({ config: result.config, tensors: result.weights, tokenizer: result.tokenizer.toJSON() as unknown as Record<string, unknown> });
      const entry: ModelEntry = {
        id: newId('model'), name, size: 0, createdAt: Date.now(), builtin: false, config: { ...result.config },
        provenance: { ...result.provenance, source: 'pretrained in the browser', cancelled: stoppedEarly || undefined },
      };
      // stored before the evaluation, so a closed tab or a failure there keeps the weights
      let saved = await this.library.saveModel(entry, files);
      if (req.evaluation !== false && !stoppedEarly) {
        const at = last as RunProgress | null;
        const evaluation = await evaluateBaseOrError(gpu, { id: saved.id, config: result.config, weights: result.weights, tokenizer: result.tokenizer }, {
          evalSize: PAGE_EVAL_SIZE, ...(req.evaluation ?? {}),
          shouldStop: () => this.pretrainStop,
          onProgress: (message) => report({
            state: 'running', step: at?.step ?? req.steps, totalSteps: req.steps, loss: NaN, heldoutLoss: null, heldoutAccuracy: null,
            tokensPerSecond: 0, stepsPerSecond: at?.stepsPerSecond ?? 0, elapsedSeconds: at?.elapsedSeconds ?? 0, message,
          }),
        });
        // the entry as it is now (it may have been renamed meanwhile; a deleted one stays deleted)
        const current = await this.library.model(saved.id).catch(() => null);
        if (current) saved = await this.library.saveModel({ ...current, provenance: { ...current.provenance, evaluation } }, files);
      }
      const done = last as RunProgress | null;
      report({ ...(done ?? { step: 0, totalSteps: req.steps, loss: NaN, heldoutLoss: null, heldoutAccuracy: null, tokensPerSecond: 0, stepsPerSecond: 0, elapsedSeconds: 0 }), state: this.pretrainStop ? 'stopped' : 'done' });
      return saved;
    } catch (e) {
      const message = describeError(e);
      report({ state: 'error', step: 0, totalSteps: req.steps, loss: NaN, heldoutLoss: null, heldoutAccuracy: null, tokensPerSecond: 0, stepsPerSecond: 0, elapsedSeconds: 0, message });
      throw new Error(message);
    } finally {
      this.busy = null;
    }
  }

  async cancelPretrain(): Promise<void> {
    this.pretrainStop = true;
  }

  // ---------------------------------------------------------------- one run

  /** Refuses a configuration that cannot run, saying what to change. */
  private checkConfig(c: RunConfig): void {
    try {
      validateRunConfig(c);
    } catch (e) {
      throw new Error(`this run cannot start: ${(e as Error).message.replace(/^run config: /, '')}`);
    }
  }

  private makeController(gpu: Gpu): RunControllerApi {
    if (!this.opts.createController) throw new Error('the multi-agent engine is not part of this build');
    return this.opts.createController(gpu);
  }

  private disposeController(): void {
    const ctl = this.ctl as (RunControllerApi & { dispose?: () => void }) | null;
    try {
      if (ctl?.dispose) ctl.dispose();
      else ctl?.reset();
    } catch {
      /* a controller on a lost device may fail to free; it is dropped anyway */
    }
    this.ctl = null;
  }

  private dropRun(): void {
    this.disposeController();
    this.runBaseId = null;
    this.runConfig = null;
    this.runState = 'idle';
    if (this.busy === 'run') this.busy = null;
  }

  async startRun(config: RunConfig, onProgress: (p: RunProgress) => void, options: StartOptions = {}): Promise<void> {
    const report = (p: RunProgress) => void Promise.resolve(onProgress(p)).catch(() => undefined);
    const fail = (e: unknown) => {
      const message = describeError(e);
      this.runState = 'error';
      if (e instanceof DeviceLostError || (e as Error)?.name === 'DeviceLostError') {
        this.gpu = null;
        this.ctl = null;
      }
      if (this.busy === 'run') this.busy = null;
      report({
        state: 'error', step: 0, totalSteps: config.steps, loss: NaN, heldoutLoss: null, heldoutAccuracy: null,
        tokensPerSecond: 0, stepsPerSecond: 0, elapsedSeconds: 0, message,
      });
    };
    try {
      this.claim('run');
      if (this.runState === 'running' || this.runState === 'paused') throw new Error('a run is already active: pause, resume or reset it');
      this.checkConfig(config);
      const base = await this.loadBase(config.modelId);
      const gpu = await this.device();
      // a run whose largest buffer the device cannot bind is refused before anything is allocated
      const problem = memoryProblem(estimateRunMemory(base, config, gpu.device.limits as unknown as Record<string, number>), gpu.device.limits, config);
      if (problem) throw new Error(problem);
      // A fresh controller per run: the previous one (and what it holds on the GPU) is freed.
      this.disposeController();
      this.ctl = this.makeController(gpu);
      this.runBaseId = config.modelId;
      this.runConfig = structuredClone(config);
      this.runState = 'running';
      const ctl = this.ctl;
      if (options.paused) ctl.pause();
      const wrapped = (p: RunProgress) => {
        if (this.ctl !== ctl) return; // a progress of a run that was reset or replaced
        this.runState = p.state;
        if (p.state === 'done' || p.state === 'stopped' || p.state === 'error') {
          if (this.busy === 'run') this.busy = null;
        }
        if (p.state !== 'error') return report(p);
        // A lost device is reported by the browser a moment after the failing call: look then.
        setTimeout(() => report(this.explainRunError(p, gpu)), 100);
      };
      this.runDone = ctl.start(config, base, wrapped);
      await this.runDone;
      if (this.ctl === ctl && (this.runState === 'running' || this.runState === 'paused')) this.runState = 'done';
      if (this.busy === 'run') this.busy = null;
    } catch (e) {
      fail(e);
    } finally {
      this.runDone = null;
    }
  }

  /** Adds what to do to a run's error: a lost device (the next start gets a new one), a divergence. */
  private explainRunError(p: RunProgress, gpu: Gpu): RunProgress {
    const message = (p.message ?? 'the run failed').replace(/\.\s*$/, '');
    if (gpu.lost || /device (was )?lost/i.test(message)) {
      const cur = this.gpu;
      void cur?.then((g) => {
        if (g === gpu && this.gpu === cur) this.gpu = null;
      }, () => undefined);
      const what = /device lost/i.test(message) ? message : `GPU device lost: ${message}`;
      return { ...p, message: `${what}. The GPU is gone for this run; your library is intact. Press Train to start again on a new device.` };
    }
    if (/diverged/i.test(message)) return { ...p, message: `${message}. The run stopped; nothing stored was changed.` };
    return p;
  }

  private active(): RunControllerApi {
    if (!this.ctl) throw new Error('there is no run: press Train first');
    return this.ctl;
  }

  async pauseRun(): Promise<void> {
    this.active().pause();
  }

  async resumeRun(): Promise<void> {
    this.active().resume();
  }

  async stepRun(): Promise<void> {
    await this.active().step();
  }

  async stopRun(): Promise<void> {
    this.ctl?.stop();
    await this.runDone?.catch(() => undefined);
    if (this.busy === 'run') this.busy = null;
  }

  async resetRun(): Promise<void> {
    this.ctl?.stop();
    await this.runDone?.catch(() => undefined);
    this.dropRun();
  }

  async evaluate(splits: Split[]): Promise<EvalRow[]> {
    return this.active().evaluate(splits);
  }

  async inspect(split: Split, index: number): Promise<InspectResult> {
    const r = await this.active().inspect(split, index);
    const buffers = new Set<ArrayBuffer>();
    for (const e of r.edges) for (const a of [e.attention, e.keyNorms, e.valueNorms]) buffers.add(a.buffer as ArrayBuffer);
    return transfer(r, [...buffers]);
  }

  async probeRun(trainEpisodes?: number): Promise<ProbeReport> {
    const ctl = this.active();
    if (!ctl.probe) throw new Error('this build cannot probe a run');
    return ctl.probe(trainEpisodes);
  }

  async saveAdapters(name: string): Promise<AdapterEntry[]> {
    const ctl = this.active();
    const baseId = this.runBaseId;
    if (!baseId) throw new Error('the run has no base model');
    const base = await this.loadBase(baseId);
    const trained = await ctl.adapters();
    if (!trained.length) throw new Error('this run has no adapters to save: only DiffMAS methods train adapters');
    const clean = name.trim() || 'adapter';
    const setId = newId('set');
    const agents = this.runConfig?.topology.agents ?? [];
    const agentName = (id: string) => (id === 'shared' ? 'shared' : agents.find((a) => a.id === id)?.name || id);
    const items = await Promise.all(trained.map(async (t) => {
      const files = withSlotOffsetFile(encodeAdapter({ config: { ...t.config, base_model_name_or_path: t.config.base_model_name_or_path ?? baseId }, tensors: t.tensors }, base.config), t.slotOffset);
      const entry: AdapterEntry = {
        id: newId('adapter'), name: trained.length > 1 ? `${clean} · ${agentName(t.agent)}` : clean, size: 0, createdAt: Date.now(),
        baseModelId: baseId, agent: t.agent, runConfig: this.runConfig, config: parseJson(files.get(ADAPTER_CONFIG_FILE)) ?? {},
        setId, digest: await sha256(files.get(ADAPTER_WEIGHTS_FILE)!),
      };
      return { entry, files };
    }));
    return this.library.saveAdapters(items);
  }

  // ---------------------------------------------------------------- run records, reopened adapters, the run bundle

  listRuns(): Promise<RunEntry[]> {
    return this.library.listRuns();
  }

  saveRun(record: RunRecord): Promise<RunEntry> {
    return this.library.saveRun(record);
  }

  runRecord(id: string): Promise<RunRecord> {
    return this.library.runRecord(id);
  }

  deleteRun(id: string): Promise<void> {
    return this.library.removeRun(id);
  }

  async runAdapters(): Promise<AdapterData[]> {
    const ctl = this.active();
    return ctl.adapters();
  }

  async inspectWith(adapters: AdapterData[], split: Split, index: number): Promise<InspectResult> {
    const ctl = this.active();
    if (!ctl.inspectWith) throw new Error('this build cannot inspect with other adapter weights');
    const r = await ctl.inspectWith(adapters, split, index);
    const buffers = new Set<ArrayBuffer>();
    for (const e of r.edges) for (const a of [e.attention, e.keyNorms, e.valueNorms]) buffers.add(a.buffer as ArrayBuffer);
    return transfer(r, [...buffers]);
  }

  async adapterSet(ids: string[]): Promise<AdapterData[]> {
    if (!ids.length) throw new Error('no adapter was chosen');
    const out: AdapterData[] = [];
    for (const id of ids) {
      const entry = await this.library.adapter(id);
      if (!(await this.library.hasModel(entry.baseModelId))) {
        throw new Error(`the adapter '${entry.name}' was made for the base model ${JSON.stringify(entry.baseModelId)}, which is not in the library: import that base first`);
      }
      const base = await this.loadBase(entry.baseModelId);
      const files = await this.library.files('adapter', id);
      let a;
      let slotOffset;
      try {
        a = decodeAdapter(files, base.config);
        slotOffset = slotOffsetOfFiles(files, base.config.hidden_size);
      } catch (e) {
        throw new Error(`the adapter '${entry.name}' cannot be used: ${(e as Error).message}`);
      }
      out.push({ agent: entry.agent, config: a.config, tensors: a.tensors, ...(slotOffset ? { slotOffset } : {}) });
    }
    return out;
  }

  async loadRunAdapters(adapters: AdapterData[]): Promise<void> {
    const ctl = this.active();
    if (!ctl.loadAdapters) throw new Error('this build cannot load adapters into a run');
    await ctl.loadAdapters(adapters);
  }

  async runCheckpoint(): Promise<RunCheckpoint> {
    const ctl = this.active();
    if (!ctl.checkpoint) throw new Error('this build cannot read a run\'s training state');
    const c = await ctl.checkpoint();
    const buffers = [...(c.training ? [...c.training.m, ...c.training.v] : []), ...c.adapters.flatMap((a) => [...a.tensors.values()]), ...(c.fuser ? c.fuser.values() : [])];
    return transfer(c, [...new Set(buffers.map((a) => a.buffer as ArrayBuffer))]);
  }

  async continueRun(adapters: AdapterData[], state: RunTrainingState, fuser?: Map<string, Float32Array> | null): Promise<void> {
    const ctl = this.active();
    if (!ctl.continueFrom) throw new Error('this build cannot continue a run');
    await ctl.continueFrom(adapters, state, fuser);
  }

  async runBundle(id: string): Promise<FileBlob[]> {
    const rec = await this.library.runRecord(id);
    if (rec.kind !== 'run') throw new Error('a comparison has no run bundle: export its report instead');
    if (!(await this.library.hasModel(rec.baseModelId))) {
      throw new Error(`the base model ${rec.baseName ? `'${rec.baseName}'` : JSON.stringify(rec.baseModelId)} of this run is no longer in the library: import it again to export the run`);
    }
    const baseFiles = await this.library.files('model', rec.baseModelId);
    const base = await this.loadBase(rec.baseModelId);
    const final = rec.adapters.final.length ? rec.adapters.final : rec.adapters.initial;
    // c2c trains its fuser (no adapters): the record's fuser at finalStep, or none (step 0: the initial fuser)
    const fuser = rec.adapters.fuser ?? null;
    const step = rec.adapters.final.length || fuser ? rec.adapters.finalStep ?? rec.stepsDone : 0;
    const content = runBundleContent({
      config: rec.config, base, baseFiles, baseName: rec.baseName, adapters: final, initialAdapters: rec.adapters.initial, createdBy: 'page', ...(fuser ? { fuser } : {}),
      stepsDone: step, losses: rec.curves.loss.slice(0, step), evaluation: rec.evalRows ?? [], heldout: rec.curves.evals.filter((e) => e.step <= step),
      wallSeconds: rec.wallSeconds,
    });
    const files = writeRunBundle(content);
    const out = [...files].map(([name, bytes]) => ({ name, bytes }));
    return transfer(out, [...new Set(out.map((f) => f.bytes.buffer as ArrayBuffer))]);
  }

  // ---------------------------------------------------------------- compare

  async compare(req: CompareRequest, onProgress: (message: string, fraction: number) => void): Promise<ExperimentReport> {
    if (!this.opts.runExperiment) throw new Error('the experiment runner is not part of this build');
    if (!req.methods.length) throw new Error('choose at least one method to compare');
    if (!req.seeds.length) throw new Error('give at least one seed');
    this.claim('compare');
    try {
      this.checkConfig({ ...req.base, method: req.methods[0], seed: req.seeds[0] });
      const base = await this.loadBase(req.base.modelId);
      const gpu = await this.device();
      const report = (m: string, f: number) => void Promise.resolve(onProgress(m, f)).catch(() => undefined);
      return await this.opts.runExperiment(gpu, base, req, report);
    } catch (e) {
      if (e instanceof DeviceLostError) this.gpu = null;
      throw new Error(describeError(e));
    } finally {
      this.busy = null;
    }
  }
}
