// The engine's side of the PyTorch cross-checks (issue 13 item 3; python/tests/test_crosscheck.py):
// runs small cases on the engine (GPU through Dawn) and writes, per case, a run bundle
// (docs/run-bundle.md) and beside it what the engine measured, so that the Python companion can be
// held to it:
//
//   OUT/<case>/bundle/        the run bundle, with every training batch the run used (not only 4)
//   OUT/<case>/engine.json    training losses, gradient norms and learning rates per step; per split
//                             the evaluation row and every episode's answer; the same under each control
//                             (heldout); the final agent's logits on the first episodes of heldout
//
//   node .cache/pycheck/engine-check.mjs make OUT [--model DIR] [--steps N] [--eval-size N] [--cases a,b]
//   node .cache/pycheck/engine-check.mjs eval BUNDLE OUT.json [--splits heldout,ood]
//       the other direction: loads a bundle's trained adapters (e.g. written by `python -m
//       latent_playground train`) into a run and writes its evaluation rows and answers.
//
// Bundled by python/tests/conftest.py with scripts/bundle.mjs; run through scripts/with-vulkan.sh.
// The final agent's logits are those of its pass over the prompt and the teacher-forced answer
// region (the bundle's prompt ids, then targetIds without <eos>, padded with <pad>), B = 1.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createNodeGpu } from '../../src/gpu/node';
import { writeTree } from '../../src/cli/export-run';
import { readBundleFolder } from '../../src/cli/base-ref-node';
import { loadBaseModel, readFolder } from '../../src/cli/files';
import { wilson95 } from '../../src/mas/base-eval';
import { controlsFor, defaultRunConfig, MasEngine, Run } from '../../src/mas/run';
import { runBundleContent } from '../../src/mas/run-data';
import { BIT_WIDTHS, quantizeRows } from '../../src/mas/quantize';
import { Rollout, type RolloutAgent } from '../../src/mas/rollout';
import { presetForTask } from '../../src/mas/topology';
import type { MethodName, RunConfig } from '../../src/mas/run-types';
import { decodeAdapter, loraKey, type LoraTarget } from '../../src/storage/peft';
import { writeRunBundle, type BundleEpisode } from '../../src/storage/run-bundle';
import { SLOT_OFFSET_TENSOR, slotOffsetOfFiles } from '../../src/storage/slot-offset';
import { makeTask, type Split, type TaskName } from '../../src/tasks/tasks';

interface Case {
  name: string;
  task: TaskName;
  method: MethodName;
  /** Task difficulty (default 1). */
  difficulty?: number;
  positions?: 'stream' | 'prefix';
  latentSteps?: number;
  adapter?: 'own' | 'shared';
  /** Tokens of a text message (default 8). */
  textBudget?: number;
  /** The training ablations of issue 22 (RunConfig.quizLoss, curriculumFrom). */
  quizLoss?: boolean;
  curriculumFrom?: number;
  /** config.latentSlotOffset (src/mas/slot-offset.ts): a learned input offset per latent step. */
  latentSlotOffset?: boolean;
  /** config.lrSchedule (src/model/train.ts lrAt). */
  lrSchedule?: 'cosine' | 'constant';
  /** Made only when --cases names it (python/tests/test_quiz.py asks for these on the tiny base). */
  onDemand?: boolean;
}

