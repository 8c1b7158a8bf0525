// The Cache-to-Cache fuser's gate (shaders/c2c.wgsl): y = x + sigmoid(gate[gi]) * t over n values,
// its backward (dx = dy, dt = s * dy) and the gate's gradient (a one-workgroup sum). The projection
// t = x A and its gradients are matmuls (src/mas/c2c-fuser.ts composes them). Plain-TS reference:
// src/mas/c2c-fuser.ts refFuse / refFuseBackward.
import code from '../../../shaders/c2c.wgsl?raw';
import type { Dispatch, Gpu, KernelSpec, Tensor } from '../runtime';
import { checkDims, checkDistinct, checkTensor, gridSize, type GridOptions } from './elementwise';

const PARAMS = [['n', 'u32'], ['gi', 'u32']] as const;
const WG = 256;
const spec = (entryPoint: string, bindings: KernelSpec['bindings']): KernelSpec => ({ name: entryPoint, code, entryPoint, bindings, params: PARAMS });

function checkGate(kernel: string, gate: Tensor, gi: number): void {
  if (!Number.isInteger(gi) || gi < 0 || gi >= gate.size) throw new Error(`${kernel}: gate index ${gi} is outside the gate tensor (${gate.label}, ${gate.size} values)`);
}

/** y = x + sigmoid(gate[gi]) * t over the first n values (y apart from x and t). */
export function prepareFuse(gpu: Gpu, x: Tensor, t: Tensor, gate: Tensor, gi: number, y: Tensor, n: number, o: GridOptions = {}): Dispatch {
  const name = 'c2c_fuse';
  checkDims(name, { n }, { n: 1 });
  checkGate(name, gate, gi);
  for (const [what, u] of [['x', x], ['t', t], ['y', y]] as const) checkTensor(name, what, u, n, { n });
  checkDistinct(name, { x, t, gate }, { y });
  return gpu.prepare(spec(name, ['read', 'read', 'read', 'write']), [x, t, gate, y], { n, gi }, [gridSize(gpu, name, Math.ceil(n / WG), o), 1, 1]);
}

/** dx = dy and dt = sigmoid(gate[gi]) * dy over the first n values (both overwritten). */
export function prepareFuseBackward(gpu: Gpu, dy: Tensor, gate: Tensor, gi: number, dx: Tensor, dt: Tensor, n: number, o: GridOptions = {}): Dispatch {
  const name = 'c2c_fuse_back';
  checkDims(name, { n }, { n: 1 });
  checkGate(name, gate, gi);
  for (const [what, u] of [['dy', dy], ['dx', dx], ['dt', dt]] as const) checkTensor(name, what, u, n, { n });
  checkDistinct(name, { dy, gate }, { dx, dt });
  return gpu.prepare(spec(name, ['read', 'read', 'write', 'write']), [dy, gate, dx, dt], { n, gi }, [gridSize(gpu, name, Math.ceil(n / WG), o), 1, 1]);
}

/** dgate[gi] += s (1 - s) * sum_i t[i] dy[i], s = sigmoid(gate[gi]): one workgroup. */
export function prepareGateGrad(gpu: Gpu, t: Tensor, dy: Tensor, gate: Tensor, gi: number, dgate: Tensor, n: number): Dispatch {
  const name = 'c2c_gate_grad';
  checkDims(name, { n }, { n: 1 });
  checkGate(name, gate, gi);
  checkGate(name, dgate, gi);
  for (const [what, u] of [['t', t], ['dy', dy]] as const) checkTensor(name, what, u, n, { n });
  checkDistinct(name, { t, dy, gate }, { dgate });
  return gpu.prepare(spec(name, ['read', 'read', 'read', 'write']), [t, dy, gate, dgate], { n, gi }, [1, 1, 1]);
}
