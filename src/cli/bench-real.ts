// Bench section 'real' (opt-in: `--only real`): one LoRA DiffMAS training step at the shape of a real
// small model, SmolLM2-135M (hidden 576, 30 layers, 9 query / 3 kv heads of 64, intermediate 1536,
// vocab 49,152, tied embeddings), random weights, through Run.trainStep as the page and the CLI drive
// it. Prints tokens/s; the peak GPU memory measured (Gpu.memory) against the estimate's weights,
// adapters with their gradients and AdamW moments, and activations (src/mas/memory.ts); and the share
// of the step spent in the lm_head (its matmuls and the cross-entropy, every pass of the step's
// rollout timed alone). Two rows: senders computing their logits as every pass used to, and senders
// skipping them (the default since this bench measured it), so the gain of that change is visible.
// The tokenizer is byte-level without merges (each character one token: prompts are as long as their
// text), the rendering the char one, the latent map the identity (a ridge solve over 49k rows is a
// one-off cost of seconds in JS, not part of a step).
import type { Gpu } from '../gpu/runtime';
import { countParams, type LlamaConfig, type ModelConfig } from '../model/config';
import { initWeights } from '../model/model';
import { estimateRunMemory, type RunMemory } from '../mas/memory';
import { MasEngine, Run, defaultRunConfig } from '../mas/run';
import { presetForTask } from '../mas/topology';
import type { BaseModel } from '../mas/types';
import { makeTask } from '../tasks/tasks';
import { HfTokenizer } from '../tokenizers/hf';
import { makeRow, median, type BenchCheck, type BenchContext, type BenchRow } from './bench-util';

/** SmolLM2-135M's config.json, as the hub has it (the fields the engine reads). */
export const SMOLLM2_135M: ModelConfig = {
  model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
  head_dim: 64, vocab_size: 49152, rope_theta: 100000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 2048,
};

/** A byte-level tokenizer.json without merges: 256 byte tokens and <|endoftext|> (GPT-2's byte-to-character table). */
export function byteTokenizer(): HfTokenizer {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) (bs.push(b), cs.push(256 + n++));
  const vocab: Record<string, number> = {};
  bs.forEach((b, i) => (vocab[String.fromCodePoint(cs[i])] = b));
  const json = {
    version: '1.0', added_tokens: [{ id: 256, content: '<|endoftext|>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false }],
    normalizer: null, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null, decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', vocab, merges: [], unk_token: null, fuse_unk: false, byte_fallback: false, dropout: null, continuing_subword_prefix: null, end_of_word_suffix: null },
  };
  return new HfTokenizer(json, {}, { bos: null, eos: 256, pad: 256 });
}

export interface RealBenchOptions {
  shape?: ModelConfig;
  shapeName?: string;
  batch: number;
  latentSteps: number;
  /** Timed steps after the warm-up step. */
  steps: number;
}

const MB = 2 ** 20;

export async function benchReal(gpu: Gpu, ctx: BenchContext, o: RealBenchOptions): Promise<{ rows: BenchRow[]; checks: BenchCheck[] }> {
  const shape = o.shape ?? SMOLLM2_135M;
  const name = o.shapeName ?? 'SmolLM2-135M shape';
  const tokenizer = byteTokenizer();
  const config: LlamaConfig = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', head_dim: shape.head_dim ?? shape.hidden_size / shape.num_attention_heads,
    max_position_embeddings: 2048, torch_dtype: 'float32', bos_token_id: null, eos_token_id: 256, pad_token_id: 256, ...shape,
  } as LlamaConfig;
  ctx.log(`real: ${name}: ${countParams(config).toLocaleString('en-US')} parameters, random weights (drawing them takes a few seconds)`);
  const base: BaseModel = { id: `bench:${name}`, config, weights: initWeights(config, 1), tokenizer };
  const run = defaultRunConfig({
    task: 'lookup', difficulty: 1, method: 'diffmas', topology: presetForTask(makeTask('lookup', 1), { latentSteps: o.latentSteps }), modelId: base.id,
    steps: 100_000, batch: o.batch, evalEvery: 0, seed: 1, latentMap: 'identity', rendering: 'char',
    lora: { r: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  });
  const rows: BenchRow[] = [];
  const checks: BenchCheck[] = [];
  for (const senderLogits of [true, false]) {
    const label = senderLogits ? 'senders compute logits' : 'senders skip lm_head';
    const est: RunMemory = estimateRunMemory(base, run, undefined, { senderLogits });
    await gpu.sync();
    const m0 = gpu.memory().current;
    gpu.resetPeakMemory();
    const engine = new MasEngine(gpu, base);
    const r = new Run(engine, run, { senderLogits });
    try {
      const first = await r.trainStep(); // builds the rollout and compiles its pipelines
      const ms: number[] = [];
      let tokens = first.tokens;
      for (let i = 0; i < o.steps; i++) {
        const t0 = performance.now();
        tokens = (await r.trainStep()).tokens;
        ms.push(performance.now() - t0);
      }
      const stepMs = median(ms);
      const peak = gpu.memory().peak - m0;
      // the lm_head alone: every pass's logits matmul, cross-entropy and lm_head backward, replayed
      const head = r.liveRollouts().flatMap((ro) => ro.agents.flatMap((a) => [a.prompt, ...a.latents.map((z) => z.pass)]))
        .flatMap((p) => [...p.lmHeadForward, ...p.lmHeadBackward]);
      const headMs: number[] = [];
      for (let i = 0; i < Math.max(2, o.steps); i++) {
        const t0 = performance.now();
        gpu.record(...head);
        await gpu.sync();
        headMs.push(performance.now() - t0);
      }
      const share = median(headMs) / stepMs;
      const row = makeRow('real', `diffmas ${name} B${o.batch} (${label})`, 'tokens/s', (tokens / stepMs) * 1000, null,
        'none (no same-run reference at this size)', {
          msPerStep: stepMs, tokensPerStep: tokens, lmHeadShare: share, lmHeadMs: median(headMs), lmHeadDispatches: head.length,
          peakMB: peak / MB, weightsMB: est.weights / MB, adaptersAdamMB: est.adapters / MB, activationsMB: est.activations / MB, estimateMB: est.total / MB,
          largestBufferMB: est.largest.bytes / MB, loss: first.loss,
        });
      rows.push(row);
      ctx.log(`real      ${row.name}: ${row.ours.toFixed(1)} tokens/s, ${(stepMs / 1000).toFixed(2)} s/step (${tokens} tokens); lm_head ${(share * 100).toFixed(1)}% of the step (${head.length} dispatches, ${(median(headMs) / 1000).toFixed(2)} s alone)`);
      ctx.log(`real      memory: peak ${(peak / MB).toFixed(1)} MB measured; estimate ${(est.total / MB).toFixed(1)} MB = weights ${(est.weights / MB).toFixed(1)} + LoRA, gradients and AdamW ${(est.adapters / MB).toFixed(1)} + activations ${(est.activations / MB).toFixed(1)}; largest buffer ${(est.largest.bytes / MB).toFixed(1)} MB (${est.largest.label})`);
      checks.push({
        section: 'real', name: `peak = estimate (${label})`, ok: peak <= est.total,
        values: { peakMB: peak / MB, estimateMB: est.total / MB }, detail: 'the measured peak of the step is at most the estimate shown before a run',
      });
    } finally {
      r.destroy();
      engine.destroy();
      await gpu.sync();
    }
  }
  return { rows, checks };
}
