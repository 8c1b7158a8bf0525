// The engine's seeded streams as a fixture (tests/fixtures/streams.json), the reference the PyTorch
// companion's port of the tasks is held to (python/tests/test_new.py): for each task (lookup, relay,
// arith, index) and difficulty, the first episodes of every split's sample stream and each split's evaluation
// set; for each rendering the engine has (char with the tiny base's character tokenizer; word with a
// byte-level BPE and a sentencepiece-style BPE, tests/hf-fixtures.ts; chat with the byte-level BPE and a
// ChatML template) and each task and difficulty, the
// first evaluation episodes as a run bundle holds them (prompts, ids, target ids per agent) and the first
// training batches of a DiffMAS run, and at difficulty 2 those of the other trained methods and of a
// two-round topology.
//
//   node scripts/dump-streams.mjs            rewrites tests/fixtures/streams.json
//   node scripts/dump-streams.mjs --check    exits 1 when the committed file differs from what the engine draws
//
// The engine's code is bundled with esbuild (as scripts/bundle.mjs bundles the CLI); tests/
// streams-fixture.test.ts makes the same fixture in memory from the sources and compares it with the file.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURE = path.join(ROOT, 'tests', 'fixtures', 'streams.json');
export const CHAR_TOKENIZER = path.join(ROOT, 'public', 'models', 'tiny', 'tokenizer.json');
const REGENERATE = 'node scripts/dump-streams.mjs';

// A new task joins by its name here (and its port in python/latent_playground/tasks.py).
const TASKS = ['lookup', 'relay', 'arith', 'index'];
const DIFFICULTIES = [1, 2, 3, 4, 5];
const SPLITS = ['train', 'heldout', 'ood'];
const SAMPLE_N = 6;
const SAMPLE_SEED = 3;
const EVAL_SIZE = 48;
/** Evaluation seeds: the default (absent) at odd difficulties, this one at even ones. */
const EVAL_SEED = 11;
const RUN = { seed: 5, batch: 2, textBudget: 3, latentSteps: 2 };
const BATCHES = 2;
const EPISODES_PER_CASE = 2;
const EXTRA_METHODS = ['single-trained', 'skyline-trained', 'text-trained', 'diffmas-full'];
/** The chat rendering's template: ChatML (as Qwen2.5 and SmolLM2 write it, without a default system turn), over the byte-level BPE. */
const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * The fixture, from the engine's modules `e` (src/tasks, src/mas, src/tokenizers and tests/hf-fixtures.ts,
 * as the names below) and the tiny base's tokenizer.json.
 */
