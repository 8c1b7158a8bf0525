"""python -m latent_playground new: a run bundle (docs/run-bundle.md) from a RunConfig and a base alone,
without the engine. The base is a folder of Hugging Face files, a zip of them (the page's library
export), or a Hub id found in huggingface_hub's cache (no network: download it first). Everything the
engine's bundle holds at step 0 is made here as the engine makes it (src/mas/run-data.ts
runBundleContent):

  episodes     each split's evaluation set from config.evalSeed (tasks.py, the engine's seeded streams),
               prompts and ids per agent in the run's rendering (render.py: char or word; chat from the base's template, chat_render.py)
  batches      the first training batches of the run's stream (tasks.py batch_stream); `train` draws
               the rest from the same stream
  initial_adapters  A ~ U(-1/sqrt(in), 1/sqrt(in)) from deriveSeed(seed, 'init', 'lora', key), B = 0
               (src/model/model.ts LoraGpu), float32 as the engine draws them
  latent_map   W_a of the ridge map (src/mas/latentmap.ts) in float64, stored as float32
  base/        the base's files, hard-linked where the file system allows (the format keeps the base
               inside the bundle: a reader refuses a path that leads out of it)

Its adapters/ are the initial ones (training.stepsDone 0): `train RUN --from initial --steps N` trains
it on its own schedule, and the page imports it (or what train wrote from it) and continues there.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .bundle import FORMAT, VERSION, _copy_tree
from .bundle_safety import check_zip
from .render import answer_ids, default_rendering, rendering
from .rng import Rng, derive_seed
from .run_config import make_plan, plan_agents, validate_config
from .curriculum import run_stream
from .tasks import SPLITS, batch_stream, eval_episodes, prompt_text
from .tokenizer import load_tokenizer

BUNDLE_BATCHES = 4  # run-data.ts BUNDLE_BATCHES
RIDGE_RELATIVE_LAMBDA = 1e-3  # latentmap.ts
ADAMW = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}  # src/gpu/ops/optimizer.ts ADAMW_DEFAULTS
SCHEDULE = "linear warmup from 0 to lr over warmupSteps, then cosine from lr to minLr at config.steps"
# src/storage/checkpoint.ts TYPE_DEFAULTS: the ids a config.json without them implies, and head_dim
TYPE_DEFAULTS = {"llama": {"bos": 1, "eos": 2, "head_dim": None}, "qwen2": {"bos": None, "eos": None, "head_dim": None},
                 "qwen3": {"bos": None, "eos": None, "head_dim": 128}}


# ---------------------------------------------------------------- the base

class Base:
    """A base model's folder (config.json, tokenizer.json, weights), wherever it came from."""

    def __init__(self, spec: str):
        self.spec, self._tmp = spec, None
        p = Path(spec)
        if p.is_dir():
            self.dir = p
        elif p.is_file() and zipfile.is_zipfile(p):
            self._tmp = tempfile.TemporaryDirectory(prefix="base-")
            with zipfile.ZipFile(p) as z:
                check_zip(z, p)
                for i in z.infolist():
                    if "/" in i.filename.rstrip("/") and not i.is_dir():
                        raise ValueError(f"{p.name}: entry {i.filename!r} is in a folder; a library export holds the model's files at its root")
                z.extractall(self._tmp.name)
            self.dir = Path(self._tmp.name)
        elif p.exists():
            raise ValueError(f"base {spec}: not a folder or a zip of a model's files")
        else:
            self.dir = self._from_hub(spec)
        for n in ("config.json", "tokenizer.json"):
            if not (self.dir / n).is_file():
                raise ValueError(f"base {spec}: {n} is missing (a base needs config.json, tokenizer.json and model.safetensors)")
        if not (self.dir / "model.safetensors").is_file() and not (self.dir / "model.safetensors.index.json").is_file():
            raise ValueError(f"base {spec}: model.safetensors (or model.safetensors.index.json with its shards) is missing")
        self.config = json.loads((self.dir / "config.json").read_text())

    @staticmethod
    def _from_hub(spec: str) -> Path:
        """ORG/NAME[@REV] from the playground's Hub cache, else the Hugging Face cache (base_ref.hub_folder)."""
        from .base_ref import hub_folder

        repo, _, rev = spec.partition("@")
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo):
            raise ValueError(f"base {spec}: not a folder or a zip, and not a Hub model id (ORG/NAME[@REV])")
        try:
            return hub_folder(repo, rev or None)
        except ValueError as e:
            raise ValueError(f"base {spec}: not a folder, and {e}") from None

    def tokens(self) -> dict:
        """run.json tokens: {pad, bos, eos, vocabSize} as the engine reads them (tokenizers/index.ts loadTokenizer)."""
        tk = json.loads((self.dir / "tokenizer.json").read_text())
        if tk.get("type") == "char":
            sp = tk["specials"]
            return {"pad": sp["pad"], "bos": sp["bos"], "eos": sp["eos"], "vocabSize": len(tk["vocab"])}
        c = self.config
        d = TYPE_DEFAULTS.get(c.get("model_type"), TYPE_DEFAULTS["llama"])
        tcfg_path = self.dir / "tokenizer_config.json"
        tcfg = json.loads(tcfg_path.read_text()) if tcfg_path.is_file() else {}
        vocab = dict(tk.get("model", {}).get("vocab") or {})
        for t in tk.get("added_tokens", []):
            vocab[t["content"]] = t["id"]

        def from_tcfg(field):
            v = tcfg.get(field)
            v = v.get("content") if isinstance(v, dict) else v
            return vocab.get(v) if isinstance(v, str) else None

        first = lambda v: v[0] if isinstance(v, list) else v  # noqa: E731
        bos = c["bos_token_id"] if "bos_token_id" in c else d["bos"]
        eos = first(c["eos_token_id"] if "eos_token_id" in c else d["eos"])
        eos = eos if eos is not None else from_tcfg("eos_token")
        if eos is None:
            raise ValueError(f"base {self.spec}: the model names no end-of-sequence token (eos_token_id in config.json, eos_token in tokenizer_config.json)")
        pad = c.get("pad_token_id")
        pad = pad if pad is not None else from_tcfg("pad_token")
        return {"pad": eos if pad is None else pad, "bos": bos, "eos": eos, "vocabSize": max(vocab.values()) + 1}

    def tensor(self, name: str) -> np.ndarray | None:
        """One weight as float64 (None when the checkpoint has no such tensor)."""
        from safetensors import safe_open

        index = self.dir / "model.safetensors.index.json"
        if index.is_file():
            shard = json.loads(index.read_text())["weight_map"].get(name)
            if shard is None:
                return None
            path = self.dir / shard
        else:
            path = self.dir / "model.safetensors"
        with safe_open(str(path), framework="pt") as f:
            if name not in f.keys():
                return None
            return f.get_tensor(name).double().numpy()

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def copy_base(src: Path, dst: Path):
    """The base's files into the bundle, hard-linked where the file system allows, else copied. Symbolic
    links are followed (a Hub snapshot's files link into the cache's blobs): the bundle holds files only."""
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        real = f.resolve()
        if real.is_dir():
            copy_base(real, dst / f.name)
            continue
        try:
            os.link(real, dst / f.name)
        except OSError:
            shutil.copy2(real, dst / f.name)


