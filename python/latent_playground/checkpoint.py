"""Checkpoints of a `train` run, and resuming from one bit for bit.

A checkpoint is a run bundle (docs/run-bundle.md: it imports into the page as the run at that step) with
a `checkpoint/` folder beside run.json that the bundle format ignores:
  state.json         the phase (start, steps, schedule, the source bundle's config and training), the
                     step reached, the losses so far, the settings that set the numbers, and where the
                     batch stream stands (the next batch's number and the last batch's signature: the
                     stream is a function of the run's seed and the batch number, so that is its position)
  state.safetensors  the trainable parameters exactly as they are (float64 too: the PEFT files of the
                     bundle may be narrower), AdamW's moments and step per parameter, torch's CPU RNG state
Checkpoints live in <out>-checkpoints/step-NNNNNNN; `latest` names the newest. Each is written into a
temporary sibling, every file fsynced, then renamed into place; `latest` is replaced the same way, and
only then are older checkpoints removed, so a kill at any moment leaves a complete checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import torch

FORMAT = "latent-playground-checkpoint"
VERSION = 1
LATEST = "latest"


def checkpoint_root(out: Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.name}-checkpoints")


def _fsync_file(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and folder under root (folders too: their entries are what a rename publishes)."""
    for d, _, files in os.walk(root):
        for f in files:
            _fsync_file(Path(d) / f)
        _fsync_file(Path(d))


def write_text_atomic(path: Path, text: str) -> None:
    """path's new content, complete or not at all: a temporary sibling, fsynced, renamed over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_file(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tensors(params: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {"torch_rng": torch.get_rng_state()}
    for i, p in enumerate(params):
        out[f"param.{i}"] = p.detach().cpu().clone()
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq", "step"):
            if k in st:
                v = st[k]
                out[f"adam.{i}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(float(v), dtype=torch.float64)).detach().cpu().clone().reshape(v.shape if torch.is_tensor(v) else ())
    return out


def load_tensors(tensors: dict[str, torch.Tensor], params: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    """The parameters and AdamW state exactly as saved (dtype and shape checked), and torch's RNG."""
    for i, p in enumerate(params):
        v = tensors.get(f"param.{i}")
        if v is None or v.shape != p.shape or v.dtype != p.dtype:
            raise ValueError(f"checkpoint: parameter {i} is {None if v is None else (tuple(v.shape), v.dtype)}, the run's is {(tuple(p.shape), p.dtype)} "
                             "(resume with the checkpoint's --dtype and base)")
        with torch.no_grad():
            p.copy_(v.to(p.device))
        st = {}
        for k in ("exp_avg", "exp_avg_sq", "step"):
            if f"adam.{i}.{k}" in tensors:
                st[k] = tensors[f"adam.{i}.{k}"].to(p.device if k != "step" else "cpu")
        if st:
            opt.state[p] = st
    torch.set_rng_state(tensors["torch_rng"])


def write_checkpoint(root: Path, step_done: int, make_bundle, state: dict, tensors: dict[str, torch.Tensor], keep: int = 1,
                     protect: Path | None = None) -> Path:
    """A checkpoint at root/step-NNNNNNN: make_bundle(path) writes the bundle part (path must not exist yet).
    Older checkpoints beyond `keep` are removed, except `protect` (the one a resumed run reads its files from)."""
    from safetensors.torch import save_file

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step_done:07d}"
    final = root / name
    work = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    try:
        b = make_bundle(work / "bundle")
        ck = b / "checkpoint"
        ck.mkdir()
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(ck / "state.safetensors"))
        (ck / "state.json").write_text(json.dumps({"format": FORMAT, "version": VERSION, **state}, indent=1) + "\n")
        fsync_tree(b)
        if final.exists():  # a checkpoint of this step already (a run resumed from it): replace it
            shutil.rmtree(final)
        os.rename(b, final)
        _fsync_file(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_text_atomic(root / LATEST, name + "\n")
    keepers = {name, Path(protect).resolve().name if protect is not None and Path(protect).resolve().parent == root.resolve() else None}
    older = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("step-") and d.name not in keepers)
    for d in older[:max(0, len(older) - (keep - 1))]:
        shutil.rmtree(d, ignore_errors=True)
    return final


def find_checkpoint(path: Path) -> Path:
    """A checkpoint folder, or the newest one of a checkpoints folder (its `latest`)."""
    path = Path(path)
    if (path / "checkpoint" / "state.json").is_file():
        return path
    if (path / LATEST).is_file():
        name = (path / LATEST).read_text().strip()
        if name.startswith("step-") and "/" not in name and (path / name / "checkpoint" / "state.json").is_file():
            return path / name
    raise ValueError(f"--resume {path}: not a checkpoint (a folder with checkpoint/state.json, or a checkpoints folder with a 'latest' file)")


def read_checkpoint(path: Path) -> tuple[Path, dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    d = find_checkpoint(path)
    state = json.loads((d / "checkpoint" / "state.json").read_text())
    if state.get("format") != FORMAT or not isinstance(state.get("version"), int) or state["version"] > VERSION:
        raise ValueError(f"{d}: checkpoint format {state.get('format')!r} version {state.get('version')!r} is not one this companion reads")
    return d, state, load_file(str(d / "checkpoint" / "state.safetensors"))


class StopFlag:
    """SIGTERM (a scheduler's preemption, `kill`) sets the flag; the loop checkpoints after the step in
    flight and stops. The previous handler comes back on exit."""

    def __init__(self):
        self.set = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, the flag stays unset
            self._old = None
        return self

    def _handle(self, signum, frame):
        self.set = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
        return False
