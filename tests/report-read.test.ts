// src/storage/report.ts reads reports written before per-episode outcomes, paired comparisons and
// bounds existed, and new ones, checking the new fields' shapes with errors that name the field.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readExperimentReport, reportJson } from '../src/storage/report';

const row = (split: string, outcomes?: string) => ({
  method: 'diffmas', split, seed: 1, accuracy: 0.5, validity: 1, entropy: 1, episodes: 2, messageFloats: 0, messageTokens: 0, trainSeconds: 0,
  ...(outcomes === undefined ? {} : { outcomes }),
});
const base = (over: Record<string, unknown> = {}) => JSON.stringify({
  args: { task: 'lookup', difficulty: 1 }, rows: [row('heldout', '10')], controls: [{ method: 'diffmas', seed: 1, control: 'shuffle', accuracy: 0, outcomes: '00' }],
  summary: [], findings: [], episodes: { heldout: ['a?k', 'b?q'] }, ...over,
});

describe('reading experiment reports', () => {
  it('reads an old report (no outcomes, paired or bounds) as it is', () => {
    const r = readExperimentReport(readFileSync('bench/results/old-instrument/toy-lookup-d2.json', 'utf8'));
    expect(r.episodes).toBeUndefined();
    expect(r.rows.every((x) => x.outcomes === undefined)).toBe(true);
    expect(r.paired).toBeUndefined();
  });

  it('reads a new one and writes it back unchanged', () => {
    const text = base({
      paired: [{ split: 'heldout', a: 'diffmas', b: 'single', diff: 0.5, lo: null, hi: null, verdict: 'no-interval' }],
      bounds: { task: 'lookup', difficulty: 1, vocab: 54, rows: [{ split: 'heldout', budget: 1, ceiling: 0.9, floor: 0.1 }] },
    });
    const r = readExperimentReport(text);
    expect(r.rows[0].outcomes).toBe('10');
    expect(readExperimentReport(reportJson(r))).toEqual(r);
  });

  it('names what is wrong', () => {
    expect(() => readExperimentReport(base({ rows: [row('heldout', '1x')] }))).toThrow('rows[0].outcomes is not a string of 0 and 1');
    expect(() => readExperimentReport(base({ rows: [row('heldout', '101')] }))).toThrow('rows[0].outcomes holds 3 episodes, episodes.heldout lists 2');
    expect(() => readExperimentReport(base({ rows: [row('ood', '10')] }))).toThrow('rows[0] has outcomes but the report lists no ood episodes');
    expect(() => readExperimentReport(base({ episodes: { heldout: [1, 2] } }))).toThrow('episodes.heldout is not a list of episode keys');
    expect(() => readExperimentReport(base({ controls: [{ method: 'diffmas', seed: 1, control: 'zero', accuracy: 0, outcomes: '0' }] }))).toThrow('controls[0].outcomes holds 1 episodes');
    expect(() => readExperimentReport(base({ paired: {} }))).toThrow('paired is not a list');
    expect(() => readExperimentReport(base({ paired: [{ split: 'heldout' }] }))).toThrow('paired[0] needs split, a, b, diff, lo, hi and verdict');
    expect(() => readExperimentReport(base({ bounds: { task: 'lookup' } }))).toThrow('bounds needs task, vocab and a rows list');
    expect(() => readExperimentReport(base({ bounds: { task: 'lookup', vocab: 54, rows: [{}] } }))).toThrow('bounds.rows[0] needs split, budget, ceiling and floor');
  });
});
