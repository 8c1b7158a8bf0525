"""Evaluation as the tab does it (src/mas/run.ts evaluate): a split's evaluation episodes from the
bundle, in batches of config.batch grouped by prompt lengths, the final agent's answer decoded greedily
(at most maxAnswerTokens + 1 tokens, stopping at a special token or a line end) and compared with the
episode's answer; accuracy, validity (the task's answer format), entropy of the answers (nats),
teacher-forced loss and message size; the controls of the channel on a split."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch

from .agents import Team, loss_sum
from .quantize import quantize_rows
from .controls import GaussianRows, Moments, key_frequencies, latent_permutation, permute_blocks, rotate_heads, rotations, shuffle_permutation
from .numfmt import to_fixed
from .rng import _STEP, M32, Rng, derive_seed
from .render import rendering_of_bundle
from .tasks import extract_answer, make_task, valid_answer, wrap_message, cut_message, final_sequence


def controls_for(channel: str) -> list[str]:
    return ["shuffle", "zero", "noise", "rotate", "permute"] if channel == "latent" else ["shuffle", "zero"] if channel == "text" else []


def entropy(values: list[str]) -> float:
    c = Counter(values)
    n = len(values)
    h = -sum((k / n) * math.log(k / n) for k in c.values())
    return 0.0 if h == 0 else h


def _group(keys: list[str]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return list(groups.values())


def _chunks(idx: list[int], B: int):
    for s in range(0, len(idx), B):
        rows = idx[s:s + B]
        real = len(rows)
        rows = rows + [rows[-1]] * (B - real)
        yield rows, real


class Evaluator:
    """shard (rank, processes): data-parallel evaluation. The batches are the same on every process;
    process r runs those whose number is r modulo processes, and the answers, loss sums and message
    sizes are gathered and added in batch order, so any number of processes gives one process's table.
    The noise control's measurement pass (the moments of the received rows over the whole split) runs
    on every process, and a process skips the Gaussian draws of the batches it does not run (the
    stream is mulberry32: a skip is one addition), so each batch gets the noise one process gives it."""

    def __init__(self, team: Team, tokenizer, batch: int | None = None, shard: tuple[int, int] = (0, 1)):
        self.rank, self.world = shard
        self.team = team
        self.bundle = team.bundle
        self.tk = tokenizer
        self.cfg = self.bundle.config
        self.B = batch or self.cfg["batch"]
        self.max_answer = self.bundle.json["maxAnswerTokens"]
        self.rendering = self.bundle.rendering  # its name (char, word, chat)
        self.render = rendering_of_bundle(self.bundle)  # chat: made from the base's template
        self.task = make_task(self.cfg["task"], self.cfg["difficulty"])
        self.pad = self.bundle.json["tokens"]["pad"]

    # ---------------------------------------------------------------- decoding

    def _decode(self, logits, ids: torch.Tensor, start: int, max_tokens: int, real: int, rerun) -> list[list[int]]:
        """run.ts decode: greedy from the teacher-forced logits, rerunning the pass where a prediction differs."""
        S = ids.shape[1]
        out: list[list[int]] = [[] for _ in range(real)]
        done = [False] * real
        for _ in range(max_tokens + 1):
            again = False
            lg = logits.float()
            for b in range(real):
                while not done[b]:
                    pos = start + len(out[b])
                    row = lg[b, pos]
                    if not torch.isfinite(row).all():
                        raise FloatingPointError(f"non-finite logits in row {b} at position {pos}")
                    pred = int(torch.argmax(row))
                    out[b].append(pred)
                    if self.tk.stops(pred) or len(out[b]) >= max_tokens:
                        done[b] = True
                        break
                    if int(ids[b, pos + 1]) == pred:
                        continue
                    ids[b, pos + 1] = pred
                    again = True
                    break
            if not again:
                break
            logits = rerun(ids)
        assert S == ids.shape[1]
        return out

    # ---------------------------------------------------------------- latent and no channel

    def _edit(self, control: str, split: str, inst, prompts):
        t = self.team
        seed = self.cfg["seed"]
        if control not in ("zero", "noise", "rotate"):
            raise ValueError(f"no prefix edit for control {control!r}")
        if control == "zero":
            return lambda agent, layer, kind, x: torch.zeros_like(x)
        if control == "rotate":
            cache: dict = {}

            def rot(agent, layer, kind, x):
                key = (agent, layer)
                if key not in cache:
                    cache[key] = rotations(seed, agent, layer, t.Hkv, t.hd)
                rows = x.detach().cpu().double().numpy()
                return torch.from_numpy(rotate_heads(rows, t.hd, cache[key]))
            return rot
        # noise: the moments of the uncontrolled received rows over the split (real rows only)
        moments: dict = {}
        for rows, real, inputs, _, _, _ in self._batches(inst, prompts):
            def measure(agent, layer, kind, x, real=real):
                m = moments.setdefault((agent, layer, kind), Moments(t.W))
                m.add(x[:real].detach().cpu().double().numpy().reshape(-1, t.W))
                return None
            t.forward(inputs, edit=measure)
        samplers = {k: GaussianRows(m) for k, m in moments.items()}
        rng = Rng(derive_seed(seed, "noise-control", split))
        self._noise_rng = rng

        def noise(agent, layer, kind, x):
            B, P, W = x.shape
            return torch.from_numpy(samplers[(agent, layer, kind)].draw(B * P, rng).reshape(B, P, W))
        return noise

    def _permute_edit(self, lengths: list[int]):
        """The permute control over one batch (controls.py permute_blocks): lengths[a] is agent a's prompt length."""
        t = self.team
        cfg = t.decoder.config
        rp = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        theta = getattr(cfg, "rope_theta", None) or rp["rope_theta"]
        inv = key_frequencies(theta, t.hd, rp if rp.get("rope_type") == "llama3" else None)
        seed = self.cfg["seed"]

        def blocks(agent):
            out, off = [], 0
            for p in t.plan[agent].preds:
                m = t.plan[p].latent_steps
                first = off + (lengths[p] if t.trace == "full" else 0)
                if m > 0:
                    out.append((first, latent_permutation(m, Rng(derive_seed(seed, "permute-control", agent, p)))))
                off += (lengths[p] if t.trace == "full" else 0) + m
            return out

        def permute(agent, layer, kind, x):
            rows = x.detach().cpu().double().numpy()
            return torch.from_numpy(permute_blocks(rows, t.hd, blocks(agent), inv if kind == "k" else None))
        return permute

    def _final_batch(self, finals: list[list[int]], rows: list[int], real: int) -> tuple[list[list[int]], torch.Tensor]:
        """The final agent's ids [B, S] (its prompt, then its answer teacher-forced; rows from `real` on
        are padding) and targets (-100 where nothing is scored) of a batch; finals[r]: row r's prompt."""
        ids, targets = [], []
        for b, r in enumerate(rows):
            s_ids, s_t = final_sequence(finals[r], self._eps[r]["targetIds"], self.max_answer, b < real, self.pad)
            ids.append(s_ids)
            targets.append([-100 if x is None else x for x in s_t])
        return ids, torch.tensor(targets)

    def _answer(self, logits, targets, ids: torch.Tensor, start: int, rows: list[int], real: int, rerun, answers: list[str]) -> tuple[float, int]:
        """A batch's final pass scored: its loss sum and target count; rows < real decoded greedily into answers."""
        lsum, count = float(loss_sum(logits, targets)), int((targets >= 0).sum())
        gen = self._decode(logits, ids, start, self.max_answer + 1, real, rerun)
        for b in range(real):
            answers[rows[b]] = self._extract(self.tk.decode(gen[b]))
        return lsum, count

    def _batches(self, inst, prompts):
        fi = len(self.team.plan) - 1
        finals = [p[fi] for p in prompts]
        for g in _group([",".join(str(len(p)) for p in ps) for ps in prompts]):
            for rows, real in _chunks(g, self.B):
                inputs = [torch.tensor([prompts[r][a] for r in rows]) for a in range(fi)]
                # the final agent always reads its own episode (inst[r][fi] == r)
                ids, targets = self._final_batch(finals, rows, real)
                inputs.append(torch.tensor(ids))
                yield rows, real, inputs, targets, len(prompts[rows[0]][fi]) - 1, ids

    def _rollout_method(self, split: str, control: str, bits: int | None = None):
        t = self.team
        eps = self._eps
        n = len(eps)
        inst = self._instances(n, control)
        prompts = [[eps[inst[i][a]]["agents"][a]["ids"] for a in range(len(t.plan))] for i in range(n)]
        edit = self._edit(control, split, inst, prompts) if control in ("zero", "noise", "rotate") else None
        answers: list[str] = [""] * n
        parts = []
        for bi, (rows, real, inputs, targets, start, _) in enumerate(self._batches(inst, prompts)):
            if not self._mine(bi):
                if control == "noise":
                    self._skip_noise([x.shape[1] for x in inputs], inputs[0].shape[0])
                continue
            e = self._permute_edit([x.shape[1] for x in inputs]) if control == "permute" else edit
            if bits is not None:
                e = lambda agent, layer, kind, x: torch.from_numpy(quantize_rows(x.detach().cpu().double().numpy(), t.hd, bits))
            logits, prefix, fstart, received = t.forward(inputs, edit=e)
            ls, c = self._answer(logits, targets, inputs[-1].clone(), start, rows, real, lambda x: t.final_pass(prefix, fstart, x), answers)
            parts.append((bi, rows[:real], [answers[r] for r in rows[:real]], ls, c, received * real))
        lsum, count, positions = 0.0, 0, 0
        for _, rows, got, ls, c, pos in self._gather(parts):
            for r, x in zip(rows, got):
                answers[r] = x
            lsum += ls
            count += c
            positions += pos
        return answers, lsum, count, positions / n, {}

    # ---------------------------------------------------------------- data parallel

    def _mine(self, i: int) -> bool:
        return i % self.world == self.rank

    def _gather(self, parts: list[tuple]) -> list[tuple]:
        """Every process's (batch number, ...) parts, in batch order."""
        if self.world > 1:
            every: list = [None] * self.world
            torch.distributed.all_gather_object(every, parts)
            parts = [p for got in every for p in got]
        return sorted(parts, key=lambda p: p[0])

    def _skip_noise(self, lengths: list[int], B: int) -> None:
        """Advances the noise stream past one batch's draws (B x P x W normals per receiving agent, layer
        and K/V; P: the received positions, as forward() builds the prefix), two uint32 per normal."""
        t = self.team
        draws = 0
        for a in t.plan:
            if a.preds:
                P = sum((lengths[p] if t.trace == "full" else 0) + (t.plan[p].latent_steps if t.trace else 0) for p in a.preds)
                draws += t.L * 2 * B * P * t.W
        self._noise_rng.s = (self._noise_rng.s + 2 * draws * _STEP) & M32

    def _instances(self, n: int, control: str):
        perm = shuffle_permutation(self.cfg["seed"], n) if control == "shuffle" else None
        return [[i if (a.final or perm is None) else perm[i] for a in self.team.plan] for i in range(n)]

    # ---------------------------------------------------------------- text channel

    def _extract(self, decoded: str) -> str:
        """The answer in a decoded continuation: the chat rendering's rule (chat_render.py), else tasks.py's."""
        return self.render.extract_answer(decoded) if self.rendering == "chat" else extract_answer(decoded, self.rendering)

    def _with_messages(self, prompt: str, messages: list[str]) -> str:
        # chat: the word rendering's message lines, right after the template's head (inside the user turn,
        # where chat-render.ts's prompt puts them: the head is the same for every content)
        lines = "".join(wrap_message(m, "word" if self.rendering == "chat" else self.rendering) for m in messages)
        lead = self.render.head if self.rendering == "chat" else "<bos>"
        if self.rendering == "chat" and not prompt.startswith(lead):
            raise ValueError(f"chat rendering: a prompt must start with the template's head {lead!r}, got {prompt[:40]!r}")
        return prompt[:len(lead)] + lines + prompt[len(lead):] if prompt.startswith(lead) else lines + prompt

    def _decode_texts(self, prompts: list[list[int]], budget: int) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in prompts]
        parts, bi = [], -1
        for g in _group([str(len(p)) for p in prompts]):
            ln = len(prompts[g[0]])
            S = ln + budget - 1
            for rows, real in _chunks(g, self.B):
                bi += 1
                if not self._mine(bi):
                    continue
                ids = torch.full((self.B, S), self.pad, dtype=torch.long)
                for b, r in enumerate(rows):
                    ids[b, :ln] = torch.tensor(prompts[r])
                logits = self.team.solo_pass(ids)
                gen = self._decode(logits, ids, ln - 1, budget, real, self.team.solo_pass)
                parts.append((bi, rows[:real], gen[:real]))
        for _, rows, gen in self._gather(parts):
            for r, g in zip(rows, gen):
                out[r] = g
        return out

    def _text_method(self, split: str, control: str):
        t = self.team
        eps = self._eps
        n = len(eps)
        inst = self._instances(n, control)
        plan = t.plan
        messages = [[""] * n for _ in plan]
        msg_tokens = 0

        def received(a, i):
            return ["" if control == "zero" else messages[p][i] for p in plan[a].preds]

        for a in range(len(plan) - 1):
            texts = [self._with_messages(eps[inst[i][a]]["agents"][a]["prompt"], received(a, i)) for i in range(n)]
            gen = self._decode_texts([self.tk.encode(x) for x in texts], self.cfg["textBudget"])
            for i in range(n):
                messages[a][i] = cut_message(self.tk.decode(gen[i]))
                msg_tokens += len(self.tk.encode(messages[a][i]))
        fi = len(plan) - 1
        finals = [self.tk.encode(self._with_messages(eps[i]["agents"][fi]["prompt"], received(fi, i))) for i in range(n)]
        answers = [""] * n
        parts, bi = [], -1
        for g in _group([str(len(p)) for p in finals]):
            ln = len(finals[g[0]])
            for rows, real in _chunks(g, self.B):
                bi += 1
                if not self._mine(bi):
                    continue
                ids, targets = self._final_batch(finals, rows, real)
                ids = torch.tensor(ids)
                ls, c = self._answer(t.solo_pass(ids), targets, ids, ln - 1, rows, real, t.solo_pass, answers)
                parts.append((bi, rows[:real], [answers[r] for r in rows[:real]], ls, c))
        lsum, count = self._merge(parts, answers)
        return answers, lsum, count, msg_tokens / n, {"messages": messages}

    def _merge(self, parts: list[tuple], answers: list[str]) -> tuple[float, int]:
        """Gathers (batch number, rows, their answers, loss sum, target count) parts into answers; the loss sum and count in batch order."""
        lsum, count = 0.0, 0
        for _, rows, got, ls, c in self._gather(parts):
            for r, x in zip(rows, got):
                answers[r] = x
            lsum += ls
            count += c
        return lsum, count

    # ---------------------------------------------------------------- the table

    def evaluate(self, split: str, control: str = "none", bits: int | None = None) -> dict:
        """bits: every received K/V quantised to that many bits per float (quantize.py; latent channel, no control)."""
        if bits is not None and (control != "none" or self.team.method["channel"] != "latent"):
            raise ValueError(f"quantised K/V apply to the latent channel without a control (method {self.team.method['name']}, control {control})")
        if split not in self.bundle.episodes:
            raise ValueError(f"the bundle has no {split} episodes (has: {', '.join(self.bundle.episodes)})")
        channel = self.team.method["channel"]
        if control != "none" and control not in controls_for(channel):
            raise ValueError(f"method {self.team.method['name']}: the {control} control does not apply to the {channel} channel")
        self._eps = self.bundle.episodes[split]
        n = len(self._eps)
        if self.team.method["name"] == "text-trained":
            from .text_channel import evaluate as text_trained

            answers, lsum, count, tokens, extra = text_trained(self, control)
            floats, positions = 0.0, tokens
        elif channel == "text":
            answers, lsum, count, tokens, extra = self._text_method(split, control)
            floats, positions = 0.0, tokens
        else:
            answers, lsum, count, positions, extra = self._rollout_method(split, control, bits)
            floats = positions * self.team.L * 2 * self.team.W
            tokens = 0.0
        aset = self.task.answer_set(split)
        correct = [a == ep["answer"] for a, ep in zip(answers, self._eps)]
        return {
            "method": self.team.method["name"], "split": split, **({"control": control} if control != "none" else {}),
            "accuracy": sum(correct) / n, "validity": sum(valid_answer(self.task.name, aset, a) for a in answers) / n,
            "entropy": entropy(answers), "episodes": n, "messageFloats": floats, "messageTokens": tokens, "messagePositions": positions,
            "loss": lsum / count if count else float("nan"), "predictions": answers, **extra,
        }


