// Training against the float64 reference (losses of a short run with clipping, weight decay and
// gradient accumulation), the schedule, the no-allocation property of a step, pretraining that
// learns, divergence detection, and greedy decoding with the KV cache.
import { describe, expect, it } from 'vitest';
import { LlamaGpu, LoraGpu, ModelPass } from '../src/model/model';
import { baseTrainParams, DivergedError, loraTrainParams, lrAt, Optimizer, Trainer, validateHyper, type TrainHyper } from '../src/model/train';
import { autoBuckets, presetRecipe, pretrainBase, SkylineProbe } from '../src/model/pretrain';
import { Generator } from '../src/model/generate';
import { paramShapes, type ModelConfig } from '../src/model/config';
import { initRefParams, refGenerate, refLossAndGrads } from '../src/reference/model';
import { adamWRef, clipScaleRef } from '../src/reference/optimizer';
import { rng, testGpu } from './helpers';
import { loadBaseModel } from '../src/cli/files';
import { MasEngine, Run, defaultRunConfig } from '../src/mas/run';
import { single } from '../src/mas/topology';
import { Corpus, requiredSeqLen } from '../src/tasks/corpus';
import { makeTask } from '../src/tasks/tasks';

const CFG: ModelConfig = {
  hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  vocab_size: 11, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true,
};

describe('learning-rate schedule', () => {
  const h: TrainHyper = { lr: 1, minLr: 0.1, warmupSteps: 10, totalSteps: 110, weightDecay: 0, clip: 0, accumSteps: 1 };
  it('warms up linearly, then decays by cosine to minLr', () => {
    expect(lrAt(1, h)).toBeCloseTo(0.1, 12);
    expect(lrAt(10, h)).toBeCloseTo(1, 12);
    expect(lrAt(60, h)).toBeCloseTo(0.55, 12);
    expect(lrAt(110, h)).toBeCloseTo(0.1, 12);
  });
  it('refuses out-of-range settings with the value', () => {
    expect(() => validateHyper({ ...h, lr: -1 })).toThrow(/learning rate must be in \(0, 10\), got -1/);
    expect(() => validateHyper({ ...h, accumSteps: 0 })).toThrow(/accumulation steps/);
  });
});

