"""Memory per GPU of a DiffMAS `train` run (python/README.md, "8 GPUs"): computed for a real base, and
measured on the CPU at a small size with the same layer shape, which gives the activation term.

  python -m latent_playground.memory                  # the table of the README (measures, then computes)
  python -m latent_playground.memory measure LAYERS [--grad-checkpointing]   # one measurement (JSON)

Per GPU (every process holds the whole base: data parallel, no sharding):
  base weights      parameters x 2 bytes (bf16)
  LoRA              adapters x (weights 4 + gradients 4 + AdamW's two moments 8) bytes per parameter (float32),
                    and the flat gradient train() all-reduces (4 more)
  activations       what autograd keeps from the forward to the backward pass: c x h bytes per token per
                    layer (c measured below: the DiffMAS rollout's agents, latent steps and LoRA layers in
                    bf16 autocast, sdpa attention), or with --grad-checkpointing each layer's input plus
                    one layer's activations during its recomputation
  logits            the final agent's B x S x V logits: bf16, their float32 copy for the cross-entropy and
                    its gradient (10 bytes per entry)
The measurement is the resident memory of one training step over the resident memory before it (after
the forward pass: what is kept for the backward; the peak: with the backward's gradients), in a fresh
process whose glibc maps every block of 64 KiB or more on its own (MALLOC_MMAP_THRESHOLD_), so that a
freed tensor leaves the resident set at once and the figures follow the live tensors.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

# the bases of the recipe (their config.json on the Hub)
BASES = {
    "Qwen/Qwen3-0.6B": {"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
                        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": True, "params": 596_049_920},
    "HuggingFaceTB/SmolLM2-1.7B": {"model_type": "llama", "vocab_size": 49152, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
                                   "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 64, "tie_word_embeddings": True, "params": 1_711_376_384},
}
# the measured size: Qwen3-0.6B's layer shape (I = 3h, q = 2h, k = v = h) at h = 256, a small vocabulary
SMALL = {"model_type": "qwen3", "vocab_size": 512, "hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 128, "tie_word_embeddings": True}
# the run of the recipe: a chain of three agents, each prompt S tokens, m latent steps per sender, LoRA r on q, k, v, o
RUN = {"agents": 3, "prompt": 256, "latent": 8, "r": 16, "per_device_batch": 8}
# the measured run: the same with shorter prompts and fewer rows (activations scale with the positions)
SMALL_RUN = {**RUN, "prompt": 128, "per_device_batch": 4}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def lora_params(cfg: dict, r: int) -> int:
    """LoRA parameters of one adapter on q, k, v, o: r x (in + out) per projection and layer."""
    h, hd = cfg["hidden_size"], cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    return cfg["num_hidden_layers"] * r * ((h + q) + 2 * (h + kv) + (q + h))


def tokens_per_row(run: dict) -> int:
    """Positions one row runs through the model: every agent's prompt and the senders' latent steps."""
    return run["agents"] * run["prompt"] + (run["agents"] - 1) * run["latent"]


def estimate(cfg: dict, run: dict, fit: dict, checkpointing: bool) -> dict:
    """Bytes per GPU. fit: activation bytes per token and unit of hidden size, per layer ("perLayer") and
    once per step ("once": the recomputed layer, the backward's transients), measured (report())."""
    B, h, L, V = run["per_device_batch"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    T = B * tokens_per_row(run)
    f = fit["checkpointed" if checkpointing else "plain"]
    out = {
        "weights": cfg["params"] * 2,
        "lora": run["agents"] * lora_params(cfg, run["r"]) * (4 + 4 + 8 + 4),
        "logits": B * run["prompt"] * V * 10,
        "activations": (f["perLayer"] * L + f["once"]) * T * h,
    }
    out["total"] = sum(out.values())
    return out


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _synthetic_run(folder: Path, cfg: dict, run: dict):
    """A random base of `cfg` and a DiffMAS bundle over it (a chain of agents, own LoRA adapters), in memory."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from .bundle import Bundle, LatentMap

    c = AutoConfig.for_model(**{k: v for k, v in cfg.items() if k != "params"}, max_position_embeddings=4096)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(c).save_pretrained(folder / "base")
    n = run["agents"]
    dirs = {}
    for i in range(n):
        m = get_peft_model(AutoModelForCausalLM.from_pretrained(folder / "base"),
                           LoraConfig(r=run["r"], lora_alpha=2 * run["r"], target_modules=list(TARGETS), lora_dropout=0.0, init_lora_weights=False))
        m.save_pretrained(folder / f"a{i}")
        dirs[f"a{i}"] = folder / f"a{i}"
    agents = [{"id": f"a{i}", "name": f"a{i}", "role": i, "latentSteps": run["latent"] if i < n - 1 else 0, "adapterKey": f"a{i}", "final": i == n - 1,
               "predecessors": [f"a{i - 1}"] if i else []} for i in range(n)]
    meta = {"method": {"name": "diffmas", "channel": "latent", "trace": "latent", "train": "all", "skyline": False}, "positions": "stream",
            "agents": agents, "config": {}}
    lm = LatentMap(kind="identity", D=cfg["hidden_size"], target_norm=1.0, Wa=None)
    return Bundle(root=folder, json=meta, latent_map=lm), dirs


def measure(cfg: dict, run: dict, checkpointing: bool) -> dict:
    """One training step's peak resident memory over the memory before it (bf16 base, float32 LoRA, bf16 autocast, sdpa)."""
    from . import grad_checkpoint
    from .agents import Team, loss_sum

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        bundle, dirs = _synthetic_run(Path(tmp), cfg, run)
        team = Team(bundle, dirs, base=str(Path(tmp) / "base"), dtype="bfloat16", attn="sdpa", trainable=True)
    for p in team.parameters():
        p.data = p.data.float()
    if checkpointing:
        grad_checkpoint.enable(team.decoder)
    B, S, V = run["per_device_batch"], run["prompt"], cfg["vocab_size"]
    g = torch.Generator().manual_seed(1)
    inputs = [torch.randint(3, V, (B, S), generator=g) for _ in range(run["agents"])]
    targets = torch.randint(3, V, (B, S), generator=g)
    before = _rss()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, *_ = team.forward(inputs, grad=True)
        loss = loss_sum(logits, targets) / targets.numel()
    after_forward = _rss()
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"checkpointing": checkpointing, "before": before, "afterForward": after_forward, "peak": peak, "step": peak - before,
            "kept": after_forward - before, "tokens": B * tokens_per_row(run), "layers": cfg["num_hidden_layers"], "hidden": cfg["hidden_size"],
            "logitsBytes": B * S * V * 10}


def _measure_in_fresh_process(layers: int, checkpointing: bool) -> dict:
    cmd = [sys.executable, "-m", "latent_playground.memory", "measure", str(layers)] + (["--grad-checkpointing"] if checkpointing else [])
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(p.stdout.strip().splitlines()[-1])


LAYERS = (2, 6)


def report() -> str:
    """Measures the small size at two depths, fits bytes = (perLayer x L + once) x tokens x h, and computes the bases."""
    fit, seen = {}, []
    for mode in ("plain", "checkpointed"):
        m = [_measure_in_fresh_process(L, mode == "checkpointed") for L in LAYERS]
        unit = [(x["step"] - x["logitsBytes"]) / (x["tokens"] * x["hidden"]) for x in m]
        per = (unit[1] - unit[0]) / (LAYERS[1] - LAYERS[0])
        fit[mode] = {"perLayer": per, "once": unit[0] - per * LAYERS[0]}
        seen.append((mode, m))
    mb = lambda x: f"{x / 2**20:,.0f} MiB"  # noqa: E731
    gb = lambda x: f"{x / 2**30:.1f} GiB"  # noqa: E731
    r = SMALL_RUN
    lines = [f"measured on the CPU: h = {SMALL['hidden_size']} (Qwen3-0.6B's layer shape), {r['agents']} agents, prompts of {r['prompt']}, "
             f"{r['latent']} latent steps, batch {r['per_device_batch']}; one step's peak over the memory before it:"]
    for mode, m in seen:
        lines.append(f"- {mode}: " + ", ".join(f"{x['layers']} layers {mb(x['step'])} (kept after the forward {mb(x['kept'])})" for x in m)
                     + f"; fit: {fit[mode]['perLayer']:.1f} bytes per token, layer and unit of h, plus {fit[mode]['once']:.1f} once")
    lines += ["", f"computed for a run of {RUN['agents']} agents, prompts of {RUN['prompt']} tokens, {RUN['latent']} latent steps, LoRA r = {RUN['r']} "
              f"on q, k, v, o, per-device batch {RUN['per_device_batch']}, bf16 base, float32 adapters:", "",
              "| base | weights (bf16) | LoRA, grads, AdamW | logits | activations | total | activations, checkpointed | total, checkpointed |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, cfg in BASES.items():
        e, c = estimate(cfg, RUN, fit, False), estimate(cfg, RUN, fit, True)
        lines.append(f"| {name} | {gb(e['weights'])} | {mb(e['lora'])} | {gb(e['logits'])} | {gb(e['activations'])} | {gb(e['total'])} | "
                     f"{gb(c['activations'])} | {gb(c['total'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        print(json.dumps(measure({**SMALL, "num_hidden_layers": int(sys.argv[2])}, SMALL_RUN, "--grad-checkpointing" in sys.argv)))
    else:
        print(report())
