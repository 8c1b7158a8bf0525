"""What a run bundle may ask of its reader (issue 20 items 7 and 8), checked before anything is read or
allocated: every path run.json names stays inside the bundle (the engine's rule, src/storage/
bundle-paths.ts, with the same messages; both test suites read tests/fixtures/bundle-paths.json), the
settings lie within the engine's limits (src/mas/methods.ts LIMITS, src/mas/topology.ts; a test holds
the two to each other), the plan is a plan (every predecessor listed before its agent: no cycle), and
a zip unpacks to a bounded size."""
from __future__ import annotations

import json
import math
import re
import zipfile
from pathlib import Path

SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_PATH_SEGMENTS = 8

# src/mas/methods.ts LIMITS (python/tests/test_bundle_safety.py reads that file and compares)
LIMITS = {
    "steps": (0, 100_000),
    "batch": (1, 256),
    "lr": (1e-6, 1),
    "textBudget": (1, 64),
    "textTemperature": (0.01, 100),
    "evalEvery": (0, 100_000),
    "evalSize": (1, 10_000),
    "r": (1, 64),
}
# src/mas/topology.ts, src/tasks/tasks.ts
MAX_LATENT_STEPS = 64
MAX_AGENTS = 32
DIFFICULTY = (1, 5)
# a vocabulary this large is no tokenizer this project reads (the largest real ones hold about 256k)
MAX_VOCAB = 1 << 24

# a zip unpacks to at most RATIO times its own size plus SLACK: a bundle is mostly float weights, which
# deflate hardly shrinks; a bomb (zeros) shrinks a thousandfold
ZIP_RATIO = 100
ZIP_SLACK = 64 << 20
ZIP_MAX_ENTRIES = 100_000


class BundleError(ValueError):
    """A bundle that cannot be read: names the file and what is wrong."""

    def __init__(self, message: str):
        super().__init__(f"run bundle: {message}")


def _js(v) -> str:
    """The value as JSON.stringify writes it (the engine's messages quote paths so)."""
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def bundle_path_problem(p) -> str | None:
    """What is wrong with `p` as a path inside a bundle, in words (None: it is fine); the engine's rule word for word."""
    if not isinstance(p, str):
        return "is not a path (a string)"
    if p == "":
        return "is empty"
    if p.startswith("/") or p.startswith("\\") or re.match(r"[A-Za-z]:", p):
        return "is absolute"
    if "\\" in p:
        return "has a backslash (paths use '/')"
    parts = p.split("/")
    if ".." in parts:
        return "has a '..' segment"
    if any(s in ("", ".") for s in parts):
        return "has an empty or '.' segment"
    if len(parts) > MAX_PATH_SEGMENTS:
        return f"has more than {MAX_PATH_SEGMENTS} segments"
    for s in parts:
        if not SEGMENT.fullmatch(s):
            return f"has a segment {_js(s)} that is not 1-64 letters, digits, . _ - starting with a letter or digit"
    return None


def bundle_key_problem(k: str) -> str | None:
    """What is wrong with `k` as an adapter key (it names a folder: one segment), or None."""
    return None if isinstance(k, str) and SEGMENT.fullmatch(k) else "is not 1-64 letters, digits, . _ - starting with a letter or digit (it names a folder)"


def path_message(where: str, p, problem: str) -> str:
    return f"run.json: {where} {_js(p)} {problem}; a path in a run bundle is relative to its root and stays inside it"


def bundle_paths(files: dict) -> list[tuple[str, object]]:
    """Every path run.json's `files` names, with where it is (the engine's bundlePaths)."""
    # a referenced base (files.base None, files.baseRef: base_ref.py) names no path inside the bundle
    out = [] if files.get("base") is None and "baseRef" in files else [("files.base", files.get("base"))]
    for group in ("adapters", "initialAdapters"):
        g = files.get(group)
        if isinstance(g, dict):
            out += [(f"files.{group}.{k}", v) for k, v in g.items()]
    if files.get("latentMap") is not None:
        out.append(("files.latentMap", files["latentMap"]))
    if files.get("fuser") is not None:
        out.append(("files.fuser", files["fuser"]))
    eps = files.get("episodes")
    if isinstance(eps, dict):
        out += [(f"files.episodes.{k}.path", v.get("path")) for k, v in eps.items() if isinstance(v, dict)]
    if isinstance(files.get("batches"), dict):
        out.append(("files.batches.path", files["batches"].get("path")))
    return out


