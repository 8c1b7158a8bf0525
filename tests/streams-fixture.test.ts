// tests/fixtures/streams.json is what the engine draws today: made here in memory from the sources by the
// same code as scripts/dump-streams.mjs and compared with the committed file. The companion's port is held
// to that file (python/tests/test_new.py), so a change on either side fails one of the two tests.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error a plain ES module without types (scripts/)
import { CHAR_TOKENIZER, FIXTURE, serialize, streamsFixture } from '../scripts/dump-streams.mjs';
import { MAX_DIFFICULTY, makeTask, sampleEpisodes, TASK_NAMES } from '../src/tasks/tasks';
import { RENDERINGS, rendering } from '../src/tasks/render';
import { evalEpisodes, firstTrainingBatches } from '../src/mas/run-data';
import { answerIds, makePlan, promptText } from '../src/mas/data';
import { methodSpec } from '../src/mas/methods';
import { presetForTask, twoRound } from '../src/mas/topology';
import { CharTokenizer, HfTokenizer } from '../src/tokenizers';
import { byteLevelBpe, sentencepieceBpe } from './hf-fixtures';

const engine = {
  makeTask, sampleEpisodes, rendering, evalEpisodes, firstTrainingBatches, makePlan, promptText, answerIds, methodSpec, presetForTask, twoRound,
  CharTokenizer, HfTokenizer, byteLevelBpe, sentencepieceBpe,
};

describe('the streams fixture', () => {
  it('is what the engine draws (regenerate with node scripts/dump-streams.mjs)', () => {
    const fx = streamsFixture(engine, JSON.parse(readFileSync(CHAR_TOKENIZER, 'utf8')));
    const text = serialize(fx);
    const file = readFileSync(FIXTURE, 'utf8');
    if (text !== file) {
      // name the first entry that moved before failing on the whole text
      const a = file.split('\n');
      const b = text.split('\n');
      const i = a.findIndex((l, k) => l !== b[k]);
      expect(b[i]?.slice(0, 300), `line ${i + 1} of tests/fixtures/streams.json`).toBe(a[i]?.slice(0, 300));
    }
    expect(text).toBe(file);
    // every rendering and task the engine has (a new one joins scripts/dump-streams.mjs and the companion's port)
    expect([...new Set(fx.cases.map((c: { rendering: string }) => c.rendering))].sort()).toEqual([...RENDERINGS].sort());
    expect(Object.keys(fx.episodes).sort()).toEqual(TASK_NAMES.flatMap((t) => Array.from({ length: MAX_DIFFICULTY }, (_, i) => `${t}/${i + 1}`)).sort());
  });
});