describe('a short training run matches the float64 reference', () => {
  it('4 steps, 2 micro-batches each, clipping and weight decay: losses per step', async () => {
    const gpu = await testGpu();
    const [B, S] = [2, 5];
    const T = B * S;
    const hyper: TrainHyper = { lr: 0.02, minLr: 0.002, warmupSteps: 1, totalSteps: 4, weightDecay: 0.1, clip: 0.5, accumSteps: 2 };
    const params = initRefParams(CFG, 3, 0.2);
    const r = rng(5);
    const batches = Array.from({ length: 8 }, () => ({
      ids: Uint32Array.from({ length: T }, () => Math.floor(r() * 11)),
      targets: Uint32Array.from({ length: T }, () => Math.floor(r() * 11)),
    }));
    // Reference: AdamW (torch semantics) with global-norm clipping over the accumulated gradient.
    const m = new Map<string, Float64Array>();
    const v = new Map<string, Float64Array>();
    for (const [k, a] of params) {
      m.set(k, new Float64Array(a.length));
      v.set(k, new Float64Array(a.length));
    }
    const refLosses: number[] = [];
    for (let step = 1; step <= 4; step++) {
      const acc = new Map<string, Float64Array>();
      let loss = 0;
      for (let i = 0; i < 2; i++) {
        const b = batches[(step - 1) * 2 + i];
        const out = refLossAndGrads(CFG, params, { ids: b.ids }, { B, S, targets: b.targets });
        loss += out.loss / 2;
        for (const [k, g] of out.grads.params) {
          const t = acc.get(k) ?? new Float64Array(g.length);
          for (let j = 0; j < g.length; j++) t[j] += g[j];
          acc.set(k, t);
        }
      }
      refLosses.push(loss);
      const { scale } = clipScaleRef([...acc.values()], hyper.clip, 1 / hyper.accumSteps);
      for (const [k, p] of params) {
        const decay = k.endsWith('norm.weight') ? 0 : hyper.weightDecay;
        const o = adamWRef(p, acc.get(k)!, m.get(k)!, v.get(k)!, { lr: lrAt(step, hyper), beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: decay, gradScale: 1 / hyper.accumSteps }, step, scale);
        params.set(k, o.param);
        m.set(k, o.m);
        v.set(k, o.v);
      }
    }

    const init = initRefParams(CFG, 3, 0.2);
    const model = new LlamaGpu(gpu, CFG, new Map([...init].map(([k, a]) => [k, Float32Array.from(a)])));
    const trainParams = baseTrainParams(model);
    const pass = new ModelPass(model, { B, S, P: 0, input: 'ids' }, { backward: true, baseGrads: true });
    const opt = new Optimizer(gpu, trainParams, hyper);
    const trainer = new Trainer(pass, opt);
    let next = 0;
    const losses: number[] = [];
    for (let step = 1; step <= 4; step++) losses.push((await trainer.step(() => batches[next++])).loss);
    // Losses: f32 vs f64 through 4 AdamW steps whose updates (lr 0.02) dominate the rounding; the
    // parameters after training agree to ~1e-5 relative, the losses to better than 1e-4.
    for (let i = 0; i < 4; i++) expect(Math.abs(losses[i] - refLosses[i]) / refLosses[i], `step ${i + 1}`).toBeLessThan(1e-4);
    const after = await model.export();
    let worst = 0;
    for (const name of paramShapes(CFG).keys()) {
      const a = after.get(name)!;
      const b = params.get(name)!;
      for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]) / (1 + Math.abs(b[j])));
    }
    expect(worst).toBeLessThan(1e-4);
    console.log(`losses gpu ${losses.map((x) => x.toFixed(5)).join(' ')} / ref ${refLosses.map((x) => x.toFixed(5)).join(' ')}; worst parameter error ${worst.toExponential(2)}`);

    // A step creates no pipelines and no buffers (everything is made once per shape).
    const [pipes, bufs] = [gpu.pipelinesCompiled, gpu.buffersCreated];
    next = 0;
    await trainer.step(() => batches[next++]);
    expect([gpu.pipelinesCompiled - pipes, gpu.buffersCreated - bufs]).toEqual([0, 0]);
    trainer.destroy();
    opt.destroy();
    pass.destroy();
    model.destroy();
  });

  it('a diverging run stops with DivergedError (NaN loss), naming the step', async () => {
    const gpu = await testGpu();
    const model = new LlamaGpu(gpu, CFG);
    const lora = new LoraGpu(gpu, CFG, { r: 2, alpha: 4, targets: ['q_proj', 'v_proj'], layers: null }, 1);
    const pass = new ModelPass(model, { B: 1, S: 4, P: 0, input: 'ids' }, { backward: true, lora });
    const opt = new Optimizer(gpu, loraTrainParams(lora), { lr: 1e-3, warmupSteps: 0, totalSteps: 5, weightDecay: 0, clip: 0, accumSteps: 1 });
    const trainer = new Trainer(pass, opt);
    // Poison the embedding: NaN flows to the loss.
    gpu.write(model.param('model.embed_tokens.weight'), new Float32Array(CFG.vocab_size * CFG.hidden_size).fill(NaN));
    await expect(trainer.step(() => ({ ids: [1, 2, 3, 4], targets: [2, 3, 4, 5] }))).rejects.toThrow(DivergedError);
    await expect(trainer.step(() => ({ ids: [1, 2, 3, 4], targets: [2, 3, 4, 5] }))).rejects.toThrow(/training diverged at step 2: loss is NaN/);
    [trainer, opt, pass, lora, model].forEach((x) => x.destroy());
  });
});

describe('pretraining', () => {
  it('pretraining the tiny preset drives the loss well below the unigram entropy', async () => {
    const gpu = await testGpu();
    const res = await pretrainBase(gpu, { preset: 'tiny', steps: 80, seed: 3, batch: 6, lr: 6e-3, warmupSteps: 10, probeEvery: 0 });
    const tail = res.losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
    console.log(`unigram entropy ${res.unigramEntropy.toFixed(3)} nats; first loss ${res.losses[0].toFixed(3)}; mean of the last 10 ${tail.toFixed(3)}`);
    // A model that ignores context cannot go below the unigram entropy; the formats' fixed cues make
    // context pay off at once. 80 small steps (CI-sized) must already be 15% below it; the shipped
    // checkpoints, trained longer, end far lower (see their training_args.json and bench/RESULTS.md).
    expect(tail).toBeLessThan(0.85 * res.unigramEntropy);
    expect(res.config.vocab_size).toBe(res.tokenizer.vocabSize);
  }, 900_000);
});

