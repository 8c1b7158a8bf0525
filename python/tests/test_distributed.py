"""Issue 13 item 4: `train` as two CPU processes with the gloo backend, launched by accelerate, each with
half of every batch, ends where one process with the whole batch does (to 1e-5)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file

from conftest import REPORT

STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(args: list[str], launcher: list[str], tmp_path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    p = subprocess.run([*launcher, "-m", "latent_playground", "train", *args, "--threads", "1", "--cpu"], env=env,
                       capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]


def test_two_gloo_processes_end_where_one_does(engine_dir, tmp_path):
    bundle = engine_dir / "lookup-diffmas" / "bundle"
    one, two = tmp_path / "one", tmp_path / "two"
    common = [str(bundle), "--steps", str(STEPS), "--from", "initial"]
    _train([*common, "--out", str(one), "--json", str(tmp_path / "one.json")], [sys.executable], tmp_path)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    _train([*common, "--out", str(two), "--json", str(tmp_path / "two.json")], launch, tmp_path)
    r1 = json.loads((tmp_path / "one.json").read_text())
    r2 = json.loads((tmp_path / "two.json").read_text())
    assert (r1["processes"], r2["processes"]) == (1, 2)
    loss = max(abs(a - b) / abs(a) for a, b in zip(r1["losses"], r2["losses"]))
    worst = 0.0
    keys = sorted(p.name for p in (one / "adapters").iterdir())
    assert keys == sorted(p.name for p in (two / "adapters").iterdir()) and keys
    for k in keys:
        a = load_file(str(one / "adapters" / k / "adapter_model.safetensors"))
        b = load_file(str(two / "adapters" / k / "adapter_model.safetensors"))
        assert a.keys() == b.keys()
        for n in a:
            worst = max(worst, float(np.abs(a[n].astype(np.float64) - b[n]).max()))
    REPORT["two gloo processes vs one"] = f"{STEPS} steps: adapters max |diff| {worst:.1e}, losses max rel. diff {loss:.1e}"
    assert worst <= 1e-5 and loss <= 1e-5, REPORT["two gloo processes vs one"]
    # the adapters moved: the comparison is not between two copies of the initial ones
    init = load_file(str(bundle / "initial_adapters" / keys[0] / "adapter_model.safetensors"))
    moved = load_file(str(one / "adapters" / keys[0] / "adapter_model.safetensors"))
    assert max(float(np.abs(moved[n] - init[n]).max()) for n in init) > 1e-4
