// Real Hugging Face model kinds (issue 12), on tiny random checkpoints the tests write themselves
// (tests/hf-fixtures.ts): Llama, Qwen2 and Qwen3; F32, F16 and BF16 on disk; single and sharded;
// tied and untied; with a byte-level or a sentencepiece-style BPE tokenizer.json, or none. Each
// kind loads (the weights exactly as stored), matches the float64 reference on logits and every
// gradient, runs every method on the word rendering of a task, and the tokenizers round-trip.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBaseModel, writeFolder } from '../src/cli/files';
import { RunController } from '../src/mas/controller';
import { presetForTask } from '../src/mas/topology';
import { defaultRunConfig } from '../src/mas/run';
import type { BaseModel } from '../src/mas/types';
import { paramShapes, type ModelConfig } from '../src/model/config';
import { LlamaGpu, LoraGpu, ModelPass } from '../src/model/model';
import { initRefLora, refBackward, refForward } from '../src/reference/model';
import { decodeCheckpoint, encodeCheckpoint } from '../src/storage/checkpoint';
import { CHAR_RENDERING, KEY_WORDS, WORD_RENDERING } from '../src/tasks/render';
import { formatPrompt, formatSkyline, formatTarget, makeTask, sampleEpisodes, TASK_NAMES, textMessageFormat, type Episode } from '../src/tasks/tasks';
import { HfTokenizer, loadTokenizer, stopsText, type TextTokenizer } from '../src/tokenizers';
import { METHODS, type MethodName } from '../src/worker/api';
import { byteLevelBpe, hfCheckpoint, sentencepieceBpe, type Dtype, type FixtureOptions } from './hf-fixtures';
import { normErr, randn, rng, testGpu } from './helpers';

const BYTE = byteLevelBpe();
const SP = sentencepieceBpe();
const hfTok = (t: typeof BYTE, ids: { bos: number | null; eos: number; pad?: number | null }) => new HfTokenizer(t.json, t.config, ids);

let workDir: Promise<string> | undefined;
const ctl = (async () => new RunController(await testGpu()))();
afterAll(async () => {
  (await ctl).dispose();
  if (workDir) await rm(await workDir, { recursive: true, force: true });
});

const lookupEp = (): Episode => sampleEpisodes(makeTask('lookup', 1), 'heldout', 1, 3)[0];

