// A run bundle (docs/run-bundle.md) read back as a run record of the library, so that a run exported
// from the page (its zip holds results/record.json beside the bundle) or written by
// `npm run experiment -- --export-run DIR` opens in the page's Runs list like one made there.
// Plain data: the worker finds or stores the base model and saves the record.
import type { LlamaConfig } from '../model/config';
import { decodeFuserFile } from '../storage/c2c-fuser';
import { decodeAdapter } from '../storage/peft';
import { slotOffsetOfFiles } from '../storage/slot-offset';
import { adapterInfo, RECORD_FILE, type AdapterData, type EvalRowCi, type RunRecord, type RunRecordStatus, type StoredInspection } from '../storage/records';
import { readRunBundle, RunBundleError, type RunBundleContent, type RunBundleJson } from '../storage/run-bundle';
import { readNotesAndTags } from '../storage/runs-table';
import { wilson95 } from './base-eval';

const STATUSES: readonly RunRecordStatus[] = ['running', 'paused', 'done', 'stopped', 'error', 'interrupted'];
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const numOrNull = (v: unknown): v is number | null => v === null || isNum(v);

function bad(what: string): never {
  throw new RunBundleError(`${RECORD_FILE}: ${what}`);
}

/** The bundle's files with the one top folder looked through (as readRunBundle does), for the extras beside it. */
function rootOf(files: ReadonlyMap<string, Uint8Array>): string {
  if (files.has('run.json')) return '';
  const top = [...files.keys()].find((k) => /^[^/]+\/run\.json$/.test(k));
  return top ? top.slice(0, top.indexOf('/') + 1) : '';
}

function adaptersOf(folders: Record<string, Map<string, Uint8Array>>, base: LlamaConfig): AdapterData[] {
  return Object.entries(folders).map(([key, files]) => {
    const a = decodeAdapter(files, base);
    const slotOffset = slotOffsetOfFiles(files, base.hidden_size);
    return { agent: key, config: a.config, tensors: a.tensors, ...(slotOffset ? { slotOffset } : {}) };
  });
}

const floats = (v: unknown, what: string): Float32Array => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) bad(`${what} is not a list of numbers`);
  return Float32Array.from(v as number[]);
};

/** The inspections of a record as the page's export wrote them (typed arrays as lists), checked and made typed again. */
function inspectionsOf(v: unknown): StoredInspection[] {
  if (!Array.isArray(v)) bad('inspections is not a list');
  return v.map((ins, i) => {
    const at = `inspection ${i + 1}`;
    if (!isObj(ins) || (ins.which !== 'before' && ins.which !== 'after') || !isNum(ins.step) || !isObj(ins.result)) bad(`${at} needs which, step and result`);
    const r = ins.result;
    if (!Array.isArray(r.edges) || !Array.isArray(r.agents) || !Array.isArray(r.parts)) bad(`${at} needs agents, edges and parts`);
    const edges = r.edges.map((e, j) => {
      if (!isObj(e) || !isNum(e.layers) || !isNum(e.heads) || !Array.isArray(e.senderPositions) || !Array.isArray(e.receiverTokens)) bad(`${at}, edge ${j + 1} is not an edge inspection`);
      const attention = floats(e.attention, `${at}, edge ${j + 1} attention`);
      const keyNorms = floats(e.keyNorms, `${at}, edge ${j + 1} keyNorms`);
      const valueNorms = floats(e.valueNorms, `${at}, edge ${j + 1} valueNorms`);
      const cells = e.layers * e.heads * e.receiverTokens.length * e.senderPositions.length;
      if (attention.length !== cells) bad(`${at}, edge ${j + 1} attention has ${attention.length} values, its shape needs ${cells}`);
      if (keyNorms.length !== e.layers * e.senderPositions.length || valueNorms.length !== keyNorms.length) bad(`${at}, edge ${j + 1} norms do not fit its shape`);
      return { ...e, attention, keyNorms, valueNorms };
    });
    return { which: ins.which, step: ins.step, result: { ...r, edges } } as StoredInspection;
  });
}

