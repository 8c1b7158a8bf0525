// Cross-entropy fused with softmax (shaders/crossentropy.wgsl) over logits [T, V], u32 targets [T].
// The loss is the mean over non-ignored rows (ignore label 0xFFFFFFFF); dlogits = (softmax - onehot)
// / count is written in the same pass, so no separate backward call exists. `count` is the number of
// non-ignored rows, which the host knows because it wrote the targets (countTargets). With gradient
// accumulation over micro-batches, pass the count of the whole batch so the gradients sum to its mean.
// Targets >= V other than the ignore label are the host's bug (countTargets refuses them); the kernel
// still reads nothing out of bounds and treats such rows as ignored.
import code from '../../../shaders/crossentropy.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';
import { checkDims, checkDistinct, checkTensor, gridSize, recordAllOnce, type GridOptions } from './elementwise';

export const IGNORE_INDEX = 0xffffffff;

const PARAMS = [['T', 'u32'], ['V', 'u32'], ['inv_count', 'f32']] as const;

export function crossEntropyRowSpec(): KernelSpec {
  return {
    name: 'crossentropy_forward_backward', code, entryPoint: 'crossentropy_forward_backward',
    bindings: ['read', 'read', 'write', 'write'], params: PARAMS,
  };
}

export function crossEntropySumSpec(): KernelSpec {
  return { name: 'crossentropy_loss_sum', code, entryPoint: 'crossentropy_loss_sum', bindings: ['read', 'write'], params: PARAMS };
}

/** Number of rows whose target is not the ignore label; throws on a target outside 0..V-1. */
export function countTargets(targets: ArrayLike<number>, V: number): number {
  let count = 0;
  for (let t = 0; t < targets.length; t++) {
    const y = targets[t];
    if (y === IGNORE_INDEX) continue;
    if (!Number.isInteger(y) || y < 0 || y >= V) {
      throw new Error(`crossentropy: target ${y} at row ${t} is outside the vocabulary 0..${V - 1} (ignore a row with 0xFFFFFFFF)`);
    }
    count++;
  }
  return count;
}

function params(T: number, V: number, count: number): { T: number; V: number; inv_count: number } {
  checkDims('crossentropy', { count });
  return { T, V, inv_count: count > 0 ? 1 / count : 0 };
}

/**
 * Prepares the two dispatches [row kernel, loss sum]: losses [T] (0 on ignored rows), dlogits [T, V]
 * (overwritten) and loss [1] = sum(losses) / count. count = 0 gives loss 0 and zero gradients.
 * When the targets change, update count with setCrossEntropyCount.
 */
export function prepareCrossEntropy(
  gpu: Gpu, logits: Tensor, targets: Tensor, losses: Tensor, loss: Tensor, dlogits: Tensor,
  T: number, V: number, count: number, o: GridOptions = {},
): Dispatch[] {
  const name = 'crossentropy_forward_backward';
  const dims = { T, V };
  checkDims(name, dims, { V: 1 });
  checkTensor(name, 'logits', logits, T * V, dims);
  checkTensor(name, 'targets', targets, T, dims, 'u32');
  checkTensor(name, 'losses', losses, T, dims);
  checkTensor(name, 'loss', loss, 1, dims);
  checkTensor(name, 'dlogits', dlogits, T * V, dims);
  checkDistinct(name, { logits, targets }, { losses, loss, dlogits });
  const p = params(T, V, count);
  const ds = [
    gpu.prepare(crossEntropyRowSpec(), [logits, targets, losses, dlogits], p, [gridSize(gpu, name, Math.ceil(T / 64), o), 1, 1]),
    gpu.prepare(crossEntropySumSpec(), [losses, loss], p, [1, 1, 1]),
  ];
  for (const d of ds) prepared.set(d, { T, V });
  return ds;
}

/** Shapes of the dispatches made here, so a count update cannot change them. */
const prepared = new WeakMap<Dispatch, { T: number; V: number }>();

/**
 * Rewrites the count of non-ignored rows in the dispatches prepareCrossEntropy returned (a uniform
 * write, no allocation): call it when new targets are written. Like any queue.writeBuffer it applies to
 * every later submit, including dispatches already recorded but not yet submitted.
 */
export function setCrossEntropyCount(dispatches: readonly Dispatch[], count: number): void {
  for (const d of dispatches) {
    const shape = prepared.get(d);
    if (!shape) throw new Error(`setCrossEntropyCount: dispatch ${d.name} was not made by prepareCrossEntropy`);
    d.setParams(params(shape.T, shape.V, count));
  }
}

export function crossEntropy(
  gpu: Gpu, logits: Tensor, targets: Tensor, losses: Tensor, loss: Tensor, dlogits: Tensor,
  T: number, V: number, count: number, o: GridOptions = {},
): void {
  recordAllOnce(gpu, prepareCrossEntropy(gpu, logits, targets, losses, loss, dlogits, T, V, count, o));
}
