// `experiment --save-adapters DIR` writes DIR/base (a copy of the base model folder) and one PEFT folder
// per trained adapter, DIR/<method>/seed<k>/<agent>. checkSaveAdapters refuses, before any GPU work,
// to replace any of them without --force, and anything else they hold even with it (issue 20 item 4).
import { FUSER_FILE } from '../storage/c2c-fuser';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { METHOD_SPECS } from '../mas/methods';
import type { MethodName } from '../worker/api';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../storage/peft';
import { CHECKPOINT_FILES, checkWritableFolder, FileError, readFolder } from './files';

const ADAPTER_FILES: readonly string[] = [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE];

function listShort(names: string[]): string {
  return names.length <= 4 ? names.join(', ') : `${names.slice(0, 4).join(', ')} and ${names.length - 4} more`;
}

function sameFiles(a: ReadonlyMap<string, Uint8Array>, b: ReadonlyMap<string, Uint8Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.length !== v.length || !Buffer.from(w.buffer, w.byteOffset, w.length).equals(Buffer.from(v.buffer, v.byteOffset, v.length))) return false;
  }
  return true;
}

const entries = (dir: string) => fsp.readdir(dir, { withFileTypes: true }).then((d) => d.sort((x, y) => (x.name < y.name ? -1 : 1)));

/**
 * Checks DIR for `experiment --save-adapters`: writable; DIR/base new, or holding exactly the files of
 * `modelDir` already (then it is kept as it is: `writeBase` false), or (--force) only files a base
 * folder holds; each DIR/<method>/seed<k>/ of a method that trains new, or (--force) holding only
 * adapter folders. Throws FileError listing what would be replaced or lost.
 */
export async function checkSaveAdapters(
  dir: string, opts: { methods: readonly string[]; seeds: readonly number[]; force: boolean; modelDir: string },
): Promise<{ writeBase: boolean }> {
  await checkWritableFolder(dir, '--save-adapters');
  const taken: string[] = [];
  const foreign: string[] = [];
  let writeBase = true;
  const base = path.join(dir, 'base');
  const bs = await fsp.lstat(base).catch(() => null);
  if (bs && !bs.isDirectory()) foreign.push('base (a file)');
  else if (bs) {
    const model = await readFolder(opts.modelDir);
    const inside = await entries(base);
    const others = inside.filter((d) => !d.isFile() || !(model.has(d.name) || CHECKPOINT_FILES.includes(d.name)));
    if (others.length) foreign.push(...others.map((d) => `base/${d.name}${d.isDirectory() ? '/' : ''}`));
    else if (inside.length && sameFiles(await readFolder(base), model)) writeBase = false;
    else if (inside.length) taken.push('base/');
  }
  for (const m of opts.methods) {
    if (METHOD_SPECS[m as MethodName]?.train === 'none') continue;
    for (const s of opts.seeds) {
      const d = path.join(dir, m, `seed${s}`);
      const inside = await entries(d).catch(() => []);
      for (const e of inside) {
        const rel = `${m}/seed${s}/${e.name}`;
        if (!e.isDirectory()) {
          // c2c's fuser file (src/storage/c2c-fuser.ts) is what an earlier run of the same method wrote
          if (e.name === FUSER_FILE && METHOD_SPECS[m as MethodName]?.train === 'fuser') taken.push(rel);
          else foreign.push(rel);
          continue;
        }
        const files = await entries(path.join(d, e.name));
        const odd = files.filter((f) => !f.isFile() || !ADAPTER_FILES.includes(f.name));
        if (odd.length) foreign.push(...odd.map((f) => `${rel}/${f.name}${f.isDirectory() ? '/' : ''}`));
        else taken.push(`${rel}/`);
      }
    }
  }
  if (foreign.length) {
    throw new FileError(
      `--save-adapters ${dir} holds files this command does not write, which replacing their folders would delete (${listShort(foreign)}); ` +
        `choose another folder${opts.force ? ' (--force replaces only base and adapter folders)' : ''}`,
    );
  }
  if (taken.length && !opts.force) {
    throw new FileError(`--save-adapters ${dir} already holds ${listShort(taken)} of an earlier run; give --force to replace them, or choose another folder`);
  }
  return { writeBase };
}
