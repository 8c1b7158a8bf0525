"""The capacity of a latent channel, apart from its sender (issue 22 item 2): for each evaluation episode,
free vectors shaped like the final agent's received K/V (its P received positions, every layer, K and V)
are optimised with Adam on the receiver's teacher-forced answer loss, the receiver (base and its
adapter) frozen. If free vectors reach about 1.0 where the trained sender reaches less, the positions can
carry the answer and the shortfall is the sender's (its training), not the channel's width.

A message is one tensor kv [B, L, 2, Hkv, P, hd] (episode, layer, K or V, head, position, head dim): the
received prefix agents.Team.forward builds, keys with the RoPE rotation they were made with. Each
episode's vectors reach only its own loss, so a batch of episodes is optimised at once; Adam's update
is per element, so one episode's vectors move as they would alone. The final agent's prompt sits where
the rollout puts it (Team.forward's start), and answers are decoded and scored as evaluate.py does.
"""
from __future__ import annotations

import torch

from .agents import Team, loss_sum
from .evaluate import Evaluator
from .tasks import valid_answer

INITS = ("zeros", "real")
SCOPES = ("episode", "table")


def message_shape(team: Team, B: int, P: int) -> tuple[int, ...]:
    return (B, team.L, 2, team.Hkv, P, team.hd)


def check_message(team: Team, kv: torch.Tensor, B: int, P: int) -> None:
    """A clear refusal of a message that is not [B, L, 2, Hkv, P, hd] for this team and batch."""
    want = message_shape(team, B, P)
    if not isinstance(kv, torch.Tensor):
        raise ValueError(f"capacity: a message must be a tensor of shape {list(want)}, got {type(kv).__name__}")
    if tuple(kv.shape) != want:
        names = "[episodes, layers, K/V, kv heads, received positions, head dim]"
        raise ValueError(f"capacity: message of shape {list(kv.shape)}, the receiver reads {list(want)} {names}")
    if not torch.is_floating_point(kv):
        raise ValueError(f"capacity: message dtype {kv.dtype} is not floating point")


def received_positions(team: Team, lengths: list[int]) -> int:
    """The positions the final agent reads (Team.forward's prefix): each predecessor's latent steps, and
    its prompt too where the trace is 'full'; lengths[a]: agent a's prompt length."""
    t = team
    return sum((lengths[p] if t.trace == "full" else 0) + t.plan[p].latent_steps for p in t.plan[-1].preds)


def to_prefix(kv: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(kv[:, l, 0], kv[:, l, 1]) for l in range(kv.shape[1])]


def real_message(team: Team, inputs: list[torch.Tensor]):
    """The senders' message to the final agent (kv, detached) and the final agent's first position."""
    if team.method["channel"] != "latent":
        raise ValueError(f"capacity: method {team.method['name']} has no latent channel")
    with torch.no_grad():
        _, prefix, start, _ = team.forward(inputs)
    if not prefix:
        raise ValueError("capacity: the final agent receives no positions")
    return torch.stack([torch.stack([k, v], dim=1) for k, v in prefix], dim=1).detach(), start


def final_logits(team: Team, kv: torch.Tensor, start: int, ids: torch.Tensor, grad: bool) -> torch.Tensor:
    """The final agent's pass (its adapter, frozen) over the message kv."""
    team.activate(team.plan[-1].adapter_key)
    with torch.set_grad_enabled(grad):
        h, _ = team._pass(to_prefix(kv), start, ids=ids.to(team.device))
        return team.lm_head(h)


def optimise(team: Team, kv0: torch.Tensor, start: int, ids: torch.Tensor, targets: torch.Tensor, steps: int, lr: float, positions: int,
             share: torch.Tensor | None = None):
    """Adam on the summed answer loss of the batch from kv0 (`positions` received positions); row b of the
    batch reads message share[b] (None: its own, row b). Returns the messages and the mean loss per target
    token before each step and after the last (steps + 1 values)."""
    if steps < 0 or not lr > 0:
        raise ValueError(f"capacity: steps must be >= 0 and lr > 0 (got {steps}, {lr})")
    if share is not None and (share.shape != (ids.shape[0],) or int(share.min()) < 0 or int(share.max()) >= kv0.shape[0]):
        raise ValueError(f"capacity: share must give each of the {ids.shape[0]} rows one of the {kv0.shape[0]} messages")
    check_message(team, kv0, ids.shape[0] if share is None else kv0.shape[0], positions)
    kv = kv0.detach().clone().to(team.device, team.dtype).requires_grad_(True)
    rows = (lambda x: x) if share is None else (lambda x: x[share])
    opt = torch.optim.Adam([kv], lr=lr)
    count = max(1, int((targets >= 0).sum()))
    losses = []
    for _ in range(steps):
        loss = loss_sum(final_logits(team, rows(kv), start, ids, grad=True), targets)
        losses.append(float(loss.detach()) / count)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(float(loss_sum(final_logits(team, rows(kv), start, ids, grad=False), targets)) / count)
    return kv.detach(), losses


