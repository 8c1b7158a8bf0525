// Base references (src/storage/base-ref.ts) on the command line: `--export-run DIR --base-ref ...`
// makes one from the experiment's --model folder, and readBundleFolder resolves one when a bundle
// folder is read back: a folder (relative to the bundle's folder, or absolute), a Hub model in the
// playground's own Hub cache (where `--model hf:` fetches, hub.ts) or else in the Hugging Face cache
// (huggingface_hub's layout), as the companion looks too (base_ref.py hub_folder), or the page's
// library (only the page holds it: a folder must be given instead).
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { baseDigests, checkBaseRef, describeBaseRef, resolveBundleBase, type BaseRef } from '../storage/base-ref';
import { readRunBundle, RunBundleError, RUN_FILE, type FileMap } from '../storage/run-bundle';
import { parseHubRef } from '../storage/hub-host';
import { UsageError } from './args';
import { readFolder } from './files';
import { readTree } from './export-run';
import { cachedHubFolder, hubCacheDir } from './hub';

/** `--base-ref` forms, for the help and the refusal. */
export const BASE_REF_HELP = "folder (the --model folder by its absolute path), hub:ORG/NAME[@REV] (the Hub model the --model folder was fetched from), or library:ID (the page's library model); the bundle then holds the digests of the base's weights, config.json and tokenizer files, not the base";

/** What `--base-ref text` names, checked before any work (the digest is added by makeBaseRef). */
export function parseBaseRefArg(text: string, modelDir: string): Omit<BaseRef, 'sha256' | 'fileSha256'> {
  if (text === 'folder') return { source: 'folder', id: path.resolve(modelDir) };
  if (text.startsWith('hub:')) {
    try {
      const hub = parseHubRef(text.slice(4));
      return { source: 'hub', id: hub.repo, ...(text.includes('@') ? { revision: hub.revision } : {}) };
    } catch (e) {
      throw new UsageError(`--base-ref: ${(e as Error).message}`);
    }
  }
  if (text.startsWith('library:') && text.trim().length > 'library:'.length) return { source: 'library', id: text.slice('library:'.length).trim() };
  throw new UsageError(`--base-ref must be ${BASE_REF_HELP}; got ${JSON.stringify(text)}`);
}

/** The reference `--base-ref text` asks for, with the digests of the base actually used (the files of modelDir). */
export async function makeBaseRef(text: string, modelDir: string, baseFiles: ReadonlyMap<string, Uint8Array>): Promise<BaseRef> {
  return checkBaseRef({ ...parseBaseRefArg(text, modelDir), ...(await baseDigests(baseFiles)) });
}

/** huggingface_hub's cache folder (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
export function hubCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return path.join(env.HF_HOME ?? path.join(os.homedir(), '.cache', 'huggingface'), 'hub');
}

/** The snapshot folder of a Hub model in the cache (a commit id, or a branch or tag through refs/), or null. */
export function hubSnapshotFolder(repo: string, revision = 'main', root = hubCacheRoot()): string | null {
  const dir = path.join(root, `models--${repo.replace('/', '--')}`);
  let commit = revision;
  const refFile = path.join(dir, 'refs', revision);
  if (existsSync(refFile)) commit = readFileSync(refFile, 'utf8').trim();
  const snap = path.join(dir, 'snapshots', commit);
  return existsSync(snap) ? snap : null;
}

/**
 * The folder of a Hub model: the playground's Hub cache first (what `--model hf:` fetched), then the
 * Hugging Face cache; throws naming both places when neither holds it. Nothing is fetched.
 */
export async function hubBaseFolder(repo: string, revision: string | undefined, caches: { ours?: string; hf?: string } = {}): Promise<string> {
  const ours = caches.ours ?? hubCacheDir();
  const hf = caches.hf ?? hubCacheRoot();
  const spec = revision ? `${repo}@${revision}` : repo;
  const found = (await cachedHubFolder(spec, ours)) ?? hubSnapshotFolder(repo, revision, hf);
  if (found) return found;
  throw new RunBundleError(`the base hub:${spec} is not in the playground's Hub cache (${ours}), and not in the Hugging Face cache (${hf}): fetch it (npm run cli -- hub hf:${spec}, or huggingface-cli download ${repo}${revision ? ` --revision ${revision}` : ''}), or give the base folder`);
}

/** The folder a reference names, seen from the bundle folder `bundleDir`. */
export async function baseRefFolder(ref: BaseRef, bundleDir: string, caches: { ours?: string; hf?: string } = {}): Promise<string> {
  if (ref.source === 'folder') return path.resolve(bundleDir, ref.id);
  if (ref.source === 'hub') return hubBaseFolder(ref.id, ref.revision, caches);
  throw new RunBundleError(`the base referenced as ${describeBaseRef(ref)} lives in the page's library: export it from the page (Library, Export) and give that folder as the base`);
}

/**
 * A bundle folder read and checked, its base resolved where run.json references it (from `baseDir`
 * when given, else by the reference) and refused unless its weights and other defining files have
 * the recorded digests.
 * baseDir: the folder the base was read from (the bundle's own base/ when it holds it).
 */
export async function readBundleFolder(dir: string, opts: { baseDir?: string } = {}) {
  const files = await readTree(dir);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(files.get(RUN_FILE) ?? new Uint8Array()));
  } catch {
    // readRunBundle names what is wrong
    return { bundle: readRunBundle(files), baseDir: path.join(dir, 'base') };
  }
  let baseDir = path.join(dir, 'base');
  const base: FileMap | null = await resolveBundleBase(json as { files?: { baseRef?: unknown } }, async (ref) => {
    baseDir = opts.baseDir ?? (await baseRefFolder(ref, dir));
    return readFolder(baseDir);
  });
  const bundle = readRunBundle(files, base ? { base } : {});
  if (!base && typeof bundle.json.files.base === 'string') baseDir = path.join(dir, bundle.json.files.base);
  return { bundle, baseDir };
}
