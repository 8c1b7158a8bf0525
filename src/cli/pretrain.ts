// `npm run pretrain -- --preset toy --steps N --seed S --out DIR [--init-from DIR]`: pretrains a toy
// base model from scratch on the synthetic corpus (or continues any Llama / Qwen2 / Qwen3 checkpoint
// from its weights: --init-from) and writes it as Hugging Face files.
//   --export-corpus DIR: writes what the run would train on instead of training (the initial weights,
//     every step's batch, the optimizer's settings and the probe), for the PyTorch trainer
//     (python/latent_playground/pretrain.py) on a machine without Node or a WebGPU adapter;
//   --evaluate DIR: the closing evaluation of a checkpoint already written (such as that trainer's),
//     written into its training_args.json.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createNodeGpu } from '../gpu/node';
import { MODEL_PRESETS, countParams, presetConfig } from '../model/config';
import { checkRecipe, presetRecipe, pretrainBase, pretrainPlan, type PretrainRecipe } from '../model/pretrain';
import { CORPUS_KINDS, IGNORE_INDEX, type CorpusMix } from '../tasks/corpus';
import { DivergenceWatch } from '../model/divergence';
import { defaultTokenizer } from '../tokenizers/char';
import { PRETRAINED_TASK_NAMES, TASK_NAMES, type TaskName } from '../tasks/tasks';
import {
  DEFAULT_EVAL_SIZE, evaluateBaseOrError, failedCells, formatBaseEvaluation, resolveBaseEvalOptions, type BaseEvalOptions,
} from '../mas/base-eval';
import { Args, UsageError } from './args';
import { checkOutputFolder, loadBaseModel, lockOutputs, nodeIo, recoverTarget, saveAtomically, saveBaseModel, writeFileAtomic } from './files';
import type { BaseModel } from '../mas/types';

/** The preset's recipe with the corpus flags applied (bad values are usage errors). */
function recipeFromArgs(args: Args, preset: string): PretrainRecipe {
  const r = presetRecipe(preset);
  const ints = (name: string) => args.list(name)!.map((x) => {
    if (!/^\d+$/.test(x)) throw new UsageError(`--${name} takes whole numbers, got '${x}'`);
    return Number(x);
  });
  const pairs = (name: string): [string, number][] => args.list(name)!.map((x) => {
    const m = /^([a-z:0-9]+)=([0-9.]+)$/.exec(x);
    if (!m || !Number.isFinite(Number(m[2]))) throw new UsageError(`--${name}: '${x}' is not name=weight`);
    return [m[1], Number(m[2])];
  });
  if (args.has('tasks')) {
    const t = args.list('tasks')!;
    for (const x of t) if (!(TASK_NAMES as readonly string[]).includes(x)) throw new UsageError(`--tasks: unknown task ${x} (have: ${TASK_NAMES.join(', ')})`);
    r.tasks = t as TaskName[];
  }
  if (args.has('difficulties')) r.difficulties = ints('difficulties');
  // weights and probes of settings the corpus no longer holds are dropped
  const held = (k: string) => r.tasks.some((t) => k.startsWith(`${t}:`)) && r.difficulties.includes(Number(k.split(':')[1]));
  r.weights = Object.fromEntries(Object.entries(r.weights).filter(([k]) => held(k)));
  r.probe = r.probe.filter(held);
  if (args.has('weights')) for (const [k, w] of pairs('weights')) r.weights[k] = w;
  if (args.has('mix')) {
    const mix: Partial<CorpusMix> = {};
    for (const [k, w] of pairs('mix')) {
      if (!(CORPUS_KINDS as readonly string[]).includes(k)) throw new UsageError(`--mix: unknown kind ${k} (have: ${CORPUS_KINDS.join(', ')})`);
      mix[k as keyof CorpusMix] = w;
    }
    r.mix = mix;
  }
  if (args.has('quiz')) r.quiz = args.int('quiz', 0, 64)!;
  if (args.has('no-mask')) r.maskRandom = false;
  if (args.has('weight-decay')) r.weightDecay = args.num('weight-decay', 0, 0.999)!;
  const b = args.str('buckets')!;
  r.buckets = b === 'auto' ? 'auto' : ints('buckets');
  return r;
}