def lookup_queries(eps: list[dict], tk, rendering: str) -> tuple[list[dict], list[int], list[bool]]:
    """Scope 'table': every episode of a lookup split once per key of its table, in table order (the
    senders' prompts unchanged, the receiver asking that key, the answer its value). Returns the
    episodes, the episode each came from, and whether it is the episode's own query."""
    out, owner, own = [], [], []
    for i, ep in enumerate(eps):
        parts = ep.get("parts", [])
        if rendering != "char" or len(parts) != 2 or not parts[0].startswith("tbl:") or not parts[1].startswith("ask:"):
            raise ValueError("capacity: scope 'table' needs lookup episodes in the char rendering (parts tbl:..., ask:...)")
        table, asked = parts[0][4:], parts[1][4:]
        prompt = ep["agents"][-1]["prompt"]
        if len(table) % 2 or len(asked) != 1 or not prompt.endswith(parts[1]):
            raise ValueError(f"capacity: episode {i}: table {table!r} / query {asked!r} is not one-character keys and values")
        for j in range(0, len(table), 2):
            key, value = table[j], table[j + 1]
            p = prompt[: len(prompt) - 1] + key
            final = {**ep["agents"][-1], "prompt": p, "ids": tk.encode(p)}
            out.append({**ep, "answer": value, "targetIds": tk.encode(value) + ep["targetIds"][-1:], "agents": [*ep["agents"][:-1], final]})
            owner.append(i)
            own.append(key == asked)
        if sum(own[-len(table) // 2:]) != 1:
            raise ValueError(f"capacity: episode {i}: query {asked!r} is not once in its table {table!r}")
    return out, owner, own


class Capacity:
    """Free messages per episode of one split against the team's frozen receiver. Scope 'episode': one
    message per episode, scored on its query (the message may hold just that answer). Scope 'table'
    (lookup): one message per episode scored on every query of its table, as a sender's must be, which
    does not see the query."""

    def __init__(self, team: Team, tokenizer, batch: int | None = None):
        if team.method["channel"] != "latent":
            raise ValueError(f"capacity: method {team.method['name']} has no latent channel")
        self.team = team
        self.tk = tokenizer
        self.ev = Evaluator(team, tokenizer, batch=batch)
        self.batch = self.ev.B

    def batches(self, split: str, episodes: int | None = None, scope: str = "episode"):
        """(rows, real, inputs, targets, answer start, the real message, final start) per evaluation batch
        (evaluate.py's batches: grouped by prompt lengths), over the first `episodes` of the split; scope
        'table': rows index self.queries, `batch` tables (all their queries) per batch."""
        ev = self.ev
        if scope not in SCOPES:
            raise ValueError(f"capacity: scope {scope!r} is not one of {', '.join(SCOPES)}")
        if split not in ev.bundle.episodes:
            raise ValueError(f"the bundle has no {split} episodes (has: {', '.join(ev.bundle.episodes)})")
        eps = ev.bundle.episodes[split]
        n = len(eps) if episodes is None else min(episodes, len(eps))
        if n <= 0:
            raise ValueError(f"capacity: no episodes to optimise (--episodes {episodes})")
        self.episodes = eps[:n]
        self.owner, self.own = list(range(n)), [True] * n
        ev.B = self.batch
        if scope == "table":
            ev._eps, self.owner, self.own = lookup_queries(self.episodes, self.tk, ev.rendering)
            q = {len(e["parts"][0][4:]) // 2 for e in self.episodes}
            if len(q) != 1:
                raise ValueError(f"capacity: scope 'table' needs one table size per split, got {sorted(q)}")
            ev.B = self.batch * q.pop()  # a batch holds every query of its tables (they share prompt lengths)
        else:
            ev._eps = self.episodes
        rows_n = len(ev._eps)
        inst = ev._instances(rows_n, "none")
        prompts = [[ev._eps[inst[i][a]]["agents"][a]["ids"] for a in range(len(self.team.plan))] for i in range(rows_n)]
        for rows, real, inputs, targets, astart, _ in ev._batches(inst, prompts):
            kv, fstart = real_message(self.team, inputs)
            check_message(self.team, kv, len(rows), received_positions(self.team, [x.shape[1] for x in inputs]))
            yield rows, real, inputs, targets, astart, kv, fstart

    def score(self, kv, share, fstart, rows, real, inputs, targets, astart, answers) -> tuple[float, int]:
        """evaluate.py's scoring of a batch over the messages kv (row b reads kv[share[b]]): greedy answers
        into `answers`, loss sum and count."""
        kv = kv.detach()[share]
        t = self.team
        logits = final_logits(t, kv, fstart, inputs[-1], grad=False)
        return self.ev._answer(logits, targets, inputs[-1].clone(), astart, rows, real,
                               lambda x: final_logits(t, kv, fstart, x, grad=False), answers)

    def run(self, split: str, init: str, steps: int, lr: float, noise_std: float = 0.01, seed: int = 1,
            episodes: int | None = None, scope: str = "episode", positions: int | None = None, log=None) -> dict:
        """Every batch's free messages from `init` ('zeros': zeros plus N(0, noise_std^2) noise; 'real': the
        senders' own message), `steps` Adam steps each; accuracy, validity and loss at step 0 and at the end.
        positions: only the first that many received positions (a narrower channel; the receiver's own
        positions stay where the rollout puts them); None: all of them."""
        if init not in INITS:
            raise ValueError(f"capacity: init {init!r} is not one of {', '.join(INITS)}")
        if positions is not None and positions < 1:
            raise ValueError(f"capacity: positions must be >= 1 (got {positions})")
        gen = torch.Generator().manual_seed(seed)
        before, after = {}, {}
        sums = {"before": [0.0, 0], "after": [0.0, 0]}
        norms = {"before": torch.zeros(2, dtype=torch.float64), "after": torch.zeros(2, dtype=torch.float64)}
        curve = None
        for bi, (rows, real, inputs, targets, astart, kv_real, fstart) in enumerate(self.batches(split, episodes, scope)):
            owners = list(dict.fromkeys(self.owner[r] for r in rows))  # this batch's episodes, in order
            share = torch.tensor([owners.index(self.owner[r]) for r in rows])
            first = torch.tensor([[self.owner[r] for r in rows].index(o) for o in owners])
            if positions is not None:
                if positions > kv_real.shape[4]:
                    raise ValueError(f"capacity: positions {positions} exceeds the {kv_real.shape[4]} the receiver reads")
                kv_real = kv_real[:, :, :, :, :positions]
            if init == "real":
                kv0 = kv_real[first]  # the senders' prompts are the episode's in every query of its table
            else:
                kv0 = (torch.randn(kv_real[first].shape, generator=gen, dtype=torch.float64) * noise_std).to(kv_real.dtype)
            ls, c = self.score(kv0, share, fstart, rows, real, inputs, targets, astart, before)
            sums["before"] = [sums["before"][0] + ls, sums["before"][1] + c]
            kv, losses = optimise(self.team, kv0, fstart, inputs[-1], targets, steps, lr, kv_real.shape[4], share)
            ls, c = self.score(kv, share, fstart, rows, real, inputs, targets, astart, after)
            sums["after"] = [sums["after"][0] + ls, sums["after"][1] + c]
            for k, x in (("before", kv0), ("after", kv)):  # the L2 norm of each position's K and V row (all heads), summed over episodes
                norms[k] += x.double().transpose(3, 4).flatten(4).norm(dim=-1).mean(dim=(1, 3)).sum(0).cpu()
            w = int((targets >= 0).sum())
            curve = [x * w for x in losses] if curve is None else [a + x * w for a, x in zip(curve, losses)]
            if log:
                log(f"  {init}: batch {bi + 1} ({len(owners)} episodes, {real} queries) loss {losses[0]:.4f} -> {losses[-1]:.4f}")
        q_eps = self.ev._eps
        task = self.ev.task
        aset = task.answer_set(split)
        n = len(self.episodes)

        def table(ans, s):
            right = [ans[i] == ep["answer"] for i, ep in enumerate(q_eps)]
            out = {"accuracy": sum(right) / len(q_eps),
                   "validity": sum(valid_answer(task.name, aset, ans[i]) for i in range(len(q_eps))) / len(q_eps),
                   "loss": s[0] / s[1] if s[1] else float("nan")}
            if scope == "table":
                out["ownQueryAccuracy"] = sum(r for r, o in zip(right, self.own) if o) / n
                every = [True] * n
                for r, o in zip(right, self.owner):
                    every[o] = every[o] and r
                out["tablesAllRight"] = sum(every) / n
            out["predictions"] = [ans[i] for i in range(len(q_eps))]
            return out

        total = sums["before"][1]
        return {"split": split, "scope": scope, "init": init, "positions": positions, "steps": steps, "lr": lr, "noiseStd": noise_std if init == "zeros" else None,
                "episodes": n, "queries": len(q_eps), "step0": table(before, sums["before"]), "final": table(after, sums["after"]),
                "rowNorm": {k: {"k": float(v[0]) / n, "v": float(v[1]) / n} for k, v in (("step0", norms["before"]), ("final", norms["after"]))},
                "lossCurve": [x / total for x in curve] if curve else []}
