// Bundles a TypeScript entry for Node with esbuild: `?raw` imports (WGSL) become strings, `webgpu`
// (Dawn's native addon) stays external. Used by the CLI (run-cli.mjs) and the GPU-machine kit.
//   node scripts/bundle.mjs src/cli/main.ts .cache/cli/main.mjs
import { build } from 'esbuild';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

const rawPlugin = {
  name: 'raw',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({
      path: path.resolve(args.resolveDir, args.path.replace(/\?raw$/, '')),
      namespace: 'raw',
    }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, async (args) => ({
      contents: await readFile(args.path, 'utf8'),
      loader: 'text',
    }));
  },
};

// Written to a file of this process's own, then renamed over outfile: two commands started together
// (bench/experiments.sh in two shells) would otherwise import a bundle the other is half-way through
// writing.
export async function bundle(entry, outfile) {
  const tmp = `${outfile}.${process.pid}.tmp`;
  try {
    await build({
      entryPoints: [entry],
      outfile: tmp,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['webgpu'],
      sourcemap: 'inline',
      logLevel: 'warning',
      plugins: [rawPlugin],
      // Some dependencies (tfjs) still call require(); give ESM output a real one.
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
    await rename(tmp, outfile);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [entry, out] = process.argv.slice(2);
  if (!entry || !out) {
    console.error('usage: node scripts/bundle.mjs ENTRY.ts OUT.mjs');
    process.exit(2);
  }
  await bundle(entry, out);
}
