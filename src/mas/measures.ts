// Measurements of a latent run's messages after evaluation:
//   probeRun  what the message holds: the received K/V of every latent position, layer, K and V of
//             train-split episodes (PROBE_TRAIN_EPISODES, drawn from (run seed, 'probe-train')) and of
//             the held-out evaluation set, read through the prefix hook (Run.forwardReceived); one
//             ridge probe per target on each (probe.ts), fitted on train, scored on held-out.
//   bitsRun   bits measured, not defined: held-out accuracy with every received K/V quantised to each
//             k of BIT_WIDTHS (quantize.ts) and the smallest k within one point of the unquantised run.
// Both read the run's current adapters; neither trains.
import { deriveSeed } from '../tasks/rng';
import { sampleEpisodes } from '../tasks/tasks';
import type { BitsReport, ProbeReport } from './measure-types';
import type { ExperimentReport, MethodName } from './run-types';
import { encodeLabels, fitProbe, LAMBDAS, majorityChance, probeTargets, targetValue } from './probe';
import { BIT_WIDTHS, BITS_TOLERANCE, positionBits, quantizeRows, smallestKeepingBits } from './quantize';
import { latentBlocks } from './received';
import type { Run } from './run';

/** Training episodes the probes are fitted on (train split). */
export const PROBE_TRAIN_EPISODES = 512;

/** Runs' latent channel only: what the probes and the bits sweep need. */
function checkLatent(run: Run, what: string): void {
  if (run.spec.channel !== 'latent') throw new Error(`${what}: method ${run.method} sends no K/V (only latent methods have a received prefix to measure)`);
}

/** Linear probes of every latent position, layer, K and V of every receiver, to every target (probe.ts). */
export async function probeRun(run: Run, opts: { trainEpisodes?: number; onProgress?: (fraction: number) => void } = {}): Promise<ProbeReport> {
  checkLatent(run, 'probe');
  const nTrain = opts.trainEpisodes ?? PROBE_TRAIN_EPISODES;
  if (!Number.isInteger(nTrain) || nTrain < 10) throw new Error(`probe: at least 10 training episodes are needed, got ${nTrain}`);
  const train = sampleEpisodes(run.task, 'train', nTrain, deriveSeed(run.config.seed, 'probe-train'));
  const heldout = run.evalSet('heldout');
  const eps = [...train, ...heldout];
  const N = eps.length;
  const { L, kvDim: W } = run.engine.model.dims;
  const plan = run.plan;
  // features per (receiver, sender, latent slot, layer, kind): [N, W], rows in eps' order
  const features = new Map<string, Float32Array>();
  const edges = new Map<string, { receiver: number; sender: number; positions: number }>();
  const unit = (a: number, p: number, j: number, l: number, kind: string) => `${a}|${p}|${j}|${l}|${kind}`;
  let done = 0;
  await run.forwardReceived(eps, (ro, rows, real) => (agent, layer, kind, values, P) => {
    for (const blk of latentBlocks(ro, agent)) {
      const ek = `${agent}|${blk.pred}`;
      const known = edges.get(ek);
      if (known && known.positions !== blk.m) throw new Error(`probe: sender ${plan[blk.pred].agent.id} has ${blk.m} latent positions in one batch and ${known.positions} in another`);
      if (!known) edges.set(ek, { receiver: agent, sender: blk.pred, positions: blk.m });
      for (let j = 0; j < blk.m; j++) {
        const key = unit(agent, blk.pred, j, layer, kind);
        let f = features.get(key);
        if (!f) features.set(key, (f = new Float32Array(N * W)));
        for (let b = 0; b < real; b++) f.set(values.subarray((b * P + blk.offset + j) * W, (b * P + blk.offset + j + 1) * W), rows[b] * W);
      }
    }
    if (agent === plan.length - 1 && layer === L - 1 && kind === 'v') opts.onProgress?.(Math.min(0.5, (0.5 * (done += real)) / N));
  });
  const targets = probeTargets(run.task, eps);
  const enc = targets.map((t) => encodeLabels(eps.map((ep) => targetValue(t, ep)), nTrain));
  const labels = enc.map((e) => e.labels);
  const classes = enc.map((e) => e.classes);
  const report: ProbeReport = {
    method: run.method, seed: run.config.seed, trainEpisodes: nTrain, heldoutEpisodes: heldout.length, lambdas: [...LAMBDAS],
    targets: targets.map((t, i) => ({ name: t.name, classes: classes[i], chance: majorityChance(labels[i], nTrain), uniform: 1 / classes[i] })),
    layers: L,
    edges: [...edges.values()].map((e) => ({ receiver: plan[e.receiver].agent.id, sender: plan[e.sender].agent.id, positions: e.positions })),
    cells: [],
  };
  const all = [...edges.values()];
  let fitted = 0;
  const total = all.reduce((s, e) => s + e.positions, 0) * L * 2;
  for (const e of all) {
    for (let j = 0; j < e.positions; j++) {
      for (let l = 0; l < L; l++) {
        for (const kind of ['k', 'v'] as const) {
          const fit = fitProbe(features.get(unit(e.receiver, e.sender, j, l, kind))!, W, nTrain, labels, classes);
          report.cells.push({ receiver: plan[e.receiver].agent.id, sender: plan[e.sender].agent.id, position: j + 1, layer: l, kind, accuracy: fit.accuracy, lambda: fit.lambda });
          opts.onProgress?.(0.5 + (0.5 * ++fitted) / total);
        }
      }
    }
  }
  return report;
}

