"""The method text-trained (src/mas/text-channel.ts, src/mas/text-rollout.ts) in PyTorch autograd, the
independent check of the engine's hand-written straight-through backward.

Every message is exactly T = config.textBudget tokens. A sender writes them greedily after its prompt
(its own context from position 0): token 0 from the prompt pass's last hidden state, token j from a
one-token pass reading token j-1 at position n + j - 1 over its cache; newline and special tokens are
masked out. Straight-through: p = softmax(masked logits / tau) (tau = config.textTemperature, default 1)
and the token's input embedding is e = (onehot(argmax) + p - p.detach()) @ E, whose value is exactly
E[token] and whose gradient is that of p @ E. No Gumbel noise: training writes what evaluation reads.
A receiver's prompt holds each sender's T embeddings at its message slot:
  ids(<bos> + open) [T slots] ids(close + open) [T slots] ... ids(close + the rest of its prompt)
so slot i starts at len(ids(<bos> + open)) + i * (T + len(ids(close + open))) (docs/run-bundle.md).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .render import rendering_of_bundle

OPEN = {"char": "msg:", "word": "Message:"}
CLOSE = "\n"


def text_params(bundle) -> tuple[int, float]:
    cfg = bundle.config
    tau = float(cfg.get("textTemperature", 1.0))
    if not tau > 0:
        raise ValueError(f"textTemperature must be positive, got {tau}")
    return int(cfg["textBudget"]), tau


def allowed_tokens(tk, V: int) -> torch.Tensor:
    """[V] bool: the tokens a sender may write (in the tokenizer, not special, no line end)."""
    a = torch.zeros(V, dtype=torch.bool)
    for v in range(min(V, tk.vocab_size)):
        a[v] = not tk.stops(v)
    if not bool(a.any()):
        raise ValueError("text-trained: the tokenizer has no token a message may hold")
    return a


def slots(tk, rendering, n_preds: int, T: int) -> list[int]:
    """text-channel.ts textSlots: where each received message starts (rendering: a name, or a rendering)."""
    lead, open_ = message_lead(rendering)
    head = len(tk.encode(lead + open_))
    between = len(tk.encode(CLOSE + open_))
    return [head + i * (T + between) for i in range(n_preds)]


def message_lead(rendering) -> tuple[str, str]:
    """text-channel.ts messageLead: the text every prompt starts with, where the messages go (<bos>; the
    chat template's head for the chat rendering), and the message opener. rendering: a name (char, word)
    or a rendering of render.py (the chat one is made from a base folder)."""
    if isinstance(rendering, str):
        return "<bos>", OPEN[rendering]
    return (rendering.head if rendering.name == "chat" else "<bos>"), rendering.open


def prompt_ids(tk, rendering, prompt: str, n_preds: int, T: int, pad: int) -> list[int]:
    """An agent's ids from its prompt text without messages (the bundle's), pad in the message slots."""
    if n_preds == 0:
        return tk.encode(prompt)
    lead, open_ = message_lead(rendering)
    if not prompt.startswith(lead):
        raise ValueError(f"text-trained: a prompt must start with {lead!r}, got {prompt[:20]!r}")
    rest = prompt[len(lead):]
    ids = tk.encode(lead + open_)
    for i in range(n_preds):
        ids += [pad] * T
        ids += tk.encode(CLOSE + (open_ if i < n_preds - 1 else rest))
    return ids


class TextChannel:
    """A Team's text-trained channel: its settings and the forward of one batch."""

    def __init__(self, team, tk):
        self.team = team
        self.T, self.tau = text_params(team.bundle)
        # chat: the rendering made from the base's template (its head leads the messages)
        self.rendering = rendering_of_bundle(team.bundle)
        lm = team.peft.base_model.model if team.peft is not None else team.model
        self.E = lm.get_input_embeddings().weight
        self.allowed = allowed_tokens(tk, self.E.shape[0]).to(team.device)
        self.slots = [slots(tk, self.rendering, len(a.preds), self.T) for a in team.plan]

    def forward(self, inputs: list[torch.Tensor], grad: bool = False):
        """Every agent of one batch in plan order (inputs[a]: [B, n_a] ids, pad in the slots; the final
        agent's with its answer region). Returns the final agent's logits [B, S, V] and per sender the
        tokens it wrote [B, T] (None for the final agent)."""
        t, T = self.team, self.T
        msgs: list[list[torch.Tensor] | None] = []
        tokens: list[torch.Tensor | None] = []
        logits = None
        for ai, a in enumerate(t.plan):
            ids = inputs[ai].to(t.device)
            t.activate(a.adapter_key)
            with torch.set_grad_enabled(grad and t.agent_trains(a)):
                x = F.embedding(ids, self.E)
                if a.preds:
                    segs, pos = [], 0
                    for i, p in enumerate(a.preds):
                        s = self.slots[ai][i]
                        segs += [x[:, pos:s], torch.stack(msgs[p], dim=1)]
                        pos = s + T
                    x = torch.cat(segs + [x[:, pos:]], dim=1)
                h, cache = t._pass(None, 0, embeds=x)
                if a.final:
                    logits = t.lm_head(h)
                    msgs.append(None)
                    tokens.append(None)
                    continue
                n = ids.shape[1]
                last = h[:, -1]
                es, toks = [], []
                for j in range(T):
                    lg = t.lm_head(last).masked_fill(~self.allowed, float("-inf"))
                    tok = lg.argmax(-1)
                    p = torch.softmax(lg / self.tau, dim=-1)
                    y = F.one_hot(tok, lg.shape[-1]).to(p.dtype) + (p - p.detach())
                    e = y @ self.E
                    es.append(e)
                    toks.append(tok)
                    if j < T - 1:
                        hj, cache = t._pass(None, n + j, embeds=e.unsqueeze(1), cache=cache)
                        last = hj[:, -1]
                msgs.append(es)
                tokens.append(torch.stack(toks, dim=1))
        return logits, tokens


