// The measured figures an estimate is made from (estimate.ts): per method, one training step at the
// run's batch and one evaluation batch, timed on this machine and base. Each is a fresh Run that is
// destroyed after (the experiment's own runs start from their seeds as before, so measuring changes
// no result). The first step also compiles the method's kernels, so the figure leans high: a warning
// a little early is better than none.
import { controlsFor, MasEngine, Run } from './run';
import { evalEpisodes } from './run-data';
import type { ControlName, MethodName, RunConfig } from './run-types';
import { validateRunConfig } from './methods';
import type { MethodTiming, RunWork } from './estimate';
import { makeTask, type Split } from '../tasks/tasks';

/** Evaluation episodes timed per method: one batch of at most this many (a big model's episode takes a minute on a CPU adapter). */
export const TIMED_EVAL_EPISODES = 4;

/** What one (method, seed) run of an experiment does: its steps, and its episodes over `splits` and, on heldout, its controls. */
export function runWork(config: RunConfig, splits: readonly Split[], controls: readonly ControlName[]): RunWork {
  const { spec } = validateRunConfig(config);
  const task = makeTask(config.task, config.difficulty);
  const size = (s: Split) => evalEpisodes(task, config, s).length;
  const applied = spec.channel === 'none' ? [] : controls.filter((c) => controlsFor(spec.channel).includes(c));
  const episodes = splits.reduce((n, s) => n + size(s), 0) + applied.length * size('heldout');
  return { method: config.method, steps: spec.train === 'none' ? 0 : config.steps, evalEpisodes: episodes };
}

/** Times one training step (trained methods) and one evaluation batch of each config's method on `engine`. */
export async function measureTimings(engine: MasEngine, configs: readonly RunConfig[], onMethod?: (method: MethodName) => void): Promise<MethodTiming[]> {
  const out: MethodTiming[] = [];
  for (const config of configs) {
    onMethod?.(config.method);
    const n = Math.max(1, Math.min(TIMED_EVAL_EPISODES, config.batch, config.evalSize));
    const run = new Run(engine, { ...config, evalSize: n });
    try {
      let stepSeconds = 0;
      if (run.trains) {
        const t0 = performance.now();
        await run.trainStep();
        stepSeconds = (performance.now() - t0) / 1000;
      }
      const t1 = performance.now();
      const o = await run.evaluate('heldout');
      const episodeSeconds = (performance.now() - t1) / 1000 / Math.max(1, o.episodes);
      out.push({ method: config.method, stepSeconds, episodeSeconds });
    } finally {
      run.destroy();
    }
  }
  return out;
}
