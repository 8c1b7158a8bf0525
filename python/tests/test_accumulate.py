"""Issue 24 item 3: a run's batch split over processes and micro-batches (--per-device-batch,
--grad-accum) takes the step one process takes with the whole batch; gradient checkpointing changes
no number; `eval` under accelerate (gloo, CPU) gives one process's answers."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import REPORT
from latent_playground.cli import main
from latent_playground.microbatch import micro_batches

STEPS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(processes: int) -> list[str]:
    if processes == 1:
        return [sys.executable]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]


def _run(processes: int, args: list[str], cwd) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    p = subprocess.run([*_launch(processes), "-m", "latent_playground", *args, "--threads", "1"], env=env, capture_output=True, text=True,
                       timeout=900, cwd=cwd)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout


def _adapters(d):
    return {f"{k.name}/{n}": v for k in sorted((d / "adapters").iterdir()) for n, v in load_file(str(k / "adapter_model.safetensors")).items()}


def test_micro_batches_divide_the_batch_or_refuse():
    assert micro_batches(8, 2, 1, per_device=2) == [[4, 5], [6, 7]]
    assert micro_batches(8, 2, 0, accum=2) == [[0, 1], [2, 3]]
    assert micro_batches(8, 1, 0, per_device=4, accum=2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert micro_batches(5, 2, 1) == [[3, 4]]  # neither flag: one share, uneven if need be
    with pytest.raises(ValueError, match="does not divide into 2 processes x 3 micro-batches"):
        micro_batches(8, 2, 0, accum=3)
    with pytest.raises(ValueError, match="--per-device-batch 3: the run's batch of 8 rows does not divide"):
        micro_batches(8, 1, 0, per_device=3)
    with pytest.raises(ValueError, match=r"= 12 rows, but the run's batch is 8 rows"):
        micro_batches(8, 3, 0, per_device=2, accum=2)


def test_two_processes_take_one_process_accumulated_step(engine_dir, tmp_path):
    """float64: one process with 2 micro-batches of 4 rows, two processes with one of 4 each, and one process with the whole batch."""
    bundle = engine_dir / "lookup-diffmas" / "bundle"
    common = ["train", str(bundle), "--steps", str(STEPS), "--from", "initial", "--dtype", "float64", "--no-eval", "--cpu"]
    _run(1, [*common, "--grad-accum", "2", "--out", str(tmp_path / "accum"), "--json", str(tmp_path / "accum.json")], tmp_path)
    _run(2, [*common, "--per-device-batch", "4", "--out", str(tmp_path / "two"), "--json", str(tmp_path / "two.json")], tmp_path)
    assert main([*common, "--threads", "1", "--out", str(tmp_path / "whole"), "--json", str(tmp_path / "whole.json")]) == 0
    r = {k: json.loads((tmp_path / f"{k}.json").read_text()) for k in ("accum", "two", "whole")}
    assert [r[k]["processes"] for k in r] == [1, 2, 1]
    a = {k: _adapters(tmp_path / k) for k in r}
    assert a["accum"].keys() == a["two"].keys() == a["whole"].keys()

    def apart(x, y):
        return max(float(np.abs(a[x][n].astype(np.float64) - a[y][n]).max()) for n in a[x]), \
            max(abs(p - q) / abs(p) for p, q in zip(r[x]["losses"], r[y]["losses"]))
    two, whole = apart("accum", "two"), apart("accum", "whole")
    REPORT["two processes vs one accumulating (float64)"] = (f"{STEPS} steps: adapters {two[0]:.1e}, losses {two[1]:.1e} apart; "
                                                             f"against the whole batch at once {whole[0]:.1e}, {whole[1]:.1e}")
    # the same two sums of the same micro-batches (a + b either way): equal to float64 rounding
    assert two[0] <= 1e-12 and two[1] <= 1e-12, REPORT["two processes vs one accumulating (float64)"]
    # 8 rows in one pass against 2 x 4: the order of the sums differs, float64 rounding only
    assert whole[0] <= 1e-10 and whole[1] <= 1e-10, REPORT["two processes vs one accumulating (float64)"]
    init = load_file(str(bundle / "initial_adapters" / "a0" / "adapter_model.safetensors"))
    assert max(float(np.abs(a["accum"][f"a0/{n}"] - init[n]).max()) for n in init) > 1e-4  # the adapters moved


def test_gradient_checkpointing_changes_no_number(engine_dir, tmp_path):
    bundle = engine_dir / "lookup-diffmas-full" / "bundle"  # full traces: the prompt's K/V cross too
    common = ["train", str(bundle), "--steps", str(STEPS), "--from", "initial", "--dtype", "float64", "--no-eval", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "plain"), "--json", str(tmp_path / "plain.json")]) == 0
    assert main([*common, "--grad-checkpointing", "--out", str(tmp_path / "ckpt"), "--json", str(tmp_path / "ckpt.json")]) == 0
    r1, r2 = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("plain", "ckpt"))
    a1, a2 = _adapters(tmp_path / "plain"), _adapters(tmp_path / "ckpt")
    worst = max(float(np.abs(a1[n] - a2[n]).max()) for n in a1)
    REPORT["gradient checkpointing vs none (float64)"] = f"{STEPS} steps: adapters {worst:.1e} apart, losses {r1['losses']} vs {r2['losses']}"
    assert r1["losses"] == r2["losses"] and r1["gradNorms"] == r2["gradNorms"] and worst == 0.0


@pytest.mark.parametrize("case", ["lookup-diffmas", "lookup-text"])
def test_data_parallel_eval_gives_one_process_answers(engine_dir, tmp_path, case):
    bundle = engine_dir / case / "bundle"
    args = ["eval", str(bundle), "--split", "heldout", "--split", "ood", "--device", "cpu"]
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    out1 = _run(1, [*args, "--json", str(one)], tmp_path)
    out2 = _run(2, [*args, "--json", str(two)], tmp_path)
    r1, r2 = json.loads(one.read_text()), json.loads(two.read_text())
    rows1, rows2 = r1["rows"] + r1["controls"], r2["rows"] + r2["controls"]
    assert len(rows1) == len(rows2) and len(r1["controls"]) >= 2
    for x, y in zip(rows1, rows2):
        assert (x["split"], x.get("control")) == (y["split"], y.get("control"))
        assert x["predictions"] == y["predictions"], (x["split"], x.get("control"))
        assert x["loss"] == y["loss"] and x["messagePositions"] == y["messagePositions"]
    assert "2 processes" in out2
    # the table is the same bar its heading
    assert out1.splitlines()[1:] == out2.splitlines()[1:]
    REPORT[f"data-parallel eval, 2 processes vs 1 ({case})"] = f"{len(rows1)} rows (splits and controls): identical answers and losses"
