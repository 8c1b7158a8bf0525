// The file-system basics of the CLI's writers (files.ts): errors in words, paths that exist or not,
// symbolic links followed, folders made one level at a time, and the refusal of /proc, /sys and /dev.
import { type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { saveNames } from './recover';

/** A path the command cannot read or write, in words (the CLI prints it as one line). */
export class FileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileError';
  }
}

const REASONS: Record<string, string> = {
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device (disk full)',
  EDQUOT: 'the disk quota is exhausted',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder, not a file',
  EEXIST: 'it already exists',
  ENOTEMPTY: 'the folder is not empty',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EIO: 'an input/output error',
  EMFILE: 'too many open files',
  EXDEV: 'it is on another file system',
  EBUSY: 'it is busy',
  EINVAL: 'the path is not valid here',
};

/** `cannot <action> <path>: <reason in words> (<CODE>)`. */
export function describeFsError(e: unknown, action: string, p: string): FileError {
  if (e instanceof FileError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code;
  const reason = code && REASONS[code] ? `${REASONS[code]} (${code})` : (err?.message ?? String(e));
  return new FileError(`cannot ${action} ${p}: ${reason}`);
}

const VIRTUAL = ['/proc', '/sys', '/dev'];


export async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw describeFsError(e, 'inspect', p);
  }
}

export async function statOrNull(p: string): Promise<Stats | null> {
  try {
    return await fsp.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOTDIR: a part of the path is a file; nearestExisting says which
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw describeFsError(e, 'inspect', p);
  }
}

/** The nearest ancestor of `p` (or `p`) that exists, with the missing levels below it, top first. */
export async function nearestExisting(p: string, shown = p): Promise<{ existing: string; missing: string[] }> {
  const missing: string[] = [];
  let at = path.resolve(p);
  for (;;) {
    const s = await statOrNull(at);
    if (s) {
      if (!s.isDirectory()) throw new FileError(`cannot write under ${shown}: ${at} is a file, not a folder`);
      return { existing: at, missing };
    }
    const up = path.dirname(at);
    if (up === at) throw new FileError(`cannot write under ${shown}: no part of the path exists`);
    missing.unshift(at);
    at = up;
  }
}

/** Refuses /proc, /sys and /dev (virtual file systems: a write there hangs or does something else). */
export async function refuseVirtual(p: string, existing: string): Promise<void> {
  const real = await fsp.realpath(existing).catch(() => existing);
  for (const v of VIRTUAL) {
    if (real === v || real.startsWith(v + '/')) throw new FileError(`cannot write under ${p}: ${v} is a virtual file system, not a place for files`);
  }
}

/** `p`, or where it leads when it is a symbolic link (so the link's target is what gets replaced, and the link stays). */
export async function followLink(p: string): Promise<string> {
  const l = await lstatOrNull(p);
  if (!l?.isSymbolicLink()) return path.resolve(p);
  try {
    return await fsp.realpath(p);
  } catch (e) {
    throw describeFsError(e, 'follow the link', p);
  }
}

/** mkdir -p one level at a time (Node's recursive mkdir loops forever under /proc and calls EROFS ENOENT). */
export async function makeFolders(p: string): Promise<void> {
  const { existing, missing } = await nearestExisting(p);
  await refuseVirtual(p, existing);
  for (const dir of missing) {
    try {
      await fsp.mkdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw describeFsError(e, 'create the folder', dir);
    }
  }
}

/** Probes that files can be created in `dir` (or its nearest existing ancestor) by making and removing a temporary folder. */
export async function probeWritable(target: string, dir: string): Promise<void> {
  const { existing } = await nearestExisting(dir, target);
  await refuseVirtual(target, existing);
  const probe = saveNames(path.join(existing, path.basename(target) || 'out')).tmp;
  try {
    await fsp.mkdir(probe);
  } catch (e) {
    throw describeFsError(e, 'write', target);
  }
  await fsp.rmdir(probe).catch(() => undefined);
}
