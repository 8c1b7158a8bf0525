// Issue 22's tasks through the CLI: every method runs on index (4 and 8 digits) and on relay with a long
// secret, each at a tight budget (1 or 2 tokens and latent positions per message) for two steps on the tiny
// base, and the report carries rows for both splits and the bounds with the Hamming-sphere ceiling.
// Well-formedness only: how well anything learns is the experiments' business.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { METHODS } from '../src/mas/run-types';
import { cli } from './cli-helpers';

const dir = mkdtempSync(path.join(tmpdir(), 'cli-index-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SETTINGS = [
  { task: 'index', difficulty: 3, extra: ['--text-budget', '1', '--latent-steps', '1'] },
  { task: 'index', difficulty: 5, extra: ['--text-budget', '2', '--latent-steps', '2'] },
  { task: 'relay', difficulty: 3, extra: ['--text-budget', '1', '--latent-steps', '1'] },
];

describe('the CLI runs every method on the tasks where the channels can differ', () => {
  for (const s of SETTINGS) {
    it(`${s.task} d${s.difficulty} ${s.extra.join(' ')}`, async () => {
      const json = path.join(dir, `${s.task}.json`);
      const r = await cli([
        'experiment', '--preset', 'tiny', '--task', s.task, '--difficulty', String(s.difficulty), '--methods', METHODS.join(','), '--seeds', '1',
        '--steps', '2', '--batch', '2', '--eval-size', '4', '--no-controls', '--quiet', '--json', json, ...s.extra,
      ]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const report = JSON.parse(readFileSync(json, 'utf8'));
      expect(report.args.task).toBe(s.task);
      for (const m of METHODS) {
        for (const split of ['heldout', 'ood']) {
          const row = report.rows.find((x: { method: string; split: string }) => x.method === m && x.split === split);
          expect(row, `${m} ${split}`).toBeDefined();
          expect(row.accuracy).toBeGreaterThanOrEqual(0);
          expect(row.accuracy).toBeLessThanOrEqual(1);
          expect(Number.isFinite(row.loss)).toBe(true);
        }
      }
      expect(report.bounds.task).toBe(s.task);
      for (const b of report.bounds.rows) expect(b.sphere).toBeLessThanOrEqual(b.ceiling);
      expect(r.out).toMatch(/Hamming sphere; Fano/);
    }, 600_000);
  }
});
