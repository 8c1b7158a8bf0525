// The GGUF conversion of the library's import (src/storage/gguf-import.ts: parse, dequantize to
// float32, config and tokenizer, one stored zip), in a worker of its own so that the page stays
// responsive: a 135M-parameter file takes seconds. Started per import by src/ui/gguf-convert.ts.
import { expose, transfer } from 'comlink';
import { ggufImportZip } from '../storage/gguf-import';

const api = {
  convert(name: string, bytes: Uint8Array, onTensor: (done: number, total: number) => void): { name: string; bytes: Uint8Array } {
    let last = 0;
    const out = ggufImportZip(name, bytes, (done, total) => {
      // a message per tenth of the tensors, not per tensor
      if (done === total || done - last >= total / 10) {
        last = done;
        void Promise.resolve(onTensor(done, total)).catch(() => undefined);
      }
    });
    return transfer(out, [out.bytes.buffer]);
  },
};

export type GgufWorkerApi = typeof api;
expose(api);
