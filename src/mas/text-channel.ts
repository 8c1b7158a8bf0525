// The method text-trained in a run: prompts with message slots, the tokens a sender may write, the
// training batches, the cached text rollouts (text-rollout.ts) and the evaluation. run.ts calls into
// this; the GPU rollout and its gradient are text-rollout.ts.
//
// A receiver's prompt is the untrained text method's with each message exactly T tokens long:
//   ids = enc(<bos> + open) [T slots] enc(close + open) [T slots] ... enc(close + the rest of its prompt)
// (char rendering: "<bos>msg:" T tokens "\n" "ask:k"; the senders' tokens go into the slots on the GPU;
// chat: the template's head, its text up to the user's content, takes <bos>'s place, messageLead).
// Each piece is encoded apart, so with a BPE the message never merges with the text around it. A
// sender's prompt is the text sender's ("...msg:"), and it writes T tokens greedily, never a newline
// or a special token (masked out), so every message has the same length and every shape is fixed.
// Evaluation decodes greedily, as training's forward does (no Gumbel noise, text-rollout.ts).
// Controls: shuffle pairs each receiver with another episode's senders (run.ts instances); zero
// empties every received message as for text ("msg:\n"): the final agent reads no message, with its
// trained adapter.
import type { Gpu, Tensor } from '../gpu/runtime';
import type { LlamaGpu, LoraGpu } from '../model/model';
import type { Episode, Task } from '../tasks/tasks';
import type { TaskRendering } from '../tasks/render';
import type { ChatTaskRendering } from '../tasks/chat-render';
import { BOS } from '../tokenizers/markers';
import { stopsText } from '../tokenizers';
import type { TextTokenizer } from '../tokenizers/types';
import { chunks, finalBatch, groupBy, IGNORE, promptText, SignatureBatcher, signatureOf, type PlanAgent } from './data';
import type { MethodSpec } from './methods';
import { Rollout } from './rollout';
import { TextRollout } from './text-rollout';

/** Default temperature of the straight-through softmax (RunConfig.textTemperature). */
export const DEFAULT_TEXT_TEMPERATURE = 1;

/** u32 [V]: 1 for each token a trained sender may write (in the tokenizer, not special, no newline). */
export function textAllowed(tk: TextTokenizer, V: number): Uint32Array {
  const a = new Uint32Array(V);
  for (let v = 0; v < Math.min(V, tk.vocabSize); v++) a[v] = stopsText(tk, v) ? 0 : 1;
  if (!a.some((x) => x)) throw new Error('text-trained: the tokenizer has no token a message may hold (every one is special or a newline)');
  return a;
}

/**
 * The text every prompt of the rendering starts with, where a receiver's messages go: <bos> (char, word),
 * or the chat template's text up to the user turn's content (chat-render.ts `head`).
 */
export function messageLead(r: TaskRendering): string {
  return r.name === 'chat' ? (r as ChatTaskRendering).head : BOS;
}

/** An agent's prompt ids with T pad slots per received message, and where each slot starts (the same for every episode). */
export function textTrainedPrompt(tk: TextTokenizer, r: TaskRendering, ep: Episode, pa: PlanAgent, spec: MethodSpec, T: number): { ids: number[]; slots: number[] } {
  const full = promptText(r, ep, pa, spec, []);
  if (!pa.preds.length) return { ids: tk.encode(full), slots: [] };
  const lead = messageLead(r);
  if (!full.startsWith(lead)) throw new Error(`text-trained (${r.name} rendering): a prompt must start with ${JSON.stringify(lead)}, got ${JSON.stringify(full.slice(0, 20))}`);
  const rest = full.slice(lead.length);
  const ids = tk.encode(lead + r.message.open);
  const slots: number[] = [];
  pa.preds.forEach((_, i) => {
    slots.push(ids.length);
    for (let j = 0; j < T; j++) ids.push(tk.padId);
    ids.push(...tk.encode(r.message.close + (i < pa.preds.length - 1 ? r.message.open : rest)));
  });
  return { ids, slots };
}

/** Per agent the positions of its received messages: they precede every episode-dependent token. */
export function textSlots(tk: TextTokenizer, r: TaskRendering, plan: PlanAgent[], T: number): number[][] {
  const head = tk.encode(messageLead(r) + r.message.open).length;
  const between = tk.encode(r.message.close + r.message.open).length;
  return plan.map((pa) => pa.preds.map((_, i) => head + i * (T + between)));
}

/** Per agent prompt ids of an instance (the episode each agent reads), message slots holding pad. */
export function encodeTextTrained(tk: TextTokenizer, r: TaskRendering, plan: PlanAgent[], spec: MethodSpec, eps: readonly Episode[], T: number): number[][] {
  return plan.map((pa, i) => textTrainedPrompt(tk, r, eps[i], pa, spec, T).ids);
}

