// What each communication mode does (shared/DESIGN.md section 1), and the checks that a run
// configuration fits its task, topology and method, with messages that say what to change.
import { RENDERINGS } from '../tasks/render';
import { METHODS, type MethodName, type RunConfig } from './run-types';
import { PROJS } from '../model/config';
import { MAX_DIFFICULTY, MIN_DIFFICULTY, makeTask, TASK_NAMES, type Task } from '../tasks/tasks';
import { predecessors, topologicalOrder, validateTopology, type Agent, type Topology } from './topology';
import { quizProblem } from './quiz';
import { curriculumProblem } from './curriculum';

export interface MethodSpec {
  name: MethodName;
  /** What crosses to a receiver: nothing, decoded tokens, or K/V traces. */
  channel: 'none' | 'text' | 'latent';
  /** Latent channel: only the m latent positions, or the sender's prompt and its latent positions. */
  trace: 'latent' | 'full' | null;
  /** Which agents' adapters are trained: none, every participant's (gradient through the traces; without a channel the one agent's), or the final agent's only;
   * 'fuser': no adapter at all, only the Cache-to-Cache fuser between the frozen agents (c2c-fuser.ts). */
  train: 'none' | 'all' | 'receiver' | 'fuser';
  /** One agent holding every part (formatSkyline). */
  skyline: boolean;
  description: string;
}

export const METHOD_SPECS: Readonly<Record<MethodName, MethodSpec>> = Object.freeze({
  single: { name: 'single', channel: 'none', trace: null, train: 'none', skyline: false, description: 'the final agent alone with its own part (no messages)' },
  skyline: { name: 'skyline', channel: 'none', trace: null, train: 'none', skyline: true, description: 'one agent whose context holds every part' },
  // the equally trained baselines (issue 19): the one agent's LoRA, with DiffMAS's rank, steps, lr and batch, on the answer
  'single-trained': { name: 'single-trained', channel: 'none', trace: null, train: 'all', skyline: false, description: 'single with its LoRA trained on the answer (no messages)' },
  'skyline-trained': { name: 'skyline-trained', channel: 'none', trace: null, train: 'all', skyline: true, description: 'skyline with its LoRA trained on the answer' },
  text: { name: 'text', channel: 'text', trace: null, train: 'none', skyline: false, description: 'senders decode a text message greedily; receivers read it' },
  'text-trained': { name: 'text-trained', channel: 'text', trace: null, train: 'all', skyline: false, description: 'LoRA trained through the text messages (straight-through softmax over each token, BPTT through the decoding)' },
  latentmas: { name: 'latentmas', channel: 'latent', trace: 'latent', train: 'none', skyline: false, description: 'training-free latent steps; the receiver reads the latent K/V only' },
  'latentmas-full': { name: 'latentmas-full', channel: 'latent', trace: 'full', train: 'none', skyline: false, description: 'training-free latent steps; the receiver reads the sender prompt and latent K/V' },
  diffmas: { name: 'diffmas', channel: 'latent', trace: 'latent', train: 'all', skyline: false, description: 'LoRA trained through the latent K/V trace (BPTT through the latent steps)' },
  'diffmas-full': { name: 'diffmas-full', channel: 'latent', trace: 'full', train: 'all', skyline: false, description: 'LoRA trained through the full trace (sender prompt and latent K/V)' },
  'diffmas-detached': { name: 'diffmas-detached', channel: 'latent', trace: 'latent', train: 'receiver', skyline: false, description: 'only the receiver learns; the senders\u2019 traces are constants' },
  // Cache-to-Cache (issue 22): the full trace, as diffmas-full, through a trained projector and gate per layer
  c2c: { name: 'c2c', channel: 'latent', trace: 'full', train: 'fuser', skyline: false, description: 'Cache-to-Cache: a learned projector and gate per layer fuse the sender\u2019s full cache into the receiver\u2019s; both bases frozen' },
});

