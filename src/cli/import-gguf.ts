// `npm run cli -- import-gguf FILE.gguf --out DIR [--force]`: a llama.cpp GGUF model (architectures
// llama, qwen2, qwen3; weights F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K) written as the
// Hugging Face folder every other command reads: config.json, model.safetensors (float32),
// tokenizer.json and tokenizer_config.json (src/storage/gguf-import.ts). The result is loaded back
// and checked as `generate --model DIR` would load it before the folder is written, atomically; an
// existing checkpoint folder is replaced only with --force.
import fsp from 'node:fs/promises';
import { decodeCheckpoint, engineConfigProblem } from '../storage/checkpoint';
import { ggufToFiles } from '../storage/gguf-import';
import { loadTokenizer } from '../tokenizers';
import { Args, UsageError } from './args';
import { checkOutputFolder, describeFsError, lockOutputs, writeFolder } from './files';
import { statOrNull } from './fs-basics';

export async function commandImportGguf(argv: string[]): Promise<number> {
  // the GGUF file is the one positional argument (before or after the options)
  const positional = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1] === '--out'));
  const args = new Args(argv.filter((a) => !positional.includes(a)), [
    { name: 'out', help: 'the folder to write (config.json, model.safetensors, tokenizer.json, tokenizer_config.json)' },
    { name: 'force', help: 'replace a folder that already holds a checkpoint', flag: true },
  ], 'usage: npm run cli -- import-gguf FILE.gguf --out DIR [--force]\n\n' +
    'Converts a llama.cpp GGUF model (llama, qwen2, qwen3; F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)\n' +
    'into a Hugging Face folder (float32 weights) that --model DIR of every command reads.');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  if (positional.length !== 1) throw new UsageError(positional.length ? `give one GGUF file, got ${positional.length}: ${positional.join(', ')}` : 'give the GGUF file to import');
  const file = positional[0];
  const out = args.str('out');
  if (!out) throw new UsageError('--out DIR is required');
  const info = await statOrNull(file);
  if (!info) throw new Error(`${file} does not exist`);
  if (!info.isFile()) throw new Error(`${file} is not a file`);
  await checkOutputFolder(out, { force: args.has('force'), option: '--out' });
  const [lock] = await lockOutputs([{ target: out, option: '--out' }], ['import-gguf', ...argv].join(' '));
  try {
    // checked again under the lock: another command may have written --out meanwhile
    await checkOutputFolder(out, { force: args.has('force'), option: '--out' });
    const bytes = new Uint8Array(await fsp.readFile(file).catch((e) => {
      throw describeFsError(e, 'read', file);
    }));
    let last = -1;
    const { files, info: what } = (() => {
      try {
        return ggufToFiles(bytes, (done, total) => {
          const pct = Math.floor((100 * done) / total);
          if (pct >= last + 10 || done === total) {
            last = pct;
            console.error(`dequantizing: ${done}/${total} tensors`);
          }
        });
      } catch (e) {
        throw new Error(`${file}: ${(e as Error).message}`);
      }
    })();
    // what is written must load as every command loads a model folder
    try {
      const ck = decodeCheckpoint(files);
      const problem = engineConfigProblem(ck.config);
      if (problem) throw new Error(problem);
      loadTokenizer(ck);
    } catch (e) {
      throw new Error(`${file}: the converted model does not load: ${(e as Error).message}`);
    }
    await writeFolder(out, files);
    const types = Object.entries(what.types).map(([t, n]) => `${n} ${t}`).join(', ');
    const size = [...files.values()].reduce((n, b) => n + b.length, 0);
    console.log(`wrote ${out}: ${what.name ?? 'a model'} (GGUF v${what.version}, ${what.architecture}; ${what.tensors} tensors: ${types}) as float32, ${(size / 1e6).toFixed(1)} MB`);
  } finally {
    lock.release();
  }
  return 0;
}
