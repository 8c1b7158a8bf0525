"""The synthetic tasks (src/tasks/tasks.ts) and the run's data helpers (src/mas/data.ts,
src/mas/run-data.ts), ported so that `new` draws a run's episodes and batches as the engine does, and
`train` goes on drawing training batches from the same seeded stream as the tab after the bundle's own
batches run out. `train` checks that this port reproduces every batch the bundle carries before it
draws one more, and refuses otherwise (a task changed in TypeScript). Both renderings the engine has,
char and word (render.py), are ported; tests/fixtures/streams.json holds the engine's draws of each
(scripts/dump-streams.mjs) and python/tests/test_new.py holds this port to them.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from .rng import Rng, derive_seed, hash_string
from .tasks_index import IndexSpec

SPLITS = ("train", "heldout", "ood")
BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"
PART_END = "\n"
HELDOUT_FRACTION = 0.2
ANSWER_SET_LIMIT = 1000
MAX_REJECTIONS = 100_000
ENUMERATE_LIMIT = 100_000
DEFAULT_EVAL_SEED = 1
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
DIGITS = list("0123456789")
LOOKUP_SIZES = [2, 3, 4, 6, 8]
LOOKUP_OOD_EXTRA = 2
RELAY_OOD_EXTRA = 2


@dataclass
class Episode:
    task: str
    difficulty: int
    split: str
    key: str
    content_key: str
    parts: list[str]
    contents: list[str]
    answer: str
    full_context: str
    messages: list[str]


def _lookup_content(table: str) -> str:
    """The table's entries as a sorted set (tasks.ts lookupContent)."""
    return "".join(sorted(table[i:i + 2] for i in range(0, len(table), 2)))


def _lookup_key(table: str, query: str) -> str:
    return _lookup_content(table) + "?" + query


def _lookup_size(d: int, ood: bool) -> int:
    return LOOKUP_SIZES[d - 1] + (LOOKUP_OOD_EXTRA if ood else 0)


class _Lookup:
    name, flow = "lookup", "star"
    cues = ["tbl:", "ask:"]
    role_names = ["table", "query"]

    def chance(self, d, split):
        return 1 / 10

    def answer_set(self, d, split):
        return list(DIGITS)

    def max_answer(self, d, split):
        return 1

    def draw(self, rng: Rng, d: int, ood: bool):
        size = _lookup_size(d, ood)
        keys = rng.sample(LETTERS, size)
        values = [rng.int(0, 10) for _ in keys]
        q = rng.int(0, size)
        table = "".join(f"{k}{v}" for k, v in zip(keys, values))
        return _lookup_key(table, keys[q]), _lookup_content(table), [table, keys[q]], [table, ""], str(values[q])

    def universe(self, d: int, ood: bool) -> int:
        s = _lookup_size(d, ood)
        return math.comb(len(LETTERS), s) * 10**s * s

    def enumerate(self, d: int, ood: bool, keep, rng: Rng):
        """Key sets in lexicographic order, values counting up (first key most significant), then queries."""
        s = _lookup_size(d, ood)
        out = []
        for keys in itertools.combinations(LETTERS, s):
            for v in range(10**s):
                digits = str(v).zfill(s)
                table = "".join(k + x for k, x in zip(keys, digits))
                if keep(table):
                    out += [(f"{table}?{k}", table, [table, k], [table, ""], digits[i]) for i, k in enumerate(keys)]
        return out


class _Relay:
    name, flow = "relay", "chain"
    cues = ["key:", "rly:", "pos:"]
    role_names = ["source", "relay", "asker"]

    def chance(self, d, split):
        return 1 / 26

    def answer_set(self, d, split):
        return list(LETTERS)

    def max_answer(self, d, split):
        return 1

    def draw(self, rng: Rng, d: int, ood: bool):
        n = d + 1 + (RELAY_OOD_EXTRA if ood else 0)
        secret = "".join(rng.choice(LETTERS) for _ in range(n))
        distractor = "".join(rng.choice(LETTERS) for _ in range(n))
        k = rng.int(1, n + 1)
        return f"{secret}@{k}", secret, [secret, distractor, str(k)], [secret, secret, ""], secret[k - 1]

    def universe(self, d: int, ood: bool) -> int:
        n = d + 1 + (RELAY_OOD_EXTRA if ood else 0)
        return len(LETTERS) ** n * n

    def enumerate(self, d: int, ood: bool, keep, rng: Rng):
        """Secrets in lexicographic order, then positions; each episode's distractor drawn from rng."""
        n = d + 1 + (RELAY_OOD_EXTRA if ood else 0)
        out = []
        for letters in itertools.product(LETTERS, repeat=n):
            secret = "".join(letters)
            if not keep(secret):
                continue
            for k in range(1, n + 1):
                distractor = "".join(rng.choice(LETTERS) for _ in range(n))
                out.append((f"{secret}@{k}", secret, [secret, distractor, str(k)], [secret, secret, ""], secret[k - 1]))
        return out


