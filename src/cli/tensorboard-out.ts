// `experiment --tensorboard DIR`: the TensorBoard event files of every (method, seed) of the
// experiment (src/storage/tensorboard.ts: the layout DIR/<method>/seed<seed>/events.out.tfevents...).
// DIR is a logdir that may hold other runs; a run folder of this experiment that already exists is
// refused before any GPU work (event files of two runs in one folder read as one run), and so is a
// DIR that another output of the command writes. Each run folder is written atomically (writeTree).
import os from 'node:os';
import path from 'node:path';
import { trainHyperOf } from '../mas/run-data';
import { lrAt } from '../model/train';
import { tensorboardFiles, type LrOf, type TbRun } from '../storage/tensorboard';
import { writeTree } from './export-run';
import { checkWritableFolder, FileError } from './files';
import { lstatOrNull } from './fs-basics';

/** The learning rate a run's optimizer used at a step (src/mas/run.ts builds it from trainHyperOf). */
export const runLr: LrOf = (config, step) => lrAt(step, trainHyperOf(config));

/** Refuses, before any work, a logdir that cannot be written, is another output's path, or already holds one of the run folders. */
export async function checkTensorboardFolder(dir: string, methods: readonly string[], seeds: readonly number[], others: { option: string; target: string }[] = []): Promise<void> {
  for (const o of others) {
    if (path.resolve(o.target) === path.resolve(dir)) throw new FileError(`--tensorboard ${dir} is also the path of ${o.option}; give each output its own path`);
  }
  await checkWritableFolder(dir, '--tensorboard');
  const taken: string[] = [];
  for (const m of methods) for (const s of seeds) if (await lstatOrNull(path.join(dir, m, `seed${s}`))) taken.push(`${m}/seed${s}`);
  if (taken.length) throw new FileError(`--tensorboard ${dir} already holds ${taken.slice(0, 4).join(', ')}${taken.length > 4 ? ` and ${taken.length - 4} more` : ''}; choose another folder or remove them`);
}

/** Writes each run's folder under `dir` (atomically, one by one); returns the folders written. */
export async function writeTensorboard(dir: string, runs: readonly TbRun[]): Promise<string[]> {
  const files = tensorboardFiles(runs, { host: os.hostname(), tag: String(process.pid) });
  const byFolder = new Map<string, Map<string, Uint8Array>>();
  for (const [name, bytes] of files) {
    const cut = name.lastIndexOf('/');
    const folder = name.slice(0, cut);
    if (!byFolder.has(folder)) byFolder.set(folder, new Map());
    byFolder.get(folder)!.set(name.slice(cut + 1), bytes);
  }
  const written: string[] = [];
  for (const [folder, fm] of byFolder) {
    const target = path.join(dir, ...folder.split('/'));
    await writeTree(target, fm);
    written.push(target);
  }
  return written;
}
