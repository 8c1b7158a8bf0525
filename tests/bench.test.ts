// Smoke test of `npm run bench` in a minimal configuration (tiny sizes, --min-ms 1): it completes,
// every row has a finite ratio against its reference (the multi-agent rows have no reference), and
// the training-step checks hold (same losses as the tfjs model, no per-step compilation or
// allocation, memory within budget). Never asserts times.
// The bench runs as the CLI does, in a child process (the tfjs gradients load only from the esbuild
// bundle, see ../shared/ci-notes.md), bundled to a folder of its own so it cannot race `npm run cli`.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { BenchCheck, BenchRow } from '../src/cli/bench';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');

interface BenchJson {
  rows: BenchRow[];
  checks: BenchCheck[];
  goals: { name: string; met: boolean | null }[];
  notes: string[];
}

describe('npm run bench (minimal configuration)', () => {
  it('completes with a finite ratio on every row and passing checks', async () => {
    await mkdir(path.join(root, '.cache'), { recursive: true });
    const dir = await mkdtemp(path.join(root, '.cache', 'bench-test-'));
    try {
      const bundle = path.join(dir, 'main.mjs');
      await run('node', [path.join(root, 'scripts', 'bundle.mjs'), path.join(root, 'src', 'cli', 'main.ts'), bundle], { cwd: root });
      const json = path.join(dir, 'bench.json');
      const runner = 'const { main } = await import(process.argv[1]); process.exit(await main(process.argv.slice(2)));';
      const args = [
        'bench', '--sizes', '24', '--layouts', 'nn,tn', '--shapes', 'nt:20x12x8', '--attention', '2x6x3x4x2x8,1x5x0x2x2x4',
        '--train-preset', 'tiny', '--train-batch', '2', '--train-seq', '6', '--check-steps', '2', '--mas-latent', '1', '--min-ms', '1', '--rounds', '1', '--train-rounds', '1',
        '--json', json,
      ];
      const { stdout } = await run('bash', [path.join(root, 'scripts', 'with-vulkan.sh'), 'node', '--input-type=module', '-e', runner, bundle, ...args], {
        cwd: root, maxBuffer: 16 * 1024 * 1024,
      });
      const out = JSON.parse(await readFile(json, 'utf8')) as BenchJson;
      // 3 matmul shapes x 2 variants, 2 attention shapes, 1 training step, 2 multi-agent steps
      expect(out.rows.filter((r) => r.section === 'matmul')).toHaveLength(6);
      expect(out.rows.filter((r) => r.section === 'attention')).toHaveLength(2);
      expect(out.rows.filter((r) => r.section === 'train')).toHaveLength(1);
      // the multi-agent step has no same-run reference (tfjs has no multi-agent engine): no ratio
      const mas = out.rows.filter((r) => r.section === 'mas');
      expect(mas).toHaveLength(2);
      for (const r of mas) {
        expect(Number.isFinite(r.ours) && r.ours > 0, `${r.name}: ours ${r.ours}`).toBe(true);
        expect(r.ratio).toBeNull();
      }
      for (const r of out.rows.filter((x) => x.section !== 'mas')) {
        expect(r.referenceName, r.name).toBe('tfjs-backend-webgpu');
        expect(Number.isFinite(r.ours) && r.ours > 0, `${r.name}: ours ${r.ours}`).toBe(true);
        expect(Number.isFinite(r.ratio) && r.ratio! > 0, `${r.name}: ratio ${r.ratio}`).toBe(true);
      }
      expect(out.checks.map((c) => c.name).sort()).toEqual(
        ['no per-step allocation', 'no per-step compile', 'peak memory <= 3x', 'same model in tfjs'].sort(),
      );
      for (const c of out.checks) expect(c.ok, `${c.name}: ${c.detail} ${JSON.stringify(c.values)}`).toBe(true);
      expect(out.goals.length).toBe(3);
      expect(stdout).toContain('goal');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