class _Arith:
    name, flow = "arith", "star"
    cues = ["a=", "b=", "op="]
    role_names = ["left", "right", "op"]

    @staticmethod
    def digits(d, split):
        return d + 1 if split == "ood" else d

    def chance(self, d, split):
        return 1 / (9 * 10**d if split == "ood" else 10**d)

    def answer_set(self, d, split):
        D = self.digits(d, split)
        lo = 10 ** (D - 1) if split == "ood" else 0
        hi = 10**D - 1
        lo_v, hi_v = lo - hi, 2 * hi
        if hi_v - lo_v + 1 > ANSWER_SET_LIMIT:
            return None
        return [str(v) for v in range(lo_v, hi_v + 1) if not (split == "ood" and hi - lo < v < 2 * lo)]

    def max_answer(self, d, split):
        return self.digits(d, split) + 1

    def range(self, d: int, ood: bool):
        D = self.digits(d, "ood" if ood else "train")
        return (10 ** (D - 1) if ood else 0), 10**D

    @staticmethod
    def _draw(a: int, b: int, op: str):
        result = a + b if op == "+" else a - b
        return f"{a}{op}{b}", f"{a},{b}", [str(a), str(b), op], [f"a={a}", f"b={b}", ""], str(result)

    def draw(self, rng: Rng, d: int, ood: bool):
        lo, hi = self.range(d, ood)
        a = rng.int(lo, hi)
        b = rng.int(lo, hi)
        return self._draw(a, b, rng.choice(["+", "-"]))

    def universe(self, d: int, ood: bool) -> int:
        lo, hi = self.range(d, ood)
        return (hi - lo) ** 2 * 2

    def enumerate(self, d: int, ood: bool, keep, rng: Rng):
        """a, then b, counting up, then the operators."""
        lo, hi = self.range(d, ood)
        return [self._draw(a, b, op) for a in range(lo, hi) for b in range(lo, hi) if keep(f"{a},{b}") for op in ("+", "-")]


_SPECS = {"lookup": _Lookup(), "relay": _Relay(), "arith": _Arith(), "index": IndexSpec()}


def split_of_content(task: str, content_key: str) -> str:
    """tasks.ts splitOfContent: the partition (train or heldout) of a sender content; ood holds heldout content."""
    h = hash_string(content_key, hash_string(f"split:{task}"))
    return "heldout" if h % 1000 < HELDOUT_FRACTION * 1000 else "train"


