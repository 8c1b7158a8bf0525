// TensorBoard event files (src/storage/tensorboard.ts): CRC-32C against published vectors, the bytes
// of an event file against those the tensorboard package's own writer makes for the same events, the
// framing's checks, and a round trip through the TS reader of runs made from records and reports,
// awkward values included (NaN, negative, 0, huge, empty curves). python/tests/test_tensorboard_engine.py
// reads the fixture's files with TensorBoard's own reader.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { trainHyperOf } from '../src/mas/run-data';
import type { ExperimentReport, RunConfig } from '../src/mas/run-types';
import { lrAt } from '../src/model/train';
import { crc32c, maskedCrc32c } from '../src/storage/crc32c';
import type { RunRecord } from '../src/storage/records';
import {
  CONFIG_TAG, configText, encodeEvent, eventFileBytes, eventFileName, frameRecord, recordRuns, reportRuns, runEvents, tensorboardFiles, type TbEvent, type TbRun,
} from '../src/storage/tensorboard';
import { readEventFile, readRecords, scalarsByTag, type ReadEvent } from '../src/storage/tensorboard-read';

const enc = new TextEncoder();
const f32 = (x: number) => Math.fround(x);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const { records } = JSON.parse(readFileSync('tests/fixtures/tensorboard-records.json', 'utf8')) as { records: RunRecord[] };
const lrOf = (c: RunConfig, step: number) => lrAt(step, trainHyperOf(c));

function filesOf(runs: TbRun[]): Map<string, ReadEvent[]> {
  return new Map([...tensorboardFiles(runs, { host: 'host', tag: '1' })].map(([k, v]) => [k, readEventFile(v)]));
}

