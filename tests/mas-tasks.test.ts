// Every task (lookup, relay, arith, index) with every method, on a small random base model: through the
// page's path (the run controller: a short training, the held-out evaluation, evaluate on both
// splits, inspect one episode), and on arith through the experiment runner that the CLI and the
// page's compare use (every method, one seed, every control). It checks that each completes and that what it reports is well
// formed (accuracies in [0, 1], a row per split, finite losses, message sizes, the heatmap's
// shapes), not how well anything learns (tests/experiment.test.ts). The formats come from
// src/tasks/tasks.ts (never written out here), so a format change does not break this test.
import { afterAll, describe, expect, it } from 'vitest';
import { initWeights } from '../src/model/model';
import { toLlamaConfig } from '../src/model/pretrain';
import type { ModelConfig } from '../src/model/config';
import { defaultTokenizer, EOS } from '../src/tokenizers/char';
import { formatPrompt, formatSkyline, formatTarget, makeTask, sampleEpisodes, TASK_NAMES, type Split, type TaskName } from '../src/tasks/tasks';
import { METHODS, type MethodName, type RunConfig, type RunProgress } from '../src/worker/api';
import type { BaseModel } from '../src/mas/types';
import { defaultRunConfig } from '../src/mas/run';
import { RunController } from '../src/mas/controller';
import { formatControls, runExperiment } from '../src/mas/experiment';
import { methodSpec } from '../src/mas/methods';
import { finalSequence, IGNORE } from '../src/mas/data';
import { presetForTask, predecessors } from '../src/mas/topology';
import { testGpu } from './helpers';

const tokenizer = defaultTokenizer();
const CFG: ModelConfig = {
  hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
  vocab_size: tokenizer.vocabSize, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true, max_position_embeddings: 256,
};
const base: BaseModel = { id: 'random-tasks', config: toLlamaConfig(CFG, tokenizer), weights: initWeights(CFG, 8, 0.1), tokenizer };
const EVAL = 4;
const SPLITS: Split[] = ['heldout', 'ood'];
const LATENT_STEPS = 1;

