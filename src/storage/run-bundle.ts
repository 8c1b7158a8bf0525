// The run bundle: one run of the playground as files, the hand-over to PyTorch (docs/run-bundle.md).
// The page's "Export run" zips it (with CSV, SVG and PNG beside it) and `npm run experiment --
// --export-run DIR` writes it as a folder; the Python companion reads it. Plain data in, files out:
// writeRunBundle makes the name -> bytes map, readRunBundle checks one and gives the data back. No
// DOM, no GPU, no file system.
//
//   run.json                         format, version, the RunConfig and what it implies (below)
//   base/                            the frozen base as Hugging Face files (config.json, model.safetensors, tokenizer.json)
//   adapters/<key>/                  the trained PEFT adapter of each adapter key (an agent id, or "shared")
//   initial_adapters/<key>/          the same adapters at step 0 (A from the seed, B = 0)
//   latent_map.safetensors           W_a [D, D] of the latent map (ridge), with its target norm (latent methods)
//   c2c_fuser.safetensors            the trained Cache-to-Cache fuser (method c2c, src/storage/c2c-fuser.ts; its initial state is A = 0, gate = 0)
//   episodes/<split>.jsonl           each split's evaluation episodes: text parts, answer, token ids per agent
//   batches.jsonl                    the first training batches, exactly as fed (trained methods)
import { CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, validateConfig } from './checkpoint';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, decodeAdapter } from './peft';
import { SLOT_OFFSET_FILE, slotOffsetOfFiles } from './slot-offset';
import { decodeSafetensors, encodeSafetensors } from './safetensors';
import { bundleKeyProblem, bundlePathMessage, bundlePathProblem, bundlePaths } from './bundle-paths';
import type { EvalRow, MethodName, RunConfig } from '../mas/run-types';
import type { Split } from '../tasks/tasks';
import { checkBaseRef, type BaseRef } from './base-ref';
import { decodeFuserFile, FUSER_FILE } from './c2c-fuser';

export const RUN_BUNDLE_FORMAT = 'latent-playground-run';
export const RUN_BUNDLE_VERSION = 1;
/** The version a bundle that references its base (files.baseRef, base-ref.ts) is written as: a reader of version 1 refuses it plainly instead of missing its base. */
export const BASE_REF_VERSION = 2;
export const RUN_FILE = 'run.json';
export const BASE_DIR = 'base';
export const LATENT_MAP_FILE = 'latent_map.safetensors';
export const BATCHES_FILE = 'batches.jsonl';
const SPLIT_NAMES: readonly Split[] = ['train', 'heldout', 'ood'];

export type FileMap = Map<string, Uint8Array>;

/** A bundle that cannot be read: names the file (and line) and what is wrong. */
export class RunBundleError extends Error {
  constructor(message: string) {
    super(`run bundle: ${message}`);
    this.name = 'RunBundleError';
  }
}

/** One agent as the run's plan has it (plan order: topological, the final agent last). */
export interface BundleAgent {
  id: string;
  name: string;
  /** The episode part it holds, or 'none'. */
  role: number | 'none';
  /** Latent steps it runs (0 without a latent channel, and for the final agent). */
  latentSteps: number;
  adapter: 'own' | 'shared';
  /** Key of its PEFT folder under adapters/ (its id, or 'shared'); null when it has no adapter in this method. */
  adapterKey: string | null;
  final: boolean;
  /** Ids of the agents it reads, in the order their messages are laid before it. */
  predecessors: string[];
}

/** One agent's input in one episode. */
export interface BundleAgentInput {
  id: string;
  /** Its prompt text (tokenizer-ready, starts with <bos>); text channel: without the received messages. */
  prompt: string;
  ids: number[];
  /** Text channel, an agent that receives messages: the index in `ids` where they go ("msg:<content>\n" each, in predecessor order). */
  messagesAt?: number;
}

/** One evaluation episode of a split (the order is the evaluation's). */
export interface BundleEpisode {
  split: Split;
  index: number;
  key: string;
  /** Each role's private input (cue then content), in role order. */
  parts: string[];
  answer: string;
  /** The final agent's target: the answer's ids then <eos>. */
  targetIds: number[];
  /** Per plan agent. */
  agents: BundleAgentInput[];
}

