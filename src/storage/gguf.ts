// A GGUF file (llama.cpp's single-file model format, versions 2 and 3) read into its metadata and
// tensor table; the tensors' bytes stay in the file's buffer until ./gguf-quants.ts dequantizes them.
// Layout (little-endian): "GGUF", version u32, tensor count u64, metadata count u64; the metadata
// (key string, value type u32, value); the tensor infos (name, n_dims u32, dims u64 innermost first,
// ggml type u32, offset u64 from the data section); then the data section, which starts at the next
// multiple of general.alignment (default 32). Every read is bounds-checked and every count is held
// against the bytes that remain before anything its size is allocated: a lying header fails at once
// with a message naming what it claimed. Pure TypeScript: no DOM, no Node APIs.
import { GGML_TYPES, ggmlTypeName, tensorBytes } from './gguf-quants';
import { printableName } from './text';

export class GgufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GgufError';
  }
}

const fail = (msg: string): never => {
  throw new GgufError(msg);
};

/** The metadata value types of the format. */
export const GGUF_VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
/** A 64-bit integer beyond 2^53 stays a bigint; every other number is a number. */
export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufScalar[] | GgufValue[];

export interface GgufEntry {
  type: GgufValueType;
  /** For arrays: the element type. */
  itemType?: GgufValueType;
  value: GgufValue;
}

export interface GgufTensorInfo {
  name: string;
  /** ggml's order: dims[0] is the innermost (fastest-varying) one. */
  dims: number[];
  /** Hugging Face's (row-major) shape: dims reversed. */
  shape: number[];
  type: number;
  typeName: string;
  /** Absolute offset of the tensor's bytes in the file. */
  offset: number;
  byteLength: number;
  elements: number;
}

export interface GgufFile {
  version: number;
  alignment: number;
  metadata: Map<string, GgufEntry>;
  tensors: GgufTensorInfo[];
  dataOffset: number;
  bytes: Uint8Array;
}

/** llama.cpp's limits: a tensor has at most 4 dims, its name at most 63 bytes (GGML_MAX_NAME 64 with the NUL). */
const MAX_DIMS = 4;
const MAX_NAME_BYTES = 63;
/** The smallest bytes one item of each value type takes (an array header is type + count). */
const MIN_SIZE: Record<GgufValueType, number> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, array: 12, u64: 8, i64: 8, f64: 8,
};

