import { describe, expect, it } from 'vitest';
import {
  bf16ToF32, decodeSafetensors, encodeSafetensors, f16ToF32, readSafetensorsHeader, type TensorToWrite,
} from '../src/storage/safetensors';

/** A safetensors file from a header string (written as is, unpadded) and data bytes. */
function build(header: string, data: ArrayLike<number> = []): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(Array.from(data), 8 + h.length);
  return out;
}

const u16le = (...xs: number[]) => xs.flatMap((x) => [x & 0xff, x >> 8]);
const f32le = (...xs: number[]) => {
  const b = new Uint8Array(xs.length * 4);
  xs.forEach((x, i) => new DataView(b.buffer).setFloat32(i * 4, x, true));
  return [...b];
};

describe('safetensors writer and reader', () => {
  it('round-trips F32 tensors bit-exactly, with metadata, sorted names and a padded header', () => {
    const special = new Float32Array([0, -0, 1.5, -3.25e-38, 1e-45, 3.4028234663852886e38, NaN, -Infinity, Infinity]);
    const tensors = new Map<string, TensorToWrite>([
      ['zeta.weight', { shape: [3, 3], data: special }],
      ['alpha', { shape: [], data: new Float32Array([42]) }],
      ['empty', { shape: [0, 5], data: new Float32Array(0) }],
      ['model.layers.10.x', { shape: [7], data: Float32Array.from({ length: 7 }, (_, i) => i / 3) }],
      ['model.layers.2.x', { shape: [1, 2, 1], data: new Float32Array([-1, 2]) }],
    ]);
    const bytes = encodeSafetensors(tensors, { format: 'pt', note: 'héllo' });
    const { entries, metadata, dataStart } = readSafetensorsHeader(bytes);
    expect(dataStart % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, dataStart));
    expect(headerText).toMatch(/^\{"__metadata__":\{"format":"pt","note":"héllo"\}/);
    const padding = /( *)$/.exec(headerText)![1].length; // the JSON ends in '}', then only spaces
    expect(headerText[headerText.length - padding - 1]).toBe('}');
    expect(padding).toBeLessThan(8);
    // Written in sorted name order, packed one after the other.
    const names = entries.map((e) => e.name);
    expect(names).toEqual([...tensors.keys()].sort());
    let at = 0;
    for (const e of [...entries].sort((a, b) => a.begin - b.begin)) {
      expect(e.begin).toBe(at);
      at = e.end;
    }
    expect(at).toBe(bytes.length - dataStart);
    expect(metadata).toEqual({ format: 'pt', note: 'héllo' });

    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual({ format: 'pt', note: 'héllo' });
    for (const [name, t] of tensors) {
      const got = back.tensors.get(name)!;
      expect(got.dtype).toBe('F32');
      expect(got.shape).toEqual(t.shape);
      expect(new Uint8Array(got.data.buffer)).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
  });

  it('writes the same bytes as the reference implementation for a 2x2 zero tensor', () => {
    // From safetensors' own test_serialization (torch.zeros((2, 2)), there int32; the same layout in F32):
    // header length 64 (0x40), compact JSON padded with 4 spaces, then 16 zero bytes.
    const json = '{"test":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}    ';
    const expected = build(json, new Array(16).fill(0));
    expect(expected[0]).toBe(0x40);
    const got = encodeSafetensors(new Map([['test', { shape: [2, 2], data: new Float32Array(4) }]]));
    expect(got).toEqual(expected);
  });

  it('reads a file with no padding and a subarray of a larger buffer (unaligned F32 data)', () => {
    const file = build('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32le(1.25, -7));
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    const t = decodeSafetensors(big.subarray(3)).tensors.get('a')!;
    expect(Array.from(t.data)).toEqual([1.25, -7]);
  });

  it('decodes F16 and BF16 to F32 against known values, at unaligned offsets', () => {
    // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), 2^-14 (smallest normal), 0x3555, -0, inf, -inf
    const f16 = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0x8000, 0x7c00, 0xfc00];
    const f16Values = [1, -2, 65504, 2 ** -24, 2 ** -14, 0.333251953125, -0, Infinity, -Infinity];
    // BF16: 1, -3, 3.140625, 0.333984375, 1/128 - 2^-15 (0x3bff), inf
    const bf16 = [0x3f80, 0xc040, 0x4049, 0x3eab, 0x3bff, 0x7f80];
    const bf16Values = [1, -3, 3.140625, 0.333984375, 0.0078125 - 2 ** -15, Infinity];
    const header = JSON.stringify({
      h: { dtype: 'F16', shape: [3, 3], data_offsets: [0, 18] },
      b: { dtype: 'BF16', shape: [6], data_offsets: [18, 30] },
      f: { dtype: 'F32', shape: [1], data_offsets: [30, 34] }, // starts at a byte offset of 30
      n: { dtype: 'F16', shape: [1], data_offsets: [34, 36] },
    });
    const file = build(header, [...u16le(...f16), ...u16le(...bf16), ...f32le(0.1), ...u16le(0x7e00)]);
    const got = decodeSafetensors(file).tensors;
    expect(got.get('h')!.dtype).toBe('F16');
    expect(got.get('h')!.shape).toEqual([3, 3]);
    expect(Array.from(got.get('h')!.data)).toEqual(f16Values);
    expect(Object.is(got.get('h')!.data[6], -0)).toBe(true);
    expect(got.get('b')!.dtype).toBe('BF16');
    expect(Array.from(got.get('b')!.data)).toEqual(bf16Values);
    expect(got.get('f')!.data[0]).toBe(Math.fround(0.1));
    expect(got.get('n')!.data[0]).toBeNaN();
    // The scalar converters agree with the bulk path.
    f16.forEach((h, i) => expect(f16ToF32(h)).toBe(f16Values[i]));
    bf16.forEach((b, i) => expect(bf16ToF32(b)).toBe(bf16Values[i]));
    expect(bf16ToF32(0x0001)).toBe(2 ** -133); // bf16 subnormal
  });
});

describe('safetensors reader refuses malformed files, saying what is wrong', () => {
  const ok = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', new Uint8Array([1, 0, 0]), /file is 3 bytes, shorter than the 8-byte header length/],
    ['an empty file', new Uint8Array(0), /file is 0 bytes/],
    ['a header length beyond the file', build(ok, f32le(1, 2)).subarray(0, 40), /header length says 54 bytes but the file has only 32/],
    [
      'a huge 64-bit header length',
      (() => {
        const b = build(ok, f32le(1, 2));
        b[7] = 0x80;
        return b;
      })(),
      /header length says \d+ bytes but the file has only/,
    ],
    ['invalid JSON', build('{"a": {"dtype": "F32",', []), /header is not valid JSON/],
    ['invalid UTF-8', build('{"\xff"}').map((x, i) => (i === 10 ? 0xff : x)), /not valid UTF-8/],
    ['a JSON array header', build('[1, 2, 3]'), /header must be a JSON object of tensors, got an array/],
    ['a JSON null header', build('null'), /header must be a JSON object of tensors, got null/],
    ['a JSON number header', build('42'), /header must be a JSON object of tensors, got number/],
    ['a tensor entry that is not an object', build('{"a":[0,8]}', f32le(1, 2)), /tensor "a": expected an object with dtype, shape and data_offsets, got an array/],
    ['offsets past the end of the data', build('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f32le(1, 2)), /tensor "a": data_offsets \[0, 16\] run past the end of the data \(8 bytes/],
    [
      'overlapping tensors',
      build('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', f32le(1, 2, 3)),
      /tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/,
    ],
    ['offsets not matching dtype x shape', build('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', f32le(1, 2)), /data_offsets \[0, 8\] hold 8 bytes but dtype F32 with shape \[3\] needs 12/],
    ['F16 offsets sized as F32', build('{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}', f32le(1, 2)), /hold 8 bytes but dtype F16 with shape \[2\] needs 4/],
    ['end before begin', build('{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', f32le(1, 2)), /data_offsets \[8, 0\] end before they begin/],
    ['malformed offsets', build('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', f32le(1, 2)), /data_offsets must be \[begin, end\]/],
    ['a malformed shape', build('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', f32le(1, 2)), /shape must be a list of non-negative integers, got \[-2\]/],
    ['an unsupported dtype, named', build('{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', f32le(1, 2)), /tensor "a" has dtype I64, which is not supported here \(supported: F32, F16, BF16\)/],
    ['an unknown dtype, named', build('{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', f32le(1, 2)), /tensor "a" has unknown dtype "F33"/],
    ['a missing dtype', build('{"a":{"shape":[2],"data_offsets":[0,8]}}', f32le(1, 2)), /tensor "a": dtype is missing/],
    [
      'a hole between tensors',
      build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', f32le(1, 2, 3)),
      /bytes \[4, 8\) of the data belong to no tensor \(a hole before "b"\)/,
    ],
    ['trailing bytes', build(ok, f32le(1, 2, 3)), /data has 12 bytes but the tensors cover only 8/],
    ['metadata that is not a string map', build('{"__metadata__":{"format":1}}'), /__metadata__ value of "format" must be a string, got number/],
  ];
  for (const [what, bytes, message] of cases) {
    it(what, () => {
      expect(() => decodeSafetensors(bytes)).toThrow(message);
      expect(() => decodeSafetensors(bytes)).toThrow(/^safetensors: /);
    });
  }

  it('the writer refuses data that does not match its shape, and reserved names', () => {
    expect(() => encodeSafetensors(new Map([['w', { shape: [2, 3], data: new Float32Array(5) }]]))).toThrow(
      /tensor "w" has 5 values but shape \[2, 3\] needs 6/,
    );
    expect(() => encodeSafetensors(new Map([['__metadata__', { shape: [1], data: new Float32Array(1) }]]))).toThrow(/cannot be a tensor name/);
  });
});
