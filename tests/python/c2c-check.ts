// The engine's side of the Cache-to-Cache cross-check (python/tests/test_c2c.py): per case, a c2c run
// trained on the engine, written as a run bundle with its fuser (c2c_fuser.safetensors) and every
// training batch, and beside it what the engine measured:
//
//   OUT/<case>/bundle/        the run bundle (docs/run-bundle.md)
//   OUT/<case>/engine.json    training loss, gradient norm and lr per step; per split the evaluation
//                             row and every answer; the same under each control (heldout); the
//                             gradient of the first batch's loss at the trained fuser, per tensor
//
//   node .cache/pycheck/c2c-check.mjs make OUT [--model DIR] [--steps N] [--eval-size N] [--batch N]
//   node .cache/pycheck/c2c-check.mjs eval BUNDLE OUT.json
//       the other direction: a c2c bundle's fuser (e.g. written by `python -m latent_playground train`)
//       loaded into an engine run, whose heldout answers and loss go to OUT.json.
//
// Bundled by python/tests/test_c2c.py with scripts/bundle.mjs; run through scripts/with-vulkan.sh.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createNodeGpu } from '../../src/gpu/node';
import { writeTree } from '../../src/cli/export-run';
import { loadBaseModel, readFolder } from '../../src/cli/files';
import { readBundleFolder } from '../../src/cli/base-ref-node';
import { decodeFuserFile } from '../../src/storage/c2c-fuser';
import { wilson95 } from '../../src/mas/base-eval';
import { controlsFor, defaultRunConfig, MasEngine, Run } from '../../src/mas/run';
import { runBundleContent } from '../../src/mas/run-data';
import { presetForTask } from '../../src/mas/topology';
import type { FuserWeights } from '../../src/mas/c2c-fuser';
import type { RunConfig } from '../../src/mas/run-types';
import { writeRunBundle } from '../../src/storage/run-bundle';
import { makeTask, type TaskName } from '../../src/tasks/tasks';

/** lookup: one sender, the receiver reads its full trace; relay: a chain, whose middle agent reads a fused prefix and sends on (the gradient goes through it). */
const CASES: { name: string; task: TaskName; difficulty: number; latentSteps: number }[] = [
  { name: 'lookup-c2c', task: 'lookup', difficulty: 3, latentSteps: 3 },
  { name: 'relay-c2c', task: 'relay', difficulty: 1, latentSteps: 2 },
];

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** The gradient of the first batch's mean loss at `fuser`: a fresh run with it takes one step; the gradient buffers then hold the raw gradient (AdamW applies the clip scale). */
async function gradientsAt(engine: MasEngine, config: RunConfig, fuser: FuserWeights) {
  const probe = new Run(engine, config);
  try {
    probe.loadFuser(fuser);
    const st = await probe.trainStep();
    const f = probe.fuser!;
    const grads: Record<string, string> = {};
    for (let l = 0; l < f.L; l++) {
      grads[`layers.${l}.k.A`] = b64(await engine.gpu.read(f.dA[l][0]));
      grads[`layers.${l}.v.A`] = b64(await engine.gpu.read(f.dA[l][1]));
    }
    grads.gate = b64(await engine.gpu.read(f.dgate));
    return { loss: st.loss, gradNorm: st.gradNorm, grads };
  } finally {
    probe.destroy();
  }
}