describe('tokenizer.json through @huggingface/tokenizers', () => {
  const texts = [
    'Table: apple=3, key=7.\nQuestion: key?\nAnswer: 7',
    'Secret: q b x z.\nRelay: m p o a.\nQuestion: letter 3 of the secret?\nAnswer: x',
    'a = 37.\nb = 5.\nQuestion: a - b?\nAnswer: -32',
    'unseen words, UPPER case and digits 0123456789 with tabs\tand ünïcödé é 🙂',
  ];
  for (const [name, t, ids] of [
    ['byte-level BPE (SmolLM2 / Qwen style, no <bos>)', BYTE, { bos: null, eos: BYTE.eos, pad: BYTE.pad }],
    ['sentencepiece-style BPE with byte fallback (Llama 2 / tinyllamas style, <s> opens)', SP, { bos: 1, eos: 2, pad: null }],
  ] as const) {
    it(`${name}: text round-trips, markers become the model's specials`, () => {
      const tk = hfTok(t, ids);
      expect(tk.kind).toBe('hf');
      expect(tk.vocabSize).toBe(t.vocabSize);
      for (const s of texts) {
        const enc = tk.encode(s);
        expect(enc.length).toBeGreaterThan(0);
        expect(enc.every((id) => Number.isInteger(id) && id >= 0 && id < tk.vocabSize)).toBe(true);
        expect(tk.decode(enc)).toBe(s);
      }
      // merges were learned on the word rendering: its text is shorter in tokens than in bytes
      expect(tk.encode(texts[0]).length).toBeLessThan(texts[0].length * 0.7);
      const withMarkers = tk.encode('<bos>Question: key?\nAnswer: 7<eos>');
      if (ids.bos === null) expect(withMarkers[0]).not.toBe(t.eos);
      else expect(withMarkers[0]).toBe(ids.bos);
      expect(withMarkers[withMarkers.length - 1]).toBe(ids.eos);
      expect(tk.isSpecial(ids.eos)).toBe(true);
      expect(tk.decode(withMarkers, { skipSpecials: true })).toBe('Question: key?\nAnswer: 7');
      // an answer is encoded as it continues its prompt (the whole text's tokens after the prompt's)
      const prompt = '<bos>Question: key?\nAnswer:';
      const cont = tk.encodeContinuation(prompt, ' 7<eos>');
      expect([...tk.encode(prompt), ...cont]).toEqual(tk.encode(prompt + ' 7<eos>'));
      // (a sentencepiece decoder strips the leading space of a text it decodes alone: Llama's Strip step)
      expect(tk.decode(cont, { skipSpecials: true }).trim()).toBe('7');
      // an id the model has beyond the tokenizer's (padded embeddings) decodes to nothing and stops decoding
      expect(tk.decode([tk.vocabSize + 1])).toBe('');
      expect(stopsText(tk, tk.vocabSize + 1)).toBe(true);
      // display labels and the decoding stop (a special, or a token holding a line end)
      const nl = tk.encode('\n');
      expect(stopsText(tk, nl[nl.length - 1])).toBe(true);
      expect(stopsText(tk, tk.encode(' key')[0])).toBe(false);
      expect(tk.tokenOf(tk.encode('7')[tk.encode('7').length - 1])).toContain('7');
    });
  }

  it('a checkpoint picks its tokenizer by tokenizer.json (char or Hugging Face), checked against vocab_size', () => {
    const config = { vocab_size: BYTE.vocabSize + 5, bos_token_id: null, eos_token_id: BYTE.eos, pad_token_id: null };
    const tk = loadTokenizer({ config, tokenizer: BYTE.json, tokenizerConfig: BYTE.config }) as TextTokenizer;
    expect(tk.kind).toBe('hf');
    expect([tk.bosId, tk.eosId, tk.padId]).toEqual([null, BYTE.eos, BYTE.eos]);
    expect(loadTokenizer({ config, tokenizer: null })).toBeNull();
    expect(() => loadTokenizer({ config: { ...config, vocab_size: 100 }, tokenizer: BYTE.json })).toThrow(
      `tokenizer.json has ${BYTE.vocabSize - 100} token(s) with an id at or above config.json's vocab_size 100, which the embedding has no row for: `,
    );
    expect(() => loadTokenizer({ config, tokenizer: { version: '1.0' } })).toThrow(/no "model" object/);
  });
});

