// Bits measured, not defined: the received K/V quantised to k bits per float before the receiver reads
// it (Run.evaluate's prefix edit), and the smallest k that keeps the accuracy.
//
// Schemes, per received vector = one position, one layer, K or V, one KV head (hd floats):
//   k = 16     IEEE 754 half precision: each float rounded to the nearest float16 (ties to even;
//              below 2^-14 to the subnormal grid of 2^-24; beyond 65520 to +-Infinity, as IEEE does)
//   2 <= k <= 8  symmetric uniform: s = absmax / (2^(k-1) - 1), x -> s * clamp(round(x / s)) with
//              round half away from zero, integers -(2^(k-1) - 1) .. 2^(k-1) - 1 (2^k - 1 levels;
//              the vector's scale s is one more number per vector, counted apart: scaleBits)
//   k = 1      x -> sign(x) * mean |x| over the vector (sign(0) = +1)
// An all-zero vector stays zero. Bits per latent position = k x the floats of one position (every
// layer's K and V: 2 L Hkv hd), beside log2 V bits per text token.
//
// Pure TypeScript: no GPU, no DOM.

/** The bit widths the sweep tries, widest first. */
export const BIT_WIDTHS: readonly number[] = [16, 8, 4, 2, 1];
/** Accuracy may drop by at most this much (one point) for a width to count as keeping it. */
export const BITS_TOLERANCE = 0.01;
/** Bits of the per-vector scale of the k <= 8 schemes (stored as a float16). */
export const SCALE_BITS = 16;

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** x rounded to the nearest IEEE half-precision value (ties to even), as a number. */
export function toHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity; // 65520 = 65504 + half an ulp: ties go to even, i.e. overflow
  // the grid spacing at a: 2^(e - 10) for a normal half with exponent e, 2^-24 below 2^-14
  F32[0] = a;
  let e = ((U32[0] >>> 23) & 0xff) - 127;
  if (e < -14) e = -14;
  const ulp = 2 ** (e - 10);
  const q = a / ulp; // exact: a power-of-two divide
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
  return Math.sign(x) * r * ulp;
}

/** Quantises vec[off .. off+len) in place with k bits per float (the schemes above). */
export function quantizeVector(vec: Float32Array, off: number, len: number, k: number): void {
  if (k === 16) {
    for (let i = off; i < off + len; i++) vec[i] = toHalf(vec[i]);
    return;
  }
  if (k === 1) {
    let s = 0;
    for (let i = off; i < off + len; i++) s += Math.abs(vec[i]);
    const m = s / len;
    for (let i = off; i < off + len; i++) vec[i] = vec[i] < 0 ? -m : m;
    return;
  }
  if (!Number.isInteger(k) || k < 2 || k > 8) throw new Error(`quantize: ${k} bits per float is not a scheme here (have ${BIT_WIDTHS.join(', ')}, or 2..8)`);
  let amax = 0;
  for (let i = off; i < off + len; i++) amax = Math.max(amax, Math.abs(vec[i]));
  if (amax === 0) return;
  const top = 2 ** (k - 1) - 1;
  const s = amax / top;
  for (let i = off; i < off + len; i++) {
    const q = Math.min(top, Math.floor(Math.abs(vec[i]) / s + 0.5));
    vec[i] = Math.sign(vec[i]) * q * s;
  }
}

/** Every vector of a received prefix (rows of width W = heads * hd) quantised to k bits per float: a new array. */
export function quantizeRows(values: Float32Array, rows: number, W: number, hd: number, k: number): Float32Array {
  if (W % hd !== 0) throw new Error(`quantize: width ${W} is not a whole number of ${hd}-wide heads`);
  if (values.length < rows * W) throw new Error(`quantize: ${values.length} values hold fewer than ${rows} rows of ${W}`);
  const out = values.slice();
  for (let o = 0; o < rows * W; o += hd) quantizeVector(out, o, hd, k);
  return out;
}

/** Bits per received position at k bits per float: the floats and, for 2..8 bits, one scale per vector. */
export function positionBits(k: number, dims: { L: number; Hkv: number; hd: number }): { floats: number; bits: number; scaleBits: number } {
  const floats = 2 * dims.L * dims.Hkv * dims.hd;
  const vectors = 2 * dims.L * dims.Hkv;
  return { floats, bits: k * floats, scaleBits: k >= 2 && k <= 8 ? SCALE_BITS * vectors : 0 };
}

/**
 * The smallest width that keeps the accuracy: the smallest k such that k and every wider width tried
 * are within BITS_TOLERANCE of the unquantised accuracy (so a lucky narrow width past a failing wider
 * one does not count). null: not even the widest does.
 */
export function smallestKeepingBits(unquantized: number, levels: readonly { bits: number; accuracy: number }[], tolerance = BITS_TOLERANCE): number | null {
  const sorted = [...levels].sort((a, b) => b.bits - a.bits);
  let best: number | null = null;
  for (const l of sorted) {
    // a tiny slack for accuracies that are ratios of the same episode count
    if (l.accuracy < unquantized - tolerance - 1e-12) break;
    best = l.bits;
  }
  return best;
}
