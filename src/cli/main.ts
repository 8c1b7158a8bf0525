// Command-line entry (Node, Dawn): `npm run cli -- <command> [options]`, or the npm scripts
// pretrain / generate / bench / experiment. Each command prints --help.
import { commandEnv } from './env';

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, { run: Command; summary: string }> = {
  env: { run: commandEnv, summary: 'show the WebGPU adapter Dawn finds and run the self-test' },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const cmd = name ? COMMANDS[name] : undefined;
  if (!cmd) {
    const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(11)} ${v.summary}`);
    console.log(`usage: npm run cli -- <command> [options]   (each command has --help)\n\ncommands:\n${lines.join('\n')}`);
    return name && name !== '--help' && name !== 'help' ? 2 : 0;
  }
  return cmd.run(rest);
}
