// The page's shareable state, after TensorFlow Playground's state.ts: one table of every property a
// person sets, with its type, default and bounds, serialised to and from the URL hash in one place.
// A link restores the setup exactly (the same config and seed give the same numbers); the library
// is not in the link (it lives in IndexedDB).
//
// Hash form: #task=lookup&difficulty=1&method=diffmas&...&topology=v1;a0:0:4:o:table,...;a0-a1;a1
// Values are URI-encoded except ; : , which stay readable; the topology goes in as serializeTopology
// writes it (already URL-safe). Unknown keys are ignored; a bad value keeps the default and is reported.
import { presetForTask, parseTopology, serializeTopology, type Topology } from '../mas/topology';
import { ATTENTION_PROJS, PROJS, type Proj } from '../model/config';
import { MAX_DIFFICULTY, MIN_DIFFICULTY, SPLITS, TASK_NAMES, makeTask, type Split, type TaskName } from '../tasks/tasks';
import { RENDERINGS, type RenderingName } from '../tasks/render';
import { METHODS, type MethodName, type RunConfig } from '../worker/api';
import { isTrainedMethod } from '../mas/run-types';
import { QUIZ_METHODS, QUIZ_TASKS } from '../mas/quiz';

export interface AppState {
  // the run
  task: TaskName;
  difficulty: number;
  method: MethodName;
  model: string;
  rank: number;
  alpha: number;
  targets: Proj[];
  lr: number;
  steps: number;
  batch: number;
  seed: number;
  latentMap: 'ridge' | 'identity';
  positions: 'stream' | 'prefix';
  textBudget: number;
  /** text-trained's straight-through softmax temperature (RunConfig.textTemperature). */
  textTemperature: number;
  /** Learning rate after the warmup (RunConfig.lrSchedule): cosine decay (default) or constant. */
  lrSchedule: 'cosine' | 'constant';
  /** A learned input offset per latent slot of each sender (RunConfig.latentSlotOffset; diffmas, diffmas-full). */
  latentSlotOffset: boolean;
  /** The quiz loss (RunConfig.quizLoss; lookup, DiffMAS variants). */
  quizLoss: boolean;
  /** A curriculum's first difficulty (RunConfig.curriculumFrom); 0: none. */
  curriculumFrom: number;
  evalEvery: number;
  evalSize: number;
  topology: Topology;
  /** How episodes become text (RunConfig.rendering); 'auto': the model's default (char for the toys, word for a tokenizer.json). */
  rendering: RenderingChoice;
  // the latent-message view
  split: Split;
  example: number;
  layer: string;
  head: string;
  // the curves
  smoothing: number;
  /** The loss chart's y axis fitted to the data (otherwise from 0). */
  fitY: boolean;
  // compare
  compareMethods: MethodName[];
  compareSeeds: number[];
}

/** The page's rendering choice: a rendering of src/tasks/render.ts, or 'auto' (none in the run config). */
export type RenderingChoice = 'auto' | RenderingName;
export const RENDERING_CHOICES: readonly RenderingChoice[] = ['auto', ...RENDERINGS];

type PropType = 'int' | 'number' | 'enum' | 'string' | 'list' | 'ints' | 'topology' | 'bool' | 'pick';

interface Prop<K extends keyof AppState = keyof AppState> {
  name: K;
  type: PropType;
  /** enum/list: the allowed values */
  options?: readonly string[];
  min?: number;
  max?: number;
}

/** Every user-settable property: name in the hash = field name. */
export const PROPS: readonly Prop[] = [
  { name: 'task', type: 'enum', options: TASK_NAMES },
  { name: 'difficulty', type: 'int', min: MIN_DIFFICULTY, max: MAX_DIFFICULTY },
  { name: 'method', type: 'enum', options: METHODS },
  { name: 'model', type: 'string' },
  { name: 'rank', type: 'int', min: 1, max: 64 },
  { name: 'alpha', type: 'number', min: 0.01, max: 1024 },
  { name: 'targets', type: 'list', options: PROJS },
  { name: 'lr', type: 'number', min: 1e-6, max: 1 },
  { name: 'steps', type: 'int', min: 1, max: 100000 },
  { name: 'batch', type: 'int', min: 1, max: 256 },
  { name: 'seed', type: 'int', min: 0, max: 2 ** 31 - 1 },
  { name: 'latentMap', type: 'enum', options: ['ridge', 'identity'] },
  { name: 'positions', type: 'enum', options: ['stream', 'prefix'] },
  { name: 'textBudget', type: 'int', min: 1, max: 64 },
  { name: 'textTemperature', type: 'number', min: 0.01, max: 100 },
  { name: 'lrSchedule', type: 'enum', options: ['cosine', 'constant'] },
  { name: 'latentSlotOffset', type: 'bool' },
  { name: 'quizLoss', type: 'bool' },
  { name: 'curriculumFrom', type: 'int', min: 0, max: MAX_DIFFICULTY - 1 },
  { name: 'evalEvery', type: 'int', min: 0, max: 100000 },
  { name: 'evalSize', type: 'int', min: 1, max: 4096 },
  { name: 'topology', type: 'topology' },
  { name: 'split', type: 'enum', options: SPLITS },
  { name: 'example', type: 'int', min: 0, max: 100000 },
  // 'avg' or a layer/head index; one the model lacks is put back to 'avg' by the latent view, which says so
  { name: 'layer', type: 'pick', min: 0, max: 1023 },
  { name: 'head', type: 'pick', min: 0, max: 1023 },
  { name: 'smoothing', type: 'number', min: 0, max: 0.999 },
  { name: 'compareMethods', type: 'list', options: METHODS },
  { name: 'compareSeeds', type: 'ints', min: 0, max: 2 ** 31 - 1 },
  { name: 'fitY', type: 'bool' },
  { name: 'rendering', type: 'enum', options: RENDERING_CHOICES },
];

