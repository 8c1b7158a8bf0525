"""The engine's TensorBoard event files (src/storage/tensorboard.ts) read with TensorBoard's own reader.

tests/python/tensorboard-write.ts writes the files of tests/fixtures/tensorboard-records.json (a page
training run and a comparison) as the page's export and `experiment --tensorboard` do; here
EventAccumulator reads them and every scalar (tag, step, float32 value, wall time) and the config text
are checked against the records, with the expectations derived in Python from the layout's rules, and
train/lr against the companion's own schedule (latent_playground.train.lr_at).
"""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from latent_playground.train import lr_at

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "tensorboard-records.json"
RECORDS = json.loads(FIXTURE.read_text())["records"]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("tensorboard")
    script = tmp / "tensorboard-write.mjs"
    subprocess.run(["node", "scripts/bundle.mjs", "tests/python/tensorboard-write.ts", str(script)], cwd=ROOT, check=True)
    out = tmp / "logs"
    subprocess.run(["node", str(script), str(FIXTURE), str(out)], cwd=ROOT, check=True)
    return out


def f32(x: float) -> float:
    return float(np.float32(x))


def schedule_lr(config: dict, step: int) -> float:
    """The engine's schedule (src/mas/run-data.ts trainHyperOf): warm-up a tenth of the steps (at most 50), cosine to lr/10."""
    steps = config["steps"]
    return lr_at(step, config["lr"], min(50, math.ceil(steps / 10)), steps, config["lr"] / 10)


def expected_runs(rec: dict) -> dict[tuple[str, int], dict]:
    """(method, seed) -> {config, start, scalars: {tag: [(step, value, wall)]}} by the layout's rules."""
    start = rec["createdAt"] / 1000
    runs = {}

    def paced(seconds: float, steps: int):
        return lambda step: start + (seconds * min(step, steps) / steps if steps > 0 else 0)

    def put(scalars: dict, wall, tag: str, step: int, value):
        if value is None:
            return
        points = [p for p in scalars.get(tag, []) if p[0] != step]  # a later value wins at its step
        scalars[tag] = sorted(points + [(step, value, wall(step))], key=lambda p: p[0])

    if rec["kind"] == "run":
        c, s = rec["config"], {}
        wall = paced(rec["trainSeconds"], rec["stepsDone"])
        for step, loss in zip(rec["curves"]["steps"], rec["curves"]["loss"]):
            put(s, wall, "train/loss", step, loss)
            put(s, wall, "train/lr", step, schedule_lr(c, step))
        for e in rec["curves"]["evals"]:
            put(s, wall, "eval/heldout/accuracy", e["step"], e["accuracy"])
            put(s, wall, "eval/heldout/loss", e["step"], e["loss"])
        for r in rec["evalRows"] or []:
            put(s, wall, f"eval/{r['split']}/accuracy", rec["stepsDone"], r["accuracy"])
            put(s, wall, f"eval/{r['split']}/loss", rec["stepsDone"], r.get("loss"))
        runs[(c["method"], c["seed"])] = {"config": c, "scalars": s}
        return runs
    report, base = rec["compare"]["report"], rec["compare"]["request"]["base"]
    for row in report["rows"]:
        key = (row["method"], row["seed"])
        if key in runs:
            continue
        method, seed = key
        config = {**base, "method": method, "seed": seed}
        rows = [r for r in report["rows"] if (r["method"], r["seed"]) == key]
        losses = next((c["losses"] for c in report.get("curves", []) if (c["method"], c["seed"]) == key), [])
        last, s = len(losses), {}
        wall = paced(rows[0]["trainSeconds"], last)
        for i, loss in enumerate(losses):
            put(s, wall, "train/loss", i + 1, loss)
            put(s, wall, "train/lr", i + 1, schedule_lr(config, i + 1))
        for r in rows:
            put(s, wall, f"eval/{r['split']}/accuracy", last, r["accuracy"])
            put(s, wall, f"eval/{r['split']}/loss", last, r.get("loss"))
        for c in report["controls"]:
            if (c["method"], c["seed"]) == key:
                put(s, wall, f"control/{c['control']}/heldout/accuracy", last, c["accuracy"])
        runs[key] = {"config": config, "scalars": s}
    return runs