function cfg(task: TaskName, method: MethodName): RunConfig {
  return defaultRunConfig({
    task, method, topology: presetForTask(makeTask(task, 1), { latentSteps: LATENT_STEPS }), modelId: base.id,
    steps: 2, batch: 4, evalSize: EVAL, evalEvery: 0, lr: 1e-2, textBudget: 3,
    lora: { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  });
}

const ctl = (async () => new RunController(await testGpu()))();
afterAll(async () => (await ctl).dispose());

describe('the final agent\u2019s sequence', () => {
  it('is prompt + maxAnswer tokens for answers of every length (arith: "7", "-3", "12", "-81")', () => {
    const arith = makeTask('arith', 1);
    const eps = [...sampleEpisodes(arith, 'train', 40, 1), ...sampleEpisodes(arith, 'ood', 40, 1)];
    const lengths = new Set(eps.map((e) => e.answer.length));
    expect(lengths.size, 'answers of several lengths').toBeGreaterThan(1);
    for (const ep of eps) {
      const prompt = tokenizer.encode(formatPrompt(ep, arith.roles[arith.finalRole].part, { final: true }));
      const answer = tokenizer.encode(formatTarget(ep));
      const s = finalSequence(prompt, answer, arith.maxAnswerLength, true, tokenizer.padId);
      expect(s.ids).toHaveLength(prompt.length + arith.maxAnswerLength);
      expect(s.targets).toHaveLength(prompt.length + arith.maxAnswerLength);
      expect(s.ids.slice(0, prompt.length)).toEqual(prompt);
      // teacher forcing: answer tokens, then padding; targets: answer and <eos>, the rest ignored
      expect(s.ids.slice(prompt.length, prompt.length + ep.answer.length)).toEqual(answer.slice(0, -1));
      expect(s.ids.slice(prompt.length + ep.answer.length).every((t) => t === tokenizer.padId)).toBe(true);
      expect(s.targets.slice(s.start, s.start + answer.length)).toEqual(answer);
      expect(s.targets.filter((t) => t !== IGNORE)).toHaveLength(answer.length);
      expect(s.start).toBe(prompt.length - 1);
    }
    const sky = tokenizer.encode(formatSkyline(eps[0]));
    expect(finalSequence(sky, tokenizer.encode(formatTarget(eps[0])), arith.maxAnswerLength, false, tokenizer.padId).targets.every((t) => t === IGNORE)).toBe(true);
    expect(() => finalSequence(sky, tokenizer.encode('12345' + EOS), 3, true, tokenizer.padId)).toThrow(/exceeds the task's 3/);
  });
});

for (const task of TASK_NAMES) {
  describe(`${task}: every method`, () => {
    for (const method of METHODS) {
      it(`${method}: train, evaluate both splits, inspect (the page's path)`, async () => {
        const c = await ctl;
        const seen: RunProgress[] = [];
        const config = cfg(task, method);
        await c.start(config, base, (p) => seen.push(p));
        expect(c.status.message, 'the run ends without an error').toBeUndefined();
        expect(c.status.state).toBe('done');
        const spec = methodSpec(method);
        const trains = spec.train !== 'none';
        if (trains) {
          expect(c.status.step).toBe(config.steps);
          const losses = seen.filter((p) => p.state === 'running' && p.step > 0).map((p) => p.loss);
          expect(losses.length).toBeGreaterThan(0);
          for (const l of losses) expect(Number.isFinite(l)).toBe(true);
        }
        const last = seen.at(-1)!;
        expect(last.heldoutAccuracy).toBeGreaterThanOrEqual(0);
        expect(last.heldoutAccuracy).toBeLessThanOrEqual(1);
        expect(Number.isFinite(last.heldoutLoss)).toBe(true);

        const rows = await c.evaluate(SPLITS);
        expect(rows.map((r) => r.split)).toEqual(SPLITS);
        for (const r of rows) {
          expect(r.method).toBe(method);
          expect(r.episodes).toBe(EVAL);
          for (const x of [r.accuracy, r.validity]) {
            expect(x).toBeGreaterThanOrEqual(0);
            expect(x).toBeLessThanOrEqual(1);
          }
          expect(Number.isFinite(r.entropy) && r.entropy >= 0).toBe(true);
          expect(Number.isFinite(r.loss)).toBe(true);
          if (spec.channel === 'latent') expect(r.messageFloats).toBeGreaterThan(0);
          else expect(r.messageFloats).toBe(0);
          if (spec.channel === 'none') expect(r.messageTokens + (r.messagePositions ?? 0)).toBe(0);
        }

        const ins = await c.inspect('heldout', 1);
        const run = c.current!;
        const ep = run.evalSet('heldout')[1];
        expect(ins.answer).toBe(ep.answer);
        expect(ins.correct).toBe(ins.predicted === ep.answer);
        expect(ins.agents.map((a) => a.id)).toEqual(run.plan.map((p) => p.agent.id));
        if (spec.channel !== 'latent') expect(ins.edges).toEqual([]);
        else {
          const receivers = run.plan.filter((p) => predecessors(config.topology, p.agent.id).length > 0);
          expect(ins.edges.map((e) => e.receiver)).toEqual(receivers.map((p) => p.agent.id));
          for (const e of ins.edges) {
            const P = e.senderPositions.length;
            const R = e.receiverTokens.length;
            expect(e.senderPositions.filter((s) => s.kind === 'latent')).toHaveLength(LATENT_STEPS * e.senders.length);
            expect(e.attention).toHaveLength(CFG.num_hidden_layers * CFG.num_attention_heads * R * P);
            expect(e.keyNorms).toHaveLength(CFG.num_hidden_layers * P);
            expect(e.attention.every((x) => Number.isFinite(x) && x >= 0 && x <= 1 + 1e-5)).toBe(true);
          }
        }
        c.reset();
      });
    }

    // the runner's orchestration does not depend on the task: run it on arith, whose answers vary in
    // length (the case that failed), to keep the file short
    if (task === 'arith') it('the experiment runner: every method, one seed, every control; a well-formed report', async () => {
      const gpu = await testGpu();
      const methods = [...METHODS];
      const { method: _m, seed: _s, ...reqBase } = cfg(task, 'single');
      const report = await runExperiment(gpu, base, { base: { ...reqBase, steps: 1 }, methods, seeds: [1] }, () => undefined);
      expect(report.rows).toHaveLength(methods.length * SPLITS.length);
      for (const m of methods) expect(report.rows.filter((r) => r.method === m).map((r) => r.split)).toEqual(SPLITS);
      for (const r of report.rows) {
        expect(r.accuracy).toBeGreaterThanOrEqual(0);
        expect(r.accuracy).toBeLessThanOrEqual(1);
        expect(Number.isFinite(r.loss)).toBe(true);
      }
      const latent = methods.filter((m) => methodSpec(m).channel === 'latent');
      // every control of each method's channel: five for the latent channel, shuffle and zero for text and text-trained
      const text = methods.filter((m) => methodSpec(m).channel === 'text');
      expect(report.controls).toHaveLength(latent.length * 5 + text.length * 2);
      for (const x of report.controls) expect(x.accuracy >= 0 && x.accuracy <= 1).toBe(true);
      expect(report.summary).toHaveLength(methods.length * SPLITS.length);
      expect(report.curves!.map((x) => x.method)).toEqual(methods.filter((m) => methodSpec(m).train !== 'none'));
      for (const x of report.curves!) expect(x.losses.every(Number.isFinite)).toBe(true);
      expect(formatControls(report).split('\n')).toHaveLength(2 + latent.length + text.length);
      expect(report.findings.some((f) => f.startsWith('heldout ordering'))).toBe(true);
    });
  });
}