@dataclass
class Task:
    name: str
    difficulty: int
    spec: object = field(repr=False)

    @property
    def roles(self) -> int:
        return len(self.spec.cues)

    @property
    def final_role(self) -> int:
        return self.roles - 1

    @property
    def max_answer_length(self) -> int:
        return max(self.spec.max_answer(self.difficulty, s) for s in SPLITS)

    def chance_for(self, split: str) -> float:
        return self.spec.chance(self.difficulty, split)

    def answer_set(self, split: str):
        return self.spec.answer_set(self.difficulty, split)

    def _episode(self, draw, split: str) -> Episode:
        key, content_key, contents, messages, answer = draw
        parts = [cue + c for cue, c in zip(self.spec.cues, contents)]
        n = len(parts)
        full = "".join(p + PART_END if i < n - 1 else p for i, p in enumerate(parts))
        return Episode(self.name, self.difficulty, split, key, content_key, parts, contents, answer, full, messages)

    def sample(self, rng: Rng, split: str) -> Episode:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        partition = "train" if split == "train" else "heldout"
        for _ in range(MAX_REJECTIONS):
            c = self.spec.draw(rng, self.difficulty, split == "ood")
            if split_of_content(self.name, c[1]) == partition:
                return self._episode(c, split)
        raise RuntimeError(f"task {self.name}: no {split} episode found in {MAX_REJECTIONS} draws")

    def enumerate(self, split: str, rng: Rng):
        """Task.enumerate: every distinct episode of the split in a fixed order, None when the distribution is large."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        ood = split == "ood"
        if self.spec.universe(self.difficulty, ood) > ENUMERATE_LIMIT:
            return None
        partition = "train" if split == "train" else "heldout"
        draws = self.spec.enumerate(self.difficulty, ood, lambda c: split_of_content(self.name, c) == partition, rng)
        return [self._episode(dr, split) for dr in draws]


def make_task(name: str, difficulty: int) -> Task:
    if name not in _SPECS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(_SPECS)})")
    if not (1 <= difficulty <= 5):
        raise ValueError(f"task {name}: difficulty must be an integer in 1..5, got {difficulty}")
    return Task(name, difficulty, _SPECS[name])


def sample_episodes(task: Task, split: str, n: int, seed: int) -> list[Episode]:
    rng = Rng(derive_seed(seed, "episodes", task.name, task.difficulty, split))
    return [task.sample(rng, split) for _ in range(n)]


def evaluation_episodes(task: Task, split: str, n: int, seed: int) -> list[Episode]:
    """tasks.ts evaluationEpisodes: n distinct episodes (by key), or every one, once, in Task.enumerate's
    order where the split holds at most n; otherwise drawn without replacement from sample_episodes' stream."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"evaluation_episodes: n must be a positive integer, got {n!r}")
    s = derive_seed(seed, "episodes", task.name, task.difficulty, split)
    every = task.enumerate(split, Rng(s))
    if every is not None and len(every) <= n:
        return every
    rng = Rng(s)
    seen: set[str] = set()
    out: list[Episode] = []
    max_draws = 100 * n + MAX_REJECTIONS
    draws = 0
    while len(out) < n:
        if draws >= max_draws:
            raise RuntimeError(f"evaluation_episodes: {task.name} d{task.difficulty} {split}: only {len(out)} distinct episodes in {max_draws} draws, {n} asked")
        draws += 1
        ep = task.sample(rng, split)
        if ep.key in seen:
            continue
        seen.add(ep.key)
        out.append(ep)
    return out


def eval_episodes(task: Task, eval_seed: int | None, eval_size: int, split: str) -> list[Episode]:
    """A split's evaluation episodes (run-data.ts evalEpisodes): from the run's evalSeed (None: the default), never its seed."""
    return evaluation_episodes(task, split, eval_size, derive_seed(DEFAULT_EVAL_SEED if eval_seed is None else eval_seed, "eval"))


# ---------------------------------------------------------------- the char rendering (formats of tasks.ts)

def wrap_message(content: str, rendering: str = "char") -> str:
    if "\n" in content:
        raise ValueError(f"text message {content!r} contains a newline")
    return ("Message:" if rendering == "word" else "msg:") + content + "\n"


def cut_message(decoded: str) -> str:
    """textMessageFormat.cut: what a sender decoded, cut at the first newline or special token."""
    end = len(decoded)
    nl = decoded.find("\n")
    if nl >= 0:
        end = nl
    sp = decoded.find("<")
    if 0 <= sp < end:
        end = sp
    return decoded[:end]


def extract_answer(decoded: str, rendering: str = "char") -> str:
    """The answer in a decoded continuation (tasks.ts extractAnswer; render.ts for the word rendering)."""
    if rendering == "word":
        a = cut_message(decoded).strip()
        if a.endswith("."):
            a = a[:-1].rstrip()
        return a
    end = len(decoded)
    for stop in (EOS, "<", "\n"):
        i = decoded.find(stop)
        if 0 <= i < end:
            end = i
    return decoded[:end]


def format_prompt(ep: Episode, part, final: bool = False, send: bool = False, messages=()) -> str:
    s = BOS
    for m in messages:
        s += wrap_message(m)
    if part != "none":
        s += ep.parts[part]
        if not final:
            s += PART_END
    if send:
        s += "msg:"
    return s


def format_target(ep: Episode) -> str:
    return ep.answer + EOS


def format_skyline(ep: Episode) -> str:
    return BOS + ep.full_context


def valid_answer(task_name: str, answer_set, answer: str) -> bool:
    """run.ts validAnswer: in the split's answer set, or of the task's answer shape."""
    import re

    if answer_set is not None:
        return answer in answer_set
    if task_name == "arith":
        return re.fullmatch(r"-?\d+", answer) is not None
    if task_name == "relay":
        return re.fullmatch(r"[a-z]", answer) is not None
    return re.fullmatch(r"\d", answer) is not None


