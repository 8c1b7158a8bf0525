// Pretraining a toy base model from scratch on the synthetic corpus (src/tasks/corpus.ts): skyline
// and text-message episodes of every task, so the base model knows the formats; communicating
// through latents is what the adapters add later. Runs the same in the worker and in Node.
import type { Gpu } from '../gpu/runtime';
import type { LlamaConfig } from '../storage/checkpoint';
import { Corpus, requiredSeqLen, unigramEntropy } from '../tasks/corpus';
import { TASK_NAMES } from '../tasks/tasks';
import { defaultTokenizer, type CharTokenizer } from '../tasks/tokenizer';
import { presetConfig, type ModelConfig } from './config';
import { initWeights, LlamaGpu, ModelPass } from './model';
import { baseTrainParams, Optimizer, Trainer, type StepResult, type TrainHyper } from './train';

export interface PretrainOptions {
  preset: string;
  steps: number;
  seed: number;
  /** Sequences per micro-batch. */
  batch: number;
  lr: number;
  warmupSteps?: number;
  accumSteps?: number;
  /** Difficulties the corpus draws from (default 1..5, so out-of-distribution formats are seen). */
  difficulties?: number[];
  onStep?: (r: PretrainStep) => void | Promise<void>;
  /** Polled between steps: true ends pretraining early (the weights so far are returned). */
  shouldStop?: () => boolean;
}

export interface PretrainStep extends StepResult {
  totalSteps: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

export interface PretrainResult {
  config: LlamaConfig;
  weights: Map<string, Float32Array>;
  tokenizer: CharTokenizer;
  /** Unigram entropy of the corpus (nats): the loss a model that ignores context reaches. */
  unigramEntropy: number;
  losses: number[];
  provenance: Record<string, unknown>;
}

/** A full Hugging Face LlamaConfig for one of our model configs and the character tokenizer. */
export function toLlamaConfig(c: ModelConfig, tokenizer: CharTokenizer): LlamaConfig {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    vocab_size: c.vocab_size,
    rope_theta: c.rope_theta,
    rms_norm_eps: c.rms_norm_eps,
    tie_word_embeddings: c.tie_word_embeddings,
    max_position_embeddings: c.max_position_embeddings ?? 256,
    head_dim: c.hidden_size / c.num_attention_heads,
    torch_dtype: 'float32',
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  };
}

export async function pretrainBase(gpu: Gpu, o: PretrainOptions): Promise<PretrainResult> {
  const tokenizer = defaultTokenizer();
  const config = presetConfig(o.preset, tokenizer.vocabSize);
  const difficulties = o.difficulties ?? [1, 2, 3, 4, 5];
  const seqLen = requiredSeqLen(TASK_NAMES, difficulties);
  const corpus = new Corpus({ tasks: TASK_NAMES, difficulty: difficulties, seed: o.seed, seqLen, tokenizer });
  const entropy = unigramEntropy(corpus, 2000);
  const hyper: TrainHyper = {
    lr: o.lr, warmupSteps: o.warmupSteps ?? Math.min(100, Math.ceil(o.steps / 10)), totalSteps: o.steps,
    weightDecay: 0.01, clip: 1, accumSteps: o.accumSteps ?? 1,
  };
  const model = new LlamaGpu(gpu, config, initWeights(config, o.seed));
  const params = baseTrainParams(model);
  const pass = new ModelPass(model, { B: o.batch, S: seqLen, P: 0, input: 'ids' }, { backward: true, baseGrads: true, label: 'pretrain' });
  const optimizer = new Optimizer(gpu, params, hyper);
  const trainer = new Trainer(pass, optimizer);
  const losses: number[] = [];
  const t0 = performance.now();
  let tokens = 0;
  try {
    for (let s = 0; s < o.steps; s++) {
      if (o.shouldStop?.()) break;
      const r = await trainer.step(() => {
        const b = corpus.nextBatch(o.batch);
        return { ids: b.inputs, targets: b.targets };
      });
      tokens += r.tokens;
      losses.push(r.loss);
      const elapsed = (performance.now() - t0) / 1000;
      await o.onStep?.({ ...r, totalSteps: o.steps, tokensPerSecond: tokens / elapsed, elapsedSeconds: elapsed });
    }
    const weights = await model.export();
    return {
      config: toLlamaConfig(config, tokenizer),
      weights,
      tokenizer,
      unigramEntropy: entropy,
      losses,
      provenance: {
        preset: o.preset, steps: losses.length, seed: o.seed, batch: o.batch, lr: o.lr, seqLen,
        difficulties, finalLoss: losses[losses.length - 1], unigramEntropy: entropy,
        seconds: (performance.now() - t0) / 1000, adapter: gpu.report.description || gpu.report.vendor,
      },
    };
  } finally {
    trainer.destroy();
    optimizer.destroy();
    pass.destroy();
    model.destroy();
  }
}
