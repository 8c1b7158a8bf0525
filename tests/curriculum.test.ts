// The curriculum (RunConfig.curriculumFrom, src/mas/curriculum.ts): its stages, the batches each
// stage draws (a run's own stream at that difficulty, from its start), its validation, and the split
// rule of tests/splits.test.ts extended to its stream: no stage draws held-out or ood content of the
// run's difficulty or of its own.
import { describe, expect, it } from 'vitest';
import { rendering } from '../src/tasks/render';
import { evaluationEpisodes, makeTask, splitOfContent, TASK_NAMES, type Task } from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';
import { makePlan } from '../src/mas/data';
import { methodSpec, validateRunConfig } from '../src/mas/methods';
import { presetForTask } from '../src/mas/topology';
import { defaultRunConfig } from '../src/mas/run';
import { curriculumStages, runBatcher } from '../src/mas/curriculum';
import { firstTrainingBatches, trainingBatcher } from '../src/mas/run-data';

const tk = defaultTokenizer();
const r = rendering('char');
const spec = methodSpec('diffmas');
const make = (task: Task, batch = 4) => (t: Task) => trainingBatcher(t, tk, r, makePlan(presetForTask(task), spec), spec, { seed: 3, batch });

describe('curriculum stages', () => {
  it('split the steps evenly from curriculumFrom to the run\u2019s difficulty, the first stages taking the remainder', () => {
    expect(curriculumStages({ curriculumFrom: 1, difficulty: 3, steps: 1200 })).toEqual([{ difficulty: 1, steps: 400 }, { difficulty: 2, steps: 400 }, { difficulty: 3, steps: 400 }]);
    expect(curriculumStages({ curriculumFrom: 1, difficulty: 3, steps: 8 })).toEqual([{ difficulty: 1, steps: 3 }, { difficulty: 2, steps: 3 }, { difficulty: 3, steps: 2 }]);
    expect(curriculumStages({ curriculumFrom: 2, difficulty: 3, steps: 5 })).toEqual([{ difficulty: 2, steps: 3 }, { difficulty: 3, steps: 2 }]);
  });

  it('each stage draws a run\u2019s own stream at its difficulty from its start; the last is a plain run\u2019s first batches', () => {
    const task = makeTask('lookup', 3);
    const cur = runBatcher(task, { curriculumFrom: 1, difficulty: 3, steps: 7 }, make(task));
    const got = Array.from({ length: 9 }, () => cur.next().eps.map((e) => `${e.difficulty}:${e.key}`));
    const plain = (d: number, n: number) => {
      const b = make(task)(makeTask('lookup', d));
      return Array.from({ length: n }, () => b.next().eps.map((e) => `${e.difficulty}:${e.key}`));
    };
    // stages of 3, 2, 2 steps; past the planned steps the last stage goes on
    expect(got).toEqual([...plain(1, 3), ...plain(2, 2), ...plain(3, 4)]);
    // without a curriculum nothing changes: the run's stream itself
    const none = runBatcher(task, { difficulty: 3, steps: 7 }, make(task));
    expect(Array.from({ length: 3 }, () => none.next().eps.map((e) => `${e.difficulty}:${e.key}`))).toEqual(plain(3, 3));
  });

  it('a bundle\u2019s first training batches follow the curriculum (run-data.ts)', () => {
    const task = makeTask('lookup', 2);
    const plan = makePlan(presetForTask(task), spec);
    const rows = firstTrainingBatches(task, tk, r, plan, spec, { seed: 3, batch: 2, textBudget: 4, curriculumFrom: 1, steps: 4 }, 4);
    expect(rows.map((b) => b[0].episode.difficulty)).toEqual([1, 1, 2, 2]);
    expect(firstTrainingBatches(task, tk, r, plan, spec, { seed: 3, batch: 2, textBudget: 4 }, 2).map((b) => b.map((x) => x.episode.key)))
      .toEqual(rows.slice(2).map((b) => b.map((x) => x.episode.key)));
  });
});

describe('curriculum validation', () => {
  const topology = presetForTask(makeTask('lookup', 3));
  const cfg = (over: object) => defaultRunConfig({ topology, task: 'lookup', difficulty: 3, ...over });
  it('accepts 1..difficulty-1 for a trained method', () => {
    expect(() => validateRunConfig(cfg({ curriculumFrom: 1 }))).not.toThrow();
    expect(() => validateRunConfig(cfg({ curriculumFrom: 2, method: 'text-trained' }))).not.toThrow();
  });
  it('refuses a difficulty at or above the run\u2019s, a non-integer, an untrained method and too few steps', () => {
    expect(() => validateRunConfig(cfg({ curriculumFrom: 3 }))).toThrow(/curriculumFrom must be an integer difficulty from 1 to 2/);
    expect(() => validateRunConfig(cfg({ curriculumFrom: 0 }))).toThrow(/curriculumFrom must be/);
    expect(() => validateRunConfig(cfg({ curriculumFrom: 1.5 }))).toThrow(/curriculumFrom must be/);
    expect(() => validateRunConfig(cfg({ curriculumFrom: '1' }))).toThrow(/curriculumFrom must be/);
    expect(() => validateRunConfig({ ...cfg({ curriculumFrom: 1 }), difficulty: 1 })).toThrow(/no easier one/);
    expect(() => validateRunConfig(cfg({ curriculumFrom: 1, method: 'latentmas' }))).toThrow(/method latentmas trains nothing/);
    expect(() => validateRunConfig(cfg({ curriculumFrom: 1, steps: 2 }))).toThrow(/3 stages and needs at least as many steps, got 2/);
  });
});

describe('the split rule holds for the curriculum stream', () => {
  for (const name of TASK_NAMES) {
    it(`${name}: a curriculum from d1 to d5 draws no heldout or ood content of any difficulty`, () => {
      const task = makeTask(name, 5);
      const evalContent = new Set<string>();
      for (let d = 1; d <= 5; d++) {
        for (const split of ['heldout', 'ood'] as const) for (const e of evaluationEpisodes(makeTask(name, d), split, 512, 1)) evalContent.add(e.contentKey);
      }
      const steps = 100;
      const b = runBatcher(task, { curriculumFrom: 1, difficulty: 5, steps }, make(task, 16));
      const seen = new Set<number>();
      for (let i = 0; i < steps; i++) {
        for (const ep of b.next().eps) {
          seen.add(ep.difficulty);
          expect(ep.split).toBe('train');
          expect(splitOfContent(name, ep.contentKey)).toBe('train');
          if (evalContent.has(ep.contentKey)) throw new Error(`${name}: curriculum batch ${i + 1} (d${ep.difficulty}) draws evaluation content ${ep.contentKey}`);
        }
      }
      expect([...seen].sort()).toEqual([1, 2, 3, 4, 5]);
    });
  }
});