/** The cases: the three trained methods (the training check), the untrained channels and both position schemes, a chain and a star of three, and the trained baselines (issue 19: one agent, its own LoRA). */
export const CASES: Case[] = [
  { name: 'lookup-diffmas', task: 'lookup', method: 'diffmas' },
  { name: 'lookup-diffmas-detached', task: 'lookup', method: 'diffmas-detached' },
  { name: 'lookup-diffmas-full', task: 'lookup', method: 'diffmas-full' },
  { name: 'lookup-diffmas-prefix', task: 'lookup', method: 'diffmas', positions: 'prefix' },
  // issue 22 item 2: learned latent slot offsets, own adapters and shared (python/tests/test_slot_offset.py: losses and offset gradients)
  { name: 'lookup-diffmas-slot-offset', task: 'lookup', method: 'diffmas', latentSlotOffset: true, onDemand: true },
  { name: 'relay-diffmas-shared-slot-offset', task: 'relay', method: 'diffmas', latentSteps: 2, adapter: 'shared', latentSlotOffset: true, lrSchedule: 'constant', onDemand: true },
  { name: 'relay-diffmas-shared', task: 'relay', method: 'diffmas', latentSteps: 2, adapter: 'shared' },
  { name: 'arith-diffmas-full', task: 'arith', method: 'diffmas-full', latentSteps: 2 },
  { name: 'lookup-latentmas', task: 'lookup', method: 'latentmas' },
  { name: 'lookup-text', task: 'lookup', method: 'text' },
  // 2 tokens carry one table entry of two: a loss far from 0, where float32 gradients are well conditioned
  { name: 'lookup-text-trained', task: 'lookup', method: 'text-trained', textBudget: 2 },
  { name: 'lookup-single', task: 'lookup', method: 'single' },
  { name: 'lookup-single-trained', task: 'lookup', method: 'single-trained' },
  // arith d2, where the toy's skyline answers 0.42 of held-out (lookup: all, a loss of 1e-4 whose gradient is float32 rounding)
  { name: 'arith-skyline-trained', task: 'arith', method: 'skyline-trained', difficulty: 2 },
  // issue 22's training ablations: every key of each table from one message; a curriculum from d1 (and both)
  { name: 'lookup-diffmas-quiz', task: 'lookup', method: 'diffmas', difficulty: 2, quizLoss: true, onDemand: true },
  { name: 'lookup-diffmas-curriculum', task: 'lookup', method: 'diffmas', difficulty: 3, curriculumFrom: 1, onDemand: true },
  { name: 'lookup-diffmas-quiz-curriculum', task: 'lookup', method: 'diffmas', difficulty: 2, quizLoss: true, curriculumFrom: 1, latentSteps: 2, onDemand: true },
];

const SPLIT_NAMES: Split[] = ['train', 'heldout', 'ood'];
const LOGIT_EPISODES = 32;

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** The final agent's teacher-forced logits [S, V] of one bundle episode, B = 1, with the run's adapters. */
async function finalLogits(run: Run, engine: MasEngine, ep: BundleEpisode, maxAnswer: number, pad: number, cache: Map<string, Rollout>): Promise<{ ids: number[]; logits: Float32Array }> {
  const spec = run.spec;
  const plan = run.plan;
  const fi = plan.length - 1;
  const prompts = ep.agents.map((a) => a.ids);
  const key = prompts.map((p) => p.length).join(',');
  let ro = cache.get(key);
  if (!ro) {
    const lora = (i: number) => {
      const pa = plan[i];
      const trains = spec.train === 'all' || (spec.train === 'receiver' && pa.final);
      return trains ? run.adapters.get(pa.agent.adapter === 'shared' ? 'shared' : pa.agent.id) ?? null : null;
    };
    const offset = (i: number) => (plan[i].m > 0 && !plan[i].final ? run.slotOffsets.get(plan[i].agent.adapter === 'shared' ? 'shared' : plan[i].agent.id) ?? null : null);
    const agents: RolloutAgent[] = plan.map((pa, i) => ({ id: pa.agent.id, preds: pa.preds, n: prompts[i].length + (pa.final ? maxAnswer : 0), m: pa.m, lora: lora(i), backward: false, slotOffset: offset(i) }));
    ro = new Rollout(engine.model, {
      B: 1, agents, trace: spec.channel === 'latent' ? spec.trace! : 'none', map: spec.channel === 'latent' ? engine.latentMap(run.config.latentMap) : null,
      positions: run.config.positions ?? 'stream', label: `engine-check ${key}`,
    });
    cache.set(key, ro);
  }
  for (let a = 0; a < fi; a++) ro.setIds(a, prompts[a]);
  const ids = [...prompts[fi], ...ep.targetIds.slice(0, -1)];
  while (ids.length < prompts[fi].length + maxAnswer) ids.push(pad);
  ro.setIds(fi, ids);
  ro.setTargets(ids.map(() => 0xffffffff));
  ro.recordForward();
  return { ids, logits: await engine.gpu.read(ro.final.prompt.logits) };
}

/** Writes PEFT-keyed adapters (the bundle's files of each adapter key) into a run's LoRA modules. */
function loadAdapters(run: Run, files: Record<string, Map<string, Uint8Array>>, baseConfig: Parameters<typeof decodeAdapter>[1]): void {
  for (const [key, lora] of run.adapters) {
    if (!files[key]) throw new Error(`no adapter ${key}`);
    const ad = decodeAdapter(files[key], baseConfig);
    const weights = new Map<string, { A: Float32Array; B: Float32Array }>();
    for (const m of lora.modules.values()) {
      const A = ad.tensors.get(loraKey(m.layer, m.proj as LoraTarget, 'A'));
      const B = ad.tensors.get(loraKey(m.layer, m.proj as LoraTarget, 'B'));
      if (!A || !B) throw new Error(`adapter ${key} has no ${m.name}`);
      weights.set(m.name, { A, B });
    }
    lora.load(weights);
    const offset = run.slotOffsets.get(key);
    if (offset) offset.load(slotOffsetOfFiles(files[key], baseConfig.hidden_size) ?? failNoOffset(key), `adapter ${key}`);
  }
}

