"""Cache-to-Cache (method c2c; the engine's src/mas/c2c-fuser.ts): a learned fuser per layer maps the
K/V a receiver reads from its senders (their full trace: prompt and latent positions, as diffmas-full)
before the receiver attends over it; both bases stay frozen, only the fuser trains (torch autograd here,
the engine's hand-written backward there: each checks the other, python/tests/test_c2c.py).

Per layer l, for K and V apart, with X the received rows [B, P, W] (W = Hkv * hd, the kv heads side by
side in head order):  Y = X + sigmoid(gate[l, kv]) * (X @ A[l, kv]),  A [W, W] (in, out).
Init: A = 0, gate = 0: the fused prefix is the received one, so c2c starts as latentmas-full (one base
for every agent: the sender's K/V are already in the receiver's layout).

File (c2c_fuser.safetensors, src/storage/c2c-fuser.ts): layers.{l}.k.A, layers.{l}.v.A [W, W] float32,
gate [L, 2] float32; metadata format, layers, kv_width, rule."""
from __future__ import annotations

from pathlib import Path

import torch

FUSER_FILE = "c2c_fuser.safetensors"
FUSER_FORMAT = "latent-playground-c2c-fuser"
FUSER_RULE = "Y = X + sigmoid(gate[l, kv]) * (X @ A[l, kv]), per layer l and K/V, X the received rows [B*P, W]"


class Fuser(torch.nn.Module):
    """The fuser of L layers and K/V width W (float32 parameters, or the team's float64)."""

    def __init__(self, L: int, W: int, dtype=torch.float32, device="cpu"):
        super().__init__()
        self.L, self.W = L, W
        self.A = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(W, W, dtype=dtype, device=device)) for _ in range(2 * L)])
        self.gate = torch.nn.Parameter(torch.zeros(L, 2, dtype=dtype, device=device))

    def names(self) -> list[str]:
        """The engine's parameter order (C2cFuserGpu.trainParams): every layer's K then V, then the gate."""
        return [f"layers.{l}.{kv}.A" for l in range(self.L) for kv in ("k", "v")] + ["gate"]

    def params(self) -> list[torch.nn.Parameter]:
        return [*self.A, self.gate]

    def fuse_rows(self, l: int, kv: int, x: torch.Tensor) -> torch.Tensor:
        """x [B, P, W] -> the fused rows."""
        a = self.A[2 * l + kv]
        return x + torch.sigmoid(self.gate[l, kv]).to(x.dtype) * (x @ a.to(x.dtype))

    def forward(self, prefix: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A received prefix as past_key_values per layer ((K, V) each [B, Hkv, P, hd]) -> the fused one."""
        out = []
        for l, pair in enumerate(prefix):
            fused = []
            for kv, x in enumerate(pair):
                B, H, P, hd = x.shape
                rows = x.permute(0, 2, 1, 3).reshape(B, P, H * hd)
                y = self.fuse_rows(l, kv, rows)
                fused.append(y.reshape(B, P, H, hd).permute(0, 2, 1, 3).contiguous())
            out.append((fused[0], fused[1]))
        return out

    def state(self) -> dict[str, torch.Tensor]:
        d = {f"layers.{l}.{kv}.A": self.A[2 * l + i].detach().float().cpu().contiguous() for l in range(self.L) for i, kv in enumerate(("k", "v"))}
        d["gate"] = self.gate.detach().float().cpu().contiguous()
        return d

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        want = self.names()
        extra = sorted(set(tensors) - set(want))
        if extra:
            raise ValueError(f"c2c fuser: unexpected tensor {extra[0]} (a fuser of {self.L} layers)")
        with torch.no_grad():
            for i, name in enumerate(want):
                if name not in tensors:
                    raise ValueError(f"c2c fuser: tensor {name} is missing (a fuser of {self.L} layers, K/V width {self.W})")
                t = tensors[name]
                shape = (self.L, 2) if name == "gate" else (self.W, self.W)
                if tuple(t.shape) != shape:
                    raise ValueError(f"c2c fuser: {name} has shape {list(t.shape)}, expected {list(shape)}")
                (self.gate if name == "gate" else self.A[i]).copy_(t.to(self.gate.dtype))

    def save(self, path: Path) -> Path:
        from safetensors.torch import save_file

        save_file(self.state(), str(path), metadata={"format": FUSER_FORMAT, "layers": str(self.L), "kv_width": str(self.W), "rule": FUSER_RULE})
        return Path(path)


def read_fuser_file(path: Path, L: int, W: int) -> dict[str, torch.Tensor]:
    """The tensors of a fuser file, checked against the base (L layers, K/V width W)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        md = f.metadata() or {}
        if md.get("format") != FUSER_FORMAT:
            raise ValueError(f"{path.name}: format is {md.get('format')!r}, not {FUSER_FORMAT!r}")
        if md.get("layers") != str(L) or md.get("kv_width") != str(W):
            raise ValueError(f"{path.name}: a fuser of {md.get('layers')} layers and K/V width {md.get('kv_width')}, but the base has {L} and {W}")
        return {k: f.get_tensor(k) for k in f.keys()}


def make_fuser(bundle, L: int, W: int, *, initial: bool, dtype, device) -> Fuser:
    """The run's fuser: the bundle's trained one (files.fuser), or the initial one (A = 0, gate = 0) when
    asked for or when the bundle has none (a run of 0 steps)."""
    from .bundle_safety import inside

    fu = Fuser(L, W, dtype=dtype, device=device)
    rel = bundle.json["files"].get("fuser")
    if rel and not initial:
        fu.load(read_fuser_file(inside(bundle.root, rel, "files.fuser"), L, W))
    return fu
