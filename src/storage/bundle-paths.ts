// The one rule for the paths a run bundle's run.json names (docs/run-bundle.md, "Paths"), held by the
// engine's reader (run-bundle.ts) and the PyTorch companion's (python/latent_playground/bundle.py,
// bundle_path_problem) alike; both test suites read the same hostile cases from
// tests/fixtures/bundle-paths.json.
//
// A path is relative to the bundle root: 1 to 8 segments joined by '/', each segment 1 to 64
// characters of letters, digits, '.', '_' and '-' starting with a letter or a digit. So no absolute
// path, no drive letter, no backslash, no '..' or '.', no empty segment, no hidden name. A reader of a
// folder also resolves it (symbolic links followed) and refuses what then lies outside the root; a
// file map (a zip, the page's import) has no links.

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MAX_PATH_SEGMENTS = 8;

/** What is wrong with `p` as a path inside a bundle, in words (null: it is fine). */
export function bundlePathProblem(p: unknown): string | null {
  if (typeof p !== 'string') return 'is not a path (a string)';
  if (p === '') return 'is empty';
  if (p.startsWith('/') || p.startsWith('\\') || /^[A-Za-z]:/.test(p)) return 'is absolute';
  if (p.includes('\\')) return "has a backslash (paths use '/')";
  const parts = p.split('/');
  if (parts.includes('..')) return "has a '..' segment";
  if (parts.some((s) => s === '' || s === '.')) return "has an empty or '.' segment";
  if (parts.length > MAX_PATH_SEGMENTS) return `has more than ${MAX_PATH_SEGMENTS} segments`;
  const bad = parts.find((s) => !SEGMENT.test(s));
  if (bad !== undefined) return `has a segment ${JSON.stringify(bad)} that is not 1-64 letters, digits, . _ - starting with a letter or digit`;
  return null;
}

/** The message of a refused path: `<where> <path> <problem>; ...` (the same words in the companion). */
export function bundlePathMessage(where: string, p: unknown, problem: string): string {
  return `run.json: ${where} ${JSON.stringify(p)} ${problem}; a path in a run bundle is relative to its root and stays inside it`;
}

/** What is wrong with `k` as an adapter key (a folder name: one segment of the rule above), or null. */
export function bundleKeyProblem(k: string): string | null {
  return SEGMENT.test(k) ? null : 'is not 1-64 letters, digits, . _ - starting with a letter or digit (it names a folder)';
}

/** Every path run.json's `files` names, with where it is (`files.base`, `files.adapters.a0`, ...). */
export function bundlePaths(files: Record<string, unknown>): [string, unknown][] {
  // a referenced base (files.base null, files.baseRef: base-ref.ts) names no path inside the bundle
  const out: [string, unknown][] = files.base === null && files.baseRef !== undefined ? [] : [['files.base', files.base]];
  for (const group of ['adapters', 'initialAdapters']) {
    const g = files[group];
    if (typeof g === 'object' && g !== null) for (const [k, v] of Object.entries(g)) out.push([`files.${group}.${k}`, v]);
  }
  if (files.latentMap !== null && files.latentMap !== undefined) out.push(['files.latentMap', files.latentMap]);
  if (files.fuser !== null && files.fuser !== undefined) out.push(['files.fuser', files.fuser]);
  const eps = files.episodes;
  if (typeof eps === 'object' && eps !== null) {
    for (const [k, v] of Object.entries(eps)) if (typeof v === 'object' && v !== null) out.push([`files.episodes.${k}.path`, (v as { path?: unknown }).path]);
  }
  const b = files.batches;
  if (typeof b === 'object' && b !== null) out.push(['files.batches.path', (b as { path?: unknown }).path]);
  return out;
}
