// The model library: base models and LoRA adapters kept in IndexedDB (idb-keyval), each as the
// files it is exported as (Hugging Face checkpoint files; PEFT adapter files), plus one index that
// lists them with their name, size, date and the configuration they came from.
//
// Keys of the store:
//   library:index           { version: 1, models: ModelEntry[], adapters: AdapterEntry[] }
//   library:model:<id>      { files: Record<name, Uint8Array> }
//   library:adapter:<id>    { files: Record<name, Uint8Array> }
//   library:runs            { version: 1, runs: RunEntry[] }   (its own index: builds that know no runs never touch it)
//   library:run:<id>        { record: RunRecord }
//
// Crash safety: a save writes the record first and the index last, so an entry becomes visible only
// once its files are complete; a delete removes the entry from the index first and the record after.
// A record the index does not name is invisible (and reclaimed by the next save or delete of that id).
// Index updates go through idb-keyval's update(), one read-modify-write transaction, and through one
// queue per library, so two saves never lose each other's entries.
//
// A full quota (QuotaExceededError) is turned into StorageFullError, with nothing changed.
//
// An index this build cannot read (a newer version, a damaged value, entries that are not entries)
// is never treated as empty: reading it throws LibraryIndexError and nothing is written over it, so
// no earlier model or adapter is orphaned. rebuildIndex() makes a new index from the records that are
// there (each record keeps a copy of its entry; older records get one derived from their files),
// after keeping the old index value under library:index-backup:<time>.
// No DOM: runs in the worker (IndexedDB) and in Node tests (any KeyValueStore).
import { createStore, del as idbDel, get as idbGet, keys as idbKeys, set as idbSet, update as idbUpdate, type UseStore } from 'idb-keyval';
import type { AdapterEntry, ModelEntry, RunEntry, RunRecord } from './records';
import { chatTemplateOf, TOKENIZER_CONFIG_FILE } from '../tasks/chat-render';

/** The few operations the library needs from a key-value store (idb-keyval or an in-memory map). */
export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
  /** Read-modify-write of one key in one transaction. */
  update(key: string, fn: (old: unknown) => unknown): Promise<void>;
  /** Every key (only rebuildIndex needs it). */
  keys?(): Promise<string[]>;
}

export type LibraryKind = 'model' | 'adapter';
export type FileMap = Map<string, Uint8Array>;

interface LibraryIndex {
  version: 1;
  models: ModelEntry[];
  adapters: AdapterEntry[];
}

interface StoredRecord {
  files: Record<string, Uint8Array>;
  /** The entry as saved (so a lost index can be rebuilt with names and provenance); absent in older records. */
  entry?: ModelEntry | AdapterEntry;
}

const INDEX_KEY = 'library:index';
const RUNS_KEY = 'library:runs';
const RUNS_VERSION = 1;
const runKey = (id: string) => `library:run:${id}`;

interface RunsIndex {
  version: 1;
  runs: RunEntry[];
}

/** The runs index, checked like the library index: undefined is empty, anything unreadable throws. */
function readRunsIndex(v: unknown): RunsIndex {
  if (v === undefined) return { version: 1, runs: [] };
  if (!isObj(v)) throw new LibraryIndexError(`the runs index is ${v === null ? 'null' : typeof v}, not an index object`);
  if (typeof v.version === 'number' && v.version > RUNS_VERSION) {
    throw new LibraryIndexError(`the runs index was written by a newer version of the playground (version ${v.version}; this page reads version ${RUNS_VERSION})`);
  }
  if (v.version !== RUNS_VERSION || !Array.isArray(v.runs)) throw new LibraryIndexError('the runs index has no version 1 list of runs');
  v.runs.forEach((r, i) => {
    if (!isObj(r) || typeof r.id !== 'string' || typeof r.name !== 'string' || typeof r.createdAt !== 'number') {
      throw new LibraryIndexError(`run entry ${i + 1} of ${(v.runs as unknown[]).length} is not an entry`);
    }
  });
  return { version: 1, runs: v.runs as RunEntry[] };
}

