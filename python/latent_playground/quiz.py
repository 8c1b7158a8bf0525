"""The quiz loss (RunConfig.quizLoss; src/mas/quiz.ts): each training episode's senders run once and the
final agent answers every question of the episode's table (lookup: every key, in the table's order),
every row reading the same received K/V (Team.forward's fanout: the prefix repeated per question, so
autograd sums the questions' gradients into the one trace); the loss is the mean answer cross-entropy
over every answer token of every question. The episodes are the run's own batch rows (nothing else is
drawn); evaluation is unchanged.

Rows: episode b's question q at row b*Q + q; each row its prompt, its answer, <eos>, then padding to the
longest question prompt of the batch plus the answer region (quiz.ts: causal attention keeps the padding
from changing anything at or before the answer).
"""
from __future__ import annotations

import json
from dataclasses import replace

import torch

from .tasks import PART_END, Episode, PlanAgent, Task, _lookup_key, _rendering_of, final_sequence, prompt_text

QUIZ_TASKS = ("lookup",)
QUIZ_METHODS = ("diffmas", "diffmas-full", "diffmas-detached")


def quiz_problem(c: dict, spec: dict) -> str | None:
    """quiz.ts quizProblem: why a run cannot take the quiz loss (None: it can, or it does not ask for it)."""
    q = c.get("quizLoss")
    if q is None or q is False:
        return None
    if q is not True:
        return f"run config: quizLoss must be true or false, got {json.dumps(q)}"
    if c.get("task") not in QUIZ_TASKS:
        return (f"run config: quizLoss asks the receiver every key of the sender's table, which only task {', '.join(QUIZ_TASKS)} has "
                f"(the final part of {c.get('task')} is not a key into a table): use task lookup, or turn quizLoss off")
    if spec["name"] not in QUIZ_METHODS:
        why = "sends no latent message" if spec["channel"] != "latent" else "trains nothing" if spec["train"] == "none" else "trains a fuser, not the agents\u2019 adapters"
        return f"run config: quizLoss trains the agents on every question of one latent message, but method {spec['name']} {why}: use {', '.join(QUIZ_METHODS)}, or turn quizLoss off"
    return None


def queries(task: Task, ep: Episode) -> list[tuple[str, str, str]]:
    """tasks.ts Task.queries for lookup: (content, answer, key) of every key of the table, in its order."""
    if task.name not in QUIZ_TASKS:
        raise ValueError(f"quiz loss: task {task.name} has no table to quiz")
    table = ep.contents[0]
    return [(table[i], table[i + 1], _lookup_key(table, table[i])) for i in range(0, len(table), 2)]


def query_episode(task: Task, ep: Episode, q: tuple[str, str, str]) -> Episode:
    """quiz.ts queryEpisode: the episode asking question q (its final part, key and answer replaced)."""
    content, answer, key = q
    f = task.final_role
    contents = list(ep.contents)
    contents[f] = content
    parts = list(ep.parts)
    parts[f] = task.spec.cues[f] + content
    full = "".join(p + PART_END if i < len(parts) - 1 else p for i, p in enumerate(parts))
    return replace(ep, key=key, contents=contents, parts=parts, answer=answer, full_context=full)


def episode_of_row(task: Task, row: dict) -> Episode:
    """A bundle batch row's episode (key, parts, answer): its contents are the parts without their cues."""
    cues = task.spec.cues
    contents = [p[len(c):] for p, c in zip(row["parts"], cues)]
    return Episode(task.name, task.difficulty, "train", row["key"], "", list(row["parts"]), contents, row["answer"], "", [])


def quiz_rows(task: Task, tk, r, final: PlanAgent, skyline: bool, eps: list[Episode], max_answer: int):
    """quiz.ts quizRows: (Q, ids [B*Q, S] and targets [B*Q, S] with -100 where no loss, the question episodes);
    r: a rendering or its name."""
    from .render import answer_ids

    r = _rendering_of(r)  # a rendering's name (char, word) or the rendering itself
    rows = []
    Q = None
    for ep in eps:
        qs = queries(task, ep)
        if Q is not None and len(qs) != Q:
            raise ValueError(f"quiz loss: episode {ep.key} has {len(qs)} questions, the batch's first {Q}")
        Q = len(qs)
        for q in qs:
            qe = query_episode(task, ep, q)
            rows.append((qe, tk.encode(prompt_text(qe, final, skyline, r))))
    n = max(len(p) for _, p in rows)
    ids, targets = [], []
    for qe, p in rows:
        i, t = final_sequence(p, answer_ids(tk, r, task, qe), max_answer + n - len(p), True, tk.pad_id)
        ids.append(i)
        targets.append([-100 if x is None else x for x in t])
    return Q, torch.tensor(ids), torch.tensor(targets), [qe for qe, _ in rows]


class QuizBatches:
    """The quiz rows of the run's training batches (bundle batch rows -> quiz_rows), one batch at a time."""

    def __init__(self, task: Task, tk, r, plan: list[PlanAgent], skyline: bool, max_answer: int):
        self.task, self.tk, self.r, self.final, self.skyline, self.max_answer = task, tk, r, plan[-1], skyline, max_answer
        self._at: tuple[int, tuple] | None = None

    def of(self, batch: dict):
        """(Q, ids, targets) of every row of the batch (cached for its micro-batches)."""
        if self._at is None or self._at[0] != batch["batch"]:
            eps = [episode_of_row(self.task, row) for row in batch["rows"]]
            Q, ids, targets, _ = quiz_rows(self.task, self.tk, self.r, self.final, self.skyline, eps, self.max_answer)
            self._at = (batch["batch"], (Q, ids, targets))
        return self._at[1]

    def count(self, batch: dict) -> int:
        """Answer targets of the whole batch's questions: the loss's normaliser."""
        return int((self.of(batch)[2] != -100).sum())

    def inputs(self, batch: dict, rows: list[int], inputs: list[torch.Tensor]):
        """The micro-batch's inputs with the final agent's replaced by its episodes' questions; (inputs, targets, Q)."""
        Q, ids, targets = self.of(batch)
        sel = torch.tensor([r * Q + q for r in rows for q in range(Q)])
        return inputs[:-1] + [ids[sel]], targets[sel], Q
