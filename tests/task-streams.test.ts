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
  'lookup/1/train': [3360444262, 164427885],
  'lookup/1/heldout': [3797409343, 203655296],
  'lookup/1/ood': [3754542180, 680743020],
  'lookup/2/train': [2818671189, 2261242303],
  'lookup/2/heldout': [2308258710, 2500449025],
  'lookup/2/ood': [2316554639, 3421245492],
  'lookup/3/train': [4079332098, 433216079],
  'lookup/3/heldout': [759010324, 2032455698],
  'lookup/3/ood': [185263913, 365314053],
  'lookup/4/train': [1697254388, 2082104293],
  'lookup/4/heldout': [3012108411, 1616806350],
  'lookup/4/ood': [482317937, 2656484110],
  'lookup/5/train': [3622854108, 1314972869],
  'lookup/5/heldout': [2215172841, 234944892],
  'lookup/5/ood': [3381546616, 1727495130],
  'relay/1/train': [1705698042, 3552346452],
  'relay/1/heldout': [610502735, 1349113227],
  'relay/1/ood': [3353198417, 437726356],
  'relay/2/train': [307503979, 307407021],
  'relay/2/heldout': [1906325259, 445120118],
  'relay/2/ood': [971994583, 2555691494],
  'relay/3/train': [2286591847, 4172922491],
  'relay/3/heldout': [1923011775, 3902723159],
  'relay/3/ood': [2045597145, 3261065733],
  'relay/4/train': [2396353613, 2394670986],
  'relay/4/heldout': [1642165181, 3214567509],
  'relay/4/ood': [3280090639, 219767239],
  'relay/5/train': [310786953, 2897177887],
  'relay/5/heldout': [1302066547, 3609233536],
  'relay/5/ood': [3499252908, 2096919948],
  'arith/1/train': [2940452434, 3690842707],
  'arith/1/heldout': [2822339473, 1253920637],
  'arith/1/ood': [1202048973, 2524189652],
  'arith/2/train': [4163836617, 2545669729],
  'arith/2/heldout': [1733921807, 1980630991],
  'arith/2/ood': [380629462, 2790339564],
  'arith/3/train': [2000261185, 4091278411],
  'arith/3/heldout': [2774920146, 2532678039],
  'arith/3/ood': [4107259967, 2133973349],
  'arith/4/train': [3665803612, 2799842],
  'arith/4/heldout': [1550057312, 1420621587],
  'arith/4/ood': [2441620369, 309349428],
  'arith/5/train': [3045828913, 1776227208],
  'arith/5/heldout': [4235335750, 1752575161],
  'arith/5/ood': [176089202, 418072004],
};
const CORPUS_WANT = 1525126303;

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