export interface BundleBatchRow {
  key: string;
  parts: string[];
  answer: string;
  /** Prompt ids per plan agent. */
  promptIds: number[][];
  /** The final agent's pass: its prompt then the answer region (teacher forcing). */
  finalIds: number[];
  /** Target per position of that pass; null where no loss is taken. */
  finalTargets: (number | null)[];
}

export interface BundleBatch {
  /** 1-based: the optimizer step that uses it. */
  batch: number;
  /** Prompt lengths per plan agent, comma-separated. */
  signature: string;
  rows: BundleBatchRow[];
}

export interface BundleLatentMap {
  kind: 'ridge' | 'identity';
  D: number;
  lambda: number;
  /** Mean L2 norm of the input-embedding rows: every latent input is rescaled to it. */
  targetNorm: number;
  /** [D, D] row-major (e = h W_a); null for the identity. */
  Wa: Float32Array | null;
}

/** An evaluation row with its Wilson 95% interval. */
export type BundleEvalRow = EvalRow & { ci95?: [number, number] | null };

/** The metadata of run.json (the file paths are added by the writer). */
export interface RunBundleMeta {
  /** ISO time the bundle was made. */
  createdAt: string;
  /** What made it: 'page' or 'cli experiment'. */
  createdBy: string;
  config: RunConfig;
  method: { name: MethodName; channel: 'none' | 'text' | 'latent'; trace: 'latent' | 'full' | null; train: 'none' | 'all' | 'receiver' | 'fuser'; skyline: boolean };
  /** RoPE position scheme (config.positions, made explicit). */
  positions: 'stream' | 'prefix';
  agents: BundleAgent[];
  base: { id: string; name?: string };
  /** bos is null for a model without a beginning-of-sequence token (Qwen): its prompts start with their text. */
  tokens: { pad: number; bos: number | null; eos: number; vocabSize: number };
  /** The longest answer in tokens without <eos> (the final pass holds prompt + this many tokens). */
  maxAnswerTokens: number;
  training: {
    /** Optimizer steps taken for the trained adapters (0: the adapters are the initial ones). */
    stepsDone: number;
    /** Training loss per step (1..stepsDone). */
    losses: number[];
    optimizer: { name: 'adamw'; beta1: number; beta2: number; eps: number; weightDecay: number; clip: number; warmupSteps: number; schedule: string; minLr: number };
  };
  results: {
    /** Evaluations on each split at the end (or when the bundle was made). */
    evaluation: BundleEvalRow[];
    /** Held-out loss and accuracy at each evaluation step during training. */
    heldout: { step: number; loss: number | null; accuracy: number | null }[];
    /** Controls on heldout (experiment only). */
    controls?: { control: string; accuracy: number }[];
  };
  /** Seconds from start to end (training and evaluation). */
  wallSeconds: number | null;
}

/** Everything a bundle holds, as data. */
export interface RunBundleContent {
  meta: RunBundleMeta;
  /** HF checkpoint files by bare name (config.json, model.safetensors, tokenizer.json, ...); with baseRef, not written (read back: the resolved base). */
  base: FileMap;
  /** Reference the base instead of copying it (base-ref.ts). */
  baseRef?: BaseRef;
  /** PEFT files (adapter_config.json, adapter_model.safetensors) per adapter key. */
  adapters: Record<string, FileMap>;
  initialAdapters: Record<string, FileMap>;
  latentMap: BundleLatentMap | null;
  episodes: Partial<Record<Split, BundleEpisode[]>>;
  batches: BundleBatch[];
  /** The trained Cache-to-Cache fuser (method c2c) as src/storage/c2c-fuser.ts encodes it; absent for every other method. */
  fuser?: Uint8Array | null;
}

