// Fetches a model from the Hugging Face Hub (or any server laid out as it is): the revision's file
// list from the API, then config.json (checked by the engine's own rules before any weight is
// fetched), the shard index, the tokenizer files and the safetensors, each from its resolve URL.
// - A dropped connection is resumed with an HTTP Range request from the bytes already kept; a server
//   that ignores the range is read again from the start.
// - Each file is checked against the Hub's size and sha256 (git blob id for small files) before it
//   is kept; a mismatch discards it and stops the download, so nothing unchecked is ever stored.
// - The room the files need is checked (ensureSpace) before the first byte of the weights.
// Where the bytes go is the caller's (HubStore: the page keeps them in memory, the CLI in .part
// files). No DOM, no Node APIs: fetch and Web Crypto only.
import { engineConfigProblem, validateConfig, type LlamaConfig } from './checkpoint';
import { bytesHasher, checkFile, parseHubInfo, planFiles, shardsOf, type FileHasher, type HubFile, type HubInfo } from './hub-files';
import { HubError, hubFileUrl, hubInfoUrl, type HubRef } from './hub-host';

export { HubError } from './hub-host';

/** Where fetched bytes are kept while and after they arrive. */
export interface HubStore {
  /** Whether `name` is already complete and checked (a cache from an earlier run). */
  done(name: string): Promise<boolean>;
  /** How many bytes of `name` an earlier, unfinished try kept (0: none). */
  partial(name: string): Promise<number>;
  append(name: string, chunk: Uint8Array): Promise<void>;
  /** The kept bytes of `name` (complete or done). */
  read(name: string): Promise<Uint8Array>;
  /** Forgets the kept bytes of `name` (a wrong checksum, a server that restarted the file). */
  discard(name: string): Promise<void>;
  /** `name` is complete and checked. */
  commit(name: string): Promise<void>;
  /**
   * The hash of the kept bytes of `name` (optional: a store whose files may not fit in memory streams
   * them; without it the bytes are read and hashed with Web Crypto).
   */
  hash?(name: string, algo: 'sha256' | 'git-blob'): Promise<string>;
}

/** How far a download is. */
export interface HubProgress {
  file: string;
  /** bytes of all files kept so far (including those kept by an earlier run) */
  bytes: number;
  total: number;
  /** bytes per second over this run's transfers (null until some arrived) */
  rate: number | null;
  /** seconds left at that rate (null while unknown) */
  secondsLeft: number | null;
  /** a dropped connection being resumed, in words (null otherwise) */
  note: string | null;
}

export interface HubDownloadOptions {
  host: string;
  ref: HubRef;
  store: HubStore;
  fetch?: typeof fetch;
  onProgress?: (p: HubProgress) => void;
  /** Throws (in words) when `bytes` more cannot be stored; called before the first weight byte. */
  ensureSpace?: (bytes: number) => Promise<void>;
  /** Consecutive failed tries of one file, without a byte gained, before giving up (default 4). */
  retries?: number;
  /** Waits before a retry (default: 0.5 s times the try). */
  sleep?: (ms: number) => Promise<void>;
  /** Seconds since some origin (default performance.now() / 1000); for the rate only. */
  now?: () => number;
  signal?: AbortSignal;
  /** The revision's file list when the caller already read it (fetchHubInfo). */
  info?: HubInfo;
}

export interface HubDownload {
  info: HubInfo;
  config: LlamaConfig;
  /** the files fetched, in the order they were (config.json first) */
  files: string[];
  /** bytes transferred by this run (0 when all were kept) */
  transferred: number;
}

/** A store in memory (the page, tests): partial bytes stay for the retries of this run. */
export function memoryHubStore(): HubStore & { files: Map<string, Uint8Array> } {
  const parts = new Map<string, Uint8Array[]>();
  const files = new Map<string, Uint8Array>();
  const join = (chunks: Uint8Array[]) => {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  };
  return {
    files,
    async done(name) {
      return files.has(name);
    },
    async partial(name) {
      return (parts.get(name) ?? []).reduce((n, c) => n + c.length, 0);
    },
    async append(name, chunk) {
      const list = parts.get(name) ?? [];
      list.push(chunk.slice());
      parts.set(name, list);
    },
    async read(name) {
      return files.get(name) ?? join(parts.get(name) ?? []);
    },
    async discard(name) {
      parts.delete(name);
      files.delete(name);
    },
    async commit(name) {
      files.set(name, join(parts.get(name) ?? []));
      parts.delete(name);
    },
  };
}

const fmtStatus = (r: Response) => `${r.status}${r.statusText ? ` ${r.statusText}` : ''}`;

