// A GGUF file to the zip of its Hugging Face files, converted in a worker of its own
// (src/worker/gguf.worker.ts) that ends with the conversion; errors come back with the reader's message.
import { proxy, transfer, wrap } from 'comlink';
import type { GgufWorkerApi } from '../worker/gguf.worker';

export async function convertGguf(
  name: string, bytes: Uint8Array, onTensor: (done: number, total: number) => void,
): Promise<{ name: string; bytes: Uint8Array }> {
  const worker = new Worker(new URL('../worker/gguf.worker.ts', import.meta.url), { type: 'module', name: 'gguf' });
  try {
    const api = wrap<GgufWorkerApi>(worker);
    return await api.convert(name, transfer(bytes, [bytes.buffer]), proxy(onTensor));
  } finally {
    worker.terminate();
  }
}
