// Bench section 'train': one full training step (Trainer.step: zero grads, forward, backward, clip,
// AdamW, one readback) of a preset model, beside the same model and step in tfjs (bench-tfjs-llama.ts)
// and the float64 CPU reference; plus the checks that a step compiles no pipeline and creates no
// buffer, and that its peak GPU memory stays within 3x (parameters + Adam state + activations).
import type { Dispatch, Gpu } from '../gpu/runtime';
import { countParams, modelDims, presetConfig, type ModelConfig } from '../model/config';
import { initWeights, LlamaGpu, ModelPass } from '../model/model';
import { baseTrainParams, DEFAULT_HYPER, lrAt, Optimizer, Trainer, type MicroBatch, type TrainHyper } from '../model/train';
import { refLossAndGrads } from '../reference/model';
import { adamWRef, clipScaleRef } from '../reference/optimizer';
import { ADAMW_DEFAULTS } from '../gpu/ops/optimizer';
import { defaultTokenizer } from '../tokenizers/char';
import { makeRow, timeCandidateStats, timeOnce, type BenchCheck, type BenchContext, type BenchRow } from './bench-util';
import { TfLlama } from './bench-tfjs-llama';

export interface TrainBenchOptions {
  preset: string;
  B: number;
  S: number;
  /** Steps whose pipeline/buffer counts are compared (after the first). */
  checkSteps: number;
  /** Steps over which ours and tfjs's losses are compared from the same weights and batches. */
  crossSteps: number;
  /** Also print where our step's time goes, per kernel. */
  profile?: boolean;
}

const IGNORE = 0xffffffff;
const MiB = 1024 * 1024;

/** Seeded batches of random tokens: ids in [3, V) (past pad/bos/eos), targets = the next id, the last
 * row position ignored (as padding is). Step cost does not depend on the data. */
export function randomBatches(count: number, B: number, S: number, V: number, seed: number): MicroBatch[] {
  let s = seed >>> 0;
  const next = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const out: MicroBatch[] = [];
  for (let c = 0; c < count; c++) {
    const seq = new Uint32Array(B * (S + 1));
    for (let i = 0; i < seq.length; i++) seq[i] = 3 + Math.floor(next() * (V - 3));
    const ids = new Uint32Array(B * S);
    const targets = new Uint32Array(B * S);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < S; t++) {
        ids[b * S + t] = seq[b * (S + 1) + t];
        targets[b * S + t] = t === S - 1 ? IGNORE : seq[b * (S + 1) + t + 1];
      }
    }
    out.push({ ids, targets });
  }
  return out;
}

/** Bytes of what the forward saves for the backward (ModelPass's activations), by our definition:
 * per layer n1, rrms1, q, k, v, q rotated, k rotated, attention out, lse, x1, n2, rrms2, gate, up,
 * h and the layer output; plus the embedded input x0, the final rrms, the last hidden state, logits. */
export function activationBytes(c: ModelConfig, B: number, S: number): number {
  const { D, I, L, Hq, qDim, kvDim, V } = modelDims(c);
  const T = B * S;
  const perLayer = T * (D + 1 + qDim + 2 * kvDim + qDim + kvDim + qDim) + B * Hq * S + T * (D + D + 1 + 3 * I + D);
  return 4 * (L * perLayer + T * D + T + T * D + T * V);
}

/** One AdamW step of the float64 CPU reference (forward, backward, clip, AdamW): the CPU baseline. */
function cpuTrainStep(
  config: ModelConfig, params: Map<string, Float64Array>, state: Map<string, { m: Float64Array; v: Float64Array }>,
  mb: MicroBatch, B: number, S: number, hyper: TrainHyper, step: number,
): number {
  const { loss, grads } = refLossAndGrads(config, params, { ids: mb.ids! }, { B, S, targets: mb.targets });
  const gs = [...grads.params.values()];
  const { scale } = clipScaleRef(gs, hyper.clip);
  for (const [name, p] of params) {
    const st = state.get(name)!;
    const r = adamWRef(p, grads.params.get(name)!, st.m, st.v, {
      lr: lrAt(step, hyper), beta1: ADAMW_DEFAULTS.beta1, beta2: ADAMW_DEFAULTS.beta2, eps: ADAMW_DEFAULTS.eps,
      weightDecay: name.endsWith('norm.weight') ? 0 : hyper.weightDecay, gradScale: 1,
    }, step, scale);
    params.set(name, r.param);
    st.m = r.m;
    st.v = r.v;
  }
  return loss;
}

