// `npm run generate -- --model DIR [--adapter DIR] (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N]
// [--logits FILE]`: greedy continuation with the KV cache.
import { writeFile } from 'node:fs/promises';
import { createNodeGpu } from '../gpu/node';
import { LlamaGpu } from '../model/model';
import { Generator } from '../model/generate';
import { peftToLora } from '../model/lora-peft';
import { decodeAdapter } from '../storage/peft';
import { Args, UsageError } from './args';
import { loadBaseModel, readFolder } from './files';

export async function commandGenerate(argv: string[]): Promise<number> {
  const args = new Args(argv, [
    { name: 'model', help: 'base model folder (config.json, model.safetensors, tokenizer.json)' },
    { name: 'adapter', help: 'PEFT adapter folder (adapter_config.json, adapter_model.safetensors)' },
    { name: 'prompt', help: 'prompt text; <bos> and <eos> are written as such, e.g. "<bos>tbl:a3k7\\nask:k\\nans:"' },
    { name: 'ids', help: 'prompt as comma-separated token ids instead of text' },
    { name: 'max-new-tokens', help: 'tokens to generate (stops early at <eos>)', default: '16' },
    { name: 'logits', help: 'write the last position\'s logits to FILE as JSON' },
  ], 'usage: npm run generate -- --model DIR [--adapter DIR] (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N] [--logits FILE]');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  const dir = args.str('model');
  if (!dir) throw new UsageError('--model DIR is required');
  if (args.has('prompt') === args.has('ids')) throw new UsageError('give exactly one of --prompt or --ids');
  const base = await loadBaseModel(dir);
  const ids = args.has('ids')
    ? args.list('ids')!.map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0 || n >= base.config.vocab_size) throw new UsageError(`--ids: '${s}' is not a token id in 0..${base.config.vocab_size - 1}`);
        return n;
      })
    : base.tokenizer.encode(args.str('prompt')!.replace(/\\n/g, '\n'));
  if (ids.length === 0) throw new UsageError('the prompt is empty');
  const gpu = await createNodeGpu();
  const model = new LlamaGpu(gpu, base.config, base.weights);
  const adapterDir = args.str('adapter');
  const lora = adapterDir ? peftToLora(gpu, base.config, decodeAdapter(await readFolder(adapterDir), base.config)) : undefined;
  const gen = new Generator(model, lora);
  const out = await gen.generate([ids], { maxNewTokens: args.int('max-new-tokens', 0, 100000)!, lora, stopId: base.tokenizer.eosId });
  const text = base.tokenizer.decode(out.tokens[0]);
  console.log(JSON.stringify({ prompt: base.tokenizer.decode(ids), continuation: text, ids: out.tokens[0] }));
  const file = args.str('logits');
  if (file) {
    await writeFile(file, JSON.stringify({ ids: [...ids, ...out.tokens[0]], logits: Array.from(out.lastLogits) }) + '\n');
    console.error(`wrote ${file}`);
  }
  gen.destroy();
  gpu.dispose();
  return 0;
}