/** The list line of a record. */
export function runEntryOf(r: RunRecord, size: number): RunEntry {
  const last = [...r.curves.evals].reverse().find((e) => e.accuracy !== null);
  const held = r.evalRows?.find((x) => x.split === 'heldout')?.accuracy ?? last?.accuracy ?? null;
  return {
    id: r.id, kind: r.kind, name: r.name, createdAt: r.createdAt, updatedAt: r.updatedAt, status: r.status,
    task: r.config.task, difficulty: r.config.difficulty, method: r.config.method, baseModelId: r.baseModelId, seed: r.config.seed,
    stepsDone: r.stepsDone, totalSteps: r.config.steps, heldoutAccuracy: held, size,
    continueStep: r.kind === 'run' && r.status !== 'running' && r.adapters.training && (r.adapters.final.length > 0 || !!r.adapters.fuser) && r.adapters.training.step < r.config.steps ? r.adapters.training.step : null,
    ...(r.compare ? { methods: r.compare.request.methods, seeds: r.compare.request.seeds } : {}),
    ...(r.notes ? { notes: r.notes } : {}),
    ...(r.tags?.length ? { tags: r.tags.slice() } : {}),
    ...(r.baseName ? { baseName: r.baseName } : {}),
  };
}

/** Bytes a value takes roughly (typed arrays by their length, the rest as JSON text). */
export function roughSize(v: unknown): number {
  let n = 0;
  const seen = new Set<unknown>();
  const walk = (x: unknown) => {
    if (x === null || typeof x !== 'object') {
      n += typeof x === 'string' ? x.length + 2 : 8;
      return;
    }
    if (seen.has(x)) return;
    seen.add(x);
    if (ArrayBuffer.isView(x)) {
      n += x.byteLength;
      return;
    }
    if (x instanceof Map) {
      for (const [k, val] of x) {
        walk(k);
        walk(val);
      }
      return;
    }
    for (const [k, val] of Object.entries(x)) {
      n += k.length + 3;
      walk(val);
    }
  };
  walk(v);
  return n;
}
const INDEX_VERSION = 1;
const recordKey = (kind: LibraryKind, id: string) => `library:${kind}:${id}`;

/** The browser's storage ran out of room; nothing was changed. */
export class StorageFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageFullError';
  }
}

/** A library operation named something that is not there, or could not be done. */
export class LibraryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibraryError';
  }
}

function isQuotaError(e: unknown): boolean {
  const err = e as { name?: string; message?: string } | null;
  return !!err && (err.name === 'QuotaExceededError' || /quota/i.test(err.message ?? ''));
}

/** The stored index cannot be read (newer build, damaged); nothing was written over it. rebuildIndex() recovers. */
export class LibraryIndexError extends Error {
  constructor(reason: string) {
    super(
      `The library index cannot be read: ${reason}. Nothing was changed and no model or adapter was deleted; ` +
        'rebuild the index from the stored records to use the library again (the old index is kept as a backup).',
    );
    this.name = 'LibraryIndexError';
  }
}