def wilson95(k: int, n: int):
    if n <= 0:
        return [float("nan"), float("nan")]
    z = 1.959963984540054
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [max(0.0, c - h), min(1.0, c + h)]


def format_table(rows: list[dict], controls: list[dict], chance: dict) -> str:
    """The tab's table (experiment.ts formatTable) and its controls (formatControls), one run."""
    head = ["method", "split", "accuracy (95% CI)", "valid", "entropy", "msg pos", "msg floats", "msg tok", "loss"]
    body = []
    for r in rows:
        lo, hi = wilson95(round(r["accuracy"] * r["episodes"]), r["episodes"])
        body.append([r["method"], r["split"], f"{to_fixed(r['accuracy'], 3)} [{to_fixed(lo, 3)}, {to_fixed(hi, 3)}]", to_fixed(r["validity"], 2),
                     to_fixed(r["entropy"], 2), to_fixed(r["messagePositions"], 1), to_fixed(r["messageFloats"], 0), to_fixed(r["messageTokens"], 1),
                     to_fixed(r["loss"], 4)])
    w = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.rjust(w[i]) if i >= 2 else c.ljust(w[i]) for i, c in enumerate(cells)) + " |"
    out = [line(head), "|" + "|".join("-" * (x + 1) + ":" if i >= 2 else "-" * (x + 2) for i, x in enumerate(w)) + "|", *map(line, body)]
    if controls:
        names = {"shuffle": "shuffled", "zero": "zeroed", "noise": "noise", "rotate": "rotated", "permute": "permuted"}
        held = next((r for r in rows if r["split"] == "heldout"), None)
        by = {c["control"]: c["accuracy"] for c in controls}
        cells = [to_fixed(by[c], 3) if c in by else "n/a" for c in names]
        out += ["", f"| method | heldout | {' | '.join(names.values())} | chance |", "|---|---:|" + "---:|" * len(names) + "---:|",
                f"| {rows[0]['method']} | {to_fixed(held['accuracy'], 3)} | {' | '.join(cells)} | {to_fixed(chance.get('heldout', float('nan')), 3)} |" if held else ""]
    return "\n".join(out)
