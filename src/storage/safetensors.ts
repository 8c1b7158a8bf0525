// Our own reader and writer of the safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   N, the header length, unsigned 64-bit little-endian
//   N bytes   JSON object: { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] },
//             ..., "__metadata__": { "<key>": "<string>" } }  (padded with spaces to a multiple of 8)
//   rest      the byte buffer; offsets are relative to its start, little-endian values, row-major.
// We write F32 only (names sorted, tensors packed in that order, no holes, as the reference writer
// does). We read F32, F16 and BF16 (converted to F32: Hugging Face files often hold half precision).
// The reader refuses what the reference implementation refuses (bad lengths, overlapping, holes,
// offsets that do not match dtype x shape) with a message saying what is wrong.
// Pure TypeScript on Uint8Array/DataView: runs in the browser, in workers and in Node.

import { printableName } from './text';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16';

export interface SafeTensor {
  /** The dtype stored in the file (the data is always converted to F32). */
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** A tensor to write: `data.length` must equal the product of `shape`. */
export interface TensorToWrite {
  shape: readonly number[];
  data: Float32Array;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

const BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };
/** Every dtype the format defines, so an unsupported one is told apart from a misspelt one. */
const KNOWN_DTYPES = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'];
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

// ---- writing ---------------------------------------------------------------------------------------

/** Encodes F32 tensors (sorted by name) and optional string metadata as one safetensors file. */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, TensorToWrite>, metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`metadata value of "${k}" must be a string, got ${typeof v}`);
    }
    header.__metadata__ = { ...metadata };
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    if (name === '' || name === '__metadata__') throw new SafetensorsError(`"${name}" cannot be a tensor name`);
    for (const d of t.shape) {
      if (!Number.isInteger(d) || d < 0) throw new SafetensorsError(`tensor "${name}" has a bad shape ${fmtShape(t.shape)}`);
    }
    if (t.data.length !== numel(t.shape)) {
      throw new SafetensorsError(`tensor "${name}" has ${t.data.length} values but shape ${fmtShape(t.shape)} needs ${numel(t.shape)}`);
    }
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + t.data.length * 4] };
    offset += t.data.length * 4;
  }
  let json = JSON.stringify(header);
  let headerBytes = new TextEncoder().encode(json);
  // Pad with spaces so the byte buffer starts 8-aligned (the spec allows trailing whitespace).
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    headerBytes = new TextEncoder().encode(json);
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes.length, true);
  view.setUint32(4, Math.floor(headerBytes.length / 2 ** 32), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const data = tensors.get(name)!.data;
    if (LITTLE_ENDIAN) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    else for (let i = 0; i < data.length; i++) view.setFloat32(at + i * 4, data[i], true);
    at += data.byteLength;
  }
  return out;
}

// ---- reading ---------------------------------------------------------------------------------------

/** IEEE 754 half (binary16) bits to a number. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits (the top half of an f32) to a number. */
export function bf16ToF32(b: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, (b & 0xffff) << 16);
  return v.getFloat32(0);
}

function decodeData(bytes: Uint8Array, begin: number, count: number, dtype: SafetensorsDType): Float32Array {
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) {
      new Uint8Array(out.buffer).set(bytes.subarray(begin, begin + count * 4));
    } else {
      const view = new DataView(bytes.buffer, bytes.byteOffset + begin, count * 4);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
    }
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + begin, count * 2);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
  } else {
    for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
  }
  return out;
}

/** A number in the header that is not a plain non-negative decimal integer (1.0, 1e3, -2, 2^53 and up), kept as written. */
class NumberLiteral {
  constructor(readonly text: string) {}
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : v instanceof NumberLiteral ? 'number' : typeof v;
}

