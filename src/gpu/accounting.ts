// An accounting device: a stand-in for GPUDevice on which the engine's real construction code runs
// (tensors, pipelines, bind groups, uniform writes) without a GPU, so that what a model, its adapters
// and a run's passes would allocate is known exactly before anything is allocated: Gpu.memory() on it
// counts the same bytes the real device would hold (src/mas/memory.ts). Nothing can be dispatched or
// read back on it. Buffer sizes are unlimited here; callers compare the largest one with the real
// device's limits.
import type { AdapterReport } from './device';
import { Gpu } from './runtime';

export interface AccountingGpu {
  gpu: Gpu;
  /** The largest buffer created so far: its label and bytes. */
  largest(): { label: string; bytes: number };
}

const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** The WebGPU flag constants the engine's code reads, with the values the spec gives them, where the
 * host has not defined them (Node before Dawn is loaded): the accounting needs no GPU at all. */
function ensureFlagConstants(): void {
  const g = globalThis as Record<string, unknown>;
  g.GPUBufferUsage ??= Object.freeze({ MAP_READ: 0x1, MAP_WRITE: 0x2, COPY_SRC: 0x4, COPY_DST: 0x8, INDEX: 0x10, VERTEX: 0x20, UNIFORM: 0x40, STORAGE: 0x80, INDIRECT: 0x100, QUERY_RESOLVE: 0x200 });
  g.GPUShaderStage ??= Object.freeze({ VERTEX: 0x1, FRAGMENT: 0x2, COMPUTE: 0x4 });
  g.GPUMapMode ??= Object.freeze({ READ: 0x1, WRITE: 0x2 });
}

export function accountingGpu(base?: { limits: Record<string, number>; report?: AdapterReport }): AccountingGpu {
  ensureFlagConstants();
  let largest = { label: '', bytes: 0 };
  const stub = <T>(o: Record<string, unknown> = {}) => o as unknown as T;
  const limits = { ...(base?.limits ?? {}), maxBufferSize: UNLIMITED, maxStorageBufferBindingSize: UNLIMITED, maxComputeWorkgroupsPerDimension: base?.limits.maxComputeWorkgroupsPerDimension ?? 65535 };
  const device = {
    limits,
    features: new Set<string>(),
    lost: new Promise(() => undefined),
    label: 'accounting',
    createBuffer(d: GPUBufferDescriptor) {
      const bytes = Number(d.size);
      // uniform buffers (a few bytes per dispatch) are not tensors; Gpu.memory() does not count them either
      if (bytes > largest.bytes && !(d.usage & GPUBufferUsage.UNIFORM)) largest = { label: d.label ?? '', bytes };
      return stub<GPUBuffer>({ size: bytes, usage: d.usage, label: d.label, destroy() {} });
    },
    createShaderModule: () => stub<GPUShaderModule>(),
    createBindGroupLayout: () => stub<GPUBindGroupLayout>(),
    createPipelineLayout: () => stub<GPUPipelineLayout>(),
    createComputePipeline: () => stub<GPUComputePipeline>(),
    createBindGroup: () => stub<GPUBindGroup>(),
    createCommandEncoder() {
      throw new Error('the accounting device cannot run kernels: it only counts what would be allocated');
    },
    pushErrorScope() {},
    popErrorScope: () => Promise.resolve(null),
    queue: { writeBuffer() {}, submit() {}, onSubmittedWorkDone: () => Promise.resolve() },
    destroy() {},
  };
  const report: AdapterReport = base?.report ?? {
    host: 'browser', vendor: 'accounting', architecture: '', device: '', description: 'accounting device (no GPU)', isFallbackAdapter: false,
    features: [], enabledFeatures: [], limits: {}, adapterLimits: {},
  };
  const gpu = new Gpu(device as unknown as GPUDevice, report);
  return { gpu, largest: () => ({ ...largest }) };
}
