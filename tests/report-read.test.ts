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

  it('reads a report with probes and bits, and names a malformed one', () => {
    const r = readExperimentReport(readFileSync('e2e/fixtures/toy-lookup-d3-seed1.json', 'utf8'));
    expect(r.probes!.length).toBeGreaterThan(0);
    expect(r.bits!.length).toBeGreaterThan(0);
    const probe = { method: 'diffmas', seed: 1, targets: [{ name: 'key 1', classes: 26, chance: 0.05, uniform: 0.04 }], cells: [{ sender: 'a0', receiver: 'a1', position: 1, layer: 0, kind: 'k', accuracy: [1], lambda: [1] }] };
    expect(() => readExperimentReport(base({ probes: [probe] }))).not.toThrow();
    expect(() => readExperimentReport(base({ probes: {} }))).toThrow('probes is not a list');
    expect(() => readExperimentReport(base({ probes: [{ ...probe, cells: [{ ...probe.cells[0], accuracy: [1, 0.5] }] }] }))).toThrow('probes[0].cells[0] needs sender, receiver, position, layer, kind \'k\' or \'v\' and one accuracy per target (1)');
    expect(() => readExperimentReport(base({ probes: [{ ...probe, targets: [{ name: 'key 1' }] }] }))).toThrow('probes[0].targets[0] needs name, chance and uniform');
    const bits = { method: 'diffmas', seed: 1, unquantized: 0.5, levels: [{ bits: 4, accuracy: 0.5 }], textBitsPerToken: 5.75 };
    expect(() => readExperimentReport(base({ bits: [bits] }))).not.toThrow();
    expect(() => readExperimentReport(base({ bits: [{ ...bits, levels: [{ bits: '4' }] }] }))).toThrow('bits[0].levels[0] needs bits and accuracy');
    expect(() => readExperimentReport(base({ bits: [{ method: 'diffmas' }] }))).toThrow('bits[0] needs method, seed, unquantized, levels and textBitsPerToken');
  });
});