/** run.json as written: the metadata plus where every part lies. */
export interface RunBundleJson extends RunBundleMeta {
  format: typeof RUN_BUNDLE_FORMAT;
  version: number;
  files: {
    /** The base's folder, or null when baseRef names it. */
    base: string | null;
    baseRef?: BaseRef;
    adapters: Record<string, string>;
    initialAdapters: Record<string, string>;
    latentMap: string | null;
    /** The c2c fuser's file (method c2c only). */
    fuser?: string;
    episodes: Partial<Record<Split, { path: string; count: number }>>;
    batches: { path: string; count: number } | null;
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function safeName(what: string, name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new RunBundleError(`${what} ${JSON.stringify(name)} cannot be a folder name (letters, digits, . _ -)`);
  return name;
}

function jsonl(lines: unknown[]): Uint8Array {
  return enc.encode(lines.map((l) => JSON.stringify(l)).join('\n') + (lines.length ? '\n' : ''));
}

/** The files of a bundle (names with '/' for folders), run.json first. */
export function writeRunBundle(c: RunBundleContent): FileMap {
  const out: FileMap = new Map();
  const ref = c.baseRef ? checkBaseRef(c.baseRef) : null;
  const files: RunBundleJson['files'] = { base: ref ? null : BASE_DIR, ...(ref ? { baseRef: ref } : {}), adapters: {}, initialAdapters: {}, latentMap: null, episodes: {}, batches: null };
  const later: [string, Uint8Array][] = [];
  if (!ref) {
    for (const name of [CONFIG_FILE, TOKENIZER_FILE]) if (!c.base.has(name)) throw new RunBundleError(`the base has no ${name}`);
    if (!c.base.has(WEIGHTS_FILE) && !c.base.has(WEIGHTS_INDEX_FILE)) throw new RunBundleError(`the base has no ${WEIGHTS_FILE}`);
    for (const [name, bytes] of c.base) later.push([`${BASE_DIR}/${safeName('base file', name)}`, bytes]);
  }
  for (const [field, dir] of [['adapters', 'adapters'], ['initialAdapters', 'initial_adapters']] as const) {
    for (const [key, fm] of Object.entries(c[field])) {
      const p = `${dir}/${safeName('adapter key', key)}`;
      for (const f of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]) {
        const b = fm.get(f);
        if (!b) throw new RunBundleError(`adapter ${key} has no ${f}`);
        later.push([`${p}/${f}`, b]);
      }
      // the learned latent slot offsets (config.latentSlotOffset), beside the PEFT files
      const off = fm.get(SLOT_OFFSET_FILE);
      if (off) later.push([`${p}/${SLOT_OFFSET_FILE}`, off]);
      files[field][key] = p;
    }
  }
  if (c.latentMap) {
    const m = c.latentMap;
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    if (m.Wa) {
      if (m.Wa.length !== m.D * m.D) throw new RunBundleError(`the latent map W_a has ${m.Wa.length} values, expected ${m.D} x ${m.D}`);
      tensors.set('W_a', { shape: [m.D, m.D], data: m.Wa });
    }
    // the target norm as a tensor too, so a reader gets it in float32 exactly as used
    tensors.set('target_norm', { shape: [1], data: Float32Array.of(m.targetNorm) });
    later.push([LATENT_MAP_FILE, encodeSafetensors(tensors, { kind: m.kind, lambda: String(m.lambda), target_norm: String(m.targetNorm), D: String(m.D) })]);
    files.latentMap = LATENT_MAP_FILE;
  }
  if (c.fuser) {
    later.push([FUSER_FILE, c.fuser]);
    files.fuser = FUSER_FILE;
  }
  for (const split of SPLIT_NAMES) {
    const eps = c.episodes[split];
    if (!eps) continue;
    const p = `episodes/${split}.jsonl`;
    later.push([p, jsonl(eps)]);
    files.episodes[split] = { path: p, count: eps.length };
  }
  if (c.batches.length) {
    later.push([BATCHES_FILE, jsonl(c.batches)]);
    files.batches = { path: BATCHES_FILE, count: c.batches.length };
  }
  const json: RunBundleJson = { format: RUN_BUNDLE_FORMAT, version: ref ? BASE_REF_VERSION : RUN_BUNDLE_VERSION, ...c.meta, files };
  out.set(RUN_FILE, enc.encode(JSON.stringify(json, null, 2) + '\n'));
  for (const [k, v] of later) out.set(k, v);
  return out;
}

// ---------------------------------------------------------------- reading

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => isInt(x) && x >= 0);

function need(cond: unknown, where: string, what: string): asserts cond {
  if (!cond) throw new RunBundleError(`${where}: ${what}`);
}

/** The files under `dir/` with the prefix removed. */
function folder(files: ReadonlyMap<string, Uint8Array>, dir: string): FileMap {
  const out: FileMap = new Map();
  for (const [k, v] of files) if (k.startsWith(`${dir}/`) && !k.slice(dir.length + 1).includes('/')) out.set(k.slice(dir.length + 1), v);
  return out;
}

