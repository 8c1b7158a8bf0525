// ggml's tensor types and the dequantization to float32 of those the importer reads: F32, F16, BF16,
// Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K. Block layouts as ggml defines them (ggml-common.h: block_q4_0
// and friends; QK_K = 256 for the K-quants) and as gguf-py's quants.py reads them. Every product and
// sum is rounded to float32 in the order quants.py computes it (numpy float32, no fused multiply-add),
// so the results are bit for bit those of gguf.quants.dequantize (python/tests/test_gguf_import.py).
// Every other type is refused by name.
import { f16ToF32 } from './safetensors';

export interface GgmlType {
  name: string;
  /** Values per block, and bytes per block. */
  blockSize: number;
  typeSize: number;
}

/** Every type ggml knows (gguf-py 0.19's GGML_QUANT_SIZES), by id; 4, 5 and 31-33, 36-38 were removed from ggml. */
export const GGML_TYPES: Record<number, GgmlType> = Object.fromEntries(
  ([
    [0, 'F32', 1, 4], [1, 'F16', 1, 2], [2, 'Q4_0', 32, 18], [3, 'Q4_1', 32, 20], [6, 'Q5_0', 32, 22], [7, 'Q5_1', 32, 24],
    [8, 'Q8_0', 32, 34], [9, 'Q8_1', 32, 40], [10, 'Q2_K', 256, 84], [11, 'Q3_K', 256, 110], [12, 'Q4_K', 256, 144],
    [13, 'Q5_K', 256, 176], [14, 'Q6_K', 256, 210], [15, 'Q8_K', 256, 292], [16, 'IQ2_XXS', 256, 66], [17, 'IQ2_XS', 256, 74],
    [18, 'IQ3_XXS', 256, 98], [19, 'IQ1_S', 256, 50], [20, 'IQ4_NL', 32, 18], [21, 'IQ3_S', 256, 110], [22, 'IQ2_S', 256, 82],
    [23, 'IQ4_XS', 256, 136], [24, 'I8', 1, 1], [25, 'I16', 1, 2], [26, 'I32', 1, 4], [27, 'I64', 1, 8], [28, 'F64', 1, 8],
    [29, 'IQ1_M', 256, 56], [30, 'BF16', 1, 2], [34, 'TQ1_0', 256, 54], [35, 'TQ2_0', 256, 66], [39, 'MXFP4', 32, 17],
    [40, 'NVFP4', 64, 36], [41, 'Q1_0', 128, 18],
  ] as const).map(([id, name, blockSize, typeSize]) => [id, { name, blockSize, typeSize }]),
);

/** The types dequantize() reads. */
export const SUPPORTED_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_K', 'Q6_K'] as const;

export function ggmlTypeName(type: number): string {
  return GGML_TYPES[type]?.name ?? `unknown type ${type}`;
}

/** The bytes `elements` values of `type` take (elements a multiple of the block size). */
export function tensorBytes(type: number, elements: number): number {
  const t = GGML_TYPES[type];
  return (elements / t.blockSize) * t.typeSize;
}

export class UnsupportedTypeError extends Error {
  constructor(readonly typeName: string, where: string) {
    super(`${where} is stored as ${typeName}, which this importer does not dequantize (it reads ${SUPPORTED_TYPES.join(', ')}); ` +
      're-quantize the model to one of those with llama.cpp\'s llama-quantize, or use its F16 file');
    this.name = 'UnsupportedTypeError';
  }
}

let F16_TABLE: Float32Array | null = null;
/** All 65536 halves as float32 (exact: every half is a float32). */
function f16Table(): Float32Array {
  if (!F16_TABLE) {
    F16_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) F16_TABLE[h] = f16ToF32(h);
  }
  return F16_TABLE;
}

const f = Math.fround;

/**
 * `elements` values of `type` in `bytes` (exactly tensorBytes(type, elements) of them) to float32.
 * `where` names the tensor in errors.
 */
