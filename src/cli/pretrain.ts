// `npm run pretrain -- --preset toy --steps N --seed S --out DIR [--init-from DIR]`: pretrains a toy
// base model from scratch on the synthetic corpus (or continues any Llama / Qwen2 / Qwen3 checkpoint
// from its weights: --init-from) and writes it as Hugging Face files.
import { createNodeGpu } from '../gpu/node';
import { MODEL_PRESETS, countParams, presetConfig } from '../model/config';
import { checkRecipe, presetRecipe, pretrainBase, type PretrainRecipe } from '../model/pretrain';
import { CORPUS_KINDS, type CorpusMix } from '../tasks/corpus';
import { DivergenceWatch } from '../model/divergence';
import { defaultTokenizer } from '../tokenizers/char';
import { TASK_NAMES, type TaskName } from '../tasks/tasks';
import {
  DEFAULT_EVAL_SIZE, evaluateBaseOrError, failedCells, formatBaseEvaluation, resolveBaseEvalOptions, type BaseEvalOptions,
} from '../mas/base-eval';
import { Args, UsageError } from './args';
import { checkOutputFolder, loadBaseModel, saveBaseModel } from './files';
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
    { name: 'tasks', help: `tasks of the corpus (default: the preset's recipe, ${TASK_NAMES.join(',')} for toy)` },
    { name: 'difficulties', help: "difficulties of the corpus (default: the preset's recipe)" },
    { name: 'weights', help: "relative weight per task:difficulty, e.g. lookup:1=2,arith:1=3 (others keep the recipe's, 1 when it has none)" },
    { name: 'mix', help: `corpus kinds' weights, e.g. skyline=0.4,send=0.3 (${CORPUS_KINDS.join(', ')}; kinds not given weigh 0)` },
    { name: 'quiz', help: 'more questions after an answer, at most (default: the recipe\'s, 4)' },
    { name: 'weight-decay', help: "AdamW weight decay (default: the recipe's)" },
    { name: 'no-mask', help: 'supervise every token, the random contents too (an ablation of the recipe)', flag: true },
    { name: 'buckets', help: "row lengths of the batches: auto (quartiles of the corpus's lengths) or a list ending at the corpus's longest", default: 'auto' },
    { name: 'probe-every', help: 'held-out skyline accuracy of the probed settings every N steps (0: never)', default: '250' },
    { name: 'eval-size', help: 'held-out episodes per task, difficulty and split of the closing evaluation', default: String(DEFAULT_EVAL_SIZE) },
    { name: 'eval-tasks', help: `tasks the closing evaluation covers (${TASK_NAMES.join(',')})`, default: TASK_NAMES.join(',') },
    { name: 'eval-difficulties', help: 'difficulties it covers', default: '1,2,3,4,5' },
    { name: 'eval-text-budget', help: "tokens a sender may decode in the text channel, or 'auto' (the longest message + 1)", default: 'auto' },
    { name: 'eval-seed', help: 'seed of the evaluation episodes (the same for every base)', default: '1' },
    { name: 'no-eval', help: 'skip the closing evaluation (skyline and text channel per task and difficulty)', flag: true },
  ], 'usage: npm run pretrain -- --preset <name> --steps N --seed S --out DIR [--eval-size N] [--eval-tasks a,b] [--no-eval]');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  const out = args.str('out');
  if (!out) {
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
  if (evaluate) {
    try {
      resolveBaseEvalOptions(evalOptions);
    } catch (e) {
      throw new UsageError(`--eval-*: ${(e as Error).message.replace(/^base evaluation: /, '')}`);
    }
  }
  const recipe = recipeFromArgs(args, preset);
  try {
    checkRecipe(recipe);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
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
