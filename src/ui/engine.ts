// The page's handle on the engine worker (comlink). The UI talks only to this proxy.
import { wrap, type Remote } from 'comlink';
import type { EngineApi } from '../worker/api';

let engine: Remote<EngineApi> | null = null;

export function getEngine(): Remote<EngineApi> {
  if (!engine) {
    const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
    engine = wrap<EngineApi>(worker);
  }
  return engine;
}