function failNoOffset(key: string): never {
  throw new Error(`adapter ${key} has no latent slot offsets`);
}

/**
 * The gradient of the first batch's loss at the trained adapters (A and B both non-zero, so every
 * path of the backward carries signal; at step 0 B = 0 and every dA is 0): a fresh run with the
 * trained weights takes one step; its gradient buffers then hold the raw gradient of the mean loss
 * (the clip scale is applied inside AdamW). Per adapter key, per PEFT key, float32 base64.
 */
async function gradientsAt(engine: MasEngine, config: RunConfig, adapters: Record<string, Map<string, Uint8Array>>): Promise<{ loss: number; gradNorm: number; grads: Record<string, Record<string, string>> }> {
  const probe = new Run(engine, config);
  try {
    loadAdapters(probe, adapters, engine.base.config);
    const st = await probe.trainStep();
    const grads: Record<string, Record<string, string>> = {};
    for (const [key, lora] of probe.adapters) {
      grads[key] = {};
      for (const m of lora.modules.values()) {
        grads[key][loraKey(m.layer, m.proj as LoraTarget, 'A')] = b64(await engine.gpu.read(m.dA));
        grads[key][loraKey(m.layer, m.proj as LoraTarget, 'B')] = b64(await engine.gpu.read(m.dB));
      }
      // the slot offsets' gradient [slots, D] under the tensor name of their file
      const offset = probe.slotOffsets.get(key);
      if (offset) {
        const D = offset.D;
        const g = new Float32Array(offset.slots * D);
        for (let k = 0; k < offset.slots; k++) g.set(await engine.gpu.read(offset.d[k]), k * D);
        grads[key][SLOT_OFFSET_TENSOR] = b64(g);
      }
    }
    return { loss: st.loss, gradNorm: st.gradNorm, grads };
  } finally {
    probe.destroy();
  }
}

async function evaluateAll(run: Run, splits: Split[], controls: boolean) {
  const evaluation: Record<string, unknown> = {};
  const rows = [];
  for (const split of splits) {
    const o = await run.evaluate(split);
    const { predictions, correct: _c, ...row } = o;
    evaluation[split] = { ...row, predictions };
    rows.push({ ...row, ci95: wilson95(Math.round(row.accuracy * row.episodes), row.episodes) });
  }
  const ctl: Record<string, unknown> = {};
  if (controls) {
    for (const c of controlsFor(run.spec.channel)) {
      const o = await run.evaluate('heldout', c);
      ctl[c] = { accuracy: o.accuracy, validity: o.validity, entropy: o.entropy, loss: o.loss, predictions: o.predictions };
    }
  }
  // heldout with the received K/V quantised to each width (issue 19 item 7: src/mas/quantize.ts)
  const bits: Record<string, unknown> = {};
  if (controls && run.spec.channel === 'latent') {
    const { hd, kvDim } = run.engine.model.dims;
    const B = run.config.batch;
    for (const k of BIT_WIDTHS) {
      const o = await run.evaluate('heldout', 'none', { edit: () => (_a, _l, _kind, values, P) => quantizeRows(values, B * P, kvDim, hd, k) });
      bits[k] = { accuracy: o.accuracy, validity: o.validity, entropy: o.entropy, loss: o.loss, predictions: o.predictions };
    }
  }
  return { evaluation, rows, controls: ctl, bits };
}

