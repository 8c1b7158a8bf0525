// The engine worker's API, shared by the worker (src/worker/engine.worker.ts) and the page
// (src/ui/engine.ts). Only plain data crosses this boundary: the UI never sees a GPUBuffer.
import type { AdapterReport } from '../gpu/device';
import type { SelfTestResult } from '../gpu/selftest';

export type EnvReport =
  | { ok: true; report: AdapterReport; selfTest: SelfTestResult }
  | { ok: false; kind: 'no-webgpu' | 'error'; message: string };

export interface EngineApi {
  /** Acquires the GPU (once) and runs the self-test. Never throws: failures are in the report. */
  init(): Promise<EnvReport>;
}
