// `experiment --export-run DIR`: one run bundle (docs/run-bundle.md, src/storage/run-bundle.ts) per
// (method, seed) of the experiment, as the folder DIR/<method>-seed<k>/. Each bundle is written
// complete (every file and folder synced) into a temporary sibling and then renamed into place
// (saveAtomically, src/cli/files.ts), so a failed or interrupted write leaves nothing under its name;
// an existing bundle folder is refused before any GPU work.
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Gpu } from '../gpu/runtime';
import { MasEngine, Run } from '../mas/run';
import { runBundleContent } from '../mas/run-data';
import type { FuserWeights } from '../mas/c2c-fuser';
import type { BaseModel, TrainedAdapter } from '../mas/types';
import { wilson95 } from '../mas/base-eval';
import { methodSpec } from '../mas/methods';
import { writeRunBundle } from '../storage/run-bundle';
import type { BaseRef } from '../storage/base-ref';
import type { ExperimentReport, MethodName, RunConfig } from '../worker/api';
import { checkWritableFolder, describeFsError, FileError, nodeIo, recoverTarget, saveAtomically, syncFolder } from './files';

/** The folder of one (method, seed) bundle inside DIR. */
export const bundleFolder = (dir: string, method: string, seed: number) => path.join(dir, `${method}-seed${seed}`);

/** Refuses, before any work, an export folder that cannot be written or already holds one of the bundles. */
export async function checkExportFolder(dir: string, methods: readonly string[], seeds: readonly number[]): Promise<void> {
  await checkWritableFolder(dir, '--export-run');
  const taken: string[] = [];
  for (const m of methods) for (const s of seeds) {
    const p = bundleFolder(dir, m, s);
    if (await fsp.lstat(p).then(() => true, () => false)) taken.push(path.basename(p));
  }
  if (taken.length) throw new FileError(`--export-run ${dir} already holds ${taken.slice(0, 4).join(', ')}${taken.length > 4 ? ` and ${taken.length - 4} more` : ''}; choose another folder or remove them`);
}

/** Writes files (names with '/' for folders) as the new folder `dir`, atomically. */
export async function writeTree(dir: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  for (const name of files.keys()) {
    const parts = name.split('/');
    if (!name || name.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) throw new FileError(`cannot write ${dir}: bad file name ${JSON.stringify(name)}`);
  }
  await recoverTarget(path.resolve(dir));
  if (await fsp.lstat(dir).then(() => true, () => false)) throw new FileError(`cannot write ${dir}: it already exists`);
  await fsp.mkdir(path.dirname(dir), { recursive: true }).catch((e) => {
    throw describeFsError(e, 'make the folder', path.dirname(dir));
  });
  await saveAtomically(path.resolve(dir), 'folder', async (tmp) => {
    const folders = new Set<string>([tmp]);
    for (const [name, bytes] of files) {
      const p = path.join(tmp, ...name.split('/'));
      await fsp.mkdir(path.dirname(p), { recursive: true });
      folders.add(path.dirname(p));
      await nodeIo.writeFile(p, bytes);
    }
    // the subfolders' entries too (saveAtomically syncs the top one)
    for (const f of [...folders].reverse()) if (f !== tmp) await syncFolder(f);
  }, nodeIo, dir);
}

/**
 * Writes the bundle of each (method, seed) of a finished experiment. `trained` holds the adapters
 * the experiment trained (by `${method}:${seed}`); the initial adapters are made again from the seed
 * (a fresh run, no step taken), the episodes and batches from the same code the run reads them with.
 */
export async function exportRuns(opts: {
  dir: string; gpu: Gpu; base: BaseModel; baseFiles: Map<string, Uint8Array>; report: ExperimentReport;
  configOf: (method: MethodName, seed: number) => RunConfig; trained: Map<string, TrainedAdapter[]>;
  /** The trained Cache-to-Cache fusers (method c2c), by `${method}:${seed}`. */
  fusers?: Map<string, FuserWeights>;
  /** training batches per bundle (default BUNDLE_BATCHES) */
  batches?: number;
  /** reference the base (src/storage/base-ref.ts) instead of copying it into each bundle */
  baseRef?: BaseRef;
  /** a line per stage of each bundle (a big base's bundles take minutes: they are not written silently) */
  onProgress?: (message: string) => void;
}): Promise<string[]> {
  const { report } = opts;
  const engine = new MasEngine(opts.gpu, opts.base);
  const written: string[] = [];
  try {
    const pairs = [...new Map(report.rows.map((r) => [`${r.method}:${r.seed}`, { method: r.method, seed: r.seed }])).values()];
    for (const [k, { method, seed }] of pairs.entries()) {
      const t0 = performance.now();
      const name = path.basename(bundleFolder(opts.dir, method, seed));
      opts.onProgress?.(`bundle ${k + 1}/${pairs.length} ${name}: episodes, batches${methodSpec(method).channel === 'latent' ? ', latent map (once per base)' : ''}...`);
      const config = opts.configOf(method, seed);
      const fresh = new Run(engine, config);
      let initial: TrainedAdapter[];
      try {
        initial = fresh.trains ? await fresh.exportAdapters() : [];
      } finally {
        fresh.destroy();
      }
      const rows = report.rows.filter((r) => r.method === method && r.seed === seed);
      const curve = report.curves?.find((c) => c.method === method && c.seed === seed);
      const adapters = opts.trained.get(`${method}:${seed}`) ?? [];
      const content = runBundleContent({
        config, base: opts.base, baseFiles: opts.baseFiles, adapters, initialAdapters: initial, createdBy: 'cli experiment',
        ...(methodSpec(method).train === 'fuser' ? { fuser: opts.fusers?.get(`${method}:${seed}`) ?? null } : {}),
        ...(opts.batches !== undefined ? { batches: opts.batches } : {}),
        stepsDone: curve?.losses.length ?? 0, losses: curve?.losses ?? [],
        evaluation: rows.map(({ seed: _s, trainSeconds: _t, ...row }) => ({ ...row, ci95: wilson95(Math.round(row.accuracy * row.episodes), row.episodes) })),
        heldout: [],
        controls: report.controls.filter((c) => c.method === method && c.seed === seed).map((c) => ({ control: c.control, accuracy: c.accuracy })),
        wallSeconds: rows[0]?.trainSeconds ?? null,
      });
      const dir = bundleFolder(opts.dir, method, seed);
      const files = writeRunBundle(opts.baseRef ? { ...content, baseRef: opts.baseRef } : content);
      const bytes = [...files.values()].reduce((n, b) => n + b.length, 0);
      opts.onProgress?.(`bundle ${k + 1}/${pairs.length} ${name}: writing ${(bytes / 1e6).toFixed(1)} MB${opts.baseRef ? ' (the base referenced, not copied)' : ''}...`);
      await writeTree(dir, files);
      written.push(dir);
      opts.onProgress?.(`bundle ${k + 1}/${pairs.length} ${name}: written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    engine.destroy();
  }
  return written;
}

/** Every file under `dir`, by its path relative to `dir` with '/' between folders (a bundle folder, to read it back). */
export async function readTree(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const walk = async (sub: string) => {
    for (const d of await fsp.readdir(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${d.name}` : d.name;
      if (d.isDirectory()) await walk(rel);
      else if (d.isFile()) out.set(rel, new Uint8Array(await fsp.readFile(path.join(dir, rel))));
    }
  };
  await walk('');
  return out;
}