export function streamsFixture(e, charJson) {
  const char = e.CharTokenizer.fromJSON(charJson);
  const bpe = e.byteLevelBpe();
  const sp = e.sentencepieceBpe();
  const hf = (m) => new e.HfTokenizer(m.json, m.config);
  const chatConfig = { ...bpe.config, chat_template: CHATML };
  const tokenizers = { char, bpe: hf(bpe), sp: hf(sp), bpechat: hf({ json: bpe.json, config: chatConfig }) };
  const tokens = (tk) => ({ pad: tk.padId, bos: tk.bosId, eos: tk.eosId, vocabSize: tk.vocabSize });
  const episodes = {};
  for (const name of TASKS) {
    for (const d of DIFFICULTIES) {
      const task = e.makeTask(name, d);
      const evalSeed = d % 2 === 0 ? EVAL_SEED : null;
      const entry = { evalSeed, evalSize: EVAL_SIZE, sample: {}, eval: {} };
      for (const split of SPLITS) {
        entry.sample[split] = e.sampleEpisodes(task, split, SAMPLE_N, SAMPLE_SEED).map((ep) => [ep.key, ep.contentKey, ep.parts, ep.answer]);
        const cfg = evalSeed === null ? { evalSize: EVAL_SIZE } : { evalSize: EVAL_SIZE, evalSeed };
        entry.eval[split] = e.evalEpisodes(task, cfg, split).map((ep) => ep.key);
      }
      episodes[`${name}/${d}`] = entry;
    }
  }
  const cases = [];
  const addCase = (renderingName, tkName, name, d, method, topologyName) => {
    const task = e.makeTask(name, d);
    const tk = tokenizers[tkName];
    const r = e.rendering(renderingName, tk);
    const spec = e.methodSpec(method);
    const topology = topologyName === 'two-round' ? e.twoRound({ latentSteps: RUN.latentSteps }) : e.presetForTask(task, { latentSteps: RUN.latentSteps });
    const plan = e.makePlan(topology, spec);
    const config = { seed: RUN.seed, batch: RUN.batch, textBudget: RUN.textBudget };
    const evalSeed = d % 2 === 0 ? EVAL_SEED : undefined;
    const eps = e.evalEpisodes(task, { evalSize: EVAL_SIZE, evalSeed }, 'heldout').slice(0, EPISODES_PER_CASE);
    const batches = e.firstTrainingBatches(task, tk, r, plan, spec, config, BATCHES).map((rows, i) => ({
      batch: i + 1,
      signature: rows[0].prompts.map((p) => p.length).join(','),
      rows: rows.map((row) => ({ key: row.episode.key, parts: row.episode.parts, answer: row.episode.answer, promptIds: row.prompts, finalIds: row.finalIds, finalTargets: row.finalTargets })),
    }));
    cases.push({
      rendering: renderingName, tokenizer: tkName, task: name, difficulty: d, method, topology: topologyName,
      agents: plan.map((pa) => ({ id: pa.agent.id, role: pa.agent.role, latentSteps: pa.m, final: pa.final, predecessors: pa.preds.map((p) => plan[p].agent.id) })),
      maxAnswerTokens: r.maxAnswerChars(task),
      episodes: eps.map((ep) => ({
        key: ep.key, parts: ep.parts, answer: ep.answer, targetIds: e.answerIds(tk, r, task, ep),
        agents: plan.map((pa) => {
          const prompt = e.promptText(r, ep, pa, spec, []);
          return { prompt, ids: tk.encode(prompt) };
        }),
      })),
      batches,
    });
  };
  // every rendering of render.ts RENDERINGS with a tokenizer it serves (a new rendering joins here, and in python/latent_playground/render.py);
  // chat: the byte-level BPE with a ChatML template in its tokenizer_config.json
  const combos = [['char', 'char'], ['word', 'bpe'], ['word', 'sp'], ['chat', 'bpechat']];
  for (const [rn, tn] of combos) {
    for (const name of TASKS) {
      for (const d of DIFFICULTIES) {
        addCase(rn, tn, name, d, 'diffmas', 'preset');
        if (d === 2) for (const m of EXTRA_METHODS) addCase(rn, tn, name, d, m, 'preset');
      }
    }
    addCase(rn, tn, 'lookup', 2, 'diffmas', 'two-round');
  }
  // curricula (src/mas/curriculum.ts; issue 22): every batch of the stages and a few past them, in the
  // char rendering (lookup, arith with its varying lengths, text-trained's batcher) and the word rendering
  const curriculum = [];
  const addCurriculum = (renderingName, tkName, name, d, method, from, steps, n) => {
    const task = e.makeTask(name, d);
    const tk = tokenizers[tkName];
    const r = e.rendering(renderingName, tk);
    const spec = e.methodSpec(method);
    const plan = e.makePlan(e.presetForTask(task, { latentSteps: RUN.latentSteps }), spec);
    const config = { seed: RUN.seed, batch: RUN.batch, textBudget: RUN.textBudget, curriculumFrom: from, steps };
    const batches = e.firstTrainingBatches(task, tk, r, plan, spec, config, n).map((rows, i) => ({
      batch: i + 1,
      signature: rows[0].prompts.map((p) => p.length).join(','),
      rows: rows.map((row) => ({ key: row.episode.key, parts: row.episode.parts, answer: row.episode.answer, promptIds: row.prompts, finalIds: row.finalIds, finalTargets: row.finalTargets })),
    }));
    curriculum.push({
      rendering: renderingName, tokenizer: tkName, task: name, difficulty: d, method, curriculumFrom: from, steps,
      agents: plan.map((pa) => ({ id: pa.agent.id, role: pa.agent.role, latentSteps: pa.m, final: pa.final, predecessors: pa.preds.map((p) => plan[p].agent.id) })),
      maxAnswerTokens: r.maxAnswerChars(task), batches,
    });
  };
  addCurriculum('char', 'char', 'lookup', 3, 'diffmas', 1, 6, 8);
  addCurriculum('char', 'char', 'arith', 3, 'diffmas', 1, 7, 9);
  addCurriculum('char', 'char', 'lookup', 2, 'text-trained', 1, 4, 5);
  addCurriculum('word', 'bpe', 'lookup', 3, 'diffmas', 2, 4, 5);
  return {
    header: {
      what: "the engine's seeded streams (src/tasks/tasks.ts, src/tasks/render.ts, src/mas/run-data.ts) that the companion's port is held to (python/tests/test_new.py)",
      regenerate: REGENERATE,
      check: 'tests/streams-fixture.test.ts makes this in memory and compares',
      sample: { n: SAMPLE_N, seed: SAMPLE_SEED, fields: ['key', 'contentKey', 'parts', 'answer'] },
      run: { ...RUN, batches: BATCHES, episodesPerCase: EPISODES_PER_CASE, evalSplit: 'heldout' },
    },
    tokenizers: {
      char: { json: charJson, tokens: tokens(char) },
      bpe: { json: bpe.json, config: bpe.config, tokens: tokens(tokenizers.bpe) },
      sp: { json: sp.json, config: sp.config, tokens: tokens(tokenizers.sp) },
      bpechat: { json: bpe.json, config: chatConfig, tokens: tokens(tokenizers.bpechat) },
    },
    episodes,
    cases,
    curriculum,
  };
}

