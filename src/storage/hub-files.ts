// What the Hub says a revision holds, and which of its files make a model this engine loads. The
// API (`/api/models/{repo}/revision/{rev}?blobs=true`) lists each file with its size and either its
// LFS sha256 (weights) or its git blob id (small files: the SHA-1 of "blob {size}\0" + content).
// Pure: no DOM, no Node APIs; hashing through Web Crypto (crypto.subtle, in browsers and Node).
import { CONFIG_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from './checkpoint';
import { HubError } from './hub-host';

/** One file of a revision as the API lists it. */
export interface HubFile {
  name: string;
  size: number;
  /** the LFS object's sha256 (hex), for files stored with git LFS */
  sha256?: string;
  /** the git blob id (hex SHA-1 of the git object), for small files */
  blobId?: string;
}

/** A revision: its commit and files. */
export interface HubInfo {
  repo: string;
  /** the commit the revision names (every file is fetched from it, so they belong together) */
  commit: string;
  files: Map<string, HubFile>;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const hex = (v: unknown, len: number): string | undefined => (typeof v === 'string' && new RegExp(`^[0-9a-f]{${len}}$`).test(v) ? v : undefined);

/** Reads the API's JSON; throws HubError when it is not what the Hub sends. */
export function parseHubInfo(repo: string, json: unknown): HubInfo {
  if (!isObj(json) || !Array.isArray(json.siblings)) throw new HubError(`the Hub's answer for ${repo} lists no files (no "siblings")`);
  const commit = hex(json.sha, 40);
  if (!commit) throw new HubError(`the Hub's answer for ${repo} names no commit ("sha")`);
  const files = new Map<string, HubFile>();
  for (const s of json.siblings) {
    if (!isObj(s) || typeof s.rfilename !== 'string') continue;
    const lfs = isObj(s.lfs) ? s.lfs : null;
    const size = lfs && typeof lfs.size === 'number' ? lfs.size : s.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      files.set(s.rfilename, { name: s.rfilename, size: -1 });
      continue;
    }
    files.set(s.rfilename, { name: s.rfilename, size, sha256: lfs ? hex(lfs.sha256, 64) : undefined, blobId: hex(s.blobId, 40) });
  }
  return { repo, commit, files };
}

/** The files to fetch, in order: config.json, then the shard index (if any), tokenizer files, weights. */
export interface HubPlan {
  config: HubFile;
  index: HubFile | null;
  tokenizer: HubFile[];
  /** known once the index is read when the weights are sharded */
  weights: HubFile[];
}

function need(info: HubInfo, name: string): HubFile {
  const f = info.files.get(name)!;
  if (f.size < 0) throw new HubError(`the Hub lists ${name} of ${info.repo} without a size; it cannot be checked, so it is not fetched`);
  return f;
}

/** Picks the files; throws HubError when the revision has no config.json or no safetensors weights. */
export function planFiles(info: HubInfo): HubPlan {
  const has = (n: string) => info.files.has(n);
  if (!has(CONFIG_FILE)) throw new HubError(`${info.repo} has no config.json at its top: it is not a Hugging Face transformers model`);
  if (!has(WEIGHTS_FILE) && !has(WEIGHTS_INDEX_FILE)) {
    const other = [...info.files.keys()].filter((n) => /\.(bin|pt|pth|gguf|onnx|h5|msgpack)$/.test(n)).slice(0, 4);
    throw new HubError(
      `${info.repo} has no ${WEIGHTS_FILE} (nor ${WEIGHTS_INDEX_FILE}) at its top` +
        (other.length ? `, only ${other.join(', ')}: this engine reads safetensors weights (a GGUF file can be imported on its own)` : ''),
    );
  }
  const tokenizer = [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE].filter(has).map((n) => need(info, n));
  const sharded = !has(WEIGHTS_FILE);
  return {
    config: need(info, CONFIG_FILE),
    index: sharded ? need(info, WEIGHTS_INDEX_FILE) : null,
    tokenizer,
    weights: sharded ? [] : [need(info, WEIGHTS_FILE)],
  };
}

/** The shards a model.safetensors.index.json names, each checked against the revision's files. */
export function shardsOf(info: HubInfo, indexBytes: Uint8Array): HubFile[] {
  let idx: unknown;
  try {
    idx = JSON.parse(new TextDecoder().decode(indexBytes));
  } catch (e) {
    throw new HubError(`${WEIGHTS_INDEX_FILE} of ${info.repo} is not JSON: ${(e as Error).message}`);
  }
  if (!isObj(idx) || !isObj(idx.weight_map)) throw new HubError(`${WEIGHTS_INDEX_FILE} of ${info.repo} has no weight_map`);
  const names = [...new Set(Object.values(idx.weight_map))];
  if (!names.length || !names.every((n): n is string => typeof n === 'string' && /^[\w.-]+\.safetensors$/.test(n))) {
    throw new HubError(`${WEIGHTS_INDEX_FILE} of ${info.repo}: its weight_map must name .safetensors files at the top of the repository`);
  }
  const missing = names.filter((n) => !info.files.has(n));
  if (missing.length) throw new HubError(`${WEIGHTS_INDEX_FILE} of ${info.repo} names shards the revision does not have: ${missing.slice(0, 4).join(', ')}`);
  return names.sort().map((n) => need(info, n));
}

const toHex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

/** What a file's bytes hash to: hex SHA-256, or the hex SHA-1 of the git object ("blob {size}\0" + bytes). */
export type FileHasher = (algo: 'sha256' | 'git-blob') => Promise<string>;

/** The hasher of bytes in memory (Web Crypto). */
export function bytesHasher(bytes: Uint8Array): FileHasher {
  return async (algo) => {
    if (algo === 'sha256') return toHex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
    const head = new TextEncoder().encode(`blob ${bytes.length}\0`);
    const obj = new Uint8Array(head.length + bytes.length);
    obj.set(head);
    obj.set(bytes, head.length);
    return toHex(await crypto.subtle.digest('SHA-1', obj));
  };
}

/**
 * Checks a fetched file against the Hub's metadata: its size always, then the sha256 (LFS files) or
 * the git blob id (other files). Returns null when they match, else what differs.
 */
export async function checkFile(f: HubFile, size: number, hash: FileHasher): Promise<string | null> {
  if (size !== f.size) return `${f.name} is ${size} bytes, the Hub says ${f.size}`;
  if (f.sha256) {
    const got = await hash('sha256');
    return got === f.sha256 ? null : `${f.name} has sha256 ${got}, the Hub says ${f.sha256}`;
  }
  if (f.blobId) {
    const got = await hash('git-blob');
    return got === f.blobId ? null : `${f.name} has git blob id ${got}, the Hub says ${f.blobId}`;
  }
  // the Hub lists every file with one of the two; a file with neither is checked by its size alone
  return null;
}
