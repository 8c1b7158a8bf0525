// Errors the GPU runtime raises. Each says what failed in words a user can act on.

/** There is no WebGPU at all (no navigator.gpu, or no adapter). */
export class NoWebGPUError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoWebGPUError';
  }
}

/** A validation or out-of-memory error reported by the device, tagged with the kernels involved. */
export class GpuError extends Error {
  constructor(
    message: string,
    readonly kernels: string[] = [],
  ) {
    super(message);
    this.name = 'GpuError';
  }
}

/** The device was lost (driver reset, tab backgrounded too long, destroyed). Nothing more can run on it. */
export class DeviceLostError extends GpuError {
  constructor(
    readonly reason: string,
    message: string,
    kernels: string[] = [],
  ) {
    super(`GPU device lost (${reason || 'unknown reason'}): ${message || 'no message'}` +
      (kernels.length ? ` [last kernels: ${kernels.join(', ')}]` : ''), kernels);
    this.name = 'DeviceLostError';
  }
}

export const NO_WEBGPU_HELP =
  'WebGPU is not available here. Use a recent Chrome or Edge (113+), or Firefox/Safari with WebGPU ' +
  'enabled; on Linux start Chromium with --enable-unsafe-webgpu (and --enable-features=Vulkan), and ' +
  'check that hardware acceleration is on in the browser settings.';
