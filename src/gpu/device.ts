// Acquiring a WebGPU adapter and device, the same way in the browser (navigator.gpu) and in Node
// (the `webgpu` package's create([]), see ./node.ts). Only limits the adapter has are requested.
import { NO_WEBGPU_HELP, NoWebGPUError } from './errors';

export interface AdapterReport {
  host: 'browser' | 'node';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** Features the adapter offers. */
  features: string[];
  /** Features enabled on our device (the optional ones we asked for and got). */
  enabledFeatures: string[];
  /** The limits of the device we created (what kernels may rely on). */
  limits: Record<string, number>;
  /** The adapter's own maxima, for the environment panel. */
  adapterLimits: Record<string, number>;
}

export interface DeviceRequest {
  powerPreference?: GPUPowerPreference;
  /** Features to enable when the adapter has them (never required). */
  optionalFeatures?: GPUFeatureName[];
}

// Kernels are written against WebGPU's default compute limits (256 invocations, 16 KiB workgroup
// storage, 8 storage buffers) so they run on every device; only buffer sizes are raised, to what
// the adapter allows, so larger models fit.
const RAISED_LIMITS = ['maxStorageBufferBindingSize', 'maxBufferSize'] as const;

const REPORTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
] as const;

function limitsRecord(limits: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of REPORTED_LIMITS) out[k] = Number((limits as unknown as Record<string, number>)[k]);
  return out;
}

export function detectHost(): 'browser' | 'node' {
  return typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined' &&
    typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === 'undefined'
    ? 'node'
    : 'browser';
}

/** Finds the WebGPU entry point of this host: navigator.gpu in browsers and workers. */
export function browserGpu(): GPU | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu;
}

export async function requestDevice(
  gpu: GPU | undefined,
  request: DeviceRequest = {},
): Promise<{ adapter: GPUAdapter; device: GPUDevice; report: AdapterReport }> {
  if (!gpu) throw new NoWebGPUError(`navigator.gpu is missing. ${NO_WEBGPU_HELP}`);
  const adapter = await gpu.requestAdapter({ powerPreference: request.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new NoWebGPUError(
      'WebGPU is present but no GPU adapter was found (the browser or driver refused one). ' + NO_WEBGPU_HELP,
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of RAISED_LIMITS) requiredLimits[k] = Number((adapter.limits as unknown as Record<string, number>)[k]);
  const wanted: GPUFeatureName[] = request.optionalFeatures ?? ['timestamp-query', 'shader-f16'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'latent-playground' });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const report: AdapterReport = {
    host: detectHost(),
    vendor: info.vendor || 'unknown',
    architecture: info.architecture || '',
    device: info.device || '',
    description: info.description || '',
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...adapter.features].map(String).sort(),
    enabledFeatures: [...device.features].map(String).sort(),
    limits: limitsRecord(device.limits),
    adapterLimits: limitsRecord(adapter.limits),
  };
  return { adapter, device, report };
}
