// WGSL sources are imported as text: `import code from '../../shaders/x.wgsl?raw'`.
// Vite and vitest handle `?raw`; the CLI bundler (scripts/run-cli.mjs) does the same.
declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}

// The README is shown in the page's guide as text.
declare module '*.md?raw' {
  const source: string;
  export default source;
}
