// The page's estimate of a setup's time (issue 23 item 4): Train (one run, as the run controller
// drives it: its steps and a heldout evaluation every evalEvery steps, or once at the end) or Compare
// (the experiment: every method and seed, both splits and the controls), from one training step and
// one evaluation batch per method timed on this device (measure-time.ts) and worded with the warning
// past LONG_RUN_SECONDS (estimate.ts). Engine side: the worker runs it, the page shows the report.
import type { Gpu } from '../gpu/runtime';
import { estimateExperiment, formatSeconds, longRunWarning, type MethodTiming, type RunWork } from './estimate';
import { CONTROLS, EVAL_SPLITS } from './experiment';
import { measureTimings, runWork } from './measure-time';
import { validateRunConfig } from './methods';
import { makeTask } from '../tasks/tasks';
import { evalEpisodes } from './run-data';
import { MasEngine } from './run';
import type { CompareRequest, RunConfig } from './run-types';
import type { BaseModel } from './types';

export type TimeMode = 'run' | 'compare';

export interface TimeEstimateReport {
  mode: TimeMode;
  seconds: number;
  trainSeconds: number;
  evalSeconds: number;
  runs: number;
  timings: MethodTiming[];
  work: RunWork[];
  /** One line: the figure and what it is made of. */
  summary: string;
  /** The plain warning past 30 minutes, else null. */
  warning: string | null;
}

/** What the page's Train does with a run: its steps, and a heldout evaluation every evalEvery steps (the last step's too), or one at the end. */
export function pageRunWork(config: RunConfig): RunWork {
  const { spec } = validateRunConfig(config);
  const heldout = evalEpisodes(makeTask(config.task, config.difficulty), config, 'heldout').length;
  const trains = spec.train !== 'none';
  const evaluations = trains && config.evalEvery > 0 ? Math.ceil(config.steps / config.evalEvery) : 1;
  return { method: config.method, steps: trains ? config.steps : 0, evalEpisodes: evaluations * heldout };
}

/** Times the setup's methods on `gpu` and estimates Train (the first method, first seed) or Compare (every method and seed). */
export async function estimateSetupTime(gpu: Gpu, base: BaseModel, req: CompareRequest, mode: TimeMode): Promise<TimeEstimateReport> {
  if (!req.methods.length) throw new Error('choose at least one method');
  if (!req.seeds.length) throw new Error('give at least one seed');
  const methods = mode === 'run' ? req.methods.slice(0, 1) : req.methods;
  const seeds = mode === 'run' ? 1 : req.seeds.length;
  const configs: RunConfig[] = methods.map((method) => ({ ...req.base, method, seed: req.seeds[0] }));
  const work = configs.map((c) => (mode === 'run' ? pageRunWork(c) : runWork(c, EVAL_SPLITS, CONTROLS)));
  const engine = new MasEngine(gpu, base);
  let timings: MethodTiming[];
  try {
    timings = await measureTimings(engine, configs);
  } finally {
    engine.destroy();
  }
  const e = estimateExperiment(work, timings, seeds);
  const steps = work.reduce((n, w) => n + w.steps, 0) * seeds;
  const episodes = work.reduce((n, w) => n + w.evalEpisodes, 0) * seeds;
  const speed = timings.map((t) => `${t.method} ${t.stepSeconds ? `${t.stepSeconds.toFixed(2)} s/step, ` : ''}${t.episodeSeconds.toFixed(2)} s/episode`).join('; ');
  const summary = `about ${formatSeconds(e.seconds)}: ${steps} training step${steps === 1 ? '' : 's'} and ${episodes} evaluation episode${episodes === 1 ? '' : 's'}` +
    `${e.runs > 1 ? ` over ${e.runs} runs` : ''} (measured here: ${speed})`;
  return { mode, seconds: e.seconds, trainSeconds: e.trainSeconds, evalSeconds: e.evalSeconds, runs: e.runs, timings, work, summary, warning: longRunWarning(e.seconds) };
}