describe('the word rendering of each task (and the char rendering unchanged)', () => {
  it('lookup, relay, arith as words: parts, prompts, skyline, target, messages', () => {
    const ep = lookupEp();
    const [table, key] = ep.contents;
    const entries: string[] = [];
    for (let i = 0; i < table.length; i += 2) entries.push(`${KEY_WORDS[table[i]]}=${table[i + 1]}`);
    expect(WORD_RENDERING.part(ep, 0)).toBe(`Table: ${entries.join(', ')}.`);
    expect(WORD_RENDERING.part(ep, 1)).toBe(`Question: ${KEY_WORDS[key]}?`);
    expect(WORD_RENDERING.prompt(ep, 1, { final: true })).toBe(`<bos>Question: ${KEY_WORDS[key]}?\nAnswer:`);
    expect(WORD_RENDERING.prompt(ep, 0, { send: true })).toBe(`<bos>Table: ${entries.join(', ')}.\nMessage:`);
    expect(WORD_RENDERING.prompt(ep, 1, { final: true, messages: [' hello'] })).toBe(`<bos>Message: hello\nQuestion: ${KEY_WORDS[key]}?\nAnswer:`);
    expect(WORD_RENDERING.skyline(ep)).toBe(`<bos>Table: ${entries.join(', ')}.\nQuestion: ${KEY_WORDS[key]}?\nAnswer:`);
    expect(WORD_RENDERING.target(ep)).toBe(` ${ep.answer}<eos>`);
    const relay = sampleEpisodes(makeTask('relay', 2), 'train', 1, 4)[0];
    expect(WORD_RENDERING.part(relay, 0)).toBe(`Secret: ${[...relay.contents[0]].join(' ')}.`);
    expect(WORD_RENDERING.part(relay, 1)).toBe(`Relay: ${[...relay.contents[1]].join(' ')}.`);
    expect(WORD_RENDERING.part(relay, 2)).toBe(`Question: letter ${relay.contents[2]} of the secret?`);
    const arith = sampleEpisodes(makeTask('arith', 2), 'train', 1, 4)[0];
    expect(WORD_RENDERING.part(arith, 0)).toBe(`a = ${arith.contents[0]}.`);
    expect(WORD_RENDERING.part(arith, 1)).toBe(`b = ${arith.contents[1]}.`);
    expect(WORD_RENDERING.part(arith, 2)).toBe(`Question: a ${arith.contents[2]} b?`);
    for (const t of TASK_NAMES) expect(WORD_RENDERING.maxAnswerChars(makeTask(t, 3))).toBe(makeTask(t, 3).maxAnswerLength + 1);
  });

  it('answers are scored on the decoded text', () => {
    const ep = lookupEp();
    for (const decoded of [` ${ep.answer}<|endoftext|>`, ` ${ep.answer}.\nQuestion`, `${ep.answer}</s>`, `  ${ep.answer} \n`]) {
      expect(WORD_RENDERING.isCorrect(ep, decoded), decoded).toBe(true);
    }
    expect(WORD_RENDERING.isCorrect(ep, ` ${ep.answer}${ep.answer}`)).toBe(false);
    expect(WORD_RENDERING.message.cut(' apple=3, key=7.\nmore')).toBe(' apple=3, key=7.');
  });

  it('the char rendering is the tasks.ts format, byte for byte', () => {
    for (const t of TASK_NAMES) {
      const task = makeTask(t, 2);
      for (const ep of sampleEpisodes(task, 'train', 5, 9)) {
        expect(CHAR_RENDERING.prompt(ep, task.finalRole, { final: true })).toBe(formatPrompt(ep, task.finalRole, { final: true }));
        expect(CHAR_RENDERING.prompt(ep, 0, { send: true, messages: ['x'] })).toBe(formatPrompt(ep, 0, { send: true, messages: ['x'] }));
        expect(CHAR_RENDERING.skyline(ep)).toBe(formatSkyline(ep));
        expect(CHAR_RENDERING.target(ep)).toBe(formatTarget(ep));
        expect(CHAR_RENDERING.part(ep, 0)).toBe(ep.parts[0]);
        expect(CHAR_RENDERING.message).toBe(textMessageFormat);
      }
    }
  });
});

// The kinds of the issue: each architecture, each dtype, sharded, tied and untied, each tokenizer.
const KINDS: { name: string; o: FixtureOptions }[] = [
  { name: 'Llama, BF16, sentencepiece-style tokenizer, untied', o: { type: 'llama', dtype: 'BF16', tokenizer: SP } },
  { name: 'Llama, F32, no tokenizer.json, tied, 3 shards', o: { type: 'llama', dtype: 'F32', tokenizer: null, tied: true, shards: 3 } },
  { name: 'Qwen2 (q/k/v biases), F16, byte-level BPE, tied', o: { type: 'qwen2', dtype: 'F16', tokenizer: BYTE, tied: true } },
  { name: 'Qwen3 (q/k norm, head_dim 8 of hidden 24 / 4 heads), BF16, byte-level BPE, untied, 2 shards', o: { type: 'qwen3', dtype: 'BF16', tokenizer: BYTE, shards: 2 } },
  { name: 'Qwen3 with attention_bias, F16, sentencepiece-style, tied', o: { type: 'qwen3', dtype: 'F16', tokenizer: SP, tied: true, config: { attention_bias: true } } },
  // issue 20 item 1: transformers 5's config layout, with Llama 3.x's RoPE scaling (head_dim 6: pair 0 kept,
  // pair 1 (wavelength 498) in the smoothed band [256, 1024], pair 2 divided by the factor)
  {
    name: 'Llama in transformers 5\'s layout (rope_parameters: llama3, theta 5e5), F32, no tokenizer.json, untied',
    o: {
      type: 'llama', dtype: 'F32', tokenizer: null, transformers5: true,
      config: {
        rope_theta: 500000,
        rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1024 },
      },
    },
  },
];

