// The page's handle on the engine worker (comlink). The UI talks only to this proxy; it never sees a
// GPUBuffer, only plain data (large arrays arrive as transferables).
import { wrap, type Remote } from 'comlink';
import type { FileBlob, PageEngineApi } from '../worker/api';

let engine: Remote<PageEngineApi> | null = null;

export function getEngine(): Remote<PageEngineApi> {
  if (!engine) {
    const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
    engine = wrap<PageEngineApi>(worker);
  }
  return engine;
}

/** Offers a file the worker made as a download. */
export function download(file: FileBlob): void {
  const blob = new Blob([file.bytes as Uint8Array<ArrayBuffer>], { type: file.name.endsWith('.zip') ? 'application/zip' : 'application/octet-stream' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = file.name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A message for an error that crossed the worker boundary. */
export function errorText(e: unknown): string {
  const m = ((e as Error)?.message ?? String(e)).replace(/^Error: /, '');
  return m.charAt(0).toUpperCase() + m.slice(1);
}
