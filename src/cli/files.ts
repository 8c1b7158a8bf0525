// Node-side file helpers for the CLI: a folder of Hugging Face / PEFT files <-> Map<name, bytes>,
// and the rules for where a command may write.
//
// What they promise:
// - Saves are atomic, and survive a crash. A file is written to a temporary sibling
//   (.NAME.tmp-<pid>-<hex>), synced, renamed over the target, and the folder synced; a folder is
//   written complete into a temporary sibling folder (every file synced, then the folder), then
//   swapped in: the old one renamed aside (.NAME.old-<pid>-<hex>), the new one renamed in, the parent
//   folder synced, the old one removed. A failure (a full disk, a read-only file system) removes the
//   temporary and leaves the target as it was. SIGINT or SIGTERM during a save removes the temporary
//   and, between the two renames, puts the old folder back (lock.ts). A process killed between the two
//   renames (SIGKILL, a power cut) leaves the old folder complete under .NAME.old-*: the next command
//   that reads or writes NAME puts it back, and reports any other leftover with the commands that use
//   or remove it (recover.ts).
// - Output paths are checked before any GPU work (checkOutputFolder, checkOutputFile): the folder
//   must be writable (probed by creating and removing a temporary sibling), not under /proc, /sys or
//   /dev, and an existing checkpoint or a file the command does not write is refused unless --force.
// - File-system errors name the path and say what went wrong in words (describeFsError).
import { rmSync, renameSync, existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { decodeCheckpoint, encodeCheckpoint, engineConfigProblem } from '../storage/checkpoint';
import { loadTokenizer } from '../tokenizers';
import type { BaseModel } from '../mas/types';
import { acquireLocks, isAlive, onInterrupt, type Lock } from './lock';
import { recoverInterrupted, saveNames } from './recover';
import { describeFsError, FileError, followLink, lstatOrNull, makeFolders, probeWritable, statOrNull } from './fs-basics';

export { describeFsError, FileError } from './fs-basics';

/**
 * The file operations the atomic writers use; tests pass one that fails (a full disk) to check nothing
 * is lost, one whose rename never returns (the process killed between two renames), or one that calls
 * this process dead (so its own leftovers are recovered as a killed process's would be).
 */
export interface WriteIo {
  writeFile(p: string, bytes: Uint8Array): Promise<void>;
  /** default fs.rename */
  rename?(from: string, to: string): Promise<void>;
  /** whether the process that left a temporary still runs (default: a signal-0 probe) */
  isAlive?(pid: number): boolean;
}

export const nodeIo: WriteIo = {
  async writeFile(p, bytes) {
    const fh = await fsp.open(p, 'wx');
    try {
      let at = 0;
      while (at < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, at, bytes.length - at);
        at += bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};

/** fsync of a folder: makes its entries (a rename, a new file) durable. File systems that cannot sync a folder are skipped. */
export async function syncFolder(dir: string): Promise<void> {
  let fh;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!['EINVAL', 'EISDIR', 'EPERM', 'EBADF', 'ENOTSUP', 'EACCES'].includes(code ?? '')) throw e;
  } finally {
    await fh?.close();
  }
}

/** Puts right what an interrupted save of `target` left beside it, and says so on stderr (recover.ts). */
export async function recoverTarget(target: string, io: WriteIo = nodeIo): Promise<string[]> {
  const notes = await recoverInterrupted(target, io.isAlive ?? isAlive);
  for (const n of notes) console.error(`note: ${n}`);
  return notes;
}

/**
 * Saves `target` atomically: `fill` writes it complete into the temporary path it is given (a file,
 * or a folder it creates), every file synced; then the temporary is renamed in (a folder target that
 * exists is swapped: the old one aside, the new one in, the old one removed) and the parent synced.
 * On a failure or an interrupt the temporary goes and the target is as it was.
 */
export async function saveAtomically(target: string, kind: 'file' | 'folder', fill: (tmp: string) => Promise<void>, io: WriteIo = nodeIo, shown = target): Promise<void> {
  const rename = io.rename ?? ((a: string, b: string) => fsp.rename(a, b));
  const parent = path.dirname(target);
  const { tmp, aside } = saveNames(target);
  const removeTmp = () => rmSync(tmp, { recursive: true, force: true });
  let unregister = onInterrupt(() => {
    if (!existsSync(tmp)) return;
    removeTmp();
    return `removed the unfinished ${tmp}`;
  });
  try {
    await fill(tmp);
    if (kind === 'folder') await syncFolder(tmp);
  } catch (e) {
    unregister();
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw describeFsError(e, 'write', shown);
  }
  const old = kind === 'folder' ? await lstatOrNull(target) : null;
  if (!old) {
    try {
      await rename(tmp, target);
      await syncFolder(parent);
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw describeFsError(e, 'write', shown);
    } finally {
      unregister();
    }
    return;
  }
  // Swap: the old folder aside, the new one in, then the old one away. If the second rename fails,
  // or the command is interrupted between the two, the old folder goes back; a kill between them
  // leaves it complete under .NAME.old-*, which the next command puts back (recoverTarget).
  unregister();
  unregister = onInterrupt(() => {
    const said: string[] = [];
    if (!existsSync(target) && existsSync(aside)) {
      renameSync(aside, target);
      said.push(`put the old ${target} back`);
    }
    if (existsSync(tmp)) {
      removeTmp();
      said.push(`removed the unfinished ${tmp}`);
    }
    if (existsSync(target) && existsSync(aside)) {
      rmSync(aside, { recursive: true, force: true });
      said.push(`removed the replaced ${aside}`);
    }
    return said.join('; ') || undefined;
  });
  try {
    try {
      await rename(target, aside);
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw describeFsError(e, 'replace', shown);
    }
    try {
      await rename(tmp, target);
      await syncFolder(parent);
    } catch (e) {
      await fsp.rename(aside, target).catch(() => undefined);
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw describeFsError(e, 'replace', shown);
    }
    await fsp.rm(aside, { recursive: true, force: true }).catch(() => undefined);
  } finally {
    unregister();
  }
}

/** Writes `bytes` to `file` atomically: a temporary sibling, synced, then renamed over it (and the folder synced). */
export async function writeFileAtomic(file: string, bytes: Uint8Array | string, io: WriteIo = nodeIo): Promise<void> {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  const target = await followLink(file);
  await recoverTarget(target, io);
  const existing = await lstatOrNull(target);
  if (existing && !existing.isFile()) throw new FileError(`cannot write ${file}: it exists and is not a regular file`);
  await makeFolders(path.dirname(target));
  await saveAtomically(target, 'file', (tmp) => io.writeFile(tmp, data), io, file);
}

/**
 * Writes a folder of files atomically: every file into a temporary sibling folder, then that folder
 * is swapped in for `dir`. An existing `dir` is replaced as a whole (files it had that are not in
 * `files` go with it), so it must hold only files, no subfolders. On failure `dir` is untouched.
 */
export async function writeFolder(dir: string, files: ReadonlyMap<string, Uint8Array>, io: WriteIo = nodeIo): Promise<void> {
  for (const name of files.keys()) {
    if (!name || name !== path.basename(name) || name === '.' || name === '..') throw new FileError(`cannot write ${dir}: bad file name ${JSON.stringify(name)}`);
  }
  const target = await followLink(dir);
  await recoverTarget(target, io);
  const old = await lstatOrNull(target);
  if (old) {
    if (!old.isDirectory()) throw new FileError(`cannot write the folder ${dir}: it exists and is not a folder`);
    const sub = (await fsp.readdir(target, { withFileTypes: true })).filter((d) => d.isDirectory());
    if (sub.length) throw new FileError(`cannot replace ${dir}: it holds folders (${sub.slice(0, 3).map((d) => d.name).join(', ')}${sub.length > 3 ? ', ...' : ''}), not only files`);
  }
  await makeFolders(path.dirname(target));
  await saveAtomically(target, 'folder', async (tmp) => {
    await fsp.mkdir(tmp);
    for (const [name, bytes] of files) await io.writeFile(path.join(tmp, name), bytes);
  }, io, dir);
}

/**
 * Takes the locks of a command's outputs (lock.ts), making the folders they go in. Call it after the
 * outputs' checks (which refuse /proc and a path through a file) and check again under the locks: an
 * output another command finished meanwhile is then seen.
 */
export async function lockOutputs(targets: { target: string; option: string }[], command: string): Promise<Lock[]> {
  for (const t of targets) await makeFolders(path.dirname(await followLink(t.target)));
  return acquireLocks(targets, command);
}

/** The files a checkpoint folder written by pretrain holds (and may be replaced with --force). */
export const CHECKPOINT_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'training_args.json', 'generation_config.json'];

