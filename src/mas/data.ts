// Who takes part in a method, what each agent reads (its prompt), and batches of episodes whose
// prompts have the same lengths (so every pass has one fixed shape: no padding inside a prompt).
//
// Prompts (tasks.ts formats):
// (char rendering; the word rendering of src/tasks/render.ts has the same structure)
//   single             final agent  formatPrompt(ep, role, {final})                 "<bos>ask:k"
//   skyline            one agent    formatSkyline(ep)                               "<bos>tbl:a3k7\nask:k"
//   text               sender       formatPrompt(ep, role, {send, messages})        "<bos>tbl:a3k7\nmsg:" then it decodes
//                      final        formatPrompt(ep, role, {final, messages})       "<bos>msg:a3k7\nask:k"
//   latent (LatentMAS, DiffMAS)
//                      sender       formatPrompt(ep, role, {send})                  "<bos>tbl:a3k7\nmsg:" then m latent steps
//                      final        formatPrompt(ep, role, {final})                 "<bos>ask:k" over the traces
// (the final agent's answer follows its prompt directly: "7<eos>")
// A latent sender's prompt is the text sender's: its latent steps start exactly where its text
// message would, so the training-free channel replays a soft version of what it would have said.
// The final agent's pass holds prompt + answer region (task.maxAnswerLength tokens): teacher forcing
// for the loss, greedy decoding for accuracy (causal attention: padding after the prompt changes
// nothing before it).
import { Rng, deriveSeed } from '../tasks/rng';
import type { Episode, Task } from '../tasks/tasks';
import type { TaskRendering } from '../tasks/render';
import type { TextTokenizer } from '../tokenizers/types';
import type { MethodSpec } from './methods';
import { participants } from './methods';
import { predecessors, type Agent, type Topology } from './topology';

export const IGNORE = 0xffffffff;

export interface PlanAgent {
  agent: Agent;
  /** Indices of its predecessors in the plan (predecessors() order); empty without a channel. */
  preds: number[];
  final: boolean;
  /** Latent steps it runs (latent channel only; 0 for the final agent). */
  m: number;
}

/** The agents of a method in topological order, the final one last. */
export function makePlan(t: Topology, spec: MethodSpec): PlanAgent[] {
  const agents = participants(t, spec);
  const index = new Map(agents.map((a, i) => [a.id, i]));
  return agents.map((a) => {
    const final = a.id === t.final;
    return {
      agent: a,
      preds: spec.channel === 'none' ? [] : predecessors(t, a.id).map((id) => index.get(id)!),
      final,
      m: spec.channel === 'latent' && !final ? a.latentSteps : 0,
    };
  });
}

/** An agent's prompt text in a rendering (src/tasks/render.ts). messages: text received (text channel), in predecessor order. */
export function promptText(r: TaskRendering, ep: Episode, pa: PlanAgent, spec: MethodSpec, messages?: readonly string[]): string {
  if (spec.skyline) return r.skyline(ep);
  const part = pa.agent.role;
  if (pa.final) return r.prompt(ep, part, { final: true, messages: messages ?? [] });
  return r.prompt(ep, part, { send: true, messages: messages ?? [] });
}

/** The final agent's answer ids: the rendering's target as it continues the final prompt in the model's tokenizer. */
export function answerIds(tk: TextTokenizer, r: TaskRendering, task: Task, ep: Episode): number[] {
  return tk.encodeContinuation(r.prompt(ep, task.finalRole, { final: true }), r.target(ep));
}

/**
 * Prompt + answer region of the final agent: inputs and targets of exactly S = promptLen + maxAnswer
 * tokens (the pass's shape). An answer shorter than maxAnswer (arith: "8" beside "-12") leaves the
 * rest of the region as `pad` inputs with IGNORE targets; causal attention keeps them from changing
 * anything at or before the answer, and greedy decoding overwrites them as it goes.
 */
export function finalSequence(
  prompt: number[], answerIds: number[], maxAnswer: number, withAnswer: boolean, pad: number,
): { ids: number[]; targets: number[]; start: number } {
  const S = prompt.length + maxAnswer;
  if (answerIds.length > maxAnswer + 1) throw new Error(`answer of ${answerIds.length - 1} tokens exceeds the task's ${maxAnswer}`);
  const ids = prompt.slice();
  const targets = new Array<number>(S).fill(IGNORE);
  // answerIds = answer tokens then <eos>: position promptLen-1+k predicts answerIds[k]
  for (let k = 0; k < answerIds.length; k++) {
    if (withAnswer) targets[prompt.length - 1 + k] = answerIds[k];
    if (k < answerIds.length - 1) ids.push(answerIds[k]);
  }
  while (ids.length < S) ids.push(pad);
  return { ids, targets, start: prompt.length - 1 };
}

