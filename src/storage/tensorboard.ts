// TensorBoard event files of runs (issue 21 item 7): the page's run export and `experiment
// --tensorboard DIR` write them, so `tensorboard --logdir` and W&B's TensorBoard sync read a run. Written
// by hand in plain TS (TFRecord framing, CRC-32C, the few protobuf fields of an Event) because no npm
// package writes event files in the browser and Node alike without TensorFlow.js or a protobuf runtime.
// Plain data in, bytes out: no DOM, no GPU, no file system. tensorboard-read.ts reads them back (tests).
//
// The layout, shared with the PyTorch companion's writer (both follow it exactly):
// - One run folder per method and seed: `<logdir>/<method>/seed<seed>/` holding one
//   `events.out.tfevents.<unix-seconds>.<host>.<pid-or-tag>` file (a TFRecord stream of Event protos,
//   the first event `file_version: "brain.Event:2"`).
// - Scalars (simple_value, float32), step = the training step (1-based step count after the update):
//   - `train/loss` every logged step; `train/lr`; `train/grad_norm` where known;
//   - `eval/<split>/accuracy` and `eval/<split>/loss` (split: train, heldout, ood) at each evaluation;
//   - `control/<control>/<split>/accuracy` (control: shuffle, zero, noise, rotate, permute) at the final step.
//   - the companion also writes `perf/seconds_per_step` and `perf/tokens_per_second`.
// - Text: tag `config` at step 0, the RunConfig as JSON in a markdown code block (plugin_name "text",
//   a string tensor, as torch.utils.tensorboard's add_text writes it).
//
// The config's tag is `config/text_summary`: torch's add_text("config", ...), which the companion calls
// (python/latent_playground/tb.py), stores it under that name, so both writers' runs show one tag.
//
// What the engine knows: its records keep no gradient norm (so no train/grad_norm), and no clock per
// step, so an event's wall_time is the run's start plus its training seconds spread evenly over its
// steps (TensorBoard's "relative" axis then shows the mean pace). Events are written in step order:
// TensorBoard's reader drops what it already holds at or after a step it sees again (a "restart").
import { maskedCrc32c } from './crc32c';
import { bundlePathProblem } from './bundle-paths';
import type { RunRecord } from './records';
import type { ExperimentReport, MethodName, RunConfig } from '../mas/run-types';

export const FILE_VERSION = 'brain.Event:2';
/** The tag of the config text: add_text("config", ...) appends "/text_summary". */
export const CONFIG_TAG = 'config/text_summary';
/** The folder of the page's run zip that holds the event files. */
export const TENSORBOARD_DIR = 'tensorboard';

export interface TbScalar {
  tag: string;
  step: number;
  value: number;
  /** Unix seconds. */
  wallTime: number;
}

/** One run folder's content: its config (the text event) and its scalars in any order. */
export interface TbRun {
  method: string;
  seed: number;
  config: RunConfig;
  /** Unix seconds of the run's start: the file name's, and the wall_time of the step-0 events. */
  startSeconds: number;
  scalars: TbScalar[];
}

/** One Event: the file version, one scalar, or one text. */
export type TbEvent = { wallTime: number; step: number } & (
  | { fileVersion: string }
  | { scalar: { tag: string; value: number } }
  | { text: { tag: string; text: string } }
);

/** The learning rate of a run's config at a 1-based step (the caller's schedule: src/mas/run-data.ts trainHyperOf with src/model/train.ts lrAt). */
export type LrOf = (config: RunConfig, step: number) => number;

export class TensorboardError extends Error {
  constructor(message: string) {
    super(`tensorboard: ${message}`);
    this.name = 'TensorboardError';
  }
}

// ---------------------------------------------------------------- protobuf, the few fields used

const enc = new TextEncoder();

