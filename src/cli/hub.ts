// `--model hf:ORG/NAME[@REV]` of every command, and `npm run cli -- hub hf:ORG/NAME[@REV]`: a model
// fetched from the Hugging Face Hub (src/storage/hub.ts) into a cache folder, whose path the command
// then reads as it reads any model folder.
// - The Hub's host: HF_ENDPOINT (as huggingface_hub reads it), else src/storage/hub-host.ts's default.
// - The cache: LATENT_PLAYGROUND_HUB_CACHE, else $XDG_CACHE_HOME/latent-playground/hub, else
//   ~/.cache/latent-playground/hub. A revision is kept as ORG--NAME/<commit>/ (config.json,
//   tokenizer files, safetensors), and ORG--NAME/refs/<revision> holds the commit it last named.
// - A download goes into ORG--NAME/.<commit>.download/: each file as NAME.part until it is complete
//   and checked (size, sha256 / git blob id), then renamed to NAME; the folder is renamed to
//   <commit>/ once every file is in, so a cached revision is always whole. A stopped or dropped
//   download resumes from the .part bytes next time; a wrong checksum discards that file's bytes.
// - One download per revision at a time: the lock of lock.ts on <commit>.
// - Without the Hub (no network), a revision already cached under refs/ is used, with a note.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { downloadFromHub, fetchHubInfo, formatHubProgress, HubError, type HubProgress, type HubStore } from '../storage/hub';
import { hubHost, parseHubRef, type HubRef } from '../storage/hub-host';
import { Args, UsageError } from './args';
import { syncFolder } from './files';
import { makeFolders, statOrNull } from './fs-basics';
import { acquireLock } from './lock';

/** The cache folder (see the head of this file). */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LATENT_PLAYGROUND_HUB_CACHE) return path.resolve(env.LATENT_PLAYGROUND_HUB_CACHE);
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'latent-playground', 'hub');
}

