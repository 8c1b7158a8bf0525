// The quiz loss (RunConfig.quizLoss, src/mas/quiz.ts): the final agent's rows of a batch (every
// question of every drawn table, the episodes themselves unchanged), its validation, and the rollout's
// fanout (rollout.ts) against the float64 reference of the same rollout with each sender row repeated
// once per question: the loss, the logits and every adapter gradient, the senders' being the sum
// over the rows that read their trace.
import { describe, expect, it } from 'vitest';
import type { ModelConfig, Proj } from '../src/model/config';
import { initRefLora, initRefParams } from '../src/reference/model';
import { computeLatentMap } from '../src/mas/latentmap';
import { refMasRollout, type RefMasAgent } from '../src/mas/reference';
import { GpuLatentMap, Rollout } from '../src/mas/rollout';
import { rendering } from '../src/tasks/render';
import { makeTask, splitOfContent } from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';
import { encodeInstance, IGNORE, makePlan } from '../src/mas/data';
import { methodSpec, validateRunConfig } from '../src/mas/methods';
import { presetForTask } from '../src/mas/topology';
import { defaultRunConfig } from '../src/mas/run';
import { quizRows } from '../src/mas/quiz';
import { trainingBatcher } from '../src/mas/run-data';
import { gpuFromRef, gradStep, normErr, rng, testGpu } from './helpers';

describe('quiz rows', () => {
  it('ask every key of each drawn table, row b*Q + q, from the run\u2019s own training batches', () => {
    const tk = defaultTokenizer();
    const r = rendering('char');
    const spec = methodSpec('diffmas');
    const task = makeTask('lookup', 3);
    const plan = makePlan(presetForTask(task), spec);
    const { eps, prompts } = trainingBatcher(task, tk, r, plan, spec, { seed: 3, batch: 3 }).next();
    const q = quizRows(task, tk, r, plan[1], spec, eps, 1);
    expect(q.Q).toBe(4);
    const S = q.n + 1;
    expect(q.ids.length).toBe(3 * 4 * S);
    eps.forEach((ep, b) => {
      expect(splitOfContent('lookup', ep.contentKey)).toBe('train');
      const table = ep.contents[0];
      for (let k = 0; k < 4; k++) {
        const row = q.episodes[b * 4 + k];
        expect(row.contents).toEqual([table, table[2 * k]]);
        expect(row.answer).toBe(table[2 * k + 1]);
        expect(row.contentKey).toBe(ep.contentKey);
        const ids = q.ids.slice((b * 4 + k) * S, (b * 4 + k + 1) * S);
        expect(tk.decode(ids.slice(0, q.n))).toBe(`<bos>ask:${table[2 * k]}`);
        // the answer digit then <eos> are the row's only targets
        const t = q.targets.slice((b * 4 + k) * S, (b * 4 + k + 1) * S);
        expect(t.filter((x) => x !== IGNORE).map((x) => tk.decode([x]))).toEqual([table[2 * k + 1], '<eos>']);
      }
      // the episode's own question is one of them, and its senders' prompt is the batch's
      expect(q.episodes.slice(b * 4, b * 4 + 4).map((e) => e.key)).toContain(ep.key);
      expect(encodeInstance(tk, r, plan, spec, [ep, ep])[0]).toEqual(prompts[b][0]);
    });
  });

  it('validation: lookup and trained latent methods only, a boolean', () => {
    const cfg = (task: 'lookup' | 'relay' | 'arith' | 'index', over: object) => defaultRunConfig({ topology: presetForTask(makeTask(task, 2)), task, difficulty: 2, ...over });
    for (const m of ['diffmas', 'diffmas-full', 'diffmas-detached']) expect(() => validateRunConfig(cfg('lookup', { method: m, quizLoss: true }))).not.toThrow();
    expect(() => validateRunConfig(cfg('lookup', { quizLoss: false }))).not.toThrow();
    expect(() => validateRunConfig(cfg('relay', { quizLoss: true }))).toThrow(/only task lookup has .*use task lookup, or turn quizLoss off/);
    expect(() => validateRunConfig(cfg('index', { quizLoss: true }))).toThrow(/only task lookup/);
    expect(() => validateRunConfig(cfg('lookup', { method: 'text-trained', quizLoss: true }))).toThrow(/method text-trained sends no latent message/);
    expect(() => validateRunConfig(cfg('lookup', { method: 'latentmas', quizLoss: true }))).toThrow(/method latentmas trains nothing/);
    expect(() => validateRunConfig(cfg('lookup', { quizLoss: 1 }))).toThrow(/quizLoss must be true or false/);
  });
});

const CFG: ModelConfig = {
  hidden_size: 12, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1,
  vocab_size: 11, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};