/** Times every dispatch of one training step alone (recorded `reps` times, then synced) and prints
 * the time per kernel name, largest first: where a step's time goes on this adapter. */
async function profileStep(gpu: Gpu, ctx: BenchContext, pass: ModelPass, optimizer: Optimizer, reps = 2): Promise<void> {
  // the cross-entropy and optimizer dispatches are private to ModelPass / Optimizer: read them here only
  const priv = (x: object, k: string) => ((x as unknown as Record<string, unknown>)[k] ?? []) as Dispatch[];
  const adam = (priv(optimizer, 'adam') as unknown as { d: Dispatch }[]).map((a) => a.d);
  const all = [
    ...pass.forwardDispatches, ...priv(pass, 'ceDispatches'), ...pass.backwardDispatches,
    ...priv(optimizer, 'zeroGrads'), ...priv(optimizer, 'gradNorm'), ...adam,
  ];
  const byName = new Map<string, { ms: number; n: number }>();
  let total = 0;
  for (const d of all) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) gpu.record(d);
    await gpu.sync();
    const ms = (performance.now() - t0) / reps;
    total += ms;
    const e = byName.get(d.name) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    byName.set(d.name, e);
  }
  ctx.log(`profile   ${all.length} dispatches, sum of each timed alone ${total.toFixed(0)} ms (includes one sync per dispatch)`);
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14)) {
    ctx.log(`profile     ${name.padEnd(34)} ${e.ms.toFixed(1).padStart(9)} ms  ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  x${e.n}`);
  }
}

