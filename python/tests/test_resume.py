"""Issue 24 item 2: `train` checkpoints (every N steps, and on SIGTERM) and `train --resume` continues bit
for bit: 2k steps straight and k steps, SIGTERM, resume, k steps give identical adapters and losses
(float32 and float64 on the CPU; one process, one thread, so both runs make the same operations)."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from latent_playground.bundle import read_bundle
from latent_playground.checkpoint import find_checkpoint
from latent_playground.cli import main
from latent_playground.tokenizer import load_tokenizer
from latent_playground.train import train

K = 2


def _adapters(d):
    return {k.name: load_file(str(k / "adapter_model.safetensors")) for k in sorted((d / "adapters").iterdir())}


def _sigterm_after(step: int):
    """A log that sends this process SIGTERM once step `step` is logged (a scheduler's preemption mid-run)."""
    def log(line: str):
        print(line)
        if line.startswith(f"step {step} loss"):
            os.kill(os.getpid(), signal.SIGTERM)
    return log


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stop_and_resume_is_bit_for_bit(engine_dir, tmp_path, dtype):
    src = engine_dir / "lookup-diffmas" / "bundle"
    done = read_bundle(src).json["training"]["stepsDone"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    # continues the run: batches done+1.. come from the Python port of the stream, so its position matters
    common = ["--steps", str(2 * K), "--dtype", dtype, "--threads", "1", "--no-eval"]
    assert main(["train", str(src), *common, "--out", str(straight), "--json", str(tmp_path / "straight.json")]) == 0
    # the same run stopped by SIGTERM after step K (a checkpoint every step: step-K replaces step-(K-1))
    b = read_bundle(src)
    try:
        r = train(b, load_tokenizer(b.base_dir, b.json["tokens"]), 2 * K, out=resumed, dtype=dtype, checkpoint_every=1, final_eval=False,
                  log=_sigterm_after(done + K))
    finally:
        b.close()
    assert r["stopped"] and r["out"] is None and r["stepsDone"] == done + K
    root = tmp_path / "resumed-checkpoints"
    ck = find_checkpoint(root)
    assert ck.name == f"step-{done + K:07d}" and sorted(p.name for p in root.iterdir()) == ["latest", ck.name]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))
    # a checkpoint is a bundle: the run at step done + K, which the page imports
    cb = read_bundle(ck)
    assert cb.json["training"]["stepsDone"] == done + K and len(cb.json["training"]["losses"]) == done + K
    assert cb.json["training"]["phases"][-1]["checkpointOf"] == 2 * K
    state = json.loads((ck / "checkpoint" / "state.json").read_text())
    assert state["step"] == K and state["nextBatch"] == done + K + 1
    # a resumed run keeps its settings; a differing flag is refused
    assert main(["train", "--resume", str(root), "--steps", "7"]) == 1
    assert main(["train", "--resume", str(root), "--threads", "1", "--no-eval", "--json", str(tmp_path / "resumed.json")]) == 0
    assert not root.exists()  # the finished bundle holds the run; the checkpoints are removed
    r1 = json.loads((tmp_path / "straight.json").read_text())
    r2 = json.loads((tmp_path / "resumed.json").read_text())
    assert r1["losses"] == r2["losses"] and r1["gradNorms"] == r2["gradNorms"] and len(r1["losses"]) == 2 * K
    a, c = _adapters(straight), _adapters(resumed)
    assert a.keys() == c.keys()
    for key in a:
        assert a[key].keys() == c[key].keys()
        for n in a[key]:
            assert torch.equal(a[key][n], c[key][n]), (key, n)
    m1, m2 = read_bundle(straight).json["training"], read_bundle(resumed).json["training"]
    assert m1["losses"] == m2["losses"] and m1["stepsDone"] == m2["stepsDone"] == done + 2 * K
    p1, p2 = m1["phases"][-1], m2["phases"][-1]
    assert {k: v for k, v in p1.items()} == {k: v for k, v in p2.items()}


def test_repeat_refuses_without_force(engine_dir, tmp_path, capsys):
    src = engine_dir / "lookup-diffmas" / "bundle"
    out = tmp_path / "out"
    args = ["train", str(src), "--steps", "1", "--threads", "1", "--no-eval", "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 1
    assert "pass --force to replace it" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0 and (out / "run.json").is_file()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    assert main(["train", str(src), "--steps", "1", "--out", str(other), "--force"]) == 1
    assert "not a run bundle" in capsys.readouterr().err and (other / "mine.txt").is_file()
    # checkpoints of an earlier run to the same --out: resume them, or start over with --force
    fresh = tmp_path / "fresh"
    (tmp_path / "fresh-checkpoints" / "step-0000003").mkdir(parents=True)
    assert main(["train", str(src), "--steps", "1", "--threads", "1", "--no-eval", "--out", str(fresh)]) == 1
    assert f"resume it with --resume {tmp_path / 'fresh-checkpoints'}, or pass --force" in capsys.readouterr().err
    assert main(["train", str(src), "--steps", "1", "--threads", "1", "--no-eval", "--out", str(fresh), "--force"]) == 0
    assert (fresh / "run.json").is_file() and not (tmp_path / "fresh-checkpoints").exists()


def test_sigterm_to_two_gloo_processes_checkpoints_and_resumes(engine_dir, tmp_path):
    """Under accelerate launch the launcher forwards SIGTERM to its workers; they agree on the step
    (an all-reduce of the flag), rank 0 writes the checkpoint, and the run resumed on two processes
    ends where the run without a stop does."""
    import socket
    import subprocess
    import sys
    import time

    def launcher() -> list[str]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), "-m", "latent_playground", "train"]

    src = engine_dir / "lookup-diffmas" / "bundle"
    steps = 6
    launch = launcher()
    common = ["--threads", "1", "--cpu", "--no-eval"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    stopped = tmp_path / "stopped"
    p = subprocess.Popen([*launch, str(src), "--steps", str(steps), "--from", "initial", "--out", str(stopped), *common],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    lines = []
    deadline = time.monotonic() + 600
    for line in p.stdout:
        lines.append(line)
        if line.startswith("step 2 loss"):
            p.send_signal(signal.SIGTERM)  # to the launcher, as a scheduler would
            break
        assert time.monotonic() < deadline
    rest = p.communicate(timeout=600)[0]
    out = "".join(lines) + rest
    assert p.returncode != 0 and "stopped by SIGTERM after step" in out, out[-3000:]
    ck = find_checkpoint(tmp_path / "stopped-checkpoints")
    k = json.loads((ck / "checkpoint" / "state.json").read_text())["step"]
    assert 2 <= k < steps and json.loads((ck / "checkpoint" / "state.json").read_text())["processes"] == 2
    r = subprocess.run([*launcher(), "--resume", str(tmp_path / "stopped-checkpoints"), *common, "--json", str(tmp_path / "resumed.json")],
                       env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    straight = subprocess.run([*launcher(), str(src), "--steps", str(steps), "--from", "initial", "--out", str(tmp_path / "straight"), *common,
                               "--json", str(tmp_path / "straight.json")], env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert straight.returncode == 0, straight.stdout[-3000:] + straight.stderr[-3000:]
    r1 = json.loads((tmp_path / "straight.json").read_text())
    r2 = json.loads((tmp_path / "resumed.json").read_text())
    assert r1["losses"] == r2["losses"] and len(r1["losses"]) == steps
    a, c = _adapters(tmp_path / "straight"), _adapters(stopped)
    for key in a:
        for n in a[key]:
            assert torch.equal(a[key][n], c[key][n]), (key, n)
