// The latency budget of issue 22 (src/mas/latency.ts): which method runs for each side at each T, the
// run configurations at T = 0 (the cache side: the sender's prefilled prompt with 0 latent steps), the
// positions a receiver reads (a cache: each sender's prompt as the task renders it + T; text: T
// tokens), and `experiment --latency T` end to end on the tiny base (the report's args.latency).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LATENCY_METHODS, LATENCY_POINTS, latencyPlan, MAX_LATENCY } from '../src/mas/latency';
import { LIMITS, validateRunConfig } from '../src/mas/methods';
import { MasEngine, Run, defaultRunConfig } from '../src/mas/run';
import { promptText } from '../src/mas/data';
import { chain, presetForTask } from '../src/mas/topology';
import type { MethodName, RunConfig } from '../src/mas/run-types';
import { makeTask } from '../src/tasks/tasks';
import { randomBase, testGpu } from './helpers';
import { cli } from './cli-helpers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'latency-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('latencyPlan', () => {
  it('T >= 1: every method runs as itself, text budget and latent steps T', () => {
    const p = latencyPlan(LATENCY_METHODS, 4);
    expect(p.methods).toEqual(['text', 'text-trained', 'latentmas-full', 'diffmas-full', 'c2c']);
    expect(p.textBudget).toBe(4);
    expect(p.latentSteps).toBe(4);
    expect(p.record.T).toBe(4);
    expect(p.record.runAs).toEqual({ text: 'text', 'text-trained': 'text-trained', 'latentmas-full': 'latentmas-full', 'diffmas-full': 'diffmas-full', c2c: 'c2c' });
  });

  it('T = 0: text runs as single, text-trained as single-trained; the cache keeps its prompt with 0 latent steps; the record says so', () => {
    const p = latencyPlan(LATENCY_METHODS, 0);
    expect(p.methods).toEqual(['single', 'single-trained', 'latentmas-full', 'diffmas-full', 'c2c']);
    expect(p.textBudget).toBeNull();
    expect(p.latentSteps).toBe(0);
    expect(p.record.runAs).toEqual({ text: 'single', 'text-trained': 'single-trained', 'latentmas-full': 'latentmas-full', 'diffmas-full': 'diffmas-full', c2c: 'c2c' });
    expect(p.record.text).toMatch(/text runs as single and text-trained as single-trained/);
    // a reference asked for beside text is run once
    expect(latencyPlan(['text', 'single', 'skyline'], 0).methods).toEqual(['single', 'skyline']);
  });

  it('refuses a latent-only trace (no prompt cache: nothing at T = 0) and a T out of range', () => {
    expect(() => latencyPlan(['diffmas'], 2)).toThrow(/diffmas passes on only its latent positions.*use diffmas-full/);
    expect(() => latencyPlan(['latentmas'], 0)).toThrow(/use latentmas-full/);
    expect(() => latencyPlan(['diffmas-detached'], 1)).toThrow(/use diffmas-full/);
    expect(() => latencyPlan(['text'], -1)).toThrow(/T must be an integer in 0\.\.64/);
    expect(() => latencyPlan(['text'], 1.5)).toThrow(/T must be an integer/);
    expect(() => latencyPlan(['text'], MAX_LATENCY + 1)).toThrow(/0\.\.64/);
    expect(() => latencyPlan([], 1)).toThrow(/no methods/);
    expect(() => latencyPlan(['telepathy'], 1)).toThrow(/unknown method "telepathy"/);
  });

  it('every point of the sweep fits the run limits: T tokens of text where T >= 1, T latent steps', () => {
    expect(LATENCY_POINTS).toEqual([0, 1, 2, 4, 8]);
    expect(MAX_LATENCY).toBe(LIMITS.textBudget[1]);
    for (const T of LATENCY_POINTS.filter((t) => t > 0)) expect(T).toBeGreaterThanOrEqual(LIMITS.textBudget[0]);
  });
});

function cfg(over: Partial<RunConfig> & Pick<RunConfig, 'topology'>): RunConfig {
  return defaultRunConfig({ modelId: 'random', steps: 2, batch: 4, evalSize: 6, evalEvery: 0, lr: 1e-2, lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }, ...over });
}

