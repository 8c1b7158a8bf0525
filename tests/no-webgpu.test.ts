import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Gpu } from '../src/gpu/runtime';
import { NoWebGPUError } from '../src/gpu/errors';

describe('missing WebGPU gives a clear error', () => {
  it('no navigator.gpu', async () => {
    await expect(Gpu.create(undefined)).rejects.toThrow(NoWebGPUError);
    await expect(Gpu.create(undefined)).rejects.toThrow(/navigator\.gpu is missing.*--enable-unsafe-webgpu/);
  });

  it('WebGPU present but no adapter', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    await expect(Gpu.create(gpu)).rejects.toThrow(/no GPU adapter was found/);
  });

  it('Dawn in Node with no Vulkan driver: the CLI says what to do and exits non-zero', async () => {
    const run = promisify(execFile);
    const env = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '' };
    const err = await run('node', ['scripts/run-cli.mjs', 'env'], { env }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe(1);
    expect(err!.stderr).toMatch(/Dawn found no WebGPU adapter: Vulkan has no usable driver/);
  });
});