// max |gpu - ref| / max |ref| per tensor: as tests/model.test.ts (f32 through ~40 chained ops: ~1e-6
// observed; 1e-4 leaves a wide margin while a wrong index or a missing term is O(1)).
const TOL = 1e-4;

async function loadKind(o: FixtureOptions, i: number): Promise<{ base: BaseModel; fixture: ReturnType<typeof hfCheckpoint>; dir: string }> {
  workDir ??= mkdtemp(path.join(tmpdir(), 'hf-models-'));
  const fixture = hfCheckpoint({ ...o, seed: 10 * i + 1 });
  const dir = path.join(await workDir, `kind-${i}`);
  await writeFolder(dir, fixture.files);
  return { base: await loadBaseModel(dir), fixture, dir };
}

describe('each model kind loads, matches the float64 reference, and runs every method', () => {
  KINDS.forEach(({ name, o }, i) => {
    describe(name, () => {
      let loading: ReturnType<typeof loadKind> | undefined;
      const kind = () => (loading ??= loadKind(o, i));

      it('loads the weights exactly as stored, with its tokenizer (or none), and saves back as a valid checkpoint', async () => {
        const { base, fixture } = await kind();
        expect(base.config.model_type).toBe(o.type);
        expect(base.config.architectures[0]).toBe({ llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[o.type]);
        expect([...base.weights.keys()].sort()).toEqual([...fixture.weights.keys()].sort());
        for (const [k, v] of fixture.weights) expect(base.weights.get(k), k).toEqual(v);
        expect(base.tokenizer?.kind ?? null).toBe(o.tokenizer ? 'hf' : null);
        // re-encoded as F32 (what the page stores and the CLI writes) it decodes to the same model
        const again = decodeCheckpoint(encodeCheckpoint({ config: base.config, tensors: base.weights, tokenizer: base.tokenizer?.toJSON() ?? null, tokenizerConfig: base.tokenizerConfig }));
        expect(again.config).toEqual({ ...base.config, torch_dtype: 'float32' });
        for (const [k, v] of base.weights) expect(again.tensors.get(k), k).toEqual(v);
        expect(again.tokenizer === null).toBe(!o.tokenizer);
      });

      it('logits and every gradient (weights, biases, q/k norms, LoRA, prefix K/V) match the float64 reference', async () => {
        const { base } = await kind();
        const gpu = await testGpu();
        const cfg = base.config as ModelConfig;
        const [B, S, P] = [2, 4, 2];
        const T = B * S;
        const L = cfg.num_hidden_layers;
        const kvDim = base.config.head_dim * cfg.num_key_value_heads;
        const params = new Map([...base.weights].map(([k, v]) => [k, Float64Array.from(v)]));
        const r = rng(7 + i);
        const ids = Uint32Array.from({ length: T }, () => Math.floor(r() * cfg.vocab_size));
        const targets = Uint32Array.from({ length: T }, (_, t) => (t % 3 === 2 ? 0xffffffff : Math.floor(r() * cfg.vocab_size)));
        const past = { k: Array.from({ length: L }, (_, l) => Float64Array.from(randn(B * P * kvDim, 30 + l))), v: Array.from({ length: L }, (_, l) => Float64Array.from(randn(B * P * kvDim, 50 + l))), length: P };
        const refLora = initRefLora(cfg, [0, 1], ['q_proj', 'k_proj', 'v_proj', 'o_proj'], 2, 4, 5, 0.2);
        const fwd = refForward(cfg, params, { ids }, { B, S, past, posOffset: P, lora: refLora, targets });
        const grads = refBackward(cfg, params, fwd);
        const model = new LlamaGpu(gpu, cfg, base.weights);
        model.enableGrads();
        const lora = new LoraGpu(gpu, cfg, { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], layers: [0, 1] });
        lora.load(refLora.targets);
        const prefix = { k: past.k.map((a, l) => gpu.tensor([B, P, kvDim], `pk${l}`, Float32Array.from(a))), v: past.v.map((a, l) => gpu.tensor([B, P, kvDim], `pv${l}`, Float32Array.from(a))) };
        const prefixGrad = { k: past.k.map((_, l) => gpu.tensor([B, P, kvDim], `dpk${l}`)), v: past.v.map((_, l) => gpu.tensor([B, P, kvDim], `dpv${l}`)) };
        const pass = new ModelPass(model, { B, S, P, input: 'ids' }, { lora, backward: true, baseGrads: true, prefix, prefixGrad });
        pass.setIds(ids);
        pass.setTargets(targets);
        pass.recordForward();
        pass.recordBackward();
        const report: [string, number][] = [];
        const check = async (n: string, t: Parameters<typeof gpu.read>[0], ref: ArrayLike<number>) => report.push([n, normErr(await gpu.read(t), ref)]);
        await check('logits', pass.logits, fwd.logits);
        for (const n of paramShapes(cfg).keys()) await check(`d ${n}`, model.grads!.get(n)!, grads.params.get(n)!);
        for (const [n, m] of lora.modules) {
          await check(`d ${n}.lora_A`, m.dA, grads.lora.get(n)!.A);
          await check(`d ${n}.lora_B`, m.dB, grads.lora.get(n)!.B);
        }
        for (let l = 0; l < L; l++) {
          await check(`d prefixK[${l}]`, prefixGrad.k[l], grads.dPastK[l]);
          await check(`d prefixV[${l}]`, prefixGrad.v[l], grads.dPastV[l]);
        }
        const worst = report.reduce((a, b) => (b[1] > a[1] ? b : a));
        console.log(`${name}: ${report.length} tensors, worst ${worst[0]} ${worst[1].toExponential(2)}`);
        expect(report.some(([n]) => n.endsWith('.bias'))).toBe(o.type === 'qwen2' || !!o.config?.attention_bias);
        expect(report.some(([n]) => n.includes('q_norm'))).toBe(o.type === 'qwen3');
        for (const [n, e] of report) expect(e, n).toBeLessThan(TOL);
        pass.destroy();
        lora.destroy();
        model.destroy();
        [...prefix.k, ...prefix.v, ...prefixGrad.k, ...prefixGrad.v].forEach((t) => gpu.destroy(t));
      });

      if (o.tokenizer) {
        it('every method runs on it (word rendering of lookup): train, evaluate, inspect', async () => {
          const { base } = await kind();
          const c = await ctl;
          const task = makeTask('lookup', 1);
          for (const method of METHODS as readonly MethodName[]) {
            const config = defaultRunConfig({
              task: 'lookup', method, topology: presetForTask(task, { latentSteps: 1 }), modelId: base.id,
              steps: 2, batch: 2, evalSize: 3, evalEvery: 0, lr: 1e-2, textBudget: 3,
              lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
            });
            await c.start(config, base, () => undefined);
            expect(c.status.message, `${method} ends without an error`).toBeUndefined();
            const rows = await c.evaluate(['heldout']);
            expect(rows[0].accuracy).toBeGreaterThanOrEqual(0);
            expect(rows[0].accuracy).toBeLessThanOrEqual(1);
            const ins = await c.inspect('heldout', 0);
            expect(ins.parts[0]).toMatch(/^Table: /);
            expect(ins.agents[ins.agents.length - 1].input).toContain('Answer:');
            for (const e of ins.edges) {
              // the heatmap's labels are the tokenizer's own tokens (words, not characters)
              const labels = e.senderPositions.filter((p) => p.kind === 'prompt').map((p) => p.label);
              if (labels.length) expect(labels.join('')).toContain('Table:');
              expect(e.receiverTokens.join('')).toContain('Answer:');
            }
            c.reset();
          }
        });
      } else {
        it('without a tokenizer.json a run says why it cannot start (token ids still work: generate --ids)', async () => {
          const { base } = await kind();
          const c = await ctl;
          const config = defaultRunConfig({ task: 'lookup', method: 'single', topology: presetForTask(makeTask('lookup', 1), { latentSteps: 1 }), modelId: base.id, steps: 1, batch: 2, evalSize: 2 });
          await expect(c.start(config, base, () => undefined)).rejects.toThrow(/has no tokenizer.json: a run writes its task as text/);
          c.reset();
        });
      }
    });
  });
});

