"""config.lrSchedule: the companion's schedule (latent_playground.train.lr_at, with the warmup and minLr a
run bundle carries) gives the engine's learning rate at every step (src/model/train.ts lrAt over
src/mas/run-data.ts trainHyperOf; tests/python/lr-schedule.ts prints them). Both compute the same
double-precision formula, so they agree to rounding: relative 1e-12."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from latent_playground.train import lr_at

ROOT = Path(__file__).resolve().parents[2]

CONFIGS = [
    {"lr": 3e-3, "steps": 400},
    {"lr": 3e-3, "steps": 400, "lrSchedule": "cosine"},
    {"lr": 3e-3, "steps": 400, "lrSchedule": "constant"},
    {"lr": 1e-3, "steps": 5000, "lrSchedule": "constant"},
    {"lr": 0.01, "steps": 7, "lrSchedule": "constant"},
    {"lr": 0.01, "steps": 1},
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> list[dict]:
    script = tmp_path_factory.mktemp("lr") / "lr-schedule.mjs"
    subprocess.run(["node", "scripts/bundle.mjs", "tests/python/lr-schedule.ts", str(script)], cwd=ROOT, check=True)
    out = subprocess.run(["node", str(script), json.dumps(CONFIGS)], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_every_step_matches_the_engine(engine):
    assert len(engine) == len(CONFIGS)
    for case in engine:
        c = case["config"]
        kind = c.get("lrSchedule") or "cosine"  # train.py: the run's own schedule from its config
        ours = [lr_at(t, c["lr"], case["warmupSteps"], c["steps"], case["minLr"], kind) for t in range(1, c["steps"] + 1)]
        assert ours == pytest.approx(case["lrs"], rel=1e-12, abs=0), c
        if kind == "constant":
            # the warmup, then lr held to the last step
            assert all(x == c["lr"] for x in case["lrs"][case["warmupSteps"]:])
        elif c["steps"] > 1:
            assert case["lrs"][-1] == pytest.approx(c["lr"] / 10, rel=1e-12)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="lr schedule must be one of cosine, constant"):
        lr_at(1, 1e-3, 0, 10, 1e-4, "linear")


def test_run_config_accepts_and_round_trips_the_options():
    from latent_playground.run_config import default_config, resolve_topology, validate_config
    from latent_playground.tasks import make_task

    t = resolve_topology("preset", make_task("lookup", 1))
    c = default_config(topology=t, lrSchedule="constant", latentSlotOffset=True)
    validate_config(c)
    assert json.loads(json.dumps(c))["lrSchedule"] == "constant" and json.loads(json.dumps(c))["latentSlotOffset"] is True
    with pytest.raises(ValueError, match="lrSchedule must be 'cosine' or 'constant'"):
        validate_config({**c, "lrSchedule": "step"})
    with pytest.raises(ValueError, match="latentSlotOffset must be true or false"):
        validate_config({**c, "latentSlotOffset": 1})
    with pytest.raises(ValueError, match="method text has no latent steps"):
        validate_config({**c, "method": "text"})
    with pytest.raises(ValueError, match="trains the receiver only"):
        validate_config({**c, "method": "diffmas-detached"})
