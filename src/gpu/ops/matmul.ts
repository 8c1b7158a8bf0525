// The matmul family (shaders/matmul.wgsl): C = alpha * op(A) op(B) (+ beta C), batched.
import code from '../../../shaders/matmul.wgsl?raw';
import { cdiv, type Dispatch, type Gpu, type KernelSpec, type Tensor } from '../runtime';

export type MatmulLayout = 'nn' | 'nt' | 'tn';

export interface MatmulOptions {
  /** 'nn': A (M,K) B (K,N); 'nt': A (M,K) B (N,K); 'tn': A (K,M) B (K,N). */
  layout?: MatmulLayout;
  /** Adds beta*C instead of overwriting C (gradient accumulation). */
  accumulate?: boolean;
  alpha?: number;
  beta?: number;
  /** Kernel variant (default: the adapter's preferred one). */
  variant?: MatmulVariant;
  /** Number of independent matrices; each operand advances by its stride per batch. */
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
}

const PARAMS = [
  ['M', 'u32'], ['N', 'u32'], ['K', 'u32'],
  ['stride_a', 'u32'], ['stride_b', 'u32'], ['stride_c', 'u32'],
  ['alpha', 'f32'], ['beta', 'f32'],
] as const;

/** 'tiled': 64x64 tiles through workgroup memory (GPUs); 'direct': no workgroup memory (CPU adapters). */
export type MatmulVariant = 'tiled' | 'direct';

/** The variant that is fastest on this adapter: CPU adapters (SwiftShader, lavapipe) run barriers slowly. */
export function preferredMatmulVariant(gpu: Gpu): MatmulVariant {
  const r = gpu.report;
  const cpu = r.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|software|cpu/i.test(`${r.vendor} ${r.architecture} ${r.device} ${r.description}`);
  return cpu ? 'direct' : 'tiled';
}

export function matmulSpec(layout: MatmulLayout, accumulate: boolean, variant: MatmulVariant = 'tiled'): KernelSpec {
  return {
    name: `matmul_${layout}${accumulate ? '_acc' : ''}${variant === 'direct' ? '_direct' : ''}`,
    code,
    entryPoint: variant === 'direct' ? 'matmul_direct' : 'matmul',
    bindings: ['read', 'read', 'write'],
    params: PARAMS,
    constants: { TRANS_A: layout === 'tn', TRANS_B: layout === 'nt', ACCUMULATE: accumulate },
  };
}

/** Prepares C = op(A) op(B) for M x N outputs over K; checks that every operand is big enough. */
export function prepareMatmul(
  gpu: Gpu, a: Tensor, b: Tensor, c: Tensor, M: number, N: number, K: number, o: MatmulOptions = {},
): Dispatch {
  const layout = o.layout ?? 'nn';
  const batch = o.batch ?? 1;
  const sa = o.strideA ?? M * K;
  const sb = o.strideB ?? K * N;
  const sc = o.strideC ?? M * N;
  const need = (t: Tensor, stride: number, per: number, what: string) => {
    const n = (batch - 1) * stride + per;
    if (t.size < n) {
      throw new Error(`matmul_${layout}: ${what} (${t.label}) has ${t.size} values, needs ${n} for M=${M} N=${N} K=${K} batch=${batch}`);
    }
  };
  need(a, sa, M * K, 'A');
  need(b, sb, K * N, 'B');
  need(c, sc, M * N, 'C');
  const variant = o.variant ?? preferredMatmulVariant(gpu);
  const tile = variant === 'direct' ? 32 : 64;
  return gpu.prepare(
    matmulSpec(layout, o.accumulate ?? false, variant),
    [a, b, c],
    { M, N, K, stride_a: sa, stride_b: sb, stride_c: sc, alpha: o.alpha ?? 1, beta: o.beta ?? 1 },
    [cdiv(N, tile), cdiv(M, tile), batch],
  );
}

/** One-off matmul recorded into the open command buffer. */
export function matmul(gpu: Gpu, a: Tensor, b: Tensor, c: Tensor, M: number, N: number, K: number, o: MatmulOptions = {}): void {
  gpu.recordOnce(prepareMatmul(gpu, a, b, c, M, N, K, o));
}
