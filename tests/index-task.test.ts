// The index task (src/tasks/index-task.ts, issue 22): its format, its splits keyed by the array the
// sender sees, its ood, and the digests of its streams that the PyTorch companion's port reproduces
// (python/tests/test_tasks_index.py holds the same numbers).
import { describe, expect, it } from 'vitest';
import { INDEX_SIZES, indexSize } from '../src/tasks/index-task';
import { Rng, deriveSeed, hashString } from '../src/tasks/rng';
import {
  DEFAULT_EVAL_SEED, PRETRAINED_TASK_NAMES, SPLITS, TASK_NAMES, evaluationEpisodes, formatPrompt, formatSkyline, formatTarget, idealIncoming, makeTask,
  sampleEpisodes, splitOfContent, type Episode,
} from '../src/tasks/tasks';
import { WORD_RENDERING } from '../src/tasks/render';
import { DEFAULT_RECIPE } from '../src/model/pretrain';
import { defaultTokenizer } from '../src/tokenizers/char';

const keysDigest = (eps: readonly Episode[]) => hashString(eps.map((e) => `${e.key}|${e.parts.join('/')}|${e.answer}`).join('\n'));

/** "difficulty/split" -> [digest of the first 200 episodes of seed 3, evaluation set size, its digest (300 asked, default evaluation seed)] */
const STREAMS: Record<string, [number, number, number]> = {
  '1/train': [3355873442, 172, 553105383],
  '1/heldout': [3001398621, 28, 2393664595],
  '1/ood': [2162895437, 300, 3901024153],
  '2/train': [976698747, 300, 2891091126],
  '2/heldout': [2788182772, 300, 788098952],
  '2/ood': [1326253934, 300, 4292571228],
  '3/train': [1363029073, 300, 970838946],
  '3/heldout': [729664893, 300, 1389034385],
  '3/ood': [3068235530, 300, 1624109233],
  '4/train': [3921413622, 300, 4064931253],
  '4/heldout': [3074861939, 300, 3129644165],
  '4/ood': [2701435519, 300, 298817316],
  '5/train': [4273216033, 300, 3451393242],
  '5/heldout': [3878413720, 300, 4050961509],
  '5/ood': [1316994917, 300, 3251166728],
};

describe('index task', () => {
  it('is registered for runs but not in the default pretraining corpus', () => {
    expect(TASK_NAMES).toContain('index');
    expect(PRETRAINED_TASK_NAMES).not.toContain('index');
    expect(DEFAULT_RECIPE.tasks).not.toContain('index');
  });

  it('formats: arr:<digits> -> idx:<i>, answer digit i, the array the ideal message', () => {
    const t = makeTask('index', 3);
    expect(t.roles.map((r) => [r.name, r.cue])).toEqual([['array', 'arr:'], ['asker', 'idx:']]);
    expect(t.flow).toBe('star');
    expect(t.chance).toBeCloseTo(0.1, 12);
    expect(t.answerSet('heldout')).toEqual('0123456789'.split(''));
    const tok = defaultTokenizer();
    for (let d = 1; d <= 5; d++) {
      const task = makeTask('index', d);
      for (const split of SPLITS) {
        const n = indexSize(d, split === 'ood');
        expect(n).toBe(INDEX_SIZES[d - 1] + (split === 'ood' ? 2 : 0));
        expect(task.maxQueries(split)).toBe(n);
        for (const ep of sampleEpisodes(task, split, 100, d)) {
          const [array, i] = ep.contents;
          expect(array).toMatch(new RegExp(`^\\d{${n}}$`));
          expect(Number(i)).toBeGreaterThanOrEqual(1);
          expect(Number(i)).toBeLessThanOrEqual(n);
          expect(ep.answer).toBe(array[Number(i) - 1]);
          expect(ep.parts).toEqual([`arr:${array}`, `idx:${i}`]);
          expect(ep.messages).toEqual([array, '']);
          expect(ep.contentKey).toBe(array);
          expect(ep.key).toBe(`${array}@${i}`);
          expect(formatSkyline(ep) + formatTarget(ep)).toBe(`<bos>arr:${array}\nidx:${i}${ep.answer}<eos>`);
          expect(formatPrompt(ep, 1, { final: true, messages: idealIncoming(task, ep, 1) })).toBe(`<bos>msg:${array}\nidx:${i}`);
          expect(tok.encode(formatSkyline(ep) + formatTarget(ep)).length).toBeLessThanOrEqual(task.maxTokens(split));
          const qs = task.queries(ep);
          expect(qs.map((q) => q.answer).join('')).toBe(array);
          expect(qs.map((q) => q.key)).toContain(ep.key);
        }
      }
    }
    const ep = sampleEpisodes(makeTask('index', 2), 'train', 1, 1)[0];
    expect(WORD_RENDERING.skyline(ep)).toBe(`<bos>Digits: ${[...ep.contents[0]].join(' ')}.\nQuestion: digit ${ep.contents[1]}?\nAnswer:`);
  });

  it('splits: train and heldout partition every array (listed exhaustively at n <= 4); ood arrays are longer and of the heldout partition', () => {
    for (const d of [1, 2, 3]) {
      const task = makeTask('index', d);
      const train = task.enumerate('train', new Rng(1))!;
      const held = task.enumerate('heldout', new Rng(1))!;
      const n = INDEX_SIZES[d - 1];
      expect(train.length + held.length).toBe(10 ** n * n);
      const trainContent = new Set(train.map((e) => e.contentKey));
      for (const e of held) expect(trainContent.has(e.contentKey)).toBe(false);
      // the hash puts about a fifth of the arrays in heldout
      expect(Math.abs(held.length / (10 ** n * n) - 0.2)).toBeLessThan(d === 1 ? 0.12 : 0.02);
      expect(new Set([...train, ...held].map((e) => e.key)).size).toBe(10 ** n * n);
    }
    for (let d = 1; d <= 5; d++) {
      const task = makeTask('index', d);
      const trainContent = new Set(sampleEpisodes(task, 'train', 3000, 5).map((e) => e.contentKey));
      for (const split of ['heldout', 'ood'] as const) {
        for (const e of evaluationEpisodes(task, split, 300, deriveSeed(DEFAULT_EVAL_SEED, 'eval'))) {
          expect(splitOfContent('index', e.contentKey)).toBe('heldout');
          expect(trainContent.has(e.contentKey)).toBe(false);
          expect(e.contents[0]).toHaveLength(indexSize(d, split === 'ood'));
        }
      }
    }
    // d1 held-out is small: every one of its episodes once
    expect(evaluationEpisodes(makeTask('index', 1), 'heldout', 10_000, 1).length).toBeLessThan(200);
  });

  it('draws the streams the companion reproduces (python/tests/test_tasks_index.py)', () => {
    const got: Record<string, [number, number, number]> = {};
    for (let d = 1; d <= 5; d++) {
      const task = makeTask('index', d);
      for (const split of SPLITS) {
        const ev = evaluationEpisodes(task, split, 300, deriveSeed(DEFAULT_EVAL_SEED, 'eval'));
        got[`${d}/${split}`] = [keysDigest(sampleEpisodes(task, split, 200, 3)), ev.length, keysDigest(ev)];
      }
    }
    if (process.env.PRINT_DIGESTS) console.log(JSON.stringify(got));
    expect(got).toEqual(STREAMS);
  });
});
