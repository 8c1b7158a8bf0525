// `npm run bench`: speed of our kernels and training beside a reference measured in the same run
// (tfjs-backend-webgpu on the same adapter, and the CPU reference where affordable), as ratios
// ours / reference. Sections: matmul (each kernel variant), attention forward+backward, one full
// training step (with checks: no per-step compilation or allocation, peak memory), a multi-agent
// training step with 2 and 4 agents (no reference: tfjs has none). Never a timed test.
import os from 'node:os';
import { createNodeGpu } from '../gpu/node';
import type { Gpu } from '../gpu/runtime';
import { prepareMatmul, preferredMatmulVariant, type MatmulLayout, type MatmulVariant } from '../gpu/ops/matmul';
import { matmulRef } from '../reference/matmul';
import { requiredSeqLen } from '../tasks/corpus';
import { PRETRAINED_TASK_NAMES } from '../tasks/tasks';
import { Args, UsageError } from './args';
import { checkOutputFile, writeFileAtomic } from './files';
import { loadTfjsWebgpu } from './tfjs';
import {
  formatCheck, formatRow, makeRow, randData, tfSync, timeCandidateStats, timeOnce,
  type BenchCheck, type BenchContext, type BenchRow,
} from './bench-util';
import { attentionShapeName, benchAttention, parseAttentionShape } from './bench-attention';
import { benchTrain } from './bench-train';
import { benchMas } from './bench-mas';
import { benchReal } from './bench-real';

export type { BenchRow, BenchCheck } from './bench-util';

export interface MatmulShape {
  layout: MatmulLayout;
  M: number;
  N: number;
  K: number;
}

/** The toy training step's matmul shapes (T = 16*56 = 896 rows, D 64, I 176, V 54). */
export const TOY_MATMUL_SHAPES = 'nt:896x176x64,nn:896x64x176,tn:176x64x896,nt:896x54x64';
export const DEFAULT_ATTENTION_SHAPES = '16x56x0x4x2x16,4x64x0x4x4x16,4x32x48x4x2x16,4x128x0x8x4x16';

/** Parses 'layout:MxNxK' items, e.g. 'nt:896x176x64'. */
export function parseMatmulShape(s: string): MatmulShape {
  const m = /^(nn|nt|tn):(\d+)x(\d+)x(\d+)$/.exec(s);
  if (!m) throw new UsageError(`matmul shape '${s}' must be layout:MxNxK with layout nn, nt or tn (e.g. nt:896x176x64)`);
  const [M, N, K] = [Number(m[2]), Number(m[3]), Number(m[4])];
  if (M < 1 || N < 1 || K < 1) throw new UsageError(`matmul shape '${s}': sizes must be >= 1`);
  return { layout: m[1] as MatmulLayout, M, N, K };
}

async function benchMatmul(
  gpu: Gpu, ctx: BenchContext, shapes: MatmulShape[], variants: MatmulVariant[], cpuMaxFlops: number,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const tf = ctx.tf;
  for (const { layout, M, N, K } of shapes) {
    // several dispatches per submit, as in a training step (one for big shapes: submits are noise there)
    const inner = 2 * M * N * K >= 8e6 ? 1 : 4;
    const a = randData(M * K, 1);
    const b = randData(K * N, 2);
    const ta = gpu.tensor([M * K], 'bench.A', a);
    const tb = gpu.tensor([K * N], 'bench.B', b);
    const tc = gpu.tensor([M * N], 'bench.C');
    const fns: Record<string, () => Promise<void>> = {};
    const prepared = variants.map((variant) => prepareMatmul(gpu, ta, tb, tc, M, N, K, { layout, variant }));
    variants.forEach((variant, i) => {
      fns[variant] = async () => {
        for (let r = 0; r < inner; r++) gpu.record(prepared[i]);
        await gpu.sync();
      };
    });
    const tfT = tf ? [tf.tensor2d(a, layout === 'tn' ? [K, M] : [M, K]), tf.tensor2d(b, layout === 'nt' ? [N, K] : [K, N])] : [];
    if (tf) {
      fns.tfjs = async () => {
        const outs = [];
        for (let r = 0; r < inner; r++) outs.push(tf.matMul(tfT[0], tfT[1], layout === 'tn', layout === 'nt'));
        await tfSync(tf);
        outs.forEach((o) => o.dispose());
      };
    }
    const st = await timeCandidateStats(fns, ctx.minMs, ctx.rounds);
    const ms = Object.fromEntries(Object.entries(st).map(([k, v]) => [k, v.median]));
    const flops = 2 * M * N * K;
    const gf = (perCall: number) => (flops * inner) / perCall / 1e6;
    let cpu: number | null = null;
    if (ctx.cpu && flops <= cpuMaxFlops) cpu = flops / (await timeOnce(() => matmulRef(a, b, M, N, K, layout), 2)) / 1e6;
    for (const variant of variants) {
      const extra: Record<string, number | string> = {};
      if (tf) extra.ratioBest = st.tfjs.best / st[variant].best;
      if (cpu !== null && tf) extra.cpuGflops = cpu;
      const reference = tf ? gf(ms.tfjs) : cpu;
      const row = makeRow('matmul', `${variant} ${layout} ${M}x${N}x${K}`, 'GFLOP/s', gf(ms[variant]), reference,
        tf ? 'tfjs-backend-webgpu' : 'CPU reference (f64)', extra);
      rows.push(row);
      ctx.log(formatRow(row));
    }
    prepared.forEach((d) => d.destroy());
    [ta, tb, tc].forEach((t) => gpu.destroy(t));
    tfT.forEach((t) => t.dispose());
  }
  return rows;
}