/** Bytes of a protobuf message, fields appended in field-number order (as protobuf serialises them). */
class Proto {
  private readonly bytes: number[] = [];
  private varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new TensorboardError(`cannot encode ${n} as a varint`);
    while (n >= 0x80) {
      this.bytes.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.bytes.push(n);
  }
  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  int(field: number, n: number): this {
    this.key(field, 0);
    this.varint(n);
    return this;
  }
  double(field: number, x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, true);
    this.key(field, 1);
    this.bytes.push(...b);
    return this;
  }
  float(field: number, x: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.key(field, 5);
    this.bytes.push(...b);
    return this;
  }
  raw(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(b.length);
    for (const x of b) this.bytes.push(x);
    return this;
  }
  str(field: number, s: string): this {
    return this.raw(field, enc.encode(s));
  }
  msg(field: number, m: Proto): this {
    return this.raw(field, m.done());
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const DT_STRING = 7;

/**
 * An Event proto (tensorboard/compat/proto/event.proto): wall_time 1 (double), step 2 (int64),
 * file_version 3, summary 5 { value 1 { tag 1, simple_value 2 (float), tensor 8, metadata 9 } }.
 * proto3 leaves out zero wall_time and step; simple_value is in a oneof, so 0 is written.
 */
export function encodeEvent(e: TbEvent): Uint8Array {
  if (!Number.isSafeInteger(e.step) || e.step < 0) throw new TensorboardError(`step ${e.step} is not a whole number >= 0`);
  if (!Number.isFinite(e.wallTime)) throw new TensorboardError(`wall time ${e.wallTime} is not a number`);
  const p = new Proto();
  if (e.wallTime !== 0) p.double(1, e.wallTime);
  if (e.step !== 0) p.int(2, e.step);
  if ('fileVersion' in e) return p.str(3, e.fileVersion).done();
  const value = new Proto();
  if ('scalar' in e) value.str(1, e.scalar.tag).float(2, e.scalar.value);
  else {
    // as torch.utils.tensorboard.summary.text: a DT_STRING tensor of shape [1], plugin "text" (TextPluginData version 0: no content)
    const shape = new Proto().msg(2, new Proto().int(1, 1));
    const tensor = new Proto().int(1, DT_STRING).msg(2, shape).str(8, e.text.text);
    const metadata = new Proto().msg(1, new Proto().str(1, 'text'));
    value.str(1, e.text.tag).msg(8, tensor).msg(9, metadata);
  }
  return p.msg(5, new Proto().msg(1, value)).done();
}

/** One TFRecord: uint64 length, masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the data (little-endian). */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 16);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length >>> 0, true);
  v.setUint32(4, Math.floor(data.length / 2 ** 32), true);
  v.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  v.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

// ---------------------------------------------------------------- a run's event file

/** The config text event's content: the RunConfig as JSON in a markdown code block. */
export function configText(config: RunConfig): string {
  return '```json\n' + JSON.stringify(config, null, 2) + '\n```';
}

/** The events of a run in the order written: file version, config, then the scalars by step (stable). */
export function runEvents(run: TbRun): TbEvent[] {
  const t0 = run.startSeconds;
  const scalars = run.scalars.map((s, i) => ({ s, i })).sort((a, b) => a.s.step - b.s.step || a.i - b.i);
  return [
    { wallTime: t0, step: 0, fileVersion: FILE_VERSION },
    { wallTime: t0, step: 0, text: { tag: CONFIG_TAG, text: configText(run.config) } },
    ...scalars.map(({ s }) => ({ wallTime: s.wallTime, step: s.step, scalar: { tag: s.tag, value: s.value } })),
  ];
}

/** The bytes of a run's event file. */
export function eventFileBytes(run: TbRun): Uint8Array {
  const records = runEvents(run).map((e) => frameRecord(encodeEvent(e)));
  const out = new Uint8Array(records.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of records) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/** `events.out.tfevents.<unix-seconds>.<host>.<tag>`, host and tag cut to letters, digits, . _ - so the name is one path segment of at most 64 characters. */
export function eventFileName(startSeconds: number, host: string, tag: string): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'x';
  const head = `events.out.tfevents.${Math.floor(startSeconds)}.`;
  const t = clean(tag).slice(0, 16);
  return `${head}${clean(host).slice(0, Math.max(1, 64 - head.length - t.length - 1))}.${t}`;
}

/**
 * The files of the layout, by path relative to the logdir (`<prefix><method>/seed<seed>/events...`).
 * A method name that is not a safe folder name (an imported record's) or a (method, seed) given twice is refused.
 */
