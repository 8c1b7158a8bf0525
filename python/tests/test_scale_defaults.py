"""Issue 24 item 4 (and 3's bf16): torch threads default to this process's share of the cores it may use;
numbers read as the engine writes them (80/256 is 0.313 on both sides); a bf16 base trains float32
adapters (and float32 AdamW state)."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open

from latent_playground import threads
from latent_playground.cli import main
from latent_playground.evaluate import format_table
from latent_playground.numfmt import to_fixed


def test_threads_default_to_the_process_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("ACCELERATE_NUM_PROCESSES", raising=False)
    assert threads.default_threads() == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert threads.default_threads() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert threads.default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # set by the user: kept
    assert threads.default_threads() == 3
    before = torch.get_num_threads()
    try:
        assert threads.set_threads(None) == 3 and torch.get_num_threads() == 3
        assert threads.set_threads(1) == 1
        with pytest.raises(ValueError, match="at least 1"):
            threads.set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_rounding_is_the_engine_s():
    # Number.prototype.toFixed: half away from zero on the exact binary value (node -e 'console.log((80/256).toFixed(3))')
    cases = {(80 / 256, 3): "0.313", (0.0625, 3): "0.063", (2.5, 0): "3", (-2.5, 0): "-3", (1.005, 2): "1.00", (0.1 + 0.2, 1): "0.3",
             (-0.0001, 3): "-0.000", (0.0, 2): "0.00", (float("nan"), 3): "NaN"}
    for (x, d), want in cases.items():
        assert to_fixed(x, d) == want, (x, d)
    row = {"method": "diffmas", "split": "heldout", "accuracy": 80 / 256, "episodes": 256, "validity": 1.0, "entropy": 0.125,
           "messagePositions": 3.25, "messageFloats": 576.5, "messageTokens": 0.0, "loss": 1.23455}
    out = format_table([row], [{"control": "zero", "accuracy": 80 / 256}], {"heldout": 0.1})
    assert "| 0.313 [" in out and "| diffmas | 0.313 | n/a | 0.313 |" in out and "0.13" in out and " 577 " in out


def test_bf16_base_trains_float32_adapters(engine_dir, tmp_path, capsys):
    src = engine_dir / "lookup-diffmas" / "bundle"
    out = tmp_path / "bf16"
    assert main(["train", str(src), "--steps", "1", "--dtype", "bfloat16", "--precision", "bf16", "--cpu", "--threads", "1", "--no-eval",
                 "--out", str(out), "--json", str(tmp_path / "r.json")]) == 0
    assert "base bfloat16, autocast bf16, adapters and AdamW state float32 (trainable)" in capsys.readouterr().out
    for key in ("a0", "a1"):
        with safe_open(str(out / "adapters" / key / "adapter_model.safetensors"), framework="pt") as f:
            assert {f.get_tensor(n).dtype for n in f.keys()} == {torch.float32}
    assert len(json.loads((tmp_path / "r.json").read_text())["losses"]) == 1