export function dequantize(type: number, bytes: Uint8Array, elements: number, where: string): Float32Array {
  const t = GGML_TYPES[type];
  if (!t) throw new UnsupportedTypeError(ggmlTypeName(type), where);
  if (elements % t.blockSize !== 0) throw new Error(`${where}: ${elements} values are not whole ${t.name} blocks of ${t.blockSize}`);
  const need = tensorBytes(type, elements);
  if (bytes.length !== need) throw new Error(`${where}: ${t.name} x ${elements} takes ${need} bytes, got ${bytes.length}`);
  const out = new Float32Array(elements);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const H = f16Table();
  const half = (at: number) => H[v.getUint16(at, true)];
  const nb = elements / t.blockSize;
  switch (t.name) {
    case 'F32':
      for (let i = 0; i < elements; i++) out[i] = v.getFloat32(i * 4, true);
      return out;
    case 'F16':
      for (let i = 0; i < elements; i++) out[i] = half(i * 2);
      return out;
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < elements; i++) u[i] = v.getUint16(i * 2, true) << 16;
      return out;
    }
    case 'Q8_0':
      // block_q8_0: d (f16), qs[32] (int8); y = qs * d
      for (let b = 0; b < nb; b++) {
        const at = b * 34;
        const d = half(at);
        for (let j = 0; j < 32; j++) out[b * 32 + j] = f(v.getInt8(at + 2 + j) * d);
      }
      return out;
    case 'Q4_0':
      // block_q4_0: d (f16), qs[16]; value j is the low nibble of qs[j], value j+16 the high one; y = (q - 8) * d
      for (let b = 0; b < nb; b++) {
        const at = b * 18;
        const d = half(at);
        for (let j = 0; j < 16; j++) {
          const q = bytes[at + 2 + j];
          out[b * 32 + j] = f(d * ((q & 15) - 8));
          out[b * 32 + j + 16] = f(d * ((q >> 4) - 8));
        }
      }
      return out;
    case 'Q4_1':
      // block_q4_1: d, m (f16), qs[16] as Q4_0; y = d * q + m
      for (let b = 0; b < nb; b++) {
        const at = b * 20;
        const d = half(at);
        const m = half(at + 2);
        for (let j = 0; j < 16; j++) {
          const q = bytes[at + 4 + j];
          out[b * 32 + j] = f(f(d * (q & 15)) + m);
          out[b * 32 + j + 16] = f(f(d * (q >> 4)) + m);
        }
      }
      return out;
    case 'Q4_K':
    case 'Q5_K': {
      // block_q4_K: d, dmin (f16), scales[12] (eight 6-bit scales and mins), qs[128]; block_q5_K puts
      // qh[32] (the fifth bits) between scales and qs. Sub-block s (32 values) of each 64 takes the
      // low (s even) or high (s odd) nibbles of qs[32*(s>>1) ..]; its fifth bit is bit s of qh[l].
      // y = (d * sc[s]) * q - (dmin * m[s])
      const five = t.name === 'Q5_K';
      const size = t.typeSize;
      const sc = new Uint8Array(8);
      const mn = new Uint8Array(8);
      for (let b = 0; b < nb; b++) {
        const at = b * size;
        const d = half(at);
        const dmin = half(at + 2);
        scaleMins(bytes, at + 4, sc, mn);
        const qh = at + 16;
        const qs = five ? at + 48 : at + 16;
        for (let s = 0; s < 8; s++) {
          const d1 = f(d * sc[s]);
          const m1 = f(dmin * mn[s]);
          const shift = (s & 1) * 4;
          const base = qs + 32 * (s >> 1);
          const o = b * 256 + s * 32;
          for (let l = 0; l < 32; l++) {
            let q = (bytes[base + l] >> shift) & 15;
            if (five) q |= ((bytes[qh + l] >> s) & 1) << 4;
            out[o + l] = f(f(d1 * q) - m1);
          }
        }
      }
      return out;
    }
    case 'Q6_K':
      // block_q6_K: ql[128], qh[64], scales[16] (int8), d (f16). Each half (128 values, h = 0, 1): value
      // r takes the low (r < 64) or high nibble of ql[64h + r % 64] and bits 2*(r >> 5) of qh[32h + r % 32];
      // q = that 6-bit number - 32; y = (d * scales[index / 16]) * q
      for (let b = 0; b < nb; b++) {
        const at = b * 210;
        const d = half(at + 208);
        for (let h = 0; h < 2; h++) {
          for (let r = 0; r < 128; r++) {
            const low = (bytes[at + 64 * h + (r & 63)] >> (r < 64 ? 0 : 4)) & 15;
            const high = (bytes[at + 128 + 32 * h + (r & 31)] >> (2 * (r >> 5))) & 3;
            const i = h * 128 + r;
            const scale = f(d * v.getInt8(at + 192 + (i >> 4)));
            out[b * 256 + i] = f(scale * ((low | (high << 4)) - 32));
          }
        }
      }
      return out;
    default:
      throw new UnsupportedTypeError(t.name, where);
  }
}

/**
 * The eight 6-bit scales and mins of a Q4_K / Q5_K block (ggml's get_scale_min_k4): bytes 0-3 hold
 * scales 0-3 in their low six bits, 4-7 the mins 0-3; scales and mins 4-7 take their low four bits
 * from bytes 8-11 (low and high nibble) and their top two from the top bits of bytes 0-3 and 4-7.
 */
function scaleMins(q: Uint8Array, at: number, sc: Uint8Array, mn: Uint8Array): void {
  for (let j = 0; j < 4; j++) {
    sc[j] = q[at + j] & 63;
    mn[j] = q[at + j + 4] & 63;
    sc[j + 4] = (q[at + j + 8] & 15) | ((q[at + j] >> 6) << 4);
    mn[j + 4] = (q[at + j + 8] >> 4) | ((q[at + j + 4] >> 6) << 4);
  }
}