/** JSON text of a parsed header value, numbers as they were written (so 1.0 shows as 1.0, not 1). */
function fmt(v: unknown): string {
  if (v instanceof NumberLiteral) return v.text;
  if (Array.isArray(v)) return `[${v.map(fmt).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${fmt(x)}`).join(',')}}`;
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** The largest header the reference implementation reads (safetensors' MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;
/**
 * The most tensors one file may list. A model this engine runs has 9-14 per layer (a 1,000-layer model
 * stays under 15,000), and the largest published checkpoints list some tens of thousands across all
 * their shards; a 70 MB header naming a million empty tensors is refused at the 100,001st entry, in
 * parsing time linear in what was read, before anything is built for them.
 */
export const MAX_TENSORS = 100_000;
const MAX_DEPTH = 8;

/**
 * A strict JSON parser for the header: what JSON.parse lets through silently is an error here, with
 * where it is: a key given twice in one object (the last would win), a "__proto__" key, nesting
 * deeper than a header has. Numbers that are not plain non-negative decimal integers come back as
 * NumberLiteral, so the checks below refuse them with the text as written.
 */
function parseHeader(text: string): unknown {
  let i = 0;
  const bad = (what: string): never => {
    throw new SafetensorsError(`the header is not valid JSON: ${what} at character ${i}`);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const str = (): string => {
    const start = i;
    let escaped = false;
    i++; // opening quote
    for (;;) {
      if (i >= text.length) bad('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) bad('a control character in a string');
      if (c === 0x5c) escaped = true;
      i += c === 0x5c ? 2 : 1;
    }
    i++;
    // most names have no escapes: the text between the quotes is the string
    if (!escaped) return text.slice(start + 1, i - 1);
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return bad('a bad escape in a string');
    }
  };
  const where = (path: string[]) =>
    path[0] === '__metadata__' && path.length === 1 ? '__metadata__' : path.length === 1 ? `tensor ${printableName(path[0])}` : `${printableName(path[0])}.${path.slice(1).join('.')}`;
  const value = (path: string[]): unknown => {
    if (path.length > MAX_DEPTH) bad(`nesting deeper than ${MAX_DEPTH} levels`);
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      // a Map (a plain object with 100,000 keys is slow to grow); nested objects come back as objects
      const out = new Map<string, unknown>();
      const done = () => (path.length === 0 ? out : Object.fromEntries(out));
      ws();
      if (text[i] === '}') {
        i++;
        return done();
      }
      for (;;) {
        ws();
        if (text[i] !== '"') bad('expected a quoted key');
        const key = str();
        const at = () => (path.length === 0 ? '' : ` in ${where(path)}`);
        if (key === '__proto__') throw new SafetensorsError(`the key "__proto__"${at()} is not allowed (it is not a tensor name, and would change the object)`);
        if (out.has(key)) {
          throw new SafetensorsError(
            path.length === 0
              ? `${key === '__metadata__' ? '__metadata__' : `tensor ${printableName(key)}`} is listed twice in the header (the file is ambiguous: which one is meant?)`
              : `the key ${printableName(key)}${at()} is given twice`,
          );
        }
        if (path.length === 0 && out.size - (out.has('__metadata__') ? 1 : 0) >= MAX_TENSORS && key !== '__metadata__') {
          throw new SafetensorsError(`the header lists more than ${MAX_TENSORS} tensors (stopped reading at character ${i} of ${text.length}); no model file has that many`);
        }
        ws();
        if (text[i] !== ':') bad('expected ":"');
        i++;
        out.set(key, value([...path, key]));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return done();
        }
        return bad('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value([...path, `[${out.length}]`]));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return out;
        }
        return bad('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return bad(c === undefined ? 'unexpected end' : `unexpected character ${JSON.stringify(c)}`);
    i += m[0].length;
    const plain = /^(0|[1-9]\d*)$/.test(m[0]) && Number.isSafeInteger(Number(m[0]));
    return plain ? Number(m[0]) : new NumberLiteral(m[0]);
  };
  const v = value([]);
  ws();
  if (i < text.length) bad('unexpected text after the header object');
  return v;
}

/** Reads only the header (names, dtypes, shapes, offsets) after checking it against the file size. */
export function readSafetensorsHeader(bytes: Uint8Array): {
  entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[];
  metadata: Record<string, string>;
  dataStart: number;
} {
  if (bytes.length < 8) {
    throw new SafetensorsError(`the file is ${bytes.length} bytes, shorter than the 8-byte header length that starts every safetensors file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (8 + n > bytes.length) {
    throw new SafetensorsError(
      `the header length says ${n} bytes but the file has only ${bytes.length - 8} after it (file truncated, or not a safetensors file)`,
    );
  }
  if (n > MAX_HEADER_BYTES) {
    throw new SafetensorsError(`the header length says ${n} bytes, more than the ${MAX_HEADER_BYTES} a safetensors header may have (not a safetensors file?)`);
  }
  if (n >= 3 && bytes[8] === 0xef && bytes[9] === 0xbb && bytes[10] === 0xbf) {
    throw new SafetensorsError('the header starts with a byte-order mark (EF BB BF); a safetensors header is plain UTF-8 JSON without one');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError('the header is not valid UTF-8 text (not a safetensors file?)');
  }
  const header = parseHeader(text);
  if (!(header instanceof Map)) {
    throw new SafetensorsError(`the header must be a JSON object of tensors, got ${kind(header)}`);
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of header as Map<string, unknown>) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw new SafetensorsError(`__metadata__ must be an object of strings, got ${kind(info)}`);
      }
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw new SafetensorsError(`__metadata__ value of ${printableName(k)} must be a string, got ${kind(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (name === '') throw new SafetensorsError('a tensor has an empty name ""');
    // built only for a message: printableName over 100,000 names is measurable
    const where = () => `tensor ${printableName(name)}`;
    if (typeof info !== 'object' || info === null || Array.isArray(info)) {
      throw new SafetensorsError(`${where()}: expected an object with dtype, shape and data_offsets, got ${kind(info)}`);
    }
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string') throw new SafetensorsError(`${where()}: dtype is missing or not a string`);
    if (!Object.hasOwn(BYTES, dtype)) {
      throw new SafetensorsError(
        KNOWN_DTYPES.includes(dtype)
          ? `${where()} has dtype ${dtype}, which is not supported here (supported: F32, F16, BF16)`
          : `${where()} has unknown dtype ${printableName(dtype)} (supported: F32, F16, BF16)`,
      );
    }
    // digits that a double cannot hold exactly (2^53 and up) are too large, not malformed
    for (const [field, list] of [['shape', shape], ['data_offsets', offsets]] as const) {
      const big = Array.isArray(list) ? list.find((v) => v instanceof NumberLiteral && /^(0|[1-9]\d*)$/.test(v.text)) : undefined;
      if (big) {
        throw new SafetensorsError(
          `${where()}: ${field} ${fmt(list)} holds ${(big as NumberLiteral).text}, which is 2^53 (9007199254740992) or more: ` +
            'larger than any file this reader can address (the number itself is well formed)',
        );
      }
    }
    // (NumberLiteral fails Number.isInteger: 1.0, 1e308 and -2 are refused here, shown as written)
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${where()}: shape must be a list of non-negative integers, got ${fmt(shape)} (plain decimal digits: no 1.0, 1e3 or sign)`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      throw new SafetensorsError(`${where()}: data_offsets must be [begin, end] (non-negative integers), got ${fmt(offsets)} (plain decimal digits: no 1.0, 1e3 or sign)`);
    }
    const [begin, end] = offsets as number[];
    if (end < begin) throw new SafetensorsError(`${where()}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) {
      throw new SafetensorsError(`${where()}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes; file truncated?)`);
    }
    const d = dtype as SafetensorsDType;
    // a shape like [2^40, 2^40] has no exact element count in a double: refuse it rather than round
    const dims = shape as number[];
    const count = dims.includes(0) ? 0 : dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count * BYTES[d])) {
      throw new SafetensorsError(`${where()}: shape ${fmtShape(dims)} has more elements than any file can hold`);
    }
    const need = count * BYTES[d];
    if (end - begin !== need) {
      throw new SafetensorsError(
        `${where()}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but dtype ${d} with shape ${fmtShape(shape)} needs ${need}`,
      );
    }
    entries.push({ name, dtype: d, shape: [...shape], begin, end });
  }
  // The data must be covered exactly once: no overlaps, no holes, nothing after the last tensor.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let prev: (typeof entries)[number] | null = null;
  for (const e of sorted) {
    if (e.begin < covered) {
      throw new SafetensorsError(`tensors ${printableName(prev!.name)} [${prev!.begin}, ${prev!.end}] and ${printableName(e.name)} [${e.begin}, ${e.end}] overlap`);
    }
    if (e.begin > covered) {
      throw new SafetensorsError(`bytes [${covered}, ${e.begin}) of the data belong to no tensor (a hole before ${printableName(e.name)})`);
    }
    covered = e.end;
    prev = e;
  }
  if (covered !== dataLen) {
    throw new SafetensorsError(`the data has ${dataLen} bytes but the tensors cover only ${covered} (trailing bytes after the last tensor)`);
  }
  return { entries, metadata, dataStart };
}

/** Decodes a safetensors file; every tensor comes back as F32 (converted from F16/BF16). */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  const { entries, metadata, dataStart } = readSafetensorsHeader(bytes);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeData(bytes, dataStart + e.begin, numel(e.shape), e.dtype) });
  }
  return { tensors, metadata };
}