/**
 * The final agent's ids and targets of a batch: row b is finalSequence of rows[b]'s prompt and answer,
 * its answer scored only for b < real (the rows past `real` only fill the batch). start: where decoding
 * starts (the rows of a batch share one prompt length).
 */
export function finalBatch(
  rows: readonly number[], real: number, prompt: (row: number) => number[], answerIds: (row: number) => number[], maxAnswer: number, pad: number,
): { host: Uint32Array; targets: number[]; start: number } {
  const ids: number[] = [];
  const targets: number[] = [];
  let start = 0;
  rows.forEach((row, b) => {
    const s = finalSequence(prompt(row), answerIds(row), maxAnswer, b < real, pad);
    ids.push(...s.ids);
    targets.push(...s.targets);
    start = s.start;
  });
  return { host: Uint32Array.from(ids), targets, start };
}

/** Per agent token ids of an instance (episode per agent) under a latent or no channel. */
export function encodeInstance(
  tokenizer: TextTokenizer, r: TaskRendering, plan: PlanAgent[], spec: MethodSpec, eps: readonly Episode[],
): number[][] {
  return plan.map((pa, i) => tokenizer.encode(promptText(r, eps[i], pa, spec)));
}

export function signatureOf(prompts: number[][]): string {
  return prompts.map((p) => p.length).join(',');
}

/**
 * Training batches of B episodes that share one prompt-length signature: episodes are drawn from
 * the seeded stream into one pool per signature, and the first pool to reach B is emitted (FIFO).
 * Every drawn episode is used eventually; with tasks of fixed lengths (lookup, relay) this is
 * plain sequential sampling.
 */
export class SignatureBatcher {
  private readonly rng: Rng;
  private readonly pools = new Map<string, { eps: Episode[]; prompts: number[][][] }>();

  constructor(
    readonly task: Task,
    readonly B: number,
    seed: number,
    readonly encode: (ep: Episode) => number[][],
  ) {
    this.rng = new Rng(deriveSeed(seed, 'train-batches', task.name, task.difficulty));
  }

  next(): { eps: Episode[]; prompts: number[][][]; signature: string } {
    for (let draws = 0; draws < 1_000_000; draws++) {
      const ep = this.task.sample(this.rng, 'train');
      const prompts = this.encode(ep);
      const sig = signatureOf(prompts);
      let pool = this.pools.get(sig);
      if (!pool) this.pools.set(sig, (pool = { eps: [], prompts: [] }));
      pool.eps.push(ep);
      pool.prompts.push(prompts);
      if (pool.eps.length === this.B) {
        this.pools.delete(sig);
        return { ...pool, signature: sig };
      }
    }
    throw new Error('training batches: no prompt-length signature filled a batch');
  }
}

/** A permutation of 0..n-1 without fixed points (n >= 2): the shuffle control's pairing. */
export function derangement(n: number, rng: Rng): number[] {
  if (n < 2) throw new Error('the shuffle control needs at least 2 episodes');
  const p = rng.shuffled(Array.from({ length: n }, (_, i) => i));
  for (let i = 0; i < n; i++) {
    if (p[i] === i) {
      const j = (i + 1) % n;
      [p[i], p[j]] = [p[j], p[i]];
    }
  }
  return p;
}

/** Groups item indices by a key, keeping first-seen order of keys and item order inside a group. */
export function groupBy<T>(items: readonly T[], key: (t: T, i: number) => string): { key: string; idx: number[] }[] {
  const m = new Map<string, number[]>();
  items.forEach((t, i) => {
    const k = key(t, i);
    let g = m.get(k);
    if (!g) m.set(k, (g = []));
    g.push(i);
  });
  return [...m].map(([k, idx]) => ({ key: k, idx }));
}

/** Splits indices into chunks of exactly B, the last padded by repeating its last index; `real` counts the true rows. */
export function chunks(idx: readonly number[], B: number): { rows: number[]; real: number }[] {
  const out: { rows: number[]; real: number }[] = [];
  for (let s = 0; s < idx.length; s += B) {
    const rows = idx.slice(s, s + B);
    const real = rows.length;
    while (rows.length < B) rows.push(rows[rows.length - 1]);
    out.push({ rows, real });
  }
  return out;
}
