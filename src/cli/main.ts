// Command-line entry (Node, Dawn): `npm run cli -- <command> [options]`, or the npm scripts
// pretrain / generate / bench / experiment. Each command prints --help.
import { commandBench } from './bench';
import { commandEnv } from './env';
import { commandExperiment } from './experiment';
import { commandPretrain } from './pretrain';
import { commandGenerate } from './generate';
import { commandImportGguf } from './import-gguf';
import { commandHub } from './hub';
import { UsageError } from './args';
import { releaseAllLocks } from './lock';

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, { run: Command; summary: string }> = {
  env: { run: commandEnv, summary: 'show the WebGPU adapter Dawn finds and run the self-test' },
  pretrain: { run: commandPretrain, summary: 'pretrain a toy base model from scratch and write it as Hugging Face files' },
  generate: { run: commandGenerate, summary: 'greedy continuation of a prompt with a base model (and an adapter)' },
  experiment: { run: commandExperiment, summary: 'compare communication methods over seeds: train, evaluate, controls, table' },
  'import-gguf': { run: commandImportGguf, summary: 'convert a llama.cpp GGUF model (Q4_0..Q6_K, F16, ...) into a Hugging Face folder' },
  hub: { run: commandHub, summary: 'fetch a model from the Hugging Face Hub (hf:ORG/NAME[@REV]) into the cache; --model takes the same' },
  bench: { run: commandBench, summary: 'kernel and training speed beside tfjs-backend-webgpu and the CPU reference' },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const cmd = name ? COMMANDS[name] : undefined;
  if (!cmd) {
    const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(11)} ${v.summary}`);
    console.log(`usage: npm run cli -- <command> [options]   (each command has --help)\n\ncommands:\n${lines.join('\n')}`);
    return name && name !== '--help' && name !== 'help' ? 2 : 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message} (see --help)`);
      return 2;
    }
    // Bad input (a corrupt checkpoint, a missing folder, a diverging run, a lost device) is reported
    // as one line; DEBUG=1 shows the stack.
    console.error(`error: ${(e as Error).message ?? String(e)}`);
    if (process.env.DEBUG) console.error(e);
    return 1;
  } finally {
    // the locks a command took on its outputs (lock.ts) go with it, whichever way it ended
    releaseAllLocks();
  }
}
