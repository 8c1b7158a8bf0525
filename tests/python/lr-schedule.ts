// The engine's side of python/tests/test_lr_schedule.py: per RunConfig schedule setting, the
// optimizer's hyperparameters (src/mas/run-data.ts trainHyperOf, as a run and its bundle use them) and
// the learning rate of every step (src/model/train.ts lrAt), as JSON on stdout.
//   node OUT.mjs '[{"lr":0.003,"steps":400,"lrSchedule":"constant"}, ...]'
import { trainHyperOf } from '../../src/mas/run-data';
import { lrAt } from '../../src/model/train';
import type { RunConfig } from '../../src/mas/run-types';

const configs = JSON.parse(process.argv[2]) as Pick<RunConfig, 'lr' | 'steps' | 'lrSchedule'>[];
const out = configs.map((c) => {
  const h = trainHyperOf(c);
  return { config: c, warmupSteps: h.warmupSteps, minLr: h.minLr ?? h.lr / 10, lrs: Array.from({ length: c.steps }, (_, i) => lrAt(i + 1, h)) };
});
process.stdout.write(JSON.stringify(out));