/** The default topology of a task: one agent per role, wired as the task's flow. */
export function defaultTopology(task: TaskName, difficulty = 1): Topology {
  return presetForTask(makeTask(task, difficulty));
}

/**
 * The page's first-visit setup (issue 9, item 7): a setting where DiffMAS visibly learns. Measured
 * with these values on the earlier toy base, before the splits were keyed by sender content
 * (bench/results/old-instrument/toy-lookup-d1-first-visit.json, lavapipe): the
 * training loss falls from 5.6 at step 1 to 0.59 at step 50 and 0.011 at step 100 and held-out accuracy is 1.00 after
 * 800 (0.9 s a step on 2 CPU cores; a laptop GPU takes 100 steps in seconds). evalEvery is small so
 * the accuracy curve has several points while it rises.
 */
export const FIRST_VISIT = Object.freeze({
  task: 'lookup' as TaskName,
  difficulty: 1,
  method: 'diffmas' as MethodName,
  model: 'builtin:toy',
  rank: 8,
  alpha: 16,
  lr: 0.003,
  steps: 800,
  batch: 32,
  evalEvery: 20,
  evalSize: 64,
});

/**
 * What the page offers, in one click, on a software WebGPU adapter (SwiftShader, llvmpipe, lavapipe):
 * the tiny base model and fewer steps, so a run ends in minutes on a CPU. These are the experiment's
 * tiny preset (200 steps at batch 32; on the earlier tiny base and instrument DiffMAS read 0.51 +- 0.20
 * held-out on lookup d1 over 3 seeds where latentmas read 0.05: bench/results/old-instrument), with a
 * held-out point every 25 steps.
 */
export const SOFTWARE_PRESET = Object.freeze({
  model: 'builtin:tiny',
  steps: 200,
  batch: 32,
  evalEvery: 25,
  evalSize: 64,
} satisfies Partial<AppState>);

/** Whether an adapter is a CPU implementation of WebGPU (its info says so, or its name is one of the known ones). */
export function isSoftwareAdapter(r: { isFallbackAdapter?: boolean; vendor?: string; architecture?: string; device?: string; description?: string }): boolean {
  if (r.isFallbackAdapter) return true;
  return /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render/i.test([r.vendor, r.architecture, r.device, r.description].filter(Boolean).join(' '));
}

export const DEFAULT_STATE: Readonly<AppState> = Object.freeze({
  task: FIRST_VISIT.task,
  difficulty: FIRST_VISIT.difficulty,
  method: FIRST_VISIT.method,
  model: FIRST_VISIT.model,
  rank: FIRST_VISIT.rank,
  alpha: FIRST_VISIT.alpha,
  targets: [...ATTENTION_PROJS],
  lr: FIRST_VISIT.lr,
  steps: FIRST_VISIT.steps,
  batch: FIRST_VISIT.batch,
  seed: 1,
  latentMap: 'ridge',
  positions: 'stream',
  // the experiment presets' budget: every message of lookup d1-4, relay and arith fits (bench/EXPERIMENT.md)
  textBudget: 16,
  textTemperature: 1,
  lrSchedule: 'cosine',
  latentSlotOffset: false,
  quizLoss: false,
  curriculumFrom: 0,
  evalEvery: FIRST_VISIT.evalEvery,
  evalSize: FIRST_VISIT.evalSize,
  topology: defaultTopology(FIRST_VISIT.task, FIRST_VISIT.difficulty),
  rendering: 'auto',
  split: 'heldout',
  example: 0,
  layer: 'avg',
  head: 'avg',
  smoothing: 0.6,
  fitY: false,
  compareMethods: ['single', 'text', 'latentmas', 'diffmas'],
  compareSeeds: [1, 2, 3],
} satisfies AppState);

