import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../src/gpu/node';
import { DeviceLostError, GpuError } from '../src/gpu/errors';
import type { KernelSpec } from '../src/gpu/runtime';
import { testGpu } from './helpers';

const DOUBLE: KernelSpec = {
  name: 'double_test',
  entryPoint: 'main',
  bindings: ['read', 'write'],
  params: [['n', 'u32']],
  code: `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < p.n) { y[g.x] = 2.0 * x[g.x]; }
}`,
};

describe('GPU runtime', () => {
  it('reports the adapter, only default compute limits, and caches pipelines', async () => {
    const gpu = await testGpu();
    expect(gpu.report.host).toBe('node');
    expect(gpu.report.limits.maxComputeInvocationsPerWorkgroup).toBe(256);
    expect(gpu.report.limits.maxComputeWorkgroupStorageSize).toBe(16384);
    const x = gpu.tensor([100], 'x', Float32Array.from({ length: 100 }, (_, i) => i));
    const y = gpu.tensor([100], 'y');
    const before = gpu.pipelinesCompiled;
    const d = gpu.prepare(DOUBLE, [x, y], { n: 100 }, [2]);
    gpu.record(d, d);
    gpu.prepare(DOUBLE, [x, y], { n: 100 }, [2]).destroy();
    expect(gpu.pipelinesCompiled - before).toBe(1);
    const out = await gpu.read(y);
    expect(out[99]).toBe(198);
    d.setParams({ n: 10 });
    gpu.clear(y);
    gpu.record(d);
    const out2 = await gpu.read(y);
    expect([out2[9], out2[10]]).toEqual([18, 0]);
  });

  it('a shader that does not compile is a GpuError naming the kernel', async () => {
    const gpu = await testGpu();
    const bad: KernelSpec = { ...DOUBLE, name: 'broken_kernel', code: DOUBLE.code.replace('2.0 * x[g.x]', 'nope(') };
    const x = gpu.tensor([4], 'x');
    const y = gpu.tensor([4], 'y');
    gpu.run(bad, [x, y], { n: 4 }, [1]);
    const err = await gpu.sync().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as GpuError).message).toMatch(/broken_kernel/);
  });

  it('wrong buffer counts and missing params throw with the numbers', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([4], 'x');
    expect(() => gpu.prepare(DOUBLE, [x], { n: 4 })).toThrow(/double_test takes 2 buffers, got 1/);
    expect(() => gpu.prepare(DOUBLE, [x, x], {})).toThrow(/param n is missing/);
    expect(() => gpu.prepare(DOUBLE, [x, x], { n: -1 })).toThrow(/n=-1 out of u32 range/);
  });

  it('a lost device is a DeviceLostError on the next use, not a hang', async () => {
    const gpu = await createNodeGpu();
    const x = gpu.tensor([4], 'x', [1, 2, 3, 4]);
    const y = gpu.tensor([4], 'y');
    gpu.device.destroy();
    await gpu.device.lost;
    expect(gpu.lost).toBe(true);
    expect(() => gpu.run(DOUBLE, [x, y], { n: 4 }, [1])).toThrow(DeviceLostError);
    expect(() => gpu.tensor([4], 'z')).toThrow(/GPU device lost \(destroyed\)/);
  });
});