describe('dtypes on disk', () => {
  for (const dtype of ['F16', 'BF16'] as Dtype[]) {
    it(`${dtype} weights decode to the values the file holds`, () => {
      const f = hfCheckpoint({ type: 'llama', dtype, tokenizer: null });
      const ck = decodeCheckpoint(f.files);
      expect(ck.storedDtypes).toEqual([dtype]);
      for (const [k, v] of f.weights) expect(ck.tensors.get(k), k).toEqual(v);
    });
  }
});

describe('the page\u2019s import (the worker engine)', () => {
  it('imports a deflate zip of a sharded BF16 Qwen3 with its tokenizer, reporting progress; refuses what the quota cannot hold, storing nothing', async () => {
    const { Engine } = await import('../src/worker/engine');
    const { memoryStore } = await import('../src/storage/library');
    const { zipSync } = await import('fflate');
    const fx = hfCheckpoint({ type: 'qwen3', dtype: 'BF16', tokenizer: BYTE, shards: 2 });
    const zip = zipSync(Object.fromEntries([...fx.files].map(([n, b]) => [`qwen3/${n}`, [b, { level: 6 }]])));
    let quota = 1000;
    const { nodeGpuEntry } = await import('../src/gpu/node');
    const gpuEntry = await nodeGpuEntry();
    const engine = new Engine({
      gpu: () => gpuEntry, store: memoryStore(), fetchAsset: () => Promise.reject(new Error('no assets in this test')), storageEstimate: async () => ({ usage: 100, quota }),
    });
    const err = await engine.importFiles([{ name: 'qwen3.zip', bytes: zip }]).catch((e) => e as Error);
    expect((err as Error).message).toMatch(/^not enough storage for this model \(stored as float32\): it needs [\d.]+ KB but this site may store only 900 B more \(100 B used of 1000 B\)/);
    expect((await engine.listModels()).filter((m) => !m.builtin)).toEqual([]);
    quota = 2 ** 30;
    const stages: [string, number][] = [];
    const r = await engine.importFiles([{ name: 'qwen3.zip', bytes: zip }], undefined, (s, f) => void stages.push([s, f]));
    expect(r.kind).toBe('model');
    expect(stages.map(([, f]) => f)).toEqual([...stages.map(([, f]) => f)].sort((a, b) => a - b));
    expect(stages[stages.length - 1]).toEqual(['done', 1]);
    const entry = (await engine.listModels()).find((m) => m.id === r.id)!;
    expect(entry.config.model_type).toBe('qwen3');
    // the memory the page shows before a run of it, and the refusal the run would meet
    const cfg = defaultRunConfig({ task: 'lookup', method: 'diffmas', topology: presetForTask(makeTask('lookup', 1), { latentSteps: 2 }), modelId: r.id, batch: 4 });
    const est = await engine.estimateRun(cfg);
    expect(est.problem).toBeNull();
    expect(est.weights).toBe([...fx.weights.values()].reduce((n, a) => n + a.length * 4, 0));
    expect(est.total).toBe(est.weights + est.adapters + est.activations);
    expect(est.largest.bytes).toBeLessThanOrEqual(est.bufferLimit);
    const noTok = hfCheckpoint({ type: 'llama', tokenizer: null, seed: 99 });
    const r2 = await engine.importFiles([{ name: 'llama-no-tokenizer.zip', bytes: zipSync(Object.fromEntries(noTok.files)) }]);
    await expect(engine.estimateRun({ ...cfg, modelId: r2.id })).rejects.toThrow(/has no tokenizer.json: a run writes its task as text/);
    // named from its zip, marked as without a tokenizer, and the refusal names it so (never by its library id)
    expect(r2.name).toBe('llama-no-tokenizer');
    expect((await engine.listModels()).find((m) => m.id === r2.id)).toMatchObject({ name: 'llama-no-tokenizer', tokenizer: false });
    expect(entry.tokenizer).toBeUndefined();
    const refusal = await engine.estimateRun({ ...cfg, modelId: r2.id }).catch((e) => e as Error);
    expect((refusal as Error).message).toContain("the base model 'llama-no-tokenizer' has no tokenizer.json");
    expect((refusal as Error).message).not.toContain(r2.id);
  });
});