function evalRowsOf(rows: unknown, what: string): EvalRowCi[] {
  if (!Array.isArray(rows)) bad(`${what} is not a list`);
  return rows.map((r, i) => {
    if (!isObj(r) || typeof r.split !== 'string' || !isNum(r.accuracy) || !isNum(r.episodes)) throw new RunBundleError(`${what} row ${i + 1} needs split, accuracy and episodes`);
    const ci = Array.isArray(r.ci95) && r.ci95.length === 2 && r.ci95.every(isNum) ? (r.ci95 as [number, number]) : null;
    return { ...(r as unknown as EvalRowCi), ci95: ci ?? (r.episodes > 0 ? wilson95(Math.round(r.accuracy * r.episodes), r.episodes) : null) };
  });
}

export interface ImportedRun {
  record: RunRecord;
  /** The bundle's base model files (bare names), for the library to find or store. */
  baseFiles: Map<string, Uint8Array>;
  json: RunBundleJson;
}

/**
 * Reads a bundle (and the page's record beside it, when there is one) as a run record. `baseModelId`
 * is filled in by the caller once it has found or stored the base; `id` is the record's own for a page
 * export (a re-import is then recognised) and `fallbackId` otherwise.
 */
export function runRecordFromBundle(
  files: ReadonlyMap<string, Uint8Array>, baseConfig: (base: Map<string, Uint8Array>) => LlamaConfig,
  opts: { fallbackId: string; label: string; now: number; /** a referenced base (files.baseRef), resolved and digest-checked (src/storage/base-ref.ts) */ base?: Map<string, Uint8Array> },
): ImportedRun {
  const content: RunBundleContent & { json: RunBundleJson } = readRunBundle(files, opts.base ? { base: opts.base } : {});
  const { meta, json } = content;
  const config = meta.config;
  const base = baseConfig(content.base);
  const initial = adaptersOf(content.initialAdapters, base);
  const trained = meta.training.stepsDone > 0 ? adaptersOf(content.adapters, base) : [];
  // c2c: its trained fuser (c2c_fuser.safetensors) goes where adapters would
  const fuser = content.fuser ? decodeFuserFile(content.fuser).weights : null;
  const recBytes = files.get(rootOf(files) + RECORD_FILE);
  const imported = `imported from ${opts.label || 'a run bundle'} (made by the ${meta.createdBy} on ${meta.createdAt.slice(0, 10)})`;

  if (recBytes) {
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(recBytes));
    } catch (e) {
      bad(`not JSON: ${(e as Error).message}`);
    }
    if (!isObj(raw)) bad('not a JSON object');
    if (raw.kind !== 'run') bad(`kind is ${JSON.stringify(raw.kind)}; only a run's record reads back with its bundle`);
    if (typeof raw.id !== 'string' || !/^[\w:.-]{1,100}$/.test(raw.id)) bad('id is not a record id');
    if (!isObj(raw.config) || JSON.stringify(raw.config) !== JSON.stringify(config)) bad("config is not the bundle's run configuration (run.json): the files come from different runs");
    if (typeof raw.status !== 'string' || !STATUSES.includes(raw.status as RunRecordStatus)) bad(`status ${JSON.stringify(raw.status)} is not a run status`);
    const c = raw.curves;
    if (!isObj(c) || !Array.isArray(c.steps) || !Array.isArray(c.loss) || !Array.isArray(c.evals) || c.steps.length !== c.loss.length) bad('curves needs steps and loss of one length, and evals');
    if (!c.steps.every(isNum) || !c.loss.every((x) => x === null || typeof x === 'number')) bad('curves.steps and curves.loss must be numbers');
    const evals = c.evals.map((e, i) => {
      if (!isObj(e) || !isNum(e.step) || !numOrNull(e.loss) || !numOrNull(e.accuracy)) bad(`curves.evals point ${i + 1} needs step, loss and accuracy`);
      return { step: e.step, loss: e.loss, accuracy: e.accuracy };
    });
    const num = (k: string) => (isNum(raw[k]) ? (raw[k] as number) : bad(`${k} is not a number`));
    const ad = isObj(raw.adapters) ? raw.adapters : bad('adapters is missing');
    const saved = Array.isArray(ad.saved) ? ad.saved.filter((s): s is { id: string; name: string } => isObj(s) && typeof s.id === 'string' && typeof s.name === 'string') : [];
    const hadFinal = Array.isArray(ad.final) && ad.final.length > 0;
    const final = hadFinal ? trained : [];
    const status = raw.status === 'running' || raw.status === 'paused' ? 'stopped' : (raw.status as RunRecordStatus);
    let notesTags: ReturnType<typeof readNotesAndTags>;
    try {
      notesTags = readNotesAndTags(raw, RECORD_FILE);
    } catch (e) {
      throw new RunBundleError((e as Error).message);
    }
    const record: RunRecord = {
      id: raw.id, kind: 'run', name: typeof raw.name === 'string' && raw.name ? raw.name : opts.label || 'imported run',
      createdAt: num('createdAt'), updatedAt: num('updatedAt'), status, config, baseModelId: '',
      ...(typeof raw.baseName === 'string' ? { baseName: raw.baseName } : {}),
      curves: { steps: c.steps as number[], loss: c.loss as number[], evals },
      evalRows: raw.evalRows === null || raw.evalRows === undefined ? null : evalRowsOf(raw.evalRows, `${RECORD_FILE} evalRows`),
      inspections: inspectionsOf(raw.inspections ?? []),
      adapters: {
        initial, final, finalStep: hadFinal || fuser ? (isNum(ad.finalStep) ? ad.finalStep : meta.training.stepsDone) : null, ...(fuser ? { fuser } : {}),
        // the library ids of adapters saved in another browser mean nothing here: kept as names only
        saved: [], info: adapterInfo(final.length ? final : initial),
      },
      ...(isObj(raw.loadedFrom) && typeof raw.loadedFrom.name === 'string' ? { loadedFrom: { name: raw.loadedFrom.name, ids: [] } } : {}),
      wallSeconds: num('wallSeconds'), trainSeconds: num('trainSeconds'), stepsDone: num('stepsDone'),
      message: [typeof raw.message === 'string' ? raw.message : '', imported, saved.length ? `it saved the adapters ${saved.map((s) => `'${s.name}'`).join(', ')} there` : '']
        .filter(Boolean).join('; '),
      ...(typeof raw.device === 'string' ? { device: raw.device } : {}),
      ...notesTags,
    };
    return { record, baseFiles: content.base, json };
  }

  // a bundle alone (the CLI's --export-run): its curves, final evaluation and adapters
  const steps = meta.training.stepsDone;
  const controls = meta.results.controls ?? [];
  const record: RunRecord = {
    id: opts.fallbackId, kind: 'run', name: opts.label || `${config.task} d${config.difficulty} · ${config.method} · seed ${config.seed}`,
    createdAt: Date.parse(meta.createdAt) || opts.now, updatedAt: opts.now, status: steps >= config.steps || !(trained.length || fuser) ? 'done' : 'stopped', config, baseModelId: '',
    ...(meta.base.name ? { baseName: meta.base.name } : {}),
    curves: { steps: meta.training.losses.map((_, i) => i + 1), loss: meta.training.losses.slice(), evals: meta.results.heldout.map((e) => ({ step: e.step, loss: e.loss, accuracy: e.accuracy })) },
    evalRows: meta.results.evaluation.length ? evalRowsOf(meta.results.evaluation, 'run.json results.evaluation') : null,
    inspections: [],
    adapters: { initial, final: trained, finalStep: trained.length || fuser ? steps : null, ...(fuser ? { fuser } : {}), saved: [], info: adapterInfo(trained.length ? trained : initial) },
    wallSeconds: meta.wallSeconds ?? 0, trainSeconds: meta.wallSeconds ?? 0, stepsDone: steps,
    message: [imported, controls.length ? `controls on heldout: ${controls.map((x) => `${x.control} ${x.accuracy.toFixed(3)}`).join(', ')}` : ''].filter(Boolean).join('; '),
  };
  return { record, baseFiles: content.base, json };
}