function readLines(files: ReadonlyMap<string, Uint8Array>, p: string, count: number): unknown[] {
  const b = files.get(p);
  need(b, p, 'the file is missing (run.json lists it)');
  const lines = dec.decode(b).split('\n').filter((l) => l.trim() !== '');
  need(lines.length === count, p, `${lines.length} lines, but run.json says ${count}`);
  return lines.map((l, i) => {
    try {
      return JSON.parse(l) as unknown;
    } catch (e) {
      throw new RunBundleError(`${p} line ${i + 1} is not JSON: ${(e as Error).message}`);
    }
  });
}

function checkEpisode(v: unknown, where: string, split: Split, agents: number): BundleEpisode {
  need(isObj(v), where, 'not an object');
  need(v.split === split, where, `split ${JSON.stringify(v.split)} in the ${split} file`);
  need(isInt(v.index) && typeof v.key === 'string' && typeof v.answer === 'string', where, 'index, key or answer missing');
  need(Array.isArray(v.parts) && v.parts.every((p) => typeof p === 'string'), where, 'parts must be a list of strings');
  need(isIds(v.targetIds), where, 'targetIds must be token ids');
  need(Array.isArray(v.agents) && v.agents.length === agents, where, `expected ${agents} agent inputs`);
  for (const a of v.agents as unknown[]) {
    need(isObj(a) && typeof a.id === 'string' && typeof a.prompt === 'string' && isIds(a.ids), where, 'each agent input needs id, prompt and ids');
    need(a.messagesAt === undefined || (isInt(a.messagesAt) && a.messagesAt >= 0 && a.messagesAt <= (a.ids as number[]).length), where, 'messagesAt is out of range');
  }
  return v as unknown as BundleEpisode;
}

function checkBatch(v: unknown, where: string, agents: number): BundleBatch {
  need(isObj(v) && isInt(v.batch) && typeof v.signature === 'string' && Array.isArray(v.rows), where, 'needs batch, signature and rows');
  for (const r of v.rows as unknown[]) {
    need(isObj(r) && typeof r.key === 'string' && typeof r.answer === 'string' && Array.isArray(r.parts), where, 'a row needs key, parts and answer');
    need(Array.isArray(r.promptIds) && r.promptIds.length === agents && r.promptIds.every(isIds), where, `a row needs promptIds for ${agents} agents`);
    need(isIds(r.finalIds) && Array.isArray(r.finalTargets) && r.finalTargets.length === (r.finalIds as number[]).length, where, 'finalIds and finalTargets must be token ids of one length');
    need((r.finalTargets as unknown[]).every((t) => t === null || (isInt(t) && t >= 0)), where, 'finalTargets must be token ids or null');
  }
  return v as unknown as BundleBatch;
}

/**
 * Reads a bundle from its files (a folder or a zip, names relative to its root; a single top folder
 * is looked through) and checks it: the format and version, every file run.json lists, each JSONL
 * line, and that every adapter fits the base. Throws RunBundleError naming the file and what is wrong.
 * A bundle that references its base (files.baseRef) needs `opts.base`: its files as resolveBundleBase
 * (base-ref.ts) fetched and checked them against the recorded digests.
 */
