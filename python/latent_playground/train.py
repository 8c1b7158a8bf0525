"""DiffMAS training in PyTorch autograd (src/mas/run.ts trainStep, src/model/train.ts): the final
agent's mean cross-entropy over the answer targets of a batch, the gradient through the senders'
caches and latent steps (diffmas, diffmas-full) or into the receiver alone (diffmas-detached; and the
trained baselines single-trained and skyline-trained, whose one agent reads no cache at all), global
gradient-norm clipping (scale min(1, clip / (norm + 1e-6))), AdamW with the run's betas, eps and decay,
and the run's schedule (linear warmup, then cosine to minLr, or constant lr: config.lrSchedule).

Data parallel over processes (accelerate launch, torchrun): each process takes a contiguous share of
every batch's rows, its loss is its share of the batch's loss sum over the batch's whole target count,
and the gradients are summed across processes, so any number of processes takes the step one process
takes with the whole batch.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import __version__
from .agents import Team, loss_sum
from .bundle import Bundle, write_bundle
from .numfmt import to_fixed
from .train_eval import InTraining, heldout_point, run_results
from .curriculum import run_stream
from .tasks import batch_stream, make_task


LR_SCHEDULES = ("cosine", "constant")


def lr_at(step: int, lr: float, warmup: int, total: int, min_lr: float, schedule: str = "cosine") -> float:
    """train.ts lrAt: linear warmup over `warmup` steps, then cosine from lr to min_lr at `total`
    (schedule 'cosine', config.lrSchedule's default) or lr held (schedule 'constant')."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    if warmup > 0 and step <= warmup:
        return lr * step / warmup
    if schedule == "constant":
        return lr
    span = max(1, total - warmup)
    t = min(1.0, max(0.0, (step - warmup) / span))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t))


