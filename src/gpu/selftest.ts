// A quick end-to-end check of the device: one matmul on odd sizes against the CPU reference.
import { matmul } from './ops/matmul';
import { matmulRef } from '../reference/matmul';
import type { Gpu } from './runtime';

export interface SelfTestResult {
  name: string;
  passed: boolean;
  maxError: number;
  tolerance: number;
  milliseconds: number;
  detail: string;
}

export async function matmulSelfTest(gpu: Gpu): Promise<SelfTestResult> {
  const [M, N, K] = [67, 45, 33];
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const a = Float32Array.from({ length: M * K }, rand);
  const b = Float32Array.from({ length: N * K }, rand);
  const t0 = performance.now();
  const ta = gpu.tensor([M, K], 'selftest.A', a);
  const tb = gpu.tensor([N, K], 'selftest.B', b);
  const tc = gpu.tensor([M, N], 'selftest.C');
  try {
    matmul(gpu, ta, tb, tc, M, N, K, { layout: 'nt' });
    const got = await gpu.read(tc);
    const ms = performance.now() - t0;
    const ref = matmulRef(a, b, M, N, K, 'nt');
    let maxError = 0;
    for (let i = 0; i < ref.length; i++) maxError = Math.max(maxError, Math.abs(got[i] - ref[i]) / (1 + Math.abs(ref[i])));
    // Same tolerance and reasoning as tests/matmul.test.ts (f32 sums of 33 products).
    const tolerance = 1e-4;
    return {
      name: `matmul ${M}x${N}x${K} (A·Bᵀ)`,
      passed: maxError < tolerance,
      maxError,
      tolerance,
      milliseconds: ms,
      detail: maxError < tolerance ? 'matches the CPU reference' : 'differs from the CPU reference',
    };
  } finally {
    [ta, tb, tc].forEach((t) => gpu.destroy(t));
  }
}
