// `npm run generate -- --model DIR [--adapter DIR] (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N]
// [--logits FILE]`: greedy continuation with the KV cache, on any Llama, Qwen2 or Qwen3 folder. --ids
// needs no tokenizer.json; --prompt encodes with the model's (the char one of the toys, or a
// tokenizer.json through @huggingface/tokenizers).
import { createNodeGpu } from '../gpu/node';
import { LlamaGpu } from '../model/model';
import { Generator } from '../model/generate';
import { peftToLora } from '../model/lora-peft';
import { decodeAdapter } from '../storage/peft';
import { checkConfigFitsDevice } from '../storage/checkpoint';
import { Args, parseInteger, UsageError } from './args';
import { checkOutputFile, isLogitsJson, loadBaseModel, readFolder, writeFileAtomic } from './files';
import { resolveModelArg } from './hub';

export async function commandGenerate(argv: string[]): Promise<number> {
  const args = new Args(argv, [
    { name: 'model', help: 'base model folder: config.json, model.safetensors (or shards), tokenizer.json (optional with --ids); Llama, Qwen2 or Qwen3; or hf:ORG/NAME[@REV], fetched from the Hub into the cache (cli hub --help)' },
    { name: 'adapter', help: 'PEFT adapter folder (adapter_config.json, adapter_model.safetensors)' },
    { name: 'prompt', help: 'prompt text; <bos> and <eos> are written as such (the model\'s own tokens), e.g. "<bos>tbl:a3k7\\nask:k" (the answer follows)' },
    { name: 'ids', help: 'prompt as comma-separated token ids instead of text' },
    { name: 'max-new-tokens', help: 'tokens to generate (stops early at <eos>)', default: '16' },
    { name: 'logits', help: 'write the last position\'s logits to FILE as JSON (an existing file that is not such a JSON is refused)' },
    { name: 'force', help: 'let --logits replace any existing file', flag: true },
  ], 'usage: npm run generate -- --model DIR [--adapter DIR] (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N] [--logits FILE]');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  const dir = args.str('model');
  if (!dir) throw new UsageError('--model DIR is required');
  if (args.has('prompt') === args.has('ids')) throw new UsageError('give exactly one of --prompt or --ids');
  const file = args.str('logits');
  if (file) await checkOutputFile(file, { force: args.has('force'), option: '--logits', what: 'a logits JSON written by generate', isOurs: isLogitsJson });
  const base = await loadBaseModel(await resolveModelArg(dir));
  const tk = base.tokenizer;
  if (args.has('prompt') && !tk) throw new UsageError(`${dir} has no tokenizer.json: give the prompt as token ids with --ids`);
  const ids = args.has('ids')
    ? args.list('ids')!.map((s) => parseInteger(s, `--ids: each token id (0..${base.config.vocab_size - 1})`, 0, base.config.vocab_size - 1))
    : tk!.encode(args.str('prompt')!.replace(/\\n/g, '\n'));
  if (ids.length === 0) throw new UsageError('the prompt is empty');
  const maxNewTokens = args.int('max-new-tokens', 0, 100000)!;
  // every input is read and checked before the GPU is touched
  const adapterDir = args.str('adapter');
  let adapter;
  if (adapterDir) {
    const files = await readFolder(adapterDir);
    try {
      adapter = decodeAdapter(files, base.config);
    } catch (e) {
      throw new Error(`${adapterDir}: ${(e as Error).message}`);
    }
  }
  const gpu = await createNodeGpu();
  let gen: Generator | undefined;
  try {
    checkConfigFitsDevice(base.config, gpu.device.limits);
    const model = new LlamaGpu(gpu, base.config, base.weights);
    const lora = adapter ? peftToLora(gpu, base.config, adapter) : undefined;
    gen = new Generator(model, lora);
    const eos = base.config.eos_token_id;
    const stopId = tk?.eosId ?? (Array.isArray(eos) ? eos[0] : eos) ?? undefined;
    const out = await gen.generate([ids], { maxNewTokens, lora, stopId });
    // without a tokenizer the text fields are null: only ids can be shown
    const decode = (x: number[]) => (tk && x.every((id) => id < tk.vocabSize) ? tk.decode(x) : null);
    console.log(JSON.stringify({ prompt: decode(ids), continuation: decode(out.tokens[0]), ids: out.tokens[0] }));
    if (file) {
      await writeFileAtomic(file, JSON.stringify({ ids: [...ids, ...out.tokens[0]], logits: Array.from(out.lastLogits) }) + '\n');
      console.error(`wrote ${file}`);
    }
  } finally {
    // also on an error (non-finite logits, a full disk): Dawn must not be torn down with a live device
    gen?.destroy();
    gpu.dispose();
  }
  return 0;
}