export function methodSpec(name: string): MethodSpec {
  if (!(METHODS as readonly string[]).includes(name)) {
    throw new Error(`unknown method ${JSON.stringify(name)} (known: ${METHODS.join(', ')})`);
  }
  return METHOD_SPECS[name as MethodName];
}

/** Limits of the settings a run accepts. */
export const LIMITS = Object.freeze({
  steps: [0, 100_000],
  batch: [1, 256],
  lr: [1e-6, 1],
  textBudget: [1, 64],
  textTemperature: [0.01, 100],
  evalEvery: [0, 100_000],
  evalSize: [1, 10_000],
  r: [1, 64],
});

function int(name: string, v: unknown, [lo, hi]: readonly number[]): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new Error(`run config: ${name} must be an integer in ${lo}..${hi}, got ${JSON.stringify(v)}`);
  }
}

/** The agents that take part in a method: the final one alone (no channel: single, skyline and their trained variants) or all of them, in topological order. */
export function participants(t: Topology, spec: MethodSpec): Agent[] {
  if (spec.channel === 'none') return [t.agents.find((a) => a.id === t.final)!];
  return topologicalOrder(t).map((id) => t.agents.find((a) => a.id === id)!);
}

/**
 * Checks a run configuration against its task, topology and method; returns the task. Every problem
 * throws an Error naming the setting and the fix.
 */
