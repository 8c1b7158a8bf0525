"""DiffMAS training in PyTorch autograd (src/mas/run.ts trainStep, src/model/train.ts): the final
agent's mean cross-entropy over the answer targets of a batch, the gradient through the senders'
caches and latent steps (diffmas, diffmas-full) or into the receiver alone (diffmas-detached; and the
trained baselines single-trained and skyline-trained, whose one agent reads no cache at all), global
gradient-norm clipping (scale min(1, clip / (norm + 1e-6))), AdamW with the run's betas, eps and decay,
and the run's schedule (linear warmup, then cosine to minLr).

Data parallel over processes (accelerate launch, torchrun): each process takes a contiguous share of
every batch's rows, its loss is its share of the batch's loss sum over the batch's whole target count,
and the gradients are summed across processes, so any number of processes takes the step one process
takes with the whole batch.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import __version__
from .agents import Team, loss_sum
from .bundle import Bundle, write_bundle
from .tasks import batch_stream, make_task


def lr_at(step: int, lr: float, warmup: int, total: int, min_lr: float) -> float:
    """train.ts lrAt: linear warmup over `warmup` steps, then cosine from lr to min_lr at `total`."""
    if warmup > 0 and step <= warmup:
        return lr * step / warmup
    span = max(1, total - warmup)
    t = min(1.0, max(0.0, (step - warmup) / span))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t))


class Batches:
    """The run's training batches by number (1-based): the bundle's own, then (char rendering) the same
    seeded stream drawn by the Python port of the tasks, once it has reproduced every bundle batch."""

    def __init__(self, bundle: Bundle, tokenizer):
        self.bundle = bundle
        self.tk = tokenizer
        self.cache: dict[int, dict] = {}
        self._stream = None
        self._checked: str | None = None

    def _port(self):
        b = self.bundle
        if self._checked is None:
            why = None
            if b.rendering != "char" or getattr(self.tk, "kind", "") != "char":
                why = f"the Python port draws only the char rendering with the char tokenizer (this run: {b.rendering}, {getattr(self.tk, 'kind', '?')})"
            else:
                from .agents import plan_of

                cfg = b.config
                # text-trained: the receivers' prompts hold T message slots (text-channel.ts textTrainedBatcher)
                T = cfg["textBudget"] if b.method["name"] == "text-trained" else None
                stream = batch_stream(make_task(cfg["task"], cfg["difficulty"]), self.tk, plan_of(b), b.method["skyline"], cfg["seed"], cfg["batch"], b.json["maxAnswerTokens"], text_budget=T)
                for i, want in enumerate(b.batches):
                    got = next(stream)
                    if got["rows"] != want["rows"] or got["signature"] != want["signature"]:
                        why = f"the Python port of the tasks does not reproduce batch {i + 1} of the bundle (a task changed in TypeScript?)"
                        break
                    self.cache[i + 1] = got
                self._stream = stream
            self._checked = why or ""
        if self._checked:
            raise ValueError(f"{self._checked}; only the bundle's {len(b.batches)} batches can be used: export the run with more (npm run experiment -- ... --export-run DIR --export-batches N)")
        return self._stream

    def get(self, n: int) -> dict:
        if n <= len(self.bundle.batches):
            return self.bundle.batches[n - 1]
        stream = self._port()
        while n not in self.cache:
            got = next(stream)
            self.cache[got["batch"]] = got
            for k in [k for k in self.cache if k < n - 8]:
                del self.cache[k]
        return self.cache[n]


def _inputs(batch: dict, rows: list[int], n_agents: int):
    rs = [batch["rows"][r] for r in rows]
    inputs = [torch.tensor([r["promptIds"][a] for r in rs]) for a in range(n_agents - 1)]
    inputs.append(torch.tensor([r["finalIds"] for r in rs]))
    targets = torch.tensor([[-100 if t is None else t for t in r["finalTargets"]] for r in rs])
    return inputs, targets


def train(bundle: Bundle, tokenizer, steps: int, *, start: str = "trained", out: Path | None = None, lr: float | None = None,
          dtype: str = "float32", attn: str = "eager", precision: str = "no", base: str | None = None, cpu: bool = False,
          log=print) -> dict:
    from accelerate import Accelerator

    if bundle.method["train"] == "none":
        raise ValueError(f"method {bundle.method['name']} trains nothing")
    # without a GPU, accelerate sets up the (gloo) process group only when told it runs on the CPU
    acc = Accelerator(cpu=cpu or not torch.cuda.is_available(), mixed_precision=precision)
    rank, world = acc.process_index, acc.num_processes
    keys = bundle.adapter_keys
    initial = start == "initial"
    dirs = {k: bundle.adapter_dir(k, initial=initial or not bundle.json["files"]["adapters"]) for k in keys}
    team = Team(bundle, dirs, base=base, dtype=dtype, device=acc.device, attn=attn, trainable=True)
    params = team.parameters()
    cfg = bundle.config
    opt_cfg = bundle.json["training"]["optimizer"]
    done_before = 0 if initial else bundle.json["training"]["stepsDone"]
    peak = lr if lr is not None else cfg["lr"]
    if initial:
        # the run itself again: its schedule over config.steps
        warmup, total, min_lr = opt_cfg["warmupSteps"], cfg["steps"], opt_cfg["minLr"] * (peak / cfg["lr"])
    else:
        # a new phase: fresh AdamW moments (a bundle holds none), its own warmup and cosine over these steps
        warmup, total, min_lr = min(50, math.ceil(steps / 10)), steps, peak / 10
    opt = torch.optim.AdamW(params, lr=peak, betas=(opt_cfg["beta1"], opt_cfg["beta2"]), eps=opt_cfg["eps"],
                            weight_decay=opt_cfg["weightDecay"], foreach=False)
    clip = opt_cfg["clip"]
    batches = Batches(bundle, tokenizer)
    n_agents = len(team.plan)
    losses, norms, lrs = [], [], []
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        batch = batches.get(done_before + t)
        B = len(batch["rows"])
        share = [r for r in range(B) if r * world // B == rank] if world > 1 else list(range(B))
        count = sum(1 for r in batch["rows"] for x in r["finalTargets"] if x is not None)
        for p in params:
            p.grad = None
        local = torch.zeros((), dtype=torch.float64, device=acc.device)
        if share:
            inputs, targets = _inputs(batch, share, n_agents)
            with acc.autocast():
                logits, *_ = team.forward(inputs, grad=True)
                ls = loss_sum(logits, targets)
            (ls / count).backward()
            local = ls.detach().double()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        if world > 1:
            torch.distributed.all_reduce(flat)
            torch.distributed.all_reduce(local)
        off = 0
        for p in params:
            p.grad = flat[off:off + p.numel()].view_as(p).clone()
            off += p.numel()
        norm = float(torch.linalg.vector_norm(flat.double()))
        scale = min(1.0, clip / (norm + 1e-6)) if clip > 0 else 1.0
        if scale != 1.0:
            for p in params:
                p.grad.mul_(scale)
        step_lr = lr_at(t, peak, warmup, total, min_lr)
        for g in opt.param_groups:
            g["lr"] = step_lr
        opt.step()
        loss = float(local) / count
        if not math.isfinite(loss) or not math.isfinite(norm):
            raise FloatingPointError(f"training diverged at step {done_before + t}: loss {loss}, gradient norm {norm}")
        losses.append(loss)
        norms.append(norm)
        lrs.append(step_lr)
        if acc.is_main_process:
            log(f"step {done_before + t} loss {loss:.6f} grad norm {norm:.4f} lr {step_lr:.3e}")
    seconds = time.perf_counter() - t0
    result = {"losses": losses, "gradNorms": norms, "lrs": lrs, "processes": world, "seconds": seconds, "out": None}
    acc.wait_for_everyone()
    if out is not None and acc.is_main_process:
        result["out"] = str(save_run(bundle, team, out, start=start, steps=steps, losses=losses, done_before=done_before,
                                     schedule={"lr": peak, "warmupSteps": warmup, "totalSteps": total, "minLr": min_lr}, processes=world, seconds=seconds))
    acc.wait_for_everyone()
    return result


def save_adapters(team: Team, bundle: Bundle, into: Path) -> dict[str, Path]:
    """Each trained adapter as a PEFT folder into/<key> (adapter_config.json, adapter_model.safetensors),
    named for the page: base_model_name_or_path is the run's base id, and playground_run.json says which
    agent it is and the run's configuration (the page's adapter import reads it)."""
    dirs = {}
    cfg = bundle.config
    for key in team.trainable:
        pc = team.peft.peft_config[key]
        pc.base_model_name_or_path = bundle.json["base"]["id"]
        pc.inference_mode = True
        tmp = Path(tempfile.mkdtemp(dir=into))
        team.peft.save_pretrained(str(tmp), selected_adapters=[key], safe_serialization=True)
        src = tmp / key if (tmp / key / "adapter_config.json").is_file() else tmp
        dst = into / key
        shutil.move(str(src), dst)
        shutil.rmtree(tmp, ignore_errors=True)
        agent = next((a for a in bundle.agents if a["adapterKey"] == key), None)
        name = f"{cfg['method']} {agent['name'] if agent and key != 'shared' else key} (PyTorch)"
        (dst / "playground_run.json").write_text(json.dumps({"agent": key, "baseModelId": bundle.json["base"]["id"], "runConfig": cfg, "name": name}, indent=2) + "\n")
        dirs[key] = dst
    return dirs


def save_run(bundle: Bundle, team: Team, out: Path, *, start: str, steps: int, losses: list[float], done_before: int,
             schedule: dict, processes: int, seconds: float) -> Path:
    meta = json.loads(json.dumps(bundle.json))
    cfg = meta["config"]
    tr = meta["training"]
    if start == "initial":
        tr["losses"] = list(losses)
        tr["stepsDone"] = steps
    else:
        tr["losses"] = list(tr["losses"]) + list(losses)
        tr["stepsDone"] = done_before + steps
        cfg["steps"] = max(cfg["steps"], tr["stepsDone"])
    tr.setdefault("phases", []).append({
        "by": f"latent_playground {__version__} (PyTorch {torch.__version__})", "from": start, "firstStep": done_before + 1, "steps": steps,
        **schedule, "processes": processes, "optimizerState": "fresh" if start == "trained" else "as the run's",
    })
    meta["createdAt"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    meta["createdBy"] = "python train"
    meta["results"] = {"evaluation": [], "heldout": []}
    meta["wallSeconds"] = seconds
    with tempfile.TemporaryDirectory() as tmp:
        dirs = save_adapters(team, bundle, Path(tmp))
        return write_bundle(bundle, Path(out), meta, dirs)
