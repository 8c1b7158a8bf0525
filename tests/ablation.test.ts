// bench/ablation.mjs (issue 22 item 2): a seed escapes the values plateau when the 95% Wilson interval of
// its accuracy lies wholly above the report's values-only bound, computed from the rows' outcomes.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { wilson95 } from '../src/mas/base-eval';

const root = path.resolve(__dirname, '..');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const tool = (): Promise<any> => import(path.join(root, 'bench', 'ablation.mjs'));
const dir = mkdtempSync(path.join(os.tmpdir(), 'ablation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const outcomes = (k: number, n: number) => '1'.repeat(k) + '0'.repeat(n - k);
/** A report of diffmas seeds with k correct of n held-out episodes each, and the lookup d3 bound. */
function report(ks: number[], n = 512, bound = 0.3835) {
  return {
    args: { task: 'lookup', difficulty: 3 },
    rows: [
      ...ks.map((k, i) => ({ method: 'diffmas', split: 'heldout', seed: i + 1, accuracy: k / n, episodes: n, outcomes: outcomes(k, n) })),
      ...ks.map((_, i) => ({ method: 'diffmas', split: 'ood', seed: i + 1, accuracy: Math.round(0.1 * n) / n, episodes: n, outcomes: outcomes(Math.round(0.1 * n), n) })),
    ],
    bounds: { valuesOnly: { heldout: { entries: 4, accuracy: bound }, ood: { entries: 6, accuracy: 0.3366 } } },
  };
}

describe('bench/ablation.mjs', () => {
  it('the interval is the runner\u2019s Wilson interval', async () => {
    const { wilson95: w } = await tool();
    for (const [k, n] of [[0, 10], [10, 10], [3, 7], [197, 512], [300, 512]]) expect(w(k, n)).toEqual(wilson95(k, n));
  });

  it('a seed escapes only when its whole interval is above the bound', async () => {
    const { analyseArm } = await tool();
    const n = 512;
    // 0.3835 x 512 = 196: at the bound; 215 (0.420) is above it but its interval reaches below; 230 (0.449) escapes
    const ks = [180, 196, 215, 230, 400, 512];
    const arm = analyseArm(report(ks, n));
    expect(arm.bound).toBe(0.3835);
    expect(arm.n).toBe(6);
    const want = ks.map((k) => wilson95(k, n)[0] > 0.3835);
    expect(arm.seeds.map((s: { escapes: boolean }) => s.escapes)).toEqual(want);
    expect(want).toEqual([false, false, false, true, true, true]);
    expect(arm.escaped).toBe(3);
    expect(arm.seeds[2]).toMatchObject({ seed: 3, k: 215, n, accuracy: 215 / n });
    // the interval decides, not the point: 215/512 = 0.420 is above 0.3835, but its interval starts at 0.378
    expect(215 / n).toBeGreaterThan(0.3835);
    expect(arm.seeds[2].lo).toBeLessThan(0.3835);
    // ood has its own bound
    expect(analyseArm(report(ks, n), { split: 'ood' }).escaped).toBe(0);
    // fewer episodes, a wider interval: 0.5 of 32 does not escape, 0.5 of 2048 does
    expect(analyseArm(report([16], 32)).escaped).toBe(0);
    expect(analyseArm(report([1024], 2048)).escaped).toBe(1);
  });

  it('reads k from the outcomes, else from accuracy and episodes; refuses a report without the bound', async () => {
    const { analyseArm, countsOf } = await tool();
    expect(countsOf({ seed: 1, outcomes: '1101', accuracy: 0.1, episodes: 99 })).toEqual({ k: 3, n: 4 });
    expect(countsOf({ seed: 1, accuracy: 0.5, episodes: 10 })).toEqual({ k: 5, n: 10 });
    expect(() => countsOf({ seed: 2, outcomes: '1x' })).toThrow(/seed 2: outcomes must be a string of 0 and 1/);
    const r = report([300]);
    expect(() => analyseArm({ ...r, bounds: undefined, file: 'x.json' })).toThrow(/x.json stores no values-only bound for heldout/);
    expect(() => analyseArm(r, { method: 'text' })).toThrow(/no text rows on heldout/);
  });

  it('prints per arm how many seeds escape and each seed\u2019s accuracy', async () => {
    const a = path.join(dir, 'toy-lookup-d3-ablation-base.json');
    const b = path.join(dir, 'toy-lookup-d3-ablation-slot-offset.json');
    writeFileSync(a, JSON.stringify(report([180, 196, 400])));
    writeFileSync(b, JSON.stringify(report([400, 500, 512, 100])));
    const { stdout } = await promisify(execFile)('node', [path.join(root, 'bench', 'ablation.mjs'), a, b]);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe('base: 1 of 3 seeds escape (diffmas, heldout; 95% Wilson interval wholly above the values-only bound 0.384)');
    expect(lines[1]).toMatch(/^ {2}seed 1: 0\.352 \(180\/512\) \[0\.\d{3}, 0\.\d{3}\]$/);
    expect(lines[3]).toMatch(/seed 3: 0\.781 \(400\/512\) .* escapes$/);
    expect(lines[4]).toBe('slot-offset: 3 of 4 seeds escape (diffmas, heldout; 95% Wilson interval wholly above the values-only bound 0.384)');
    await expect(promisify(execFile)('node', [path.join(root, 'bench', 'ablation.mjs'), '--split', 'train', a])).rejects.toThrow(/--split must be heldout or ood/);
  });
  it('--against: each seed minus the same seed of a reference on the same episodes, paired; other episodes refused', async () => {
    const { pairedAgainst } = await tool();
    const withEpisodes = (r: ReturnType<typeof report>, keys: string[]) => ({ ...r, episodes: { heldout: keys, ood: keys } });
    const keys = ['e1', 'e2', 'e3', 'e4'];
    const row = (seed: number, outcomes: string) => ({ method: 'diffmas', split: 'heldout', seed, accuracy: 0, episodes: 4, outcomes });
    const arm = withEpisodes({ ...report([]), rows: [row(1, '1111'), row(2, '1010'), row(9, '1111')] }, keys);
    const ref = withEpisodes({ ...report([]), rows: [row(1, '0000'), row(2, '1010')] }, keys);
    const d = pairedAgainst(arm, ref);
    // seed 1: every episode +1 (sd 0, interval a point); seed 2: identical outcomes; seed 9: not in the reference
    expect(d).toEqual([{ seed: 1, diff: 1, lo: 1, hi: 1, n: 4 }, { seed: 2, diff: 0, lo: 0, hi: 0, n: 4 }]);
    // one episode better of four: mean 0.25, sd 0.5, half-width 1.96 x 0.5 / 2
    const e = pairedAgainst(withEpisodes({ ...report([]), rows: [row(1, '1000')] }, keys), ref)[0];
    expect(e.diff).toBeCloseTo(0.25, 12);
    expect(e.hi - e.diff).toBeCloseTo((1.959963984540054 * 0.5) / 2, 12);
    expect(() => pairedAgainst(arm, withEpisodes(ref, ['e1', 'e2', 'e4', 'e3']))).toThrow(/other heldout episodes/);
  });
});
