// `npm run pretrain -- --preset toy --steps N --seed S --out DIR`: pretrains a toy base model from
// scratch on the synthetic corpus and writes it as Hugging Face files.
import { createNodeGpu } from '../gpu/node';
import { MODEL_PRESETS, countParams, presetConfig } from '../model/config';
import { pretrainBase } from '../model/pretrain';
import { DivergenceWatch } from '../model/divergence';
import { defaultTokenizer } from '../tasks/tokenizer';
import { TASK_NAMES, type TaskName } from '../tasks/tasks';
import {
  DEFAULT_EVAL_SIZE, evaluateBaseOrError, failedCells, formatBaseEvaluation, resolveBaseEvalOptions, type BaseEvalOptions,
} from '../mas/base-eval';
import { Args, UsageError } from './args';
import { checkOutputFolder, saveBaseModel } from './files';

export async function commandPretrain(argv: string[]): Promise<number> {
  const args = new Args(argv, [
    { name: 'preset', help: `model size: ${Object.keys(MODEL_PRESETS).join(', ')}`, default: 'toy' },
    { name: 'steps', help: 'optimizer steps', default: '1000' },
    { name: 'seed', help: 'seed of init and data', default: '1' },
    { name: 'batch', help: 'sequences per step', default: '32' },
    { name: 'lr', help: 'peak learning rate', default: '0.003' },
    { name: 'out', help: 'output folder (config.json, model.safetensors, tokenizer.json); an existing checkpoint is refused' },
    { name: 'force', help: 'replace the checkpoint already in --out', flag: true },
    { name: 'log-every', help: 'print every N steps', default: '10' },
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
  const cfg = presetConfig(preset, defaultTokenizer().vocabSize);
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
  // the output folder is checked before any GPU work (written atomically at the end)
  await checkOutputFolder(out, { force: args.has('force'), option: '--out' });
  const gpu = await createNodeGpu();
  console.log(`device: ${gpu.report.description || gpu.report.vendor}; preset ${preset}: ${countParams(cfg).toLocaleString('en-US')} parameters`);
  const watch = new DivergenceWatch();
  const result = await pretrainBase(gpu, {
    preset, steps, seed: args.int('seed', 0)!, batch: args.int('batch', 1, 4096)!, lr: args.num('lr', 1e-6, 1)!,
    onStep: (r) => {
      const diverging = watch.push(r.step, r.loss);
      if (diverging) console.error(`warning: ${diverging}`);
      if (r.step % logEvery === 0 || r.step === 1 || r.step === steps) {
        console.log(`step ${String(r.step).padStart(5)}/${steps}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  grad-norm ${r.gradNorm.toFixed(3)}  ${r.tokensPerSecond.toFixed(0)} tok/s`);
      }
    },
  });
  console.log(`unigram entropy of the corpus: ${result.unigramEntropy.toFixed(4)} nats; final loss ${result.losses[result.losses.length - 1].toFixed(4)}`);
  await saveBaseModel(out, result, result.provenance);
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
    await saveBaseModel(out, result, { ...result.provenance, evaluation });
    console.log(`wrote the evaluation into ${out}/training_args.json`);
  }
  gpu.dispose();
  return code;
}