describe('every model kind imports through the page\u2019s worker engine and runs there', () => {
  it('each kind of the list, as a deflate zip: stored, listed with its type, and a DiffMAS step plus an inspection in the engine (or the tokenizer refusal)', async () => {
    const { Engine } = await import('../src/worker/engine');
    const { memoryStore } = await import('../src/storage/library');
    const { zipSync } = await import('fflate');
    const { nodeGpuEntry } = await import('../src/gpu/node');
    const gpuEntry = await nodeGpuEntry();
    // as src/worker/engine.worker.ts builds it
    const engine = new Engine({
      gpu: () => gpuEntry, store: memoryStore(), fetchAsset: () => Promise.reject(new Error('no assets in this test')),
      createController: (gpu) => new RunController(gpu),
    });
    for (const [i, { name, o }] of KINDS.entries()) {
      const fx = hfCheckpoint({ ...o, seed: 700 + i });
      const r = await engine.importFiles([{ name: `kind${i}.zip`, bytes: zipSync(Object.fromEntries([...fx.files].map(([n, b]) => [n, [b, { level: 6 }]]))) }]);
      const entry = (await engine.listModels()).find((m) => m.id === r.id)!;
      expect(entry.config.model_type, name).toBe(o.type);
      const cfg = defaultRunConfig({
        task: 'lookup', method: 'diffmas', topology: presetForTask(makeTask('lookup', 1), { latentSteps: 1 }), modelId: r.id,
        steps: 1, batch: 2, evalSize: 2, evalEvery: 0, lora: { r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] },
      });
      const seen: string[] = [];
      if (!o.tokenizer) {
        await engine.startRun(cfg, (p) => void (p.message && seen.push(p.message)));
        expect(seen.join(' '), name).toMatch(/has no tokenizer.json/);
        await engine.resetRun();
        continue;
      }
      await engine.startRun(cfg, (p) => void (p.state === 'error' && seen.push(p.message ?? 'error')));
      expect(seen, `${name}: ${seen.join(' ')}`).toEqual([]);
      const ins = await engine.inspect('heldout', 0);
      expect(ins.edges.length, name).toBe(1);
      expect(ins.edges[0].receiverTokens.join(''), name).toContain('Answer:');
      await engine.resetRun();
    }
  });
});