function encodeValue(s: string): string {
  return encodeURIComponent(s).replace(/%3B/g, ';').replace(/%3A/g, ':').replace(/%2C/g, ',');
}

/** The text of a property in the hash. The topology form is already URL-safe (names are URI-encoded
 * inside it), so it goes in as is: a link keeps its exact text when the page writes it back. */
function hashText(p: Prop, v: unknown): string {
  const text = writeValue(p, v);
  return p.type === 'topology' ? text : encodeValue(text);
}

function unhashText(p: Prop, text: string): string {
  return p.type === 'topology' ? text : decodeURIComponent(text);
}

function writeValue(p: Prop, v: unknown): string {
  switch (p.type) {
    case 'topology':
      return serializeTopology(v as Topology);
    case 'list':
    case 'ints':
      return (v as unknown[]).join(',');
    case 'bool':
      return v ? '1' : '0';
    default:
      return String(v);
  }
}

/** Parses one property; throws a sentence when the text is not a valid value. */
function readValue(p: Prop, text: string): unknown {
  const range = (n: number) => {
    if (p.min !== undefined && n < p.min) throw new Error(`${n} is below ${p.min}`);
    if (p.max !== undefined && n > p.max) throw new Error(`${n} is above ${p.max}`);
    return n;
  };
  switch (p.type) {
    case 'int': {
      if (!/^-?\d+$/.test(text)) throw new Error(`"${text}" is not a whole number`);
      return range(Number(text));
    }
    case 'number': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`"${text}" is not a number`);
      return range(n);
    }
    case 'enum':
      if (!p.options!.includes(text)) throw new Error(`"${text}" is not one of ${p.options!.join(', ')}`);
      return text;
    case 'string':
      if (text.length > 200) throw new Error('the value is too long');
      return text;
    case 'list': {
      const items = text === '' ? [] : text.split(',');
      for (const it of items) if (!p.options!.includes(it)) throw new Error(`"${it}" is not one of ${p.options!.join(', ')}`);
      return [...new Set(items)];
    }
    case 'ints': {
      const items = text === '' ? [] : text.split(',');
      return [...new Set(items.map((it) => {
        if (!/^\d+$/.test(it)) throw new Error(`"${it}" is not a whole number`);
        return range(Number(it));
      }))];
    }
    case 'bool':
      if (text !== '0' && text !== '1') throw new Error(`"${text}" is not 0 or 1`);
      return text === '1';
    case 'pick':
      if (text === 'avg') return text;
      if (!/^\d+$/.test(text)) throw new Error(`"${text}" is neither avg (the mean) nor a whole number`);
      return String(range(Number(text)));
    case 'topology':
      // Kept even when invalid: the editor shows what is wrong and the run refuses it.
      return parseTopology(text, { validate: false });
  }
}

/** The URL hash (without '#') of a state: every property, in table order. */
export function serializeState(s: AppState): string {
  return PROPS.map((p) => `${p.name}=${hashText(p, s[p.name])}`).join('&');
}

/** A value of a link the page could not use, and what it uses instead (shown in a notice; the URL is rewritten to it). */
export interface LinkCorrection {
  field: string;
  /** The text the link gave. */
  given: string;
  /** The value the page uses now, as the link writes it. */
  used: string;
  /** Why the given value was not usable. */
  reason: string;
}

/** One line of the notice: "steps=-5: -5 is below 1; 800 is used (the default)". */
export function correctionText(c: LinkCorrection, usedIs = 'the default'): string {
  const given = c.given.length > 40 ? `${c.given.slice(0, 40)}…` : c.given;
  return `${c.field}=${given}: ${c.reason}; ${c.used === '' ? 'nothing' : c.used} is used${usedIs ? ` (${usedIs})` : ''}.`;
}

export interface ParsedState {
  state: AppState;
  /** One sentence per value of the link that could not be used (correctionText of each correction). */
  problems: string[];
  corrections: LinkCorrection[];
}

/**
 * Reads a URL hash ('#a=1&b=2' or 'a=1&b=2'); what is absent keeps its default. A bad value keeps
 * `fallback`'s value (the default on a first load; the page's current value for a link edited in the
 * open tab, so one bad field changes nothing else) and is reported as a correction.
 */