/**
 * Held-out accuracy with every received K/V quantised to each k of `widths`, and the smallest k that
 * keeps it within BITS_TOLERANCE of `unquantized` (the run's own held-out accuracy: evaluated here when
 * not given).
 */
export async function bitsRun(run: Run, opts: { unquantized?: number; widths?: readonly number[]; onProgress?: (fraction: number) => void } = {}): Promise<BitsReport> {
  checkLatent(run, 'bits');
  const widths = opts.widths ?? BIT_WIDTHS;
  const { L, Hkv, hd, kvDim: W, V } = run.engine.model.dims;
  const B = run.config.batch;
  const unquantized = opts.unquantized ?? (await run.evaluate('heldout')).accuracy;
  const levels: BitsReport['levels'] = [];
  for (const [i, k] of widths.entries()) {
    const o = await run.evaluate('heldout', 'none', { edit: () => (_agent, _layer, _kind, values, P) => quantizeRows(values, B * P, W, hd, k) });
    const pb = positionBits(k, { L, Hkv, hd });
    levels.push({ bits: k, accuracy: o.accuracy, bitsPerPosition: pb.bits, scaleBitsPerPosition: pb.scaleBits });
    opts.onProgress?.((i + 1) / widths.length);
  }
  const smallest = smallestKeepingBits(unquantized, levels);
  const floats = positionBits(1, { L, Hkv, hd }).floats;
  return {
    method: run.method, seed: run.config.seed, split: 'heldout', episodes: run.evalSet('heldout').length, unquantized, levels,
    floatsPerPosition: floats, textBitsPerToken: Math.log2(V), tolerance: BITS_TOLERANCE,
    smallest, bitsPerPosition: smallest === null ? null : smallest * floats,
  };
}

/** What runExperiment measures after a latent run's evaluation (the CLI's --probe and --bits). */
export interface MeasureOptions {
  probe?: boolean | { trainEpisodes?: number };
  bits?: boolean;
}

/** Whether a previous report already holds the measurements asked of a (method, seed) pair. */
export function hasMeasures(report: Pick<ExperimentReport, 'probes' | 'bits'>, method: MethodName, seed: number, opts: MeasureOptions): boolean {
  const of = (x: { method: string; seed: number }) => x.method === method && x.seed === seed;
  return (!opts.probe || !!report.probes?.some(of)) && (!opts.bits || !!report.bits?.some(of));
}

/** Runs the probes and the bits sweep asked for on a latent run, into the report (the unquantised accuracy: its heldout row when there). */
export async function measureInto(run: Run, report: ExperimentReport, opts: MeasureOptions, say: (message: string) => void): Promise<void> {
  if (run.spec.channel !== 'latent') return;
  const tag = `seed ${run.config.seed} ${run.method}`;
  if (opts.probe) {
    say(`${tag}: probing the received K/V`);
    (report.probes ??= []).push(await probeRun(run, typeof opts.probe === 'object' ? opts.probe : {}));
  }
  if (opts.bits) {
    say(`${tag}: quantising the received K/V to ${BIT_WIDTHS.join(', ')} bits`);
    const row = report.rows.find((r) => r.method === run.method && r.seed === run.config.seed && r.split === 'heldout');
    (report.bits ??= []).push(await bitsRun(run, { unquantized: row?.accuracy }));
  }
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

/** Per probe report and target: the best held-out accuracy over positions, layers, K and V, where, and its chance. */
export function formatProbes(probes: readonly ProbeReport[]): string {
  if (!probes.length) return '(no probes: no latent method, or --probe not given)';
  const lines = ['| method | seed | target | best probe | at (edge, position, layer, K/V) | chance (majority) | 1/classes |', '|---|---:|---|---:|---|---:|---:|'];
  for (const p of probes) {
    p.targets.forEach((t, i) => {
      let best = p.cells[0];
      for (const c of p.cells) if (c.accuracy[i] > best.accuracy[i]) best = c;
      const at = best ? `${best.sender}->${best.receiver} z${best.position} l${best.layer} ${best.kind.toUpperCase()}` : 'n/a';
      lines.push(`| ${p.method} | ${p.seed} | ${t.name} | ${f3(best?.accuracy[i] ?? NaN)} | ${at} | ${f3(t.chance)} | ${f3(t.uniform)} |`);
    });
  }
  return lines.join('\n');
}

/** Per bits report: accuracy at each width, the smallest within a point, and bits per latent position beside bits per text token. */
export function formatBits(bits: readonly BitsReport[]): string {
  if (!bits.length) return '(no bits sweep: no latent method, or --bits not given)';
  const widths = [...new Set(bits.flatMap((b) => b.levels.map((l) => l.bits)))].sort((a, b) => b - a);
  const lines = [
    `| method | seed | float32 | ${widths.map((k) => `${k} bit`).join(' | ')} | smallest k | bits / latent position | log2 V bits / text token |`,
    `|---|---:|---:|${widths.map(() => '---:|').join('')}---:|---:|---:|`,
  ];
  for (const b of bits) {
    const cells = widths.map((k) => f3(b.levels.find((l) => l.bits === k)?.accuracy ?? NaN));
    lines.push(`| ${b.method} | ${b.seed} | ${f3(b.unquantized)} | ${cells.join(' | ')} | ${b.smallest ?? 'none'} | ${b.bitsPerPosition ?? 'n/a'} | ${b.textBitsPerToken.toFixed(2)} |`);
  }
  return lines.join('\n');
}