/** A store of .part files in `dir`: a file is renamed to its name once complete and checked. */
export function folderHubStore(dir: string): HubStore {
  const open = new Map<string, WriteStream>();
  const part = (n: string) => path.join(dir, `${n}.part`);
  const close = async (n: string) => {
    const s = open.get(n);
    if (!s) return;
    open.delete(n);
    await new Promise<void>((resolve, reject) => s.end((e?: Error | null) => (e ? reject(e) : resolve())));
  };
  return {
    async done(n) {
      return !!(await statOrNull(path.join(dir, n)))?.isFile();
    },
    async partial(n) {
      await close(n);
      return (await statOrNull(part(n)))?.size ?? 0;
    },
    async append(n, chunk) {
      let s = open.get(n);
      if (!s) {
        s = createWriteStream(part(n), { flags: 'a' });
        open.set(n, s);
      }
      const w = s;
      await new Promise<void>((resolve, reject) => w.write(chunk, (e) => (e ? reject(e) : resolve())));
    },
    async read(n) {
      await close(n);
      const done = path.join(dir, n);
      return new Uint8Array(await fsp.readFile((await statOrNull(done)) ? done : part(n)));
    },
    async discard(n) {
      await close(n);
      await fsp.rm(part(n), { force: true });
      await fsp.rm(path.join(dir, n), { force: true });
    },
    // streamed, so a shard of several GB is checked without holding it in memory
    async hash(n, algo) {
      await close(n);
      const done = path.join(dir, n);
      const file = (await statOrNull(done)) ? done : part(n);
      const h = createHash(algo === 'sha256' ? 'sha256' : 'sha1');
      if (algo === 'git-blob') h.update(`blob ${(await fsp.stat(file)).size}\0`);
      for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
      return h.digest('hex');
    },
    async commit(n) {
      await close(n);
      const fh = await fsp.open(part(n), 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(part(n), path.join(dir, n));
    },
  };
}

const repoFolder = (cache: string, ref: HubRef) => path.join(cache, ref.repo.replace('/', '--'));
const refFile = (cache: string, ref: HubRef) => path.join(repoFolder(cache, ref), 'refs', encodeURIComponent(ref.revision));

/**
 * The cached folder of `ORG/NAME[@REV]` (REV a branch or tag through refs/, or a commit), or null
 * when it is not in the cache; nothing is fetched.
 */
export async function cachedHubFolder(spec: string, cache = hubCacheDir()): Promise<string | null> {
  const ref = parseHubRef(spec);
  const byCommit = /^[0-9a-f]{40}$/.test(ref.revision) ? ref.revision : null;
  const commit = byCommit ?? (await fsp.readFile(refFile(cache, ref), 'utf8').then((s) => s.trim(), () => null));
  const dir = commit && /^[0-9a-f]{40}$/.test(commit) ? path.join(repoFolder(cache, ref), commit) : null;
  return dir && (await statOrNull(dir))?.isDirectory() ? dir : null;
}

/** A progress line on stderr at most once a second (and every note, and the end). */
function progressPrinter(label: string): (p: HubProgress) => void {
  let last = 0;
  return (p) => {
    const t = Date.now();
    if (!p.note && t - last < 1000 && p.bytes < p.total) return;
    last = t;
    console.error(p.note ? `hub: ${p.note}` : `hub: ${label} ${p.file}: ${formatHubProgress(p)}`);
  };
}

/**
 * The folder of `ORG/NAME[@REV]` (with or without hf:) in the cache, fetched first unless it is
 * there. Throws HubError / LockError in words.
 */
export async function fetchToCache(spec: string, opts: { cache?: string; host?: string } = {}): Promise<string> {
  const ref = parseHubRef(spec);
  const host = hubHost(opts.host ?? process.env.HF_ENDPOINT);
  const cache = opts.cache ?? hubCacheDir();
  const label = `${ref.repo}@${ref.revision}`;
  let info;
  try {
    info = await fetchHubInfo(host, ref);
  } catch (e) {
    // offline: a revision fetched before is used as it was
    const dir = await cachedHubFolder(spec, cache);
    if (dir) {
      console.error(`note: ${(e as Error).message}; using ${label} as cached at commit ${path.basename(dir)} (${dir})`);
      return dir;
    }
    throw e;
  }
  const top = repoFolder(cache, ref);
  const final = path.join(top, info.commit);
  await makeFolders(path.join(top, 'refs'));
  const rememberRef = async () => {
    const tmp = `${refFile(cache, ref)}.tmp-${process.pid}`;
    await fsp.writeFile(tmp, `${info.commit}\n`);
    await fsp.rename(tmp, refFile(cache, ref));
  };
  if ((await statOrNull(final))?.isDirectory()) {
    await rememberRef();
    return final;
  }
  const lock = await acquireLock(final, '--model', `hub ${spec}`);
  try {
    // another command may have finished it while we waited for the lock
    if (!(await statOrNull(final))?.isDirectory()) {
      const staging = path.join(top, `.${info.commit}.download`);
      await makeFolders(staging);
      const r = await downloadFromHub({
        host, ref, info, store: folderHubStore(staging), onProgress: progressPrinter(`fetching ${label}`),
        ensureSpace: async (bytes) => {
          const fs = await fsp.statfs(staging);
          const free = fs.bavail * fs.bsize;
          if (bytes > free) throw new HubError(`${label} needs ${(bytes / 1e6).toFixed(1)} MB more but ${staging} has ${(free / 1e6).toFixed(1)} MB free; free disk space or set LATENT_PLAYGROUND_HUB_CACHE to another disk (the bytes fetched so far are kept)`);
        },
      });
      // every file is in and checked: the revision appears whole
      await syncFolder(staging);
      await fsp.rename(staging, final);
      await syncFolder(top);
      console.error(`hub: ${label} (commit ${info.commit.slice(0, 12)}) is in ${final}: ${r.files.join(', ')}; ${(r.transferred / 1e6).toFixed(1)} MB fetched`);
    }
    await rememberRef();
  } finally {
    lock.release();
  }
  return final;
}

/** `--model`'s value as a folder: `hf:ORG/NAME[@REV]` is fetched into the cache, anything else is a folder already. */
export async function resolveModelArg(value: string): Promise<string> {
  return value.startsWith('hf:') ? fetchToCache(value) : value;
}

export async function commandHub(argv: string[]): Promise<number> {
  const positional = argv.filter((a) => !a.startsWith('--'));
  const args = new Args(argv.filter((a) => a.startsWith('--')), [], 'usage: npm run cli -- hub hf:ORG/NAME[@REV]\n\n' +
    'Fetches a model from the Hugging Face Hub (config.json, tokenizer files, safetensors; checked against the\n' +
    'Hub\'s sizes and checksums, resumed after a dropped connection) into the cache and prints its folder.\n' +
    'Every command\'s --model takes hf:ORG/NAME[@REV] the same way. HF_ENDPOINT sets the Hub\'s address;\n' +
    'LATENT_PLAYGROUND_HUB_CACHE the cache (default ~/.cache/latent-playground/hub).');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  if (positional.length !== 1) throw new UsageError('give one model: hf:ORG/NAME[@REV]');
  try {
    parseHubRef(positional[0]);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  console.log(await fetchToCache(positional[0]));
  return 0;
}