# ---------------------------------------------------------------- what the run starts from

def lora_shapes(cfg: dict) -> dict[str, tuple[int, int]]:
    """(in, out) of each projection (checkpoint.ts linearShapes)."""
    D, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    mt = cfg.get("model_type", "llama")
    explicit = mt != "qwen2" and cfg.get("head_dim") is not None
    hd = cfg["head_dim"] if explicit else (TYPE_DEFAULTS.get(mt, {}).get("head_dim") or D // heads)
    inter = cfg["intermediate_size"]
    return {"q_proj": (D, heads * hd), "k_proj": (D, kv * hd), "v_proj": (D, kv * hd), "o_proj": (heads * hd, D),
            "gate_proj": (D, inter), "up_proj": (D, inter), "down_proj": (inter, D)}


def initial_adapter(cfg: dict, lora: dict, seed: int, key: str) -> dict[str, np.ndarray]:
    """model.ts LoraGpu's init: per layer, per target in config order, A [r, in] = bound * (2u - 1) with
    u from one mulberry32 stream (bound = 1/sqrt(in)), B [out, r] = 0; PEFT's tensor names."""
    shapes = lora_shapes(cfg)
    rng = Rng(derive_seed(seed, "init", "lora", key))
    r = lora["r"]
    out = {}
    for layer in range(cfg["num_hidden_layers"]):
        for proj in lora["targets"]:
            fan_in, fan_out = shapes[proj]
            block = "mlp" if proj in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            u = rng.uint32s(r * fan_in).astype(np.float64) / 4294967296
            name = f"base_model.model.model.layers.{layer}.{block}.{proj}"
            out[f"{name}.lora_A.weight"] = ((1 / math.sqrt(fan_in)) * (2 * u - 1)).astype(np.float32).reshape(r, fan_in)
            out[f"{name}.lora_B.weight"] = np.zeros((fan_out, r), dtype=np.float32)
    return out


def adapter_config(lora: dict, base_id: str) -> dict:
    """peft.ts adapterConfigJson of the engine's exportAdapters config."""
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora["r"], "lora_alpha": lora["alpha"], "target_modules": list(lora["targets"]),
            "lora_dropout": 0, "bias": "none", "fan_in_fan_out": False, "base_model_name_or_path": base_id, "layers_to_transform": None,
            "inference_mode": True, "modules_to_save": None, "rank_pattern": {}, "alpha_pattern": {}, "use_rslora": False, "use_dora": False,
            "init_lora_weights": True, "layers_pattern": None, "revision": None}