function emptyIndex(): LibraryIndex {
  return { version: 1, models: [], adapters: [] };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why `e` is not a stored entry of `kind` (null when it is). */
function entryProblem(e: unknown, kind: LibraryKind): string | null {
  if (!isObj(e)) return `is ${e === null ? 'null' : Array.isArray(e) ? 'a list' : typeof e}, not an entry`;
  if (typeof e.id !== 'string' || !e.id) return 'has no id';
  if (typeof e.name !== 'string') return 'has no name';
  if (typeof e.size !== 'number' || typeof e.createdAt !== 'number') return 'has no size or date';
  if (!isObj(e.config)) return 'has no configuration';
  if (kind === 'adapter' && typeof e.baseModelId !== 'string') return 'names no base model';
  return null;
}

/** The index, checked; undefined (nothing saved yet) is the empty index, anything else unreadable throws. */
function readIndex(v: unknown): LibraryIndex {
  if (v === undefined) return emptyIndex();
  if (!isObj(v)) throw new LibraryIndexError(`it is ${v === null ? 'null' : typeof v}, not an index object`);
  if (typeof v.version === 'number' && v.version > INDEX_VERSION) {
    throw new LibraryIndexError(`it was written by a newer version of the playground (index version ${v.version}; this page reads version ${INDEX_VERSION})`);
  }
  if (v.version !== INDEX_VERSION) throw new LibraryIndexError(`its version is ${JSON.stringify(v.version)}, not ${INDEX_VERSION}`);
  for (const [field, kind] of [['models', 'model'], ['adapters', 'adapter']] as const) {
    const list = v[field];
    if (!Array.isArray(list)) throw new LibraryIndexError(`its ${field} field is not a list`);
    for (let i = 0; i < list.length; i++) {
      const why = entryProblem(list[i], kind);
      if (why) throw new LibraryIndexError(`${kind} entry ${i + 1} of ${list.length} ${why}`);
    }
  }
  return { version: 1, models: v.models as ModelEntry[], adapters: v.adapters as AdapterEntry[] };
}

/** The time in a newId (`prefix:<base36 ms>-<rand>`), or 0. */
function idTime(id: string): number {
  const m = /:([0-9a-z]+)-[0-9a-f]+$/.exec(id);
  const t = m ? parseInt(m[1], 36) : NaN;
  return Number.isFinite(t) && t > 0 && t < 8.64e15 ? t : 0;
}

function jsonFile(files: Record<string, Uint8Array>, name: string): Record<string, unknown> | undefined {
  const b = files[name];
  if (!(b instanceof Uint8Array)) return undefined;
  try {
    const v = JSON.parse(new TextDecoder().decode(b)) as unknown;
    return isObj(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** An entry for a record whose entry is lost: the one it carries, else one made from its files. */
function entryFromRecord(kind: LibraryKind, id: string, rec: StoredRecord): ModelEntry | AdapterEntry {
  const size = Object.values(rec.files).reduce((n, b) => n + (b instanceof Uint8Array ? b.byteLength : 0), 0);
  if (rec.entry && !entryProblem(rec.entry, kind) && rec.entry.id === id) return { ...rec.entry, size };
  const createdAt = idTime(id);
  if (kind === 'model') {
    const builtin = id.startsWith('builtin:');
    const provenance = jsonFile(rec.files, 'training_args.json');
    return {
      id, size, createdAt, builtin,
      name: builtin ? `${id.slice('builtin:'.length)} (shipped)` : `recovered model ${id}`,
      config: jsonFile(rec.files, 'config.json') ?? {},
      ...(provenance ? { provenance } : {}),
    } satisfies ModelEntry;
  }
  const config = jsonFile(rec.files, 'adapter_config.json') ?? {};
  return {
    id, size, createdAt,
    name: `recovered adapter ${id}`,
    baseModelId: typeof config.base_model_name_or_path === 'string' ? config.base_model_name_or_path : '',
    agent: 'unknown',
    runConfig: null,
    config,
  } satisfies AdapterEntry;
}

/** Whether a model's files hold a tokenizer_config.json with a chat template (the page offers the chat rendering then). */
export function hasChatTemplateFile(files: ReadonlyMap<string, Uint8Array>): boolean {
  const bytes = files.get(TOKENIZER_CONFIG_FILE);
  if (!bytes) return false;
  try {
    return chatTemplateOf(JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>) !== null;
  } catch {
    return false; // an unreadable config: the run itself reports it when the model loads
  }
}

export function filesSize(files: ReadonlyMap<string, Uint8Array>): number {
  let n = 0;
  for (const b of files.values()) n += b.byteLength;
  return n;
}

/** A fresh id: time-ordered and unique enough for one browser profile. */
export function newId(prefix: string): string {
  const rand =
    typeof crypto !== 'undefined' && 'randomUUID' in crypto
      ? crypto.randomUUID().slice(0, 8)
      : Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0');
  return `${prefix}:${Date.now().toString(36)}-${rand}`;
}

/** idb-keyval on the playground's own database (separate from the environment panel's probe). */
export function idbStore(dbName = 'latent-playground', storeName = 'library'): KeyValueStore {
  const store: UseStore = createStore(dbName, storeName);
  return {
    get: (k) => idbGet(k, store),
    set: (k, v) => idbSet(k, v, store),
    del: (k) => idbDel(k, store),
    update: (k, fn) => idbUpdate(k, fn, store),
    keys: async () => (await idbKeys(store)).map(String),
  };
}

/** An in-memory store with the same contract (tests, or a browser without IndexedDB). */
export function memoryStore(): KeyValueStore {
  const m = new Map<string, unknown>();
  return {
    get: async (k) => m.get(k),
    set: async (k, v) => void m.set(k, v),
    del: async (k) => void m.delete(k),
    update: async (k, fn) => void m.set(k, fn(m.get(k))),
    keys: async () => [...m.keys()],
  };
}

export interface StorageEstimate {
  usage: number | null;
  quota: number | null;
}

export class Library {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly kv: KeyValueStore,
    private readonly estimate: () => Promise<StorageEstimate> = browserEstimate,
  ) {}

  /** Runs `fn` after every earlier mutation of this library (a simple mutex). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async index(): Promise<LibraryIndex> {
    return readIndex(await this.kv.get(INDEX_KEY));
  }

  async listModels(): Promise<ModelEntry[]> {
    return (await this.index()).models.slice().sort((a, b) => Number(b.builtin) - Number(a.builtin) || b.createdAt - a.createdAt);
  }

  async listAdapters(): Promise<AdapterEntry[]> {
    return (await this.index()).adapters.slice().sort((a, b) => b.createdAt - a.createdAt);
  }

  async model(id: string): Promise<ModelEntry> {
    const e = (await this.index()).models.find((m) => m.id === id);
    if (!e) throw new LibraryError(`there is no base model with id ${JSON.stringify(id)} in the library`);
    return e;
  }

  async adapter(id: string): Promise<AdapterEntry> {
    const e = (await this.index()).adapters.find((m) => m.id === id);
    if (!e) throw new LibraryError(`there is no adapter with id ${JSON.stringify(id)} in the library`);
    return e;
  }

  async hasModel(id: string): Promise<boolean> {
    return (await this.index()).models.some((m) => m.id === id);
  }

  /** The stored files of a listed entry. */
  async files(kind: LibraryKind, id: string): Promise<FileMap> {
    const idx = await this.index();
    const listed = kind === 'model' ? idx.models.some((m) => m.id === id) : idx.adapters.some((a) => a.id === id);
    if (!listed) throw new LibraryError(`there is no ${kind === 'model' ? 'base model' : 'adapter'} with id ${JSON.stringify(id)} in the library`);
    const rec = (await this.kv.get(recordKey(kind, id))) as StoredRecord | undefined;
    if (!rec || typeof rec.files !== 'object') {
      throw new LibraryError(`the files of ${kind} ${JSON.stringify(id)} are missing from browser storage (was site data cleared?)`);
    }
    return new Map(Object.entries(rec.files));
  }

  /** Stores a base model: its files first, then its index entry. Refused up front if the index cannot be read. */
  saveModel(entry: ModelEntry, files: FileMap): Promise<ModelEntry> {
    return this.serial(async () => {
      const idx = await this.index();
      const { chatTemplate: _, ...rest } = entry;
      const e: ModelEntry = { ...rest, size: filesSize(files), ...(hasChatTemplateFile(files) ? { chatTemplate: true as const } : {}) };
      // a failed save removes only records it created, never the files of an entry already listed
      const fresh = idx.models.some((m) => m.id === e.id) ? [] : [recordKey('model', e.id)];
      await this.writeRecords([[recordKey('model', e.id), files, e]], e.name, e.size, fresh);
      await this.writeIndex((idx) => ({ ...idx, models: [...idx.models.filter((m) => m.id !== e.id), e] }), fresh, e.name);
      return e;
    });
  }

  /** Stores several adapters (one run's): every record first, then one index update listing them all. */
  saveAdapters(items: { entry: AdapterEntry; files: FileMap }[]): Promise<AdapterEntry[]> {
    return this.serial(async () => {
      const idx = await this.index();
      const entries = items.map((it) => ({ ...it.entry, size: filesSize(it.files) }));
      const keys = entries.map((e) => recordKey('adapter', e.id));
      const fresh = keys.filter((_, i) => !idx.adapters.some((a) => a.id === entries[i].id));
      const total = entries.reduce((s, e) => s + e.size, 0);
      const what = entries.length === 1 ? entries[0].name : `${entries.length} adapters`;
      await this.writeRecords(items.map((it, i) => [keys[i], it.files, entries[i]]), what, total, fresh);
      const ids = new Set(entries.map((e) => e.id));
      await this.writeIndex((idx) => ({ ...idx, adapters: [...idx.adapters.filter((a) => !ids.has(a.id)), ...entries] }), fresh, what);
      return entries;
    });
  }

  /**
   * Makes a new index from the records in the store (for an index that cannot be read): each record's
   * own copy of its entry, or one made from its files (config.json, adapter_config.json). The old
   * index value is kept under library:index-backup:<time>. Returns what it listed and what it skipped.
   */
  rebuildIndex(): Promise<{ models: number; adapters: number; skipped: string[]; backup: string | null }> {
    return this.serial(async () => {
      if (!this.kv.keys) throw new LibraryError('this storage cannot list its records, so the index cannot be rebuilt');
      const idx = emptyIndex();
      const skipped: string[] = [];
      for (const key of (await this.kv.keys()).sort()) {
        const m = /^library:(model|adapter):(.+)$/.exec(key);
        if (!m) continue;
        const [, kind, id] = m as unknown as [string, LibraryKind, string];
        const rec = (await this.kv.get(key)) as StoredRecord | undefined;
        if (!isObj(rec) || !isObj(rec.files)) {
          skipped.push(`${key} (no files)`);
          continue;
        }
        const e = entryFromRecord(kind, id, rec);
        if (kind === 'model') idx.models.push(e as ModelEntry);
        else idx.adapters.push(e as AdapterEntry);
      }
      const old = await this.kv.get(INDEX_KEY);
      let backup: string | null = null;
      if (old !== undefined) {
        backup = `library:index-backup:${Date.now()}`;
        await this.kv.set(backup, old).catch(async (e) => {
          throw await this.explain(e, 'a backup of the old index', 0);
        });
      }
      await this.kv.set(INDEX_KEY, idx).catch(async (e) => {
        throw await this.explain(e, 'the rebuilt index', 0);
      });
      // the runs index too, when it cannot be read (a readable one is left as it is)
      const oldRuns = await this.kv.get(RUNS_KEY);
      let runsReadable = true;
      try {
        readRunsIndex(oldRuns);
      } catch {
        runsReadable = false;
      }
      if (!runsReadable) {
        const runs: RunEntry[] = [];
        for (const key of (await this.kv.keys()).sort()) {
          const m = /^library:run:(.+)$/.exec(key);
          if (!m) continue;
          const rec = (await this.kv.get(key)) as { record?: RunRecord } | undefined;
          if (!isObj(rec) || !isObj(rec.record) || rec.record.id !== m[1]) {
            skipped.push(`${key} (no record)`);
            continue;
          }
          runs.push(runEntryOf(rec.record, roughSize(rec.record)));
        }
        await this.kv.set(`library:runs-backup:${Date.now()}`, oldRuns).catch(() => undefined);
        await this.kv.set(RUNS_KEY, { version: 1, runs }).catch(async (e) => {
          throw await this.explain(e, 'the rebuilt runs index', 0);
        });
      }
      return { models: idx.models.length, adapters: idx.adapters.length, skipped, backup };
    });
  }

  rename(kind: LibraryKind, id: string, name: string): Promise<void> {
    const clean = name.trim();
    if (!clean) return Promise.reject(new LibraryError('a name cannot be empty'));
    if (clean.length > 120) return Promise.reject(new LibraryError(`a name is at most 120 characters, got ${clean.length}`));
    return this.serial(async () => {
      let found = false;
      await this.writeIndex((idx) => {
        if (kind === 'model') {
          return { ...idx, models: idx.models.map((m) => (m.id === id ? ((found = true), { ...m, name: clean }) : m)) };
        }
        return { ...idx, adapters: idx.adapters.map((a) => (a.id === id ? ((found = true), { ...a, name: clean }) : a)) };
      }, [], clean);
      if (!found) throw new LibraryError(`there is no ${kind === 'model' ? 'base model' : 'adapter'} with id ${JSON.stringify(id)} to rename`);
      // the record's copy of its entry follows (best effort: the index is what lists it)
      await this.kv
        .update(recordKey(kind, id), (rec) => (isObj(rec) && isObj(rec.entry) ? { ...rec, entry: { ...rec.entry, name: clean } } : rec))
        .catch(() => undefined);
    });
  }

  // ---------------------------------------------------------------- runs

  async listRuns(): Promise<RunEntry[]> {
    return readRunsIndex(await this.kv.get(RUNS_KEY)).runs.slice().sort((a, b) => b.createdAt - a.createdAt);
  }

  async runRecord(id: string): Promise<RunRecord> {
    const idx = readRunsIndex(await this.kv.get(RUNS_KEY));
    if (!idx.runs.some((r) => r.id === id)) throw new LibraryError(`there is no run with id ${JSON.stringify(id)} in the library`);
    const rec = (await this.kv.get(runKey(id))) as { record?: RunRecord } | undefined;
    if (!rec || !isObj(rec.record)) throw new LibraryError(`the record of run ${JSON.stringify(id)} is missing from browser storage (was site data cleared?)`);
    return rec.record;
  }

  /** Stores a run's record (new, or a newer state of the same run): the record first, then its index entry. */
  saveRun(record: RunRecord): Promise<RunEntry> {
    return this.serial(async () => {
      const idx = readRunsIndex(await this.kv.get(RUNS_KEY));
      // a record saved without notes and tags (a live run's autosave, a continued run) keeps those stored;
      // the Runs table's editor always writes both, so clearing them is `notes: ''` and `tags: []`
      const prior = idx.runs.find((r) => r.id === record.id);
      if (prior && record.notes === undefined && record.tags === undefined && (prior.notes || prior.tags?.length)) {
        record = { ...record, ...(prior.notes ? { notes: prior.notes } : {}), ...(prior.tags?.length ? { tags: prior.tags.slice() } : {}) };
      }
      const size = roughSize(record);
      const entry = runEntryOf(record, size);
      const fresh = idx.runs.some((r) => r.id === record.id) ? [] : [runKey(record.id)];
      try {
        await this.kv.set(runKey(record.id), { record });
      } catch (e) {
        throw await this.explain(e, `the record of run '${record.name}'`, size);
      }
      try {
        await this.kv.update(RUNS_KEY, (old) => {
          const cur = readRunsIndex(old);
          return { version: 1, runs: [...cur.runs.filter((r) => r.id !== entry.id), entry] };
        });
      } catch (e) {
        await Promise.all(fresh.map((k) => this.kv.del(k).catch(() => undefined)));
        throw await this.explain(e, `the record of run '${record.name}'`, 0);
      }
      return entry;
    });
  }

  /** Removes a run: its index entry first, then its record. */
  removeRun(id: string): Promise<void> {
    return this.serial(async () => {
      let found = false;
      await this.kv.update(RUNS_KEY, (old) => {
        const cur = readRunsIndex(old);
        found = cur.runs.some((r) => r.id === id);
        return { version: 1, runs: cur.runs.filter((r) => r.id !== id) };
      }).catch(async (e) => {
        throw await this.explain(e, `run ${id}`, 0);
      });
      if (!found) throw new LibraryError(`there is no run with id ${JSON.stringify(id)} to delete`);
      await this.kv.del(runKey(id));
    });
  }

  /** Removes the entry from the index, then its files. */
  remove(kind: LibraryKind, id: string): Promise<void> {
    return this.serial(async () => {
      await this.writeIndex(
        (idx) =>
          kind === 'model'
            ? { ...idx, models: idx.models.filter((m) => m.id !== id) }
            : { ...idx, adapters: idx.adapters.filter((a) => a.id !== id) },
        [],
        id,
      );
      await this.kv.del(recordKey(kind, id));
    });
  }

  /** Writes records; on failure removes those of `fresh` (keys no listed entry owns) it wrote. */
  private async writeRecords(records: [string, FileMap, ModelEntry | AdapterEntry][], what: string, bytes: number, fresh: string[]): Promise<void> {
    const written: string[] = [];
    try {
      for (const [key, files, entry] of records) {
        const rec: StoredRecord = { files: Object.fromEntries(files), entry };
        await this.kv.set(key, rec);
        written.push(key);
      }
    } catch (e) {
      await Promise.all(written.filter((k) => fresh.includes(k)).map((k) => this.kv.del(k).catch(() => undefined)));
      throw await this.explain(e, what, bytes);
    }
  }

  private async writeIndex(fn: (idx: LibraryIndex) => LibraryIndex, rollback: string[], what: string): Promise<void> {
    try {
      await this.kv.update(INDEX_KEY, (old) => fn(readIndex(old)));
    } catch (e) {
      await Promise.all(rollback.map((k) => this.kv.del(k).catch(() => undefined)));
      throw await this.explain(e, what, 0);
    }
  }

  private async explain(e: unknown, what: string, bytes: number): Promise<Error> {
    if (!isQuotaError(e)) return e instanceof Error ? e : new Error(String(e));
    let room = '';
    try {
      const est = await this.estimate();
      if (est.usage !== null && est.quota !== null) room = ` (this site uses ${mb(est.usage)} of the ${mb(est.quota)} the browser allows)`;
    } catch {
      /* the estimate is only a hint */
    }
    const size = bytes > 0 ? ` (${mb(bytes)})` : '';
    return new StorageFullError(
      `Browser storage is full: saving ${what}${size} did not fit${room}. Nothing was changed. ` +
        'Delete models or adapters you no longer need, export them first if you want to keep them, or allow persistent storage.',
    );
  }
}

function mb(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GB` : `${(n / (1 << 20)).toFixed(1)} MB`;
}

async function browserEstimate(): Promise<StorageEstimate> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (!storage?.estimate) return { usage: null, quota: null };
  const e = await storage.estimate();
  return { usage: e.usage ?? null, quota: e.quota ?? null };
}
