// `npm run bench`: speed of our kernels and training beside a reference measured in the same run
// (tfjs-backend-webgpu on the same adapter, and the CPU reference), as ratios. Never a timed test.
import { writeFile } from 'node:fs/promises';
import { createNodeGpu } from '../gpu/node';
import type { Gpu } from '../gpu/runtime';
import { prepareMatmul, type MatmulLayout } from '../gpu/ops/matmul';
import { matmulRef } from '../reference/matmul';
import { Args } from './args';
import { loadTfjsWebgpu, type Tf } from './tfjs';

export interface BenchRow {
  section: string;
  name: string;
  unit: 'GFLOP/s' | 'tokens/s' | 'ms';
  ours: number;
  reference: number | null;
  referenceName: string;
  ratio: number | null;
  extra?: Record<string, number | string>;
}

const now = () => performance.now();

function randData(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

/** Runs fn until at least minMs have passed (after one warm-up), returns ms per call. */
async function timeIt(fn: () => Promise<void>, minMs: number, maxReps = 200): Promise<number> {
  await fn();
  let reps = 0;
  const t0 = now();
  while (reps < maxReps && (reps === 0 || now() - t0 < minMs)) {
    await fn();
    reps++;
  }
  return (now() - t0) / reps;
}

async function benchMatmul(gpu: Gpu, tf: Tf | null, sizes: number[], minMs: number, cpuMax: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const n of sizes) {
    for (const layout of ['nn', 'nt', 'tn'] as MatmulLayout[]) {
      const [M, N, K] = [n, n, n];
      const a = randData(M * K, 1);
      const b = randData(K * N, 2);
      const ta = gpu.tensor([M * K], 'bench.A', a);
      const tb = gpu.tensor([K * N], 'bench.B', b);
      const tc = gpu.tensor([M * N], 'bench.C');
      const d = prepareMatmul(gpu, ta, tb, tc, M, N, K, { layout });
      const inner = 4; // several dispatches per submit, as in a training step
      const ms =
        (await timeIt(async () => {
          for (let i = 0; i < inner; i++) gpu.record(d);
          await gpu.sync();
        }, minMs)) / inner;
      const flops = 2 * M * N * K;
      const ours = flops / ms / 1e6;
      let reference: number | null = null;
      let referenceName = 'tfjs-backend-webgpu';
      if (tf) {
        const A = tf.tensor2d(a, layout === 'tn' ? [K, M] : [M, K]);
        const B = tf.tensor2d(b, layout === 'nt' ? [N, K] : [K, N]);
        const tms =
          (await timeIt(async () => {
            const outs = [];
            for (let i = 0; i < inner; i++) outs.push(tf.matMul(A, B, layout === 'tn', layout === 'nt'));
            await outs[inner - 1].data();
            outs.forEach((o) => o.dispose());
          }, minMs)) / inner;
        reference = flops / tms / 1e6;
        A.dispose();
        B.dispose();
      } else if (n <= cpuMax) {
        referenceName = 'CPU reference';
        const cms = await timeIt(async () => void matmulRef(a, b, M, N, K, layout), minMs, 3);
        reference = flops / cms / 1e6;
      }
      rows.push({
        section: 'matmul', name: `${layout} ${M}x${N}x${K}`, unit: 'GFLOP/s', ours, reference, referenceName,
        ratio: reference ? ours / reference : null,
      });
      if (n <= cpuMax && tf) {
        const cms = await timeIt(async () => void matmulRef(a, b, M, N, K, layout), minMs, 3);
        rows[rows.length - 1].extra = { cpuGflops: Number((flops / cms / 1e6).toFixed(3)) };
      }
      d.destroy();
      [ta, tb, tc].forEach((t) => gpu.destroy(t));
      printRow(rows[rows.length - 1]);
    }
  }
  return rows;
}

function fmt(v: number | null): string {
  if (v === null) return '—';
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

function printRow(r: BenchRow): void {
  const extra = r.extra ? '  ' + Object.entries(r.extra).map(([k, v]) => `${k}=${v}`).join(' ') : '';
  console.log(
    `${r.section.padEnd(10)} ${r.name.padEnd(28)} ours ${fmt(r.ours).padStart(8)} ${r.unit.padEnd(8)} ` +
      `${r.referenceName} ${fmt(r.reference).padStart(8)}  ratio ${r.ratio === null ? '—' : r.ratio.toFixed(2) + 'x'}${extra}`,
  );
}

export async function commandBench(argv: string[]): Promise<number> {
  const args = new Args(argv, [
    { name: 'json', help: 'also write the rows as JSON to FILE' },
    { name: 'sizes', help: 'matmul sizes (square), comma-separated', default: '64,128,256' },
    { name: 'min-ms', help: 'minimum time per measurement', default: '300' },
    { name: 'only', help: 'sections to run: matmul,attention,train,mas' },
    { name: 'no-tfjs', help: 'skip the tfjs-backend-webgpu reference (CPU reference instead)', flag: true },
  ], 'usage: npm run bench -- [--json FILE] [--sizes 64,128,256] [--only matmul,...]');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  const gpu = await createNodeGpu();
  const r = gpu.report;
  console.log(`device: ${[r.vendor, r.architecture, r.description].filter(Boolean).join(' / ')}`);
  const tf = args.has('no-tfjs') ? null : await loadTfjsWebgpu();
  const only = args.list('only');
  const want = (s: string) => !only || only.includes(s);
  const minMs = args.num('min-ms', 1)!;
  const rows: BenchRow[] = [];
  if (want('matmul')) rows.push(...(await benchMatmul(gpu, tf, args.list('sizes')!.map(Number), minMs, 256)));
  const file = args.str('json');
  if (file) {
    await writeFile(file, JSON.stringify({ device: r, date: new Date().toISOString(), rows }, null, 2));
    console.log(`wrote ${file}`);
  }
  return 0;
}