async function make(out: string, argv: string[]): Promise<void> {
  const modelDir = flag(argv, 'model') ?? 'public/models/toy';
  const steps = Number(flag(argv, 'steps') ?? 20);
  const evalSize = Number(flag(argv, 'eval-size') ?? 64);
  const batch = Number(flag(argv, 'batch') ?? 8);
  const only = flag(argv, 'cases')?.split(',');
  const cases = only ? CASES.filter((c) => only.includes(c.name)) : CASES.filter((c) => !c.onDemand);
  if (only && cases.length !== only.length) throw new Error(`unknown case in --cases ${only.join(',')} (have: ${CASES.map((c) => c.name).join(', ')})`);
  const gpu = await createNodeGpu();
  const base = await loadBaseModel(modelDir);
  const baseFiles = await readFolder(modelDir);
  const engine = new MasEngine(gpu, base);
  try {
    for (const c of cases) {
      const t0 = performance.now();
      const task = makeTask(c.task, c.difficulty ?? 1);
      const topology = presetForTask(task, { latentSteps: c.latentSteps ?? 3, adapter: c.adapter ?? 'own' });
      const config: RunConfig = defaultRunConfig({
        topology, task: c.task, difficulty: c.difficulty ?? 1, method: c.method, modelId: modelDir, steps, batch, evalSize, seed: 7,
        lora: { r: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }, lr: 5e-3, evalEvery: 0,
        ...(c.positions ? { positions: c.positions } : {}),
        ...(c.textBudget ? { textBudget: c.textBudget } : {}),
        ...(c.quizLoss ? { quizLoss: true } : {}),
        ...(c.curriculumFrom ? { curriculumFrom: c.curriculumFrom } : {}),
        ...(c.latentSlotOffset ? { latentSlotOffset: true } : {}),
        ...(c.lrSchedule ? { lrSchedule: c.lrSchedule } : {}),
      });
      const run = new Run(engine, config);
      const cache = new Map<string, Rollout>();
      try {
        const initial = run.trains ? await run.exportAdapters() : [];
        const train: { loss: number; gradNorm: number; lr: number }[] = [];
        if (run.trains) for (let s = 0; s < steps; s++) {
          const r = await run.trainStep();
          train.push({ loss: r.loss, gradNorm: r.gradNorm, lr: r.lr });
        }
        const adapters = run.trains ? await run.exportAdapters() : [];
        const ev = await evaluateAll(run, SPLIT_NAMES, true);
        const content = runBundleContent({
          config, base, baseFiles, adapters, initialAdapters: initial, createdBy: 'engine-check', stepsDone: run.step, losses: run.losses.slice(),
          evaluation: ev.rows, heldout: [], controls: Object.entries(ev.controls).map(([control, v]) => ({ control, accuracy: (v as { accuracy: number }).accuracy })),
          wallSeconds: null, batches: run.trains ? steps : undefined,
        });
        const gradients = run.trains ? await gradientsAt(engine, config, content.adapters) : null;
        const logits = [];
        if (run.spec.channel !== 'text') {
          for (const ep of content.episodes.heldout!.slice(0, LOGIT_EPISODES)) {
            const r = await finalLogits(run, engine, ep, content.meta.maxAnswerTokens, content.meta.tokens.pad, cache);
            logits.push({ index: ep.index, ids: r.ids, values: b64(r.logits) });
          }
        }
        const dir = path.join(out, c.name);
        await mkdir(dir, { recursive: true });
        await writeTree(path.join(dir, 'bundle'), writeRunBundle(content));
        const engineJson = {
          case: c, method: c.method, train, evaluation: ev.evaluation, controls: ev.controls, bits: ev.bits,
          logits: { split: 'heldout', V: base.config.vocab_size, episodes: logits }, gradients,
          seconds: (performance.now() - t0) / 1000,
        };
        await writeFile(path.join(dir, 'engine.json'), JSON.stringify(engineJson) + '\n');
        console.log(`${c.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s${train.length ? `, loss ${train[0].loss.toFixed(5)} -> ${train[train.length - 1].loss.toFixed(5)}` : ''}, heldout accuracy ${(ev.evaluation.heldout as { accuracy: number }).accuracy.toFixed(3)}`);
      } finally {
        for (const ro of cache.values()) ro.destroy();
        run.destroy();
      }
    }
  } finally {
    engine.destroy();
    gpu.dispose();
  }
}

async function evalBundle(bundleDir: string, out: string, argv: string[]): Promise<void> {
  // a bundle that references its base (files.baseRef) is resolved and its digest checked here too
  const { bundle: b, baseDir } = await readBundleFolder(bundleDir);
  const splits = (flag(argv, 'splits') ?? 'heldout').split(',') as Split[];
  const gpu = await createNodeGpu();
  const base = await loadBaseModel(baseDir);
  const engine = new MasEngine(gpu, base);
  const run = new Run(engine, b.json.config);
  try {
    loadAdapters(run, b.adapters, base.config);
    const ev = await evaluateAll(run, splits, false);
    await writeFile(out, JSON.stringify({ evaluation: ev.evaluation }) + '\n');
  } finally {
    run.destroy();
    engine.destroy();
    gpu.dispose();
  }
}

const [cmd, a, b2, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'make' && a) await make(a, [b2, ...rest].filter((x) => x !== undefined));
  else if (cmd === 'eval' && a && b2) await evalBundle(a, b2, rest);
  else {
    console.error('usage: engine-check.mjs make OUT [--model DIR] [--steps N] [--eval-size N] [--batch N] [--cases a,b] | eval BUNDLE OUT.json [--splits heldout,ood]');
    process.exit(2);
  }
  process.exit(0);
} catch (e) {
  console.error((e as Error).stack ?? String(e));
  process.exit(1);
}
