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
    import torch

    if n:
        torch.set_num_threads(n)


def cmd_eval(a) -> int:
    import torch

    from .agents import Team
    from .evaluate import Evaluator, controls_for, format_table
    from .quantize import BIT_WIDTHS, BITS_TOLERANCE, smallest_keeping_bits
    from .tasks import make_task
    from .tokenizer import load_tokenizer

    _threads(a.threads)
    b = read_bundle(a.run)
    try:
        which = "initial" if a.adapters == "initial" else "trained"
        keys = b.adapter_keys
        dirs = {k: b.adapter_dir(k, initial=which == "initial" or not b.json["files"]["adapters"]) for k in keys} if keys else None
        device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
        team = Team(b, dirs, base=a.base, dtype=a.dtype, device=device, attn=a.attn)
        tk = load_tokenizer(b.base_dir, b.json["tokens"])
        ev = Evaluator(team, tk, batch=a.batch)
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
        task = make_task(b.config["task"], b.config["difficulty"])
        print(f"{b.method['name']} on {b.config['task']} d{b.config['difficulty']}, seed {b.config['seed']}, "
              f"{b.json['training']['stepsDone']} steps ({f'{which} adapters' if keys else 'no adapters'}), {device}, {a.dtype}")
        print(format_table(rows, controls, {s: task.chance_for(s) for s in ("heldout", "ood")}))
        if bits:
            print(f"\nreceived K/V quantised (heldout accuracy; float32 {bits['unquantized']:.3f}): "
                  + ", ".join(f"{k} bit {v:.3f}" for k, v in bits["levels"].items())
                  + f"; smallest k within {BITS_TOLERANCE}: {bits['smallest']} ({bits['bitsPerPosition']} bits per latent position"
                  + f" against log2 V = {bits['textBitsPerToken']:.2f} bits per text token)")
        if a.json:
            Path(a.json).write_text(json.dumps({"rows": rows, "controls": controls, **({"bits": bits} if bits else {})}, indent=1) + "\n")
        return 0
    finally:
        b.close()


def cmd_train(a) -> int:
    from .tokenizer import load_tokenizer
    from .train import train

    _threads(a.threads)
    b = read_bundle(a.run)
    try:
        run = Path(a.run)
        out = Path(a.out) if a.out else run.with_name(f"{run.stem}-torch{a.steps}")
        if out.exists():
            raise FileExistsError(f"{out} already exists: choose another --out or remove it")
        tk = load_tokenizer(b.base_dir, b.json["tokens"])
        r = train(b, tk, a.steps, start=a.start, out=out, lr=a.lr, dtype=a.dtype, attn=a.attn, precision=a.precision, base=a.base, cpu=a.cpu)
        if r["out"]:
            print(f"wrote {r['out']} ({r['processes']} process{'es' if r['processes'] > 1 else ''}, {r['seconds']:.1f} s)")
        if a.json and r["out"]:
            Path(a.json).write_text(json.dumps({k: v for k, v in r.items()}, indent=1) + "\n")
        return 0
    finally:
        b.close()


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
    common.add_argument("--dtype", choices=["float32", "float64", "bfloat16"], default="float32", help="weights and activations (default float32, the engine's)")
    common.add_argument("--attn", default="eager", help="transformers attention implementation (eager, sdpa, ...)")
    common.add_argument("--threads", type=int, default=None, help="torch CPU threads")
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
    t.add_argument("run", help="run bundle folder or zip")
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--from", dest="start", choices=["trained", "initial"], default="trained",
                   help="trained: continue from the trained adapters with the next batches of the run's stream and a new schedule; "
                        "initial: the run again from its initial adapters and first batches, on its own schedule")
    t.add_argument("--out", help="the new bundle's folder (default RUN-torchN beside RUN)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default the run's)")
    t.add_argument("--precision", choices=["no", "bf16", "fp16"], default="no", help="mixed precision (accelerate autocast), e.g. bf16 on a GPU")
    t.add_argument("--cpu", action="store_true", help="stay on the CPU even with a GPU")
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
        return {"eval": cmd_eval, "train": cmd_train, "pretrain": cmd_pretrain}[a.cmd](a)
    except (BundleError, ValueError, FileExistsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
