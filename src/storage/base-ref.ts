// A run bundle that references its base instead of copying it (issue 23 item 4: each bundle of a
// real-model experiment held its own copy of a 517 MB base). run.json then has `files.base: null` and
// `files.baseRef` = {source, id, revision?, sha256}: where the base is (the page's library id, a
// Hugging Face Hub repo id, or a folder) and the digest of its weights. A reader finds the base by
// the reference, and refuses it unless its weights have that digest (docs/run-bundle.md; the
// companion's python/latent_playground/bundle.py does the same). No DOM, no file system: the
// caller's resolver fetches the files (src/cli/base-ref-node.ts for folders and the Hub cache).
import { WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from './checkpoint';
import { RunBundleError, type FileMap } from './run-bundle';

export const BASE_REF_SOURCES = ['library', 'hub', 'folder'] as const;
export type BaseRefSource = (typeof BASE_REF_SOURCES)[number];

export interface BaseRef {
  source: BaseRefSource;
  /** The library's model id, the Hub's "org/name", or a folder path (absolute, or relative to the bundle's folder). */
  id: string;
  /** Hub only: a branch, tag or commit. */
  revision?: string;
  /** weightsDigest of the base's files, 64 lowercase hex digits. */
  sha256: string;
}

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
const sha256 = async (bytes: Uint8Array) => hex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));

/**
 * The digest of a base's weights: the sha256 of model.safetensors (what `sha256sum` prints); for a
 * sharded base, the sha256 of the text "<name> <sha256>\n" over the index and then each shard in
 * name order (each file hashed on its own: no shard is copied into one buffer).
 */
export async function weightsDigest(files: ReadonlyMap<string, Uint8Array>): Promise<string> {
  const single = files.get(WEIGHTS_FILE);
  if (single) return sha256(single);
  const index = files.get(WEIGHTS_INDEX_FILE);
  if (!index) throw new RunBundleError(`the base has neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE}`);
  let map: unknown;
  try {
    map = (JSON.parse(new TextDecoder().decode(index)) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new RunBundleError(`${WEIGHTS_INDEX_FILE} is not JSON: ${(e as Error).message}`);
  }
  if (typeof map !== 'object' || map === null) throw new RunBundleError(`${WEIGHTS_INDEX_FILE} has no weight_map`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>).map(String))].sort();
  const lines = [`${WEIGHTS_INDEX_FILE} ${await sha256(index)}\n`];
  for (const s of shards) {
    const b = files.get(s);
    if (!b) throw new RunBundleError(`the base's ${WEIGHTS_INDEX_FILE} names the shard ${s}, which it does not hold`);
    lines.push(`${s} ${await sha256(b)}\n`);
  }
  return sha256(new TextEncoder().encode(lines.join('')));
}

/** `v` checked as run.json's files.baseRef (a RunBundleError naming what is wrong otherwise). */
export function checkBaseRef(v: unknown): BaseRef {
  const bad = (what: string) => new RunBundleError(`run.json: files.baseRef ${what}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('must be an object {source, id, revision?, sha256}');
  const r = v as Record<string, unknown>;
  if (!(BASE_REF_SOURCES as readonly unknown[]).includes(r.source)) throw bad(`source must be one of ${BASE_REF_SOURCES.join(', ')}, got ${JSON.stringify(r.source)}`);
  if (typeof r.id !== 'string' || !r.id.trim()) throw bad('id must be a non-empty string');
  if (r.revision !== undefined && (typeof r.revision !== 'string' || !r.revision || r.source !== 'hub')) throw bad('revision is a non-empty string, and only for a Hub reference');
  if (r.source === 'hub' && !/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(r.id)) throw bad(`id ${JSON.stringify(r.id)} is not a Hub repo id (org/name)`);
  if (typeof r.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(r.sha256)) throw bad('sha256 must be 64 lowercase hex digits (the digest of the base\u2019s weights)');
  return { source: r.source as BaseRefSource, id: r.id, ...(r.revision !== undefined ? { revision: r.revision as string } : {}), sha256: r.sha256 };
}

/** How a reference reads in a message: "folder ../bases/smollm2", "hub org/name@rev", "library id". */
export const describeBaseRef = (r: BaseRef) => `${r.source} ${r.id}${r.revision ? `@${r.revision}` : ''}`;

/** Refuses base files whose weights are not the referenced ones. */
export async function verifyBaseRef(ref: BaseRef, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const got = await weightsDigest(files);
  if (got !== ref.sha256) {
    throw new RunBundleError(
      `the base referenced as ${describeBaseRef(ref)} has weights with sha256 ${got}, but run.json records ${ref.sha256}: ` +
      'these are not the weights the run was trained on (restore that base, or point the reference at the right one)',
    );
  }
}

/**
 * The base a bundle's run.json references, fetched by `resolve` and checked against its digest;
 * null for a bundle that holds its base. The files go to readRunBundle(files, { base }).
 */
export async function resolveBundleBase(json: { files?: { base?: unknown; baseRef?: unknown } }, resolve: (ref: BaseRef) => Promise<FileMap>): Promise<FileMap | null> {
  if (json.files?.baseRef === undefined) return null;
  const ref = checkBaseRef(json.files.baseRef);
  let files: FileMap;
  try {
    files = await resolve(ref);
  } catch (e) {
    if (e instanceof RunBundleError) throw e;
    throw new RunBundleError(`the base referenced as ${describeBaseRef(ref)} cannot be read: ${(e as Error).message}`);
  }
  await verifyBaseRef(ref, files);
  return files;
}