export function readRunBundle(input: ReadonlyMap<string, Uint8Array>, opts: { base?: FileMap } = {}): RunBundleContent & { json: RunBundleJson } {
  let files = input;
  if (!files.has(RUN_FILE)) {
    const tops = new Set([...files.keys()].map((k) => k.split('/')[0]));
    const top = [...tops].find((t) => files.has(`${t}/${RUN_FILE}`));
    need(top !== undefined, RUN_FILE, 'not found: this is not a run bundle');
    const inner: FileMap = new Map();
    for (const [k, v] of files) if (k.startsWith(`${top}/`)) inner.set(k.slice(top.length + 1), v);
    files = inner;
  }
  let json: unknown;
  try {
    json = JSON.parse(dec.decode(files.get(RUN_FILE)!));
  } catch (e) {
    throw new RunBundleError(`${RUN_FILE} is not JSON: ${(e as Error).message}`);
  }
  need(isObj(json), RUN_FILE, 'not a JSON object');
  need(json.format === RUN_BUNDLE_FORMAT, RUN_FILE, `format is ${JSON.stringify(json.format)}, not ${JSON.stringify(RUN_BUNDLE_FORMAT)}`);
  need(isInt(json.version), RUN_FILE, 'version is not an integer');
  need(json.version <= BASE_REF_VERSION, RUN_FILE, `version ${json.version} was written by a newer playground (this one reads versions up to ${BASE_REF_VERSION})`);
  need(json.version >= 1, RUN_FILE, `version ${json.version} is not a bundle version`);
  const c = json.config;
  need(isObj(c) && typeof c.task === 'string' && typeof c.method === 'string' && isObj(c.topology) && isInt(c.seed), RUN_FILE, 'config is not a run configuration (task, method, topology, seed)');
  need(Array.isArray(json.agents) && json.agents.length > 0, RUN_FILE, 'agents must be a non-empty list');
  const agents = json.agents as BundleAgent[];
  for (const a of agents) need(isObj(a) && typeof a.id === 'string' && typeof a.final === 'boolean' && Array.isArray(a.predecessors), RUN_FILE, 'each agent needs id, final and predecessors');
  need(agents.filter((a) => a.final).length === 1 && agents[agents.length - 1].final, RUN_FILE, 'exactly one final agent, listed last');
  const f = json.files;
  need(isObj(f) && (typeof f.base === 'string' || (f.base === null && f.baseRef !== undefined)) && isObj(f.adapters) && isObj(f.initialAdapters) && isObj(f.episodes), RUN_FILE, 'files must say where the base, adapters and episodes are');
  // every path inside the bundle, every adapter key a folder name (bundle-paths.ts: the companion's rule too)
  for (const group of ['adapters', 'initialAdapters'] as const) {
    for (const k of Object.keys(f[group] as object)) {
      const problem = bundleKeyProblem(k);
      if (problem) throw new RunBundleError(bundlePathMessage(`files.${group} key`, k, problem));
    }
  }
  for (const [where, p] of bundlePaths(f)) {
    const problem = bundlePathProblem(p);
    if (problem) throw new RunBundleError(bundlePathMessage(where, p, problem));
  }
  const meta = { ...json } as Partial<RunBundleJson>;
  delete meta.format;
  delete meta.version;
  delete meta.files;

  // a referenced base: checked here as a held one is, once the caller resolved and verified it
  let base: FileMap;
  let baseWhere: string;
  if (typeof f.base === 'string') {
    need(f.baseRef === undefined, RUN_FILE, 'files.base and files.baseRef: a bundle holds its base or references it, not both');
    base = folder(files, f.base);
    baseWhere = f.base;
  } else {
    const ref = checkBaseRef(f.baseRef);
    need(opts.base, RUN_FILE, `the base is referenced (${ref.source} ${ref.id}${ref.revision ? `@${ref.revision}` : ''}, sha256 ${ref.sha256}), not held: resolve it first (resolveBundleBase, src/storage/base-ref.ts)`);
    base = opts.base;
    baseWhere = `the referenced base (${ref.source} ${ref.id})`;
  }
  for (const n of [CONFIG_FILE, TOKENIZER_FILE]) need(base.has(n), `${baseWhere}/${n}`, 'missing');
  need(base.has(WEIGHTS_FILE) || base.has(WEIGHTS_INDEX_FILE), `${baseWhere}/${WEIGHTS_FILE}`, 'missing');
  let baseConfig;
  try {
    baseConfig = validateConfig(JSON.parse(dec.decode(base.get(CONFIG_FILE)!)));
  } catch (e) {
    throw new RunBundleError(`${baseWhere}/${CONFIG_FILE}: ${(e as Error).message}`);
  }
  const readAdapters = (list: Record<string, unknown>): Record<string, FileMap> => {
    const out: Record<string, FileMap> = {};
    for (const [key, p] of Object.entries(list)) {
      need(typeof p === 'string', RUN_FILE, `the folder of adapter ${key} is not a path`);
      const fm = folder(files, p);
      try {
        decodeAdapter(fm, baseConfig);
        slotOffsetOfFiles(fm, baseConfig.hidden_size);
      } catch (e) {
        throw new RunBundleError(`${p}: ${(e as Error).message}`);
      }
      out[key] = fm;
    }
    return out;
  };
  const adapters = readAdapters(f.adapters as Record<string, unknown>);
  const initialAdapters = readAdapters(f.initialAdapters as Record<string, unknown>);
  for (const a of agents) {
    if (a.adapterKey !== null) need(a.adapterKey in adapters || !Object.keys(adapters).length, RUN_FILE, `agent ${a.id} uses adapter ${a.adapterKey}, which is not in files.adapters`);
  }

  let latentMap: BundleLatentMap | null = null;
  if (f.latentMap !== null && f.latentMap !== undefined) {
    need(typeof f.latentMap === 'string', RUN_FILE, 'files.latentMap is not a path');
    const b = files.get(f.latentMap);
    need(b, f.latentMap, 'missing');
    let st;
    try {
      st = decodeSafetensors(b);
    } catch (e) {
      throw new RunBundleError(`${f.latentMap}: ${(e as Error).message}`);
    }
    const md = st.metadata ?? {};
    const D = Number(md.D);
    const tn = st.tensors.get('target_norm');
    need(md.kind === 'ridge' || md.kind === 'identity', f.latentMap, `kind ${JSON.stringify(md.kind)} is not ridge or identity`);
    need(isInt(D) && D > 0 && tn && tn.data.length === 1, f.latentMap, 'needs D and target_norm');
    const wa = st.tensors.get('W_a');
    need(md.kind === 'identity' || (wa && wa.data.length === D * D), f.latentMap, `a ridge map needs W_a of ${D} x ${D}`);
    // the metadata keeps the norm in full precision; the tensor holds it as float32
    const norm = Number(md.target_norm);
    latentMap = { kind: md.kind as 'ridge' | 'identity', D, lambda: Number(md.lambda), targetNorm: Number.isFinite(norm) ? norm : tn.data[0], Wa: wa ? wa.data : null };
  }

  let fuser: Uint8Array | null = null;
  if (f.fuser !== undefined) {
    need(typeof f.fuser === 'string', RUN_FILE, 'files.fuser is not a path');
    const b = files.get(f.fuser);
    need(b, f.fuser, 'missing (run.json lists it)');
    try {
      decodeFuserFile(b);
    } catch (e) {
      throw new RunBundleError(`${f.fuser}: ${(e as Error).message}`);
    }
    fuser = b;
  }
  const meth = (json as Record<string, unknown>).method;
  const steps = isObj(json.training) ? json.training.stepsDone : 0;
  need(!(isObj(meth) && meth.train === 'fuser' && isInt(steps) && steps > 0 && !fuser), RUN_FILE, `a c2c run trained ${String(steps)} steps, but files.fuser names no ${FUSER_FILE}`);

  const episodes: Partial<Record<Split, BundleEpisode[]>> = {};
  for (const [split, e] of Object.entries(f.episodes as Record<string, unknown>)) {
    need((SPLIT_NAMES as readonly string[]).includes(split), RUN_FILE, `unknown split ${JSON.stringify(split)} in files.episodes`);
    need(isObj(e) && typeof e.path === 'string' && isInt(e.count), RUN_FILE, `files.episodes.${split} needs path and count`);
    episodes[split as Split] = readLines(files, e.path, e.count).map((v, i) => checkEpisode(v, `${e.path} line ${i + 1}`, split as Split, agents.length));
  }
  let batches: BundleBatch[] = [];
  if (f.batches !== null && f.batches !== undefined) {
    need(isObj(f.batches) && typeof f.batches.path === 'string' && isInt(f.batches.count), RUN_FILE, 'files.batches needs path and count');
    const p = f.batches.path;
    batches = readLines(files, p, f.batches.count).map((v, i) => checkBatch(v, `${p} line ${i + 1}`, agents.length));
  }
  return { json: json as unknown as RunBundleJson, meta: meta as RunBundleMeta, base, adapters, initialAdapters, latentMap, episodes, batches, ...(fuser ? { fuser } : {}) };
}

/** Whether a file map holds a run bundle (run.json at its root, or in its one top folder). */
export function isRunBundle(files: ReadonlyMap<string, Uint8Array>): boolean {
  if (files.has(RUN_FILE)) return true;
  return [...files.keys()].some((k) => /^[^/]+\/run\.json$/.test(k));
}