class Reader {
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  at = 0;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get left(): number {
    return this.bytes.length - this.at;
  }
  need(n: number, what: string): void {
    if (n > this.left) {
      fail(`the file is truncated: ${what} needs ${n} bytes at offset ${this.at}, but the file has ${this.bytes.length} bytes (${this.left} left)`);
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.at++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  /** A u64 as a number when it fits 2^53, else a bigint. */
  u64(what: string): number | bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.at, true);
    this.at += 8;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  /** A u64 that must be a count or size no larger than `max`. */
  count(what: string, max: number, why: string): number {
    const v = this.u64(what);
    if (typeof v === 'bigint' || v > max) fail(`${what} is ${v}, which ${why}`);
    return v as number;
  }
  string(what: string): string {
    const n = this.count(`the length of ${what}`, this.left - 8, `is more than the ${Math.max(0, this.left - 8)} bytes left in the file (a corrupt or truncated file)`);
    const s = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    try {
      return this.utf8.decode(s);
    } catch {
      return fail(`${what} is not valid UTF-8 text`);
    }
  }
  scalar(type: GgufValueType, what: string): GgufScalar {
    const v = this.view;
    const size = MIN_SIZE[type];
    if (type === 'string') return this.string(what);
    this.need(size, what);
    const at = this.at;
    this.at += size;
    switch (type) {
      case 'u8': return v.getUint8(at);
      case 'i8': return v.getInt8(at);
      case 'u16': return v.getUint16(at, true);
      case 'i16': return v.getInt16(at, true);
      case 'u32': return v.getUint32(at, true);
      case 'i32': return v.getInt32(at, true);
      case 'f32': return v.getFloat32(at, true);
      case 'f64': return v.getFloat64(at, true);
      case 'bool': {
        const b = v.getUint8(at);
        if (b > 1) fail(`${what} is a bool stored as ${b}; a bool is 0 or 1`);
        return b === 1;
      }
      case 'u64': {
        const x = v.getBigUint64(at, true);
        return x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
      }
      case 'i64': {
        const x = v.getBigInt64(at, true);
        return x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(x) : x;
      }
      default:
        return fail(`${what}: an array where a single value belongs`);
    }
  }
  valueType(what: string): GgufValueType {
    const t = this.u32(what);
    if (t >= GGUF_VALUE_TYPES.length) fail(`${what} is ${t}, not a GGUF value type (0..${GGUF_VALUE_TYPES.length - 1}: ${GGUF_VALUE_TYPES.join(', ')})`);
    return GGUF_VALUE_TYPES[t];
  }
  value(type: GgufValueType, what: string, depth = 0): { value: GgufValue; itemType?: GgufValueType } {
    if (type !== 'array') return { value: this.scalar(type, what) };
    if (depth > 2) fail(`${what} nests arrays more than 3 deep`);
    const itemType = this.valueType(`the element type of ${what}`);
    const min = MIN_SIZE[itemType];
    // the count is held against the bytes left before the array is made
    const n = this.count(`the length of ${what}`, Math.floor(this.left / min), `claims more ${itemType} items than the ${this.left} bytes left in the file can hold (a corrupt or truncated file)`);
    const out: GgufValue[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value(itemType, `${what}[${i}]`, depth + 1).value;
    return { value: out as GgufValue, itemType };
  }
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32

/** Parses a GGUF file's header, metadata and tensor table; throws GgufError naming what is wrong. */
export function parseGguf(bytes: Uint8Array): GgufFile {
  const r = new Reader(bytes);
  if (bytes.length < 4) fail(`the file has ${bytes.length} bytes: too short to be a GGUF file`);
  const magic = r.u32('the magic');
  if (magic !== MAGIC) {
    const shown = [...bytes.subarray(0, 4)].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    const hint = shown === 'PK\\x03\\x04' ? ' (it is a zip)' : bytes[0] === 0x7b ? ' (it looks like JSON)' : '';
    fail(`not a GGUF file: it starts with "${shown}"${hint}, a GGUF file starts with "GGUF"`);
  }
  const version = r.u32('the version');
  if (version !== 2 && version !== 3) {
    // a big-endian file's version 3 reads as 0x03000000 here
    if (version === 0x02000000 || version === 0x03000000) fail('this is a big-endian GGUF file; only little-endian files (what llama.cpp writes on every common machine) can be read');
    if (version === 1) fail('this is a GGUF version 1 file (2023, 32-bit counts); convert it again with a current llama.cpp: versions 2 and 3 are read');
    fail(`GGUF version ${version} is not supported: versions 2 and 3 are read`);
  }
  // a tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes, a metadata item 8 + 4 + 1
  const tensorCount = r.count('the tensor count', Math.floor(r.left / 24), `is more tensors than the ${bytes.length}-byte file can describe (a corrupt header)`);
  const kvCount = r.count('the metadata count', Math.floor(r.left / 13), `is more metadata items than the ${bytes.length}-byte file can hold (a corrupt header)`);
  const metadata = new Map<string, GgufEntry>();
  for (let i = 0; i < kvCount; i++) {
    const key = r.string(`metadata key ${i + 1} of ${kvCount}`);
    if (metadata.has(key)) fail(`metadata key ${printableName(key)} appears twice`);
    const type = r.valueType(`the value type of ${printableName(key)}`);
    const { value, itemType } = r.value(type, `metadata ${printableName(key)}`);
    metadata.set(key, { type, value, ...(itemType ? { itemType } : {}) });
  }
  let alignment = 32;
  const align = metadata.get('general.alignment');
  if (align) {
    const a = align.value;
    if (align.type !== 'u32' || typeof a !== 'number' || a < 1 || (a & (a - 1)) !== 0) {
      fail(`general.alignment must be a u32 power of two, got ${String(a)} (${align.type})`);
    }
    alignment = a as number;
  }
  const infos: { name: string; dims: number[]; type: number; rel: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const what = `tensor ${i + 1} of ${tensorCount}`;
    const name = r.string(`the name of ${what}`);
    const shown = printableName(name);
    if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) fail(`the name of ${what} (${shown}) is longer than ${MAX_NAME_BYTES} bytes`);
    if (names.has(name)) fail(`tensor ${shown} appears twice`);
    names.add(name);
    const nDims = r.u32(`the dimension count of ${shown}`);
    if (nDims < 1 || nDims > MAX_DIMS) fail(`tensor ${shown} has ${nDims} dimensions; a GGUF tensor has 1 to ${MAX_DIMS}`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      dims.push(r.count(`dimension ${d} of ${shown}`, bytes.length * 64, `is more than a ${bytes.length}-byte file can hold`));
      if (dims[d] < 1) fail(`tensor ${shown} has a dimension of size 0`);
    }
    const type = r.u32(`the type of ${shown}`);
    const rel = r.count(`the offset of ${shown}`, bytes.length, `lies past the end of the ${bytes.length}-byte file`);
    infos.push({ name, dims, type, rel });
  }
  const dataOffset = Math.ceil(r.at / alignment) * alignment;
  if (tensorCount > 0 && dataOffset > bytes.length) fail(`the file is truncated: the tensor data would start at byte ${dataOffset}, but the file has ${bytes.length} bytes`);
  const tensors: GgufTensorInfo[] = infos.map(({ name, dims, type, rel }) => {
    const shown = printableName(name);
    const elements = dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(elements) || elements > bytes.length * 64) fail(`tensor ${shown} claims ${dims.join(' x ')} elements, more than the ${bytes.length}-byte file can hold`);
    const t = GGML_TYPES[type];
    if (!t) fail(`tensor ${shown} has ggml type ${type}, which is not a type this reader knows (${ggmlTypeName(type)})`);
    if (dims[0] % t.blockSize !== 0) fail(`tensor ${shown} is ${t.name} (blocks of ${t.blockSize}) but its rows have ${dims[0]} values, not a multiple of ${t.blockSize}`);
    if (rel % alignment !== 0) fail(`tensor ${shown} starts at data offset ${rel}, which is not a multiple of the alignment ${alignment}`);
    const byteLength = tensorBytes(type, elements);
    const offset = dataOffset + rel;
    if (offset + byteLength > bytes.length) {
      fail(`the file is truncated: tensor ${shown} (${t.name}, ${[...dims].reverse().join(' x ')}) needs bytes ${offset}..${offset + byteLength} but the file has ${bytes.length}`);
    }
    return { name, dims, shape: [...dims].reverse(), type, typeName: t.name, offset, byteLength, elements };
  });
  // two tensors sharing bytes is a corrupt table (llama.cpp lays them out one after another)
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1];
    if (sorted[i].offset < p.offset + p.byteLength) fail(`tensors ${printableName(p.name)} and ${printableName(sorted[i].name)} overlap in the file (a corrupt tensor table)`);
  }
  return { version, alignment, metadata, tensors, dataOffset, bytes };
}