/** The training batches of a text-trained run: as trainingBatcher (run-data.ts), over these prompts. */
export function textTrainedBatcher(task: Task, tk: TextTokenizer, r: TaskRendering, plan: PlanAgent[], spec: MethodSpec, config: { seed: number; batch: number; textBudget: number }): SignatureBatcher {
  return new SignatureBatcher(task, config.batch, config.seed, (ep) => encodeTextTrained(tk, r, plan, spec, plan.map(() => ep), config.textBudget));
}

/** Where a decoded row sits (NonFiniteLogitsError), as run.ts's decode takes it. */
export type Decode = (
  ro: { final: { prompt: Rollout['final']['prompt'] } }, ids: Uint32Array, start: number, maxTokens: number, real: number, where: (b: number, k: number, pos: number) => string,
) => Promise<number[][]>;

/**
 * The final agent alone on token prompts (nothing received: the untrained text method's final pass in
 * run.ts, and text-trained's zero control), batched B at a time by prompt length: its loss over the
 * answer tokens (lossSum over count targets) and its greedy answers by row. make(n, B): the one-agent
 * rollout of n positions; answerIds(row): the answer's tokens; extract: an answer from decoded tokens.
 */
export async function answerAlone(
  gpu: Gpu, finals: number[][], answerIds: (row: number) => number[], B: number, maxAnswer: number, padId: number,
  make: (n: number, B: number) => Rollout, decode: Decode, where: (row: number, k: number, pos: number) => string, extract: (tokens: number[]) => string,
): Promise<{ answers: string[]; lossSum: number; count: number }> {
  const answers = new Array<string>(finals.length);
  let lossSum = 0;
  let count = 0;
  for (const g of groupBy(finals, (p) => String(p.length))) {
    const len = Number(g.key);
    for (const ch of chunks(g.idx, B)) {
      const ro = make(len + maxAnswer, B);
      const { host, targets } = finalBatch(ch.rows, ch.real, (row) => finals[row], answerIds, maxAnswer, padId);
      ro.setIds(0, host);
      ro.setTargets(targets);
      ro.recordForward();
      const loss = (await gpu.read(ro.final.prompt.loss))[0];
      const c = targets.filter((t) => t !== IGNORE).length;
      lossSum += loss * c;
      count += c;
      const gen = await decode(ro, host, len - 1, maxAnswer + 1, ch.real, (b, k, pos) => where(ch.rows[b], k, pos));
      gen.forEach((tokens, b) => (answers[ch.rows[b]] = extract(tokens)));
    }
  }
  return { answers, lossSum, count };
}

export interface TextTrainedEval {
  answers: string[];
  lossSum: number;
  count: number;
  /** Message tokens per episode (T per sender; 0 under zero). */
  messageTokens: number;
  /** Per agent, per instance: its message as text ('' for the final agent). */
  messages: string[][];
  /** Per agent, per instance: its input as text, received messages in place. */
  prompts: string[][];
}

/** The text-trained channel of one run: its rollouts (made once per shape, at most `max` kept) and its evaluation. */
export class TextChannel {
  private readonly rollouts = new Map<string, TextRollout | Rollout>();
  private readonly allowed: Tensor;
  /** Per agent: the positions of its received messages (the same for every episode). */
  readonly slots: number[][];

  constructor(
    readonly gpu: Gpu,
    readonly model: LlamaGpu,
    readonly tk: TextTokenizer,
    readonly r: TaskRendering,
    readonly task: Task,
    readonly plan: PlanAgent[],
    readonly spec: MethodSpec,
    readonly T: number,
    readonly tau: number,
    readonly loras: readonly (LoraGpu | null)[],
    readonly backward: readonly boolean[],
    readonly max: number,
  ) {
    if (!(tau > 0 && Number.isFinite(tau))) throw new Error(`text-trained: the temperature must be a positive number, got ${tau}`);
    this.allowed = gpu.tensor([model.dims.V], 'text-trained allowed tokens', textAllowed(tk, model.dims.V), 'u32');
    this.slots = textSlots(tk, r, plan, T);
  }

  private cached<R extends TextRollout | Rollout>(key: string, make: () => R): R {
    let ro = this.rollouts.get(key);
    if (ro) this.rollouts.delete(key);
    else ro = make();
    this.rollouts.set(key, ro);
    while (this.rollouts.size > this.max) {
      const [oldKey, old] = this.rollouts.entries().next().value as [string, TextRollout | Rollout];
      this.rollouts.delete(oldKey);
      old.destroy();
    }
    return ro as R;
  }

  /** The rollout of a prompt-length signature (lengths per agent, the final one without its answer region). */
  rollout(lengths: number[], B: number, backward: boolean, maxAnswer: number): TextRollout {
    return this.cached(`text|${B}|${lengths.join(',')}|${backward ? 'b' : 'f'}`, () => new TextRollout(this.model, {
      B, T: this.T, tau: this.tau, allowed: this.allowed, label: `text-trained B${B} ${lengths.join(',')}`,
      agents: this.plan.map((pa, i) => ({
        id: pa.agent.id, preds: pa.preds, n: lengths[i] + (pa.final ? maxAnswer : 0), slots: this.slots[i],
        lora: this.loras[i], backward: backward && this.backward[i],
      })),
    }));
  }

