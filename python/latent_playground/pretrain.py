"""Pretrain a base model in PyTorch on a plan the engine wrote (`npm run pretrain -- ... --export-corpus DIR`).

The plan holds everything the engine's pretraining would compute on: the initial weights (init/), every
step's batch (corpus.bin: ids then targets, [batch, S] each), the optimizer's settings and the probe's
held-out skyline batches (plan.json). This trains on exactly those batches with the engine's optimizer
(torch.optim.AdamW, which the engine's kernel follows: decoupled decay, bias correction; no decay on
norms; global-norm clipping; linear warmup then cosine to lr/10) and the engine's loss (mean
cross-entropy over the batch's supervised targets), so the same recipe runs where there is no Node or
WebGPU adapter (a GPU machine with PyTorch), or faster than WebGPU on a CPU at these tiny shapes. It
writes a Hugging Face checkpoint with the engine's tensor names and a training_args.json in the
engine's layout (probe curve, tokens, seconds, the device); `npm run pretrain -- --evaluate OUT` then
adds the engine's closing evaluation.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .base_ref import sha256_file

PLAN_FORMAT = "latent-playground pretrain plan"


class PlanError(ValueError):
    pass


def read_plan(folder: Path) -> dict:
    p = folder / "plan.json"
    try:
        plan = json.loads(p.read_text())
    except FileNotFoundError:
        raise PlanError(f"{folder} has no plan.json: write one with npm run pretrain -- ... --export-corpus {folder}")
    except json.JSONDecodeError as e:
        raise PlanError(f"{p} is not JSON ({e})")
    if plan.get("format") != PLAN_FORMAT or plan.get("version") != 1:
        raise PlanError(f"{p} is not a version-1 pretraining plan (format {plan.get('format')!r}, version {plan.get('version')!r})")
    c = plan["corpus"]
    dtype = {"uint16": np.uint16, "uint32": np.uint32}.get(c["dtype"])
    if dtype is None:
        raise PlanError(f"{p}: corpus dtype {c['dtype']!r} is not uint16 or uint32")
    want = sum(2 * c["rowsPerStep"] * s for s in c["seqLens"]) * np.dtype(dtype).itemsize
    try:
        have = (folder / c["file"]).stat().st_size
    except FileNotFoundError:
        raise PlanError(f"{folder} has no {c['file']} (the plan's batches)")
    if have != want:
        raise PlanError(f"{folder / c['file']} holds {have} bytes; the plan's {len(c['seqLens'])} steps need {want}")
    if not (folder / "init" / "config.json").exists():
        raise PlanError(f"{folder}/init has no config.json (the plan's initial weights)")
    return plan


def lr_at(step: int, o: dict) -> float:
    """The engine's lrAt (src/model/train.ts): `step` is 1-based."""
    lr, min_lr, warm, total = o["lr"], o["minLr"], o["warmupSteps"], o["totalSteps"]
    if warm > 0 and step <= warm:
        return lr * step / warm
    span = max(1, total - warm)
    t = min(1.0, max(0.0, (step - warm) / span))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t))


def batches(folder: Path, plan: dict):
    """(ids, targets) per step as int64 arrays [batch, S]; ignored targets are -100."""
    c = plan["corpus"]
    dtype = np.uint16 if c["dtype"] == "uint16" else np.uint32
    data = np.memmap(folder / c["file"], dtype=dtype, mode="r")
    rows, off = c["rowsPerStep"], 0
    for S in c["seqLens"]:
        n = rows * S
        ids = np.asarray(data[off : off + n], dtype=np.int64).reshape(rows, S)
        tgt = np.asarray(data[off + n : off + 2 * n], dtype=np.int64).reshape(rows, S)
        tgt[tgt == c["ignoredTarget"]] = -100
        off += 2 * n
        yield ids, tgt


def probe(model, cases, device) -> dict:
    """The engine's SkylineProbe: an episode counts when every answer token is the argmax under teacher forcing."""
    import torch

    out = {}
    with torch.no_grad():
        for c in cases:
            logits = model(input_ids=c["ids"].to(device)).logits
            pred = logits.argmax(-1).cpu()
            tgt = c["targets"]
            ok = ((pred == tgt) | (tgt < 0)).all(dim=1)
            out[c["name"]] = ok.float().mean().item()
    return out


