// `npm run experiment -- --task T --topology P --methods a,b --seeds K [--json FILE] [--save-adapters DIR]
// [--preset tiny|default] [--model DIR] [--steps N] [--difficulty D] [--latent-steps M] [--text-budget N] [--latency T] ...`:
// trains what needs training, evaluates every method on the same held-out and OOD sets, runs the
// controls, prints the table, the controls, the loss curves and the findings (src/mas/experiment.ts).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createNodeGpu } from '../gpu/node';
import { encodeAdapter } from '../storage/peft';
import { withSlotOffsetFile } from '../storage/slot-offset';
import { checkConfigFitsDevice } from '../storage/checkpoint';
import { DEFAULT_EVAL_SEED, makeTask, TASK_NAMES } from '../tasks/tasks';
import { CONTROL_NAMES, METHODS, type CompareRequest, type ControlName, type ExperimentReport, type MethodName } from '../worker/api';
import { EXPERIMENT_PRESETS, resolveTopology, TOPOLOGY_PRESETS } from '../mas/presets';
import { formatControls, formatCurves, formatTable, runExperiment } from '../mas/experiment';
import { EVAL_SPLITS } from '../mas/experiment';
import { MasEngine } from '../mas/run';
import { estimateExperiment, formatSeconds, longRunWarning } from '../mas/estimate';
import { measureTimings, runWork } from '../mas/measure-time';
import { formatBits, formatProbes, PROBE_TRAIN_EPISODES } from '../mas/measures';
import { formatPaired } from '../mas/paired';
import { formatBounds } from '../mas/bounds';
import { LATENCY_METHODS, latencyPlan, MAX_LATENCY } from '../mas/latency';
import { BIT_WIDTHS, BITS_TOLERANCE } from '../mas/quantize';
import { PROJS, type Proj } from '../model/config';
import { validateRunConfig } from '../mas/methods';
import { Args, parseSeeds, UsageError } from './args';
import { checkExportFolder, exportRuns } from './export-run';
import { BASE_REF_HELP, makeBaseRef, parseBaseRefArg } from './base-ref-node';
import type { TrainedAdapter } from '../mas/types';
import { fuserDims, type FuserWeights } from '../mas/c2c-fuser';
import { encodeFuserFile, FUSER_FILE } from '../storage/c2c-fuser';
import { checkOutputFile, isExperimentReport, loadBaseModel, lockOutputs, readFolder, writeFileAtomic, writeFolder } from './files';
import { resolveModelArg } from './hub';
import { checkSaveAdapters } from './save-adapters';
import { checkTensorboardFolder, runLr, writeTensorboard } from './tensorboard-out';
import { reportRuns } from '../storage/tensorboard';

