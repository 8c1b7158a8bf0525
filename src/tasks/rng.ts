// Seeded randomness for everything that must be reproducible: task data, parameter init, sampling,
// shuffles. One experiment seed derives independent named streams by hashing (never by offsetting
// the seed), so reseeding a run reseeds every stream at once (TensorFlow Playground's issue #25 was a
// reset that forgot to reseed the initialisation).
//
// Generator: mulberry32 (32-bit state, period 2^32, passes the usual quick statistical batteries,
// a handful of integer ops per draw). Seeds and labels are mixed with murmur3's finaliser.
//
// Pure TypeScript: no DOM, no Node API; runs in the browser worker and in Node alike.

/** murmur3 fmix32: a bijective avalanche mix of a 32-bit integer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit hash of a string (UTF-16 code units, murmur3-style mixing), optionally salted. */
export function hashString(s: string, salt = 0): number {
  let h = (salt ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < s.length; i++) {
    let k = Math.imul(s.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }
  return fmix32(h ^ s.length);
}

function checkSeed(seed: number): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new Error(`seed must be a safe integer, got ${String(seed)}`);
  }
  // Integers beyond 2^32 (and negative ones) keep their high bits (so 1 and 2^32 + 1 differ).
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return hi === 0 ? lo : fmix32(lo ^ fmix32(hi + 0x632be5ab));
}

/** A 32-bit seed derived from `seed` and a path of labels: distinct labels give unrelated seeds. */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  let h = fmix32(checkSeed(seed) ^ 0x243f6a88);
  for (const label of labels) {
    const part = typeof label === 'number' ? `#${label}` : `$${label}`;
    h = fmix32(h ^ hashString(part, h));
  }
  return h;
}

/** A seeded pseudo-random stream (mulberry32). */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = checkSeed(seed);
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [lo, hi) (hi exclusive). Throws when the range is empty. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo) {
      throw new Error(`Rng.int: need integers lo < hi, got [${lo}, ${hi})`);
    }
    const span = hi - lo;
    if (span <= 4294967296) return lo + Math.floor(this.next() * span);
    // Wide ranges: 53 bits from two draws.
    const r = (this.nextUint32() * 2097152 + (this.nextUint32() >>> 11)) / 9007199254740992;
    return lo + Math.floor(r * span);
  }

  /** Uniform float in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element. Throws on an empty array. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.choice: empty array');
    return items[this.int(0, items.length)];
  }

  /** An index drawn with probability proportional to weights[i] (non-negative, not all zero). */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) {
      if (!(w >= 0) || !Number.isFinite(w)) throw new Error(`Rng.weighted: bad weight ${w}`);
      total += w;
    }
    if (total <= 0) throw new Error('Rng.weighted: all weights are zero');
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0 && weights[i] > 0) return i;
    }
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return i;
    return 0;
  }

  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /** A shuffled copy. */
  shuffled<T>(items: readonly T[]): T[] {
    return this.shuffle(items.slice());
  }

  /** k distinct elements in random order (k <= items.length). */
  sample<T>(items: readonly T[], k: number): T[] {
    if (!Number.isInteger(k) || k < 0 || k > items.length) {
      throw new Error(`Rng.sample: cannot draw ${k} distinct items from ${items.length}`);
    }
    const a = items.slice();
    for (let i = 0; i < k; i++) {
      const j = this.int(i, a.length);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a.slice(0, k);
  }

  /** Gaussian draw (Box-Muller). */
  normal(mean = 0, std = 1): number {
    const u = 1 - this.next(); // (0, 1]: log is finite
    const v = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fills an array with Gaussian draws. */
  fillNormal(out: Float32Array | Float64Array, mean = 0, std = 1): typeof out {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** An independent child stream named by `label`; advances this stream by one draw. */
  fork(label: string | number): Rng {
    return new Rng(deriveSeed(this.nextUint32(), label));
  }

  /** The internal state, to checkpoint and later resume the stream with setState. */
  getState(): number {
    return this.s;
  }

  setState(state: number): void {
    if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) {
      throw new Error(`Rng.setState: state must be a uint32, got ${state}`);
    }
    this.s = state >>> 0;
  }
}

/** The independent named streams of one experiment. */
export interface RngStreams {
  /** task episodes and corpus sequences */
  data: Rng;
  /** parameter and adapter initialisation */
  init: Rng;
  /** decoding / sampling of tokens */
  sampling: Rng;
  /** batch order and message shuffles (controls) */
  shuffle: Rng;
}

export const STREAM_NAMES = ['data', 'init', 'sampling', 'shuffle'] as const;

/** Derives the four named streams from one seed by hashing (seed, name). */
export function streams(seed: number): RngStreams {
  return {
    data: new Rng(deriveSeed(seed, 'data')),
    init: new Rng(deriveSeed(seed, 'init')),
    sampling: new Rng(deriveSeed(seed, 'sampling')),
    shuffle: new Rng(deriveSeed(seed, 'shuffle')),
  };
}