describe('crc32c', () => {
  it('gives the published CRC-32C check values (RFC 3720 B.4 and the "123456789" check)', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(enc.encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });
  it('masks as TensorFlow does: rotate right by 15, add 0xa282ead8', () => {
    const c = 0xe3069283;
    expect(maskedCrc32c(enc.encode('123456789'))).toBe(((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) % 2 ** 32);
    expect(maskedCrc32c(new Uint8Array(0))).toBe(0xa282ead8);
  });
});

describe('event file bytes', () => {
  // Made by tensorboard 2.21's RecordWriter over Event protos serialised by protobuf: the file version;
  // torch.utils.tensorboard.summary.text('config', ...) as add_text writes it; scalars at steps 3
  // and 300 (a two-byte varint), one of them 0.0 (written: simple_value is in a oneof), one negative.
  const PYTHON = '1800000000000000a37f4b220900002040fc54d9411a0d627261696e2e4576656e743a322b3531104c00000000000000f5d4a2a00900002040fc54d9412a410a3f0a13636f6e6669672f746578745f73756d6d617279421e080712041202080142146060606a736f6e0a7b2261223a20317d0a6060604a080a060a04746578741362895d200000000000000029eda9500900005040fc54d94110032a130a110a0a747261696e2f6c6f7373150000803ec7fb3fdd2c00000000000000f4aecc450900008040fc54d94110ac022a1e0a1c0a156576616c2f68656c646f75742f6163637572616379150000000084d8e9e71800000000000000a37f4b220900008040fc54d94110ac022a0a0a080a0178150000c0bf2d6dc048';
  const events: TbEvent[] = [
    { wallTime: 1700000000.5, step: 0, fileVersion: 'brain.Event:2' },
    { wallTime: 1700000000.5, step: 0, text: { tag: CONFIG_TAG, text: '```json\n{"a": 1}\n```' } },
    { wallTime: 1700000001.25, step: 3, scalar: { tag: 'train/loss', value: 0.25 } },
    { wallTime: 1700000002, step: 300, scalar: { tag: 'eval/heldout/accuracy', value: 0 } },
    { wallTime: 1700000002, step: 300, scalar: { tag: 'x', value: -1.5 } },
  ];
  it('equal those of the tensorboard package for the same events', () => {
    expect(hex(Uint8Array.from(events.flatMap((e) => [...frameRecord(encodeEvent(e))])))).toBe(PYTHON);
  });
  it('read back: each record, both CRCs checked; a flipped byte or a cut file is an error naming the record', () => {
    const bytes = Uint8Array.from(Buffer.from(PYTHON, 'hex'));
    const back = readEventFile(bytes);
    expect(back.map((e) => e.step)).toEqual([0, 0, 3, 300, 300]);
    expect(back[0]).toMatchObject({ wallTime: 1700000000.5, fileVersion: 'brain.Event:2' });
    expect(back[1].values[0]).toMatchObject({ tag: 'config/text_summary', pluginName: 'text', tensor: { dtype: 7, shape: [1], strings: ['```json\n{"a": 1}\n```'] } });
    expect(back[4].values[0]).toEqual({ tag: 'x', simpleValue: -1.5 });
    const n = readRecords(bytes).length;
    for (const at of [3, 9, 20, bytes.length - 2]) {
      const bad = bytes.slice();
      bad[at] ^= 0x10;
      expect(() => readRecords(bad), `byte ${at}`).toThrow(/record 1: the (length|data)'s CRC|record \d+: .*(CRC|announced)/);
    }
    expect(() => readRecords(bytes.subarray(0, bytes.length - 1))).toThrow(new RegExp(`record ${n}: \\d+ bytes announced`));
    expect(() => readRecords(bytes.subarray(0, 5))).toThrow(/record 1: the header is cut short/);
    expect(readRecords(new Uint8Array(0))).toEqual([]);
  });
  it('frames a record longer than 127 bytes (a multi-byte length) and an empty one', () => {
    for (const n of [0, 1, 200, 70_000]) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
      const [back] = readRecords(frameRecord(data));
      expect(hex(back)).toBe(hex(data));
    }
  });
  it('refuses a step that is not a whole number >= 0 and a wall time that is not a number', () => {
    expect(() => encodeEvent({ wallTime: 1, step: -1, scalar: { tag: 't', value: 1 } })).toThrow(/step -1/);
    expect(() => encodeEvent({ wallTime: 1, step: 1.5, scalar: { tag: 't', value: 1 } })).toThrow(/step 1.5/);
    expect(() => encodeEvent({ wallTime: NaN, step: 1, scalar: { tag: 't', value: 1 } })).toThrow(/wall time/);
  });
});

describe('runs as event files', () => {
  const config = records[0].config;
  it('keeps awkward values as float32: NaN, negative, 0, tiny, huge; and a step past 2^32', () => {
    const values = [NaN, -2.5, 0, -0, 1e-45, 3.4e38, 1e39, 0.1];
    const run: TbRun = { method: 'diffmas', seed: 1, config, startSeconds: 1e9, scalars: values.map((value, i) => ({ tag: 'train/loss', step: i + 1, value, wallTime: 1e9 + i })) };
    run.scalars.push({ tag: 'big', step: 2 ** 40 + 3, value: 1, wallTime: 1e9 });
    const back = readEventFile(eventFileBytes(run));
    const loss = scalarsByTag(back).get('train/loss')!;
    expect(loss.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    loss.forEach(([, v], i) => (Number.isNaN(values[i]) ? expect(v).toBeNaN() : expect(Object.is(v, f32(values[i])), `value ${values[i]}`).toBe(true)));
    expect(loss[6][1]).toBe(Infinity); // 1e39 is past float32's range, as in torch's add_scalar
    expect(scalarsByTag(back).get('big')).toEqual([[2 ** 40 + 3, 1]]);
    expect(back.map((e) => e.wallTime).slice(2, 4)).toEqual([1e9, 1e9 + 1]);
  });
  it('writes the file version, then the config text at step 0, then scalars in step order (stable within a step)', () => {
    const run: TbRun = {
      method: 'diffmas', seed: 3, config, startSeconds: 1000.75, scalars: [
        { tag: 'eval/heldout/accuracy', step: 5, value: 0.5, wallTime: 1005 },
        { tag: 'train/loss', step: 1, value: 2, wallTime: 1001 },
        { tag: 'train/loss', step: 5, value: 1, wallTime: 1005 },
        { tag: 'train/lr', step: 1, value: 0.1, wallTime: 1001 },
      ],
    };
    const ev = runEvents(run);
    expect(ev.map((e) => e.step)).toEqual([0, 0, 1, 1, 5, 5]);
    expect(ev.slice(2).map((e) => ('scalar' in e ? e.scalar.tag : ''))).toEqual(['train/loss', 'train/lr', 'eval/heldout/accuracy', 'train/loss']);
    const back = readEventFile(eventFileBytes(run));
    expect(back[0]).toEqual({ wallTime: 1000.75, step: 0, fileVersion: 'brain.Event:2', values: [] });
    expect(back[1].values[0].tensor!.strings[0]).toBe(configText(config));
    expect(JSON.parse(configText(config).replace(/^```json\n/, '').replace(/\n```$/, ''))).toEqual(config);
  });
  it('names files events.out.tfevents.<seconds>.<host>.<tag>, one path segment of at most 64 safe characters', () => {
    expect(eventFileName(1765100000.9, 'box', '123')).toBe('events.out.tfevents.1765100000.box.123');
    const long = eventFileName(1765100000, 'a very/long host name.with..dots'.repeat(4), 'x'.repeat(40));
    expect(long.length).toBeLessThanOrEqual(64);
    expect(long).toMatch(/^events\.out\.tfevents\.1765100000\.a-very-long-host[A-Za-z0-9._-]*\.x{16}$/);
    expect(eventFileName(0, '../..', '')).toBe('events.out.tfevents.0.x.x');
  });
  it('lays runs out as <method>/seed<seed>/events..., refusing a hostile method name and a run given twice', () => {
    const run = (method: string, seed: number): TbRun => ({ method, seed, config, startSeconds: 5, scalars: [] });
    expect([...tensorboardFiles([run('diffmas', 1), run('single', 2)], { host: 'h', tag: 't', prefix: 'tensorboard/' }).keys()])
      .toEqual(['tensorboard/diffmas/seed1/events.out.tfevents.5.h.t', 'tensorboard/single/seed2/events.out.tfevents.5.h.t']);
    expect(() => tensorboardFiles([run('../x', 1)], { host: 'h', tag: 't' })).toThrow(/run folder "\.\.\/x\/seed1" has a '\.\.' segment/);
    expect(() => tensorboardFiles([run('.hidden', 1)], { host: 'h', tag: 't' })).toThrow(/run folder/);
    expect(() => tensorboardFiles([run('a', 1), run('a', 1)], { host: 'h', tag: 't' })).toThrow(/a\/seed1 is given twice/);
    expect(() => tensorboardFiles([run('a', -1)], { host: 'h', tag: 't' })).toThrow(/seed -1/);
  });
});

describe('records and reports as runs', () => {
  it('a training record: every logged loss and lr, the held-out points, and "Evaluate all splits" at the last step (it wins there)', () => {
    const rec = records[0];
    const files = filesOf(recordRuns(rec, { lrOf }));
    expect([...files.keys()]).toEqual(['diffmas/seed7/events.out.tfevents.1765100000.host.1']);
    const ev = [...files.values()][0];
    const s = scalarsByTag(ev);
    const kept = rec.curves.steps.map((step, i) => [step, rec.curves.loss[i]] as const).filter(([, l]) => l !== null);
    expect(s.get('train/loss')).toEqual(kept.map(([step, l]) => [step, f32(l!)]));
    expect(s.get('train/lr')).toEqual(rec.curves.steps.map((step) => [step, f32(lrAt(step, trainHyperOf(rec.config)))]));
    expect(s.get('train/lr')![0][1]).toBe(f32(rec.config.lr)); // 6 steps: a warm-up of one step
    expect(s.get('eval/heldout/accuracy')).toEqual([[3, 0.5], [6, 0.75]]); // 0.625 during training, 0.75 from the table
    expect(s.get('eval/heldout/loss')).toEqual([[3, f32(1.2345678901)], [6, f32(0.85)]]);
    expect(s.get('eval/train/accuracy')).toEqual([[6, 0.875]]);
    expect(s.get('eval/ood/accuracy')).toEqual([[6, f32(0.1)]]);
    expect(s.has('eval/ood/loss')).toBe(false); // the row has none
    expect([...s.keys()].filter((t) => t.startsWith('control/'))).toEqual([]);
    expect(ev[1].values[0].tensor!.strings[0]).toBe(configText(rec.config));
    // wall time: the start plus the training seconds spread over the steps
    expect(ev.find((e) => e.step === 3)!.wallTime).toBe(rec.createdAt / 1000 + (rec.trainSeconds * 3) / 6);
    // non-decreasing steps throughout (TensorBoard purges on a step going back)
    expect(ev.map((e) => e.step)).toEqual([...ev.map((e) => e.step)].sort((a, b) => a - b));
  });
  it('an untrained or empty record: the config, evaluations at step 0, nothing else', () => {
    const rec: RunRecord = { ...records[0], config: { ...records[0].config, method: 'single' }, curves: { steps: [], loss: [], evals: [] }, stepsDone: 0, trainSeconds: 0 };
    const empty = filesOf(recordRuns({ ...rec, evalRows: null }, { lrOf }));
    const [only] = [...empty.values()];
    expect(only.map((e) => e.step)).toEqual([0, 0]);
    expect(only[1].values[0].tag).toBe('config/text_summary');
    const evaluated = scalarsByTag([...filesOf(recordRuns(rec, { lrOf })).values()][0]);
    expect([...evaluated.keys()].sort()).toEqual(['eval/heldout/accuracy', 'eval/heldout/loss', 'eval/ood/accuracy', 'eval/train/accuracy', 'eval/train/loss']);
    for (const v of evaluated.values()) expect(v.map(([s]) => s)).toEqual([0]);
  });
  it('a comparison record: one run per method and seed, controls at the final step, a training-free method at step 0', () => {
    const rec = records[1];
    const report = rec.compare!.report!;
    const files = filesOf(recordRuns(rec, { lrOf }));
    expect([...files.keys()].map((k) => k.split('/').slice(0, 2).join('/'))).toEqual(['single/seed1', 'single/seed2', 'diffmas/seed1', 'diffmas/seed2']);
    for (const [name, ev] of files) {
      const [method, seedDir] = name.split('/');
      const seed = Number(seedDir.slice(4));
      const s = scalarsByTag(ev);
      const losses = report.curves!.find((c) => c.method === method && c.seed === seed)?.losses ?? [];
      const last = losses.length;
      expect(last).toBe(method === 'single' ? 0 : 4);
      expect(s.get('train/loss') ?? []).toEqual(losses.map((l, i) => [i + 1, f32(l)]));
      for (const r of report.rows.filter((x) => x.method === method && x.seed === seed)) {
        expect(s.get(`eval/${r.split}/accuracy`)).toEqual([[last, f32(r.accuracy)]]);
        expect(s.get(`eval/${r.split}/loss`)).toEqual(r.loss === undefined ? undefined : [[last, f32(r.loss)]]);
      }
      const controls = report.controls.filter((c) => c.method === method && c.seed === seed);
      expect([...s.keys()].filter((t) => t.startsWith('control/')).length).toBe(controls.length);
      for (const c of controls) expect(s.get(`control/${c.control}/heldout/accuracy`)).toEqual([[last, f32(c.accuracy)]]);
      const cfg = JSON.parse(ev[1].values[0].tensor!.strings[0].replace(/^```json\n/, '').replace(/\n```$/, '')) as RunConfig;
      expect(cfg).toEqual({ ...rec.compare!.request.base, method, seed });
    }
  });
  it('a report with NaN and negative values, a null loss (NaN in JSON) and no curves', () => {
    const report: ExperimentReport = {
      args: {}, summary: [], findings: [],
      rows: [{ method: 'diffmas', seed: 4, split: 'heldout', accuracy: NaN, validity: 1, entropy: 0, episodes: 2, messageFloats: 0, messageTokens: 0, trainSeconds: 8, loss: -3 }],
      controls: [{ method: 'diffmas', seed: 4, control: 'zero', accuracy: -0.5 }],
      curves: [{ method: 'diffmas', seed: 4, losses: [NaN, null as unknown as number, -1] }],
    };
    const [run] = reportRuns(report, { configOf: (method, seed) => ({ ...records[0].config, method, seed }), startSeconds: 100 });
    const s = scalarsByTag(readEventFile(eventFileBytes(run)));
    const loss = s.get('train/loss')!;
    expect(loss.map(([st]) => st)).toEqual([1, 3]);
    expect(loss[0][1]).toBeNaN();
    expect(loss[1][1]).toBe(-1);
    expect(s.get('eval/heldout/accuracy')![0][0]).toBe(3);
    expect(s.get('eval/heldout/accuracy')![0][1]).toBeNaN();
    expect(s.get('eval/heldout/loss')).toEqual([[3, -3]]);
    expect(s.get('control/zero/heldout/accuracy')).toEqual([[3, -0.5]]);
    expect(s.has('train/lr')).toBe(false); // no schedule given
    const none = reportRuns({ ...report, curves: undefined }, { configOf: (method, seed) => ({ ...records[0].config, method, seed }), startSeconds: 100 });
    expect(none[0].scalars.every((x) => x.step === 0)).toBe(true);
  });
});