export async function benchTrain(gpu: Gpu, ctx: BenchContext, o: TrainBenchOptions): Promise<{ rows: BenchRow[]; checks: BenchCheck[] }> {
  const tf = ctx.tf;
  const V = defaultTokenizer().vocabSize;
  const config = presetConfig(o.preset, V);
  const { B, S } = o;
  const T = B * S;
  const nParams = countParams(config);
  const hyper: TrainHyper = { ...DEFAULT_HYPER, totalSteps: 100000 };
  const name = `${o.preset} B${B} S${S} V${V} step`;
  ctx.log(`train     ${o.preset}: ${nParams.toLocaleString('en-US')} parameters, batch ${B} x ${S} = ${T} tokens, ` +
    `AdamW lr ${hyper.lr} (warmup ${hyper.warmupSteps}), clip ${hyper.clip}; random tokens`);
  const weights = initWeights(config, 1);
  const batches = randomBatches(8, B, S, V, 7);
  let bi = 0;
  const nextBatch = () => batches[bi++ % batches.length];

  // ---- ours: everything a training run allocates, from nothing
  await gpu.sync();
  const base = gpu.memory().current;
  gpu.resetPeakMemory();
  const model = new LlamaGpu(gpu, config, weights);
  const trainParams = baseTrainParams(model); // allocates the gradients
  const pass = new ModelPass(model, { B, S, P: 0, input: 'ids' }, { backward: true, baseGrads: true, label: 'bench' });
  const optimizer = new Optimizer(gpu, trainParams, hyper);
  const trainer = new Trainer(pass, optimizer);
  const checks: BenchCheck[] = [];
  let tfm: TfLlama | null = null;
  try {
    // first steps: same weights and batches in ours and tfjs, losses compared
    const cross: { ours: number[]; tfjs: number[] } = { ours: [], tfjs: [] };
    for (let i = 0; i < o.crossSteps; i++) cross.ours.push((await trainer.step(() => batches[i % batches.length])).loss);
    if (tf) {
      tfm = new TfLlama(tf, config, weights, B, S, hyper);
      for (let i = 0; i < o.crossSteps; i++) {
        const mb = batches[i % batches.length];
        cross.tfjs.push((await tfm.trainStep(mb.ids!, mb.targets)).loss);
      }
      const maxDiff = Math.max(...cross.ours.map((l, i) => Math.abs(l - cross.tfjs[i])));
      checks.push({
        section: 'train', name: 'same model in tfjs', ok: maxDiff < 1e-3 * Math.max(1, Math.abs(cross.ours[0])),
        values: { steps: o.crossSteps, oursLosses: cross.ours.map((l) => l.toFixed(5)).join('/'), tfjsLosses: cross.tfjs.map((l) => l.toFixed(5)).join('/'), maxAbsDiff: maxDiff },
        detail: `losses of the first ${o.crossSteps} steps from the same weights and batches agree`,
      });
    }

    // no per-step pipeline compilation or buffer creation (the first step is done above)
    const p0 = gpu.pipelinesCompiled;
    const b0 = gpu.buffersCreated;
    for (let i = 0; i < o.checkSteps; i++) await trainer.step(nextBatch);
    const dp = gpu.pipelinesCompiled - p0;
    const db = gpu.buffersCreated - b0;
    checks.push({
      section: 'train', name: 'no per-step compile', ok: dp === 0,
      values: { steps: o.checkSteps, pipelinesBefore: p0, pipelinesAfter: gpu.pipelinesCompiled },
      detail: `${dp} pipelines compiled during ${o.checkSteps} steps after the first`,
    });
    checks.push({
      section: 'train', name: 'no per-step allocation', ok: db === 0,
      values: { steps: o.checkSteps, buffersBefore: b0, buffersAfter: gpu.buffersCreated },
      detail: `${db} GPU buffers created during ${o.checkSteps} steps after the first`,
    });

    // peak memory of everything training needs vs 3x (parameters + Adam state + activations)
    const peak = gpu.memory().peak - base;
    const current = gpu.memory().current - base;
    const paramB = nParams * 4;
    const adamB = 2 * nParams * 4;
    const actB = activationBytes(config, B, S);
    const budget = 3 * (paramB + adamB + actB);
    checks.push({
      section: 'train', name: 'peak memory <= 3x', ok: peak <= budget,
      values: {
        peakMiB: peak / MiB, liveMiB: current / MiB, paramsMiB: paramB / MiB, adamMiB: adamB / MiB, activationsMiB: actB / MiB,
        budgetMiB: budget / MiB, peakOverSum: peak / (paramB + adamB + actB),
      },
      detail: `peak ${(peak / MiB).toFixed(2)} MiB vs 3 x (params ${(paramB / MiB).toFixed(2)} + Adam m,v ${(adamB / MiB).toFixed(2)} + activations ${(actB / MiB).toFixed(2)}) = ${(budget / MiB).toFixed(2)} MiB`,
    });

    if (o.profile) await profileStep(gpu, ctx, pass, optimizer);

    // timing: ours and tfjs alternating
    const fns: Record<string, () => Promise<void>> = { ours: async () => void (await trainer.step(nextBatch)) };
    if (tfm) {
      const t = tfm;
      fns.tfjs = async () => {
        const mb = nextBatch();
        await t.trainStep(mb.ids!, mb.targets);
      };
    }
    const st = await timeCandidateStats(fns, ctx.minMs * 3, ctx.trainRounds);
    const ms = { ours: st.ours.median, tfjs: st.tfjs?.median ?? NaN };
    const tps = (m: number) => (T / m) * 1000;
    const extra: Record<string, number | string> = { oursMs: ms.ours, oursMsBest: st.ours.best, samples: st.ours.samples };
    if (tfm) {
      extra.tfjsMs = ms.tfjs;
      extra.tfjsMsBest = st.tfjs.best;
      extra.ratioBest = st.tfjs.best / st.ours.best;
    }
    let reference: number | null = tfm ? tps(ms.tfjs) : null;
    let refName = 'tfjs-backend-webgpu';
    if (ctx.cpu) {
      const params = new Map<string, Float64Array>([...weights].map(([k, v]) => [k, Float64Array.from(v)]));
      const state = new Map([...params].map(([k, v]) => [k, { m: new Float64Array(v.length), v: new Float64Array(v.length) }]));
      const cms = await timeOnce(() => cpuTrainStep(config, params, state, batches[0], B, S, hyper, 1));
      extra.cpuTokensPerS = tps(cms);
      if (!tfm) {
        reference = tps(cms);
        refName = 'CPU reference (f64)';
      }
    }
    const row = makeRow('train', name, 'tokens/s', tps(ms.ours), reference, refName, extra);
    return { rows: [row], checks };
  } finally {
    tfm?.dispose();
    trainer.destroy();
    optimizer.destroy();
    pass.destroy();
    model.destroy();
  }
}
