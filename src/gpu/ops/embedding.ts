// Embedding (shaders/embedding.wgsl): out[t] = W[ids[t]]; backward dW[v] += sum_{t: ids[t]=v} dOut[t].
// The ids live on the GPU, so the wrappers cannot check them: an id >= V gives a row of zeros in the
// forward and contributes no gradient in the backward (W is never read or written out of bounds).
import code from '../../../shaders/embedding.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';
import { checkDims, checkDistinct, checkTensor, gridSize, type GridOptions } from './elementwise';

const PARAMS = [['T', 'u32'], ['D', 'u32'], ['V', 'u32']] as const;

export function embeddingForwardSpec(): KernelSpec {
  return { name: 'embedding_forward', code, entryPoint: 'embedding_forward', bindings: ['read', 'read', 'write'], params: PARAMS };
}

export function embeddingBackwardSpec(): KernelSpec {
  return { name: 'embedding_backward', code, entryPoint: 'embedding_backward', bindings: ['read', 'read', 'write'], params: PARAMS };
}

function check(name: string, ids: Tensor, W: Tensor, out: Tensor, T: number, D: number, V: number, wName: string, outName: string): void {
  const dims = { T, D, V };
  checkDims(name, dims);
  checkTensor(name, 'ids', ids, T, dims, 'u32');
  checkTensor(name, wName, W, V * D, dims);
  checkTensor(name, outName, out, T * D, dims);
}

/** Prepares out [T, D] = W [V, D] rows picked by ids u32 [T] (overwrites out). */
export function prepareEmbedding(
  gpu: Gpu, ids: Tensor, W: Tensor, out: Tensor, T: number, D: number, V: number, o: GridOptions = {},
): Dispatch {
  const name = 'embedding_forward';
  check(name, ids, W, out, T, D, V, 'W', 'out');
  checkDistinct(name, { ids, W }, { out });
  return gpu.prepare(embeddingForwardSpec(), [ids, W, out], { T, D, V }, [gridSize(gpu, name, Math.ceil((T * D) / 256), o), 1, 1]);
}

export function embedding(
  gpu: Gpu, ids: Tensor, W: Tensor, out: Tensor, T: number, D: number, V: number, o: GridOptions = {},
): void {
  gpu.recordOnce(prepareEmbedding(gpu, ids, W, out, T, D, V, o));
}

/** Prepares dW [V, D] += scatter of dOut [T, D] rows by ids u32 [T] (one invocation per (v, d)). */
export function prepareEmbeddingBackward(
  gpu: Gpu, ids: Tensor, dOut: Tensor, dW: Tensor, T: number, D: number, V: number, o: GridOptions = {},
): Dispatch {
  const name = 'embedding_backward';
  check(name, ids, dW, dOut, T, D, V, 'dW', 'dOut');
  checkDistinct(name, { ids, dOut }, { dW });
  const wg: [number, number, number] = [gridSize(gpu, name, Math.ceil(D / 64), o), gridSize(gpu, name, V, o), 1];
  return gpu.prepare(embeddingBackwardSpec(), [ids, dOut, dW], { T, D, V }, wg);
}

export function embeddingBackward(
  gpu: Gpu, ids: Tensor, dOut: Tensor, dW: Tensor, T: number, D: number, V: number, o: GridOptions = {},
): void {
  gpu.recordOnce(prepareEmbeddingBackward(gpu, ids, dOut, dW, T, D, V, o));
}
