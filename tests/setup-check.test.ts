// Train and Compare refuse a base that cannot run alike (issue 21 item 8): named as the library
// shows it, before any record is written.
import { describe, expect, it } from 'vitest';
import type { ModelEntry } from '../src/storage/records';
import { DEFAULT_STATE, type AppState } from '../src/ui/state';
import { baseBlocker, compareBlocker, setupKey } from '../src/ui/stores/setup-check';

const entry = (id: string, name: string, extra: Partial<ModelEntry> = {}): ModelEntry => ({ id, name, size: 1, createdAt: 0, builtin: false, config: {}, ...extra });

describe('setup blockers', () => {
  const app: AppState = { ...DEFAULT_STATE, model: 'model-abc123' };
  it('names a base without a tokenizer by its name, never its id', () => {
    const why = baseBlocker(app, [entry('model-abc123', 'qwen-notok', { tokenizer: false })], true)!;
    expect(why).toContain("the base model 'qwen-notok' has no tokenizer.json");
    expect(why).not.toContain('model-abc123');
    expect(baseBlocker(app, [entry('model-abc123', 'fine')], true)).toBeNull();
    expect(baseBlocker(app, [], false)).toBeNull();
    expect(baseBlocker(app, [], true)).toContain('is not in the library');
  });
  it('refuses a comparison for the base, a method the setup cannot run, or the estimate of this setup', () => {
    const models = [entry('model-abc123', 'fine')];
    const none = { key: '', report: null, error: null };
    expect(compareBlocker(app, ['single', 'diffmas'], models, true, none)).toBeNull();
    const refused = { key: setupKey(app), report: null, error: 'too big' };
    expect(compareBlocker(app, ['single'], models, true, refused)).toBe('this setup cannot run here: too big');
    // an estimate of another setup says nothing of this one
    expect(compareBlocker({ ...app, seed: 99 }, ['single'], models, true, refused)).toBeNull();
    const noTopology: AppState = { ...app, topology: { ...app.topology, final: 'nobody' } };
    expect(compareBlocker(noTopology, ['diffmas'], models, true, none)).toMatch(/^diffmas cannot run this setup: /);
  });
});
