"""python -m latent_playground eval RUN [--split heldout] | train RUN --steps N | pretrain PLAN --out DIR

  eval   rebuilds the run's agents on transformers + peft (one base, one named adapter per agent) and
         prints the tab's table: accuracy (Wilson 95% interval), validity, entropy, message size and
         loss per split, then the controls of its channel on heldout
  train  continues the run (or, --from initial, restarts it from its initial adapters) in PyTorch
         autograd and writes a new bundle: PEFT adapters the page imports and a new run.json;
         `accelerate launch [--num_processes K] -m latent_playground train ...` runs it data-parallel
  pretrain  trains a base model on a plan the engine wrote (npm run pretrain -- ... --export-corpus PLAN:
         its initial weights, every batch, the optimizer and the probe) and writes the checkpoint;
         npm run pretrain -- --evaluate DIR adds the engine's closing evaluation
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .bundle import BundleError, read_bundle


def _threads(n: int | None):
    from .threads import set_threads

    set_threads(n)  # default: this process's share of the cores it may run on (threads.py)


def _processes(cpu: bool):
    """(rank, processes, device) under accelerate launch / torchrun (WORLD_SIZE > 1), else None."""
    import os

    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import Accelerator

    acc = Accelerator(cpu=cpu or not torch.cuda.is_available())
    return acc.process_index, acc.num_processes, str(acc.device)


def cmd_eval(a) -> int:
    import torch

    from .agents import Team
    from .evaluate import Evaluator, controls_for, format_table
    from .numfmt import to_fixed
    from .quantize import BIT_WIDTHS, BITS_TOLERANCE, smallest_keeping_bits
    from .tasks import make_task
    from .tokenizer import load_tokenizer

    _threads(a.threads)
    procs = _processes(a.device == "cpu")
    rank, world = procs[:2] if procs else (0, 1)
    b = read_bundle(a.run)
    try:
        which = "initial" if a.adapters == "initial" else "trained"
        keys = b.adapter_keys
        dirs = {k: b.adapter_dir(k, initial=which == "initial" or not b.json["files"]["adapters"]) for k in keys} if keys else None
        device = procs[2] if procs else a.device or ("cuda" if torch.cuda.is_available() else "cpu")
        # c2c: --adapters initial evaluates the initial fuser (A = 0, gate = 0; c2c.py)
        team = Team(b, dirs, base=a.base, dtype=a.dtype, device=device, attn=a.attn, initial_fuser=which == "initial")
        tk = load_tokenizer(b.base_dir, b.json["tokens"])
        ev = Evaluator(team, tk, batch=a.batch, shard=(rank, world))  # data parallel under accelerate launch
        splits = a.split or [s for s in ("heldout", "ood") if s in b.episodes]
        rows = [ev.evaluate(s) for s in splits]
        controls = []
        if not a.no_controls and "heldout" in b.episodes:
            controls = [{"control": c, **ev.evaluate("heldout", c)} for c in controls_for(b.method["channel"])]
        bits = None
        if a.bits:
            if b.method["channel"] != "latent" or "heldout" not in b.episodes:
                raise SystemExit("--bits: the run must be a latent method with heldout episodes")
            held = next((r for r in rows if r["split"] == "heldout"), None) or ev.evaluate("heldout")
            levels = {k: ev.evaluate("heldout", bits=k)["accuracy"] for k in BIT_WIDTHS}
            floats = team.L * 2 * team.W
            k = smallest_keeping_bits(held["accuracy"], levels)
            bits = {"unquantized": held["accuracy"], "levels": levels, "smallest": k, "bitsPerPosition": None if k is None else k * floats,
                    "floatsPerPosition": floats, "textBitsPerToken": math.log2(team.V)}
        if rank != 0:
            return 0
        task = make_task(b.config["task"], b.config["difficulty"])
        print(f"{b.method['name']} on {b.config['task']} d{b.config['difficulty']}, seed {b.config['seed']}, "
              f"{b.json['training']['stepsDone']} steps ({f'{which} adapters' if keys else f'{which} c2c fuser' if team.fuser is not None else 'no adapters'}), {device}, {a.dtype}"
              + (f", {world} processes" if world > 1 else ""))
        print(format_table(rows, controls, {s: task.chance_for(s) for s in ("heldout", "ood")}))
        if bits:
            print(f"\nreceived K/V quantised (heldout accuracy; float32 {to_fixed(bits['unquantized'], 3)}): "
                  + ", ".join(f"{k} bit {to_fixed(v, 3)}" for k, v in bits["levels"].items())
                  + f"; smallest k within {BITS_TOLERANCE}: {bits['smallest']} ({bits['bitsPerPosition']} bits per latent position"
                  + f" against log2 V = {bits['textBitsPerToken']:.2f} bits per text token)")
        if a.json:
            Path(a.json).write_text(json.dumps({"rows": rows, "controls": controls, **({"bits": bits} if bits else {})}, indent=1) + "\n")
        return 0
    finally:
        b.close()


def cmd_train(a) -> int:
    from .tokenizer import load_tokenizer
    from .train import check_out, train

    _threads(a.threads)
    resume, ckdir = None, None
    if a.resume:
        ck, state, tensors = resume_from(a)
        resume, src = (state, tensors), ck
        ckdir = ck.parent if (ck.parent / "latest").is_file() else None
    elif not a.run or a.steps is None:
        raise ValueError("train needs RUN and --steps N (or --resume CHECKPOINT)")
    else:
        src = a.run
    b = read_bundle(src)
    try:
        if resume:
            out = Path(a.out or resume[0]["settings"]["out"] or Path(src).with_name(f"{Path(src).name}-done"))
        else:
            run = Path(a.run)
            out = Path(a.out) if a.out else run.with_name(f"{run.stem}-torch{a.steps}")
        check_out(out, a.force)
        tk = load_tokenizer(b.base_dir, b.json["tokens"])
        r = train(b, tk, a.steps, start=a.start or "trained", out=out, lr=a.lr, dtype=a.dtype or "float32", attn=a.attn or "eager",
                  precision=a.precision or "no", base=a.base, cpu=a.cpu, grad_accum=a.grad_accum, per_device_batch=a.per_device_batch,
                  grad_checkpointing=a.grad_checkpointing, checkpoint_every=a.checkpoint_every, checkpoint_dir=ckdir, resume=resume,
                  eval_every=a.eval_every, final_eval=not a.no_eval, tensorboard=Path(a.tensorboard) if a.tensorboard else None, force=a.force)
        if r["stopped"]:
            return 143  # 128 + SIGTERM, as a process killed by it; the checkpoint is written
        if r["out"]:
            print(f"wrote {r['out']} ({r['processes']} process{'es' if r['processes'] > 1 else ''}, {r['seconds']:.1f} s)")
        if a.json and r["out"]:  # (the evaluation at the end is in it too)
            Path(a.json).write_text(json.dumps({k: v for k, v in r.items()}, indent=1) + "\n")
        return 0
    finally:
        b.close()


def resume_from(a):
    """The checkpoint to resume, with the flags that set the numbers held to the checkpoint's (they are
    its; a different one would not continue the run but start another)."""
    from .checkpoint import read_checkpoint

    if a.run:
        raise ValueError("train --resume CHECKPOINT continues the checkpoint's run: give no RUN")
    ck, state, tensors = read_checkpoint(Path(a.resume))
    ph, st = state["phase"], state["settings"]
    # --dtype and --attn at their defaults (float32, eager) read as not given: the checkpoint's hold
    a.dtype, a.attn = (None if a.dtype == "float32" else a.dtype), (None if a.attn == "eager" else a.attn)
    mine = {"--steps": (a.steps, ph["steps"]), "--from": (a.start, ph["start"]), "--lr": (a.lr, ph["lr"]), "--dtype": (a.dtype, st["dtype"]),
            "--attn": (a.attn, st["attn"]), "--precision": (a.precision, st["precision"]), "--base": (a.base, st["base"]),
            "--grad-accum": (a.grad_accum, st["gradAccum"]), "--per-device-batch": (a.per_device_batch, st["perDeviceBatch"]),
            "--grad-checkpointing": (a.grad_checkpointing or None, st["gradCheckpointing"] or None)}
    for flag, (given, theirs) in mine.items():
        if given is not None and given != theirs:
            raise ValueError(f"--resume: {flag} {given} differs from the checkpoint's ({theirs}); a resumed run keeps its settings")
    return ck, state, tensors


def cmd_pretrain(a) -> int:
    from .pretrain import pretrain

    _threads(a.threads)
    r = pretrain(Path(a.plan), Path(a.out), device=a.device, log_every=a.log_every, force=a.force)
    print(f"wrote {r['out']} in {r['seconds']:.1f} s (final loss {r['finalLoss']:.4f}); next: npm run pretrain -- --evaluate {r['out']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m latent_playground", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base", help="the base model by name or folder (default: the bundle's base/)")
    common.add_argument("--dtype", choices=["float32", "float64", "bfloat16"], default="float32",
                        help="weights and activations (default float32, the engine's); float64: a float64 reference, its RMSNorms, "
                             "attention softmax (sdpa) and RoPE tables too (agents.py); bfloat16: a bf16 base with float32 adapters")
    common.add_argument("--attn", default="eager", help="transformers attention implementation (eager, sdpa, ...)")
    common.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads per process (default: OMP_NUM_THREADS if set, else the cores this process may use divided by the processes on this machine)")
    common.add_argument("--json", help="also write the results as JSON")
    e = sub.add_parser("eval", parents=[common], help="evaluate a run bundle: the tab's table with the controls")
    e.add_argument("run", help="run bundle folder or zip")
    e.add_argument("--split", action="append", choices=["train", "heldout", "ood"], help="split to evaluate (repeatable; default heldout and ood)")
    e.add_argument("--adapters", choices=["trained", "initial"], default="trained")
    e.add_argument("--no-controls", action="store_true")
    e.add_argument("--bits", action="store_true", help="also heldout with the received K/V quantised to 16, 8, 4, 2, 1 bits per float (src/mas/quantize.ts schemes)")
    e.add_argument("--batch", type=int, default=None, help="episodes per batch (default the run's)")
    e.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when there is one)")
    t = sub.add_parser("train", parents=[common], help="continue (or restart) a run's training; writes a new bundle")
    t.add_argument("run", nargs="?", help="run bundle folder or zip (not with --resume)")
    t.add_argument("--steps", type=int, default=None, help="steps to train (with --resume: the checkpoint's)")
    t.add_argument("--from", dest="start", choices=["trained", "initial"], default=None,
                   help="trained: continue from the trained adapters with the next batches of the run's stream and a new schedule; "
                        "initial: the run again from its initial adapters and first batches, on its own schedule")
    t.add_argument("--out", help="the new bundle's folder (default RUN-torchN beside RUN); checkpoints go to OUT-checkpoints/")
    t.add_argument("--force", action="store_true", help="replace the bundle already in --out (and start over from scratch: its checkpoints are removed)")
    t.add_argument("--resume", metavar="CHECKPOINT", help="continue a run bit for bit from a checkpoint (OUT-checkpoints, or one step-N folder in it)")
    t.add_argument("--checkpoint-every", type=int, default=0, metavar="N", help="write a checkpoint every N steps (0: only on SIGTERM); one is always written on SIGTERM")
    t.add_argument("--grad-accum", type=int, default=None, metavar="K", help="K micro-batches per step and process (batch = per-device x processes x K)")
    t.add_argument("--per-device-batch", type=int, default=None, metavar="P", help="rows per micro-batch and process (batch = P x processes x K)")
    t.add_argument("--grad-checkpointing", action="store_true", help="recompute each decoder layer's activations in the backward pass (less memory, about a third more compute)")
    t.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help="evaluate the heldout split every N steps (0: off; default the run's config.evalEvery, as the engine does)")
    t.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end (every split, the controls on heldout)")
    t.add_argument("--tensorboard", metavar="DIR", help="TensorBoard scalars into DIR/<method>/seed<seed>/")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default the run's)")
    t.add_argument("--precision", choices=["no", "bf16", "fp16"], default=None,
                   help="mixed precision (torch.autocast; default no), e.g. bf16 on a GPU; the adapters and AdamW's state stay float32")
    t.add_argument("--cpu", action="store_true", help="stay on the CPU even with a GPU")
    from .new_run import add_parser as add_new

    add_new(sub)
    from .capacity_cli import add_parser as add_capacity

    add_capacity(sub)
    pt = sub.add_parser("pretrain", help="train a base model on a plan written by npm run pretrain -- --export-corpus")
    pt.add_argument("plan", help="the plan folder (plan.json, corpus.bin, init/)")
    pt.add_argument("--out", required=True, help="the checkpoint folder to write")
    pt.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when there is one)")
    pt.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    pt.add_argument("--log-every", type=int, default=250)
    pt.add_argument("--force", action="store_true", help="replace the checkpoint already in --out")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        from .capacity_cli import cmd_capacity
        from .new_run import cmd_new

        return {"eval": cmd_eval, "train": cmd_train, "pretrain": cmd_pretrain, "new": cmd_new, "capacity": cmd_capacity}[a.cmd](a)
    except (BundleError, ValueError, FileExistsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
