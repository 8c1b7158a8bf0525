// The quiz loss (RunConfig.quizLoss; issue 22 item 2): the pretraining corpus asks every question of
// a table (src/tasks/corpus.ts, Task.queries); a quiz-loss run asks them of one message. Each training
// episode's senders run once; the final agent runs once per question of the episode's table (the
// episode's own question among them), every row reading the same received K/V; the loss is the mean
// answer cross-entropy over every answer token of every question, so one message must serve them all.
//
// Rows: the final agent's batch holds B*Q rows, episode b's question q at row b*Q + q (Rollout
// fanout, rollout.ts). The episodes are the run's own training stream (nothing else is drawn): the
// questions come from each drawn table, so every one is of a train-partition table and the held-out
// split stays disjoint. Evaluation is unchanged (one question per episode).
//
// A question's prompt can be a token longer or shorter than another's (the word rendering's key words
// in a BPE vocabulary): every row is its own prompt, its answer, <eos>, then padding to the longest
// prompt of the batch plus the answer region. Causal attention keeps the padding after a row's answer
// from changing anything at or before it, and every row starts at the same RoPE position.
import { PART_END, type Episode, type Task, type TaskName, type TaskQuery } from '../tasks/tasks';
import type { TaskRendering } from '../tasks/render';
import type { TextTokenizer } from '../tokenizers/types';
import { answerIds, finalSequence, promptText, type PlanAgent } from './data';
import type { MethodSpec } from './methods';
import type { MethodName, RunConfig } from './run-types';

/** Tasks whose final part is a query into a sender's content with a fixed number of questions per content. */
export const QUIZ_TASKS: readonly TaskName[] = ['lookup'];
/** The methods that train the agents' adapters through a latent message (the DiffMAS variants). */
export const QUIZ_METHODS: readonly MethodName[] = ['diffmas', 'diffmas-full', 'diffmas-detached'];

/** Why a run cannot take the quiz loss (null: it can, or it does not ask for it). */
export function quizProblem(c: Pick<RunConfig, 'quizLoss' | 'task'>, spec: MethodSpec): string | null {
  if (c.quizLoss === undefined || c.quizLoss === false) return null;
  if (c.quizLoss !== true) return `run config: quizLoss must be true or false, got ${JSON.stringify(c.quizLoss)}`;
  if (!QUIZ_TASKS.includes(c.task)) {
    return `run config: quizLoss asks the receiver every key of the sender's table, which only task ${QUIZ_TASKS.join(', ')} has (the final part of ${c.task} is not a key into a table): use task lookup, or turn quizLoss off`;
  }
  if (!QUIZ_METHODS.includes(spec.name)) {
    const why = spec.channel !== 'latent' ? 'sends no latent message' : spec.train === 'none' ? 'trains nothing' : 'trains a fuser, not the agents\u2019 adapters';
    return `run config: quizLoss trains the agents on every question of one latent message, but method ${spec.name} ${why}: use ${QUIZ_METHODS.join(', ')}, or turn quizLoss off`;
  }
  return null;
}

/** The episode asking question q of ep's other parts (its final part, key and answer replaced). */
export function queryEpisode(task: Task, ep: Episode, q: TaskQuery): Episode {
  const f = task.finalRole;
  const contents = ep.contents.slice();
  contents[f] = q.content;
  const parts = ep.parts.slice();
  parts[f] = task.roles[f].cue + q.content;
  return { ...ep, key: q.key, contents, parts, answer: q.answer, fullContext: parts.map((p, i) => (i < parts.length - 1 ? p + PART_END : p)).join('') };
}

export interface QuizRows {
  /** Questions per episode (every episode of a batch has as many). */
  Q: number;
  /** Tokens of the longest question prompt (the final pass is n + maxAnswer tokens). */
  n: number;
  /** The final agent's ids and targets, [B*Q, n + maxAnswer] row-major (row b*Q + q). */
  ids: number[];
  targets: number[];
  /** The question episodes in row order. */
  episodes: Episode[];
}

/** The final agent's rows of a quiz batch: every question of every episode, in Task.queries order. */
export function quizRows(
  task: Task, tk: TextTokenizer, r: TaskRendering, final: PlanAgent, spec: MethodSpec, eps: readonly Episode[], maxAnswer: number,
): QuizRows {
  const rows: { ep: Episode; prompt: number[] }[] = [];
  let Q = -1;
  for (const ep of eps) {
    const qs = task.queries(ep);
    if (Q >= 0 && qs.length !== Q) throw new Error(`quiz loss: episode ${ep.key} has ${qs.length} questions, the batch's first ${Q}`);
    Q = qs.length;
    for (const q of qs) {
      const qe = queryEpisode(task, ep, q);
      rows.push({ ep: qe, prompt: tk.encode(promptText(r, qe, final, spec)) });
    }
  }
  const n = Math.max(...rows.map((x) => x.prompt.length));
  const ids: number[] = [];
  const targets: number[] = [];
  for (const { ep, prompt } of rows) {
    // a shorter prompt's answer region runs on to the common length (padding, no targets past <eos>)
    const s = finalSequence(prompt, answerIds(tk, r, task, ep), maxAnswer + n - prompt.length, true, tk.padId);
    ids.push(...s.ids);
    targets.push(...s.targets);
  }
  return { Q, n, ids, targets, episodes: rows.map((x) => x.ep) };
}