describe('pretraining: length buckets and the held-out probe', () => {
  it('steps run in every bucket (one pass each); probes at their steps; provenance records the recipe', async () => {
    const gpu = await testGpu();
    const steps: number[] = [];
    const res = await pretrainBase(gpu, {
      preset: 'tiny', steps: 16, seed: 2, batch: 4, lr: 3e-3, warmupSteps: 2, probeEvery: 8, probeSize: 6,
      onStep: (r) => void steps.push(r.seqLen),
    });
    const p = res.provenance as Record<string, any>;
    const recipe = presetRecipe('tiny');
    expect(p.recipe).toEqual(recipe);
    expect(p.buckets[p.buckets.length - 1]).toBe(p.seqLen);
    for (let i = 1; i < p.buckets.length; i++) expect(p.buckets[i]).toBeGreaterThan(p.buckets[i - 1]);
    for (const S of steps) expect(p.buckets).toContain(S);
    expect(new Set(steps).size).toBeGreaterThan(1); // more than one bucket was used
    expect(p.tokens).toBe(steps.reduce((a, S) => a + 4 * S, 0));
    expect(p.realTokens).toBeLessThan(p.tokens);
    expect(res.probes.map((x) => x.step)).toEqual([8, 16]);
    for (const pr of res.probes) {
      expect(Object.keys(pr.accuracy)).toEqual(recipe.probe);
      for (const a of Object.values(pr.accuracy)) expect(a * 6).toBeCloseTo(Math.round(a * 6), 9); // a count of 6
    }
    expect(p.probes).toEqual(res.probes);
    expect(res.losses).toHaveLength(16);
  }, 900_000);

  it('the probe (teacher-forced exact match, one forward) equals greedy skyline accuracy from the experiment path', async () => {
    const gpu = await testGpu();
    const base = await loadBaseModel('public/models/tiny');
    const engine = new MasEngine(gpu, base);
    try {
      for (const [task, d] of [['lookup', 1], ['relay', 2], ['arith', 1]] as const) {
        const t = makeTask(task, d);
        const run = new Run(engine, defaultRunConfig({ task, difficulty: d, method: 'skyline', modelId: base.id, topology: single(t.finalRole), evalSize: 48, batch: 16 }));
        try {
          const eps = run.evalSet('heldout');
          const greedy = await run.evaluate('heldout');
          const probe = new SkylineProbe(engine.model, SkylineProbe.encode(base.tokenizer!, [{ name: `${task}:${d}`, episodes: eps }]));
          const acc = (await probe.run(gpu))[`${task}:${d}`];
          probe.destroy();
          expect(acc).toBe(greedy.accuracy);
        } finally {
          run.destroy();
        }
      }
    } finally {
      engine.destroy();
    }
  }, 900_000);

  it('auto buckets are the quartiles of the corpus lengths, ending at its seqLen', () => {
    const r = presetRecipe('toy');
    const c = new Corpus({ tasks: r.tasks, difficulty: r.difficulties, seed: 1, seqLen: requiredSeqLen(r.tasks, r.difficulties, r.quiz), weights: r.weights, quiz: r.quiz });
    const b = autoBuckets(c);
    expect(b.length).toBeGreaterThanOrEqual(2);
    expect(b[b.length - 1]).toBe(c.seqLen);
    expect(b[0]).toBeLessThan(c.seqLen / 2);
  });
});

describe('greedy decoding with the KV cache', () => {
  it('matches the reference decoding (full recomputation) token for token', async () => {
    const gpu = await testGpu();
    const params = initRefParams(CFG, 9, 0.5);
    const prompts = [[1, 4, 7, 2, 9], [3, 3, 8, 0, 5]];
    const ref = refGenerate(CFG, params, prompts.flat(), 6, { B: 2 });
    const model = new LlamaGpu(gpu, CFG, new Map([...params].map(([k, a]) => [k, Float32Array.from(a)])));
    const gen = new Generator(model);
    const out = await gen.generate(prompts, { maxNewTokens: 6 });
    expect(out.tokens).toEqual([Array.from(ref.tokens.subarray(0, 6)), Array.from(ref.tokens.subarray(6, 12))]);
    // Decoding again reuses the passes (no new pipelines).
    const pipes = gpu.pipelinesCompiled;
    const again = await gen.generate(prompts, { maxNewTokens: 6 });
    expect(again.tokens).toEqual(out.tokens);
    expect(gpu.pipelinesCompiled).toBe(pipes);
    gen.destroy();
    model.destroy();
  });
});
