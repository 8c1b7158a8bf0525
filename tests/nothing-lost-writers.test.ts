// Issue 20, "Nothing lost, nothing read from outside", writing side: items 4-8, one row per case, numbered
// as in the issue, so this file can be held against it (the reading side is tests/nothing-lost-2.test.ts).
// Exact messages, and the files before and after. Crash safety is shown twice: a kill between the two
// renames of a save played in-process (an io whose second rename never returns), and a real SIGKILL
// (and SIGINT) of a child process (tests/fixtures/writer-child.ts). Items 7 and 8 are mostly the PyTorch
// companion's (python/tests/test_bundle_safety.py); the engine's side of 7 reads the same fixture of
// hostile paths (tests/fixtures/bundle-paths.json). Everything here runs without a GPU except 4d.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkOutputFolder, lockOutputs, loadBaseModel, nodeIo, readFolder, recoverTarget, writeFileAtomic, writeFolder, type WriteIo } from '../src/cli/files';
import { acquireLock, LockError, releaseAllLocks } from '../src/cli/lock';
import { checkSaveAdapters } from '../src/cli/save-adapters';
import { LIMITS } from '../src/mas/methods';
import { MAX_AGENTS, MAX_LATENT_STEPS } from '../src/mas/topology';
import { bundleKeyProblem, bundlePathProblem } from '../src/storage/bundle-paths';
import { readRunBundle, RunBundleError } from '../src/storage/run-bundle';
import fixture from './fixtures/bundle-paths.json';
import { cli } from './cli-helpers';

const TINY = 'public/models/tiny';
const enc = new TextEncoder();
const HOST = os.hostname();
let work: string;
let child: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'nothing-lost-writers-'));
  child = path.join(work, 'writer-child.mjs');
  execFileSync(process.execPath, ['scripts/bundle.mjs', 'tests/fixtures/writer-child.ts', child]);
});
afterAll(async () => {
  releaseAllLocks();
  await rm(work, { recursive: true, force: true });
});

let n = 0;
const fresh = (name = 'f') => path.join(work, `${name}-${n++}`);

async function tinyCopy(): Promise<string> {
  const d = fresh('tiny');
  await writeFolder(d, await readFolder(TINY));
  return d;
}

/** Every file under `dir` (relative path -> base64), folders as 'name/'. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (sub: string) => {
    for (const d of (await readdir(path.join(dir, sub), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const rel = sub ? `${sub}/${d.name}` : d.name;
      if (d.isDirectory()) {
        out[`${rel}/`] = '';
        await walk(rel);
      } else out[rel] = (await readFile(path.join(dir, rel))).toString('base64');
    }
  };
  await walk('');
  return out;
}

/** Names in `dir` that are leftovers of saves (.NAME.tmp-* or .NAME.old-*) or locks. */
async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((x) => /\.(tmp|old)-|\.lock$/.test(x)).sort();
}

/** recoverTarget, its notes (also printed as `note: ...`) returned and kept off the test's output. */
async function recover(target: string, io?: WriteIo): Promise<string[]> {
  const { value, err } = await stderrOf(() => recoverTarget(target, io));
  expect(err).toEqual(value.map((v) => `note: ${v}`));
  return value;
}

/** Captures console.error around `fn` (recovery notes). */
async function stderrOf<T>(fn: () => Promise<T>): Promise<{ value: T; err: string[] }> {
  const err: string[] = [];
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    return { value: await fn(), err };
  } finally {
    vi.restoreAllMocks();
  }
}

interface Child { pid: number; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>; line: Promise<string> }

/** Starts tests/fixtures/writer-child.ts (bundled) with `args`; `line` resolves at its first line of output. */
function startChild(args: string[]): Child {
  const p = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let firstLine: (s: string) => void = () => undefined;
  const line = new Promise<string>((r) => (firstLine = r));
  p.stdout.on('data', (b) => {
    out += String(b);
    if (out.includes('\n')) firstLine(out.split('\n')[0]);
  });
  p.stderr.on('data', (b) => void (err += String(b)));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((r) => p.on('exit', (code, signal) => r({ code, signal, out, err })));
  return { pid: p.pid!, done, line };
}

