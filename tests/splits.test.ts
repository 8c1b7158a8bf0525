// Splits keyed by what the senders see (issue 19, items 2 and 3): the training stream and the
// pretraining corpus never draw the content of a held-out or ood evaluation episode; an evaluation
// set never repeats an episode and, where a split is small, holds each of its episodes once; and one
// evaluation set serves every method and seed of an experiment.
import { describe, expect, it } from 'vitest';
import { Corpus, requiredSeqLen } from '../src/tasks/corpus';
import { Rng } from '../src/tasks/rng';
import { rendering } from '../src/tasks/render';
import {
  DEFAULT_EVAL_SEED, ENUMERATE_LIMIT, MAX_DIFFICULTY, MIN_DIFFICULTY, TASK_NAMES, evaluationEpisodes, makeTask, splitOfContent,
  type Episode, type Split, type TaskName,
} from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';
import { makePlan } from '../src/mas/data';
import { methodSpec, validateRunConfig } from '../src/mas/methods';
import { presetForTask } from '../src/mas/topology';
import { defaultRunConfig } from '../src/mas/run';
import { evalEpisodes, trainingBatcher } from '../src/mas/run-data';

const DIFFICULTIES = Array.from({ length: MAX_DIFFICULTY - MIN_DIFFICULTY + 1 }, (_, i) => MIN_DIFFICULTY + i);
const EVAL = 512;
const BATCHES = 200;

/** The evaluation set of a split as every run of an experiment sees it (default evaluation seed). */
function evalSet(name: TaskName, d: number, split: Split): Episode[] {
  return evalEpisodes(makeTask(name, d), { evalSize: EVAL }, split);
}

/** Every (content, query) episode key of the split's partition, counted from the contents alone. */
function distinctCount(name: TaskName, d: number): number {
  let n = 0;
  if (name === 'arith') {
    for (let a = 0; a < 10 ** d; a++) for (let b = 0; b < 10 ** d; b++) if (splitOfContent('arith', `${a},${b}`) === 'heldout') n += 2;
  } else if (name === 'relay') {
    const L = d + 1;
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const walk = (s: string) => {
      if (s.length === L) {
        if (splitOfContent('relay', s) === 'heldout') n += L;
        return;
      }
      for (const c of letters) walk(s + c);
    };
    walk('');
  } else throw new Error(`distinctCount: ${name} is not small`);
  return n;
}

describe('splits are keyed by what the senders see', () => {
  for (const name of TASK_NAMES) {
    it(`${name}: ${BATCHES} training batches at every difficulty share no content with the heldout and ood evaluation sets`, () => {
      const tk = defaultTokenizer();
      const spec = methodSpec('diffmas');
      for (const d of DIFFICULTIES) {
        const task = makeTask(name, d);
        const plan = makePlan(presetForTask(task), spec);
        const held = evalSet(name, d, 'heldout');
        const ood = evalSet(name, d, 'ood');
        const evalContent = new Set([...held, ...ood].map((e) => e.contentKey));
        // ood content is of the heldout partition too: no train stream at any difficulty draws it
        for (const e of [...held, ...ood]) expect(splitOfContent(name, e.contentKey)).toBe('heldout');
        const batcher = trainingBatcher(task, tk, rendering('char'), plan, spec, { seed: 3, batch: 16 });
        let seen = 0;
        for (let i = 0; i < BATCHES; i++) {
          for (const ep of batcher.next().eps) {
            expect(ep.split).toBe('train');
            if (evalContent.has(ep.contentKey)) throw new Error(`${name} d${d}: training batch ${i + 1} draws evaluation content ${ep.contentKey}`);
            seen++;
          }
        }
        expect(seen).toBe(BATCHES * 16);
      }
    });
  }

  it('ood is the larger distribution and holds no content of any difficulty\'s train partition', () => {
    for (const d of DIFFICULTIES) {
      const lookup = evalSet('lookup', d, 'ood');
      const train = evalEpisodes(makeTask('lookup', d), { evalSize: 200 }, 'train');
      expect(Math.min(...lookup.map((e) => e.contents[0].length))).toBeGreaterThan(Math.max(...train.map((e) => e.contents[0].length)));
      expect(Math.min(...evalSet('relay', d, 'ood').map((e) => e.contents[0].length))).toBe(d + 3);
      for (const e of evalSet('arith', d, 'ood')) for (const x of e.contents.slice(0, 2)) expect(x).toHaveLength(d + 1);
    }
  });

  it('the pretraining corpus (every task, difficulties 1..5, the quiz) draws no heldout or ood content', () => {
    const c = new Corpus({ tasks: TASK_NAMES, difficulty: DIFFICULTIES, seed: 4, seqLen: requiredSeqLen(TASK_NAMES, DIFFICULTIES) });
    const evalContent = new Map<TaskName, Set<string>>(TASK_NAMES.map((n) => [n, new Set<string>()]));
    for (const name of TASK_NAMES) {
      for (const d of DIFFICULTIES) for (const split of ['heldout', 'ood'] as const) for (const e of evalSet(name, d, split)) evalContent.get(name)!.add(e.contentKey);
    }
    for (let i = 0; i < 20000; i++) {
      const s = c.nextSequence();
      // quiz questions share the episode's content, so checking the episode checks them
      if (evalContent.get(s.task)!.has(s.episode.contentKey)) throw new Error(`corpus sequence ${i + 1} (${s.task} d${s.difficulty}) holds evaluation content ${s.episode.contentKey}`);
      expect(splitOfContent(s.task, s.episode.contentKey)).toBe('train');
    }
  });

  it('every query of an episode shares its content, so the whole table of a train episode is train', () => {
    for (const name of TASK_NAMES) {
      const task = makeTask(name, 2);
      for (const ep of evaluationEpisodes(task, 'train', 50, 9)) {
        const qs = task.queries(ep);
        expect(qs.map((q) => q.key)).toContain(ep.key);
        expect(new Set(qs.map((q) => q.key)).size).toBe(qs.length);
      }
    }
  });
});

