// One writer per target, and clean-up when a command is stopped.
//
// - acquireLock(target): a lock file `.NAME.lock` beside the target (a file or a folder), created
//   exclusively (O_CREAT | O_EXCL: of two commands, exactly one creates it), holding the pid, the host,
//   the start time and the command line. A second writer is refused with a message that names the
//   first; a lock whose process is gone (killed before it could remove it) is explained, with the
//   command that removes it. The lock is removed when the command ends, on SIGINT / SIGTERM, and on
//   exit.
// - onInterrupt(fn): work to undo when the command is stopped by SIGINT or SIGTERM (a temporary
//   folder half-written, a checkpoint moved aside); the handlers run it synchronously, then die of
//   the same signal (a shell reports 130 / 143).
import { closeSync, fsyncSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The target is taken by another command (or by a stale lock): the message says which and what to do. */
export class LockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockError';
  }
}

/** Whether process `pid` runs on this host (a signal-0 probe: EPERM means it runs as another user). */
export function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `p` quoted for a POSIX shell when it needs it (for the commands the messages print). */
export function shellQuote(p: string): string {
  return /^[A-Za-z0-9_./+:=@-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

// ------------------------------------------------------------------ clean-up on SIGINT, SIGTERM, exit

const cleanups = new Set<() => string | void>();
let installed = false;

function runCleanups(): string[] {
  const said: string[] = [];
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      const s = fn();
      if (s) said.push(s);
    } catch (e) {
      said.push(`clean-up failed: ${(e as Error).message}`);
    }
  }
  return said;
}

/** Installs the SIGINT / SIGTERM / exit handlers once (a command that writes calls it; nothing else changes). */
export function installInterruptHandlers(): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      const said = runCleanups();
      writeSync(2, `interrupted (${signal})${said.length ? `: ${said.join('; ')}` : ''}\n`);
      // Die of the signal itself (default action, with this handler gone) instead of process.exit(130):
      // exit() runs native destructors, and Dawn stopped while it was still starting crashed there
      // (SIGSEGV, about 1 in 12 interrupts 50 ms after the lock) after the clean-up had already run.
      // A shell reports 128 + the signal, 130 or 143, as before.
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    });
  }
  process.on('exit', () => void runCleanups());
}

/**
 * Registers synchronous work to undo if the command is stopped (it may return what it did, in words);
 * returns the function that unregisters it once the work is no longer needed.
 */
export function onInterrupt(fn: () => string | void): () => void {
  installInterruptHandlers();
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}

// ------------------------------------------------------------------ locks

/** Every lock this process holds, so the command's end removes them whatever path it took (main.ts). */
const heldLocks = new Set<Lock>();

/** Removes every lock this process holds (main() calls it when a command ends, by a result or an error). */
export function releaseAllLocks(): void {
  for (const l of [...heldLocks]) l.release();
}

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

export interface Lock {
  /** The lock file. */
  path: string;
  /** Removes the lock file (once; only while it is still ours). */
  release(): void;
}

/** The lock file of `target`: `.NAME.lock` beside it, NAME the target's own name after following a symbolic link. */
export async function lockPathOf(target: string): Promise<string> {
  let real = path.resolve(target);
  const l = await fsp.lstat(real).catch(() => null);
  if (l?.isSymbolicLink()) real = await fsp.realpath(real).catch(() => real);
  return path.join(path.dirname(real), `.${path.basename(real)}.lock`);
}

function readLock(p: string): LockInfo | null {
  try {
    const o = JSON.parse(readFileSync(p, 'utf8')) as Partial<LockInfo>;
    if (typeof o.pid === 'number' && typeof o.host === 'string') {
      return { pid: o.pid, host: o.host, started: String(o.started ?? '?'), command: String(o.command ?? '?') };
    }
  } catch {
    // unreadable: said below
  }
  return null;
}

function who(i: LockInfo): string {
  return `pid ${i.pid} on ${i.host}, started ${i.started}: ${i.command}`;
}

/** Why `target` cannot be taken while lock file `p` exists, in words. */
function refusal(option: string, target: string, p: string): LockError {
  const info = readLock(p);
  const rm = `rm ${shellQuote(p)}`;
  if (!info) {
    return new LockError(
      `${option} ${target} is locked, and the lock file ${p} cannot be read (a command is creating it this instant, or it was left damaged); ` +
        `if no other command writes ${target}, remove it with: ${rm}`,
    );
  }
  if (info.host !== os.hostname()) {
    return new LockError(
      `${option} ${target} is locked by another machine's command (${who(info)}), which cannot be checked from ${os.hostname()}; ` +
        `wait for it to finish, or, if it is no longer running, remove the lock with: ${rm}`,
    );
  }
  if (isAlive(info.pid)) {
    return new LockError(`${option} ${target} is being written by another command (${who(info)}); wait for it to finish, or choose another path`);
  }
  return new LockError(
    `${option} ${target} is locked by a command that is no longer running (${who(info)}): it was stopped before it could remove its lock. ` +
      `If no other command writes ${target}, remove the stale lock with: ${rm}`,
  );
}

/**
 * Takes the lock of `target` for `command` (the command line, for the message another writer gets);
 * the folder it goes in must exist (lockOutputs in files.ts makes it). Throws LockError when another
 * command holds it.
 */
export async function acquireLock(target: string, option: string, command: string): Promise<Lock> {
  const p = await lockPathOf(target);
  const info: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command };
  // Handlers first: a SIGINT that lands while the lock is written (fsync can take seconds on a busy
  // disk) then waits for this synchronous block, whose end registers the lock's removal; without a
  // handler yet, the default action would kill the process and leave the lock behind.
  installInterruptHandlers();
  let fd: number;
  try {
    fd = openSync(p, 'wx'); // O_CREAT | O_EXCL
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw refusal(option, target, p);
    throw new LockError(`cannot lock ${option} ${target}: cannot create ${p} (${code ?? (e as Error).message})`);
  }
  try {
    writeSync(fd, JSON.stringify(info) + '\n');
    fsyncSync(fd);
  } catch (e) {
    // an empty lock would stop every later writer: none is left (a full disk, say)
    closeSync(fd);
    unlinkSync(p);
    throw new LockError(`cannot lock ${option} ${target}: cannot write ${p} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  closeSync(fd);
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    unregister();
    heldLocks.delete(lock);
    // only while it is still ours (someone may have removed a lock they took for stale, and locked again)
    if (readLock(p)?.pid === process.pid) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
  };
  const unregister = onInterrupt(() => {
    release();
    return `removed the lock ${p}`;
  });
  const lock: Lock = { path: p, release };
  heldLocks.add(lock);
  return lock;
}

/** Takes the locks of several targets, all or none (two options naming one target share its lock). */
export async function acquireLocks(targets: { target: string; option: string }[], command: string): Promise<Lock[]> {
  const held: Lock[] = [];
  const seen = new Set<string>();
  try {
    for (const t of targets) {
      const p = await lockPathOf(t.target);
      if (seen.has(p)) continue;
      seen.add(p);
      held.push(await acquireLock(t.target, t.option, command));
    }
  } catch (e) {
    for (const l of held) l.release();
    throw e;
  }
  return held;
}
