// The model library: base models and LoRA adapters kept in IndexedDB (idb-keyval), each as the
// files it is exported as (Hugging Face checkpoint files; PEFT adapter files), plus one index that
// lists them with their name, size, date and the configuration they came from.
//
// Keys of the store:
//   library:index           { version: 1, models: ModelEntry[], adapters: AdapterEntry[] }
//   library:model:<id>      { files: Record<name, Uint8Array> }
//   library:adapter:<id>    { files: Record<name, Uint8Array> }
//
// Crash safety: a save writes the record first and the index last, so an entry becomes visible only
// once its files are complete; a delete removes the entry from the index first and the record after.
// A record the index does not name is invisible (and reclaimed by the next save or delete of that id).
// Index updates go through idb-keyval's update(), one read-modify-write transaction, and through one
// queue per library, so two saves never lose each other's entries.
//
// A full quota (QuotaExceededError) is turned into StorageFullError, with nothing changed.
// No DOM: runs in the worker (IndexedDB) and in Node tests (any KeyValueStore).
import { createStore, del as idbDel, get as idbGet, set as idbSet, update as idbUpdate, type UseStore } from 'idb-keyval';
import type { AdapterEntry, ModelEntry } from '../worker/api';

/** The few operations the library needs from a key-value store (idb-keyval or an in-memory map). */
export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
  /** Read-modify-write of one key in one transaction. */
  update(key: string, fn: (old: unknown) => unknown): Promise<void>;
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
}

const INDEX_KEY = 'library:index';
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

function emptyIndex(): LibraryIndex {
  return { version: 1, models: [], adapters: [] };
}

function readIndex(v: unknown): LibraryIndex {
  const o = v as Partial<LibraryIndex> | undefined;
  if (!o || o.version !== 1 || !Array.isArray(o.models) || !Array.isArray(o.adapters)) return emptyIndex();
  return { version: 1, models: o.models, adapters: o.adapters };
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

  /** Stores a base model: its files first, then its index entry. */
  saveModel(entry: ModelEntry, files: FileMap): Promise<ModelEntry> {
    return this.serial(async () => {
      const e = { ...entry, size: filesSize(files) };
      await this.writeRecords([[recordKey('model', e.id), files]], e.name, e.size);
      await this.writeIndex((idx) => ({ ...idx, models: [...idx.models.filter((m) => m.id !== e.id), e] }), [recordKey('model', e.id)], e.name);
      return e;
    });
  }

  /** Stores several adapters (one run's): every record first, then one index update listing them all. */
  saveAdapters(items: { entry: AdapterEntry; files: FileMap }[]): Promise<AdapterEntry[]> {
    return this.serial(async () => {
      const entries = items.map((it) => ({ ...it.entry, size: filesSize(it.files) }));
      const keys = entries.map((e) => recordKey('adapter', e.id));
      const total = entries.reduce((s, e) => s + e.size, 0);
      const what = entries.length === 1 ? entries[0].name : `${entries.length} adapters`;
      await this.writeRecords(items.map((it, i) => [keys[i], it.files]), what, total);
      const ids = new Set(entries.map((e) => e.id));
      await this.writeIndex((idx) => ({ ...idx, adapters: [...idx.adapters.filter((a) => !ids.has(a.id)), ...entries] }), keys, what);
      return entries;
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

  private async writeRecords(records: [string, FileMap][], what: string, bytes: number): Promise<void> {
    const written: string[] = [];
    try {
      for (const [key, files] of records) {
        const rec: StoredRecord = { files: Object.fromEntries(files) };
        await this.kv.set(key, rec);
        written.push(key);
      }
    } catch (e) {
      await Promise.all(written.map((k) => this.kv.del(k).catch(() => undefined)));
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
