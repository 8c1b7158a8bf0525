"""Learned latent slot offsets (config.latentSlotOffset; the engine's src/mas/slot-offset.ts): per adapter
key used by a sender with latent steps, one trainable vector o_k of d_model per slot k = 0..m-1 (m: the
most latent steps among the senders that use the adapter), zero at the start. Latent step k of a sender
feeds back e_k = rescale(h W_a) + o_k; autograd gives o_k the gradient arriving at that input embedding,
summed over the batch rows and the agents sharing the adapter. The offsets train with the LoRA in the
same AdamW and are saved beside the adapter's PEFT files as latent_slot_offset.safetensors, one F32
tensor latent_slot_offset [slots, d_model] (src/storage/slot-offset.ts)."""
from __future__ import annotations

from pathlib import Path

import torch

SLOT_OFFSET_FILE = "latent_slot_offset.safetensors"
SLOT_OFFSET_TENSOR = "latent_slot_offset"


def slot_counts(plan) -> dict[str, int]:
    """slotOffsetSlots: per adapter key, the most latent steps among the senders (not final, m >= 1) that use it."""
    out: dict[str, int] = {}
    for a in plan:
        if a.adapter_key is None or a.final or a.latent_steps < 1:
            continue
        out[a.adapter_key] = max(out.get(a.adapter_key, 0), a.latent_steps)
    return out


def read_offsets(folder: Path, dim: int) -> torch.Tensor:
    """The [slots, dim] offsets of an adapter folder; a ValueError naming what is missing or does not fit."""
    from safetensors.torch import load_file

    p = Path(folder) / SLOT_OFFSET_FILE
    if not p.is_file():
        raise ValueError(f"{folder}: no {SLOT_OFFSET_FILE}, which a run with latentSlotOffset keeps beside each sender's adapter")
    try:
        tensors = load_file(str(p))
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"{p} cannot be read: {e}") from None
    if set(tensors) != {SLOT_OFFSET_TENSOR}:
        raise ValueError(f"{p} must hold the one tensor {SLOT_OFFSET_TENSOR}, it holds {', '.join(sorted(tensors)) or 'none'}")
    t = tensors[SLOT_OFFSET_TENSOR]
    if t.dim() != 2 or t.shape[1] != dim or t.shape[0] < 1:
        raise ValueError(f"{p}: {SLOT_OFFSET_TENSOR} has shape {list(t.shape)}, expected [slots, {dim}] (the base's hidden_size)")
    if not torch.isfinite(t).all():
        raise ValueError(f"{p}: offsets must be finite")
    return t.float()


def write_offsets(folder: Path, t: torch.Tensor) -> None:
    from safetensors.torch import save_file

    save_file({SLOT_OFFSET_TENSOR: t.detach().float().cpu().contiguous()}, str(Path(folder) / SLOT_OFFSET_FILE), metadata={"format": "pt"})


class SlotOffsets:
    """A team's offsets: adapter key -> parameter [slots, D]."""

    def __init__(self, params: dict[str, torch.nn.Parameter]):
        self.params = params

    @classmethod
    def of_team(cls, config: dict, plan, adapters: dict[str, Path] | None, dim: int, device, dtype, trainable: bool) -> "SlotOffsets | None":
        """The offsets a team uses: None when the run has none (latentSlotOffset off) or no adapters are loaded
        (the base alone); otherwise read from each sender adapter's folder, checked against the plan."""
        if not config.get("latentSlotOffset") or not adapters:
            return None
        params = {}
        for key, slots in slot_counts(plan).items():
            if key not in adapters:
                raise ValueError(f"adapter {key}: no folder given, and its latent slot offsets live there")
            t = read_offsets(adapters[key], dim)
            if t.shape[0] != slots:
                raise ValueError(f"{adapters[key]}/{SLOT_OFFSET_FILE}: {t.shape[0]} slots, but the run's senders on adapter {key} take {slots} latent steps")
            # float32 at least (float64 in float64 mode), as the adapters: AdamW's moments in full precision
            p = torch.nn.Parameter(t.to(device=device, dtype=dtype if dtype == torch.float64 else torch.float32), requires_grad=trainable)
            params[key] = p
        return cls(params)

    def parameters(self, key: str) -> list[torch.nn.Parameter]:
        return [self.params[key]] if key in self.params else []

    def add(self, e: torch.Tensor, key: str | None, k: int) -> torch.Tensor:
        """e [B, D] + o_k of the adapter `key` (a sender without offsets: e unchanged)."""
        p = self.params.get(key) if key is not None else None
        return e if p is None else e + p[k].to(e.dtype)

    def save(self, key: str, folder: Path) -> None:
        if key in self.params:
            write_offsets(folder, self.params[key])