# ---------------------------------------------------------------- the run's training batches

@dataclass
class PlanAgent:
    """One agent of the run's plan (run.json agents)."""
    id: str
    role: object
    latent_steps: int
    adapter_key: str | None
    final: bool
    preds: list[int]


def _rendering_of(rendering):
    """A rendering of render.py from its name, or the rendering itself (chat: made from a base folder)."""
    from .render import rendering as render_of  # function-level: render imports this module

    return render_of(rendering) if isinstance(rendering, str) else rendering


def prompt_text(ep: Episode, agent: PlanAgent, skyline: bool, rendering="char") -> str:
    """data.ts promptText (without messages) in a rendering (render.py: its name, or the rendering)."""
    r = _rendering_of(rendering)
    if skyline:
        return r.skyline(ep)
    if agent.final:
        return r.prompt(ep, agent.role, final=True)
    return r.prompt(ep, agent.role, send=True)


def final_sequence(prompt: list[int], answer_ids: list[int], max_answer: int, with_answer: bool, pad: int):
    """data.ts finalSequence: the final pass's ids (prompt + answer region) and targets (None: no loss)."""
    S = len(prompt) + max_answer
    if len(answer_ids) > max_answer + 1:
        raise ValueError(f"answer of {len(answer_ids) - 1} tokens exceeds the task's {max_answer}")
    ids = list(prompt)
    targets: list[int | None] = [None] * S
    for k, t in enumerate(answer_ids):
        if with_answer:
            targets[len(prompt) - 1 + k] = t
        if k < len(answer_ids) - 1:
            ids.append(t)
    ids += [pad] * (S - len(ids))
    return ids, targets


class SignatureBatcher:
    """data.ts SignatureBatcher: batches of B training episodes sharing one prompt-length signature."""

    def __init__(self, task: Task, B: int, seed: int, encode):
        self.task, self.B, self.encode = task, B, encode
        self.rng = Rng(derive_seed(seed, "train-batches", task.name, task.difficulty))
        self.pools: dict[str, tuple[list, list]] = {}

    def next(self):
        for _ in range(1_000_000):
            ep = self.task.sample(self.rng, "train")
            prompts = self.encode(ep)
            sig = ",".join(str(len(p)) for p in prompts)
            pool = self.pools.setdefault(sig, ([], []))
            pool[0].append(ep)
            pool[1].append(prompts)
            if len(pool[0]) == self.B:
                del self.pools[sig]
                return pool[0], pool[1], sig
        raise RuntimeError("training batches: no prompt-length signature filled a batch")


def batch_stream(task: Task, tokenizer, plan: list[PlanAgent], skyline: bool, seed: int, B: int, max_answer: int,
                 text_budget: int | None = None, rendering="char"):
    """The run's stream of training batches (run-data.ts firstTrainingBatches), as bundle batch rows.
    text_budget: T of a text-trained run, whose receivers' prompts hold T pad slots per received message
    (text-channel.ts textTrainedBatcher; the slots change the prompt lengths, so the signatures and the
    batches drawn); None for every other method. rendering: char or word (render.py), or a rendering
    (render.py rendering("chat", folder))."""
    from .render import answer_ids

    r = _rendering_of(rendering)
    if text_budget is None:
        encode = lambda ep: [tokenizer.encode(prompt_text(ep, a, skyline, rendering)) for a in plan]  # noqa: E731
    else:
        # function-level import: text_channel imports this module
        from .text_channel import prompt_ids

        if skyline or not (isinstance(text_budget, int) and text_budget >= 1):
            raise ValueError(f"batch_stream: text-trained batches need a positive integer text budget and no skyline, got {text_budget!r}, skyline={skyline}")
        encode = lambda ep: [prompt_ids(tokenizer, rendering, prompt_text(ep, a, False, rendering), len(a.preds), text_budget, tokenizer.pad_id) for a in plan]  # noqa: E731
    batcher = SignatureBatcher(task, B, seed, encode)
    n = 0
    while True:
        eps, prompts, sig = batcher.next()
        n += 1
        rows = []
        for ep, p in zip(eps, prompts):
            ids, targets = final_sequence(p[-1], answer_ids(tokenizer, r, task, ep), max_answer, True, tokenizer.pad_id)
            rows.append({"key": ep.key, "parts": list(ep.parts), "answer": ep.answer, "promptIds": p, "finalIds": ids, "finalTargets": targets})
        yield {"batch": n, "signature": sig, "rows": rows}
