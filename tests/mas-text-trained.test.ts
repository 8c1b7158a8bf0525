// The method text-trained end to end on a small random base: its settings are checked, training is
// deterministic, reuses every pipeline and buffer, lowers the loss and reaches the sender's adapter
// through the text channel; evaluation (with the shuffle and zero controls), inspection and PEFT export
// work for a star and a chain. The gradient itself: tests/text-channel.test.ts.
import { describe, expect, it } from 'vitest';
import { defaultTokenizer } from '../src/tokenizers/char';
import { makeTask } from '../src/tasks/tasks';
import { Rng } from '../src/tasks/rng';
import type { RunConfig } from '../src/worker/api';
import { MasEngine, Run, defaultRunConfig } from '../src/mas/run';
import { validateRunConfig } from '../src/mas/methods';
import { makePlan } from '../src/mas/data';
import { CHAR_RENDERING, WORD_RENDERING } from '../src/tasks/render';
import { loadTokenizer } from '../src/tokenizers';
import { byteLevelBpe } from './hf-fixtures';
import { textAllowed, textSlots, textTrainedPrompt } from '../src/mas/text-channel';
import { chain, presetForTask } from '../src/mas/topology';
import { randomBase, RUN_CFG, testGpu } from './helpers';

const tokenizer = defaultTokenizer();

const lookup = makeTask('lookup', 1);
const TOPO = presetForTask(lookup, { latentSteps: 2 });

function cfg(over: Partial<RunConfig> = {}): RunConfig {
  return defaultRunConfig({
    topology: TOPO, method: 'text-trained', modelId: 'random', steps: 3, batch: 4, evalSize: 6, evalEvery: 0, lr: 1e-2, textBudget: 3,
    lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }, ...over,
  });
}

describe('text-trained: settings and prompts', () => {
  it('refuses a bad temperature and takes a good one', () => {
    for (const t of [0, -1, 1000, NaN, '1' as never]) expect(() => validateRunConfig(cfg({ textTemperature: t }))).toThrow(/textTemperature must be a number in \[0.01, 100\]/);
    expect(validateRunConfig(cfg({ textTemperature: 0.5 })).spec.train).toBe('all');
    expect(validateRunConfig(cfg()).spec.channel).toBe('text');
  });

  it('a receiver reads "msg:" then exactly T slots then "\\n"; a sender may write no newline or special token', () => {
    const { spec } = validateRunConfig(cfg());
    const plan = makePlan(TOPO, spec);
    const ep = lookup.sample(new Rng(4), 'train');
    const fin = textTrainedPrompt(tokenizer, CHAR_RENDERING, ep, plan[1], spec, 4);
    expect(fin.slots).toEqual(textSlots(tokenizer, CHAR_RENDERING, plan, 4)[1]);
    const text = tokenizer.decode(fin.ids);
    const pad = tokenizer.decode([tokenizer.padId]);
    expect(text).toBe(`<bos>msg:${pad.repeat(4)}\n${CHAR_RENDERING.prompt(ep, plan[1].agent.role, { final: true }).slice('<bos>'.length)}`);
    const snd = textTrainedPrompt(tokenizer, CHAR_RENDERING, ep, plan[0], spec, 4);
    expect(tokenizer.decode(snd.ids)).toBe(CHAR_RENDERING.prompt(ep, plan[0].agent.role, { send: true }));
    // word rendering with a byte-level BPE (no <bos>, as Qwen): each piece encoded apart, the slots where textSlots says
    const made = byteLevelBpe();
    const bpe = loadTokenizer({ config: { vocab_size: made.vocabSize, eos_token_id: made.eos, pad_token_id: made.pad ?? undefined } as never, tokenizer: made.json })!;
    const chainPlan = makePlan(chain(3, { latentSteps: 1 }), spec);
    const relayTask = makeTask('relay', 1);
    const rep = relayTask.sample(new Rng(5), 'train');
    const w = textTrainedPrompt(bpe, WORD_RENDERING, rep, chainPlan[1], spec, 3);
    expect(w.slots).toEqual(textSlots(bpe, WORD_RENDERING, chainPlan, 3)[1]);
    expect(w.ids.slice(0, w.slots[0])).toEqual(bpe.encode('<bos>Message:'));
    expect(w.ids.slice(w.slots[0], w.slots[0] + 3)).toEqual([bpe.padId, bpe.padId, bpe.padId]);
    expect(bpe.decode(w.ids.slice(w.slots[0] + 3))).toBe('\n' + WORD_RENDERING.prompt(rep, chainPlan[1].agent.role, { send: true }).slice('<bos>'.length));
    const bpeAllowed = textAllowed(bpe, made.vocabSize);
    expect(bpeAllowed[made.eos]).toBe(0);
    expect(bpeAllowed[bpe.encode('\n')[0]]).toBe(0);
    const allowed = textAllowed(tokenizer, RUN_CFG.vocab_size);
    for (let v = 0; v < tokenizer.vocabSize; v++) {
      const bad = tokenizer.isSpecial(v) || tokenizer.tokenOf(v).includes('\n');
      expect(allowed[v], tokenizer.tokenOf(v)).toBe(bad ? 0 : 1);
    }
  });
});

