// The link's values the page cannot use (issue 21 item 8): each is listed with what is used instead,
// the URL is rewritten to it, and a bad value in a link edited in the open tab changes nothing else.
import { describe, expect, it } from 'vitest';
import { DEFAULT_STATE, parseState, serializeState, type AppState } from '../src/ui/state';

describe('parseState corrections', () => {
  it('lists each unusable field with the value used, and keeps the others', () => {
    const p = parseState('#steps=-5&task=bogus&seed=3&layer=x&fitY=2');
    expect(p.corrections.map((c) => c.field)).toEqual(['task', 'steps', 'seed', 'layer', 'fitY'].filter((f) => f !== 'seed'));
    expect(p.problems).toEqual([
      'task=bogus: "bogus" is not one of lookup, relay, arith, index; lookup is used (the default).',
      'steps=-5: -5 is below 1; 800 is used (the default).',
      'layer=x: "x" is neither avg (the mean) nor a whole number; avg is used (the default).',
      'fitY=2: "2" is not 0 or 1; 0 is used (the default).',
    ]);
    expect(p.state.seed).toBe(3);
    expect(p.state.steps).toBe(DEFAULT_STATE.steps);
    // the link the page writes holds what it uses
    const hash = serializeState(p.state);
    expect(hash).toContain('steps=800');
    expect(hash).toContain('task=lookup');
    expect(hash).toContain('layer=avg');
    expect(hash).toContain('fitY=0');
  });

  it('a bad value of a link edited in the open tab keeps the current value, and the task keeps its topology', () => {
    const current: AppState = { ...parseState('#task=relay&difficulty=2&steps=12').state };
    const p = parseState(serializeState(current).replace('task=relay', 'task=bogus').replace('steps=12', 'steps=0'), current);
    expect(p.state.task).toBe('relay');
    expect(p.state.steps).toBe(12);
    expect(p.state.topology).toEqual(current.topology);
    expect(p.problems).toEqual([
      'task=bogus: "bogus" is not one of lookup, relay, arith, index; relay is used (as before).',
      'steps=0: 0 is below 1; 12 is used (as before).',
    ]);
  });

  it('round-trips the new fields: fitY and layer/head picks', () => {
    const s: AppState = { ...DEFAULT_STATE, fitY: true, layer: '1', head: 'avg' };
    const back = parseState(serializeState(s));
    expect(back.problems).toEqual([]);
    expect(back.state.fitY).toBe(true);
    expect(back.state.layer).toBe('1');
    expect(parseState('#layer=01').state.layer).toBe('1');
  });
});