export async function commandExperiment(argv: string[]): Promise<number> {
  const args = new Args(argv, [
    { name: 'task', help: `task: ${TASK_NAMES.join(', ')}`, default: 'lookup' },
    { name: 'difficulty', help: 'task difficulty 1..5', default: '1' },
    { name: 'topology', help: `topology: ${Object.keys(TOPOLOGY_PRESETS).join(', ')}, or its URL form v1;agents;edges;final`, default: 'preset' },
    { name: 'methods', help: `comma-separated methods (${METHODS.join(', ')})`, default: METHODS.join(',') },
    { name: 'seeds', help: 'number of seeds K (seeds 1..K), or a comma-separated list', default: '3' },
    { name: 'preset', help: `experiment preset: ${Object.keys(EXPERIMENT_PRESETS).join(', ')} (model, steps, batch, eval size, LoRA)`, default: 'default' },
    { name: 'model', help: 'base model folder: a Llama, Qwen2 or Qwen3 checkpoint (config.json, model.safetensors or shards, tokenizer.json), or hf:ORG/NAME[@REV] from the Hub (cli hub --help); default: the preset\u2019s' },
    { name: 'steps', help: 'training steps of trained methods (default: the preset\u2019s)' },
    { name: 'latent-steps', help: 'latent steps of every sender (default: the preset\u2019s)' },
    { name: 'text-budget', help: 'token budget of a text message (default: the preset\u2019s; text-trained writes exactly this many tokens)' },
    { name: 'latency', help: `the latency budget (issue 22): T = 0..${MAX_LATENCY} sequential passes per sender: text decodes T tokens (text budget T), a cache method (latentmas-full, diffmas-full, c2c) reads the prefilled prompt cache plus T latent steps (latent steps T); at T = 0 text runs as single and text-trained as single-trained (nothing crosses); the report's args.latency says which (default methods ${LATENCY_METHODS.join(',')}; not with --text-budget or --latent-steps)` },
    { name: 'text-temperature', help: 'text-trained: temperature tau of the straight-through softmax over each message token, 0.01..100 (default 1)' },
    { name: 'quiz-loss', help: 'train on the pretraining quiz (src/mas/quiz.ts; lookup, diffmas variants): each training episode\u2019s senders run once and the receiver answers every key of the table from that one message; the loss is the mean over all of them (evaluation unchanged)', flag: true },
    { name: 'curriculum-from', help: 'a curriculum (src/mas/curriculum.ts; trained methods): training batches from difficulty D first, then each next one up to --difficulty, the steps split evenly over the stages; evaluation at --difficulty' },
    { name: 'batch', help: 'episodes per step and per evaluation batch (default: the preset\u2019s)' },
    { name: 'lr-schedule', help: 'learning rate after the warmup: cosine (decays to lr/10 at the last step) or constant (holds lr)', default: 'cosine' },
    { name: 'latent-slot-offset', help: 'diffmas, diffmas-full: a learned input offset per latent step of each sender (zero at the start), trained and saved with its adapter', flag: true },
    { name: 'lr', help: 'learning rate of the adapters (default: the preset\u2019s)' },
    { name: 'rank', help: 'LoRA rank r (alpha = 2r; default: the preset\u2019s)' },
    { name: 'targets', help: `comma-separated projections that get LoRA (${PROJS.join(', ')}; default: the preset\u2019s)` },
    { name: 'eval-size', help: 'episodes per evaluation split (default: the preset\u2019s)' },
    { name: 'eval-seed', help: `seed of the evaluation sets, one for every method and seed (default ${DEFAULT_EVAL_SEED})` },
    { name: 'latent-map', help: 'latent map: ridge or identity', default: 'ridge' },
    { name: 'rendering', help: "how episodes become text: char (the toys' compact format), word (plain words for a real model's vocabulary) or chat (the word text through the model's chat template, tokenizer_config.json; refused without one); default: char for a character tokenizer, word for a tokenizer.json" },
    { name: 'controls', help: `comma-separated controls run on heldout for every method that sends messages (${CONTROL_NAMES.join(', ')}; noise, rotate and permute: latent methods only)`, default: CONTROL_NAMES.join(',') },
    { name: 'no-controls', help: 'skip every control', flag: true },
    { name: 'probe', help: 'after evaluation, latent methods: a linear (ridge) probe from each latent position, layer, K and V of the received K/V to each part of the senders\u2019 content, fitted on train-split episodes, scored on heldout (src/mas/probe.ts)', flag: true },
    { name: 'probe-train', help: `with --probe: train-split episodes the probes are fitted on (default ${PROBE_TRAIN_EPISODES})` },
    { name: 'bits', help: `after evaluation, latent methods: heldout accuracy with the received K/V quantised to ${BIT_WIDTHS.join(', ')} bits per float, and the smallest k within one point (src/mas/quantize.ts)`, flag: true },
    { name: 'json', help: 'write the report as JSON {args, episodes, rows (with per-episode outcomes), controls, summary, paired, bounds, findings, curves}' },
    { name: 'save-adapters', help: 'write every trained adapter as a PEFT folder DIR/<method>/seed<k>/<agent>, beside a copy of the base in DIR/base' },
    { name: 'export-run', help: 'write a run bundle (docs/run-bundle.md: run.json, base, PEFT adapters, episodes, first batches) per (method, seed) as DIR/<method>-seed<k>/' },
    { name: 'base-ref', help: `with --export-run: reference the base instead of copying it into each bundle: ${BASE_REF_HELP} (docs/run-bundle.md)` },
    { name: 'export-batches', help: 'with --export-run: training batches each bundle carries (default 4); the Python port draws every rendering\u2019s batches itself (char, word, chat), so these are only a record of the first steps' },
    { name: 'tensorboard', help: 'write TensorBoard event files (for tensorboard --logdir DIR, or W&B\u2019s TensorBoard sync) per (method, seed) as DIR/<method>/seed<k>/events.out.tfevents...: training loss and learning rate per step, evaluations and controls at the final step, the run config as text' },
    { name: 'resume', help: 'with --json: keep the (method, seed) results already in FILE from an interrupted run of the same arguments', flag: true },
    { name: 'quiet', help: 'print only the results', flag: true },
    { name: 'force', help: 'let --json replace an existing file that is not an experiment report, and --save-adapters replace the base and adapter folders of an earlier run', flag: true },
  ], 'usage: npm run experiment -- --task lookup --topology preset --methods single,text,latentmas,diffmas --seeds 3 [--preset tiny]');
  if (args.help) {
    console.log(args.helpText());
    return 0;
  }
  const presetName = args.str('preset')!;
  const preset = EXPERIMENT_PRESETS[presetName];
  if (!preset) throw new UsageError(`unknown --preset ${presetName} (have: ${Object.keys(EXPERIMENT_PRESETS).join(', ')})`);
  const taskName = args.str('task')!;
  if (!(TASK_NAMES as readonly string[]).includes(taskName)) throw new UsageError(`unknown --task ${taskName} (have: ${TASK_NAMES.join(', ')})`);
  const difficulty = args.int('difficulty', 1, 5)!;
  const task = makeTask(taskName, difficulty);
  const latencyT = args.int('latency', 0, MAX_LATENCY);
  if (latencyT !== undefined && (args.has('text-budget') || args.has('latent-steps'))) {
    throw new UsageError('--latency T sets both the text budget and the senders\u2019 latent steps to T: give --latency, or --text-budget and --latent-steps, not both');
  }
  const latentSteps = latencyT ?? args.int('latent-steps', 0, 64) ?? preset.latentSteps;
  let topology;
  try {
    topology = resolveTopology(args.str('topology')!, task, latentSteps);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const requested = latencyT !== undefined && !args.has('methods') ? [...LATENCY_METHODS] : args.list('methods')!;
  for (const m of requested) if (!(METHODS as readonly string[]).includes(m)) throw new UsageError(`unknown method ${m} in --methods (have: ${METHODS.join(', ')})`);
  let latency: ReturnType<typeof latencyPlan> | null = null;
  try {
    latency = latencyT === undefined ? null : latencyPlan(requested, latencyT);
  } catch (e) {
    throw new UsageError(`--latency ${latencyT}: ${(e as Error).message.replace(/^latency: /, '')}`);
  }
  const methods: string[] = latency ? latency.methods : requested;
  const seeds = parseSeeds(args.str('seeds')!);
  const latentMap = args.str('latent-map');
  if (latentMap !== 'ridge' && latentMap !== 'identity') throw new UsageError(`--latent-map must be ridge or identity, got '${latentMap}'`);
  const r = args.int('rank', 1, 64) ?? preset.rank;
  const targets = args.has('targets') ? parseTargets(args.str('targets')!) : preset.targets;
  // hf:ORG/NAME[@REV] is fetched from the Hub into the cache (cli/hub.ts); the rest reads its folder
  const modelDir = await resolveModelArg(args.str('model') ?? preset.model);
  const rendering = args.str('rendering');
  if (rendering !== undefined && rendering !== 'char' && rendering !== 'word' && rendering !== 'chat') throw new UsageError(`--rendering must be char, word or chat, got '${rendering}'`);
  const controls = args.list('controls')!;
  for (const c of controls) if (!(CONTROL_NAMES as readonly string[]).includes(c)) throw new UsageError(`unknown control ${c} in --controls (have: ${CONTROL_NAMES.join(', ')})`);
  if (new Set(controls).size !== controls.length) throw new UsageError('--controls: a control is listed twice');
  if (args.has('no-controls') && args.has('controls')) throw new UsageError('--controls and --no-controls: give one of them');
  const lrSchedule = args.str('lr-schedule');
  if (lrSchedule !== 'cosine' && lrSchedule !== 'constant') throw new UsageError(`--lr-schedule must be cosine or constant, got '${lrSchedule}'`);
  if (args.has('latent-slot-offset')) {
    const bad = methods.filter((m) => m !== 'diffmas' && m !== 'diffmas-full');
    if (bad.length) throw new UsageError(`--latent-slot-offset trains an offset per latent step of each sender with its adapter: only diffmas and diffmas-full do; drop ${bad.join(', ')} from --methods`);
  }
  const probeTrain = args.int('probe-train', 10, 1 << 20) ?? PROBE_TRAIN_EPISODES;
  if (args.has('probe-train') && !args.has('probe')) throw new UsageError('--probe-train needs --probe');
  const req: CompareRequest = {
    base: {
      task: task.name, difficulty, topology, modelId: modelDir,
      lora: { r, alpha: 2 * r, targets },
      lr: args.num('lr', 1e-6, 1) ?? preset.lr,
      steps: args.int('steps', 1, 100_000) ?? preset.steps,
      batch: args.int('batch', 1, 256) ?? preset.batch,
      latentMap, textBudget: latency?.textBudget ?? args.int('text-budget', 1, 64) ?? preset.textBudget,
      evalEvery: 0, evalSize: args.int('eval-size', 2, 10_000) ?? preset.evalSize,
      evalSeed: args.int('eval-seed', 0, Number.MAX_SAFE_INTEGER) ?? DEFAULT_EVAL_SEED,
      ...(rendering ? { rendering } : {}),
      ...(args.has('text-temperature') ? { textTemperature: args.num('text-temperature', 0.01, 100) } : {}),
      // only when given: a default run's config (and report) stays as before the options existed
      ...(lrSchedule === 'constant' ? { lrSchedule } : {}),
      ...(args.has('latent-slot-offset') ? { latentSlotOffset: true } : {}),
      ...(args.has('quiz-loss') ? { quizLoss: true } : {}),
      ...(args.has('curriculum-from') ? { curriculumFrom: args.int('curriculum-from', 1, 5) } : {}),
    },
    methods: methods as MethodName[],
    seeds,
  };
  if (req.base.quizLoss || req.base.curriculumFrom !== undefined) {
    // refused before anything trains: every method of the request must take them (methods.ts)
    for (const method of req.methods) {
      try {
        validateRunConfig({ ...req.base, method, seed: seeds[0] });
      } catch (e) {
        throw new UsageError(`method ${method}: ${(e as Error).message}`);
      }
    }
  }
  const quiet = args.has('quiet');
  const exportDir = args.str('export-run');
  const exportBatches = args.int('export-batches', 0, 100_000);
  if (exportBatches !== undefined && !exportDir) throw new UsageError('--export-batches sets what --export-run writes: give --export-run DIR too');
  const baseRefArg = args.str('base-ref');
  if (baseRefArg !== undefined && !exportDir) throw new UsageError('--base-ref sets what --export-run writes: give --export-run DIR too');
  if (baseRefArg !== undefined) parseBaseRefArg(baseRefArg, modelDir);
  // output paths are checked before any GPU work (the report is rewritten atomically after each result)
  const checkOutputs = async () => {
    if (args.str('json')) {
      await checkOutputFile(args.str('json')!, { force: args.has('force'), option: '--json', what: 'an experiment report', isOurs: isExperimentReport });
    }
    const plan = args.str('save-adapters') ? await checkSaveAdapters(args.str('save-adapters')!, { methods, seeds, force: args.has('force'), modelDir }) : null;
    if (exportDir) await checkExportFolder(exportDir, methods, seeds);
    const tbOthers = [['json', '--json'], ['save-adapters', '--save-adapters'], ['export-run', '--export-run']].filter(([k]) => args.str(k)).map(([k, option]) => ({ option, target: args.str(k)! }));
    if (args.str('tensorboard')) await checkTensorboardFolder(args.str('tensorboard')!, methods, seeds, tbOthers);
    return plan;
  };
  await checkOutputs();
  // one writer per output (issue 20 item 5): locked, then checked again under the locks (what another
  // command finished meanwhile is seen); main() removes the locks when the command ends
  const outputs = [['json', '--json'], ['save-adapters', '--save-adapters'], ['export-run', '--export-run'], ['tensorboard', '--tensorboard']].filter(([k]) => args.str(k));
  await lockOutputs(outputs.map(([k, option]) => ({ target: args.str(k)!, option })), ['experiment', ...argv].join(' '));
  const saveBase = await checkOutputs();
  const base = await loadBaseModel(modelDir);
  const gpu = await createNodeGpu();
  try {
    checkConfigFitsDevice(base.config, gpu.device.limits);
  } catch (e) {
    gpu.dispose();
    throw e;
  }
  const device = gpu.report.description || gpu.report.vendor;
  const saveDir = args.str('save-adapters');
  // which base exactly (a path can hold another base later) and its vocabulary (text bits = tokens x log2 V)
  // (a sharded checkpoint: the index, then its shards in name order)
  const single = path.join(modelDir, 'model.safetensors');
  const hash = createHash('sha256');
  if (existsSync(single)) hash.update(await readFile(single));
  else {
    const index = await readFile(path.join(modelDir, 'model.safetensors.index.json'));
    hash.update(index);
    const shards = [...new Set(Object.values((JSON.parse(index.toString()) as { weight_map: Record<string, string> }).weight_map))].sort();
    for (const s of shards) hash.update(await readFile(path.join(modelDir, s)));
  }
  const baseSha256 = hash.digest('hex');
  const extraArgs = () => ({ preset: presetName, model: modelDir, topologyArg: args.str('topology'), device, vocabSize: base.config.vocab_size, baseSha256, ...(latency ? { latency: latency.record } : {}) });
  // the fields of a saved report's args that decide its numbers
  const pick = (a: Record<string, unknown>) => Object.fromEntries(Object.keys(req.base).map((k) => [k, a[k]]));
  if (!quiet) {
    console.log(`device: ${device}; base ${modelDir} (d=${base.config.hidden_size}, ${base.config.num_hidden_layers} layers)`);
    console.log(`task ${task.name} d=${difficulty}; topology ${args.str('topology')}: ${topology.agents.map((a) => `${a.id}(part ${a.role}, ${a.latentSteps} latent)`).join(', ')}; edges ${topology.edges.map((e) => e.join('->')).join(', ')}`);
    console.log(`methods ${methods.join(', ')}; seeds ${seeds.join(', ')}; steps ${req.base.steps}, batch ${req.base.batch}, lr ${req.base.lr}${req.base.lrSchedule === 'constant' ? ' (constant after the warmup)' : ''}, LoRA r=${r} on ${targets.join(',')}${req.base.latentSlotOffset ? ', learned latent slot offsets' : ''}, eval ${req.base.evalSize}/split`);
    if (latency) console.log(`latency T = ${latency.record.T} sequential passes per sender. text: ${latency.record.text}. cache: ${latency.record.cache}`);
  }
  if (saveDir && saveBase?.writeBase) await writeFolder(path.join(saveDir, 'base'), await readFolder(modelDir));
  const json = args.str('json');
  let previous: ExperimentReport | undefined;
  if (args.has('resume')) {
    if (!json) throw new UsageError('--resume needs --json FILE (the partial report to continue)');
    if (existsSync(json)) {
      let old: ExperimentReport;
      try {
        old = JSON.parse(await readFile(json, 'utf8')) as ExperimentReport;
      } catch (e) {
        throw new UsageError(`--resume: ${json} is not JSON (${(e as Error).message}); it was left as it is`);
      }
      if (!old || typeof old.args !== 'object' || !Array.isArray(old.rows) || !Array.isArray(old.controls)) {
        throw new UsageError(`--resume: ${json} is not an experiment report (no args, rows and controls); it was left as it is`);
      }
      if (JSON.stringify(pick(old.args)) !== JSON.stringify(pick(req.base as unknown as Record<string, unknown>))) {
        throw new UsageError(`--resume: ${json} was made with other settings (task, topology, steps, ...); only --methods and --seeds may change`);
      }
      const oldSha = (old.args as Record<string, unknown>).baseSha256;
      if (oldSha !== undefined && oldSha !== baseSha256) {
        throw new UsageError(`--resume: ${json} was made on another base model (its weights differ from those in ${modelDir} now); start a new report`);
      }
      previous = old;
      if (!quiet) console.log(`resuming from ${json}: ${old.rows.length} rows kept`);
    }
  }
  // wall time of every leg of a resumed run, not only of the last one
  const earlierSeconds = Number(previous?.args?.seconds) || 0;
  const t0 = performance.now();
  const elapsed = () => earlierSeconds + (performance.now() - t0) / 1000;
  const save = async (r: ExperimentReport) => {
    if (json) await writeFileAtomic(json, JSON.stringify({ ...r, args: { ...r.args, ...extraArgs(), seconds: elapsed() } }, null, 2) + '\n');
  };
  // the time of the whole, from one measured training step and evaluation batch per method, said
  // before starting (issue 23 item 4); the measuring engine is the experiment's own (one upload)
  const engine = new MasEngine(gpu, base);
  const runControls = args.has('no-controls') ? [] : (controls as ControlName[]);
  const configs = methods.map((method) => ({ ...req.base, method: method as MethodName, seed: seeds[0] }));
  const timings = await measureTimings(engine, configs, (m) => !quiet && console.log(`timing one step and one evaluation batch of ${m}...`));
  const estimate = estimateExperiment(configs.map((c) => runWork(c, EVAL_SPLITS, runControls)), timings, seeds.length);
  console.log(`estimate: about ${formatSeconds(estimate.seconds)} for ${estimate.runs} run${estimate.runs === 1 ? '' : 's'} (${methods.length} method${methods.length === 1 ? '' : 's'} x ${seeds.length} seed${seeds.length === 1 ? '' : 's'}): ` +
    `training ${formatSeconds(estimate.trainSeconds)}, evaluation ${formatSeconds(estimate.evalSeconds)}; measured here: ` +
    timings.map((t) => `${t.method} ${t.stepSeconds ? `${t.stepSeconds.toFixed(2)} s/step, ` : ''}${t.episodeSeconds.toFixed(2)} s/episode`).join('; '));
  const warning = longRunWarning(estimate.seconds);
  if (warning) console.log(warning);
  let last = 0;
  const trained = new Map<string, TrainedAdapter[]>();
  const fusers = new Map<string, FuserWeights>();
  const report = await runExperiment(gpu, base, req, (message, fraction) => {
    const now = performance.now();
    if (!quiet && (now - last > 2000 || fraction === 1 || /done$/.test(message))) {
      last = now;
      console.log(`[${(fraction * 100).toFixed(0).padStart(3)}% ${((now - t0) / 1000).toFixed(0)}s] ${message}`);
    }
  }, {
    controls: args.has('no-controls') ? false : (controls as ControlName[]),
    measure: args.has('probe') || args.has('bits') ? { probe: args.has('probe') ? { trainEpisodes: probeTrain } : false, bits: args.has('bits') } : undefined,
    previous,
    engine,
    onPartial: save,
    onAdapters: saveDir || exportDir
      ? async (method, seed, adapters, fuser) => {
          if (exportDir) trained.set(`${method}:${seed}`, adapters);
          if (exportDir && fuser) fusers.set(`${method}:${seed}`, fuser);
          if (!saveDir) return;
          // c2c trains no adapter: its fuser goes to DIR/<method>/seed<k>/c2c_fuser.safetensors (src/storage/c2c-fuser.ts)
          if (fuser) await writeFolder(path.join(saveDir, method, `seed${seed}`), new Map([[FUSER_FILE, encodeFuserFile(fuser, fuserDims(fuser).L, fuserDims(fuser).W)]]));
          for (const a of adapters) {
            const dir = path.join(saveDir, method, `seed${seed}`, a.agent);
            const config = { ...a.config, base_model_name_or_path: path.resolve(saveDir, 'base') };
            await writeFolder(dir, withSlotOffsetFile(encodeAdapter({ config, tensors: a.tensors }, base.config), a.slotOffset));
          }
        }
      : undefined,
  });
  engine.destroy();
  const seconds = elapsed();
  report.args = { ...report.args, ...extraArgs(), seconds };
  console.log(`\n${formatTable(report)}\n\ncontrols (heldout accuracy):\n${formatControls(report)}\n\ntraining loss (mean over seeds, per 25 steps):\n${formatCurves(report)}\n`);
  if (report.paired?.length) console.log(`paired comparisons (bootstrap over seeds and shared episodes; "A beats B" iff the interval excludes 0):\n${formatPaired(report.paired)}\n`);
  if (report.bounds) console.log(`what a message could carry (${report.bounds.task} d${report.bounds.difficulty}):\n${formatBounds(report.bounds)}\n`);
  if (report.probes) console.log(`probes of the received K/V (best heldout accuracy per target over positions, layers, K and V):\n${formatProbes(report.probes)}\n`);
  if (report.bits) console.log(`received K/V quantised (heldout accuracy; the smallest k keeps it within ${BITS_TOLERANCE}):\n${formatBits(report.bits)}\n`);
  for (const f of report.findings) console.log(`- ${f}`);
  console.log(`\n${seconds.toFixed(0)} s on ${device}${earlierSeconds ? ` (${(seconds - earlierSeconds).toFixed(0)} s in this leg, resumed)` : ''}`);
  if (json) {
    await writeFileAtomic(json, JSON.stringify(report, null, 2) + '\n');
    if (!quiet) console.log(`wrote ${json}`);
  }
  if (saveDir && !quiet) console.log(`wrote adapters under ${saveDir}`);
  const tbDir = args.str('tensorboard');
  if (tbDir) {
    const runs = reportRuns(report, { configOf: (method, seed) => ({ ...req.base, method, seed }), startSeconds: Date.now() / 1000 - seconds, lrOf: runLr });
    const dirs = await writeTensorboard(tbDir, runs);
    if (!quiet) console.log(`wrote TensorBoard event files of ${dirs.length} run${dirs.length === 1 ? '' : 's'} under ${tbDir} (tensorboard --logdir ${tbDir})`);
  }
  if (exportDir) {
    const baseFiles = await readFolder(modelDir);
    const baseRef = baseRefArg !== undefined ? await makeBaseRef(baseRefArg, modelDir, baseFiles) : undefined;
    if (baseRef && !quiet) console.log(`the bundles reference the base as ${baseRef.source} ${baseRef.id}${baseRef.revision ? `@${baseRef.revision}` : ''} (weights sha256 ${baseRef.sha256})`);
    const dirs = await exportRuns({
      dir: exportDir, gpu, base, baseFiles, report, trained, fusers, configOf: (method, seed) => ({ ...req.base, method, seed }),
      ...(exportBatches !== undefined ? { batches: exportBatches } : {}),
      ...(baseRef ? { baseRef } : {}),
      ...(quiet ? {} : { onProgress: (m: string) => console.log(m) }),
    });
    if (!quiet) console.log(`wrote ${dirs.length} run bundle${dirs.length === 1 ? '' : 's'} under ${exportDir}: ${dirs.map((d) => path.basename(d)).join(', ')}`);
  }
  gpu.dispose();
  return 0;
}

function parseTargets(text: string): Proj[] {
  const list = text.split(',').map((t) => t.trim()).filter(Boolean);
  const bad = list.filter((t) => !(PROJS as readonly string[]).includes(t));
  if (!list.length || bad.length) throw new UsageError(`--targets: ${bad.length ? `unknown ${bad.join(', ')}` : 'empty'} (have: ${PROJS.join(', ')})`);
  if (new Set(list).size !== list.length) throw new UsageError('--targets: a projection is listed twice');
  return list as Proj[];
}
