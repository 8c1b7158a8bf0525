import { describe, expect, it } from 'vitest';
import {
  BucketedBatches, CORPUS_KINDS, Corpus, DEFAULT_QUIZ, IGNORE_INDEX, encodeSegments, requiredSeqLen, unigramEntropy, type CorpusKind,
} from '../src/tasks/corpus';
import { TASK_NAMES, makeTask, splitOfContent, type TaskName } from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';

const ALL = [...TASK_NAMES];

function entropyOf(counts: Map<number, number>): number {
  let total = 0;
  for (const c of counts.values()) total += c;
  let h = 0;
  for (const c of counts.values()) h -= (c / total) * Math.log(c / total);
  return h;
}

describe('Corpus', () => {
  it('produces [B*S] next-token pairs, padded with <pad>, padding ignored', () => {
    const S = requiredSeqLen(ALL, 3);
    const c = new Corpus({ tasks: ALL, difficulty: 3, seed: 1, seqLen: S, maskRandom: false });
    const tok = c.tokenizer;
    const B = 64;
    const { inputs, targets, batchSize, seqLen } = c.nextBatch(B);
    expect(batchSize).toBe(B);
    expect(seqLen).toBe(S);
    expect(inputs).toBeInstanceOf(Uint32Array);
    expect(targets).toBeInstanceOf(Uint32Array);
    expect(inputs.length).toBe(B * S);
    expect(targets.length).toBe(B * S);
    let padded = 0;
    for (let b = 0; b < B; b++) {
      const row = b * S;
      expect(inputs[row]).toBe(tok.bosId);
      let seenPad = false;
      for (let t = 0; t < S; t++) {
        const x = inputs[row + t];
        const y = targets[row + t];
        if (x === tok.padId) {
          seenPad = true;
          padded++;
          expect(y).toBe(IGNORE_INDEX);
        } else {
          expect(seenPad).toBe(false); // padding only at the end
          expect(y).not.toBe(IGNORE_INDEX);
          expect(y).toBeLessThan(tok.vocabSize);
          // shifted by one: the next input is this target (unless the row ends here)
          if (t + 1 < S && inputs[row + t + 1] !== tok.padId) expect(inputs[row + t + 1]).toBe(y);
        }
      }
    }
    expect(padded).toBeGreaterThan(0);
  });

  it('is deterministic from the seed', () => {
    const opts = { tasks: ALL, difficulty: 2, seqLen: requiredSeqLen(ALL, 2) };
    const a = new Corpus({ ...opts, seed: 5 }).nextBatch(16);
    const b = new Corpus({ ...opts, seed: 5 }).nextBatch(16);
    const c = new Corpus({ ...opts, seed: 6 }).nextBatch(16);
    expect(b.inputs).toEqual(a.inputs);
    expect(b.targets).toEqual(a.targets);
    expect(c.inputs).not.toEqual(a.inputs);
    // nextSequence advances the stream exactly like one batch row
    const x = new Corpus({ ...opts, seed: 5 });
    const tok = defaultTokenizer();
    const ids = tok.encode(x.nextSequence().text);
    expect(Array.from(a.inputs.slice(0, ids.length - 1))).toEqual(ids.slice(0, -1));
    const y = new Corpus({ ...opts, seed: 5 });
    y.nextBatch(1);
    expect(y.nextBatch(15).inputs).toEqual(a.inputs.slice(opts.seqLen));
  });

  it('mixes every kind and every task, only from train episodes, in the documented formats', () => {
    const mix = { skyline: 0.4, transcript: 0.15, send: 0.2, receive: 0.15, single: 0.1 };
    const c = new Corpus({ tasks: ALL, difficulty: [1, 3], seed: 2, seqLen: requiredSeqLen(ALL, [1, 3], 0), mix, quiz: 0 });
    const kinds = new Map<CorpusKind, number>();
    const tasks = new Set<TaskName>();
    const N = 4000;
    for (let i = 0; i < N; i++) {
      const s = c.nextSequence();
      kinds.set(s.kind, (kinds.get(s.kind) ?? 0) + 1);
      tasks.add(s.task);
      expect([1, 3]).toContain(s.difficulty);
      expect(splitOfContent(s.task, s.episode.contentKey)).toBe('train');
      expect(s.text.startsWith('<bos>')).toBe(true);
      switch (s.kind) {
        case 'skyline':
          expect(s.text).toMatch(/^<bos>[^]*\n(ask:[a-z]\d|pos:\d[a-z]|op=[-+]-?\d+|idx:\d+\d)<eos>$/);
          expect(s.text).not.toContain('msg:');
          break;
        case 'transcript':
          expect(s.text).toMatch(/msg:[^\n]+\n[^]*(ask:[a-z]\d|pos:\d[a-z]|op=[-+]-?\d+|idx:\d+\d)<eos>$/);
          break;
        case 'send':
          expect(s.text).toMatch(/msg:[^\n]+\n$/);
          expect(s.text).not.toContain('<eos>');
          break;
        case 'receive':
          expect(s.text).toMatch(/^<bos>msg:[^]*\n(ask:[a-z]\d|pos:\d[a-z]|op=[-+]-?\d+|idx:\d+\d)<eos>$/);
          expect(s.text).not.toMatch(/tbl:|key:|a=\d+\nb=/); // the receiver sees messages, not the senders' parts
          break;
        case 'single':
          expect(s.text).toMatch(/^<bos>[a-z]+[:=][^\n]*\n$/);
          break;
      }
    }
    expect(tasks.size).toBe(ALL.length);
    expect(new Set(kinds.keys()).size).toBe(CORPUS_KINDS.length);
    expect(Math.abs(kinds.get('skyline')! / N - 0.4)).toBeLessThan(0.03);
    expect(Math.abs(kinds.get('single')! / N - 0.1)).toBeLessThan(0.03);
  });

  it('a relay transcript shows the relay forwarding the secret', () => {
    const c = new Corpus({ tasks: ['relay'], difficulty: 2, seed: 3, seqLen: requiredSeqLen(['relay'], 2, 0), mix: { transcript: 1 }, quiz: 0 });
    const s = c.nextSequence();
    const m = /^<bos>key:([a-z]+)\nmsg:([a-z]+)\nrly:[a-z]+\nmsg:([a-z]+)\npos:(\d)([a-z])<eos>$/.exec(s.text);
    expect(m).not.toBeNull();
    expect(m![2]).toBe(m![1]);
    expect(m![3]).toBe(m![1]);
    expect(m![5]).toBe(m![1][Number(m![4]) - 1]);
  });

  it('respects a custom mix and refuses bad options with clear messages', () => {
    const S = requiredSeqLen(['lookup'], 1);
    const only = new Corpus({ tasks: ['lookup'], difficulty: 1, seed: 0, seqLen: S, mix: { single: 1 } });
    for (let i = 0; i < 50; i++) expect(only.nextSequence().kind).toBe('single');
    expect(() => new Corpus({ tasks: ['lookup'], difficulty: 1, seed: 0, seqLen: S - 1 })).toThrow(
      new RegExp(`seqLen ${S - 1} is too short .* need at least ${S}`),
    );
    expect(() => new Corpus({ tasks: ['nope'], difficulty: 1, seed: 0, seqLen: 64 })).toThrow(/unknown task "nope"/);
    expect(() => new Corpus({ tasks: [], difficulty: 1, seed: 0, seqLen: 64 })).toThrow(/non-empty/);
    expect(() => new Corpus({ tasks: ['lookup'], difficulty: 9, seed: 0, seqLen: 64 })).toThrow(/1..5/);
    expect(() => new Corpus({ tasks: ['lookup'], difficulty: 1, seed: 0, seqLen: 64, mix: { skylin: 1 } as never })).toThrow(
      /unknown mix kind "skylin"/,
    );
    expect(() => new Corpus({ tasks: ['lookup'], difficulty: 1, seed: 0, seqLen: 64, mix: { skyline: 0 } })).toThrow(/zero/);
    expect(() => only.nextBatch(0)).toThrow(/positive integer/);
  });

  it('the loss mask ignores exactly the random contents and the messages a receiver reads', () => {
    const tok = defaultTokenizer();
    const mix = { skyline: 1, transcript: 1, send: 1, receive: 1, single: 1 };
    const opts = { tasks: ALL, difficulty: [1, 2, 5], seed: 8, seqLen: requiredSeqLen(ALL, [1, 2, 5]), mix };
    const masked = new Corpus(opts).nextBatch(400);
    const full = new Corpus({ ...opts, maskRandom: false }).nextBatch(400);
    expect(masked.inputs).toEqual(full.inputs); // the mask changes targets only
    const seqs = new Corpus(opts);
    const S = opts.seqLen;
    let ignored = 0;
    let kept = 0;
    for (let b = 0; b < 400; b++) {
      const seq = seqs.nextSequence();
      // expected flags from the text alone: after <bos>, a part's content (after its cue, up to its end) and
      // a received line's content are random; everything else (cues, "\n", a sender's message, answer, <eos>) is learned
      const ids = tok.encode(seq.text);
      let t = 0;
      for (const seg of seq.segments) {
        for (const id of tok.encode(seg.text)) {
          if (t > 0 && t - 1 < S) {
            const y = masked.targets[b * S + t - 1];
            expect(full.targets[b * S + t - 1]).toBe(id);
            expect(y).toBe(seg.learn ? id : IGNORE_INDEX);
            if (seg.learn) kept++;
            else ignored++;
          }
          t++;
        }
      }
      expect(t).toBe(ids.length);
      // the answer and <eos> are always learned; the final part's content never is
      if (seq.kind !== 'send' && seq.kind !== 'single') {
        const last = seq.segments[seq.segments.length - 1];
        expect(last.learn).toBe(true);
        expect(last.text.endsWith('<eos>')).toBe(true);
        expect(seq.segments[seq.segments.length - 2].learn).toBe(false);
      }
      for (const seg of seq.segments) if (seg.text === '<bos>') expect(seg.learn).toBe(false);
    }
    expect(kept).toBeGreaterThan(0);
    expect(ignored).toBeGreaterThan(0);
  });

  it('the quiz asks more questions of the final role about the same context, train keys only, answered', () => {
    const quiz = 3;
    for (const name of ALL) {
      for (const d of [1, 2, 4]) {
        const task = makeTask(name, d);
        const c = new Corpus({ tasks: [name], difficulty: d, seed: 6, seqLen: requiredSeqLen([name], d, quiz), quiz, mix: { skyline: 1, receive: 1, transcript: 1, send: 1 } });
        const cue = task.roles[task.finalRole].cue;
        let asked = 0;
        for (let i = 0; i < 300; i++) {
          const seq = c.nextSequence();
          const ep = seq.episode;
          const first = seq.text.indexOf('<eos>');
          if (seq.kind === 'send') {
            expect(first).toBe(-1);
            continue;
          }
          expect(seq.text.slice(0, first)).toMatch(new RegExp(`${cue.replace(/[+=]/g, '\\$&')}${ep.contents[task.finalRole].replace(/[+-]/g, '\\$&')}${ep.answer.replace(/[-]/g, '\\$&')}$`));
          const rest = seq.text.slice(first + '<eos>'.length);
          const extra = rest ? rest.split('<eos>').slice(0, -1) : [];
          expect(rest === '' || rest.endsWith('<eos>')).toBe(true);
          // exactly the episode's other questions (all train: they share its train content), as many as the quiz allows
          const allowed = task.queries(ep).filter((q) => q.key !== ep.key);
          expect(extra.length).toBe(Math.min(quiz, allowed.length));
          const texts = allowed.map((q) => `${cue}${q.content}${q.answer}`);
          for (const q of extra) expect(texts).toContain(q);
          expect(new Set(extra).size).toBe(extra.length);
          asked += extra.length;
          // the questions' own contents are random (ignored by the loss), their answers learned
          const qsegs = seq.segments.slice(-3 * extra.length);
          for (let j = 0; j < extra.length; j++) {
            expect(qsegs[3 * j]).toEqual({ text: cue, learn: true });
            expect(qsegs[3 * j + 1].learn).toBe(false);
            expect(qsegs[3 * j + 2].learn).toBe(true);
          }
        }
        expect(asked).toBeGreaterThan(0);
      }
    }
  });

  it('weights choose how often each task and difficulty is drawn; bad weights are refused', () => {
    const opts = { tasks: ['lookup', 'arith'], difficulty: [1, 2], seed: 3, seqLen: requiredSeqLen(['lookup', 'arith'], [1, 2]) };
    const c = new Corpus({ ...opts, weights: { 'lookup:1': 3, 'arith:2': 0 } });
    const n = new Map<string, number>();
    const N = 6000;
    for (let i = 0; i < N; i++) {
      const s2 = c.nextSequence();
      const k = `${s2.task}:${s2.difficulty}`;
      n.set(k, (n.get(k) ?? 0) + 1);
    }
    expect(n.get('arith:2')).toBeUndefined();
    expect(Math.abs(n.get('lookup:1')! / N - 0.6)).toBeLessThan(0.03);
    expect(Math.abs(n.get('lookup:2')! / N - 0.2)).toBeLessThan(0.03);
    expect(() => new Corpus({ ...opts, weights: { 'relay:1': 1 } })).toThrow(/names no task:difficulty/);
    expect(() => new Corpus({ ...opts, weights: { 'lookup:1': -1 } })).toThrow(/>= 0/);
    expect(() => new Corpus({ ...opts, weights: { 'lookup:1': 0, 'lookup:2': 0, 'arith:1': 0, 'arith:2': 0 } })).toThrow(/zero/);
    expect(() => new Corpus({ ...opts, quiz: -1 })).toThrow(/quiz/);
  });

  it('bucketed batches: every sequence of the stream once, in the smallest bucket that holds it, encoded as nextBatch does', () => {
    const opts = { tasks: ALL, difficulty: [1, 3, 5], seed: 12, seqLen: requiredSeqLen(ALL, [1, 3, 5]) };
    const buckets = [24, 40, opts.seqLen];
    const B = 8;
    const bb = new BucketedBatches(new Corpus(opts), B, buckets);
    const stream = new Corpus(opts);
    const tok = stream.tokenizer;
    // replay the stream: which sequences each bucket should emit, in order
    const want = buckets.map(() => [] as { ids: number[]; learn: boolean[] }[][]);
    const open = buckets.map(() => [] as { ids: number[]; learn: boolean[] }[]);
    const emitted: number[] = [];
    while (emitted.length < 40) {
      const e = encodeSegments(tok, stream.nextSequence().segments);
      const i = buckets.findIndex((S) => S >= e.ids.length - 1);
      open[i].push(e);
      if (open[i].length === B) {
        want[i].push(open[i]);
        open[i] = [];
        emitted.push(i);
      }
    }
    const seen = buckets.map(() => 0);
    for (const i of emitted) {
      const batch = bb.next();
      expect(batch.seqLen).toBe(buckets[i]);
      const rows = want[i][seen[i]++];
      const S = batch.seqLen;
      rows.forEach(({ ids, learn }, b) => {
        for (let t = 0; t < S; t++) {
          expect(batch.inputs[b * S + t]).toBe(t < ids.length - 1 ? ids[t] : tok.padId);
          expect(batch.targets[b * S + t]).toBe(t < ids.length - 1 && learn[t + 1] ? ids[t + 1] : IGNORE_INDEX);
        }
      });
    }
    expect(seen.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(() => new BucketedBatches(new Corpus(opts), B, [40, 24, opts.seqLen])).toThrow(/ascending/);
    expect(() => new BucketedBatches(new Corpus(opts), B, [24, 40])).toThrow(/last bucket must be the corpus's seqLen/);
    expect(() => new BucketedBatches(new Corpus(opts), 0)).toThrow(/batchSize/);
  });

  it('requiredSeqLen covers the longest sequence', () => {
    for (const name of ALL) {
      for (const d of [1, 5]) {
        const task = makeTask(name, d);
        expect(requiredSeqLen([name], d)).toBe(task.maxTokens('train') + Math.min(DEFAULT_QUIZ, task.maxQueries('train') - 1) * task.maxQueryTokens('train') - 1);
        const S = requiredSeqLen([name], d, 0);
        expect(S).toBe(task.maxTokens('train') - 1);
        const c = new Corpus({ tasks: [name], difficulty: d, seed: 4, seqLen: S, quiz: 0 });
        let longest = 0;
        for (let i = 0; i < 20; i++) {
          const { inputs } = c.nextBatch(32);
          for (let b = 0; b < 32; b++) {
            let n = 0;
            while (n < S && inputs[b * S + n] !== c.tokenizer.padId) n++;
            longest = Math.max(longest, n);
          }
        }
        // the bound is reached (lookup and relay have fixed lengths; arith reaches it with large operands)
        expect(longest).toBeGreaterThan(S - 3);
        expect(longest).toBeLessThanOrEqual(S);
      }
    }
    expect(requiredSeqLen(ALL, 5, 0)).toBeLessThanOrEqual(64);
    expect(requiredSeqLen(ALL, [1, 2, 3, 4, 5])).toBeLessThanOrEqual(96);
  });
});

describe('unigramEntropy', () => {
  it('equals the entropy of the target tokens of the same sequences and leaves the corpus untouched', () => {
    const opts = { tasks: ALL, difficulty: 2, seed: 9, seqLen: requiredSeqLen(ALL, 2) };
    const c = new Corpus(opts);
    const h = unigramEntropy(c, 300);
    const batch = c.nextBatch(300); // the corpus stream was not advanced by unigramEntropy
    expect(batch.inputs).toEqual(new Corpus(opts).nextBatch(300).inputs);
    const counts = new Map<number, number>();
    for (const y of batch.targets) if (y !== IGNORE_INDEX) counts.set(y, (counts.get(y) ?? 0) + 1);
    expect(h).toBeCloseTo(entropyOf(counts), 10);
  });

  it('is sensible: positive, below log(vocab), stable across sample sizes and deterministic', () => {
    const c = new Corpus({ tasks: ALL, difficulty: 3, seed: 1, seqLen: requiredSeqLen(ALL, 3) });
    const h = unigramEntropy(c, 3000);
    expect(h).toBeGreaterThan(2.5);
    expect(h).toBeLessThan(Math.log(c.tokenizer.vocabSize));
    expect(unigramEntropy(c, 3000)).toBe(h);
    expect(Math.abs(unigramEntropy(c, 500) - h)).toBeLessThan(0.1);
    // a single task with only fixed-format digits is lower-entropy than the full mix
    const arith = new Corpus({ tasks: ['arith'], difficulty: 1, seed: 1, seqLen: requiredSeqLen(['arith'], 1) });
    expect(unigramEntropy(arith, 2000)).toBeLessThan(h);
    expect(() => unigramEntropy(c, 0)).toThrow(/positive integer/);
  });
});
