// A run bundle that references its base instead of copying it (issue 23 item 4: each bundle of a
// real-model experiment held its own copy of a 517 MB base). run.json then has `files.base: null` and
// `files.baseRef` = {source, id, revision?, sha256, fileSha256}: where the base is (the page's library
// id, a Hugging Face Hub repo id, or a folder), the digest of its weights and the sha256 of each other
// file that defines the model (config.json, tokenizer.json, tokenizer_config.json: the files the
// engine's modelDigest covers, issue 20 item 2). A reader finds the base by the reference, and refuses
// it unless every one of those files is the recorded one (docs/run-bundle.md; the companion's
// python/latent_playground/base_ref.py does the same). No DOM, no file system: the
// caller's resolver fetches the files (src/cli/base-ref-node.ts for folders and the Hub cache).
import { CONFIG_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from './checkpoint';
import { RunBundleError, type FileMap } from './run-bundle';

export const BASE_REF_SOURCES = ['library', 'hub', 'folder'] as const;
export type BaseRefSource = (typeof BASE_REF_SOURCES)[number];
/**
 * The files besides the weights that define a base (what it computes, how it reads text): the same
 * set as the engine's modelDigest (src/worker/engine.ts), so two bases with the same weights but
 * another rope_theta, rms eps or tokenizer are told apart.
 */
export const BASE_REF_FILES = [CONFIG_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE] as const;
export type BaseRefFile = (typeof BASE_REF_FILES)[number];

export interface BaseRef {
  source: BaseRefSource;
  /** The library's model id, the Hub's "org/name", or a folder path (absolute, or relative to the bundle's folder). */
  id: string;
  /** Hub only: a branch, tag or commit. */
  revision?: string;
  /** weightsDigest of the base's files, 64 lowercase hex digits. */
  sha256: string;
  /** The sha256 of each of BASE_REF_FILES, null where the base has no such file (it must then have none). */
  fileSha256: Record<BaseRefFile, string | null>;
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

/** The sha256 of each of BASE_REF_FILES in `files`, null where absent. */
async function fileDigests(files: ReadonlyMap<string, Uint8Array>): Promise<Record<BaseRefFile, string | null>> {
  const out = {} as Record<BaseRefFile, string | null>;
  for (const name of BASE_REF_FILES) {
    const b = files.get(name);
    out[name] = b ? await sha256(b) : null;
  }
  return out;
}

/** What a reference records of a base: its weights' digest and the sha256 of each other defining file (null where absent). */
export async function baseDigests(files: ReadonlyMap<string, Uint8Array>): Promise<Pick<BaseRef, 'sha256' | 'fileSha256'>> {
  if (!files.has(CONFIG_FILE)) throw new RunBundleError(`the base has no ${CONFIG_FILE}`);
  return { sha256: await weightsDigest(files), fileSha256: await fileDigests(files) };
}

/** `v` checked as run.json's files.baseRef (a RunBundleError naming what is wrong otherwise). */
export function checkBaseRef(v: unknown): BaseRef {
  const bad = (what: string) => new RunBundleError(`run.json: files.baseRef ${what}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('must be an object {source, id, revision?, sha256, fileSha256}');
  const r = v as Record<string, unknown>;
  if (!(BASE_REF_SOURCES as readonly unknown[]).includes(r.source)) throw bad(`source must be one of ${BASE_REF_SOURCES.join(', ')}, got ${JSON.stringify(r.source)}`);
  if (typeof r.id !== 'string' || !r.id.trim()) throw bad('id must be a non-empty string');
  if (r.revision !== undefined && (typeof r.revision !== 'string' || !r.revision || r.source !== 'hub')) throw bad('revision is a non-empty string, and only for a Hub reference');
  if (r.source === 'hub' && !/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(r.id)) throw bad(`id ${JSON.stringify(r.id)} is not a Hub repo id (org/name)`);
  if (typeof r.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(r.sha256)) throw bad('sha256 must be 64 lowercase hex digits (the digest of the base\u2019s weights)');
  const f = r.fileSha256;
  const want = `{${BASE_REF_FILES.map((n) => `"${n}"`).join(', ')}}`;
  if (typeof f !== 'object' || f === null || Array.isArray(f)) throw bad(`fileSha256 must be an object ${want}: the sha256 of each file that defines the base besides its weights, null where it has none`);
  const given = f as Record<string, unknown>;
  for (const k of Object.keys(given)) {
    if (!(BASE_REF_FILES as readonly string[]).includes(k)) throw bad(`fileSha256 names ${JSON.stringify(k)}, which is not one of ${want} (written by a newer playground?)`);
  }
  const fileSha256 = {} as Record<BaseRefFile, string | null>;
  for (const name of BASE_REF_FILES) {
    if (!(name in given)) throw bad(`fileSha256 has no entry for ${name} (its sha256, or null where the base has none)`);
    const d = given[name];
    if (d === null && name === CONFIG_FILE) throw bad(`fileSha256["${CONFIG_FILE}"] is null, but every base has one`);
    if (d !== null && (typeof d !== 'string' || !/^[0-9a-f]{64}$/.test(d))) throw bad(`fileSha256["${name}"] must be 64 lowercase hex digits or null, got ${JSON.stringify(d)}`);
    fileSha256[name] = d as string | null;
  }
  return { source: r.source as BaseRefSource, id: r.id, ...(r.revision !== undefined ? { revision: r.revision as string } : {}), sha256: r.sha256, fileSha256 };
}

/** How a reference reads in a message: "folder ../bases/smollm2", "hub org/name@rev", "library id". */
export const describeBaseRef = (r: BaseRef) => `${r.source} ${r.id}${r.revision ? `@${r.revision}` : ''}`;

/**
 * Refuses base files that are not the referenced ones: every file the reference records, each
 * mismatch named with both digests (issue 20 item 2: the same weights under another config.json or
 * tokenizer compute another model).
 */
export async function verifyBaseRef(ref: BaseRef, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const have = await fileDigests(files);
  const wrong: string[] = [];
  for (const name of BASE_REF_FILES) {
    const got = have[name];
    const want = ref.fileSha256[name];
    if (got === want) continue;
    if (got === null) wrong.push(`has no ${name}, but run.json records one with sha256 ${want}`);
    else if (want === null) wrong.push(`has a ${name} with sha256 ${got}, but run.json records none`);
    else wrong.push(`has a ${name} with sha256 ${got}, but run.json records ${want}`);
  }
  const weights = await weightsDigest(files);
  const weightsDiffer = weights !== ref.sha256;
  if (weightsDiffer) wrong.unshift(`has weights with sha256 ${weights}, but run.json records ${ref.sha256}`);
  if (wrong.length === 0) return;
  throw new RunBundleError(
    `the base referenced as ${describeBaseRef(ref)} ${wrong.join('; ')}: ` +
    (weightsDiffer ? 'these are not the weights the run was trained on' : 'this is not the model the run was trained on (the same weights, but another file that defines what it computes or how it reads text)') +
    ' (restore that base, or point the reference at the right one)',
  );
}

/**
 * The base a bundle's run.json references, fetched by `resolve` and checked against its digests;
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