describe('evaluation sets', () => {
  it('never repeat an episode, at every task, difficulty and split', () => {
    for (const name of TASK_NAMES) {
      for (const d of DIFFICULTIES) {
        for (const split of ['heldout', 'ood'] as const) {
          const eps = evalSet(name, d, split);
          expect(new Set(eps.map((e) => e.key)).size).toBe(eps.length);
          for (const e of eps) expect(e.split).toBe(split);
        }
      }
    }
  });

  it('a small split gives each of its distinct episodes once, in a fixed order, and reports their count', () => {
    // counted from the contents alone (measured: arith d1 38, relay d1 282)
    for (const [name, want] of [['arith', 38], ['relay', 282]] as const) {
      const task = makeTask(name, 1);
      expect(distinctCount(name, 1)).toBe(want);
      const all = evalEpisodes(task, { evalSize: 10_000 }, 'heldout');
      expect(all).toHaveLength(want);
      expect(new Set(all.map((e) => e.key)).size).toBe(want);
      // the same episodes whatever evalSize above the count, and whatever the evaluation seed (only relay's distractors move)
      expect(evalEpisodes(task, { evalSize: want }, 'heldout').map((e) => e.key)).toEqual(all.map((e) => e.key));
      expect(evalEpisodes(task, { evalSize: 4000, evalSeed: 77 }, 'heldout').map((e) => e.key)).toEqual(all.map((e) => e.key));
      // fewer asked: that many distinct ones, drawn without replacement
      const some = evalEpisodes(task, { evalSize: want - 3 }, 'heldout');
      expect(some).toHaveLength(want - 3);
      expect(new Set(some.map((e) => e.key)).size).toBe(want - 3);
      for (const e of some) expect(all.map((x) => x.key)).toContain(e.key);
    }
    // arith d1's fixed order: a, then b, then the operator
    const arith = evalEpisodes(makeTask('arith', 1), { evalSize: 100 }, 'heldout');
    const order = arith.map((e) => [Number(e.contents[0]), Number(e.contents[1]), e.contents[2] === '+' ? 0 : 1]);
    const before = (x: number[], y: number[]) => x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
    for (let i = 1; i < order.length; i++) expect(before(order[i - 1], order[i])).toBeLessThan(0);
  });

  it('Task.enumerate lists small splits exactly and declines large ones', () => {
    const arith = makeTask('arith', 1);
    const all = arith.enumerate('heldout', new Rng(1))!;
    const train = arith.enumerate('train', new Rng(1))!;
    expect(all.length + train.length).toBe(200); // 10 x 10 operand pairs x 2 operators
    expect(new Set([...all, ...train].map((e) => e.key)).size).toBe(200);
    for (const e of all) expect(String(eval(`${e.contents[0]}${e.contents[2]}${e.contents[1]}`))).toBe(e.answer);
    const relay = makeTask('relay', 1).enumerate('heldout', new Rng(1))!;
    for (const e of relay) expect(e.answer).toBe(e.contents[0][Number(e.contents[2]) - 1]);
    expect(makeTask('lookup', 1).enumerate('heldout', new Rng(1))!.every((e) => e.messages[0] === e.contentKey)).toBe(true);
    expect(makeTask('lookup', 2).enumerate('heldout', new Rng(1))).toBeNull();
    expect(makeTask('relay', 3).enumerate('heldout', new Rng(1))).toBeNull();
    expect(makeTask('arith', 1).enumerate('ood', new Rng(1))!.length).toBeGreaterThan(1000);
    expect(ENUMERATE_LIMIT).toBeGreaterThanOrEqual(100_000);
  });

  it('one evaluation set per experiment: runs differing in seed or method see identical episodes', () => {
    for (const name of TASK_NAMES) {
      const task = makeTask(name, 2);
      const a = defaultRunConfig({ task: name, difficulty: 2, topology: presetForTask(task), method: 'diffmas', seed: 1, evalSize: 64 });
      const b = { ...a, method: 'text' as const, seed: 5 };
      for (const split of ['heldout', 'ood'] as const) {
        const ea = evalEpisodes(task, a, split);
        const eb = evalEpisodes(task, b, split);
        expect(eb).toEqual(ea);
        expect(ea).toHaveLength(64);
        // the evaluation seed, not the run seed, picks the set
        expect(evalEpisodes(task, { ...a, evalSeed: DEFAULT_EVAL_SEED }, split)).toEqual(ea);
        expect(evalEpisodes(task, { ...a, evalSeed: 9 }, split).map((e) => e.key)).not.toEqual(ea.map((e) => e.key));
      }
    }
  });

  it('RunConfig.evalSeed is validated: a non-negative safe integer', () => {
    const task = makeTask('lookup', 1);
    const c = defaultRunConfig({ topology: presetForTask(task) });
    expect(() => validateRunConfig({ ...c, evalSeed: 7 })).not.toThrow();
    expect(() => validateRunConfig(c)).not.toThrow();
    for (const bad of [-1, 1.5, 2 ** 60, NaN]) expect(() => validateRunConfig({ ...c, evalSeed: bad })).toThrow(/evalSeed must be a non-negative integer/);
    expect(() => validateRunConfig({ ...c, evalSeed: '3' as unknown as number })).toThrow(/evalSeed/);
  });
});