describe('decoding reads back only the rows it needs when the logits are large', () => {
  it('the same answers, messages and accuracy with partial reads (forced) as with whole reads', async () => {
    const { MasEngine, Run } = await import('../src/mas/run');
    const ck = decodeCheckpoint(hfCheckpoint({ type: 'qwen2', tokenizer: BYTE, tied: true, seed: 5 }).files);
    const base: BaseModel = { id: 'partial', config: ck.config, weights: ck.tensors, tokenizer: loadTokenizer(ck) };
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, base);
    const results = [];
    const saved = Run.partialReadBytes;
    try {
      for (const bytes of [saved, 0]) {
        Run.partialReadBytes = bytes;
        for (const method of ['text', 'latentmas'] as MethodName[]) {
          const run = new Run(engine, defaultRunConfig({ task: 'lookup', method, topology: presetForTask(makeTask('lookup', 1), { latentSteps: 2 }), modelId: 'partial', batch: 3, evalSize: 5, textBudget: 4 }));
          const r = await run.evaluate('heldout');
          results.push({ method, predictions: r.predictions, accuracy: r.accuracy, tokens: r.messageTokens });
          run.destroy();
        }
      }
    } finally {
      Run.partialReadBytes = saved;
      engine.destroy();
    }
    expect(results.slice(2)).toEqual(results.slice(0, 2));
  });
});