def latent_map(base: Base, kind: str) -> dict:
    """latentmap.ts computeLatentMap in float64: the target norm c (the mean L2 norm of the embedding rows,
    summed in the engine's order) and, for ridge, W_a = (Wout^T Wout + lambda I)^-1 Wout^T Win."""
    win = base.tensor("model.embed_tokens.weight")
    if win is None:
        raise ValueError("latent map: model.embed_tokens.weight is missing")
    V, D = win.shape
    # np.cumsum adds in order, as the engine's loops do, so c is the engine's to the last bit
    norms = np.concatenate([np.sqrt(np.cumsum(win[s:s + 4096] ** 2, axis=1)[:, -1]) for s in range(0, V, 4096)])
    c = float(np.cumsum(norms)[-1] / V)
    if not c > 0:
        raise ValueError("latent map: the input embeddings are all zero")
    if kind == "identity":
        return {"kind": kind, "D": D, "lambda": 0, "targetNorm": c, "Wa": None}
    wout = win if base.config.get("tie_word_embeddings") else base.tensor("lm_head.weight")
    if wout is None:
        raise ValueError("latent map: lm_head.weight is missing (and the embeddings are not tied)")
    G = wout.T @ wout
    # the trace as the engine sums it (each diagonal entry over v in order, then over i), so lambda is its to the last bit
    diag = np.zeros(D)
    for s in range(0, V, 4096):
        diag = np.cumsum(np.vstack([diag, wout[s:s + 4096] ** 2]), axis=0)[-1]
    lam = RIDGE_RELATIVE_LAMBDA * float(np.cumsum(diag)[-1]) / D
    L = np.linalg.cholesky(G + lam * np.eye(D))
    Wa = np.linalg.solve(L.T, np.linalg.solve(L, wout.T @ win))
    return {"kind": kind, "D": D, "lambda": lam, "targetNorm": c, "Wa": Wa}


