// What a stored run's record says about itself, as plain functions over its data (the page's run
// store and Runs list ask these): its name, its curves up to a checkpoint, and whether it can be
// continued.
import type { RunCurves, RunRecord } from '../storage/records';
import { isTrainedMethod, type RunConfig } from './run-types';

/** A record's curves up to a step (a continued run goes on from its last checkpoint: what was measured after it is measured again). */
export function curvesUpTo(c: RunCurves, step: number): RunCurves {
  const n = c.steps.filter((s) => s <= step).length;
  return { steps: c.steps.slice(0, n), loss: c.loss.slice(0, n), evals: c.evals.filter((e) => e.step <= step) };
}

/** Why a stored run cannot be continued, or null when it can. */
export function continueProblem(rec: RunRecord): string | null {
  if (rec.kind !== 'run') return 'a comparison is not a run';
  if (!isTrainedMethod(rec.config.method)) return `${rec.config.method} trains nothing`;
  if (!rec.adapters.training || !(rec.adapters.final.length || rec.adapters.fuser)) return 'its record holds no training state (it was saved before a checkpoint was taken, or by an older version)';
  if (rec.adapters.training.step >= rec.config.steps) return `it has taken all its ${rec.config.steps} steps`;
  return null;
}

/** The record name of a run. */
export function runName(c: RunConfig, loadedFrom?: { name: string } | null): string {
  // the training ablations (quiz.ts, curriculum.ts) name themselves; a run without them is named as before
  const ablations = `${c.quizLoss ? ' · quiz loss' : ''}${c.curriculumFrom !== undefined ? ` · curriculum from d${c.curriculumFrom}` : ''}`;
  return `${c.task} d${c.difficulty} · ${c.method}${ablations} · seed ${c.seed}${loadedFrom ? ` · from '${loadedFrom.name}'` : ''}`;
}