/** Reads a revision's file list from the Hub's API. */
export async function fetchHubInfo(host: string, ref: HubRef, fetchImpl: typeof fetch = fetch, signal?: AbortSignal): Promise<HubInfo> {
  const url = hubInfoUrl(host, ref);
  let res: Response;
  try {
    res = await fetchImpl(url, { signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new HubError(`cannot reach the Hub at ${host} (${(e as Error).message}); check the address and the connection`);
  }
  if (res.status === 401 || res.status === 403) {
    throw new HubError(`${ref.repo} is private or gated on ${host} (${fmtStatus(res)}): only public models can be fetched here`);
  }
  if (res.status === 404) throw new HubError(`${host} has no model ${ref.repo} at revision ${ref.revision} (404)`);
  if (!res.ok) throw new HubError(`the Hub at ${host} answered ${fmtStatus(res)} for ${ref.repo}@${ref.revision}`);
  let json: unknown;
  try {
    json = await res.json();
  } catch (e) {
    throw new HubError(`the Hub at ${host} sent no JSON for ${ref.repo}@${ref.revision}: ${(e as Error).message}`);
  }
  return parseHubInfo(ref.repo, json);
}

/**
 * Fetches a model into `store`: config.json first (an architecture or setting the engine cannot run
 * is refused before any weight is fetched), then the shard index, the tokenizer files and the
 * weights. Throws HubError in words; what is committed to the store was checked.
 */
export async function downloadFromHub(o: HubDownloadOptions): Promise<HubDownload> {
  const fetchImpl = o.fetch ?? fetch;
  const now = o.now ?? (() => performance.now() / 1000);
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const retries = o.retries ?? 4;
  const info = o.info ?? (await fetchHubInfo(o.host, o.ref, fetchImpl, o.signal));
  const plan = planFiles(info);
  const started = now();
  let transferred = 0;
  let kept = 0;
  let total = 0;
  const fetched: string[] = [];
  const report = (file: string, note: string | null = null) => {
    const elapsed = now() - started;
    const rate = transferred > 0 && elapsed > 0 ? transferred / elapsed : null;
    o.onProgress?.({ file, bytes: kept, total, rate, secondsLeft: rate ? Math.max(0, total - kept) / rate : null, note });
  };

  const getFile = async (f: HubFile): Promise<void> => {
    fetched.push(f.name);
    if (await o.store.done(f.name)) {
      kept += f.size;
      report(f.name);
      return;
    }
    let have = await o.store.partial(f.name);
    if (have > f.size) {
      await o.store.discard(f.name);
      have = 0;
    }
    kept += have;
    const url = hubFileUrl(o.host, info.repo, info.commit, f.name);
    let failures = 0;
    while (have < f.size) {
      const before = have;
      let dropped: string;
      try {
        const res = await fetchImpl(url, { signal: o.signal, headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
        if (have > 0 && res.status === 200) {
          // the server sends the whole file again: start it over
          await o.store.discard(f.name);
          kept -= have;
          have = 0;
        } else if (res.status !== (have > 0 ? 206 : 200)) {
          throw new HubError(`${url} answered ${fmtStatus(res)}`);
        } else if (have > 0) {
          const from = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
          if (!from || Number(from[1]) !== have) throw new HubError(`${url} answered the range from byte ${have} with ${res.headers.get('content-range') ?? 'no Content-Range'}`);
        }
        if (!res.body) throw new HubError(`${url} sent no body`);
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (have + value.length > f.size) throw new HubError(`${f.name} from ${url} is longer than the ${f.size} bytes the Hub lists`);
          await o.store.append(f.name, value);
          have += value.length;
          kept += value.length;
          transferred += value.length;
          report(f.name);
        }
        if (have === f.size) break;
        dropped = `the connection ended at byte ${have} of ${f.size}`;
      } catch (e) {
        if (e instanceof HubError || o.signal?.aborted) throw e;
        dropped = `the connection dropped at byte ${have} of ${f.size} (${(e as Error).message})`;
      }
      failures = have > before ? 0 : failures + 1;
      if (failures > retries) {
        throw new HubError(`${f.name}: ${dropped}, ${failures} tries in a row without progress; the ${have} bytes fetched are kept, so fetching again resumes there`);
      }
      report(f.name, `${f.name}: ${dropped}; resuming`);
      await sleep(500 * failures);
    }
    const hasher: FileHasher = o.store.hash ? (algo) => o.store.hash!(f.name, algo) : bytesHasher(await o.store.read(f.name));
    // the size as stored, not as counted on the way
    const wrong = await checkFile(f, await o.store.partial(f.name), hasher);
    if (wrong) {
      await o.store.discard(f.name);
      throw new HubError(`${wrong}: the file is corrupt or changed on the way; it was discarded and nothing of ${info.repo} was stored`);
    }
    await o.store.commit(f.name);
  };

  // config.json alone first: the architecture is checked before the weights are even listed
  total = plan.config.size;
  let config: LlamaConfig;
  await getFile(plan.config);
  try {
    config = validateConfig(JSON.parse(new TextDecoder().decode(await o.store.read(plan.config.name))));
    const problem = engineConfigProblem(config);
    if (problem) throw new Error(problem);
  } catch (e) {
    throw new HubError(`${info.repo} cannot be used here, so its weights were not fetched: ${(e as Error).message}`);
  }
  if (plan.index) {
    total += plan.index.size;
    await getFile(plan.index);
    plan.weights = shardsOf(info, await o.store.read(plan.index.name));
  }
  const rest = [...plan.tokenizer, ...plan.weights];
  total += rest.reduce((n, f) => n + f.size, 0);
  if (o.ensureSpace) {
    let needed = 0;
    for (const f of rest) if (!(await o.store.done(f.name))) needed += f.size - (await o.store.partial(f.name));
    await o.ensureSpace(needed);
  }
  for (const f of rest) await getFile(f);
  report(fetched[fetched.length - 1]);
  return { info, config, files: fetched, transferred };
}

/** "12.3 MB of 540.0 MB, 4.1 MB/s, 2 min left" */
export function formatHubProgress(p: HubProgress): string {
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  const left = p.secondsLeft === null ? '' : p.secondsLeft < 90 ? `, ${Math.ceil(p.secondsLeft)} s left` : `, ${Math.ceil(p.secondsLeft / 60)} min left`;
  return `${mb(p.bytes)} of ${mb(p.total)}${p.rate === null ? '' : `, ${mb(p.rate)}/s`}${p.bytes < p.total ? left : ''}`;
}