const TARGETS: Proj[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj'];
// as tests/mas-gradient.test.ts: f32 through the chained passes against float64, weights ~ N(0, 0.3^2)
const TOL = 1e-4;

describe('rollout fanout (the quiz batch)', () => {
  const cases = [
    { name: 'latent trace, both agents train', trace: 'latent' as const, trains: true, B: 2, F: 3 },
    { name: 'full trace, both agents train', trace: 'full' as const, trains: true, B: 3, F: 2 },
    { name: 'detached sender', trace: 'latent' as const, trains: false, B: 2, F: 4 },
  ];
  for (const c of cases) {
    it(`equals the reference with each sender row repeated F times: ${c.name} (B ${c.B}, F ${c.F})`, async () => {
      const gpu = await testGpu();
      const params = initRefParams(CFG, 7, 0.3);
      const map = computeLatentMap(CFG, params, 'ridge');
      const loras = new Map([['a', initRefLora(CFG, [0, 1], TARGETS, 3, 6, 17, 0.3)], ['b', initRefLora(CFG, [0, 1], TARGETS, 3, 6, 18, 0.3)]]);
      const r = rng(8);
      const n0 = 3;
      const n1 = 4;
      const senderIds = Array.from({ length: c.B * n0 }, () => Math.floor(r() * CFG.vocab_size));
      const finalIds = Array.from({ length: c.B * c.F * n1 }, () => Math.floor(r() * CFG.vocab_size));
      const targets = Array.from({ length: c.B * c.F * n1 }, (_, i) => (i % 3 === 0 ? IGNORE : Math.floor(r() * CFG.vocab_size)));
      // the reference: B*F episodes, sender row b repeated for rows b*F .. b*F+F-1
      const repeated: number[] = [];
      for (let b = 0; b < c.B; b++) for (let q = 0; q < c.F; q++) repeated.push(...senderIds.slice(b * n0, (b + 1) * n0));
      const agents: RefMasAgent[] = [
        { preds: [], n: n0, m: 2, trains: c.trains, lora: c.trains ? loras.get('a') : undefined, ids: repeated },
        { preds: [0], n: n1, m: 0, trains: true, lora: loras.get('b'), ids: finalIds },
      ];
      const ref = refMasRollout(CFG, params, agents, c.B * c.F, c.trace, map, targets);
      const { model, loras: gl } = gpuFromRef(gpu, CFG, params, loras, { r: 3, alpha: 6, targets: TARGETS, layers: [0, 1] });
      const gmap = new GpuLatentMap(gpu, map);
      const ro = new Rollout(model, {
        B: c.B, trace: c.trace, map: gmap, fanout: c.F,
        agents: [
          { id: 's', preds: [], n: n0, m: 2, lora: c.trains ? gl.get('a')! : null, backward: c.trains },
          { id: 'f', preds: [0], n: n1, m: 0, lora: gl.get('b')!, backward: true },
        ],
      });
      ro.setIds(0, senderIds);
      ro.setIds(1, finalIds);
      ro.setTargets(targets);
      const trained = c.trains ? [...gl.values()] : [gl.get('b')!];
      for (let rep = 0; rep < 2; rep++) {
        const made = await gradStep(gpu, trained, ro);
        if (rep === 1) expect(made.pipelines + made.buffers, 'pipelines and buffers made by a repeated step').toBe(0);
      }
      const report: [string, number][] = [];
      report.push(['loss', normErr(await gpu.read(ro.final.prompt.loss), [ref.loss])]);
      report.push(['final logits', normErr(await gpu.read(ro.final.prompt.logits), ref.logits)]);
      for (const [key, i] of [['a', 0], ['b', 1]] as const) {
        if (key === 'a' && !c.trains) continue;
        for (const [name, m] of gl.get(key)!.modules) {
          const g = ref.loraGrads[i].get(name)!;
          report.push([`${key} d ${name}.lora_A`, normErr(await gpu.read(m.dA), g.A)]);
          report.push([`${key} d ${name}.lora_B`, normErr(await gpu.read(m.dB), g.B)]);
        }
      }
      const worst = report.reduce((a, b) => (b[1] > a[1] ? b : a));
      console.log(`fanout ${c.name}: ${report.length} tensors, worst ${worst[0]} ${worst[1].toExponential(2)}`);
      for (const [name, e] of report) expect(e, name).toBeLessThan(TOL);
      // the sender's gradient is not zero: every question's gradient reaches the one trace
      if (c.trains) expect(Math.max(...(await gpu.read(gl.get('a')!.modules.values().next().value!.dB)).map(Math.abs))).toBeGreaterThan(1e-6);
      ro.destroy();
      for (const l of gl.values()) l.destroy();
      gmap.destroy();
      model.destroy();
    });
  }
});

describe('the page\u2019s setup (src/ui/state.ts): quizLoss and curriculumFrom', () => {
  it('round-trip through the URL hash and into the run config where they apply', async () => {
    const { DEFAULT_STATE, parseState, runConfigOf, serializeState, stateOfRunConfig } = await import('../src/ui/state');
    const s = { ...DEFAULT_STATE, task: 'lookup' as const, difficulty: 3, method: 'diffmas' as const, quizLoss: true, curriculumFrom: 1 };
    const back = parseState(serializeState(s));
    expect(back.problems).toEqual([]);
    expect([back.state.quizLoss, back.state.curriculumFrom]).toEqual([true, 1]);
    const c = runConfigOf(back.state);
    expect([c.quizLoss, c.curriculumFrom]).toEqual([true, 1]);
    const again = stateOfRunConfig(DEFAULT_STATE, c);
    expect([again.quizLoss, again.curriculumFrom]).toEqual([true, 1]);
    // off by default and absent from the config; left out where they do not apply (text, relay, d1)
    const d = runConfigOf(DEFAULT_STATE);
    expect('quizLoss' in d || 'curriculumFrom' in d).toBe(false);
    expect(runConfigOf({ ...s, method: 'text' }).quizLoss).toBeUndefined();
    expect(runConfigOf({ ...s, method: 'text' }).curriculumFrom).toBeUndefined();
    expect(runConfigOf({ ...s, task: 'relay' }).quizLoss).toBeUndefined();
    expect(runConfigOf({ ...s, difficulty: 1 }).curriculumFrom).toBeUndefined();
    expect(parseState('#curriculumFrom=9').problems.length).toBe(1);
  });
});
