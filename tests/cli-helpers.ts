// Shared by the CLI tests: a command run in-process with what it printed captured.
import { vi } from 'vitest';
import { main } from '../src/cli/main';

/** Runs `cmd(argv)` in-process (console.log and console.error captured, kept off the test's output): exit code and what it printed. */
export async function runCaptured(cmd: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await cmd(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    vi.restoreAllMocks();
  }
}

/** Runs `npm run cli -- argv` in-process: exit code and what it printed. */
export function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return runCaptured(main, argv);
}