export function tensorboardFiles(runs: readonly TbRun[], opts: { host: string; tag: string; prefix?: string }): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const seen = new Set<string>();
  for (const run of runs) {
    if (!Number.isSafeInteger(run.seed) || run.seed < 0) throw new TensorboardError(`seed ${run.seed} of ${run.method} is not a whole number >= 0`);
    const folder = `${run.method}/seed${run.seed}`;
    const problem = bundlePathProblem(folder);
    if (problem) throw new TensorboardError(`the run folder ${JSON.stringify(folder)} ${problem}`);
    if (seen.has(folder)) throw new TensorboardError(`${folder} is given twice`);
    seen.add(folder);
    out.set(`${opts.prefix ?? ''}${folder}/${eventFileName(run.startSeconds, opts.host, opts.tag)}`, eventFileBytes(run));
  }
  return out;
}

// ---------------------------------------------------------------- runs from records and reports

/** Scalars with one value per (tag, step): a later value replaces an earlier one. */
class Scalars {
  private readonly byKey = new Map<string, TbScalar>();
  constructor(private readonly wallOf: (step: number) => number) {}
  add(tag: string, step: number, value: number | null | undefined): void {
    if (value === null || value === undefined) return;
    this.byKey.set(`${tag}\u0000${step}`, { tag, step, value, wallTime: this.wallOf(step) });
  }
  list(): TbScalar[] {
    return [...this.byKey.values()];
  }
}

/** wall_time of a step: the start plus training seconds spread evenly over `steps`. */
const paced = (start: number, seconds: number, steps: number) => (step: number) => start + (steps > 0 ? (seconds * Math.min(step, steps)) / steps : 0);

/**
 * The runs of a page record: a training run gives one (its curves, the held-out evaluations made
 * during training, and "Evaluate all splits" at its last step, which wins over a held-out point of
 * the same step); a comparison gives one per method and seed of its report.
 */
export function recordRuns(rec: RunRecord, opts: { lrOf?: LrOf } = {}): TbRun[] {
  const start = rec.createdAt / 1000;
  if (rec.kind === 'compare') {
    const c = rec.compare;
    if (!c?.report) return [];
    const base = c.request.base;
    return reportRuns(c.report, { configOf: (method, seed) => ({ ...base, method, seed }), startSeconds: start, lrOf: opts.lrOf });
  }
  const { steps, loss, evals } = rec.curves;
  const s = new Scalars(paced(start, rec.trainSeconds, rec.stepsDone));
  steps.forEach((step, i) => {
    s.add('train/loss', step, loss[i]);
    if (opts.lrOf) s.add('train/lr', step, opts.lrOf(rec.config, step));
  });
  for (const e of evals) {
    s.add('eval/heldout/accuracy', e.step, e.accuracy);
    s.add('eval/heldout/loss', e.step, e.loss);
  }
  for (const r of rec.evalRows ?? []) {
    s.add(`eval/${r.split}/accuracy`, rec.stepsDone, r.accuracy);
    s.add(`eval/${r.split}/loss`, rec.stepsDone, r.loss);
  }
  return [{ method: rec.config.method, seed: rec.config.seed, config: rec.config, startSeconds: start, scalars: s.list() }];
}

/**
 * The runs of an experiment report (`experiment --json`, or a page comparison): per method and seed,
 * the training loss of every step, the evaluations and the controls at the final step (the steps
 * trained; 0 for a training-free method).
 */
export function reportRuns(report: ExperimentReport, opts: { configOf: (method: MethodName, seed: number) => RunConfig; startSeconds: number; lrOf?: LrOf }): TbRun[] {
  const pairs = [...new Map(report.rows.map((r) => [`${r.method}:${r.seed}`, { method: r.method, seed: r.seed }])).values()];
  return pairs.map(({ method, seed }) => {
    const config = opts.configOf(method, seed);
    const rows = report.rows.filter((r) => r.method === method && r.seed === seed);
    const losses = report.curves?.find((c) => c.method === method && c.seed === seed)?.losses ?? [];
    const last = losses.length;
    const s = new Scalars(paced(opts.startSeconds, rows[0]?.trainSeconds ?? 0, last));
    losses.forEach((l, i) => {
      s.add('train/loss', i + 1, l);
      if (opts.lrOf) s.add('train/lr', i + 1, opts.lrOf(config, i + 1));
    });
    for (const r of rows) {
      s.add(`eval/${r.split}/accuracy`, last, r.accuracy);
      s.add(`eval/${r.split}/loss`, last, r.loss);
    }
    for (const c of report.controls) if (c.method === method && c.seed === seed) s.add(`control/${c.control}/heldout/accuracy`, last, c.accuracy);
    return { method, seed, config, startSeconds: opts.startSeconds, scalars: s.list() };
  });
}
