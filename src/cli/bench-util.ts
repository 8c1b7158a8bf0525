// Shared pieces of `npm run bench` (src/cli/bench.ts): the row and check records, timing that
// interleaves the candidates (so a load spike from other processes hits ours and the reference
// alike), seeded data, printing.
import type { Tf } from './tfjs';

export type BenchUnit = 'GFLOP/s' | 'tokens/s';

/** One measurement: ours beside a reference measured in the same run; ratio = ours / reference
 * (higher is better for us). */
export interface BenchRow {
  section: string;
  name: string;
  unit: BenchUnit;
  ours: number;
  reference: number | null;
  referenceName: string;
  ratio: number | null;
  extra?: Record<string, number | string>;
}

/** A property that is checked rather than timed (no per-step compilation, memory budget, ...). */
export interface BenchCheck {
  section: string;
  name: string;
  ok: boolean;
  /** What was measured, with its unit in the key. */
  values: Record<string, number | string>;
  detail: string;
}

export interface BenchContext {
  minMs: number;
  /** Timing rounds of the training step (slow: seconds per call on CPU adapters). */
  trainRounds: number;
  /** Timing rounds: each candidate is timed once per round, candidates alternating. */
  rounds: number;
  /** Runs the CPU (float64/JS) references where affordable. */
  cpu: boolean;
  tf: Tf | null;
  log: (line: string) => void;
}

const now = () => performance.now();

export interface TimeStats {
  /** Median milliseconds per call. */
  median: number;
  /** Fastest call: background load only ever adds time, so this is the least disturbed figure. */
  best: number;
  samples: number;
}

/**
 * Times each candidate: one warm-up call each (pipeline compilation, first uploads), then `rounds`
 * rounds in which each candidate runs for at least minMs / rounds (and at least once). Returns the
 * median and the best milliseconds per call of each candidate.
 */
export async function timeCandidateStats(
  fns: Record<string, () => Promise<void>>, minMs: number, rounds = 2, maxRepsPerRound = 500,
): Promise<Record<string, TimeStats>> {
  const names = Object.keys(fns);
  const samples: Record<string, number[]> = {};
  for (const n of names) {
    await fns[n]();
    samples[n] = [];
  }
  const perRound = minMs / Math.max(1, rounds);
  for (let r = 0; r < rounds; r++) {
    for (const n of names) {
      const start = now();
      let reps = 0;
      while (reps === 0 || (now() - start < perRound && reps < maxRepsPerRound)) {
        const t0 = now();
        await fns[n]();
        samples[n].push(now() - t0);
        reps++;
      }
    }
  }
  const out: Record<string, TimeStats> = {};
  for (const n of names) out[n] = { median: median(samples[n]), best: Math.min(...samples[n]), samples: samples[n].length };
  return out;
}

/** timeCandidateStats, medians only. */
export async function timeCandidates(
  fns: Record<string, () => Promise<void>>, minMs: number, rounds = 2, maxRepsPerRound = 500,
): Promise<Record<string, number>> {
  const st = await timeCandidateStats(fns, minMs, rounds, maxRepsPerRound);
  return Object.fromEntries(Object.entries(st).map(([k, v]) => [k, v.median]));
}

/** Times a slow CPU reference: `reps` calls after no warm-up (JIT noise is small next to seconds). */
export async function timeOnce(fn: () => unknown, reps = 1): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = now();
    await fn();
    best = Math.min(best, now() - t0);
  }
  return best;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Seeded uniform values in [-scale, scale) (LCG; enough for benchmark inputs). */
export function randData(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/** Waits until tfjs's WebGPU backend has finished everything queued so far (no readback). */
export async function tfSync(tf: Tf): Promise<void> {
  // What the backend itself does before a readback (getBufferData): end the pass, submit.
  const b = tf.backend() as unknown as {
    commandEncoder: GPUCommandEncoder | null; endComputePassEncoder(): void; submitQueue(): void; queue: GPUQueue;
  };
  if (b.commandEncoder) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
  await b.queue.onSubmittedWorkDone();
}

export function fmt(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return v === null ? '-' : String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

export function makeRow(
  section: string, name: string, unit: BenchUnit, ours: number, reference: number | null, referenceName: string,
  extra?: Record<string, number | string>,
): BenchRow {
  return { section, name, unit, ours, reference, referenceName, ratio: reference ? ours / reference : null, ...(extra ? { extra } : {}) };
}

export function formatRow(r: BenchRow): string {
  const extra = r.extra ? '  ' + Object.entries(r.extra).map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`).join(' ') : '';
  const ratio = r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`;
  return (
    `${r.section.padEnd(9)} ${r.name.padEnd(30)} ours ${fmt(r.ours).padStart(8)} ${r.unit.padEnd(8)} ` +
    `${r.referenceName} ${fmt(r.reference).padStart(8)}  ratio ${ratio.padStart(6)}${extra}`
  );
}

export function formatCheck(c: BenchCheck): string {
  const vals = Object.entries(c.values).map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`).join(' ');
  return `${c.section.padEnd(9)} check ${c.name.padEnd(24)} ${c.ok ? 'OK  ' : 'FAIL'}  ${c.detail}${vals ? `  (${vals})` : ''}`;
}
