// Reads TensorBoard event files back (the tests' check of tensorboard.ts, and of the page's export):
// TFRecord framing with both CRCs checked, and the Event fields that writer uses. Other fields are
// skipped by wire type; anything malformed is an error naming the record and what is wrong.
import { maskedCrc32c } from './crc32c';

export interface ReadValue {
  tag: string;
  /** Set for a scalar (simple_value: float32, widened). */
  simpleValue?: number;
  /** Set for a tensor value: its dtype and string_val decoded as UTF-8. */
  tensor?: { dtype: number; shape: number[]; strings: string[] };
  pluginName?: string;
}

export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: ReadValue[];
}

export class EventFileError extends Error {
  constructor(message: string) {
    super(`event file: ${message}`);
    this.name = 'EventFileError';
  }
}

const dec = new TextDecoder('utf-8', { fatal: true });

/** The records of a TFRecord stream, each CRC checked. */
export function readRecords(bytes: Uint8Array): Uint8Array[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const n = out.length + 1;
    if (at + 12 > bytes.length) throw new EventFileError(`record ${n}: the header is cut short (${bytes.length - at} bytes left)`);
    const len = v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
    if (maskedCrc32c(bytes.subarray(at, at + 8)) !== v.getUint32(at + 8, true)) throw new EventFileError(`record ${n}: the length's CRC does not match`);
    if (at + 12 + len + 4 > bytes.length) throw new EventFileError(`record ${n}: ${len} bytes announced, the file ends before`);
    const data = bytes.subarray(at + 12, at + 12 + len);
    if (maskedCrc32c(data) !== v.getUint32(at + 12 + len, true)) throw new EventFileError(`record ${n}: the data's CRC does not match`);
    out.push(data);
    at += 16 + len;
  }
  return out;
}

type Field = { field: number; wire: number; int?: number; bytes?: Uint8Array; at: number };

/** The fields of a protobuf message, in order. */
function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (at >= b.length) throw new EventFileError('a varint runs past the end of its message');
      const x = b[at++];
      n += (x & 0x7f) * mul;
      if (!(x & 0x80)) return n;
      mul *= 0x80;
      if (mul > 2 ** 63) throw new EventFileError('a varint is longer than 10 bytes');
    }
  };
  while (at < b.length) {
    const start = at;
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    const need = (k: number) => {
      if (at + k > b.length) throw new EventFileError(`field ${field} runs past the end of its message`);
    };
    if (wire === 0) out.push({ field, wire, int: varint(), at: start });
    else if (wire === 1) {
      need(8);
      out.push({ field, wire, bytes: b.subarray(at, at + 8), at: start });
      at += 8;
    } else if (wire === 2) {
      const len = varint();
      need(len);
      out.push({ field, wire, bytes: b.subarray(at, at + len), at: start });
      at += len;
    } else if (wire === 5) {
      need(4);
      out.push({ field, wire, bytes: b.subarray(at, at + 4), at: start });
      at += 4;
    } else throw new EventFileError(`field ${field} has wire type ${wire}, which this reader does not know`);
  }
  return out;
}

const f64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);

function readValue(b: Uint8Array): ReadValue {
  const out: ReadValue = { tag: '' };
  for (const f of fields(b)) {
    if (f.field === 1 && f.wire === 2) out.tag = dec.decode(f.bytes);
    else if (f.field === 2 && f.wire === 5) out.simpleValue = f32(f.bytes!);
    else if (f.field === 8 && f.wire === 2) {
      const t = { dtype: 0, shape: [] as number[], strings: [] as string[] };
      for (const g of fields(f.bytes!)) {
        if (g.field === 1 && g.wire === 0) t.dtype = g.int!;
        else if (g.field === 2 && g.wire === 2) {
          for (const d of fields(g.bytes!)) if (d.field === 2 && d.wire === 2) t.shape.push(fields(d.bytes!).find((x) => x.field === 1)?.int ?? 0);
        } else if (g.field === 8 && g.wire === 2) t.strings.push(dec.decode(g.bytes));
      }
      out.tensor = t;
    } else if (f.field === 9 && f.wire === 2) {
      const pd = fields(f.bytes!).find((x) => x.field === 1 && x.wire === 2);
      const name = pd ? fields(pd.bytes!).find((x) => x.field === 1 && x.wire === 2) : undefined;
      if (name) out.pluginName = dec.decode(name.bytes);
    }
  }
  return out;
}

/** One Event proto. */
export function decodeEvent(b: Uint8Array): ReadEvent {
  const out: ReadEvent = { wallTime: 0, step: 0, values: [] };
  for (const f of fields(b)) {
    if (f.field === 1 && f.wire === 1) out.wallTime = f64(f.bytes!);
    else if (f.field === 2 && f.wire === 0) out.step = f.int!;
    else if (f.field === 3 && f.wire === 2) out.fileVersion = dec.decode(f.bytes);
    else if (f.field === 5 && f.wire === 2) {
      for (const g of fields(f.bytes!)) if (g.field === 1 && g.wire === 2) out.values.push(readValue(g.bytes!));
    }
  }
  return out;
}

/** Every event of an event file, in order. */
export function readEventFile(bytes: Uint8Array): ReadEvent[] {
  return readRecords(bytes).map((r, i) => {
    try {
      return decodeEvent(r);
    } catch (e) {
      throw new EventFileError(`record ${i + 1}: ${(e as Error).message.replace(/^event file: /, '')}`);
    }
  });
}

/** The scalars of an event file by tag: [step, value] in file order. */
export function scalarsByTag(events: readonly ReadEvent[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const e of events) {
    for (const v of e.values) {
      if (v.simpleValue === undefined) continue;
      if (!out.has(v.tag)) out.set(v.tag, []);
      out.get(v.tag)!.push([e.step, v.simpleValue]);
    }
  }
  return out;
}
