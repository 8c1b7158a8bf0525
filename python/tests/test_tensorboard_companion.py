"""Issue 24 item 3: `train --tensorboard DIR` writes the scalars of /work/notes' shared layout (the
engine's writer follows it too): DIR/<method>/seed<seed>/events.out.tfevents.*, train/loss, train/lr,
train/grad_norm and perf/* every step, eval/<split>/* at each evaluation, control/<c>/heldout/accuracy
at the final step, the RunConfig as text at step 0. Read back with tensorboard's EventAccumulator."""
from __future__ import annotations

import json

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from latent_playground.bundle import read_bundle
from latent_playground.cli import main

STEPS = 2


def test_tensorboard_scalars_in_the_shared_layout(engine_dir, tmp_path):
    src = engine_dir / "lookup-diffmas" / "bundle"
    cfg = read_bundle(src).config
    tb = tmp_path / "tb"
    assert main(["train", str(src), "--steps", str(STEPS), "--from", "initial", "--threads", "1", "--eval-every", "1",
                 "--tensorboard", str(tb), "--out", str(tmp_path / "out"), "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    run = tb / cfg["method"] / f"seed{cfg['seed']}"
    files = list(run.iterdir())
    assert len(files) == 1 and files[0].name.startswith("events.out.tfevents.")
    first = next(iter(EventFileLoader(str(files[0])).Load()))
    assert first.file_version == "brain.Event:2"
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    per_step = {"train/loss", "train/lr", "train/grad_norm", "perf/seconds_per_step", "perf/tokens_per_second"}
    controls = {f"control/{c}/heldout/accuracy" for c in ("shuffle", "zero", "noise", "rotate", "permute")}
    evals = {f"eval/{s}/{k}" for s in ("train", "heldout", "ood") for k in ("accuracy", "loss")}
    assert tags == per_step | controls | evals, tags ^ (per_step | controls | evals)
    for tag in per_step:
        assert [e.step for e in acc.Scalars(tag)] == list(range(1, STEPS + 1)), tag
    np.testing.assert_allclose([e.value for e in acc.Scalars("train/loss")], r["losses"], rtol=1e-6)  # float32 in the file
    np.testing.assert_allclose([e.value for e in acc.Scalars("train/lr")], r["lrs"], rtol=1e-6)
    np.testing.assert_allclose([e.value for e in acc.Scalars("train/grad_norm")], r["gradNorms"], rtol=1e-6)
    assert all(e.value > 0 for e in acc.Scalars("perf/tokens_per_second"))
    # heldout every step (step 1 periodic, step 2 final), train and ood at the end, controls at the final step
    assert [e.step for e in acc.Scalars("eval/heldout/accuracy")] == [1, 2]
    assert [e.step for e in acc.Scalars("eval/ood/loss")] == [2] and [e.step for e in acc.Scalars("control/zero/heldout/accuracy")] == [2]
    final = {x["split"]: x for x in r["evaluation"]["rows"]}
    assert acc.Scalars("eval/heldout/accuracy")[-1].value == np.float32(final["heldout"]["accuracy"])
    shuffle = next(c for c in r["evaluation"]["controls"] if c["control"] == "shuffle")
    assert acc.Scalars("control/shuffle/heldout/accuracy")[0].value == np.float32(shuffle["accuracy"])
    # the RunConfig as text at step 0, a JSON code block
    text = acc.Tensors("config/text_summary")
    assert [e.step for e in text] == [0]
    body = text[0].tensor_proto.string_val[0].decode()
    assert body.startswith("```json\n") and body.endswith("\n```")
    assert json.loads(body[len("```json\n"):-len("\n```")]) == cfg


def test_the_bundle_carries_the_evaluation_for_the_page(engine_dir, tmp_path):
    """run.json's results as the page's import reads them (src/mas/run-import.ts): the evaluation at the
    end with its interval, heldout at each evaluation, the controls."""
    src = engine_dir / "lookup-diffmas" / "bundle"
    out = tmp_path / "out"
    assert main(["train", str(src), "--steps", "2", "--threads", "1", "--eval-every", "1", "--out", str(out), "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    res = read_bundle(out).json["results"]
    done = read_bundle(src).json["training"]["stepsDone"]
    assert [h["step"] for h in res["heldout"]][-2:] == [done + 1, done + 2]
    assert [e["split"] for e in res["evaluation"]] == ["train", "heldout", "ood"]
    held = res["evaluation"][1]
    assert held["accuracy"] == r["evaluation"]["rows"][1]["accuracy"] and len(held["ci95"]) == 2 and held["episodes"] == 64
    assert res["heldout"][-1] == {"step": done + 2, "loss": held["loss"], "accuracy": held["accuracy"]}
    assert [c["control"] for c in res["controls"]] == ["shuffle", "zero", "noise", "rotate", "permute"]