export interface BenchGoal {
  name: string;
  met: boolean | null;
  detail: string;
}

/** The goals, read off the rows: matmul >= tfjs at every shape; training step faster than tfjs. */
export function benchGoals(rows: BenchRow[], preferred: MatmulVariant): BenchGoal[] {
  const goals: BenchGoal[] = [];
  const tfRows = rows.filter((r) => r.referenceName.startsWith('tfjs') && r.ratio !== null);
  const mm = (variant: string) => tfRows.filter((r) => r.section === 'matmul' && r.name.startsWith(`${variant} `));
  for (const variant of ['tiled', 'direct']) {
    const rs = mm(variant);
    if (!rs.length) continue;
    const worst = rs.reduce((a, b) => (b.ratio! < a.ratio! ? b : a));
    const slower = rs.filter((r) => r.ratio! < 1).map((r) => r.name.slice(variant.length + 1));
    goals.push({
      name: `matmul ${variant}${variant === preferred ? ' (this adapter\'s default)' : ''} >= tfjs at every shape`,
      met: slower.length === 0,
      detail: `worst ratio ${worst.ratio!.toFixed(2)}x at ${worst.name}` + (slower.length ? `; slower at ${slower.join(', ')}` : ''),
    });
  }
  const tr = tfRows.find((r) => r.section === 'train');
  if (tr) goals.push({ name: 'training step faster than tfjs', met: tr.ratio! > 1, detail: `ratio ${tr.ratio!.toFixed(2)}x (${tr.name})` });
  return goals;
}