@pytest.mark.parametrize("rec", RECORDS, ids=[r["id"] for r in RECORDS])
def test_event_files_hold_the_record(logdir: Path, rec: dict):
    want = expected_runs(rec)
    folders = sorted(p.relative_to(logdir / rec["id"]).as_posix() for p in (logdir / rec["id"]).glob("*/*") if p.is_dir())
    assert folders == sorted(f"{m}/seed{s}" for m, s in want)
    for (method, seed), run in want.items():
        folder = logdir / rec["id"] / method / f"seed{seed}"
        files = [p.name for p in folder.iterdir()]
        assert files == [f"events.out.tfevents.{rec['createdAt'] // 1000}.fixture.test"]
        ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
        ea.Reload()
        assert ea.file_version == 2.0  # the reader parses "brain.Event:2" to its version number
        tags = ea.Tags()
        assert sorted(tags["scalars"]) == sorted(run["scalars"])
        for tag, points in run["scalars"].items():
            got = [(e.step, e.value, e.wall_time) for e in ea.Scalars(tag)]
            assert [(s, v) for s, v, _ in got] == [(s, f32(v)) for s, v, _ in points], f"{method}/seed{seed} {tag}"
            assert [w for _, _, w in got] == pytest.approx([w for _, _, w in points], abs=1e-6), f"{method}/seed{seed} {tag} wall time"
        # the config: a text summary at step 0 (plugin "text", a DT_STRING tensor of shape [1]), JSON in a code
        # block, under the tag torch's add_text("config", ...) gives it (as the companion's tb.py writes it)
        assert tags["tensors"] == ["config/text_summary"]
        assert ea.SummaryMetadata("config/text_summary").plugin_data.plugin_name == "text"
        (event,) = ea.Tensors("config/text_summary")
        assert event.step == 0
        assert event.wall_time == pytest.approx(rec["createdAt"] / 1000)
        text = tensor_util.make_ndarray(event.tensor_proto)
        assert text.shape == (1,)
        body = text[0].decode()
        assert body.startswith("```json\n") and body.endswith("\n```")
        assert json.loads(body[len("```json\n"):-len("\n```")]) == run["config"]


def test_the_fixture_covers_the_layout(logdir: Path):
    """Guard on the fixture itself: it exercises every kind of tag, a step with no loss, the table winning at a step, and an untrained method."""
    tags = set()
    for rec in RECORDS:
        for run in expected_runs(rec).values():
            tags |= {t.split("/")[0] + "/" + t.split("/")[-1] for t in run["scalars"]}
    assert tags == {"train/loss", "train/lr", "eval/accuracy", "eval/loss", "control/accuracy"}
    run = RECORDS[0]
    assert None in run["curves"]["loss"]
    assert any(e["step"] == run["stepsDone"] for e in run["curves"]["evals"])
    assert ("single", 1) in expected_runs(RECORDS[1])


def test_the_companion_writes_the_same_run_alike(logdir: Path, tmp_path: Path):
    """The companion's writer (tb.py, torch's SummaryWriter) given the training record's values gives what the engine's file holds: one layout, one config tag and text."""
    from latent_playground.tb import Board, run_dir

    rec = RECORDS[0]
    (key, run), = expected_runs(rec).items()
    board = Board(tmp_path, run["config"])
    events = sorted((step, tag, value) for tag, points in run["scalars"].items() for step, value, _ in points)
    for step, tag, value in events:
        board.scalar(tag, value, step)
    board.close()
    theirs_dir = run_dir(tmp_path, run["config"])
    assert theirs_dir.relative_to(tmp_path).as_posix() == f"{key[0]}/seed{key[1]}"
    ours = EventAccumulator(str(logdir / rec["id"] / key[0] / f"seed{key[1]}"), size_guidance={"scalars": 0, "tensors": 0})
    theirs = EventAccumulator(str(theirs_dir), size_guidance={"scalars": 0, "tensors": 0})
    ours.Reload()
    theirs.Reload()
    assert ours.Tags()["tensors"] == theirs.Tags()["tensors"]
    tag = ours.Tags()["tensors"][0]
    assert tensor_util.make_ndarray(ours.Tensors(tag)[0].tensor_proto)[0] == tensor_util.make_ndarray(theirs.Tensors(tag)[0].tensor_proto)[0]
    assert sorted(ours.Tags()["scalars"]) == sorted(theirs.Tags()["scalars"])
    for t in ours.Tags()["scalars"]:
        assert [(e.step, e.value) for e in ours.Scalars(t)] == [(e.step, e.value) for e in theirs.Scalars(t)], t