def _js_number(x: float) -> str:
    """String(x) as JavaScript writes a number (1e-7, not 1e-07)."""
    if float(x).is_integer() and abs(x) < 1e21:
        return str(int(x))
    s = repr(float(x))
    if "e" in s:
        m, e = s.split("e")
        return f"{m}e{'+' if int(e) > 0 else '-'}{abs(int(e))}"
    return s


# ---------------------------------------------------------------- the bundle

def make_run(config: dict, base_spec: str, out: Path, *, batches: int = BUNDLE_BATCHES, name: str | None = None, log=print) -> Path:
    """Writes the bundle of a fresh run of `config` over the base `base_spec` at `out` (complete or not at all)."""
    from safetensors.numpy import save_file

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists: choose another --out or remove it")
    task, spec = validate_config(config)
    base = Base(base_spec)
    try:
        tokens = base.tokens()
        tk = load_tokenizer(base.dir, tokens)
        rname = config.get("rendering") or default_rendering(tk.kind)
        r = rendering(rname, base.dir)  # chat: from the base's tokenizer_config.json
        plan = make_plan(config["topology"], spec)
        pas = plan_agents(plan)
        trains = spec["train"] != "none"
        max_answer = r.max_answer_chars(task)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            files = {"base": "base", "adapters": {}, "initialAdapters": {}, "latentMap": None, "episodes": {}, "batches": None}
            copy_base(base.dir, tmp / "base")
            for a in plan:
                key = a["adapterKey"]
                if key is None or key in files["initialAdapters"]:
                    continue
                d = tmp / "initial_adapters" / key
                d.mkdir(parents=True)
                save_file(initial_adapter(base.config, config["lora"], config["seed"], key), str(d / "adapter_model.safetensors"), metadata={"format": "pt"})
                (d / "adapter_config.json").write_text(json.dumps(adapter_config(config["lora"], config["modelId"]), indent=2) + "\n")
                if config.get("latentSlotOffset"):  # the learned slot offsets start at 0, beside each sender's adapter (slot_offset.py)
                    from .slot_offset import SLOT_OFFSET_FILE, SLOT_OFFSET_TENSOR, slot_counts

                    if key in slot_counts(pas):
                        save_file({SLOT_OFFSET_TENSOR: np.zeros((slot_counts(pas)[key], base.config["hidden_size"]), np.float32)}, str(d / SLOT_OFFSET_FILE), metadata={"format": "pt"})
                files["initialAdapters"][key] = f"initial_adapters/{key}"
                # the adapters after stepsDone = 0 steps are the initial ones (as the engine's bundle of an untrained run holds them)
                _copy_tree(d, tmp / "adapters" / key)
                files["adapters"][key] = f"adapters/{key}"
            if spec["channel"] == "latent":
                m = latent_map(base, config["latentMap"])
                tensors = {"target_norm": np.array([m["targetNorm"]], dtype=np.float32)}
                if m["Wa"] is not None:
                    tensors["W_a"] = m["Wa"].astype(np.float32)
                save_file(tensors, str(tmp / "latent_map.safetensors"),
                          metadata={"kind": m["kind"], "lambda": _js_number(m["lambda"]), "target_norm": _js_number(m["targetNorm"]), "D": str(m["D"])})
                files["latentMap"] = "latent_map.safetensors"
            (tmp / "episodes").mkdir()
            # a text receiver's messages go after <bos> (index 0 without one); in chat after the template's head (run-data.ts)
            at = len(tk.encode(r.head)) if rname == "chat" else 0 if tokens["bos"] is None else 1
            for split in SPLITS:
                rows = []
                for i, ep in enumerate(eval_episodes(task, config.get("evalSeed"), config["evalSize"], split)):
                    agents = []
                    for pa in pas:
                        prompt = prompt_text(ep, pa, spec["skyline"], r)
                        a = {"id": pa.id, "prompt": prompt, "ids": tk.encode(prompt)}
                        if spec["channel"] == "text" and pa.preds:
                            a["messagesAt"] = at
                        agents.append(a)
                    rows.append({"split": split, "index": i, "key": ep.key, "parts": list(ep.parts), "answer": ep.answer,
                                 "targetIds": answer_ids(tk, r, task, ep), "agents": agents})
                (tmp / "episodes" / f"{split}.jsonl").write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in rows))
                files["episodes"][split] = {"path": f"episodes/{split}.jsonl", "count": len(rows)}
            if trains and (spec["channel"] != "text" or spec["name"] == "text-trained") and batches > 0:
                T = config["textBudget"] if spec["name"] == "text-trained" else None
                stream = run_stream(config, lambda t: batch_stream(t, tk, pas, spec["skyline"], config["seed"], config["batch"], max_answer, text_budget=T, rendering=r))
                lines = [json.dumps(next(stream), separators=(",", ":")) + "\n" for _ in range(batches)]
                (tmp / "batches.jsonl").write_text("".join(lines))
                files["batches"] = {"path": "batches.jsonl", "count": batches}
            warmup = min(50, math.ceil(config["steps"] / 10))
            meta = {
                "format": FORMAT, "version": VERSION,
                "createdAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "createdBy": f"python new (latent_playground {__version__})",
                "config": config, "method": spec, "positions": config.get("positions") or "stream", "agents": plan,
                "base": {"id": config["modelId"], **({"name": name} if name else {})}, "tokens": tokens, "maxAnswerTokens": max_answer,
                "training": {"stepsDone": 0, "losses": [], "optimizer": {"name": "adamw", **ADAMW, "weightDecay": 0, "clip": 1, "warmupSteps": warmup,
                                                                       "schedule": SCHEDULE, "minLr": config["lr"] / 10}},
                "results": {"evaluation": [], "heldout": []}, "wallSeconds": None, "files": files,
            }
            (tmp / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
            tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        base.close()
    log(f"wrote {out}: {spec['name']} on {task.name} d{task.difficulty} ({rname} rendering), seed {config['seed']}, "
        f"{sum(files['episodes'][s]['count'] for s in SPLITS)} evaluation episodes, {files['batches']['count'] if files['batches'] else 0} batches")
    return out


# ---------------------------------------------------------------- the command

FLAGS = [  # (flag, config key, type, help)
    ("--task", "task", str, "lookup, relay or arith"),
    ("--difficulty", "difficulty", int, "1..5"),
    ("--method", "method", str, "single, skyline, single-trained, skyline-trained, text, text-trained, latentmas(-full), diffmas(-full, -detached), c2c"),
    ("--seed", "seed", int, "the run seed (adapters' init, training batches)"),
    ("--steps", "steps", int, "training steps of the run's schedule"),
    ("--batch", "batch", int, "episodes per training batch"),
    ("--lr", "lr", float, "peak learning rate"),
    ("--eval-size", "evalSize", int, "episodes per evaluation split"),
    ("--eval-seed", "evalSeed", int, "seed of the evaluation sets (default 1)"),
    ("--eval-every", "evalEvery", int, "evaluate held-out every N steps (0: at the end)"),
    ("--text-budget", "textBudget", int, "tokens of a text message"),
    ("--text-temperature", "textTemperature", float, "text-trained's straight-through temperature"),
    ("--rendering", "rendering", str, "char, word or chat (the base's chat template; default: char for a character tokenizer, word otherwise)"),
    ("--positions", "positions", str, "stream or prefix"),
    ("--latent-map", "latentMap", str, "ridge or identity"),
    ("--lr-schedule", "lrSchedule", str, "after the warmup: cosine (default, to lr/10 at the last step) or constant"),
    ("--curriculum-from", "curriculumFrom", int, "a curriculum: training batches from this difficulty first, then each next one up to --difficulty (curriculum.py)"),
    ("--model-id", "modelId", str, "the base's id in run.json (default: what --base names)"),
]


def add_parser(sub, common_parents=()):
    p = sub.add_parser("new", parents=list(common_parents), help="make a run bundle from a RunConfig and a base, without the engine")
    p.add_argument("--base", required=True, help="the base: a folder of Hugging Face files, a zip of them (the page's library export), or a Hub id ORG/NAME[@REV] in the playground's Hub cache or the Hugging Face cache")
    p.add_argument("--out", required=True, help="the bundle folder to write")
    p.add_argument("--config", help="a RunConfig as JSON (or a run.json, whose config is taken); flags override its settings")
    for flag, key, typ, hlp in FLAGS:
        p.add_argument(flag, dest=key, type=typ, help=hlp, metavar=flag[2:].upper().replace("-", "_"))
    p.add_argument("--topology", help="preset (the task's minimum), star, chain, two-round, single, or the URL form v1;agents;edges;final")
    p.add_argument("--latent-steps", type=int, help="latent steps of every sender of a named topology (default 4)")
    p.add_argument("--adapter", choices=["own", "shared"], help="each agent its own adapter, or one shared by all (named topologies)")
    p.add_argument("--rank", type=int, help="LoRA rank r")
    p.add_argument("--alpha", type=float, help="LoRA alpha")
    p.add_argument("--targets", help="LoRA target projections, comma-separated (q_proj,k_proj,v_proj,o_proj,...)")
    p.add_argument("--latent-slot-offset", action="store_true", default=None, help="a learned input offset per latent step of each sender (diffmas, diffmas-full)")
    p.add_argument("--quiz-loss", action="store_true", default=None, help="train on every key of each table from one message (lookup; diffmas variants; quiz.py)")
    p.add_argument("--batches", type=int, default=BUNDLE_BATCHES, help=f"training batches the bundle carries (default {BUNDLE_BATCHES}); train draws the rest")
    p.add_argument("--name", help="the base's display name in run.json")
    return p


def config_from_args(a, base_id: str) -> dict:
    """defaultRunConfig, then --config's settings, then the flags; the topology from --topology (or the
    file's, else the task's preset)."""
    from .run_config import DEFAULT_LATENT_STEPS, default_config, resolve_topology
    from .tasks import make_task

    c = default_config(modelId=base_id)
    if a.config:
        doc = json.loads(Path(a.config).read_text())
        if isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("config"), dict):
            doc = doc["config"]
        if not isinstance(doc, dict):
            raise ValueError(f"--config {a.config}: not a RunConfig (a JSON object)")
        c.update(doc)
        if "modelId" not in doc:
            c["modelId"] = base_id
    for _, key, _, _ in FLAGS:
        v = getattr(a, key)
        if v is not None:
            c[key] = v
    if getattr(a, "latent_slot_offset", None):
        c["latentSlotOffset"] = True
    if getattr(a, "quiz_loss", None):
        c["quizLoss"] = True
    lora = dict(c["lora"])
    if a.rank is not None:
        lora["r"] = a.rank
    if a.alpha is not None:
        lora["alpha"] = int(a.alpha) if float(a.alpha).is_integer() else a.alpha
    if a.targets:
        lora["targets"] = [t.strip() for t in a.targets.split(",") if t.strip()]
    c["lora"] = lora
    if a.topology or a.latent_steps is not None or a.adapter or "topology" not in c:
        steps = DEFAULT_LATENT_STEPS if a.latent_steps is None else a.latent_steps
        c["topology"] = resolve_topology(a.topology or "preset", make_task(c["task"], c["difficulty"]), steps, a.adapter or "own")
    return c


def cmd_new(a) -> int:
    c = config_from_args(a, a.base)  # the base's id: what --base names (a folder, a zip, a Hub id)
    make_run(c, a.base, Path(a.out), batches=a.batches, name=a.name)
    print(f"next: python -m latent_playground train {a.out} --from initial --steps N (the run's own schedule), or import {a.out} into the page")
    return 0