async function make(out: string, argv: string[]): Promise<void> {
  const modelDir = flag(argv, 'model') ?? 'public/models/tiny';
  const steps = Number(flag(argv, 'steps') ?? 20);
  const evalSize = Number(flag(argv, 'eval-size') ?? 64);
  const batch = Number(flag(argv, 'batch') ?? 8);
  const gpu = await createNodeGpu();
  const base = await loadBaseModel(modelDir);
  const baseFiles = await readFolder(modelDir);
  const engine = new MasEngine(gpu, base);
  try {
    for (const c of CASES) {
      const t0 = performance.now();
      const task = makeTask(c.task, c.difficulty);
      const config: RunConfig = defaultRunConfig({
        topology: presetForTask(task, { latentSteps: c.latentSteps }), task: c.task, difficulty: c.difficulty, method: 'c2c', modelId: modelDir,
        steps, batch, evalSize, seed: 7, lr: 1e-3, evalEvery: 0,
      });
      const run = new Run(engine, config);
      try {
        const train: { loss: number; gradNorm: number; lr: number }[] = [];
        for (let s = 0; s < steps; s++) {
          const r = await run.trainStep();
          train.push({ loss: r.loss, gradNorm: r.gradNorm, lr: r.lr });
        }
        const fuser = (await run.exportFuser())!;
        const evaluation: Record<string, unknown> = {};
        const rows = [];
        for (const split of ['train', 'heldout', 'ood'] as const) {
          const { predictions, correct: _c, ...row } = await run.evaluate(split);
          evaluation[split] = { ...row, predictions };
          rows.push({ ...row, ci95: wilson95(Math.round(row.accuracy * row.episodes), row.episodes) });
        }
        const controls: Record<string, unknown> = {};
        for (const ctl of controlsFor(run.spec.channel)) {
          const o = await run.evaluate('heldout', ctl);
          controls[ctl] = { accuracy: o.accuracy, validity: o.validity, entropy: o.entropy, loss: o.loss, predictions: o.predictions };
        }
        const content = runBundleContent({
          config, base, baseFiles, adapters: [], initialAdapters: [], fuser, createdBy: 'c2c-check', stepsDone: run.step, losses: run.losses.slice(),
          evaluation: rows, heldout: [], controls: Object.entries(controls).map(([control, v]) => ({ control, accuracy: (v as { accuracy: number }).accuracy })),
          wallSeconds: null, batches: steps,
        });
        const gradients = await gradientsAt(engine, config, fuser);
        const dir = path.join(out, c.name);
        await mkdir(dir, { recursive: true });
        await writeTree(path.join(dir, 'bundle'), writeRunBundle(content));
        await writeFile(path.join(dir, 'engine.json'), JSON.stringify({ case: c, train, evaluation, controls, gradients, seconds: (performance.now() - t0) / 1000 }) + '\n');
        console.log(`${c.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s, loss ${train[0].loss.toFixed(5)} -> ${train[train.length - 1].loss.toFixed(5)}, heldout accuracy ${(evaluation.heldout as { accuracy: number }).accuracy.toFixed(3)}`);
      } finally {
        run.destroy();
      }
    }
  } finally {
    engine.destroy();
    gpu.dispose();
  }
}

async function evalBundle(bundleDir: string, out: string): Promise<void> {
  const { bundle: b, baseDir } = await readBundleFolder(bundleDir);
  if (!b.fuser) throw new Error(`${bundleDir} holds no c2c fuser`);
  const gpu = await createNodeGpu();
  const engine = new MasEngine(gpu, await loadBaseModel(baseDir));
  const run = new Run(engine, b.json.config);
  try {
    run.loadFuser(decodeFuserFile(b.fuser).weights);
    const { predictions, loss, accuracy } = await run.evaluate('heldout');
    await writeFile(out, JSON.stringify({ heldout: { predictions, loss, accuracy } }) + '\n');
  } finally {
    run.destroy();
    engine.destroy();
    gpu.dispose();
  }
}

const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'make' && rest[0]) await make(rest[0], rest.slice(1));
  else if (cmd === 'eval' && rest[0] && rest[1]) await evalBundle(rest[0], rest[1]);
  else {
    console.error('usage: c2c-check.mjs make OUT [--model DIR] [--steps N] [--eval-size N] [--batch N] | eval BUNDLE OUT.json');
    process.exit(2);
  }
  process.exit(0);
} catch (e) {
  console.error((e as Error).stack ?? String(e));
  process.exit(1);
}