  /** The final agent alone with its adapter (the zero control: it reads empty messages). */
  private alone(n: number, B: number): Rollout {
    const fi = this.plan.length - 1;
    return this.cached(`alone|${B}|${n}`, () => new Rollout(this.model, {
      B, agents: [{ id: this.plan[fi].agent.id, preds: [], n, m: 0, lora: this.loras[fi], backward: false }], trace: 'none', map: null, label: `text-trained zero B${B} n${n}`,
    }));
  }

  get count(): number {
    return this.rollouts.size;
  }

  live(): TextRollout[] {
    return [...this.rollouts.values()].filter((r): r is TextRollout => r instanceof TextRollout);
  }

  /** Answers, loss and messages of instances (the episode each agent reads), in batches of B. */
  async evaluate(
    inst: Episode[][], zero: boolean, B: number, backward: boolean, maxAnswer: number, answerIds: (ep: Episode) => number[], decode: Decode,
    where: (row: number, k: number, pos: number) => string,
  ): Promise<TextTrainedEval> {
    const { tk, plan } = this;
    const fi = plan.length - 1;
    const n = inst.length;
    const answers = new Array<string>(n);
    const messages: string[][] = plan.map(() => new Array<string>(n).fill(''));
    const promptsText: string[][] = plan.map(() => new Array<string>(n).fill(''));
    let lossSum = 0;
    let count = 0;
    const gpu = this.gpu;
    const finalPass = async (ro: TextRollout | Rollout, host: Uint32Array, targets: number[], rows: number[], real: number, start: number) => {
      const loss = (await gpu.read(ro.final.prompt.loss))[0];
      const c = targets.filter((t) => t !== IGNORE).length;
      lossSum += loss * c;
      count += c;
      const gen = await decode(ro, host, start, maxAnswer + 1, real, (b, k, pos) => where(rows[b], k, pos));
      gen.forEach((g, b) => (answers[rows[b]] = this.r.extractAnswer(tk.decode(g))));
    };
    if (zero) {
      const finals = inst.map((eps) => tk.encode(promptText(this.r, eps[fi], plan[fi], this.spec, plan[fi].preds.map(() => ''))));
      finals.forEach((p, i) => (promptsText[fi][i] = tk.decode(p)));
      const alone = await answerAlone(gpu, finals, (row) => answerIds(inst[row][fi]), B, maxAnswer, tk.padId, (len, b) => this.alone(len, b), decode, where, (g) => this.r.extractAnswer(tk.decode(g)));
      return { ...alone, messageTokens: 0, messages, prompts: promptsText };
    }
    const prompts = inst.map((eps) => encodeTextTrained(tk, this.r, plan, this.spec, eps, this.T));
    for (const g of groupBy(prompts, (p) => signatureOf(p))) {
      const lengths = g.key.split(',').map(Number);
      for (const ch of chunks(g.idx, B)) {
        const ro = this.rollout(lengths, B, backward, maxAnswer);
        for (let a = 0; a < fi; a++) ro.setIds(a, ch.rows.flatMap((row) => prompts[row][a]));
        const { host, targets, start } = finalBatch(ch.rows, ch.real, (row) => prompts[row][fi], (row) => answerIds(inst[row][fi]), maxAnswer, tk.padId);
        ro.setIds(fi, host);
        ro.setTargets(targets);
        ro.recordForward();
        const msgs = await ro.readMessages();
        // every agent's input with its received tokens in place (the final agent's in `host`, which decoding rewrites)
        plan.forEach((pa, a) => {
          const S = ro.agents[a].spec.n;
          for (let b = 0; b < ch.real; b++) {
            const row = ch.rows[b];
            const own = pa.final ? host.subarray(b * S, (b + 1) * S) : Uint32Array.from(prompts[row][a]);
            pa.preds.forEach((p, i) => own.set(msgs[p][b], this.slots[a][i]));
            promptsText[a][row] = tk.decode(own.subarray(0, prompts[row][a].length));
            if (!pa.final) messages[a][row] = tk.decode(msgs[a][b]);
          }
        });
        // rows past `real` repeat the last real row: their tokens go in too, so the batch stays one shape
        for (let b = ch.real; b < B; b++) plan[fi].preds.forEach((p, i) => host.set(msgs[p][b], b * ro.final.spec.n + this.slots[fi][i]));
        await finalPass(ro, host, targets, ch.rows, ch.real, start);
      }
    }
    const senders = plan.length - 1;
    return { answers, lossSum, count, messageTokens: senders * this.T, messages, prompts: promptsText };
  }

  destroy(): void {
    for (const ro of this.rollouts.values()) ro.destroy();
    this.rollouts.clear();
    this.gpu.destroy(this.allowed);
  }
}
