"""Pretraining in PyTorch on the engine's plan (npm run pretrain -- --export-corpus) against the engine's own
pretraining of the same run: the same initial weights and batches, so the same losses and probe curve."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from conftest import REPORT, ROOT, _vulkan_env
from latent_playground.cli import main
from latent_playground.pretrain import PlanError, read_plan

STEPS = 30
ARGS = ["--preset", "tiny", "--steps", str(STEPS), "--batch", "8", "--lr", "0.003", "--seed", "3", "--probe-every", "10"]


def cli(args: list[str], timeout: int = 1200) -> str:
    p = subprocess.run(["bash", "scripts/with-vulkan.sh", "node", "scripts/run-cli.mjs", *args], cwd=ROOT, env=_vulkan_env(),
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"npm run cli -- {' '.join(args)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pretrain")
    cli(["pretrain", *ARGS, "--export-corpus", str(d / "plan")])
    engine_log = cli(["pretrain", *ARGS, "--log-every", "1", "--no-eval", "--out", str(d / "engine")])
    assert main(["pretrain", str(d / "plan"), "--out", str(d / "torch"), "--log-every", "1"]) == 0
    return d, engine_log


def test_the_plan_is_what_the_engine_trains_on(runs):
    d, log = runs
    plan = read_plan(d / "plan")
    assert plan["steps"] == STEPS and len(plan["corpus"]["seqLens"]) == STEPS and plan["optimizer"]["beta2"] == 0.95
    engine = json.loads((d / "engine" / "training_args.json").read_text())
    torch_ = json.loads((d / "torch" / "training_args.json").read_text())
    # the same corpus: every step's row length and the counted tokens
    assert torch_["tokens"] == engine["tokens"] and torch_["realTokens"] == engine["realTokens"]
    assert torch_["buckets"] == engine["buckets"] and torch_["recipe"] == engine["recipe"]
    # the same training: losses per step (the engine's log) to float32 rounding, growing with the steps
    # (the log prints 4 decimals: within 1e-4 on every step; the final loss at full precision)
    eng = [float(x) for x in re.findall(r"^step +\d+/\d+ +loss (\S+)", log, re.M)]
    assert len(eng) == STEPS and abs(eng[-1] - engine["finalLoss"]) <= 1e-4
    rel = abs(torch_["finalLoss"] - engine["finalLoss"]) / engine["finalLoss"]
    REPORT["pretrain: final loss, torch vs engine (30 steps)"] = f"{torch_['finalLoss']:.6f} vs {engine['finalLoss']:.6f} (rel {rel:.1e})"
    assert rel <= 1e-3
    # the probe curve: the same steps, and (teacher-forced argmax on 128 episodes) the same accuracies
    assert [p["step"] for p in torch_["probes"]] == [p["step"] for p in engine["probes"]] == [10, 20, 30]
    for a, b in zip(torch_["probes"], engine["probes"]):
        for k in b["accuracy"]:
            assert abs(a["accuracy"][k] - b["accuracy"][k]) <= 2 / 128, (a, b)
    assert torch_["trainer"]["name"].startswith("python -m latent_playground pretrain") and "PyTorch" in torch_["adapter"]


def test_the_engine_evaluates_the_torch_checkpoint(runs):
    d, _ = runs
    out = cli(["pretrain", "--evaluate", str(d / "torch"), "--eval-size", "16", "--eval-tasks", "lookup", "--eval-difficulties", "1"])
    assert "wrote the evaluation into" in out
    args = json.loads((d / "torch" / "training_args.json").read_text())
    assert args["trainer"]["torch"] and args["evaluation"]["rows"] and args["evaluatedOn"]["adapter"]


def test_refusals(runs, tmp_path, capsys):
    d, _ = runs
    assert main(["pretrain", str(tmp_path), "--out", str(tmp_path / "x")]) == 1
    assert "has no plan.json" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "plan.json").write_text((d / "plan" / "plan.json").read_text())
    (bad / "corpus.bin").write_bytes(b"\0" * 10)
    with pytest.raises(PlanError, match="holds 10 bytes"):
        read_plan(bad)
    (bad / "corpus.bin").unlink()
    with pytest.raises(PlanError, match="has no corpus.bin"):
        read_plan(bad)
    assert main(["pretrain", str(d / "plan"), "--out", str(d / "torch")]) == 1
    assert "exists" in capsys.readouterr().err