def evaluate(ev, control: str):
    """Evaluator._text_method for text-trained: answers, loss sum, target count, message tokens per
    episode. zero: the final agent reads empty messages ("msg:\\n") with its adapter, as text's zero."""
    from .evaluate import _chunks, _group

    t = ev.team
    ch = t.text_channel(ev.tk)
    eps = ev._eps
    n = len(eps)
    inst = ev._instances(n, control)
    plan = t.plan
    fi = len(plan) - 1
    answers = [""] * n
    parts, bi = [], -1
    rerun = lambda ids: t.final_pass(None, 0, ids)  # noqa: E731
    if control == "zero":
        finals = [ev.tk.encode(ev._with_messages(eps[i]["agents"][fi]["prompt"], [""] * len(plan[fi].preds))) for i in range(n)]
        prompts = None
    else:
        prompts = [[prompt_ids(ev.tk, ch.rendering, eps[inst[i][a]]["agents"][a]["prompt"], len(plan[a].preds), ch.T, ev.pad) for a in range(len(plan))] for i in range(n)]
        finals = [p[fi] for p in prompts]
    keys = [",".join(str(len(x)) for x in p) for p in prompts] if prompts else [str(len(p)) for p in finals]
    for g in _group(keys):
        ln = len(finals[g[0]])
        for rows, real in _chunks(g, ev.B):
            bi += 1
            if not ev._mine(bi):  # data parallel (Evaluator shard): another process's batch
                continue
            ids, targets = ev._final_batch(finals, rows, real)
            ids = torch.tensor(ids)
            if prompts is None:
                logits = rerun(ids)
            else:
                inputs = [torch.tensor([prompts[r][a] for r in rows]) for a in range(fi)] + [ids]
                with torch.no_grad():
                    logits, toks = ch.forward(inputs)
                for i, p in enumerate(plan[fi].preds):
                    s = ch.slots[fi][i]
                    ids[:, s:s + ch.T] = toks[p].cpu()
            ls, c = ev._answer(logits, targets, ids, ln - 1, rows, real, rerun, answers)
            parts.append((bi, rows[:real], [answers[r] for r in rows[:real]], ls, c))
    lsum, count = ev._merge(parts, answers)
    tokens = 0.0 if control == "zero" else float(ch.T * fi)
    return answers, lsum, count, tokens, {}