describe('the cache side at T = 0: the prefilled prompt with 0 latent steps', () => {
  const settings = [
    { task: 'lookup', difficulty: 3, topology: (m: number) => presetForTask(makeTask('lookup', 3), { latentSteps: m }) },
    { task: 'relay', difficulty: 2, topology: (m: number) => presetForTask(makeTask('relay', 2), { latentSteps: m }) },
  ] as const;

  it('validateRunConfig accepts latentmas-full and diffmas-full with 0 latent steps on the sweep\u2019s tasks', () => {
    for (const s of settings) {
      for (const method of ['latentmas-full', 'diffmas-full'] as MethodName[]) {
        const { spec } = validateRunConfig(cfg({ method, task: s.task, difficulty: s.difficulty, topology: s.topology(0) }));
        expect(spec.trace).toBe('full');
      }
      expect(() => validateRunConfig(cfg({ method: 'diffmas', task: s.task, difficulty: s.difficulty, topology: s.topology(0) }))).toThrow(/0 latent steps.*diffmas-full/);
    }
  });

  it('a run reads exactly each sender\u2019s prompt as the task renders it + T, trains through it at T = 0, and runs every control', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    const cases = [
      { task: 'lookup', difficulty: 1, topology: (m: number) => presetForTask(makeTask('lookup', 1), { latentSteps: m }) },
      { task: 'relay', difficulty: 1, topology: (m: number) => chain(3, { latentSteps: m }) },
    ] as const;
    for (const c of cases) {
      for (const T of [0, 1]) {
        for (const method of ['latentmas-full', 'diffmas-full'] as MethodName[]) {
          const run = new Run(engine, cfg({ method, task: c.task, difficulty: c.difficulty, topology: c.topology(T) }));
          if (run.trains) for (let i = 0; i < 2; i++) expect(Number.isFinite((await run.trainStep()).loss)).toBe(true);
          for (const split of ['heldout', 'ood'] as const) {
            const o = await run.evaluate(split);
            // the senders' prompts from the rendering and the tokenizer, per episode, + T each
            const eps = run.evalSet(split);
            const senders = run.plan.filter((pa) => !pa.final);
            const want = eps.reduce((sum, ep) => sum + senders.reduce((t, pa) => t + run.tokenizer.encode(promptText(run.rendering, ep, pa, run.spec)).length + T, 0), 0) / eps.length;
            expect(o.messagePositions, `${c.task} ${method} T = ${T} ${split}`).toBeCloseTo(want, 9);
            expect(o.messagePositions!).toBeGreaterThan(0);
            expect(o.messageFloats).toBe(o.messagePositions! * 2 * 2 * 8);
            expect(Number.isFinite(o.loss)).toBe(true);
          }
          for (const control of ['shuffle', 'zero', 'noise', 'rotate', 'permute'] as const) expect((await run.evaluate('heldout', control)).episodes).toBe(6);
          run.destroy();
        }
      }
    }
    engine.destroy();
  });
});

describe('experiment --latency T', () => {
  it('refuses --latency with --text-budget or --latent-steps, a latent-only method, and a T out of range, before any work', async () => {
    const both = await cli(['experiment', '--preset', 'tiny', '--latency', '2', '--text-budget', '3', '--seeds', '1']);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/--latency T sets both the text budget and the senders\u2019 latent steps/);
    const steps = await cli(['experiment', '--preset', 'tiny', '--latency', '2', '--latent-steps', '3', '--seeds', '1']);
    expect(steps.err).toMatch(/not both/);
    const latent = await cli(['experiment', '--preset', 'tiny', '--latency', '0', '--methods', 'text,diffmas', '--seeds', '1']);
    expect(latent.code).toBe(2);
    expect(latent.err).toMatch(/--latency 0: diffmas passes on only its latent positions/);
    const range = await cli(['experiment', '--preset', 'tiny', '--latency', '65', '--seeds', '1']);
    expect(range.err).toMatch(/--latency/);
  });

  it('T = 0 and T = 1 on the tiny base: the methods run, the text budget and latent steps, args.latency and the positions read', { timeout: 600_000 }, async () => {
    const read = (T: number) => JSON.parse(readFileSync(path.join(dir, `T${T}.json`), 'utf8'));
    for (const T of [0, 1]) {
      const r = await cli(['experiment', '--preset', 'tiny', '--task', 'lookup', '--latency', String(T), '--seeds', '1', '--steps', '2', '--batch', '4', '--eval-size', '4', '--no-controls', '--json', path.join(dir, `T${T}.json`)]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(new RegExp(`latency T = ${T} sequential passes per sender`));
      expect(r.out).toMatch(/estimate: about/);
    }
    const zero = read(0), one = read(1);
    expect(zero.args.latency.T).toBe(0);
    expect(zero.args.latency.runAs).toEqual({ text: 'single', 'text-trained': 'single-trained', 'latentmas-full': 'latentmas-full', 'diffmas-full': 'diffmas-full', c2c: 'c2c' });
    expect(zero.args.methods).toEqual(['single', 'single-trained', 'latentmas-full', 'diffmas-full', 'c2c']);
    expect(zero.args.topology.agents.map((a: { latentSteps: number }) => a.latentSteps)).toEqual([0, 0]);
    expect(one.args.latency.runAs.text).toBe('text');
    expect(one.args.methods).toEqual(['text', 'text-trained', 'latentmas-full', 'diffmas-full', 'c2c']);
    expect(one.args.textBudget).toBe(1);
    expect(one.args.topology.agents.map((a: { latentSteps: number }) => a.latentSteps)).toEqual([1, 0]);
    const pos = (r: { rows: { method: string; split: string; messagePositions: number }[] }, m: string) => r.rows.find((x) => x.method === m && x.split === 'heldout')!.messagePositions;
    // lookup d1 (char rendering): the sender's prompt is the same length in every held-out episode; one more latent step reads one more position
    expect(pos(zero, 'single')).toBe(0);
    expect(pos(zero, 'latentmas-full')).toBeGreaterThan(0);
    expect(pos(one, 'latentmas-full')).toBeCloseTo(pos(zero, 'latentmas-full') + 1, 9);
    expect(pos(one, 'diffmas-full')).toBeCloseTo(pos(zero, 'diffmas-full') + 1, 9);
    expect(pos(one, 'text-trained')).toBe(1);
    expect(pos(one, 'text')).toBeLessThanOrEqual(1);
  });
});
