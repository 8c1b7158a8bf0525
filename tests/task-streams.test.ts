// Adding a task must not move what the existing tasks draw: a long experiment runs against their
// episodes, splits and pretraining corpus, and its results must stay comparable. The digests below were
// computed from the code BEFORE the index task was added (issue 22); a change to any of them changes
// existing numbers and must not happen.
import { describe, expect, it } from 'vitest';
import { Corpus, requiredSeqLen } from '../src/tasks/corpus';
import { deriveSeed, hashString } from '../src/tasks/rng';
import { DEFAULT_EVAL_SEED, SPLITS, evaluationEpisodes, makeTask, sampleEpisodes, type Episode } from '../src/tasks/tasks';
import { DEFAULT_RECIPE } from '../src/model/pretrain';

const EXISTING = ['lookup', 'relay', 'arith'] as const;
const N = 64;

function digest(eps: readonly Episode[]): number {
  const text = eps.map((e) => JSON.stringify([e.task, e.difficulty, e.split, e.key, e.contentKey, e.parts, e.contents, e.answer, e.fullContext, e.messages])).join('\n');
  return hashString(text);
}

/** "task/difficulty/split" -> [first 64 of the seed-1 stream, the 64-episode evaluation set of the default evaluation seed, as run-data.ts evalEpisodes draws it] */
const WANT: Record<string, [number, number]> = {
};
const CORPUS_WANT = 0;

describe('existing tasks draw bit-identical streams', () => {
  it(`the first ${N} episodes of every task, difficulty and split, and their evaluation sets`, () => {
    const got: Record<string, [number, number]> = {};
    for (const name of EXISTING) {
      for (let d = 1; d <= 5; d++) {
        const t = makeTask(name, d);
        for (const split of SPLITS) got[`${name}/${d}/${split}`] = [digest(sampleEpisodes(t, split, N, 1)), digest(evaluationEpisodes(t, split, N, deriveSeed(DEFAULT_EVAL_SEED, 'eval')))];
      }
    }
    if (process.env.PRINT_DIGESTS) console.log(JSON.stringify(got));
    expect(got).toEqual(WANT);
  });

  it('the default pretraining corpus: its tasks and its first 300 sequences', () => {
    expect(DEFAULT_RECIPE.tasks).toEqual([...EXISTING]);
    const c = new Corpus({ tasks: DEFAULT_RECIPE.tasks, difficulty: DEFAULT_RECIPE.difficulties, weights: DEFAULT_RECIPE.weights, seed: 7, seqLen: requiredSeqLen(DEFAULT_RECIPE.tasks, DEFAULT_RECIPE.difficulties) });
    const text: string[] = [];
    for (let i = 0; i < 300; i++) text.push(c.nextSequence().text);
    const got = hashString(text.join('\u0000'));
    if (process.env.PRINT_DIGESTS) console.log('corpus', got);
    expect(got).toBe(CORPUS_WANT);
  });
});
