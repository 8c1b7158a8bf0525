// Node host: Dawn through the `webgpu` package. Imported only by tests, the CLI and benchmarks,
// never by the browser bundle. Vulkan must be reachable (scripts/with-vulkan.sh picks SwiftShader on
// a machine without a GPU; see ../shared/ci-notes.md).
import { Gpu } from './runtime';
import type { DeviceRequest } from './device';
import { NoWebGPUError } from './errors';

let globalsInstalled = false;
// Dawn's instance must outlive every device made from it: if the GPU object from create() is
// garbage-collected, the native instance is torn down under a live device and the process dies in
// Dawn's threads (seen here as random futex/mutex aborts). Keep it for the life of the process.
let instance: GPU | null = null;

/** Returns Dawn's GPU object, installing WebGPU's globals (GPUBufferUsage, ...) on first use. */
export async function nodeGpuEntry(): Promise<GPU> {
  let mod: typeof import('webgpu');
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new NoWebGPUError(`the 'webgpu' package (Dawn for Node) could not be loaded: ${(e as Error).message}`);
  }
  if (!globalsInstalled) {
    Object.assign(globalThis, mod.globals);
    globalsInstalled = true;
  }
  instance ??= mod.create([]) as unknown as GPU;
  return instance;
}

export async function createNodeGpu(request?: DeviceRequest): Promise<Gpu> {
  const entry = await nodeGpuEntry();
  const adapter = await entry.requestAdapter({ powerPreference: request?.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new NoWebGPUError(
      'Dawn found no WebGPU adapter: Vulkan has no usable driver. On a machine without a GPU install ' +
        "Debian's chromium package and run through scripts/with-vulkan.sh (it sets VK_ICD_FILENAMES to " +
        'SwiftShader), or point VK_ICD_FILENAMES at a Vulkan driver.',
    );
  }
  // Re-request through the shared path so limits and the report are made in one place.
  return Gpu.create({ requestAdapter: async () => adapter } as unknown as GPU, request);
}
