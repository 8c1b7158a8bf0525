// What an interrupted save leaves beside its target, and putting it right on the next run.
//
// A save (src/cli/files.ts) writes `.NAME.tmp-<pid>-<hex>` complete and synced, then, when NAME
// exists, renames NAME to `.NAME.old-<pid>-<hex>` (the same pid and hex), renames the temporary to
// NAME and removes the old one. A process killed in between (SIGKILL, a power cut) leaves one of:
//   NAME missing, .old and .tmp present  killed between the two renames: the old one is complete, and
//                                        so is the new one (it was synced before the first rename)
//   NAME present, .old present           killed before the old copy was removed: the swap is done
//   .tmp present, no .old                killed while writing, or before the first rename: maybe incomplete
// recoverInterrupted(NAME) puts the old copy back under a missing NAME, removes an old copy a finished
// swap left, and reports every temporary it cannot judge with the commands that use or remove it.
// Leftovers of a process that still runs (its pid) are someone's save in progress and left alone.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isAlive, shellQuote } from './lock';

/** The names one save uses beside `target`: its temporary and where the old copy goes (one token). */
export function saveNames(target: string): { tmp: string; aside: string } {
  const token = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const at = (tag: string) => path.join(path.dirname(target), `.${path.basename(target)}.${tag}-${token}`);
  return { tmp: at('tmp'), aside: at('old') };
}

interface Leftovers {
  token: string;
  pid: number;
  tmp?: string;
  old?: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The leftovers of saves of `target` in its folder, by save (token). */
export async function leftoversOf(target: string): Promise<Leftovers[]> {
  const dir = path.dirname(target);
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const re = new RegExp(`^\\.${escape(path.basename(target))}\\.(tmp|old)-((\\d+)-[0-9a-f]+)$`);
  const byToken = new Map<string, Leftovers>();
  for (const n of names.sort()) {
    const m = re.exec(n);
    if (!m) continue;
    const g = byToken.get(m[2]) ?? { token: m[2], pid: Number(m[3]) };
    g[m[1] as 'tmp' | 'old'] = path.join(dir, n);
    byToken.set(m[2], g);
  }
  return [...byToken.values()];
}

const exists = (p: string) => fsp.lstat(p).then(() => true, () => false);

/**
 * Puts right what interrupted saves of `target` left (see the top of this file) and returns, in words,
 * what it did and what it leaves to the user (with the commands). `alive` says whether a pid still
 * runs (tests pass one that calls this process dead, to play its own kill).
 */
export async function recoverInterrupted(target: string, alive: (pid: number) => boolean = isAlive): Promise<string[]> {
  const notes: string[] = [];
  const dead = (await leftoversOf(target)).filter((g) => !alive(g.pid));
  if (!dead.length) return notes;
  const t = shellQuote(target);
  const withOld = dead.filter((g) => g.old);
  if (!(await exists(target)) && withOld.length === 1) {
    const g = withOld[0];
    try {
      await fsp.rename(g.old!, target);
      notes.push(`${target} was missing: a save stopped half-way (pid ${g.pid}) had moved it aside to ${g.old}; the old copy is back under ${target}`);
      g.old = undefined;
      if (g.tmp) {
        notes.push(
          `the new copy that stopped save had written completely is kept as ${g.tmp}: to use it instead, run: rm -r ${t} && mv ${shellQuote(g.tmp)} ${t}; ` +
            `to discard it: rm -r ${shellQuote(g.tmp)}`,
        );
        g.tmp = undefined;
      }
    } catch (e) {
      notes.push(`${target} is missing and its old copy is in ${g.old}, which cannot be moved back (${(e as Error).message}); run: mv ${shellQuote(g.old!)} ${t}`);
      g.old = undefined;
    }
  }
  const targetThere = await exists(target);
  for (const g of dead) {
    if (g.old && targetThere && !g.tmp) {
      // the swap finished (the new copy is in place); only the removal of the old one was cut off
      await fsp.rm(g.old, { recursive: true, force: true }).then(
        () => notes.push(`removed ${g.old}, the old copy of ${target} that a save stopped at its very end (pid ${g.pid}) had not removed yet`),
        (e) => notes.push(`${g.old} is the old copy of ${target} left by a stopped save and cannot be removed (${(e as Error).message}); run: rm -r ${shellQuote(g.old!)}`),
      );
    } else if (g.old) {
      notes.push(
        `${g.old} is an earlier copy of ${target} left by a stopped save (pid ${g.pid})${targetThere ? '' : ', and there are others'}; ` +
          `to put it back: ${targetThere ? `rm -r ${t} && ` : ''}mv ${shellQuote(g.old)} ${t}; to discard it: rm -r ${shellQuote(g.old)}`,
      );
    }
    if (g.tmp) {
      notes.push(
        `${g.tmp} is what a save of ${target} stopped before its end (pid ${g.pid}) had written; it may be incomplete. ` +
          `To discard it: rm -r ${shellQuote(g.tmp)}${targetThere ? '' : `; if you know it is complete, use it with: mv ${shellQuote(g.tmp)} ${t}`}`,
      );
    }
  }
  return notes;
}
