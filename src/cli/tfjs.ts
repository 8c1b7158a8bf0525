// tfjs-backend-webgpu in Node as a same-run reference for the benchmark (../shared/ci-notes.md):
// the backend looks for navigator.gpu, so Dawn's GPU object is installed there before it loads.
import { nodeGpuEntry } from '../gpu/node';

export type Tf = typeof import('@tensorflow/tfjs-core');

let loaded: Promise<Tf> | null = null;

export function loadTfjsWebgpu(): Promise<Tf> {
  loaded ??= (async () => {
    const gpu = await nodeGpuEntry();
    const g = globalThis as { navigator?: unknown };
    if (!g.navigator || !(g.navigator as { gpu?: unknown }).gpu) {
      Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true, writable: true });
    }
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-core/dist/register_all_gradients');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not start its WebGPU backend');
    await tf.ready();
    return tf;
  })();
  return loaded;
}
