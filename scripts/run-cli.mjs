// Runs the command-line tools: bundles src/cli/main.ts with esbuild (WGSL inlined, Dawn external)
// into .cache/cli/ and calls its main() with the remaining arguments.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundle } from './bundle.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, '.cache', 'cli', 'main.mjs');
await bundle(path.join(root, 'src', 'cli', 'main.ts'), out);
const { main } = await import(pathToFileURL(out).href);
const code = await main(process.argv.slice(2));
// Dawn keeps native threads alive: exit explicitly once the command is done.
process.exit(code);