describe('text-trained run', () => {
  it('training is deterministic, reuses every pipeline and buffer, lowers the loss and trains the sender', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    // take: steps taken of `steps` (the learning-rate schedule depends on the total)
    const train = async (seed: number, steps: number, take: number, check: boolean) => {
      const run = new Run(engine, cfg({ seed, steps, batch: 8, lr: 5e-2 }));
      const init = await run.exportAdapters();
      const out: number[] = [(await run.trainStep()).loss];
      const p0 = gpu.pipelinesCompiled;
      const b0 = gpu.buffersCreated;
      const r0 = run.rolloutCount;
      while (run.step < take) out.push((await run.trainStep()).loss);
      if (check) {
        expect(gpu.pipelinesCompiled - p0, 'pipelines compiled by training steps').toBe(0);
        expect(gpu.buffersCreated - b0, 'GPU buffers created by training steps').toBe(0);
        expect(run.rolloutCount).toBe(r0);
      }
      const adapters = await run.exportAdapters();
      const ev = await run.evaluate('heldout');
      run.destroy();
      return { out, init, adapters, ev };
    };
    const a = await train(1, 40, 40, true);
    const b = await train(1, 40, 5, false);
    expect(b.out).toEqual(a.out.slice(0, 5));
    for (const l of a.out) expect(Number.isFinite(l)).toBe(true);
    // the loss falls: on this random base it goes from 3.76 (mean of the first five steps) to 3.31 (the
    // last five) as the receiver learns the answer's format and frequencies, then plateaus (a random
    // base has no reading of the table to learn in 40 steps); 0.92 of the start sits between the two
    const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
    expect(mean(a.out.slice(-5))).toBeLessThan(0.92 * mean(a.out.slice(0, 5)));
    // both agents' adapters are exported, and the sender's moved from its initial state (B starts at 0):
    // the gradient crossed the text channel
    expect(a.adapters.map((x) => x.agent).sort()).toEqual(TOPO.agents.map((x) => x.id).sort());
    const sender = TOPO.agents.find((x) => x.id !== TOPO.final)!.id;
    const sB = [...a.adapters.find((x) => x.agent === sender)!.tensors].filter(([k]) => k.includes('lora_B'));
    expect(Math.max(...sB.flatMap(([, t]) => Array.from(t, Math.abs)))).toBeGreaterThan(1e-4);
    expect(a.ev.episodes).toBe(6);
    expect(a.ev.messageTokens).toBe(3);
    expect(Number.isFinite(a.ev.loss)).toBe(true);
    engine.destroy();
  });

  it('evaluates with the shuffle and zero controls, inspects, and runs a chain of three', async () => {
    const gpu = await testGpu();
    const engine = new MasEngine(gpu, randomBase());
    const run = new Run(engine, cfg({ steps: 2 }));
    await run.trainStep();
    const none = await run.evaluate('heldout');
    const again = await run.evaluate('heldout');
    expect(again.predictions).toEqual(none.predictions);
    expect(again.loss).toBe(none.loss);
    for (const control of ['shuffle', 'zero'] as const) {
      const o = await run.evaluate('heldout', control);
      expect(o.episodes).toBe(6);
      expect(Number.isFinite(o.loss)).toBe(true);
      expect(o.messageTokens).toBe(control === 'zero' ? 0 : 3);
    }
    await expect(run.evaluate('heldout', 'noise')).rejects.toThrow(/does not apply/);
    const ins = await run.inspect('heldout', 2);
    const [snd, fin] = ins.agents;
    // the sender wrote exactly 3 tokens, none a newline, and the receiver read them after "msg:"
    const msg = snd.output.slice('msg:'.length);
    expect(snd.output.startsWith('msg:')).toBe(true);
    expect(tokenizer.encode(msg)).toHaveLength(3);
    expect(msg).not.toContain('\n');
    expect(fin.input.startsWith(`<bos>msg:${msg}\n`)).toBe(true);
    expect(ins.predicted).toBe(none.predictions[2]);
    run.destroy();

    const relay = new Run(engine, cfg({ task: 'relay', topology: chain(3, { latentSteps: 2 }), steps: 2 }));
    const l1 = (await relay.trainStep()).loss;
    expect(Number.isFinite(l1)).toBe(true);
    const o = await relay.evaluate('ood');
    expect(o.episodes).toBe(6);
    expect(o.messageTokens).toBe(6);
    const ri = await relay.inspect('ood', 0);
    // the relay reads the source's message and writes its own
    expect(ri.agents[1].input.startsWith(`<bos>msg:${ri.agents[0].output.slice('msg:'.length)}\n`)).toBe(true);
    expect((await relay.exportAdapters()).length).toBe(3);
    relay.destroy();
    engine.destroy();
  });
});
