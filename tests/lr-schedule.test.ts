// config.lrSchedule (src/mas/run-types.ts): 'constant' keeps the warmup, then holds lr; the default
// keeps the warmup + cosine schedule every earlier run used, bit for bit (the same hyperparameters,
// the same lrAt values as the formula before the option existed).
import { describe, expect, it } from 'vitest';
import { lrAt, validateHyper, type TrainHyper } from '../src/model/train';
import { trainHyperOf } from '../src/mas/run-data';
import { validateRunConfig } from '../src/mas/methods';
import { defaultRunConfig } from '../src/mas/run';
import { presetForTask } from '../src/mas/topology';
import { makeTask } from '../src/tasks/tasks';

/** lrAt as it was before lrSchedule (src/model/train.ts at 83b9404). */
function before(step: number, h: TrainHyper): number {
  const minLr = h.minLr ?? h.lr / 10;
  if (h.warmupSteps > 0 && step <= h.warmupSteps) return (h.lr * step) / h.warmupSteps;
  const span = Math.max(1, h.totalSteps - h.warmupSteps);
  const t = Math.min(1, Math.max(0, (step - h.warmupSteps) / span));
  return minLr + 0.5 * (h.lr - minLr) * (1 + Math.cos(Math.PI * t));
}

describe('lr schedule', () => {
  it('the default is the warmup + cosine schedule of before, bit for bit', () => {
    for (const steps of [1, 7, 400, 1200, 5000]) {
      const h = trainHyperOf({ lr: 3e-3, steps });
      // no schedule field at all: the optimizer's settings are those of every earlier run
      expect(h).toEqual({ lr: 3e-3, warmupSteps: Math.min(50, Math.ceil(steps / 10)), totalSteps: steps, weightDecay: 0, clip: 1, accumSteps: 1 });
      expect(trainHyperOf({ lr: 3e-3, steps, lrSchedule: 'cosine' })).toEqual(h);
      for (let s = 1; s <= steps; s++) expect(lrAt(s, h)).toBe(before(s, h));
    }
  });

  it("'constant' warms up linearly, then holds lr to the last step", () => {
    const h = trainHyperOf({ lr: 3e-3, steps: 5000, lrSchedule: 'constant' });
    expect(h.warmupSteps).toBe(50);
    for (let s = 1; s <= 50; s++) expect(lrAt(s, h)).toBe(before(s, h));
    for (const s of [51, 52, 2500, 4999, 5000, 6000]) expect(lrAt(s, h)).toBe(3e-3);
    // no warmup (one step): lr from the first step
    const one = trainHyperOf({ lr: 1e-3, steps: 1, lrSchedule: 'constant' });
    expect(lrAt(1, one)).toBe(1e-3 * 1 / one.warmupSteps);
  });

  it('refuses an unknown schedule with a clear error', () => {
    expect(() => validateHyper({ ...trainHyperOf({ lr: 1e-3, steps: 10 }), schedule: 'linear' as never })).toThrow(/schedule must be one of cosine, constant, got "linear"/);
    const c = defaultRunConfig({ topology: presetForTask(makeTask('lookup', 1)) });
    expect(() => validateRunConfig({ ...c, lrSchedule: 'step' as never })).toThrow(/lrSchedule must be 'cosine' or 'constant', got "step"/);
    expect(() => validateRunConfig({ ...c, lrSchedule: 'constant' })).not.toThrow();
  });
});

describe('the page\u2019s setup: lrSchedule and latentSlotOffset', () => {
  it('round-trip through the URL hash and into the run config, each only where it applies', async () => {
    const { DEFAULT_STATE, parseState, runConfigOf, serializeState, stateOfRunConfig } = await import('../src/ui/state');
    expect(DEFAULT_STATE.lrSchedule).toBe('cosine');
    expect(DEFAULT_STATE.latentSlotOffset).toBe(false);
    // the defaults add nothing to a run's config (every earlier link and run unchanged)
    const plain = runConfigOf({ ...DEFAULT_STATE, method: 'diffmas' });
    expect(plain).not.toHaveProperty('lrSchedule');
    expect(plain).not.toHaveProperty('latentSlotOffset');
    const s = { ...DEFAULT_STATE, method: 'diffmas' as const, lrSchedule: 'constant' as const, latentSlotOffset: true };
    const back = parseState(serializeState(s));
    expect(back.problems).toEqual([]);
    expect(back.state.lrSchedule).toBe('constant');
    expect(back.state.latentSlotOffset).toBe(true);
    const c = runConfigOf(back.state);
    expect(c).toMatchObject({ lrSchedule: 'constant', latentSlotOffset: true });
    expect(() => validateRunConfig(c)).not.toThrow();
    expect(stateOfRunConfig(DEFAULT_STATE, c)).toMatchObject({ lrSchedule: 'constant', latentSlotOffset: true });
    // where they do not apply they stay out of the config: an untrained method, a text channel
    expect(runConfigOf({ ...s, method: 'latentmas' })).not.toHaveProperty('lrSchedule');
    expect(runConfigOf({ ...s, method: 'text-trained' })).not.toHaveProperty('latentSlotOffset');
    expect(runConfigOf({ ...s, method: 'text-trained' })).toMatchObject({ lrSchedule: 'constant' });
    // a bad value in a link is corrected to the default, and said
    const bad = parseState(serializeState(s).replace('lrSchedule=constant', 'lrSchedule=linear'));
    expect(bad.state.lrSchedule).toBe('cosine');
    expect(bad.problems.join(' ')).toMatch(/lrSchedule/);
  });
});