export async function commandBench(argv: string[]): Promise<number> {
  const args = new Args(argv, [
    { name: 'json', help: 'also write the rows, checks and goals as JSON to FILE (an existing file that is not a bench JSON is refused)' },
    { name: 'force', help: 'let --json replace any existing file', flag: true },
    { name: 'only', help: 'sections to run: matmul,attention,train,mas (the default), and real (a DiffMAS step at SmolLM2-135M shape: opt-in, minutes on a CPU adapter)' },
    { name: 'real-batch', help: 'episodes per step of the real-shape section', default: '2' },
    { name: 'real-steps', help: 'timed steps of the real-shape section (after one warm-up step)', default: '2' },
    { name: 'sizes', help: 'square matmul sizes, each in every layout (comma-separated)', default: '64,128,256' },
    { name: 'layouts', help: 'layouts for the square sizes', default: 'nn,nt,tn' },
    { name: 'shapes', help: "more matmul shapes layout:MxNxK ('none' for none)", default: TOY_MATMUL_SHAPES },
    { name: 'variants', help: 'matmul kernel variants', default: 'tiled,direct' },
    { name: 'attention', help: "attention shapes BxSxPxHqxHkvxhd ('none' for none)", default: DEFAULT_ATTENTION_SHAPES },
    { name: 'train-preset', help: 'model preset of the training step', default: 'toy' },
    { name: 'train-batch', help: 'sequences per training step', default: '16' },
    { name: 'train-seq', help: 'tokens per sequence (default: the pretraining corpus length)' },
    { name: 'mas-latent', help: 'latent steps per sender in the multi-agent step', default: '4' },
    { name: 'check-steps', help: 'steps over which pipeline/buffer counts are compared', default: '3' },
    { name: 'min-ms', help: 'minimum time per measurement (training: 3x)', default: '300' },
    { name: 'rounds', help: 'alternating timing rounds per measurement', default: '2' },
    { name: 'train-rounds', help: 'alternating timing rounds of the training steps', default: '3' },
    { name: 'cpu-max-mflop', help: 'largest matmul timed on the CPU reference (MFLOP)', default: '40' },
    { name: 'no-tfjs', help: 'skip the tfjs-backend-webgpu reference (CPU reference instead)', flag: true },
    { name: 'no-cpu', help: 'skip the CPU references', flag: true },
    { name: 'profile', help: 'also time each kernel of our training step alone', flag: true },
  ], 'usage: npm run bench -- [--json FILE] [--only matmul,attention,train] [--min-ms 300] ...');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  const only = args.list('only');
  for (const s of only ?? []) {
    if (!['matmul', 'attention', 'train', 'mas', 'real'].includes(s)) throw new UsageError(`--only: unknown section '${s}'`);
  }
  // 'real' runs only when asked for: one step of a 135M model takes tens of seconds on a CPU adapter
  const want = (s: string) => (only ? only.includes(s) : s !== 'real');
  const list = (name: string) => {
    const v = args.list(name) ?? [];
    return v.length === 1 && v[0] === 'none' ? [] : v;
  };
  const layouts = list('layouts') as MatmulLayout[];
  for (const l of layouts) if (!['nn', 'nt', 'tn'].includes(l)) throw new UsageError(`--layouts: unknown layout '${l}'`);
  const variants = list('variants') as MatmulVariant[];
  for (const v of variants) if (!['tiled', 'direct'].includes(v)) throw new UsageError(`--variants: unknown variant '${v}'`);
  const sizes = list('sizes').map(Number);
  for (const n of sizes) if (!Number.isInteger(n) || n < 1) throw new UsageError(`--sizes: '${n}' is not a positive integer`);
  const mmShapes: MatmulShape[] = [
    ...sizes.flatMap((n) => layouts.map((layout) => ({ layout, M: n, N: n, K: n }))),
    ...list('shapes').map(parseMatmulShape),
  ];
  let attShapes;
  try {
    attShapes = list('attention').map(parseAttentionShape);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const trainSeq = args.int('train-seq', 1, 4096) ?? requiredSeqLen(PRETRAINED_TASK_NAMES, [1, 2, 3, 4, 5]);
  const trainBatch = args.int('train-batch', 1, 4096)!;
  const checkSteps = args.int('check-steps', 1, 1000)!;
  const file = args.str('json');
  if (file) {
    await checkOutputFile(file, {
      force: args.has('force'), option: '--json', what: 'a bench JSON (rows, checks, goals)',
      isOurs: (t) => ((o) => Array.isArray(o?.rows) && Array.isArray(o?.checks) && Array.isArray(o?.goals))(JSON.parse(t)),
    });
  }

  const gpu = await createNodeGpu();
  const r = gpu.report;
  const load = os.loadavg();
  const log = (line: string) => console.log(line);
  const preferred = preferredMatmulVariant(gpu);
  log(`device: ${[r.vendor, r.architecture, r.description].filter(Boolean).join(' / ')}; matmul default variant here: ${preferred}`);
  log(`load average ${load.map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cores; node ${process.version}`);
  const tf = args.has('no-tfjs') ? null : await loadTfjsWebgpu();
  if (tf) {
    const info = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo;
    log(`reference: tfjs ${tf.version_core} webgpu backend on ${[info?.vendor, info?.architecture].filter(Boolean).join(' / ') || 'its adapter'}`);
  }
  const ctx: BenchContext = {
    minMs: args.num('min-ms', 0)!, rounds: args.int('rounds', 1, 100)!, trainRounds: args.int('train-rounds', 1, 100)!, cpu: !args.has('no-cpu'), tf, log,
  };
  const rows: BenchRow[] = [];
  const checks: BenchCheck[] = [];
  const notes: string[] = [];
  if (want('matmul') && mmShapes.length && variants.length) {
    rows.push(...(await benchMatmul(gpu, ctx, mmShapes, variants, args.num('cpu-max-mflop', 0)! * 1e6)));
  }
  if (want('attention') && attShapes.length) {
    log(`attention shapes: ${attShapes.map(attentionShapeName).join('; ')}`);
    rows.push(...(await benchAttention(gpu, ctx, attShapes)));
  }
  if (want('train')) {
    const t = await benchTrain(gpu, ctx, {
      preset: args.str('train-preset')!, B: trainBatch, S: trainSeq, checkSteps, crossSteps: 3, profile: args.has('profile'),
    });
    t.rows.forEach((row) => log(formatRow(row)));
    t.checks.forEach((c) => log(formatCheck(c)));
    rows.push(...t.rows);
    checks.push(...t.checks);
  }
  if (want('mas')) {
    const m = await benchMas(gpu, ctx, { preset: args.str('train-preset')!, batch: trainBatch, latentSteps: args.int('mas-latent', 0, 64)! });
    m.forEach((row) => log(formatRow(row)));
    rows.push(...m);
    notes.push('mas rows have no same-run reference (tfjs has no multi-agent engine): read them against the train row');
  }
  if (want('real')) {
    const t = await benchReal(gpu, ctx, { batch: args.int('real-batch', 1, 256)!, latentSteps: args.int('mas-latent', 0, 64)!, steps: args.int('real-steps', 1, 100)! });
    t.checks.forEach((c) => log(formatCheck(c)));
    rows.push(...t.rows);
    checks.push(...t.checks);
    notes.push('real rows have no same-run reference: tfjs has no multi-agent engine, and no model of this size runs in the float64 reference in a bench');
  }
  const goals = benchGoals(rows, preferred);
  for (const g of goals) log(`goal      ${g.met === null ? '?' : g.met ? 'MET    ' : 'NOT MET'}  ${g.name}: ${g.detail}`);
  const failed = checks.filter((c) => !c.ok);
  if (file) {
    await writeFileAtomic(file, JSON.stringify({
      device: r, date: new Date().toISOString(), argv, loadAverage: load, cpus: os.cpus().length, node: process.version,
      tfjs: tf ? tf.version_core : null, matmulDefaultVariant: preferred, rows, checks, goals, notes,
    }, null, 2));
    log(`wrote ${file}`);
  }
  gpu.dispose();
  return failed.length ? 1 : 0;
}
