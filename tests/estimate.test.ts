// The time estimate before a run (issue 23 item 4): pure arithmetic over measured figures
// (src/mas/estimate.ts), and the work each (method, seed) run does (src/mas/measure-time.ts runWork).
import { describe, expect, it } from 'vitest';
import { estimateExperiment, formatSeconds, LONG_RUN_SECONDS, longRunWarning } from '../src/mas/estimate';
import { runWork } from '../src/mas/measure-time';
import { defaultRunConfig } from '../src/mas/run';
import { presetForTask } from '../src/mas/topology';
import { makeTask } from '../src/tasks/tasks';

describe('estimateExperiment', () => {
  it('is seeds x (steps x s/step + episodes x s/episode), summed over methods', () => {
    const e = estimateExperiment(
      [{ method: 'diffmas', steps: 100, evalEpisodes: 50 }, { method: 'single', steps: 0, evalEpisodes: 40 }],
      [{ method: 'diffmas', stepSeconds: 2, episodeSeconds: 0.5 }, { method: 'single', stepSeconds: 0, episodeSeconds: 0.25 }],
      3,
    );
    // diffmas: 200 + 25 = 225 per seed; single: 10 per seed
    expect(e.perRun).toEqual([{ method: 'diffmas', seconds: 225 }, { method: 'single', seconds: 10 }]);
    expect(e.trainSeconds).toBe(600);
    expect(e.evalSeconds).toBe(3 * 25 + 3 * 10);
    expect(e.seconds).toBe(705);
    expect(e.runs).toBe(6);
  });

  it('the figures of issue 23 (SmolLM2 on lavapipe: 15 s/step, 60 s/episode) come out at days', () => {
    const e = estimateExperiment([{ method: 'diffmas', steps: 300, evalEpisodes: 2 * 128 + 5 * 128 }], [{ method: 'diffmas', stepSeconds: 15, episodeSeconds: 60 }], 3);
    expect(e.seconds).toBe(3 * (300 * 15 + 896 * 60));
    expect(formatSeconds(e.seconds)).toBe('2.0 days');
    expect(longRunWarning(e.seconds)).toMatch(/^warning: this takes about 2\.0 days, past 30 min/);
  });

  it('refuses a method without a measured timing and a negative or fractional figure', () => {
    expect(() => estimateExperiment([{ method: 'text', steps: 0, evalEpisodes: 1 }], [], 1)).toThrow(/no measured timing of method text/);
    expect(() => estimateExperiment([{ method: 'a', steps: 1.5, evalEpisodes: 1 }], [{ method: 'a', stepSeconds: 1, episodeSeconds: 1 }], 1)).toThrow(/steps must be a whole number/);
    expect(() => estimateExperiment([{ method: 'a', steps: 1, evalEpisodes: 1 }], [{ method: 'a', stepSeconds: NaN, episodeSeconds: 1 }], 1)).toThrow(/seconds per step/);
    expect(() => estimateExperiment([], [], -1)).toThrow(/seeds/);
  });
});

describe('formatSeconds and longRunWarning', () => {
  it('words a duration at its scale', () => {
    expect(formatSeconds(0.2)).toBe('1 s');
    expect(formatSeconds(45)).toBe('45 s');
    expect(formatSeconds(600)).toBe('10 min');
    expect(formatSeconds(2 * 3600 + 20 * 60)).toBe('2 h 20 min');
    expect(formatSeconds(3 * 3600)).toBe('3 h');
    expect(formatSeconds(NaN)).toBe('—');
  });
  it('warns past the threshold only', () => {
    expect(LONG_RUN_SECONDS).toBe(1800);
    expect(longRunWarning(1800)).toBeNull();
    expect(longRunWarning(1801)).toMatch(/about 30 min, past 30 min/);
    expect(longRunWarning(80, 60)).toMatch(/about 80 s, past 60 s/);
  });
});

describe('runWork', () => {
  const task = makeTask('lookup', 1);
  const base = defaultRunConfig({ topology: presetForTask(task), steps: 40, evalSize: 16 });
  it('a trained latent method: its steps, both splits and each latent control on heldout', () => {
    const w = runWork({ ...base, method: 'diffmas' }, ['heldout', 'ood'], ['shuffle', 'zero', 'noise']);
    expect(w).toEqual({ method: 'diffmas', steps: 40, evalEpisodes: 16 * 2 + 3 * 16 });
  });
  it('a training-free method without messages: no steps, no controls', () => {
    expect(runWork({ ...base, method: 'single' }, ['heldout', 'ood'], ['shuffle', 'zero'])).toEqual({ method: 'single', steps: 0, evalEpisodes: 32 });
  });
  it('a text method runs only the controls that apply to text', () => {
    expect(runWork({ ...base, method: 'text' }, ['heldout'], ['shuffle', 'zero', 'noise', 'rotate', 'permute']).evalEpisodes).toBe(16 + 2 * 16);
  });
});
