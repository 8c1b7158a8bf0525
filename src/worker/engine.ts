// The engine behind the worker API. Plain class, no DOM: the worker exposes it through comlink and
// tests can call it directly.
import { browserGpu } from '../gpu/device';
import { NoWebGPUError } from '../gpu/errors';
import { Gpu } from '../gpu/runtime';
import { matmulSelfTest } from '../gpu/selftest';
import type { EngineApi, EnvReport } from './api';

export class Engine implements EngineApi {
  private gpu: Promise<Gpu> | null = null;
  private env: Promise<EnvReport> | null = null;

  constructor(private readonly entry: () => GPU | undefined = browserGpu) {}

  async device(): Promise<Gpu> {
    this.gpu ??= Gpu.create(this.entry());
    return this.gpu;
  }

  init(): Promise<EnvReport> {
    this.env ??= (async (): Promise<EnvReport> => {
      try {
        const gpu = await this.device();
        const selfTest = await matmulSelfTest(gpu);
        return { ok: true, report: gpu.report, selfTest };
      } catch (e) {
        this.gpu = null;
        const err = e as Error;
        return { ok: false, kind: e instanceof NoWebGPUError ? 'no-webgpu' : 'error', message: err.message };
      }
    })();
    return this.env;
  }
}
