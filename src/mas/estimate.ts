// How long a run or an experiment will take, from measured figures (issue 23 item 4: a big model on a
// software adapter takes seconds per step and a minute per evaluation episode, and nothing said so
// before a run that would take days). Pure arithmetic: the figures are measured elsewhere
// (measure-time.ts times one training step and one evaluation batch per method on this machine; the
// page reads the speed a finished run of the same base and method measured).

/** Beyond this the CLI and the page say plainly that the run takes long (30 minutes). */
export const LONG_RUN_SECONDS = 30 * 60;

/** One method's measured speed on this machine and base. */
export interface MethodTiming {
  method: string;
  /** Seconds per optimizer step (at the run's batch); 0 for a method that trains nothing. */
  stepSeconds: number;
  /** Seconds per evaluated episode (an evaluation batch's time over its episodes). */
  episodeSeconds: number;
}

/** What one (method, seed) run does: its training steps and the episodes it evaluates (splits and controls together). */
export interface RunWork {
  method: string;
  steps: number;
  evalEpisodes: number;
}

export interface Estimate {
  /** The whole: every run's training and evaluation. */
  seconds: number;
  trainSeconds: number;
  evalSeconds: number;
  /** Per method, one seed's seconds. */
  perRun: { method: string; seconds: number }[];
  runs: number;
}

function check(n: number, what: string, integer = false): void {
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`estimate: ${what} must be a ${integer ? 'whole number' : 'number'} >= 0, got ${n}`);
}

/** The time of `seeds` seeds of each run in `work`, at the measured speeds (a method without a timing is an error). */
export function estimateExperiment(work: readonly RunWork[], timings: readonly MethodTiming[], seeds: number): Estimate {
  check(seeds, 'seeds', true);
  let trainSeconds = 0;
  let evalSeconds = 0;
  const perRun: Estimate['perRun'] = [];
  for (const w of work) {
    check(w.steps, `${w.method}: steps`, true);
    check(w.evalEpisodes, `${w.method}: evaluation episodes`, true);
    const t = timings.find((x) => x.method === w.method);
    if (!t) throw new Error(`estimate: no measured timing of method ${w.method}`);
    check(t.stepSeconds, `${w.method}: seconds per step`);
    check(t.episodeSeconds, `${w.method}: seconds per episode`);
    const train = w.steps * t.stepSeconds;
    const ev = w.evalEpisodes * t.episodeSeconds;
    perRun.push({ method: w.method, seconds: train + ev });
    trainSeconds += seeds * train;
    evalSeconds += seeds * ev;
  }
  return { seconds: trainSeconds + evalSeconds, trainSeconds, evalSeconds, perRun, runs: seeds * work.length };
}

/** A duration in words: "45 s", "12 min", "3 h 20 min", "2.5 days". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '—';
  if (s < 90) return `${Math.max(1, Math.round(s))} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) {
    const h = Math.floor(s / 3600);
    const m = Math.round((s - h * 3600) / 60);
    return m === 60 ? `${h + 1} h` : m ? `${h} h ${m} min` : `${h} h`;
  }
  return `${(s / 86400).toFixed(1)} days`;
}

/** The plain warning for a run past the threshold (null below it). */
export function longRunWarning(seconds: number, threshold = LONG_RUN_SECONDS): string | null {
  if (!(seconds > threshold)) return null;
  return `warning: this takes about ${formatSeconds(seconds)}, past ${formatSeconds(threshold)}; fewer steps, seeds, methods or evaluation episodes, or a smaller base, make it shorter`;
}