def inside(root: Path, rel: str, where: str) -> Path:
    """root/rel, refused unless it stays inside root once symbolic links are followed."""
    p = (root / rel).resolve()
    if not p.is_relative_to(root.resolve()):
        raise BundleError(path_message(where, rel, "leads outside the bundle (through a symbolic link)"))
    return p


def _int(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _need(cond, where: str, what: str):
    if not cond:
        raise BundleError(f"{where}: {what}")


def check_files(files) -> None:
    """run.json's files: the shape, every path by the rule, every adapter key a folder name."""
    _need(isinstance(files, dict) and isinstance(files.get("adapters"), dict) and isinstance(files.get("initialAdapters"), dict)
          and isinstance(files.get("episodes"), dict), "run.json", "files must say where the base, adapters and episodes are")
    for group in ("adapters", "initialAdapters"):
        for k in files[group]:
            problem = bundle_key_problem(k)
            if problem:
                raise BundleError(path_message(f"files.{group} key", k, problem))
    for where, p in bundle_paths(files):
        problem = bundle_path_problem(p)
        if problem:
            raise BundleError(path_message(where, p, problem))
    for split, e in files["episodes"].items():
        _need(isinstance(e, dict) and _int(e.get("count"), 0, LIMITS["evalSize"][1]), "run.json",
              f"files.episodes.{split}.count must be an integer in 0..{LIMITS['evalSize'][1]} (the engine's largest evaluation set), got {_js(e.get('count') if isinstance(e, dict) else e)}")
    b = files.get("batches")
    if b is not None:
        _need(isinstance(b, dict) and _int(b.get("count"), 0, LIMITS["steps"][1]), "run.json",
              f"files.batches.count must be an integer in 0..{LIMITS['steps'][1]}, got {_js(b.get('count') if isinstance(b, dict) else b)}")


def check_config(c) -> None:
    """run.json's config against the engine's limits (validateRunConfig's ranges), before anything is sized by it."""
    from .tasks import make_task

    _need(isinstance(c, dict), "run.json", "config is not a run configuration")
    _need(c.get("task") in ("lookup", "relay", "arith", "index"), "run.json", f"config.task must be lookup, relay, arith or index, got {_js(c.get('task'))}")
    _need(_int(c.get("difficulty"), *DIFFICULTY), "run.json", f"config.difficulty must be an integer in {DIFFICULTY[0]}..{DIFFICULTY[1]}, got {_js(c.get('difficulty'))}")
    for k in ("steps", "batch", "textBudget", "evalEvery", "evalSize"):
        lo, hi = LIMITS[k]
        _need(_int(c.get(k), lo, hi), "run.json", f"config.{k} must be an integer in {lo}..{hi} (the engine's limit), got {_js(c.get(k))}")
    lo, hi = LIMITS["lr"]
    lr = c.get("lr")
    _need(isinstance(lr, (int, float)) and not isinstance(lr, bool) and lo <= lr <= hi, "run.json", f"config.lr must be in [{lo}, {hi}], got {_js(lr)}")
    if c.get("textTemperature") is not None:
        lo, hi = LIMITS["textTemperature"]
        t = c["textTemperature"]
        _need(isinstance(t, (int, float)) and not isinstance(t, bool) and lo <= t <= hi, "run.json", f"config.textTemperature must be in [{lo}, {hi}], got {_js(t)}")
    _need(c.get("lrSchedule") in (None, "cosine", "constant"), "run.json", f"config.lrSchedule must be cosine or constant, got {_js(c.get('lrSchedule'))}")
    _need(c.get("latentSlotOffset") in (None, True, False), "run.json", f"config.latentSlotOffset must be true or false, got {_js(c.get('latentSlotOffset'))}")
    _need(c.get("quizLoss") in (None, True, False), "run.json", f"config.quizLoss must be true or false, got {_js(c.get('quizLoss'))}")
    cf = c.get("curriculumFrom")
    _need(cf is None or (_int(cf, 1, 5) and cf < c["difficulty"]), "run.json", f"config.curriculumFrom must be an integer difficulty below config.difficulty, got {_js(cf)}")
    _need(_int(c.get("seed"), 0, 2**53 - 1), "run.json", f"config.seed must be a non-negative integer, got {_js(c.get('seed'))}")
    # the port draws and scores char and word (render.py), and chat from the base's template (chat_render.py)
    _need(c.get("rendering") in (None, "char", "word", "chat"), "run.json",
          f"config.rendering must be char, word or chat, got {_js(c.get('rendering'))}")
    lora = c.get("lora")
    _need(isinstance(lora, dict) and _int(lora.get("r"), *LIMITS["r"]), "run.json",
          f"config.lora.r must be an integer in {LIMITS['r'][0]}..{LIMITS['r'][1]}, got {_js(lora.get('r') if isinstance(lora, dict) else lora)}")
    make_task(c["task"], c["difficulty"])


def check_plan(meta: dict) -> None:
    """agents (the plan), maxAnswerTokens, tokens and training: in range, every predecessor an agent listed before (no cycle)."""
    from .tasks import make_task

    agents = meta["agents"]
    _need(isinstance(agents, list) and 1 <= len(agents) <= MAX_AGENTS, "run.json", f"agents must be a list of 1..{MAX_AGENTS} agents")
    files = meta["files"]
    keys = set(files["adapters"]) | set(files["initialAdapters"])
    seen: list[str] = []
    for i, a in enumerate(agents):
        where = f"run.json agents[{i}]"
        _need(isinstance(a, dict) and isinstance(a.get("id"), str) and 0 < len(a["id"]) <= 64, where, "needs an id (a string of 1..64 characters)")
        _need(a["id"] not in seen, where, f"id {_js(a['id'])} is listed twice")
        _need(_int(a.get("latentSteps"), 0, MAX_LATENT_STEPS), where, f"latentSteps must be an integer in 0..{MAX_LATENT_STEPS} (the engine's limit), got {_js(a.get('latentSteps'))}")
        _need(isinstance(a.get("final"), bool), where, "final must be true or false")
        _need(a.get("role") == "none" or _int(a.get("role"), 0, 64), where, f"role must be a part index or 'none', got {_js(a.get('role'))}")
        key = a.get("adapterKey")
        if key is not None:
            problem = bundle_key_problem(key)
            if problem:
                raise BundleError(path_message(f"agents[{i}].adapterKey", key, problem))
            _need(key in keys or not keys, where, f"adapterKey {_js(key)} is not in files.adapters or files.initialAdapters (has: {', '.join(sorted(keys))})")
        preds = a.get("predecessors")
        _need(isinstance(preds, list), where, "predecessors must be a list of agent ids")
        for p in preds:
            _need(p in seen, where, f"predecessor {_js(p)} is not an agent listed before it (the plan is in topological order; a cycle or an unknown id cannot be run)")
        _need(len(set(preds)) == len(preds), where, "a predecessor is listed twice")
        seen.append(a["id"])
    c = meta["config"]
    L = make_task(c["task"], c["difficulty"]).max_answer_length
    mat = meta["maxAnswerTokens"]
    if c.get("rendering") == "chat":  # the answer and room for a lead-in (chat_render.py CHAT_ANSWER_SLACK)
        from .chat_render import CHAT_ANSWER_SLACK

        _need(_int(mat, 1, L + CHAT_ANSWER_SLACK) and mat == L + CHAT_ANSWER_SLACK, "run.json",
              f"maxAnswerTokens must be what task {c['task']} d{c['difficulty']} implies in the chat rendering ({L + CHAT_ANSWER_SLACK}), got {_js(mat)}")
    else:
        _need(mat in (L, L + 1) and _int(mat, 1, L + 1), "run.json",
              f"maxAnswerTokens must be what task {c['task']} d{c['difficulty']} implies ({L} for the char rendering, {L + 1} for word), got {_js(mat)}")
    t = meta["tokens"]
    _need(isinstance(t, dict) and _int(t.get("vocabSize"), 1, MAX_VOCAB), "run.json", f"tokens.vocabSize must be an integer in 1..{MAX_VOCAB}")
    for k in ("pad", "eos", "bos"):
        if k == "bos" and t.get(k) is None:
            continue
        _need(_int(t.get(k), 0, t["vocabSize"] - 1), "run.json", f"tokens.{k} must be a token id below vocabSize {t['vocabSize']}, got {_js(t.get(k))}")
    tr = meta["training"]
    _need(isinstance(tr, dict) and _int(tr.get("stepsDone"), 0, LIMITS["steps"][1]), "run.json",
          f"training.stepsDone must be an integer in 0..{LIMITS['steps'][1]}, got {_js(tr.get('stepsDone') if isinstance(tr, dict) else tr)}")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_meta(meta: dict) -> None:
    """The parts of run.json the companion reads besides the plan: method, positions, base, the optimizer."""
    m = meta["method"]
    _need(isinstance(m, dict) and isinstance(m.get("name"), str) and m.get("channel") in ("none", "text", "latent")
          and m.get("trace") in ("latent", "full", None) and m.get("train") in ("none", "all", "receiver", "fuser") and isinstance(m.get("skyline"), bool),
          "run.json", "method must be {name, channel: none/text/latent, trace: latent/full/null, train: none/all/receiver/fuser, skyline: true/false}")
    _need(meta["positions"] in ("stream", "prefix"), "run.json", f"positions must be 'stream' or 'prefix', got {_js(meta['positions'])}")
    _need(isinstance(meta.get("base"), dict) and isinstance(meta["base"].get("id"), str), "run.json", "base must be {id, name?}")
    o = meta["training"].get("optimizer")
    _need(isinstance(o, dict), "run.json", "training.optimizer is missing")
    for k in ("beta1", "beta2", "eps", "weightDecay", "clip", "minLr"):
        _need(_num(o.get(k)), "run.json", f"training.optimizer.{k} must be a finite number, got {_js(o.get(k))}")
    _need(_int(o.get("warmupSteps"), 0, LIMITS["steps"][1]), "run.json", f"training.optimizer.warmupSteps must be an integer in 0..{LIMITS['steps'][1]}, got {_js(o.get('warmupSteps'))}")


def check_episode(ep, where: str, split: str, agents: int) -> None:
    """One line of episodes/<split>.jsonl: what the evaluation reads of it (the engine's checkEpisode)."""
    _need(isinstance(ep, dict), where, "not an episode object")
    _need(ep.get("split") == split and isinstance(ep.get("agents"), list) and len(ep["agents"]) == agents, where, f"not an episode of {split} with {agents} agent inputs")
    _need(isinstance(ep.get("answer"), str) and _ids(ep.get("targetIds")), where, "answer (text) and targetIds (token ids) are needed")
    for a in ep["agents"]:
        _need(isinstance(a, dict) and isinstance(a.get("prompt"), str) and _ids(a.get("ids")), where, "each agent input needs prompt and ids")


def _ids(v) -> bool:
    return isinstance(v, list) and all(_int(x, 0, MAX_VOCAB - 1) for x in v)


def check_zip(z: zipfile.ZipFile, archive: Path) -> None:
    """Every entry's name inside the bundle, and what the entries unpack to bounded by the archive's size, before unpacking."""
    infos = z.infolist()
    _need(len(infos) <= ZIP_MAX_ENTRIES, archive.name, f"{len(infos)} entries, more than the {ZIP_MAX_ENTRIES} a run bundle holds")
    for i in infos:
        p = Path(i.filename)
        if p.is_absolute() or ".." in p.parts or "\\" in i.filename:
            raise BundleError(f"{archive.name}: entry {i.filename!r} points outside the bundle")
    total = sum(i.file_size for i in infos)
    size = archive.stat().st_size
    cap = ZIP_RATIO * size + ZIP_SLACK
    _need(total <= cap, archive.name,
          f"its entries unpack to {total} bytes, more than the {cap} this reader unpacks from an archive of {size} bytes "
          f"({ZIP_RATIO}x its size plus {ZIP_SLACK >> 20} MiB: a bundle is mostly weights, which hardly compress; this one looks like a zip bomb)")