export function parseState(hash: string, fallback: Readonly<AppState> = DEFAULT_STATE): ParsedState {
  const state = structuredClone(DEFAULT_STATE) as AppState;
  const corrections: LinkCorrection[] = [];
  const text = hash.replace(/^#/, '');
  const given = new Map<string, string>();
  for (const pair of text ? text.split('&') : []) {
    const eq = pair.indexOf('=');
    if (eq > 0) given.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const bad = new Set<string>();
  for (const p of PROPS) {
    const raw = given.get(p.name);
    if (raw === undefined) continue;
    let v = raw;
    try {
      try {
        v = unhashText(p, raw);
      } catch {
        throw new Error('it is badly escaped');
      }
      (state as unknown as Record<string, unknown>)[p.name] = readValue(p, v);
    } catch (e) {
      bad.add(p.name);
      (state as unknown as Record<string, unknown>)[p.name] = structuredClone(fallback[p.name]);
      corrections.push({ field: p.name, given: v, used: writeValue(p, fallback[p.name]), reason: (e as Error).message });
    }
  }
  // A task given without a topology gets that task's own default topology (a bad task keeps the topology it falls back to).
  if (given.has('task') && !given.has('topology')) {
    state.topology = bad.has('task') ? structuredClone(fallback.topology) : defaultTopology(state.task, state.difficulty);
  }
  const usedIs = fallback === DEFAULT_STATE ? 'the default' : 'as before';
  return { state, corrections, problems: corrections.map((c) => correctionText(c, usedIs)) };
}

/** Whether the quiz loss applies to a state's task and method (src/mas/quiz.ts). */
export function quizApplies(s: Pick<AppState, 'task' | 'method'>): boolean {
  return QUIZ_TASKS.includes(s.task) && QUIZ_METHODS.includes(s.method);
}

/** Whether a curriculum applies: a trained method above difficulty 1 (src/mas/curriculum.ts); its start must be below the difficulty. */
export function curriculumApplies(s: Pick<AppState, 'difficulty' | 'method' | 'curriculumFrom'>): boolean {
  return isTrainedMethod(s.method) && s.curriculumFrom < s.difficulty;
}

/** Whether learned latent slot offsets apply: a method that trains the senders through latent steps (src/mas/slot-offset.ts). */
export function slotOffsetApplies(s: Pick<AppState, 'method'>): boolean {
  return s.method === 'diffmas' || s.method === 'diffmas-full';
}

/** The RunConfig a state describes. */
export function runConfigOf(s: AppState): RunConfig {
  return {
    task: s.task,
    difficulty: s.difficulty,
    topology: structuredClone(s.topology),
    method: s.method,
    modelId: s.model,
    lora: { r: s.rank, alpha: s.alpha, targets: [...s.targets] },
    lr: s.lr,
    steps: s.steps,
    batch: s.batch,
    seed: s.seed,
    latentMap: s.latentMap,
    positions: s.positions,
    textBudget: s.textBudget,
    ...(s.method === 'text-trained' ? { textTemperature: s.textTemperature } : {}),
    ...(s.lrSchedule === 'constant' && isTrainedMethod(s.method) ? { lrSchedule: 'constant' as const } : {}),
    ...(s.latentSlotOffset && slotOffsetApplies(s) ? { latentSlotOffset: true } : {}),
    // like the temperature, each only where it applies (the page disables it elsewhere)
    ...(s.quizLoss && quizApplies(s) ? { quizLoss: true } : {}),
    ...(s.curriculumFrom > 0 && curriculumApplies(s) ? { curriculumFrom: s.curriculumFrom } : {}),
    evalEvery: s.evalEvery,
    evalSize: s.evalSize,
    ...(s.rendering !== 'auto' ? { rendering: s.rendering } : {}),
  };
}

/** The page state a saved run configuration describes (used to load an adapter's setup). */
export function stateOfRunConfig(base: AppState, c: RunConfig): AppState {
  return {
    ...base,
    task: c.task,
    difficulty: c.difficulty,
    topology: structuredClone(c.topology),
    method: c.method,
    model: c.modelId,
    rank: c.lora.r,
    alpha: c.lora.alpha,
    targets: [...c.lora.targets],
    lr: c.lr,
    steps: c.steps,
    batch: c.batch,
    seed: c.seed,
    latentMap: c.latentMap,
    positions: c.positions ?? 'stream',
    textBudget: c.textBudget,
    textTemperature: c.textTemperature ?? 1,
    lrSchedule: c.lrSchedule ?? 'cosine',
    latentSlotOffset: c.latentSlotOffset ?? false,
    quizLoss: c.quizLoss ?? false,
    curriculumFrom: c.curriculumFrom ?? 0,
    evalEvery: c.evalEvery,
    evalSize: c.evalSize,
    rendering: c.rendering ?? 'auto',
  };
}

/** Properties that decide a run's numbers: changing one makes the current run stale. */
export const RUN_PROPS: readonly (keyof AppState)[] = [
  'task', 'difficulty', 'method', 'model', 'rank', 'alpha', 'targets', 'lr', 'steps', 'batch', 'seed', 'latentMap',
  'positions', 'textBudget', 'textTemperature', 'lrSchedule', 'latentSlotOffset', 'quizLoss', 'curriculumFrom', 'evalEvery', 'evalSize', 'topology', 'rendering',
];