/**
 * Checks an output folder before any work: creatable and writable, not virtual, and either new,
 * empty, or (with force) a folder holding only checkpoint files. Throws FileError naming the path.
 */
export async function checkOutputFolder(dir: string, opts: { force: boolean; option: string; replaceable?: readonly string[] }): Promise<void> {
  const replaceable = opts.replaceable ?? CHECKPOINT_FILES;
  await recoverTarget(await followLink(dir));
  const s = await statOrNull(dir);
  if (s && !s.isDirectory()) throw new FileError(`${opts.option} ${dir} exists and is a file, not a folder`);
  if (s) {
    const entries = (await fsp.readdir(dir, { withFileTypes: true }).catch((e) => {
      throw describeFsError(e, 'read the folder', dir);
    })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (entries.length) {
      const foreign = entries.filter((d) => !d.isFile() || !replaceable.includes(d.name)).map((d) => d.name + (d.isDirectory() ? '/' : ''));
      if (foreign.length) {
        throw new FileError(
          `${opts.option} ${dir} is not empty and holds more than a checkpoint (${listShort(foreign)}); ` +
            'choose a new or empty folder' + (opts.force ? ' (--force replaces only a folder of checkpoint files)' : ''),
        );
      }
      if (!opts.force) {
        throw new FileError(`${opts.option} ${dir} already holds a checkpoint (${listShort(entries.map((d) => d.name))}); give --force to replace it, or choose another folder`);
      }
    }
  }
  await probeWritable(dir, path.dirname(await followLink(dir)));
}

/**
 * Checks an output file before any work: its folder writable and not virtual; an existing file must
 * be a regular file, and one that `isOurs` does not recognise (what the command itself writes) is
 * refused unless force.
 */
export async function checkOutputFile(
  file: string, opts: { force: boolean; option: string; what: string; isOurs: (text: string) => boolean },
): Promise<void> {
  await recoverTarget(await followLink(file));
  const s = await statOrNull(file);
  if (s) {
    if (s.isDirectory()) throw new FileError(`${opts.option} ${file} is a folder, not a file`);
    if (!s.isFile()) throw new FileError(`${opts.option} ${file} exists and is not a regular file (a device, a pipe or a socket)`);
    if (!opts.force) {
      let ours = false;
      if (s.size <= 64 << 20) {
        const text = await fsp.readFile(file, 'utf8').catch((e) => {
          throw describeFsError(e, 'read', file);
        });
        ours = isOursSafe(opts.isOurs, text);
      }
      if (!ours) throw new FileError(`${opts.option} ${file} exists and is not ${opts.what}; give --force to replace it, or choose another file`);
    }
  }
  const parent = path.dirname(await followLink(file));
  const ps = await statOrNull(parent);
  if (!ps) throw new FileError(`${opts.option} ${file}: the folder ${path.dirname(file)} does not exist`);
  if (!ps.isDirectory()) throw new FileError(`${opts.option} ${file}: ${path.dirname(file)} is not a folder`);
  await probeWritable(file, parent);
}

/** Checks that files can be written in `dir` (made if missing) before any work, whatever it holds. */
export async function checkWritableFolder(dir: string, option: string): Promise<void> {
  const s = await statOrNull(dir);
  if (s && !s.isDirectory()) throw new FileError(`${option} ${dir} exists and is a file, not a folder`);
  await probeWritable(dir, s ? path.resolve(dir) : path.dirname(path.resolve(dir)));
}

function isOursSafe(fn: (text: string) => boolean, text: string): boolean {
  try {
    return fn(text);
  } catch {
    return false;
  }
}

function listShort(names: string[]): string {
  return names.length <= 4 ? names.join(', ') : `${names.slice(0, 4).join(', ')} and ${names.length - 4} more`;
}

/** The JSON `generate --logits` writes: {ids, logits}. */
export function isLogitsJson(text: string): boolean {
  const o = JSON.parse(text) as unknown;
  return typeof o === 'object' && o !== null && Array.isArray((o as { ids?: unknown }).ids) && Array.isArray((o as { logits?: unknown }).logits);
}

/** The JSON `experiment --json` writes (finished or partial): {args, rows, controls, ...}. */
export function isExperimentReport(text: string): boolean {
  const o = JSON.parse(text) as Record<string, unknown> | null;
  return typeof o === 'object' && o !== null && typeof o.args === 'object' && Array.isArray(o.rows) && Array.isArray(o.controls);
}

/** The files of a folder (not its subfolders); `keep` picks which by name (default: all). */
export async function readFolder(dir: string, keep: (name: string) => boolean = () => true): Promise<Map<string, Uint8Array>> {
  // a save of this folder stopped between its two renames left it aside: put it back first
  await recoverTarget(await followLink(dir));
  const info = await statOrNull(dir);
  if (!info) throw new FileError(`${dir} does not exist`);
  if (!info.isDirectory()) throw new FileError(`${dir} is not a folder`);
  const out = new Map<string, Uint8Array>();
  const names = await fsp.readdir(dir).catch((e) => {
    throw describeFsError(e, 'read the folder', dir);
  });
  for (const name of names) {
    if (!keep(name)) continue;
    const p = path.join(dir, name);
    const s = await statOrNull(p);
    if (s?.isFile()) {
      out.set(name, new Uint8Array(await fsp.readFile(p).catch((e) => {
        throw describeFsError(e, 'read', p);
      })));
    }
  }
  return out;
}

/**
 * Loads a base model folder (config.json, model.safetensors or its shards, tokenizer.json when there is
 * one: Llama, Qwen2 or Qwen3; F32, F16 or BF16); refuses what does not fit.
 */
export async function loadBaseModel(dir: string): Promise<BaseModel> {
  // a folder from the hub may also hold pytorch_model.bin, ONNX or GGUF files: only these are read
  const files = await readFolder(dir, (n) => n.endsWith('.json') || n.endsWith('.safetensors'));
  let ck;
  try {
    ck = decodeCheckpoint(files);
  } catch (e) {
    throw new Error(`${dir}: ${(e as Error).message}`);
  }
  const problem = engineConfigProblem(ck.config);
  if (problem) throw new Error(`${dir}: ${problem}`);
  let tokenizer;
  try {
    tokenizer = loadTokenizer(ck);
  } catch (e) {
    throw new Error(`${dir}: ${(e as Error).message}`);
  }
  return { id: dir, config: ck.config, weights: ck.tensors, tokenizer, tokenizerConfig: ck.tokenizerConfig ?? null };
}

export async function saveBaseModel(dir: string, m: Omit<BaseModel, 'id'>, provenance?: Record<string, unknown>, io?: WriteIo): Promise<void> {
  const files = encodeCheckpoint({ config: m.config, tensors: m.weights, tokenizer: m.tokenizer?.toJSON() ?? null, tokenizerConfig: m.tokenizerConfig ?? null });
  if (provenance) files.set('training_args.json', new TextEncoder().encode(JSON.stringify(provenance, null, 2) + '\n'));
  await writeFolder(dir, files, io);
}
