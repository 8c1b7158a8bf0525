// Zip (PKWARE APPNOTE 6.3) for single-file downloads and imports of checkpoints and adapters. The
// writer stores (no compression: safetensors weights barely compress anyway); the reader takes what
// zip tools and the hub's downloads make: stored and deflate entries (inflated by fflate), data
// descriptors, UTF-8 names; no ZIP64 (each archive < 4 GiB, < 65535 entries). The archive's
// structure is checked here, before anything is inflated (every central record against its local
// header, no two entries sharing bytes, the total under a cap: the guarantees tests/nothing-lost.test.ts
// rows 7, 13 and Also-b pin, which fflate's own unzipSync does not give: it would inflate overlapping
// or oversized entries and throw its own errors; and no deflate entry claiming more than MAX_RATIO times
// its compressed size: tests/nothing-lost-2.test.ts row 9), then fflate's inflateSync decompresses each
// deflate entry into a buffer of the size its record claims (a stream that inflates past it is caught). Pure TypeScript (browser and Node).
import { inflateSync } from 'fflate';
import { printableName } from './text';

export class ZipError extends Error {
  constructor(message: string) {
    super(`zip: ${message}`);
    this.name = 'ZipError';
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zip and gzip use). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const FLAG_UTF8 = 0x0800;
const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01: fixed, so the same files give the same bytes
const LIMIT = 0xffffffff;

/** Packs files (name -> bytes) into an uncompressed zip archive, in the map's order. */
export function zipStore(files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  if (files.size >= 0xffff) throw new ZipError(`${files.size} files are more than a zip without ZIP64 can hold (65534)`);
  const enc = new TextEncoder();
  const entries = [...files].map(([name, data]) => {
    if (name === '' || name.startsWith('/') || name.split('/').includes('..')) throw new ZipError(`bad file name "${name}"`);
    return { name: enc.encode(name), data, crc: crc32(data), offset: 0 };
  });
  let size = 22;
  for (const e of entries) size += 30 + 46 + 2 * e.name.length + e.data.length;
  if (size > LIMIT) throw new ZipError(`the archive would be ${size} bytes, more than a zip without ZIP64 can hold (4 GiB)`);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  const u16 = (x: number) => { v.setUint16(at, x, true); at += 2; };
  const u32 = (x: number) => { v.setUint32(at, x, true); at += 4; };
  // version needed 2.0, UTF-8 flag, method 0 (stored), time 0, date, crc, sizes, name length
  const common = (e: (typeof entries)[number]) => {
    u16(20); u16(FLAG_UTF8); u16(0); u16(0); u16(DOS_DATE);
    u32(e.crc); u32(e.data.length); u32(e.data.length); u16(e.name.length); u16(0);
  };
  for (const e of entries) {
    e.offset = at;
    u32(SIG_LOCAL); common(e);
    out.set(e.name, at); at += e.name.length;
    out.set(e.data, at); at += e.data.length;
  }
  const cdStart = at;
  for (const e of entries) {
    u32(SIG_CENTRAL); u16(20); common(e);
    u16(0); u16(0); u16(0); u32(0); u32(e.offset); // comment length, disk, internal/external attributes
    out.set(e.name, at); at += e.name.length;
  }
  const cdSize = at - cdStart;
  u32(SIG_END); u16(0); u16(0); u16(entries.length); u16(entries.length); u32(cdSize); u32(cdStart); u16(0);
  return out;
}

const METHOD_NAMES: Record<number, string> = { 1: 'shrink', 6: 'implode', 9: 'deflate64', 12: 'bzip2', 14: 'LZMA', 93: 'Zstandard', 95: 'XZ', 98: 'PPMd' };

/** Inflates one deflate entry into exactly `size` bytes (what its record claims), or says what is wrong. */
function inflateEntry(packed: Uint8Array, size: number, shown: string): Uint8Array {
  let out: Uint8Array;
  try {
    // one byte more than claimed: a stream that inflates past its record's size is caught, never grown
    out = inflateSync(packed, { out: new Uint8Array(size + 1) });
  } catch (e) {
    throw new ZipError(`entry ${shown}: its deflate data is damaged (${(e as Error).message})`);
  }
  if (out.length !== size) {
    throw new ZipError(`entry ${shown} inflates to ${out.length > size ? `more than ${size}` : out.length} bytes, not the ${size} its record claims`);
  }
  return out.length === out.buffer.byteLength ? out : out.slice();
}

/** Default cap on the bytes unzip extracts in all (the page imports one model or adapter at a time). */
export const MAX_UNZIPPED_BYTES = 4 * 2 ** 30;
/**
 * Default bound on how many times larger a deflate entry may be than its compressed bytes. A model's
 * files compress little (float weights 1.1:1, a LoRA adapter with zero B at init 2:1, JSON and token
 * lists 3-20:1); deflate reaches 1032:1 on repeated bytes, which is what a zip bomb is made of (1.1 MB
 * inflating to 1 GiB). Entries of at most RATIO_FREE_BYTES are not held to it.
 */
export const MAX_RATIO = 100;
export const RATIO_FREE_BYTES = 2 ** 20;

/** An entry as the central directory lists it: its name, its size inflated and its packed size. */
export interface ZipEntryInfo {
  name: string;
  size: number;
  packed: number;
}

export interface UnzipOptions {
  /** Cap on the bytes extracted in all (default MAX_UNZIPPED_BYTES). */
  maxBytes?: number;
  /** Bound on a deflate entry's size over its packed size (default MAX_RATIO). */
  maxRatio?: number;
  /** Entries the caller has no use for: checked, neither inflated nor counted. */
  skip?: (name: string) => boolean;
  /**
   * The caller's bounds on what the archive may legitimately hold, given the listing once its structure
   * is checked and before anything else is inflated; `read` inflates one entry (a small config.json).
   */
  check?: (entries: readonly ZipEntryInfo[], read: (name: string) => Uint8Array) => void;
}

/**
 * Reads a zip archive of stored or deflate entries (name -> bytes, directories skipped); refuses other
 * compression methods and encryption.
 * Every central record is checked before anything is copied: its local header must be there and name
 * the same file, no two entries may share bytes (a 1 MiB archive whose 1,000 records point at one body
 * must not extract a gigabyte), and the total must stay under `maxBytes`.
 */
export function unzip(bytes: Uint8Array, opts: UnzipOptions = {}): Map<string, Uint8Array> {
  const maxBytes = opts.maxBytes ?? MAX_UNZIPPED_BYTES;
  const maxRatio = opts.maxRatio ?? MAX_RATIO;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 22) throw new ZipError(`not a zip archive: ${bytes.length} bytes is too short`);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (v.getUint32(i, true) === SIG_END) { end = i; break; }
  }
  if (end < 0) throw new ZipError('not a zip archive (no end-of-central-directory record)');
  const count = v.getUint16(end + 10, true);
  const cdSize = v.getUint32(end + 12, true);
  const cdStart = v.getUint32(end + 16, true);
  if (v.getUint16(end + 4, true) !== 0 || v.getUint16(end + 6, true) !== 0 || v.getUint16(end + 8, true) !== count) {
    throw new ZipError('multi-part (spanned) archives are not supported');
  }
  if (count === 0xffff || cdSize === LIMIT || cdStart === LIMIT) throw new ZipError('ZIP64 archives are not supported');
  if (cdStart + cdSize > end) throw new ZipError(`the central directory [${cdStart}, +${cdSize}] runs past its end record at ${end} (archive truncated?)`);
  if (count * 46 > cdSize) throw new ZipError(`the end record lists ${count} entries, more than its ${cdSize}-byte central directory can hold`);
  const dec = new TextDecoder();
  const nameOf = (b: Uint8Array) => printableName(dec.decode(b));
  // Pass 1: every record and its local header, nothing copied yet.
  const entries: { name: string; shown: string; crc: number; size: number; packed: number; deflate: boolean; local: number; start: number }[] = [];
  let at = cdStart;
  for (let k = 0; k < count; k++) {
    if (at + 46 > cdStart + cdSize || v.getUint32(at, true) !== SIG_CENTRAL) throw new ZipError(`central directory entry ${k + 1} of ${count} is damaged`);
    const flags = v.getUint16(at + 8, true);
    const method = v.getUint16(at + 10, true);
    const crc = v.getUint32(at + 16, true);
    const csize = v.getUint32(at + 20, true);
    const usize = v.getUint32(at + 24, true);
    const nameLen = v.getUint16(at + 28, true);
    const skip = nameLen + v.getUint16(at + 30, true) + v.getUint16(at + 32, true);
    const local = v.getUint32(at + 42, true);
    if (at + 46 + skip > cdStart + cdSize) throw new ZipError(`central directory entry ${k + 1} of ${count} runs past the directory`);
    const nameBytes = bytes.subarray(at + 46, at + 46 + nameLen);
    const name = dec.decode(nameBytes);
    const shown = printableName(name);
    at += 46 + skip;
    if (flags & 1) throw new ZipError(`entry ${shown} is encrypted; encrypted archives are not supported`);
    if (method !== 0 && method !== 8) {
      const how = METHOD_NAMES[method] ?? `method ${method}`;
      throw new ZipError(
        `entry ${shown} is compressed with ${how}; only stored and deflate entries can be read: ` +
          'upload the files themselves, or re-create the archive with plain zip (deflate) or zip -0',
      );
    }
    if (csize === LIMIT || usize === LIMIT) throw new ZipError(`entry ${shown} has ZIP64 sizes; ZIP64 archives are not supported`);
    if (method === 0 && csize !== usize) throw new ZipError(`entry ${shown} has inconsistent sizes (${csize} stored, ${usize} original)`);
    if (local + 30 > cdStart || v.getUint32(local, true) !== SIG_LOCAL) throw new ZipError(`entry ${shown}: local header missing at ${local}`);
    const localNameLen = v.getUint16(local + 26, true);
    const start = local + 30 + localNameLen + v.getUint16(local + 28, true);
    if (start + csize > cdStart) {
      throw new ZipError(start + csize > bytes.length ? `entry ${shown} runs past the end of the archive (truncated?)` : `entry ${shown} runs into the central directory`);
    }
    const localName = bytes.subarray(local + 30, local + 30 + localNameLen);
    if (localName.length !== nameBytes.length || localName.some((b, i) => b !== nameBytes[i])) {
      throw new ZipError(`entry ${shown}: its local header names ${nameOf(localName)} (the central directory and the local header disagree about the file's name)`);
    }
    // entries the caller has no use for (macOS resource forks, hidden files) are checked but not inflated or counted
    if (opts.skip?.(name)) continue;
    if (method === 8 && usize > RATIO_FREE_BYTES && usize > csize * maxRatio) {
      throw new ZipError(
        `entry ${shown} claims ${usize} bytes from ${csize} compressed, ${(usize / Math.max(csize, 1)).toFixed(0)}:1, more than the ` +
          `${maxRatio}:1 a model's files reach (a zip bomb?); nothing was extracted`,
      );
    }
    entries.push({ name, shown, crc, size: usize, packed: csize, deflate: method === 8, local, start });
  }
  // No two entries may share bytes (headers or data), and the total is bounded, before allocating.
  const byOffset = [...entries].sort((a, b) => a.local - b.local);
  let total = 0;
  for (let k = 0; k < byOffset.length; k++) {
    const e = byOffset[k];
    total += e.size;
    const next = byOffset[k + 1];
    if (next && next.local < e.start + e.packed) {
      throw new ZipError(`entries ${e.shown} and ${next.shown} share bytes of the archive (overlapping entries: a malformed or malicious zip)`);
    }
  }
  if (total > maxBytes) throw new ZipError(`the entries add up to ${total} bytes, more than the ${maxBytes} this reader extracts; nothing was extracted`);
  const extract = (e: (typeof entries)[number]): Uint8Array => {
    const data = e.deflate ? inflateEntry(bytes.subarray(e.start, e.start + e.packed), e.size, e.shown) : bytes.slice(e.start, e.start + e.size);
    if (crc32(data) !== e.crc) throw new ZipError(`entry ${e.shown} is corrupt (CRC-32 mismatch)`);
    return data;
  };
  // The caller's own bounds, on the listing (and the few small entries it reads), before the rest is inflated.
  const early = new Map<(typeof entries)[number], Uint8Array>();
  if (opts.check) {
    opts.check(entries.map((e) => ({ name: e.name, size: e.size, packed: e.packed })), (name) => {
      const e = entries.find((x) => x.name === name);
      if (!e) throw new ZipError(`entry ${printableName(name)} is not in the archive`);
      let data = early.get(e);
      if (!data) early.set(e, (data = extract(e)));
      return data;
    });
  }
  // Pass 2: copy and check each entry.
  const out = new Map<string, Uint8Array>();
  for (const e of entries) {
    const data = early.get(e) ?? extract(e);
    if (e.name.endsWith('/') && e.size === 0) continue; // a directory
    if (out.has(e.name)) throw new ZipError(`entry ${e.shown} appears twice`);
    out.set(e.name, data);
  }
  return out;
}