export function validateRunConfig(c: RunConfig): { task: Task; spec: MethodSpec } {
  if (c === null || typeof c !== 'object') throw new Error('run config: expected an object');
  if (!(TASK_NAMES as readonly string[]).includes(c.task)) throw new Error(`run config: unknown task ${JSON.stringify(c.task)} (known: ${TASK_NAMES.join(', ')})`);
  int('difficulty', c.difficulty, [MIN_DIFFICULTY, MAX_DIFFICULTY]);
  const task = makeTask(c.task, c.difficulty);
  const spec = methodSpec(c.method);
  int('steps', c.steps, LIMITS.steps);
  int('batch', c.batch, LIMITS.batch);
  if (typeof c.lr !== 'number' || !(c.lr >= LIMITS.lr[0] && c.lr <= LIMITS.lr[1])) throw new Error(`run config: lr must be in [${LIMITS.lr[0]}, ${LIMITS.lr[1]}], got ${JSON.stringify(c.lr)}`);
  if (typeof c.seed !== 'number' || !Number.isSafeInteger(c.seed) || c.seed < 0) throw new Error(`run config: seed must be a non-negative integer, got ${JSON.stringify(c.seed)}`);
  if (c.evalSeed !== undefined && (typeof c.evalSeed !== 'number' || !Number.isSafeInteger(c.evalSeed) || c.evalSeed < 0)) {
    throw new Error(`run config: evalSeed must be a non-negative integer, got ${JSON.stringify(c.evalSeed)}`);
  }
  int('textBudget', c.textBudget, LIMITS.textBudget);
  if (c.textTemperature !== undefined && !(typeof c.textTemperature === 'number' && c.textTemperature >= LIMITS.textTemperature[0] && c.textTemperature <= LIMITS.textTemperature[1])) {
    throw new Error(`run config: textTemperature must be a number in [${LIMITS.textTemperature[0]}, ${LIMITS.textTemperature[1]}], got ${JSON.stringify(c.textTemperature)}`);
  }
  if (c.lrSchedule !== undefined && c.lrSchedule !== 'cosine' && c.lrSchedule !== 'constant') throw new Error(`run config: lrSchedule must be 'cosine' or 'constant', got ${JSON.stringify(c.lrSchedule)}`);
  if (c.latentSlotOffset !== undefined && typeof c.latentSlotOffset !== 'boolean') throw new Error(`run config: latentSlotOffset must be true or false, got ${JSON.stringify(c.latentSlotOffset)}`);
  int('evalEvery', c.evalEvery, LIMITS.evalEvery);
  int('evalSize', c.evalSize, LIMITS.evalSize);
  if (c.rendering !== undefined && !(RENDERINGS as readonly string[]).includes(c.rendering)) throw new Error(`run config: rendering must be one of ${RENDERINGS.join(', ')}, got ${JSON.stringify(c.rendering)}`);
  if (c.positions !== undefined && c.positions !== 'stream' && c.positions !== 'prefix') throw new Error(`run config: positions must be 'stream' or 'prefix', got ${JSON.stringify(c.positions)}`);
  if (c.latentMap !== 'ridge' && c.latentMap !== 'identity') throw new Error(`run config: latentMap must be 'ridge' or 'identity', got ${JSON.stringify(c.latentMap)}`);
  if (!c.lora || typeof c.lora !== 'object') throw new Error('run config: lora {r, alpha, targets} is missing');
  int('lora.r', c.lora.r, LIMITS.r);
  if (typeof c.lora.alpha !== 'number' || !(c.lora.alpha > 0 && c.lora.alpha <= 1024)) throw new Error(`run config: lora.alpha must be in (0, 1024], got ${JSON.stringify(c.lora.alpha)}`);
  if (!Array.isArray(c.lora.targets) || c.lora.targets.length === 0) throw new Error('run config: lora.targets must list at least one projection');
  for (const p of c.lora.targets) {
    if (!(PROJS as readonly string[]).includes(p)) throw new Error(`run config: lora target ${JSON.stringify(p)} is not one of ${PROJS.join(', ')}`);
  }
  if (spec.train !== 'none' && c.steps < 1) throw new Error(`run config: method ${spec.name} trains ${spec.name === 'c2c' ? 'its fuser' : 'adapters'}: steps must be at least 1`);

  // the two training ablations of issue 22 (quiz.ts, curriculum.ts)
  const ablation = quizProblem(c, spec) ?? curriculumProblem(c, spec);
  if (ablation) throw new Error(ablation);

  const t = c.topology;
  const problems = validateTopology(t, { parts: task.roles.length });
  if (problems.length) {
    throw new Error(`topology does not fit task ${task.name} (${task.roles.length} parts):\n${problems.map((p) => `- ${p.message}`).join('\n')}`);
  }
  const final = t.agents.find((a) => a.id === t.final)!;
  if (final.latentSteps !== 0 && spec.channel === 'latent') {
    throw new Error(`topology: the final agent ${final.id} has ${final.latentSteps} latent steps; the final agent answers directly, set its latent steps to 0`);
  }
  if (spec.channel !== 'none' && predecessors(t, t.final).length === 0) {
    throw new Error(`method ${spec.name} needs senders, but the final agent ${final.id} receives from no agent (a single-agent topology): use a topology with senders, or the method 'single'`);
  }
  // single, skyline and their trained variants use the final agent alone; every other method needs every part held by some agent
  const held = new Set(t.agents.map((a) => a.role));
  const missing = task.roles.filter((r) => !held.has(r.part));
  if (missing.length && spec.channel !== 'none') {
    throw new Error(
      `topology does not fit task ${task.name}: no agent holds ${missing.map((r) => `part ${r.part} (${r.name})`).join(', ')}, so no method could answer; give each part to an agent`,
    );
  }
  if (spec.channel === 'latent' && spec.trace === 'latent') {
    const silent = t.agents.filter((a) => a.id !== t.final && a.latentSteps < 1);
    if (silent.length) {
      throw new Error(
        `method ${spec.name} passes on only the latent positions, but sender ${silent.map((a) => a.id).join(', ')} has 0 latent steps (its trace would be empty): give every sender at least 1 latent step, or use ${spec.train === 'none' ? 'latentmas-full' : 'diffmas-full'}`,
      );
    }
  }
  // the offsets belong to the senders' adapters: a method must train the senders through the channel
  if (c.latentSlotOffset && !(spec.channel === 'latent' && spec.train === 'all')) {
    throw new Error(`run config: latentSlotOffset trains an input offset per latent step of each sender, with the sender's adapter, but method ${spec.name} ${spec.channel !== 'latent' ? 'has no latent steps' : spec.train === 'none' ? 'trains nothing' : 'trains the receiver only'}: use diffmas or diffmas-full, or turn it off`);
  }
  return { task, spec };
}
