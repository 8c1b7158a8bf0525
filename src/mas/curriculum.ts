// A curriculum (RunConfig.curriculumFrom; issue 22 item 2): the training batches come from an easier
// difficulty first, then each next one up to the run's own. One number (the first difficulty) rather
// than a list of stages: it fits the URL hash and the CLI as one field, and "from d1" is the question
// asked; the steps are split evenly over the stages, the first (steps mod stages) taking one more.
//
// Each stage draws from its own difficulty's stream, the one a run at that difficulty draws
// (SignatureBatcher: seed, 'train-batches', task, difficulty), from its start; so the last stage is a
// plain run's stream from its first batch, and nothing is drawn for a run without a curriculum. Every
// stage draws train-partition content only (Task.sample 'train'), and a difficulty's tables have its
// own size: no stage ever shows a sender the held-out content of the run's difficulty, nor of its own
// (tests/curriculum.test.ts). Evaluation stays at the run's difficulty.
import { makeTask, type Task } from '../tasks/tasks';
import type { SignatureBatcher } from './data';
import type { MethodSpec } from './methods';
import type { RunConfig } from './run-types';

/** What a run draws its training batches from: a SignatureBatcher, or the stages of a curriculum. */
export type TrainingBatcher = Pick<SignatureBatcher, 'next'>;

export interface CurriculumStage {
  difficulty: number;
  /** Training steps (batches) of the stage. */
  steps: number;
}

/** Why a run cannot take this curriculum (null: it can, or it has none). */
export function curriculumProblem(c: Pick<RunConfig, 'curriculumFrom' | 'difficulty' | 'steps'>, spec: MethodSpec): string | null {
  const f = c.curriculumFrom;
  if (f === undefined) return null;
  if (c.difficulty === 1) return `run config: curriculumFrom starts at an easier difficulty than the run's, but a run at difficulty 1 has no easier one: leave it out`;
  if (typeof f !== 'number' || !Number.isInteger(f) || f < 1 || f >= c.difficulty) {
    return `run config: curriculumFrom must be an integer difficulty from 1 to ${c.difficulty - 1} (below the run's difficulty ${c.difficulty}), got ${JSON.stringify(f)}`;
  }
  if (spec.train === 'none') return `run config: curriculumFrom orders the training batches, but method ${spec.name} trains nothing: leave it out`;
  const stages = c.difficulty - f + 1;
  if (c.steps < stages) return `run config: a curriculum from difficulty ${f} to ${c.difficulty} has ${stages} stages and needs at least as many steps, got ${c.steps}`;
  return null;
}

/** The stages of a curriculum: difficulties from..difficulty, the steps split evenly (the first stages take the remainder, one each). */
export function curriculumStages(c: Pick<RunConfig, 'curriculumFrom' | 'difficulty' | 'steps'>): CurriculumStage[] {
  const from = c.curriculumFrom ?? c.difficulty;
  const n = c.difficulty - from + 1;
  const base = Math.floor(c.steps / n);
  const extra = c.steps - base * n;
  return Array.from({ length: n }, (_, i) => ({ difficulty: from + i, steps: base + (i < extra ? 1 : 0) }));
}

/** Batches stage by stage; past the last stage's steps (a run continued) the last stage goes on. */
export class CurriculumBatcher implements TrainingBatcher {
  private readonly stages: { steps: number; batcher: SignatureBatcher }[];
  private stage = 0;
  private taken = 0;

  constructor(stages: readonly CurriculumStage[], make: (task: Task) => SignatureBatcher, name: RunConfig['task']) {
    this.stages = stages.map((s) => ({ steps: s.steps, batcher: make(makeTask(name, s.difficulty)) }));
  }

  next(): ReturnType<SignatureBatcher['next']> {
    while (this.taken >= this.stages[this.stage].steps && this.stage < this.stages.length - 1) {
      this.stage++;
      this.taken = 0;
    }
    this.taken++;
    return this.stages[this.stage].batcher.next();
  }
}

/**
 * The run's training batches: make(task) at the run's task without a curriculum (the stream every
 * run draws), else a CurriculumBatcher over the stages, make building each stage's own.
 */
export function runBatcher(task: Task, c: Pick<RunConfig, 'curriculumFrom' | 'difficulty'> & Partial<Pick<RunConfig, 'steps'>>, make: (task: Task) => SignatureBatcher): TrainingBatcher {
  if (c.curriculumFrom === undefined) return make(task);
  if (c.steps === undefined) throw new Error('a curriculum splits the run\'s steps over its stages: give the run\'s steps');
  return new CurriculumBatcher(curriculumStages({ ...c, steps: c.steps }), make, task.name);
}