export async function commandPretrain(argv: string[]): Promise<number> {
  const args = new Args(argv, [
    { name: 'preset', help: `model size: ${Object.keys(MODEL_PRESETS).join(', ')}`, default: 'toy' },
    { name: 'steps', help: 'optimizer steps', default: '1000' },
    { name: 'seed', help: 'seed of init and data', default: '1' },
    { name: 'batch', help: 'sequences per step', default: '32' },
    { name: 'lr', help: 'peak learning rate', default: '0.003' },
    { name: 'out', help: 'output folder (config.json, model.safetensors, tokenizer.json); an existing checkpoint is refused' },
    { name: 'init-from', help: "start from this checkpoint folder (Llama, Qwen2 or Qwen3 with its tokenizer.json) instead of the preset's random init: its config and tokenizer are kept, the corpus is the preset's recipe (char-format text, encoded by the model's tokenizer)" },
    { name: 'force', help: 'replace the checkpoint already in --out', flag: true },
    { name: 'log-every', help: 'print every N steps', default: '10' },
    { name: 'warmup', help: 'warmup steps (default min(100, steps/10))' },
    { name: 'tasks', help: `tasks of the corpus (any of ${TASK_NAMES.join(',')}; default: the preset's recipe, ${PRETRAINED_TASK_NAMES.join(',')} for toy)` },
    { name: 'difficulties', help: "difficulties of the corpus (default: the preset's recipe)" },
    { name: 'weights', help: "relative weight per task:difficulty, e.g. lookup:1=2,arith:1=3 (others keep the recipe's, 1 when it has none)" },
    { name: 'mix', help: `corpus kinds' weights, e.g. skyline=0.4,send=0.3 (${CORPUS_KINDS.join(', ')}; kinds not given weigh 0)` },
    { name: 'quiz', help: 'more questions after an answer, at most (default: the recipe\'s, 4)' },
    { name: 'weight-decay', help: "AdamW weight decay (default: the recipe's)" },
    { name: 'no-mask', help: 'supervise every token, the random contents too (an ablation of the recipe)', flag: true },
    { name: 'buckets', help: "row lengths of the batches: auto (quartiles of the corpus's lengths) or a list ending at the corpus's longest", default: 'auto' },
    { name: 'probe-every', help: 'held-out skyline accuracy of the probed settings every N steps (0: never)', default: '250' },
    { name: 'eval-size', help: 'held-out episodes per task, difficulty and split of the closing evaluation', default: String(DEFAULT_EVAL_SIZE) },
    { name: 'eval-tasks', help: `tasks the closing evaluation covers (any of ${TASK_NAMES.join(',')})`, default: PRETRAINED_TASK_NAMES.join(',') },
    { name: 'eval-difficulties', help: 'difficulties it covers', default: '1,2,3,4,5' },
    { name: 'eval-text-budget', help: "tokens a sender may decode in the text channel, or 'auto' (the longest message + 1)", default: 'auto' },
    { name: 'eval-seed', help: 'seed of the evaluation episodes (the same for every base)', default: '1' },
    { name: 'no-eval', help: 'skip the closing evaluation (skyline and text channel per task and difficulty)', flag: true },
    { name: 'export-corpus', help: 'do not train: write the run\u2019s initial weights (init/), every step\u2019s batch (corpus.bin), the optimizer settings and the probe (plan.json) into this folder, for python -m latent_playground pretrain' },
    { name: 'evaluate', help: 'do not train: run the closing evaluation of the checkpoint in this folder and write it into its training_args.json' },
  ], 'usage: npm run pretrain -- --preset <name> --steps N --seed S --out DIR [--eval-size N] [--eval-tasks a,b] [--no-eval]\n       npm run pretrain -- --preset <name> --steps N --seed S --export-corpus DIR\n       npm run pretrain -- --evaluate DIR [--eval-size N]');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  const exportDir = args.str('export-corpus');
  const evaluateDir = args.str('evaluate');
  const out = args.str('out');
  if (exportDir && evaluateDir) throw new UsageError('--export-corpus and --evaluate are separate steps: give one');
  if (!out && !exportDir && !evaluateDir) {
    console.error('error: --out DIR is required (see --help)');
    return 2;
  }
  const preset = args.str('preset')!;
  const initDir = args.str('init-from');
  let init: BaseModel | undefined;
  if (initDir) {
    init = await loadBaseModel(initDir);
    if (!init.tokenizer) throw new UsageError(`--init-from ${initDir} has no tokenizer.json: the corpus is text, which needs the model's tokenizer`);
  }
  const cfg = init?.config ?? presetConfig(preset, defaultTokenizer().vocabSize);
  const steps = args.int('steps', 1, 1e7)!;
  const logEvery = args.int('log-every', 1)!;
  // the closing evaluation's settings, checked before the (long) pretraining
  const evaluate = !args.has('no-eval');
  const budget = args.str('eval-text-budget')!;
  const integers = (name: string, v: string[]) => v.map((x) => {
    if (!/^\d+$/.test(x)) throw new UsageError(`--${name} takes whole numbers, got '${x}'`);
    return Number(x);
  });
  const evalOptions: BaseEvalOptions = {
    tasks: args.list('eval-tasks') as TaskName[], difficulties: integers('eval-difficulties', args.list('eval-difficulties')!),
    evalSize: args.int('eval-size', 1)!, seed: args.int('eval-seed', 0)!, textBudget: budget === 'auto' ? 'auto' : integers('eval-text-budget', [budget])[0],
  };
  if (evaluate || evaluateDir) {
    try {
      resolveBaseEvalOptions(evalOptions);
    } catch (e) {
      throw new UsageError(`--eval-*: ${(e as Error).message.replace(/^base evaluation: /, '')}`);
    }
  }
  if (evaluateDir) {
    // it rewrites DIR/training_args.json: one writer of DIR at a time (a pretrain --force into it included)
    await recoverTarget(path.resolve(evaluateDir));
    if (!(await fsp.stat(evaluateDir).then((st) => st.isDirectory(), () => false))) throw new UsageError(`--evaluate ${evaluateDir} is not a checkpoint folder`);
    const [lock] = await lockOutputs([{ target: evaluateDir, option: '--evaluate' }], ['pretrain', ...argv].join(' '));
    try {
      return await evaluateCheckpoint(evaluateDir, evalOptions);
    } finally {
      lock.release();
    }
  }
  const recipe = recipeFromArgs(args, preset);
  try {
    checkRecipe(recipe);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (exportDir) {
    if (out) throw new UsageError('--export-corpus writes no checkpoint: leave out --out (the PyTorch trainer takes it)');
    await exportCorpus(exportDir, {
      preset, steps, seed: args.int('seed', 0)!, batch: args.int('batch', 1, 4096)!, lr: args.num('lr', 1e-6, 1)!,
      warmupSteps: args.int('warmup', 0, 1e7), recipe, probeEvery: args.int('probe-every', 0, 1e7)!,
      ...(init ? { initFrom: { id: initDir!, config: init.config, weights: init.weights, tokenizer: init.tokenizer! } } : {}),
    }, { force: args.has('force'), tokenizerConfig: init?.tokenizerConfig ?? null, command: ['pretrain', ...argv].join(' ') });
    return 0;
  }
  if (!out) throw new UsageError('--out DIR is required (see --help)');
  // one writer per --out (issue 20 item 5): checked, locked, checked again under the lock (a run that
  // finished meanwhile is seen); held until the command ends (and removed on SIGINT / SIGTERM)
  await checkOutputFolder(out, { force: args.has('force'), option: '--out' });
  const [lock] = await lockOutputs([{ target: out, option: '--out' }], ['pretrain', ...argv].join(' '));
  try {
    return await pretrainInto(out, args, { preset, steps, logEvery, evaluate, evalOptions, recipe, cfg, init, initDir });
  } finally {
    lock.release();
  }
}

/** The run itself, under --out's lock: checks the folder, trains, writes the checkpoint and its evaluation. */
async function pretrainInto(out: string, args: Args, o: {
  preset: string; steps: number; logEvery: number; evaluate: boolean; evalOptions: BaseEvalOptions; recipe: PretrainRecipe;
  cfg: BaseModel['config'] | ReturnType<typeof presetConfig>; init: BaseModel | undefined; initDir: string | undefined;
}): Promise<number> {
  const { preset, steps, logEvery, evaluate, evalOptions, recipe, cfg, init, initDir } = o;
  // the output folder is checked before any GPU work (written atomically at the end)
  await checkOutputFolder(out, { force: args.has('force'), option: '--out' });
  const gpu = await createNodeGpu();
  console.log(`device: ${gpu.report.description || gpu.report.vendor}; ${init ? `from ${initDir} (${init.config.model_type})` : `preset ${preset}`}: ${countParams(cfg).toLocaleString('en-US')} parameters`);
  const watch = new DivergenceWatch();
  console.log(`recipe: tasks ${recipe.tasks.join(',')} at difficulties ${recipe.difficulties.join(',')}; quiz ${recipe.quiz}; ${recipe.maskRandom ? 'random contents masked' : 'every token supervised'}; mix ${Object.entries(recipe.mix).map(([k, v]) => `${k} ${v}`).join(', ')}; weight decay ${recipe.weightDecay}`);
  const result = await pretrainBase(gpu, {
    preset, steps, seed: args.int('seed', 0)!, batch: args.int('batch', 1, 4096)!, lr: args.num('lr', 1e-6, 1)!,
    warmupSteps: args.int('warmup', 0, 1e7), recipe, probeEvery: args.int('probe-every', 0, 1e7)!,
    ...(init ? { initFrom: { id: initDir!, config: init.config, weights: init.weights, tokenizer: init.tokenizer! } } : {}),
    onProbe: (p) => console.log(`probe @${p.step}: held-out skyline ${Object.entries(p.accuracy).map(([k, v]) => `${k} ${v.toFixed(3)}`).join('  ')}`),
    onStep: (r) => {
      const diverging = watch.push(r.step, r.loss);
      if (diverging) console.error(`warning: ${diverging}`);
      if (r.step % logEvery === 0 || r.step === 1 || r.step === steps) {
        console.log(`step ${String(r.step).padStart(5)}/${steps}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  grad-norm ${r.gradNorm.toFixed(3)}  ${r.tokensPerSecond.toFixed(0)} tok/s`);
      }
    },
  });
  console.log(`unigram entropy of the corpus: ${result.unigramEntropy.toFixed(4)} nats; final loss ${result.losses[result.losses.length - 1].toFixed(4)}`);
  const saved = { ...result, tokenizerConfig: init?.tokenizerConfig ?? null };
  await saveBaseModel(out, saved, result.provenance);
  console.log(`wrote ${out}`);
  let code = 0;
  if (!evaluate) console.log('evaluation skipped (--no-eval)');
  else {
    // the checkpoint is on disk already; training_args.json is rewritten with the evaluation (or its error)
    const evaluation = await evaluateBaseOrError(gpu, { id: out, config: result.config, weights: result.weights, tokenizer: result.tokenizer }, {
      ...evalOptions, onProgress: (m, f) => f < 1 && console.log(m),
    });
    if ('error' in evaluation) {
      console.error(`error: evaluation failed: ${evaluation.error}; the checkpoint is written to ${out}, training_args.json records the error`);
      code = 1;
    } else {
      console.log(formatBaseEvaluation(evaluation));
      const failed = failedCells(evaluation);
      if (failed) console.error(`warning: ${failed} evaluation cell(s) failed (listed above and in training_args.json)`);
    }
    await saveBaseModel(out, saved, { ...result.provenance, evaluation });
    console.log(`wrote the evaluation into ${out}/training_args.json`);
  }
  gpu.dispose();
  return code;
}

type PlanOptions = Parameters<typeof pretrainPlan>[0];

/**
 * --export-corpus: the run's plan as files. init/ is the initial checkpoint; corpus.bin holds, step
 * after step, the batch's ids then its targets ([batch, S] each, little-endian uint16, or uint32 for
 * a vocabulary of 65535 or more; the ignored target is the type's largest value), S per step in
 * plan.json. Nothing is trained; the folder is written atomically.
 */
async function exportCorpus(dir: string, o: PlanOptions, opts: { force: boolean; tokenizerConfig: unknown; command: string }): Promise<void> {
  const [lock] = await lockOutputs([{ target: dir, option: '--export-corpus' }], opts.command);
  try {
    await exportCorpusLocked(dir, o, opts);
  } finally {
    lock.release();
  }
}

async function exportCorpusLocked(dir: string, o: PlanOptions, opts: { force: boolean; tokenizerConfig: unknown }): Promise<void> {
  await recoverTarget(path.resolve(dir));
  // an existing folder is replaced only with --force, and only when it is such an export (its plan.json)
  const existing = await fsp.stat(dir).catch(() => null);
  if (existing) {
    const isPlan = await fsp.stat(path.join(dir, 'plan.json')).then(() => true, () => false);
    if (!existing.isDirectory() || !isPlan) throw new UsageError(`--export-corpus ${dir} exists and is not a pretraining plan (no plan.json): choose a new folder`);
    if (!opts.force) throw new UsageError(`--export-corpus ${dir} holds a plan already: add --force to replace it`);
  }
  const t0 = performance.now();
  const plan = pretrainPlan(o);
  if (plan.hyper.accumSteps !== 1) throw new UsageError('--export-corpus writes one batch per step (no accumulation)');
  const wide = plan.config.vocab_size >= 0xffff;
  const ignored = wide ? 0xffffffff : 0xffff;
  const rowsPerStep = o.batch;
  const seqLens: number[] = [];
  const chunks: Uint8Array[] = [];
  for (let s = 0; s < o.steps; s++) {
    const b = plan.batches.next();
    seqLens.push(b.seqLen);
    const n = rowsPerStep * b.seqLen;
    const a = wide ? new Uint32Array(2 * n) : new Uint16Array(2 * n);
    for (let i = 0; i < n; i++) {
      a[i] = b.inputs[i];
      a[n + i] = b.targets[i] === IGNORE_INDEX ? ignored : b.targets[i];
    }
    chunks.push(new Uint8Array(a.buffer));
  }
  const h = plan.hyper;
  const meta = {
    format: 'latent-playground pretrain plan', version: 1,
    preset: o.preset, ...(o.initFrom ? { initFrom: o.initFrom.id } : {}), steps: o.steps, seed: o.seed, batch: o.batch,
    // the engine's optimizer, spelled out (src/model/train.ts, shaders/optimizer.wgsl: torch.optim.AdamW semantics)
    optimizer: {
      lr: h.lr, minLr: h.minLr ?? h.lr / 10, warmupSteps: h.warmupSteps, totalSteps: h.totalSteps, schedule: 'linear warmup, then cosine to minLr',
      beta1: h.beta1 ?? 0.9, beta2: h.beta2 ?? 0.999, eps: h.eps ?? 1e-8, weightDecay: h.weightDecay, noDecaySuffix: 'norm.weight',
      clip: h.clip, clipScale: 'min(1, clip / (norm + 1e-6))', loss: 'mean cross-entropy over the non-ignored targets of the batch',
    },
    recipe: plan.recipe, seqLen: plan.seqLen, buckets: plan.buckets, unigramEntropy: plan.unigramEntropy,
    corpus: { file: 'corpus.bin', dtype: wide ? 'uint32' : 'uint16', ignoredTarget: ignored, rowsPerStep, seqLens },
    probeEvery: plan.probeEvery,
    probe: plan.probe.map((p) => ({ name: p.name, n: p.n, S: p.S, ids: [...p.ids], targets: [...p.targets].map((t) => (t === IGNORE_INDEX ? -1 : t)) })),
  };
  // written complete into a temporary sibling, then swapped in (the old plan aside until the new one
  // is in place): a failure, an interrupt or a kill leaves one complete plan (saveAtomically)
  await saveAtomically(path.resolve(dir), 'folder', async (tmp) => {
    await fsp.mkdir(tmp);
    await saveBaseModel(path.join(tmp, 'init'), {
      config: plan.llamaConfig, weights: plan.initWeights, tokenizer: plan.tokenizer, tokenizerConfig: (opts.tokenizerConfig ?? null) as never,
    }, { stage: 'initial weights of a pretraining plan', preset: o.preset, seed: o.seed });
    await nodeIo.writeFile(path.join(tmp, 'plan.json'), new TextEncoder().encode(JSON.stringify(meta) + '\n'));
    const fh = await fsp.open(path.join(tmp, 'corpus.bin'), 'wx');
    try {
      for (const c of chunks) await fh.write(c);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }, nodeIo, dir);
  const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  console.log(`wrote ${dir}: ${o.steps} steps of ${o.batch} rows (${(bytes / 2 ** 20).toFixed(1)} MiB), the initial weights and the plan, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`train it with: python -m latent_playground pretrain ${dir} --out OUT; then: npm run pretrain -- --evaluate OUT`);
}

/** --evaluate: the closing evaluation of a written checkpoint, into its training_args.json (the rest kept). */
async function evaluateCheckpoint(dir: string, evalOptions: BaseEvalOptions): Promise<number> {
  const base = await loadBaseModel(dir);
  if (!base.tokenizer) throw new UsageError(`--evaluate ${dir}: the checkpoint has no tokenizer.json, which the evaluation's text needs`);
  const argsFile = path.join(dir, 'training_args.json');
  let provenance: Record<string, unknown> = {};
  try {
    provenance = JSON.parse(await fsp.readFile(argsFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`--evaluate ${dir}: training_args.json is not readable JSON (${(e as Error).message})`);
  }
  const gpu = await createNodeGpu();
  try {
    console.log(`device: ${gpu.report.description || gpu.report.vendor}; evaluating ${dir} (${base.config.model_type})`);
    const t0 = performance.now();
    const evaluation = await evaluateBaseOrError(gpu, base, { ...evalOptions, onProgress: (m, f) => f < 1 && console.log(m) });
    if ('error' in evaluation) {
      console.error(`error: evaluation failed: ${evaluation.error}; training_args.json records the error`);
    } else {
      console.log(formatBaseEvaluation(evaluation));
      const failed = failedCells(evaluation);
      if (failed) console.error(`warning: ${failed} evaluation cell(s) failed (listed above and in training_args.json)`);
    }
    const evaluatedOn = { adapter: gpu.report.description || gpu.report.vendor, seconds: (performance.now() - t0) / 1000 };
    await writeFileAtomic(argsFile, JSON.stringify({ ...provenance, evaluation, evaluatedOn }, null, 2) + '\n');
    console.log(`wrote the evaluation into ${argsFile}`);
    return 'error' in evaluation ? 1 : 0;
  } finally {
    gpu.dispose();
  }
}