/** The file's text: one line per episode entry and per case, so a diff names what moved. */
export function serialize(fx) {
  const lines = ['{'];
  lines.push(`"header": ${JSON.stringify(fx.header)},`);
  lines.push(`"tokenizers": ${JSON.stringify(fx.tokenizers)},`);
  const eps = Object.entries(fx.episodes);
  lines.push('"episodes": {');
  eps.forEach(([k, v], i) => lines.push(`${JSON.stringify(k)}: ${JSON.stringify(v)}${i < eps.length - 1 ? ',' : ''}`));
  lines.push('},');
  lines.push('"cases": [');
  fx.cases.forEach((c, i) => lines.push(`${JSON.stringify(c)}${i < fx.cases.length - 1 ? ',' : ''}`));
  lines.push('],');
  lines.push('"curriculum": [');
  fx.curriculum.forEach((c, i) => lines.push(`${JSON.stringify(c)}${i < fx.curriculum.length - 1 ? ',' : ''}`));
  lines.push(']', '}');
  return lines.join('\n') + '\n';
}

/** The engine's modules this needs, bundled for Node into .cache/streams/ (a file of this process's own, renamed into place). */
async function loadEngine() {
  const out = path.join(ROOT, '.cache', 'streams', 'engine.mjs');
  const tmp = `${out}.${process.pid}.tmp`;
  mkdirSync(path.dirname(out), { recursive: true });
  const contents = [
    "export { makeTask, sampleEpisodes } from './src/tasks/tasks';",
    "export { rendering } from './src/tasks/render';",
    "export { evalEpisodes, firstTrainingBatches } from './src/mas/run-data';",
    "export { makePlan, promptText, answerIds } from './src/mas/data';",
    "export { methodSpec } from './src/mas/methods';",
    "export { presetForTask, twoRound } from './src/mas/topology';",
    "export { CharTokenizer, HfTokenizer } from './src/tokenizers';",
    "export { byteLevelBpe, sentencepieceBpe } from './tests/hf-fixtures';",
  ].join('\n');
  try {
    await build({
      stdin: { contents, resolveDir: ROOT, loader: 'ts', sourcefile: 'streams-engine.ts' },
      outfile: tmp, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning', external: ['webgpu'],
      // run-data.ts reaches the GPU ops' modules, whose WGSL is imported as text (?raw); nothing here runs them
      plugins: [{ name: 'raw', setup: (b) => b.onLoad({ filter: /\.wgsl$/ }, () => ({ contents: '', loader: 'text' })) }],
    });
    renameSync(tmp, out);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return import(`${pathToFileURL(out).href}?${process.pid}`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const check = process.argv.includes('--check');
  const text = serialize(streamsFixture(await loadEngine(), JSON.parse(readFileSync(CHAR_TOKENIZER, 'utf8'))));
  if (check) {
    const same = readFileSync(FIXTURE, 'utf8') === text;
    console.log(same ? `${path.relative(ROOT, FIXTURE)} is what the engine draws` : `${path.relative(ROOT, FIXTURE)} differs from what the engine draws: run ${REGENERATE}`);
    process.exit(same ? 0 : 1);
  }
  writeFileSync(FIXTURE, text);
  console.log(`wrote ${path.relative(ROOT, FIXTURE)} (${(text.length / 1024).toFixed(0)} KiB)`);
}
