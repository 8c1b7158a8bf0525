// `npm run pretrain -- --preset toy --steps N --seed S --out DIR`: pretrains a toy base model from
// scratch on the synthetic corpus and writes it as Hugging Face files.
import { createNodeGpu } from '../gpu/node';
import { MODEL_PRESETS, countParams, presetConfig } from '../model/config';
import { pretrainBase } from '../model/pretrain';
import { defaultTokenizer } from '../tasks/tokenizer';
import { Args } from './args';
import { saveBaseModel } from './files';

export async function commandPretrain(argv: string[]): Promise<number> {
  const args = new Args(argv, [
    { name: 'preset', help: `model size: ${Object.keys(MODEL_PRESETS).join(', ')}`, default: 'toy' },
    { name: 'steps', help: 'optimizer steps', default: '1000' },
    { name: 'seed', help: 'seed of init and data', default: '1' },
    { name: 'batch', help: 'sequences per step', default: '32' },
    { name: 'lr', help: 'peak learning rate', default: '0.003' },
    { name: 'out', help: 'output folder (config.json, model.safetensors, tokenizer.json)' },
    { name: 'log-every', help: 'print every N steps', default: '10' },
  ], 'usage: npm run pretrain -- --preset <name> --steps N --seed S --out DIR');
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
  const gpu = await createNodeGpu();
  console.log(`device: ${gpu.report.description || gpu.report.vendor}; preset ${preset}: ${countParams(cfg).toLocaleString('en-US')} parameters`);
  const result = await pretrainBase(gpu, {
    preset, steps, seed: args.int('seed', 0)!, batch: args.int('batch', 1, 4096)!, lr: args.num('lr', 1e-6, 1)!,
    onStep: (r) => {
      if (r.step % logEvery === 0 || r.step === 1 || r.step === steps) {
        console.log(`step ${String(r.step).padStart(5)}/${steps}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  grad-norm ${r.gradNorm.toFixed(3)}  ${r.tokensPerSecond.toFixed(0)} tok/s`);
      }
    },
  });
  console.log(`unigram entropy of the corpus: ${result.unigramEntropy.toFixed(4)} nats; final loss ${result.losses[result.losses.length - 1].toFixed(4)}`);
  await saveBaseModel(out, result, result.provenance);
  console.log(`wrote ${out}`);
  gpu.dispose();
  return 0;
}