class Batches:
    """The run's training batches by number (1-based): the bundle's own, then (char, word and chat renderings) the same
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
            if b.rendering not in ("char", "word", "chat"):
                why = f"the Python port draws the char, word and chat renderings (render.py), not {b.rendering!r}"
            else:
                from .agents import plan_of
                from .render import rendering_of_bundle

                cfg = b.config
                # text-trained: the receivers' prompts hold T message slots (text-channel.ts textTrainedBatcher)
                T = cfg["textBudget"] if b.method["name"] == "text-trained" else None
                # a curriculum (curriculum.py) draws each stage's stream in turn; without one, the run's own
                stream = run_stream(cfg, lambda task: batch_stream(task, self.tk, plan_of(b), b.method["skyline"], cfg["seed"], cfg["batch"], b.json["maxAnswerTokens"], text_budget=T, rendering=rendering_of_bundle(b)))
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


def train(bundle: Bundle, tokenizer, steps: int | None, *, start: str = "trained", out: Path | None = None, lr: float | None = None,
          dtype: str = "float32", attn: str = "eager", precision: str = "no", base: str | None = None, cpu: bool = False,
          log=print, grad_accum: int | None = None, per_device_batch: int | None = None, grad_checkpointing: bool = False,
          checkpoint_every: int = 0, checkpoint_dir: Path | None = None, resume: tuple[dict, dict] | None = None,
          eval_every: int | None = 0, final_eval: bool = False, tensorboard: Path | None = None, force: bool = False) -> dict:
    """resume: (state, tensors) of a checkpoint (checkpoint.read_checkpoint) whose bundle is `bundle`: the
    phase goes on from its step with its settings, parameters, AdamW state and batch position."""
    from accelerate import Accelerator

    from . import grad_checkpoint
    from .checkpoint import StopFlag, checkpoint_root, load_tensors, save_tensors, write_checkpoint
    from .microbatch import batch_tokens, micro_batches
    from .tb import Board

    state = tensors = None
    if resume is not None:
        state, tensors = resume
        ph, st = state["phase"], state["settings"]
        start, steps, lr = ph["start"], ph["steps"], ph["lr"]
        dtype, attn, precision, base = st["dtype"], st["attn"], st["precision"], st["base"]
        grad_accum, per_device_batch, grad_checkpointing = st["gradAccum"], st["perDeviceBatch"], st["gradCheckpointing"]
    if bundle.method["train"] == "none":
        raise ValueError(f"method {bundle.method['name']} trains nothing")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if eval_every is None:  # the run's own held-out evaluation interval (RunConfig.evalEvery), as the engine evaluates
        eval_every = int(bundle.config.get("evalEvery", 0) or 0)
    for name, v in (("--checkpoint-every", checkpoint_every), ("--eval-every", eval_every)):
        if v < 0:
            raise ValueError(f"{name} must be 0 (off) or a number of steps, got {v}")
    # without a GPU, accelerate sets up the (gloo) process group only when told it runs on the CPU
    acc = Accelerator(cpu=cpu or not torch.cuda.is_available())
    autocast = autocast_for(acc.device, precision)
    rank, world = acc.process_index, acc.num_processes
    source = state["source"] if state else {"config": bundle.config, "training": bundle.json["training"], "results": bundle.json.get("results", {})}
    cfg = source["config"]
    opt_cfg = source["training"]["optimizer"]
    micro_batches(cfg["batch"], world, rank, per_device_batch, grad_accum)  # refuses a split that does not divide, before loading anything
    keys = bundle.adapter_keys
    initial = start == "initial"
    if state:  # the checkpoint's own adapters (their exact values come from its state below)
        dirs = {k: bundle.adapter_dir(k) for k in keys}
    else:
        dirs = {k: bundle.adapter_dir(k, initial=initial or not bundle.json["files"]["adapters"]) for k in keys}
    team = Team(bundle, dirs, base=base, dtype=dtype, device=acc.device, attn=attn, trainable=True, initial_fuser=initial and not state)
    params = team.parameters()
    adapter_dtype = full_precision_adapters(params)
    if grad_checkpointing:
        grad_checkpoint.enable(team.decoder)
    if state:
        done_before = state["phase"]["doneBefore"]
        sch = state["phase"]["schedule"]
        peak, warmup, total, min_lr = sch["lr"], sch["warmupSteps"], sch["totalSteps"], sch["minLr"]
        kind = sch.get("lrSchedule", "cosine")
    else:
        done_before = 0 if initial else bundle.json["training"]["stepsDone"]
        peak = lr if lr is not None else cfg["lr"]
        if initial:
            # the run itself again: its schedule over config.steps
            warmup, total, min_lr = opt_cfg["warmupSteps"], cfg["steps"], opt_cfg["minLr"] * (peak / cfg["lr"])
        else:
            # a new phase: fresh AdamW moments (a bundle holds none), its own warmup and cosine over these steps
            warmup, total, min_lr = min(50, math.ceil(steps / 10)), steps, peak / 10
        kind = cfg.get("lrSchedule") or "cosine"  # config.lrSchedule: after the warmup, cosine (default) or constant
    schedule = {"lr": peak, "warmupSteps": warmup, "totalSteps": total, "minLr": min_lr, "lrSchedule": kind}
    opt = torch.optim.AdamW(params, lr=peak, betas=(opt_cfg["beta1"], opt_cfg["beta2"]), eps=opt_cfg["eps"],
                            weight_decay=opt_cfg["weightDecay"], foreach=False)
    clip = opt_cfg["clip"]
    batches = Batches(bundle, tokenizer)
    quiz = None
    if cfg.get("quizLoss"):
        from .quiz import QuizBatches
        from .render import rendering

        quiz = QuizBatches(make_task(cfg["task"], cfg["difficulty"]), tokenizer, rendering(bundle.rendering, bundle.base_dir), team.plan, bundle.method["skyline"], bundle.json["maxAnswerTokens"])
    n_agents = len(team.plan)
    latent = sum(a.latent_steps for a in team.plan if not a.final) if team.trace else 0
    losses, norms, lrs, first, before_s = [], [], [], 1, 0.0
    heldout = [] if state is None else list(state.get("heldout", []))
    if state:
        load_tensors(tensors, params, opt)
        first = state["step"] + 1
        losses, norms, lrs, before_s = list(state["losses"]), list(state["gradNorms"]), list(state["lrs"]), state["seconds"]
        # the stream's position: the batch the checkpoint took last is the one this stream gives at that number
        if state["step"] and batches.get(done_before + state["step"])["signature"] != state["lastBatchSignature"]:
            raise ValueError(f"checkpoint: batch {done_before + state['step']} of this stream is not the one the run took (the tasks changed?)")
    settings = {"dtype": dtype, "attn": attn, "precision": precision, "base": base, "gradAccum": grad_accum, "perDeviceBatch": per_device_batch,
                "gradCheckpointing": grad_checkpointing, "out": str(out) if out else None}
    ckroot = Path(checkpoint_dir) if checkpoint_dir else (checkpoint_root(out) if out else None)
    stale = ckroot is not None and state is None and ckroot.exists()
    acc.wait_for_everyone()  # every process has looked before rank 0 removes anything
    if stale:
        if not force:
            raise FileExistsError(f"{ckroot} holds checkpoints of an earlier run: resume it with --resume {ckroot}, or pass --force to start over")
        if acc.is_main_process:
            shutil.rmtree(ckroot)
    acc.wait_for_everyone()
    board = Board(tensorboard if acc.is_main_process else None, bundle.config, write_config=state is None)
    evaluate = InTraining(team, tokenizer, (rank, world), autocast)
    if acc.is_main_process:
        log(f"{world} process{'es' if world > 1 else ''} on {acc.device}: base {dtype}"
            f"{f', autocast {precision}' if precision != 'no' else ''}, adapters and AdamW state {adapter_dtype} (trainable), "
            f"{torch.get_num_threads()} torch thread{'s' if torch.get_num_threads() > 1 else ''} per process"
            f"{', gradient checkpointing' if grad_checkpointing else ''}; steps {done_before + first}..{done_before + steps}")

    def checkpoint(t: int, sig: str, seconds: float) -> Path | None:
        if ckroot is None:
            return None
        path = None
        if acc.is_main_process:
            saved = save_tensors(params, opt)
            st = {"step": t, "stepsDone": done_before + t, "nextBatch": done_before + t + 1, "lastBatchSignature": sig,
                  "phase": {"start": start, "steps": steps, "doneBefore": done_before, "lr": lr, "schedule": schedule},
                  "settings": settings, "source": source, "heldout": heldout, "losses": losses, "gradNorms": norms, "lrs": lrs, "seconds": seconds, "processes": world}
            path = write_checkpoint(ckroot, done_before + t, lambda p: save_run(bundle, team, p, start=start, steps=t, losses=losses, done_before=done_before,
                                                                              schedule=schedule, processes=world, seconds=seconds, source=source, planned=steps,
                                                                              results=run_results(source, start, heldout)), st, saved,
                                    protect=bundle.root if state else None)
            log(f"checkpoint {path}")
        acc.wait_for_everyone()
        return path

    t0 = time.perf_counter()
    stopped, last_ck, t = False, None, first - 1
    with StopFlag() as stop:
        for t in range(first, steps + 1):
            ts = time.perf_counter()
            n = done_before + t
            batch = batches.get(n)
            micro = micro_batches(len(batch["rows"]), world, rank, per_device_batch, grad_accum)
            # the quiz loss (quiz.py): every question of each row's table, the mean over all their answer tokens
            count = quiz.count(batch) if quiz else sum(1 for r in batch["rows"] for x in r["finalTargets"] if x is not None)
            for p in params:
                p.grad = None
            local = torch.zeros((), dtype=torch.float64, device=acc.device)
            for rows in micro:
                inputs, targets = _inputs(batch, rows, n_agents)
                fanout = 1
                if quiz:
                    inputs, targets, fanout = quiz.inputs(batch, rows, inputs)
                with autocast():
                    logits, *_ = team.forward(inputs, grad=True, fanout=fanout)
                    ls = loss_sum(logits, targets)
                (ls / count).backward()
                local = local + ls.detach().double()
                del logits, ls
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
            step_lr = lr_at(t, peak, warmup, total, min_lr, kind)
            for g in opt.param_groups:
                g["lr"] = step_lr
            opt.step()
            loss = float(local) / count
            if not math.isfinite(loss) or not math.isfinite(norm):
                raise FloatingPointError(f"training diverged at step {n}: loss {loss}, gradient norm {norm}")
            losses.append(loss)
            norms.append(norm)
            lrs.append(step_lr)
            sec = time.perf_counter() - ts
            tokens = batch_tokens(batch, n_agents, latent)
            if acc.is_main_process:
                log(f"step {n} loss {loss:.6f} grad norm {norm:.4f} lr {step_lr:.3e} {sec:.3f} s/step {tokens / sec:.0f} tok/s")
            board.step(n, loss, step_lr, norm, sec, tokens)
            halt = stop.set
            if world > 1:  # every process stops at the same step
                f = torch.tensor([int(halt)], device=acc.device)
                torch.distributed.all_reduce(f, op=torch.distributed.ReduceOp.MAX)
                halt = bool(f.item())
            if eval_every and t % eval_every == 0 and t < steps and not halt and "heldout" in bundle.episodes:
                rows_ = evaluate.splits(["heldout"])
                if acc.is_main_process:
                    log(f"step {n} heldout accuracy {to_fixed(rows_[0]['accuracy'], 3)} loss {to_fixed(rows_[0]['loss'], 4)}")
                board.evaluation(n, rows_)
                board.flush()
                heldout.append(heldout_point(n, rows_[0]))
            if halt or (checkpoint_every and t % checkpoint_every == 0 and t < steps):
                last_ck = checkpoint(t, batch["signature"], before_s + time.perf_counter() - t0)
            if halt:
                stopped = True
                break
    seconds = before_s + time.perf_counter() - t0
    result = {"losses": losses, "gradNorms": norms, "lrs": lrs, "processes": world, "seconds": seconds, "out": None, "stopped": stopped,
              "stepsDone": done_before + t, "checkpoint": str(last_ck) if last_ck else None, "evaluation": None}
    if stopped:
        if acc.is_main_process:
            log(f"stopped by SIGTERM after step {done_before + t}" + (f": resume with --resume {ckroot}" if last_ck else " (no --out: no checkpoint)"))
        board.close()
        return result
    if final_eval:
        result["evaluation"] = evaluate.final(board, done_before + steps, log if acc.is_main_process else None)
        held = next((r for r in result["evaluation"]["rows"] if r["split"] == "heldout"), None)
        if held is not None:
            heldout.append(heldout_point(done_before + steps, held))
    board.close()
    acc.wait_for_everyone()
    if out is not None and acc.is_main_process:
        result["out"] = str(save_run(bundle, team, out, start=start, steps=steps, losses=losses, done_before=done_before,
                                     schedule=schedule, processes=world, seconds=seconds, source=source, replace=force,
                                     results=run_results(source, start, heldout, result["evaluation"])))
        if ckroot is not None and ckroot.is_dir():
            shutil.rmtree(ckroot, ignore_errors=True)  # the bundle holds the run now
    acc.wait_for_everyone()
    return result


def autocast_for(device: torch.device, precision: str):
    """--precision as torch.autocast on the process's device (bf16, fp16; "no": none). Done here rather
    than by accelerate's mixed_precision, whose process-wide state cannot change within one process."""
    if precision == "no":
        return nullcontext
    if precision not in ("bf16", "fp16"):
        raise ValueError(f"--precision must be no, bf16 or fp16, got {precision!r}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def full_precision_adapters(params: list[torch.nn.Parameter]) -> str:
    """Trainable adapters are float32 (float64 in float64 mode) whatever the base's dtype (--dtype
    bfloat16, --precision bf16): peft upcasts them on load, and this makes sure of it, so AdamW's
    moments and updates are float32 too. Returns the dtype's name."""
    for p in params:
        if p.dtype not in (torch.float32, torch.float64):
            p.data = p.data.float()
    kinds = sorted({str(p.dtype).removeprefix("torch.") for p in params})
    return "/".join(kinds)


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
        if team.slot_offsets is not None:  # config.latentSlotOffset: the offsets beside the PEFT files (slot_offset.py)
            team.slot_offsets.save(key, dst)
        (dst / "playground_run.json").write_text(json.dumps({"agent": key, "baseModelId": bundle.json["base"]["id"], "runConfig": cfg, "name": name}, indent=2) + "\n")
        dirs[key] = dst
    return dirs


def save_run(bundle: Bundle, team: Team, out: Path, *, start: str, steps: int, losses: list[float], done_before: int,
             schedule: dict, processes: int, seconds: float, source: dict | None = None, planned: int | None = None,
             replace: bool = False, results: dict | None = None) -> Path:
    """The run after `steps` steps of this phase as a bundle at `out`. source: the config and training of
    the bundle the phase started from (a checkpoint's bundle has its own); planned: the phase's steps
    when this is a checkpoint part of the way; replace: an existing bundle at `out` is replaced once the
    new one is complete (train --force); results: run.json's results (evaluation rows, heldout during
    training, controls), as the page's import reads them."""
    meta = json.loads(json.dumps(bundle.json))
    if source is not None:
        meta["config"], meta["training"] = json.loads(json.dumps(source["config"])), json.loads(json.dumps(source["training"]))
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
        **({"checkpointOf": planned} if planned is not None and planned != steps else {}),
    })
    meta["createdAt"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    meta["createdBy"] = "python train" if planned is None or planned == steps else "python train (checkpoint)"
    meta["results"] = results or {"evaluation": [], "heldout": []}
    meta["wallSeconds"] = seconds
    out = Path(out)
    target = out
    if replace and out.exists():
        target = out.with_name(f".{out.name}.new-{os.getpid()}")
    with tempfile.TemporaryDirectory() as tmp:
        dirs = save_adapters(team, bundle, Path(tmp))
        # c2c: the trained fuser (c2c.py) instead of adapters
        fuser = team.fuser.save(Path(tmp) / "c2c_fuser.safetensors") if team.fuser is not None else None
        written = write_bundle(bundle, target, meta, dirs, fuser_file=fuser)
    if target != out:
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(target, out)
        shutil.rmtree(old, ignore_errors=True)
        written = out
    return written


def check_out(out: Path, force: bool) -> None:
    """A repeated train to an existing folder: refused without --force; with it, only a run bundle (or an
    empty folder) is replaced, never another folder."""
    out = Path(out)
    if not out.exists():
        return
    if not force:
        raise FileExistsError(f"{out} already exists: pass --force to replace it, or choose another --out")
    if not out.is_dir() or not ((out / "run.json").is_file() or not any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not a run bundle: --force replaces only a run bundle; choose another --out")
