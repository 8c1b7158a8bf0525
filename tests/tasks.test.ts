import { describe, expect, it } from 'vitest';
import { Rng, deriveSeed, hashString, streams } from '../src/tasks/rng';
import {
  PART_END,
  SPLITS,
  TASK_NAMES,
  extractAnswer,
  formatPrompt,
  formatSkyline,
  formatTarget,
  idealIncoming,
  isCorrect,
  makeTask,
  sampleEpisodes,
  splitOfContent,
  textMessageFormat,
  type Episode,
  type Split,
  type TaskName,
} from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';

describe('rng', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xa = Array.from({ length: 20 }, () => a.nextUint32());
    const xb = Array.from({ length: 20 }, () => b.nextUint32());
    const xc = Array.from({ length: 20 }, () => c.nextUint32());
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
  });

  it('helpers stay in range and look uniform / normal', () => {
    const r = new Rng(7);
    const counts = new Array(10).fill(0);
    let sum = 0;
    let sq = 0;
    const N = 20000;
    let outOfRange = 0;
    for (let i = 0; i < N; i++) {
      const k = r.int(3, 13);
      if (k < 3 || k >= 13) outOfRange++;
      else counts[k - 3]++;
      const x = r.next();
      if (x < 0 || x >= 1) outOfRange++;
      const z = r.normal();
      sum += z;
      sq += z * z;
    }
    expect(outOfRange).toBe(0);
    for (const c of counts) expect(Math.abs(c / N - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(sum / N)).toBeLessThan(0.03);
    expect(Math.abs(sq / N - 1)).toBeLessThan(0.05);
    const arr = [1, 2, 3, 4, 5, 6, 7, 8];
    const sh = r.shuffled(arr);
    expect(sh.slice().sort()).toEqual(arr);
    expect(arr).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(r.sample(arr, 5)).size).toBe(5);
    expect(arr).toContain(r.choice(arr));
    expect(() => r.int(3, 3)).toThrow(/lo < hi/);
    expect(() => r.choice([])).toThrow(/empty/);
    expect(() => new Rng(Number.NaN)).toThrow(/seed/);
  });

  it('state can be saved and restored', () => {
    const r = new Rng(9);
    r.next();
    const s = r.getState();
    const x = [r.next(), r.next()];
    r.setState(s);
    expect([r.next(), r.next()]).toEqual(x);
  });

  it('streams(seed) gives four independent named streams, all reseeded by the seed', () => {
    const s1 = streams(1);
    const s1b = streams(1);
    const s2 = streams(2);
    const first = (s: ReturnType<typeof streams>) =>
      (['data', 'init', 'sampling', 'shuffle'] as const).map((k) => s[k].nextUint32());
    const f1 = first(s1);
    expect(first(s1b)).toEqual(f1);
    expect(new Set(f1).size).toBe(4);
    const f2 = first(s2);
    for (let i = 0; i < 4; i++) expect(f2[i]).not.toBe(f1[i]);
    expect(deriveSeed(5, 'a', 1)).toBe(deriveSeed(5, 'a', 1));
    expect(deriveSeed(5, 'a', 1)).not.toBe(deriveSeed(5, 'a1'));
    expect(deriveSeed(1)).not.toBe(deriveSeed(1 + 2 ** 32));
    expect(hashString('abc')).not.toBe(hashString('abd'));
  });
});

/** The answer from the whole context, computed independently of the generators. */
function solve(task: TaskName, ep: Episode): string {
  const ctx = ep.fullContext;
  if (task === 'lookup') {
    const table = /tbl:([a-z0-9]+)\n/.exec(ctx)![1];
    const q = /ask:([a-z])$/.exec(ctx)![1];
    const i = table.indexOf(q);
    return table[i + 1];
  }
  if (task === 'relay') {
    const secret = /key:([a-z]+)\n/.exec(ctx)![1];
    const k = Number(/pos:(\d+)$/.exec(ctx)![1]);
    return secret[k - 1];
  }
  if (task === 'index') {
    const array = /arr:(\d+)\n/.exec(ctx)![1];
    return array[Number(/idx:(\d+)$/.exec(ctx)![1]) - 1];
  }
  const a = Number(/a=(\d+)\n/.exec(ctx)![1]);
  const b = Number(/b=(\d+)\n/.exec(ctx)![1]);
  const op = /op=([+-])$/.exec(ctx)![1];
  return String(op === '+' ? a + b : a - b);
}