def pretrain(folder: Path, out: Path, *, device: str | None = None, log_every: int = 250, force: bool = False) -> dict:
    import torch
    import torch.nn.functional as F
    import transformers
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    plan = read_plan(folder)
    if out.exists() and not (force and (out / "config.json").exists()):
        raise FileExistsError(f"{out} exists: choose another --out (or --force to replace a checkpoint there)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    init = folder / "init"
    # sdpa with no mask is causal attention; rows are padded at their end, so no row attends to padding
    model = AutoModelForCausalLM.from_pretrained(str(init), dtype=torch.float32, attn_implementation="sdpa").to(device)
    model.train()
    o = plan["optimizer"]
    decay = [p for n, p in model.named_parameters() if not n.endswith(o["noDecaySuffix"])]
    no_decay = [p for n, p in model.named_parameters() if n.endswith(o["noDecaySuffix"])]
    params = decay + no_decay
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], foreach=False,
    )
    cases = [
        {"name": c["name"], "ids": torch.tensor(c["ids"], dtype=torch.int64).view(c["n"], c["S"]),
         "targets": torch.tensor(c["targets"], dtype=torch.int64).view(c["n"], c["S"])}
        for c in plan["probe"]
    ]
    steps, every = plan["steps"], plan["probeEvery"]
    pad = json.loads((init / "config.json").read_text()).get("pad_token_id")
    probes, tokens, real_tokens, loss_v = [], 0, 0, float("nan")
    t0 = time.perf_counter()
    for step, (ids, tgt) in enumerate(batches(folder, plan), start=1):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, o)
        x = torch.from_numpy(ids).to(device)
        y = torch.from_numpy(tgt).to(device)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, o["clip"]) if o["clip"] > 0 else torch.tensor(0.0)
        opt.step()
        loss_v = loss.item()
        if not math.isfinite(loss_v):
            raise FloatingPointError(f"training diverged at step {step}: loss is {loss_v} (try a lower learning rate)")
        tokens += ids.size
        real_tokens += int((ids != pad).sum()) if pad is not None else ids.size
        if step % log_every == 0 or step == 1 or step == steps:
            el = time.perf_counter() - t0
            print(f"step {step:5d}/{steps}  loss {loss_v:.4f}  lr {lr_at(step, o):.2e}  grad-norm {float(norm):.3f}  {tokens / el:.0f} tok/s", flush=True)
        if cases and every > 0 and (step % every == 0 or step == steps):
            model.eval()
            acc = probe(model, cases, device)
            model.train()
            probes.append({"step": step, "accuracy": acc})
            print(f"probe @{step}: held-out skyline " + "  ".join(f"{k} {v:.3f}" for k, v in acc.items()), flush=True)
    seconds = time.perf_counter() - t0
    with safe_open(str(init / "model.safetensors"), framework="pt") as f:
        names = list(f.keys())
    state = model.state_dict()
    tensors = {n: state[n].detach().to("cpu", torch.float32).contiguous() for n in names}
    if device.startswith("cuda"):
        adapter = f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(torch.device(device))}"
    else:
        n = torch.get_num_threads()
        adapter = f"PyTorch {torch.__version__} on the CPU ({n} thread{'s' if n > 1 else ''})"
    provenance = {
        "preset": plan["preset"], **({"initFrom": plan["initFrom"]} if "initFrom" in plan else {}),
        "steps": steps, "seed": plan["seed"], "batch": plan["batch"], "lr": o["lr"], "warmupSteps": o["warmupSteps"],
        "accumSteps": 1, "beta2": o["beta2"], "weightDecay": o["weightDecay"], "seqLen": plan["seqLen"], "buckets": plan["buckets"],
        "recipe": plan["recipe"], "finalLoss": loss_v, "unigramEntropy": plan["unigramEntropy"],
        "tokens": tokens, "realTokens": real_tokens, "seconds": seconds, "adapter": adapter, "probes": probes,
        "trainer": {
            "name": "python -m latent_playground pretrain", "torch": torch.__version__, "transformers": transformers.__version__,
            "plan": "npm run pretrain -- --export-corpus (the engine's corpus, initial weights and optimizer settings)",
            "corpusSha256": sha256_file(folder / plan["corpus"]["file"]),
        },
    }
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if (init / name).exists():
            shutil.copyfile(init / name, tmp / name)
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(tmp / "model.safetensors", 0o644)  # safetensors writes it owner-only
    (tmp / "training_args.json").write_text(json.dumps(provenance, indent=2) + "\n")
    if out.exists():
        aside = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(aside)
        tmp.rename(out)
        shutil.rmtree(aside)
    else:
        tmp.rename(out)
    return {"out": str(out), "seconds": seconds, "finalLoss": loss_v, "probes": probes}
