// The memory estimate a run shows before it starts (src/mas/memory.ts) is what the run allocates: the
// run is built on an accounting device by the engine's own code, so the figures must equal a real
// device's Gpu.memory() exactly, for every channel, on a char toy and on a Qwen3 with a BPE vocabulary.
import { describe, expect, it } from 'vitest';
import { estimateRunMemory, memoryProblem } from '../src/mas/memory';
import { MasEngine, Run, defaultRunConfig, MAX_ROLLOUTS } from '../src/mas/run';
import { presetForTask } from '../src/mas/topology';
import type { BaseModel } from '../src/mas/types';
import { toLlamaConfig } from '../src/model/pretrain';
import { initWeights } from '../src/model/model';
import type { MethodName } from '../src/worker/api';
import { makeTask } from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';
import { loadTokenizer } from '../src/tokenizers';
import { decodeCheckpoint } from '../src/storage/checkpoint';
import { byteLevelBpe, hfCheckpoint } from './hf-fixtures';
import { testGpu } from './helpers';

const tk = defaultTokenizer();
const charCfg = { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: tk.vocabSize, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 256 };
const charBase: BaseModel = { id: 'mem-char', config: toLlamaConfig(charCfg, tk), weights: initWeights(charCfg, 3), tokenizer: tk };
const ck = decodeCheckpoint(hfCheckpoint({ type: 'qwen3', dtype: 'BF16', tokenizer: byteLevelBpe() }).files);
const qwenBase: BaseModel = { id: 'mem-qwen3', config: ck.config, weights: ck.tensors, tokenizer: loadTokenizer(ck) };

const config = (method: MethodName, batch: number) => defaultRunConfig({
  task: 'lookup', method, topology: presetForTask(makeTask('lookup', 2), { latentSteps: 2 }), difficulty: 2, modelId: 'x',
  steps: 3, batch, evalSize: 8, lora: { r: 4, alpha: 8, targets: ['q_proj', 'v_proj'] },
});

describe('the run memory estimate equals what a run allocates', () => {
  for (const [name, base] of [['char toy', charBase], ['Qwen3 with a BPE tokenizer', qwenBase]] as const) {
    for (const method of ['diffmas', 'latentmas', 'text', 'skyline'] as MethodName[]) {
      it(`${name}: ${method}`, async () => {
        const cfg = config(method, 5);
        const est = estimateRunMemory(base, cfg);
        const gpu = await testGpu();
        const m0 = gpu.memory().current;
        const engine = new MasEngine(gpu, base);
        const m1 = gpu.memory().current;
        const run = new Run(engine, cfg);
        const m2 = gpu.memory().current;
        run.prepareShapes();
        const m3 = gpu.memory().current;
        expect({ weights: m1 - m0, adapters: m2 - m1, activations: m3 - m2 }).toEqual({ weights: est.weights, adapters: est.adapters, activations: est.activations });
        expect(est.total).toBe(est.weights + est.adapters + est.activations);
        expect(run.rolloutCount).toBeLessThanOrEqual(MAX_ROLLOUTS);
        if (method === 'diffmas') expect(est.adapters).toBeGreaterThan(0);
        run.destroy();
        engine.destroy();
        expect(gpu.memory().current).toBe(m0);
      });
    }
  }

  it('activations grow with the batch; a buffer past the device limit is refused with the reason', () => {
    const small = estimateRunMemory(charBase, config('diffmas', 2));
    const big = estimateRunMemory(charBase, config('diffmas', 16));
    expect(big.activations).toBeGreaterThan(4 * small.activations);
    expect(big.weights).toBe(small.weights);
    expect(memoryProblem(big, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 }, { batch: 16 })).toBeNull();
    const msg = memoryProblem(big, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 1024 }, { batch: 16 });
    expect(msg).toMatch(/^this run needs a GPU buffer of [\d.]+ MB \(.+\), more than the 0\.0 MB this adapter can bind as one buffer/);
    expect(msg).toMatch(/lower the batch \(now 16\)/);
  });
});