/** The bytes of one tensor (a view into the file). */
export function tensorData(f: GgufFile, t: GgufTensorInfo): Uint8Array {
  return f.bytes.subarray(t.offset, t.offset + t.byteLength);
}

/** Typed access to metadata with messages naming the key. */
export class GgufMeta {
  constructor(readonly metadata: ReadonlyMap<string, GgufEntry>) {}
  has(key: string): boolean {
    return this.metadata.has(key);
  }
  private entry(key: string, required: boolean): GgufEntry | undefined {
    const e = this.metadata.get(key);
    if (!e && required) fail(`the file has no ${key} metadata`);
    return e;
  }
  str(key: string, required = true): string | undefined {
    const e = this.entry(key, required);
    if (!e) return undefined;
    if (typeof e.value !== 'string') fail(`metadata ${key} must be a string, got ${e.type}`);
    return e.value as string;
  }
  /** An integer metadata value (any integer type) in [min, max]. */
  int(key: string, required = true, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const e = this.entry(key, required);
    if (!e) return undefined;
    const v = e.value;
    if (e.type === 'array') fail(`metadata ${key} is an array (a value per layer?); one integer for every layer is all this importer reads`);
    if (typeof v !== 'number' || !Number.isInteger(v) || !/^[ui]/.test(e.type)) fail(`metadata ${key} must be an integer, got ${String(v)} (${e.type})`);
    if ((v as number) < min || (v as number) > max) fail(`metadata ${key} is ${v}, outside ${min}..${max}`);
    return v as number;
  }
  num(key: string, required = true): number | undefined {
    const e = this.entry(key, required);
    if (!e) return undefined;
    if (typeof e.value !== 'number' || !Number.isFinite(e.value)) fail(`metadata ${key} must be a finite number, got ${String(e.value)} (${e.type})`);
    return e.value as number;
  }
  bool(key: string): boolean | undefined {
    const e = this.entry(key, false);
    if (!e) return undefined;
    if (typeof e.value !== 'boolean') fail(`metadata ${key} must be a bool, got ${String(e.value)} (${e.type})`);
    return e.value as boolean;
  }
  /** An array whose items are all of `itemTypes` (e.g. strings, or any number). */
  array<T>(key: string, itemTypes: readonly GgufValueType[], required = true): T[] | undefined {
    const e = this.entry(key, required);
    if (!e) return undefined;
    if (e.type !== 'array' || !e.itemType || !itemTypes.includes(e.itemType)) {
      fail(`metadata ${key} must be an array of ${itemTypes.join(' or ')}, got ${e.type === 'array' ? `an array of ${e.itemType}` : e.type}`);
    }
    return e.value as T[];
  }
}