/** Accuracy of the best guess from view(ep), fitted on one half and measured on the other. */
function heldoutGuessAccuracy(eps: Episode[], view: (ep: Episode) => string): number {
  const half = eps.length >> 1;
  const table = new Map<string, Map<string, number>>();
  const overall = new Map<string, number>();
  for (const ep of eps.slice(0, half)) {
    const v = view(ep);
    if (!table.has(v)) table.set(v, new Map());
    const m = table.get(v)!;
    m.set(ep.answer, (m.get(ep.answer) ?? 0) + 1);
    overall.set(ep.answer, (overall.get(ep.answer) ?? 0) + 1);
  }
  const best = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0];
  const fallback = best(overall);
  const guess = new Map([...table.entries()].map(([v, m]) => [v, best(m)]));
  let hit = 0;
  const test = eps.slice(half);
  for (const ep of test) if ((guess.get(view(ep)) ?? fallback) === ep.answer) hit++;
  return hit / test.length;
}

describe('tasks', () => {
  it('makeTask refuses unknown names and difficulties outside 1..5', () => {
    expect(() => makeTask('nope', 1)).toThrow(/unknown task "nope" \(known: lookup, relay, arith, index\)/);
    expect(() => makeTask('lookup', 0)).toThrow(/difficulty must be an integer in 1..5/);
    expect(() => makeTask('lookup', 6)).toThrow(/1..5/);
    expect(() => makeTask('arith', 2.5)).toThrow(/1..5/);
    expect(() => sampleEpisodes(makeTask('lookup', 1), 'test' as Split, 1, 0)).toThrow(/unknown split "test"/);
  });

  it('exposes roles, flow, chance and answer length', () => {
    const lookup = makeTask('lookup', 3);
    expect(lookup.roles.map((r) => r.name)).toEqual(['table', 'query']);
    expect(lookup.finalRole).toBe(1);
    expect(lookup.chance).toBeCloseTo(0.1);
    expect(lookup.maxAnswerLength).toBe(1);
    const relay = makeTask('relay', 3);
    expect(relay.roles.map((r) => r.name)).toEqual(['source', 'relay', 'asker']);
    expect(relay.flow).toBe('chain');
    expect(relay.chance).toBeCloseTo(1 / 26);
    const arith = makeTask('arith', 2);
    expect(arith.roles.length).toBe(3);
    expect(arith.flow).toBe('star');
    expect(arith.chance).toBeCloseTo(0.01);
    expect(arith.chanceFor('ood')).toBeCloseTo(1 / 900, 8);
    expect(arith.maxAnswerLength).toBe(4);
  });

  for (const name of TASK_NAMES) {
    describe(name, () => {
      it('is deterministic: same seed same episodes, different seeds differ', () => {
        for (const split of SPLITS) {
          const t = makeTask(name, 3);
          const a = sampleEpisodes(t, split, 40, 11);
          const b = sampleEpisodes(makeTask(name, 3), split, 40, 11);
          const c = sampleEpisodes(t, split, 40, 12);
          expect(b).toEqual(a);
          expect(c.map((e) => e.fullContext)).not.toEqual(a.map((e) => e.fullContext));
        }
      });

      it('episodes are well formed, answers follow from the whole context, lengths are bounded', () => {
        const tok = defaultTokenizer();
        for (let d = 1; d <= 5; d++) {
          const task = makeTask(name, d);
          for (const split of SPLITS) {
            for (const ep of sampleEpisodes(task, split, 200, d)) {
              expect(ep.task).toBe(name);
              expect(ep.split).toBe(split);
              expect(ep.parts.length).toBe(task.roles.length);
              ep.parts.forEach((p, i) => {
                expect(p).toBe(task.roles[i].cue + ep.contents[i]);
                expect(p).not.toContain('\n');
              });
              expect(ep.fullContext).toBe(ep.parts.join(PART_END));
              expect(solve(name, ep)).toBe(ep.answer);
              expect(ep.answer.length).toBeGreaterThan(0);
              expect(ep.answer.length).toBeLessThanOrEqual(task.maxAnswerLength);
              if (ep.answerSet) expect(ep.answerSet).toContain(ep.answer);
              expect(ep.messages[task.finalRole]).toBe('');
              const skyline = tok.encode(formatSkyline(ep) + formatTarget(ep)).length;
              expect(skyline).toBeLessThanOrEqual(task.maxTokens(split));
              if (split !== 'ood') expect(skyline).toBeLessThanOrEqual(57);
              const finalPrompt = formatPrompt(ep, task.finalRole, { final: true, messages: idealIncoming(task, ep, task.finalRole) });
              expect(tok.encode(finalPrompt + formatTarget(ep)).length).toBeLessThanOrEqual(task.maxTokens(split));
            }
          }
        }
      });

      it('train and heldout are disjoint (by sender content), whatever the seed', () => {
        for (const d of [1, 3, 5]) {
          const task = makeTask(name, d);
          const train = sampleEpisodes(task, 'train', 3000, 5);
          const held = sampleEpisodes(task, 'heldout', 1000, 5);
          const trainContent = new Set(train.map((e) => e.contentKey));
          const trainTexts = new Set(train.map((e) => e.fullContext));
          for (const e of held) {
            expect(trainContent.has(e.contentKey)).toBe(false);
            expect(trainTexts.has(e.fullContext)).toBe(false);
            expect(splitOfContent(name, e.contentKey)).toBe('heldout');
          }
          for (const e of train) expect(splitOfContent(name, e.contentKey)).toBe('train');
          // the split is a property of the content, not of the seed
          const held2 = sampleEpisodes(task, 'heldout', 300, 99);
          for (const e of held2) expect(trainContent.has(e.contentKey)).toBe(false);
        }
      });

      it('with the final part alone the answer is at chance', () => {
        for (const d of [1, 2, 3]) {
          const task = makeTask(name, d);
          const eps = sampleEpisodes(task, 'train', 12000, 21);
          const acc = heldoutGuessAccuracy(eps, (ep) => ep.parts[task.finalRole]);
          expect(acc).toBeLessThan(task.chance + 0.03);
        }
      });
    });
  }

  it('lookup: the table alone does not give the answer; every value is equally likely per query', () => {
    const task = makeTask('lookup', 1);
    const eps = sampleEpisodes(task, 'train', 6000, 8);
    // best guess from the table alone: its most common value
    let hit = 0;
    for (const ep of eps) {
      const table = ep.contents[0];
      const vals = table.split('').filter((_, i) => i % 2 === 1);
      const counts = new Map<string, number>();
      for (const v of vals) counts.set(v, (counts.get(v) ?? 0) + 1);
      const guess = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
      if (guess === ep.answer) hit++;
    }
    expect(hit / eps.length).toBeLessThan(0.62); // 0.1 + 0.9 * 0.5 = 0.55 expected for two entries
    // per query letter, each digit appears about 1/10 of the time
    const byQuery = new Map<string, number[]>();
    for (const ep of eps) {
      if (!byQuery.has(ep.parts[1])) byQuery.set(ep.parts[1], new Array(10).fill(0));
      byQuery.get(ep.parts[1])![Number(ep.answer)]++;
    }
    expect(byQuery.size).toBe(26);
    for (const counts of byQuery.values()) {
      const n = counts.reduce((a, b) => a + b, 0);
      for (const c of counts) expect(Math.abs(c / n - 0.1)).toBeLessThan(0.08);
    }
  });

  it('relay: the distractor says nothing and the secret alone leaves the position open', () => {
    const task = makeTask('relay', 3); // secrets of 4 letters
    const eps = sampleEpisodes(task, 'train', 6000, 8);
    let fromDistractor = 0;
    let fromSecret = 0;
    for (const ep of eps) {
      const secret = ep.contents[0];
      const distractor = ep.contents[1];
      const k = Number(ep.contents[2]);
      if (distractor[k - 1] === ep.answer) fromDistractor++;
      const counts = new Map<string, number>();
      for (const ch of secret) counts.set(ch, (counts.get(ch) ?? 0) + 1);
      if ([...counts.entries()].sort((a, b) => b[1] - a[1])[0][0] === ep.answer) fromSecret++;
    }
    expect(fromDistractor / eps.length).toBeLessThan(1 / 26 + 0.015);
    expect(fromSecret / eps.length).toBeLessThan(0.35); // about 1/4 + repeats
  });

  it('arith: operands without the operator, or one operand with it, do not give the answer', () => {
    const task = makeTask('arith', 2);
    const eps = sampleEpisodes(task, 'train', 6000, 8);
    let sumGuess = 0;
    for (const ep of eps) {
      const a = Number(ep.contents[0]);
      const b = Number(ep.contents[1]);
      if (String(a + b) === ep.answer) sumGuess++;
    }
    expect(sumGuess / eps.length).toBeLessThan(0.56); // 1/2 + the b = 0 cases
    expect(heldoutGuessAccuracy(eps, (ep) => ep.parts[0] + ep.parts[2])).toBeLessThan(0.1);
  });

  it('about 20% of the sender contents are heldout', () => {
    let held = 0;
    let n = 0;
    for (let a = 0; a < 100; a++) {
      for (let b = 0; b < 100; b++) {
        n++;
        if (splitOfContent('arith', `${a},${b}`) === 'heldout') held++;
      }
    }
    expect(Math.abs(held / n - 0.2)).toBeLessThan(0.01);
  });

  it('ood is out of distribution: larger tables, longer secrets, more digits', () => {
    for (let d = 1; d <= 5; d++) {
      const train = (name: TaskName) => sampleEpisodes(makeTask(name, d), 'train', 500, 4);
      const ood = (name: TaskName) => sampleEpisodes(makeTask(name, d), 'ood', 500, 4);
      const size = (ep: Episode) => ep.contents[0].length / 2;
      const trainMax = Math.max(...train('lookup').map(size));
      expect(Math.min(...ood('lookup').map(size))).toBeGreaterThan(trainMax);

      const len = (ep: Episode) => ep.contents[0].length;
      expect(Math.min(...ood('relay').map(len))).toBeGreaterThan(Math.max(...train('relay').map(len)));
      const trainPos = new Set(train('relay').map((ep) => ep.parts[2]));
      expect(ood('relay').some((ep) => !trainPos.has(ep.parts[2]))).toBe(true);

      const operands = (ep: Episode) => [Number(ep.contents[0]), Number(ep.contents[1])];
      const trainOps = train('arith').flatMap(operands);
      const oodOps = ood('arith').flatMap(operands);
      expect(Math.max(...trainOps)).toBeLessThan(10 ** d);
      expect(Math.min(...oodOps)).toBeGreaterThanOrEqual(10 ** d);
      for (const ep of ood('arith')) expect(ep.answer.length).toBeLessThanOrEqual(makeTask('arith', d).maxAnswerLength);
    }
  });

  it('difficulty grows the problem', () => {
    const size = (d: number) => sampleEpisodes(makeTask('lookup', d), 'train', 1, 1)[0].parts[0].length;
    const sizes = [1, 2, 3, 4, 5].map(size);
    for (let i = 1; i < 5; i++) expect(sizes[i]).toBeGreaterThan(sizes[i - 1]);
    const digits = (d: number) => Math.max(...sampleEpisodes(makeTask('arith', d), 'train', 200, 1).map((e) => e.parts[0].length));
    expect([1, 2, 3, 4, 5].map(digits)).toEqual([3, 4, 5, 6, 7]);
  });

  it('answer sets cover the label space and match chance where uniform', () => {
    expect(makeTask('lookup', 2).answerSet('train')).toHaveLength(10);
    expect(makeTask('relay', 2).answerSet('ood')).toHaveLength(26);
    const a1 = makeTask('arith', 1);
    expect(a1.answerSet('train')).toHaveLength(28); // -9..18
    for (const ep of sampleEpisodes(a1, 'ood', 500, 1)) expect(a1.answerSet('ood')).toContain(ep.answer);
    expect(makeTask('arith', 4).answerSet('train')).toBeUndefined();
  });

  it('formats prompts, targets and text messages consistently', () => {
    const task = makeTask('lookup', 2);
    const [ep] = sampleEpisodes(task, 'train', 1, 3);
    const table = ep.parts[0];
    const ask = ep.parts[1];
    expect(table).toMatch(/^tbl:([a-z][0-9]){3}$/);
    expect(ask).toMatch(/^ask:[a-z]$/);
    expect(formatPrompt(ep, 0)).toBe(`<bos>${table}\n`);
    expect(formatPrompt(ep, 1, { final: true })).toBe(`<bos>${ask}`);
    expect(formatPrompt(ep, 'none', { final: true })).toBe('<bos>');
    expect(formatTarget(ep)).toBe(`${ep.answer}<eos>`);
    expect(formatSkyline(ep)).toBe(`<bos>${table}\n${ask}`);
    expect(formatPrompt(ep, 0, { send: true })).toBe(`<bos>${table}\nmsg:`);
    expect(formatPrompt(ep, 1, { final: true, messages: [ep.messages[0]] })).toBe(`<bos>msg:${table.slice(4)}\n${ask}`);
    // the answer follows the query directly: the skyline's last token is the query key
    expect(formatSkyline(ep).endsWith(ep.contents[1])).toBe(true);
    expect(() => formatPrompt(ep, 2)).toThrow(/part 2 is out of range/);
    expect(() => formatPrompt(ep, 0, { send: true, final: true })).toThrow(/either final or a sender/);

    expect(textMessageFormat.wrap('a3k7')).toBe('msg:a3k7\n');
    expect(() => textMessageFormat.wrap('a\nb')).toThrow(/newline/);
    expect(textMessageFormat.cut('a3k7\nask')).toBe('a3k7');
    expect(textMessageFormat.cut('a3<eos>')).toBe('a3');

    expect(extractAnswer('42<eos><pad>')).toBe('42');
    expect(extractAnswer('7')).toBe('7');
    expect(isCorrect({ ...ep, answer: '42' }, '42<eos>')).toBe(true);
    expect(isCorrect({ ...ep, answer: '42' }, '421<eos>')).toBe(false);

    const relay = makeTask('relay', 2);
    const [r] = sampleEpisodes(relay, 'train', 1, 3);
    expect(idealIncoming(relay, r, 0)).toEqual([]);
    expect(idealIncoming(relay, r, 1)).toEqual([r.messages[0]]);
    expect(idealIncoming(relay, r, 2)).toEqual([r.messages[1]]);
    expect(r.messages[1]).toBe(r.contents[0]); // the relay forwards the secret
    const arith = makeTask('arith', 2);
    const [m] = sampleEpisodes(arith, 'train', 1, 3);
    expect(idealIncoming(arith, m, 2)).toEqual([m.parts[0], m.parts[1]]);
    expect(idealIncoming(arith, m, 0)).toEqual([]);
  });
});