/** A pid no process has any more (a child that ran and exited). */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => p.on('exit', r));
  return p.pid!;
}

const ADAPTER = new Map([['adapter_config.json', enc.encode('{"r":2}')], ['adapter_model.safetensors', new Uint8Array(16)]]);

// ---------------------------------------------------------------------------------- data loss

describe('4. experiment --save-adapters replaces nothing without --force', () => {
  it('4a. a DIR/base holding notes.txt is refused before any GPU work, even with --force, and nothing changes', async () => {
    const dir = fresh('save');
    await mkdir(path.join(dir, 'base'), { recursive: true });
    await writeFile(path.join(dir, 'base', 'notes.txt'), 'mine');
    const before = await tree(dir);
    const argv = ['experiment', '--preset', 'tiny', '--methods', 'diffmas', '--seeds', '1', '--save-adapters', dir];
    const r = await cli(argv);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --save-adapters ${dir} holds files this command does not write, which replacing their folders would delete (base/notes.txt); choose another folder`);
    expect(r.out).toBe(''); // refused before the GPU was asked for
    const f = await cli([...argv, '--force']);
    expect(f.err).toBe(`error: --save-adapters ${dir} holds files this command does not write, which replacing their folders would delete (base/notes.txt); choose another folder (--force replaces only base and adapter folders)`);
    expect(await tree(dir)).toEqual(before);
    expect(await leftovers(work)).toEqual([]); // no lock left behind
  });
  it('4b. the folders of an earlier run (another base, diffmas/seed1/a0) are refused without --force, untouched', async () => {
    const dir = fresh('save');
    await writeFolder(path.join(dir, 'base'), new Map([['config.json', enc.encode('{"other":true}')]]));
    await writeFolder(path.join(dir, 'diffmas', 'seed1', 'a0'), ADAPTER);
    const before = await tree(dir);
    const r = await cli(['experiment', '--preset', 'tiny', '--methods', 'single,diffmas', '--seeds', '1', '--save-adapters', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --save-adapters ${dir} already holds base/, diffmas/seed1/a0/ of an earlier run; give --force to replace them, or choose another folder`);
    expect(await tree(dir)).toEqual(before);
  });
  it('4c. --force replaces only base and adapter folders; a base equal to the model is kept as it is; untrained methods write nothing', async () => {
    const dir = fresh('save');
    await writeFolder(path.join(dir, 'base'), new Map([['config.json', enc.encode('{"other":true}')]]));
    await writeFolder(path.join(dir, 'diffmas', 'seed2', 'shared'), ADAPTER);
    const opts = { methods: ['diffmas'], seeds: [2], modelDir: TINY };
    await expect(checkSaveAdapters(dir, { ...opts, force: true })).resolves.toEqual({ writeBase: true });
    await writeFolder(path.join(dir, 'base'), await readFolder(TINY));
    await expect(checkSaveAdapters(dir, { ...opts, force: true })).resolves.toEqual({ writeBase: false });
    await expect(checkSaveAdapters(dir, { ...opts, force: false })).rejects.toThrow(`--save-adapters ${dir} already holds diffmas/seed2/shared/ of an earlier run`);
    await expect(checkSaveAdapters(dir, { ...opts, methods: ['single', 'text'], force: false })).resolves.toEqual({ writeBase: false });
    await writeFile(path.join(dir, 'diffmas', 'seed2', 'shared', 'notes.txt'), 'mine');
    await expect(checkSaveAdapters(dir, { ...opts, force: true })).rejects.toThrow(
      `--save-adapters ${dir} holds files this command does not write, which replacing their folders would delete (diffmas/seed2/shared/notes.txt)`,
    );
  });
  it('4d. a second run into the same DIR is refused without --force; with it the adapters are replaced and a file beside them stays', async () => {
    const dir = fresh('save');
    const argv = ['experiment', '--preset', 'tiny', '--methods', 'diffmas', '--seeds', '1', '--steps', '1', '--eval-size', '2', '--batch', '2', '--no-controls', '--quiet', '--save-adapters', dir];
    expect((await cli(argv)).code).toBe(0);
    expect(Object.keys(await tree(dir)).filter((k) => !k.endsWith('/'))).toEqual([
      ...[...(await readFolder(TINY)).keys()].sort().map((k) => `base/${k}`),
      'diffmas/seed1/a0/adapter_config.json', 'diffmas/seed1/a0/adapter_model.safetensors',
      'diffmas/seed1/a1/adapter_config.json', 'diffmas/seed1/a1/adapter_model.safetensors',
    ]);
    await writeFile(path.join(dir, 'README.txt'), 'what these adapters are');
    const before = await tree(dir);
    const r = await cli(argv);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --save-adapters ${dir} already holds diffmas/seed1/a0/, diffmas/seed1/a1/ of an earlier run; give --force to replace them, or choose another folder`);
    expect(await tree(dir)).toEqual(before);
    expect((await cli([...argv, '--force'])).code).toBe(0);
    expect(await readFile(path.join(dir, 'README.txt'), 'utf8')).toBe('what these adapters are');
    expect(await leftovers(dir)).toEqual([]);
    expect(await leftovers(work)).toEqual([]);
  });
});

describe('5. one writer per target: a lock file, a second writer refused', () => {
  it('5a. pretrain into an --out another process is writing is refused with its pid and command; SIGINT removes that lock', async () => {
    const out = fresh('run');
    const holder = startChild(['hold-lock', out]);
    expect(await holder.line).toBe('locked');
    const lockFile = path.join(work, `.${path.basename(out)}.lock`);
    const info = JSON.parse(await readFile(lockFile, 'utf8')) as Record<string, unknown>;
    expect(info).toEqual({ pid: holder.pid, host: HOST, started: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), command: `pretrain --preset tiny --out ${out} (writer-child)` });
    const r = await cli(['pretrain', '--preset', 'tiny', '--steps', '1', '--out', out, '--no-eval']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --out ${out} is being written by another command (pid ${holder.pid} on ${HOST}, started ${info.started}: ${info.command}); wait for it to finish, or choose another path`);
    expect(r.out).not.toMatch(/device:/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(lockFile)).toBe(true); // the refused writer leaves the holder's lock alone
    process.kill(holder.pid, 'SIGINT');
    const end = await holder.done;
    expect([end.code, end.signal]).toEqual([null, 'SIGINT']); // dies of the signal after its clean-up (a shell says 130)
    expect(end.err.trim()).toBe(`interrupted (SIGINT): removed the lock ${lockFile}`);
    expect(existsSync(lockFile)).toBe(false);
  });
  it("5a'. two real pretrain processes into one new --out: the second is refused while the first trains; SIGINT stops the first and takes its lock", async () => {
    const out = fresh('run');
    const lockFile = path.join(work, `.${path.basename(out)}.lock`);
    const argv = ['pretrain', '--preset', 'tiny', '--steps', '100000', '--log-every', '100000', '--out', out, '--no-eval'];
    const first = spawn(process.execPath, ['scripts/run-cli.mjs', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let firstErr = '';
    first.stderr.on('data', (b) => void (firstErr += String(b)));
    let exited = false;
    const firstEnd = new Promise<[number | null, NodeJS.Signals | null]>((r) => first.on('exit', (code, signal) => ((exited = true), r([code, signal]))));
    while (!existsSync(lockFile)) {
      if (exited) throw new Error(`the first pretrain ended before it locked --out: ${firstErr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const info = JSON.parse(await readFile(lockFile, 'utf8')) as { pid: number; started: string; command: string };
    expect(info.command).toBe(argv.join(' '));
    const r = await cli(argv);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --out ${out} is being written by another command (pid ${info.pid} on ${HOST}, started ${info.started}: ${argv.join(' ')}); wait for it to finish, or choose another path`);
    first.kill('SIGINT');
    expect(await firstEnd).toEqual([null, 'SIGINT']);
    expect(firstErr).toContain(`interrupted (SIGINT): removed the lock ${lockFile}`);
    expect(existsSync(lockFile)).toBe(false);
    expect(existsSync(out)).toBe(false); // stopped before its save: no checkpoint, no leftovers
    expect(await leftovers(work)).toEqual([]);
  }, 120_000);
  it('5b. two experiment --resume --json r.json: the second is refused and r.json keeps the first one\'s report', async () => {
    const dir = fresh('resume');
    await mkdir(dir);
    const json = path.join(dir, 'r.json');
    const report = JSON.stringify({ args: { task: 'lookup' }, rows: [{ method: 'single', seed: 1 }], controls: [] });
    await writeFile(json, report);
    const [held] = await lockOutputs([{ target: json, option: '--json' }], 'experiment --resume --json r.json (the first)');
    const started = (JSON.parse(await readFile(held.path, 'utf8')) as { started: string }).started;
    const r = await cli(['experiment', '--preset', 'tiny', '--methods', 'text', '--seeds', '1', '--resume', '--json', json]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --json ${json} is being written by another command (pid ${process.pid} on ${HOST}, started ${started}: experiment --resume --json r.json (the first)); wait for it to finish, or choose another path`);
    expect(await readFile(json, 'utf8')).toBe(report);
    held.release();
    expect(await readdir(dir)).toEqual(['r.json']);
  });
  it('5c. a stale lock (its process killed) is explained with the command that removes it; after that the target is free', async () => {
    const out = fresh('run');
    const holder = startChild(['hold-lock', out]);
    await holder.line;
    process.kill(holder.pid, 'SIGKILL');
    expect((await holder.done).signal).toBe('SIGKILL');
    const lockFile = path.join(work, `.${path.basename(out)}.lock`);
    const info = JSON.parse(await readFile(lockFile, 'utf8')) as { started: string; command: string };
    const r = await cli(['pretrain', '--preset', 'tiny', '--steps', '1', '--out', out, '--no-eval']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `error: --out ${out} is locked by a command that is no longer running (pid ${holder.pid} on ${HOST}, started ${info.started}: ${info.command}): ` +
        `it was stopped before it could remove its lock. If no other command writes ${out}, remove the stale lock with: rm ${lockFile}`,
    );
    await rm(lockFile); // what the message says to run
    await checkOutputFolder(out, { force: false, option: '--out' });
    const [lock] = await lockOutputs([{ target: out, option: '--out' }], 'test');
    lock.release();
    expect(existsSync(lockFile)).toBe(false);
  });
  it('5d. the lock is created exclusively: of 8 writers at once exactly one gets it', async () => {
    const target = fresh('race');
    const all = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => acquireLock(target, '--out', `writer ${i}`)));
    const won = all.filter((a) => a.status === 'fulfilled');
    expect(won.length).toBe(1);
    for (const a of all) if (a.status === 'rejected') expect(a.reason).toBeInstanceOf(LockError);
    (won[0] as PromiseFulfilledResult<{ release(): void }>).value.release();
    expect(await leftovers(work)).toEqual([]);
  });
  it('5e. a command that fails after taking its locks removes them', async () => {
    const dir = fresh('fails');
    await mkdir(dir);
    const r = await cli(['experiment', '--model', path.join(dir, 'absent'), '--methods', 'single', '--seeds', '1', '--json', path.join(dir, 'r.json'), '--export-run', path.join(dir, 'runs')]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: ${path.join(dir, 'absent')} does not exist`);
    expect(await readdir(dir)).toEqual([]);
  });
  it('5f. pretrain --evaluate DIR (it rewrites DIR/training_args.json) waits its turn the same way', async () => {
    const dir = await tinyCopy();
    const before = await tree(dir);
    const [held] = await lockOutputs([{ target: dir, option: '--out' }], 'pretrain --force --out DIR (the first)');
    const started = (JSON.parse(await readFile(held.path, 'utf8')) as { started: string }).started;
    const r = await cli(['pretrain', '--evaluate', dir, '--eval-size', '2']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: --evaluate ${dir} is being written by another command (pid ${process.pid} on ${HOST}, started ${started}: pretrain --force --out DIR (the first)); wait for it to finish, or choose another path`);
    held.release();
    expect(await tree(dir)).toEqual(before);
  });
  it('5g. SIGTERM removes the lock as SIGINT does (then dies of SIGTERM: a shell says 143)', async () => {
    const out = fresh('run');
    const holder = startChild(['hold-lock', out]);
    await holder.line;
    const lockFile = path.join(work, `.${path.basename(out)}.lock`);
    process.kill(holder.pid, 'SIGTERM');
    const end = await holder.done;
    expect([end.code, end.signal, end.err.trim()]).toEqual([null, 'SIGTERM', `interrupted (SIGTERM): removed the lock ${lockFile}`]);
    expect(existsSync(lockFile)).toBe(false);
  });
});

describe('6. a save survives a kill, and SIGINT cleans up', () => {
  /** A checkpoint folder holding `tag` in a file, to tell old from new. */
  const files = (tag: string) => new Map([['config.json', enc.encode(`{"tag":"${tag}"}`)], ['model.safetensors', new Uint8Array(64).fill(tag.length)]]);
  const killed: WriteIo['isAlive'] = () => false; // this process plays the killed one

  it('6a. a kill between the two renames (played in-process) leaves the old folder aside; the next run puts it back and keeps the new one', async () => {
    const target = fresh('ckpt');
    await writeFolder(target, files('old'));
    const before = await tree(target);
    let renames = 0;
    const io: WriteIo = { ...nodeIo, rename: (a, b) => (++renames === 2 ? new Promise<void>(() => undefined) : rename(a, b)) };
    void writeFolder(target, files('new one'), io); // never finishes: the process "dies" before the second rename
    while (renames < 2) await new Promise((r) => setTimeout(r, 5));
    const left = await leftovers(work);
    const name = path.basename(target);
    expect(left).toEqual([expect.stringMatching(new RegExp(`^\\.${name}\\.old-${process.pid}-[0-9a-f]{8}$`)), expect.stringMatching(new RegExp(`^\\.${name}\\.tmp-${process.pid}-[0-9a-f]{8}$`))]);
    expect(existsSync(target)).toBe(false); // nothing under the name: what the audit found
    const [old, tmp] = left.map((l) => path.join(work, l));
    const notes = await recover(target, { ...nodeIo, isAlive: killed });
    expect(notes).toEqual([
      `${target} was missing: a save stopped half-way (pid ${process.pid}) had moved it aside to ${old}; the old copy is back under ${target}`,
      `the new copy that stopped save had written completely is kept as ${tmp}: to use it instead, run: rm -r ${target} && mv ${tmp} ${target}; to discard it: rm -r ${tmp}`,
    ]);
    expect(await tree(target)).toEqual(before);
    expect(await tree(tmp)).toEqual(await (async () => {
      const d = fresh('expect');
      await writeFolder(d, files('new one'));
      return tree(d);
    })());
    await rm(tmp, { recursive: true });
  });
  it('6b. a real SIGKILL between the renames: the next command finds the checkpoint again (the old one) and says so', async () => {
    const target = await tinyCopy();
    const before = await tree(target);
    const source = fresh('src');
    await writeFolder(source, await readFolder(target));
    await writeFile(path.join(source, 'training_args.json'), '{"new":true}');
    const c = startChild(['kill-between', target, source]);
    const end = await c.done;
    expect(end.signal).toBe('SIGKILL');
    expect(existsSync(target)).toBe(false);
    const left = await leftovers(work);
    const old = path.join(work, left.find((l) => l.includes(`.old-${c.pid}-`))!);
    const tmp = path.join(work, left.find((l) => l.includes(`.tmp-${c.pid}-`))!);
    // the next command (another process would do the same): it reads the folder, finds it aside, puts it back
    const r = await cli(['pretrain', '--preset', 'tiny', '--steps', '1', '--out', target, '--no-eval']);
    expect(r.err.split('\n')).toEqual([
      `note: ${target} was missing: a save stopped half-way (pid ${c.pid}) had moved it aside to ${old}; the old copy is back under ${target}`,
      `note: the new copy that stopped save had written completely is kept as ${tmp}: to use it instead, run: rm -r ${target} && mv ${tmp} ${target}; to discard it: rm -r ${tmp}`,
      `error: --out ${target} already holds a checkpoint (config.json, model.safetensors, tokenizer.json, training_args.json); give --force to replace it, or choose another folder`,
    ]);
    expect(await tree(target)).toEqual(before);
    expect(await tree(tmp)).toEqual(await tree(source)); // the new one is complete: it was synced before the first rename
    // the leftover is reported again until the user decides; then nothing is left
    expect((await stderrOf(() => loadBaseModel(target))).err).toEqual([expect.stringMatching(/^note: .* is what a save of .* stopped before its end .* may be incomplete\. To discard it: rm -r /)]);
    await rm(tmp, { recursive: true });
    expect(await leftovers(work)).toEqual([]);
  });
  it('6c. a kill after the swap, before the old copy was removed: the next save or read removes it', async () => {
    const target = fresh('ckpt');
    await writeFolder(target, files('new'));
    const pid = await deadPid();
    const old = path.join(work, `.${path.basename(target)}.old-${pid}-0badc0de`);
    await writeFolder(old, files('old'));
    const { value, err } = await stderrOf(() => readFolder(target));
    expect(new TextDecoder().decode(value.get('config.json'))).toBe('{"tag":"new"}');
    expect(err).toEqual([`note: removed ${old}, the old copy of ${target} that a save stopped at its very end (pid ${pid}) had not removed yet`]);
    expect(existsSync(old)).toBe(false);
  });
  it('6d. a half-written temporary of a killed save beside the target is reported with the command to remove it, never guessed complete', async () => {
    const target = fresh('ckpt');
    await writeFolder(target, files('kept'));
    const before = await tree(target);
    const pid = await deadPid();
    const tmp = path.join(work, `.${path.basename(target)}.tmp-${pid}-12345678`);
    await mkdir(tmp);
    await writeFile(path.join(tmp, 'config.json'), '{"ta');
    const notes = await recover(target);
    expect(notes).toEqual([`${tmp} is what a save of ${target} stopped before its end (pid ${pid}) had written; it may be incomplete. To discard it: rm -r ${tmp}`]);
    expect(await tree(target)).toEqual(before);
    expect(existsSync(tmp)).toBe(true);
    await rm(tmp, { recursive: true });
    // beside a missing target it is offered with mv, not moved in
    const gone = fresh('gone');
    const tmp2 = path.join(work, `.${path.basename(gone)}.tmp-${pid}-9abcdef0`);
    await mkdir(tmp2);
    expect(await recover(gone)).toEqual([
      `${tmp2} is what a save of ${gone} stopped before its end (pid ${pid}) had written; it may be incomplete. To discard it: rm -r ${tmp2}; if you know it is complete, use it with: mv ${tmp2} ${gone}`,
    ]);
    expect(existsSync(gone)).toBe(false);
    await rm(tmp2, { recursive: true });
  });
  it('6e. what a running process has beside the target (its save in progress) is left alone', async () => {
    const target = fresh('ckpt');
    const mine = path.join(work, `.${path.basename(target)}.old-${process.pid}-00000000`);
    await writeFolder(mine, files('in progress'));
    expect(await recover(target)).toEqual([]);
    expect(existsSync(mine)).toBe(true);
    expect(existsSync(target)).toBe(false);
    await rm(mine, { recursive: true });
  });
  it('6f. SIGINT while the files are written removes the temporary and leaves the target as it was', async () => {
    const target = fresh('ckpt');
    await writeFolder(target, files('old'));
    const before = await tree(target);
    const source = fresh('src');
    await writeFolder(source, files('new'));
    const c = startChild(['int-writing', target, source]);
    const end = await c.done;
    expect([end.code, end.signal]).toEqual([null, 'SIGINT']);
    expect(end.err.trim()).toMatch(new RegExp(`^interrupted \\(SIGINT\\): removed the unfinished ${work}/\\.${path.basename(target)}\\.tmp-${c.pid}-[0-9a-f]{8}$`));
    expect(await tree(target)).toEqual(before);
    expect(await leftovers(work)).toEqual([]);
  });
  it('6g. SIGINT between the two renames puts the old folder back', async () => {
    const target = fresh('ckpt');
    await writeFolder(target, files('old'));
    const before = await tree(target);
    const source = fresh('src');
    await writeFolder(source, files('new'));
    const c = startChild(['int-between', target, source]);
    const end = await c.done;
    expect([end.code, end.signal]).toEqual([null, 'SIGINT']);
    expect(end.err.trim()).toMatch(new RegExp(`^interrupted \\(SIGINT\\): put the old ${target} back; removed the unfinished ${work}/\\.${path.basename(target)}\\.tmp-${c.pid}-[0-9a-f]{8}$`));
    expect(await tree(target)).toEqual(before);
    expect(await leftovers(work)).toEqual([]);
  });
  it('6h. a report rewrite killed before its rename leaves the previous report; the temporary is reported, not read', async () => {
    const dir = fresh('report');
    await mkdir(dir);
    const json = path.join(dir, 'r.json');
    await writeFileAtomic(json, '{"args":{},"rows":[],"controls":[]}\n');
    let renamed = false;
    void writeFileAtomic(json, '{"args":{},"rows":[1],"controls":[]}\n', { ...nodeIo, rename: () => ((renamed = true), new Promise<void>(() => undefined)) });
    while (!renamed) await new Promise((r) => setTimeout(r, 5));
    expect(await readFile(json, 'utf8')).toBe('{"args":{},"rows":[],"controls":[]}\n');
    const [tmp] = (await readdir(dir)).filter((x) => x !== 'r.json');
    expect(await recover(json, { ...nodeIo, isAlive: killed })).toEqual([
      `${path.join(dir, tmp)} is what a save of ${json} stopped before its end (pid ${process.pid}) had written; it may be incomplete. To discard it: rm -r ${path.join(dir, tmp)}`,
    ]);
  });
});

// ---------------------------------------------------------------------------------- reading outside the bundle

describe('7. run.json paths stay inside the bundle: one rule, the same cases as the companion', () => {
  const TAIL = '; a path in a run bundle is relative to its root and stays inside it';
  /** A bundle's run.json just complete enough to reach the path checks (they come before any file is read). */
  function runJson(files: Record<string, unknown>): Map<string, Uint8Array> {
    const json = {
      format: 'latent-playground-run', version: 1, config: { task: 'lookup', method: 'text', topology: {}, seed: 1 },
      agents: [{ id: 'a0', final: false, predecessors: [] }, { id: 'a1', final: true, predecessors: ['a0'] }],
      files: { base: 'base', adapters: {}, initialAdapters: {}, latentMap: null, episodes: {}, batches: null, ...files },
    };
    return new Map([['run.json', enc.encode(JSON.stringify(json))]]);
  }
  it(`7a. the rule on the shared fixture: ${fixture.hostile.length} hostile paths refused in words, ${fixture.fine.length} fine ones accepted`, () => {
    for (const h of fixture.hostile) expect([h.path, bundlePathProblem(h.path)]).toEqual([h.path, h.problem]);
    for (const p of fixture.fine) expect(bundlePathProblem(p)).toBeNull();
    for (const h of fixture.hostileKeys) expect(bundleKeyProblem(h.key)).toBe(h.problem);
  });
  it.each(['base', 'adapters', 'initialAdapters', 'latentMap', 'episodes', 'batches'])('7b. the engine\'s reader refuses every hostile path as files.%s, with the companion\'s message', (field) => {
    for (const h of fixture.hostile) {
      if (field === 'latentMap' && h.path === null) continue; // null: no latent map
      const p = h.path as unknown;
      const [files, where] = {
        base: [{ base: p }, 'files.base'],
        adapters: [{ adapters: { a0: p } }, 'files.adapters.a0'],
        initialAdapters: [{ initialAdapters: { a0: p } }, 'files.initialAdapters.a0'],
        latentMap: [{ latentMap: p }, 'files.latentMap'],
        episodes: [{ episodes: { heldout: { path: p, count: 1 } } }, 'files.episodes.heldout.path'],
        batches: [{ batches: { path: p, count: 1 } }, 'files.batches.path'],
      }[field] as [Record<string, unknown>, string];
      if (field === 'base' && typeof p !== 'string') continue; // the shape check names a base that is not a string first
      const err = (() => {
        try {
          readRunBundle(runJson(files));
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(RunBundleError);
      expect(err!.message).toBe(`run bundle: run.json: ${where} ${JSON.stringify(p)} ${h.problem}${TAIL}`);
    }
  });
  it('7c. an adapter key that is not a folder name (the "../../x" of the audit) is refused the same way', () => {
    for (const h of fixture.hostileKeys) {
      expect(() => readRunBundle(runJson({ adapters: { [h.key]: 'adapters/a0' } }))).toThrow(`run bundle: run.json: files.adapters key ${JSON.stringify(h.key)} ${h.problem}${TAIL}`);
    }
  });
});

describe('8. run.json is held to the engine\'s limits before allocation (the companion; python/tests/test_bundle_safety.py)', () => {
  it("8a. the companion's limits are the engine's LIMITS, MAX_LATENT_STEPS and MAX_AGENTS (its own test checks the same from its side)", async () => {
    const py = await readFile('python/latent_playground/bundle_safety.py', 'utf8');
    const block = /LIMITS = \{([\s\S]*?)\n\}/.exec(py)![1];
    const companion = Object.fromEntries([...block.matchAll(/"(\w+)": \(([\d._e-]+), ([\d._e-]+)\)/g)].map((m) => [m[1], [Number(m[2].replace(/_/g, '')), Number(m[3].replace(/_/g, ''))]]));
    expect(companion).toEqual(Object.fromEntries(Object.entries(LIMITS).map(([k, v]) => [k, [...v]])));
    expect(Number(/MAX_LATENT_STEPS = (\d+)/.exec(py)![1])).toBe(MAX_LATENT_STEPS);
    expect(Number(/MAX_AGENTS = (\d+)/.exec(py)![1])).toBe(MAX_AGENTS);
  });
});

describe('Also', () => {
  it('Also-a. the leftovers of a stopped save (model-sized) are cleaned or reported by the next command that touches the name', async () => {
    // 6a-6h show each case; here all at once for one name: what stays is only what the notes list
    const target = fresh('ckpt');
    await writeFolder(target, new Map([['config.json', enc.encode('{}')]]));
    const pid = await deadPid();
    const b = path.basename(target);
    await mkdir(path.join(work, `.${b}.old-${pid}-aaaaaaaa`));
    await mkdir(path.join(work, `.${b}.tmp-${pid}-bbbbbbbb`));
    const notes = await recover(target);
    expect(notes.length).toBe(2);
    expect(notes[0]).toBe(`removed ${path.join(work, `.${b}.old-${pid}-aaaaaaaa`)}, the old copy of ${target} that a save stopped at its very end (pid ${pid}) had not removed yet`);
    expect(await leftovers(work)).toEqual([`.${b}.tmp-${pid}-bbbbbbbb`]);
    await rm(path.join(work, `.${b}.tmp-${pid}-bbbbbbbb`), { recursive: true });
    expect(await lstat(target).then((s) => s.isDirectory())).toBe(true);
  });
});
