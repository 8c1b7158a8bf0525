import { describe, expect, it } from 'vitest';
import { matmul, type MatmulLayout, type MatmulVariant } from '../src/gpu/ops/matmul';
import { matmulRef } from '../src/reference/matmul';
import { maxRelErr, randn, testGpu } from './helpers';

// f32 accumulation over K terms of unit-normal products: the rounding error grows like
// sqrt(K) * 2^-24 * |terms|; at K <= 300 that is below 1e-5 relative; 1e-4 leaves a 10x margin while
// any indexing bug (a wrong or missing term) gives errors of order 1.
const TOL = 1e-4;

const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [17, 33, 65],
  [127, 1, 255],
  [64, 64, 64],
  [200, 130, 300],
];

describe('matmul kernels vs the CPU reference', () => {
  for (const variant of ['tiled', 'direct'] as MatmulVariant[])
  for (const layout of ['nn', 'nt', 'tn'] as MatmulLayout[]) {
    for (const [M, N, K] of SIZES) {
      it(`${variant} ${layout} M=${M} N=${N} K=${K}`, async () => {
        const gpu = await testGpu();
        const a = randn(M * K, M * 7 + K);
        const b = randn(K * N, N * 13 + K);
        const ta = gpu.tensor([M * K], 'A', a);
        const tb = gpu.tensor([K * N], 'B', b);
        const tc = gpu.tensor([M * N], 'C');
        matmul(gpu, ta, tb, tc, M, N, K, { layout, variant });
        const got = await gpu.read(tc);
        expect(maxRelErr(got, matmulRef(a, b, M, N, K, layout))).toBeLessThan(TOL);
        [ta, tb, tc].forEach((t) => gpu.destroy(t));
      });
    }
  }

  for (const variant of ['tiled', 'direct'] as MatmulVariant[])
  for (const layout of ['nn', 'nt', 'tn'] as MatmulLayout[])
  it(`${variant} ${layout}: accumulates with alpha and beta, and runs batches with strides`, async () => {
    const gpu = await testGpu();
    const [M, N, K, batch] = [19, 23, 29, 3];
    const a = randn(batch * M * K, 1);
    const b = randn(batch * K * N, 2);
    const c0 = randn(batch * M * N, 3);
    const ta = gpu.tensor([batch * M * K], 'A', a);
    const tb = gpu.tensor([batch * K * N], 'B', b);
    const tc = gpu.tensor([batch * M * N], 'C', c0);
    matmul(gpu, ta, tb, tc, M, N, K, { layout, accumulate: true, alpha: 0.5, beta: 2, batch, variant });
    const got = await gpu.read(tc);
    for (let z = 0; z < batch; z++) {
      const ref = matmulRef(
        a.subarray(z * M * K, (z + 1) * M * K), b.subarray(z * K * N, (z + 1) * K * N), M, N, K, layout,
        c0.subarray(z * M * N, (z + 1) * M * N), 0.5, 2,
      );
      expect(maxRelErr(got.subarray(z * M * N, (z + 1) * M * N), ref)).toBeLessThan(TOL);
    }
  });

  it('refuses operands too small for the shape, naming the kernel and sizes', async () => {
    const gpu = await testGpu();
    const ta = gpu.tensor([10], 'A');
    const tb = gpu.tensor([10], 'B');
    const tc = gpu.tensor([10], 'C');
    expect(() => matmul(gpu, ta, tb, tc, 4, 4, 4)).toThrow(/matmul_nn: A \(A\) has 10 values, needs 16/);
  });
});
