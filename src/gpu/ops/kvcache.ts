// KV-cache plumbing (shaders/kvcache.wgsl): place a [B, n, W] block into a [B, Pd, W] cache at
// position `off` (forward), and read the gradient of that block back out (backward).
import code from '../../../shaders/kvcache.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';

const PARAMS = [['B', 'u32'], ['n', 'u32'], ['W', 'u32'], ['Pd', 'u32'], ['off', 'u32']] as const;

const FORWARD: KernelSpec = { name: 'kv_concat_forward', code, entryPoint: 'kv_concat_forward', bindings: ['read', 'write'], params: PARAMS };
const backwardSpec = (acc: boolean): KernelSpec => ({
  name: acc ? 'kv_concat_backward_acc' : 'kv_concat_backward',
  code,
  entryPoint: 'kv_concat_backward',
  bindings: ['read', 'write'],
  params: PARAMS,
  constants: { ACCUMULATE: acc },
});

export interface KvBlock {
  B: number;
  /** Positions in the block. */
  n: number;
  /** Floats per position (Hkv*hd). */
  W: number;
  /** Positions in the cache. */
  Pd: number;
  /** First cache position the block occupies. */
  off: number;
}

function grid(gpu: Gpu, total: number): [number, number, number] {
  const groups = Math.ceil(total / 64);
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(groups, max);
  return [x, Math.ceil(groups / x), 1];
}

function check(name: string, block: Tensor, cache: Tensor, k: KvBlock): void {
  const { B, n, W, Pd, off } = k;
  if (off + n > Pd) throw new Error(`${name}: block of ${n} positions at ${off} does not fit a cache of ${Pd}`);
  if (block.size < B * n * W) throw new Error(`${name}: block ${block.label} has ${block.size} values, needs B*n*W=${B * n * W}`);
  if (cache.size < B * Pd * W) throw new Error(`${name}: cache ${cache.label} has ${cache.size} values, needs B*Pd*W=${B * Pd * W}`);
}

/** cache[b, off + i, :] = block[b, i, :]. */
export function prepareKvWrite(gpu: Gpu, block: Tensor, cache: Tensor, k: KvBlock): Dispatch {
  check('kv_concat_forward', block, cache, k);
  return gpu.prepare(FORWARD, [block, cache], { ...k }, grid(gpu, k.B * k.n * k.W));
}

/** dblock[b, i, :] (+)= dcache[b, off + i, :]. */
export function prepareKvReadGrad(gpu: Gpu, dcache: Tensor, dblock: Tensor, k: KvBlock, accumulate = true): Dispatch {
  check('kv_concat_backward', dblock, dcache, k);
  return gpu.prepare(backwardSpec(accumulate), [dcache, dblock], { ...k }, grid(gpu, k.B * k.n * k.W));
}
