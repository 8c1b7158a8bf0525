"""The command line (python -m latent_playground eval | train), the bundle it writes (read back by this
package and by the engine's reader, evaluated by the engine with the same answers), and the refusals."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import REPORT, run_engine
from latent_playground.agents import Team
from latent_playground.bundle import BundleError, read_bundle
from latent_playground.cli import main
from latent_playground.evaluate import Evaluator
from latent_playground.tokenizer import load_tokenizer


def test_eval_prints_the_table_with_the_controls(engine_dir, capsys, tmp_path):
    run = engine_dir / "lookup-diffmas" / "bundle"
    assert main(["eval", str(run), "--split", "heldout", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "| diffmas | heldout |" in out
    for head in ("accuracy (95% CI)", "valid", "entropy", "shuffled", "zeroed", "noise", "rotated", "permuted", "chance"):
        assert head in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert [x["split"] for x in r["rows"]] == ["heldout"] and [c["control"] for c in r["controls"]] == ["shuffle", "zero", "noise", "rotate", "permute"]
    # the text channel has two controls, an untrained method no adapters
    assert main(["eval", str(engine_dir / "lookup-text" / "bundle"), "--split", "heldout"]) == 0
    out = capsys.readouterr().out
    # (the controls' row: the uncontrolled accuracy, 1.000 on a base that reads, then shuffled and zeroed)
    assert re.search(r"\| text +\| heldout \|", out) and re.search(r"\| text \| [01]\.\d{3} \|", out) and "n/a" in out and "no adapters" in out


def test_train_continues_a_run_into_a_bundle_the_engine_reads(engine_dir, tmp_path):
    src = engine_dir / "lookup-diffmas" / "bundle"
    out = tmp_path / "continued"
    # continues after the bundle's 20 steps: batches 21.. come from the Python port of the batch stream
    assert main(["train", str(src), "--steps", "3", "--out", str(out)]) == 0
    b = read_bundle(out)
    old = read_bundle(src)
    tr = b.json["training"]
    assert b.json["createdBy"] == "python train" and tr["stepsDone"] == old.json["training"]["stepsDone"] + 3
    assert tr["losses"][:20] == old.json["training"]["losses"] and len(tr["losses"]) == 23
    assert tr["phases"][-1]["from"] == "trained" and tr["phases"][-1]["firstStep"] == 21
    assert b.config["steps"] == 23
    # the evaluation at the end (train's default) in the page's layout, which the engine's reader takes below
    assert [e["split"] for e in b.json["results"]["evaluation"]] == ["train", "heldout", "ood"] and len(b.json["results"]["controls"]) == 5
    for key in ("a0", "a1"):
        d = out / "adapters" / key
        cfg = json.loads((d / "adapter_config.json").read_text())
        assert cfg["base_model_name_or_path"] == old.json["base"]["id"] and cfg["r"] == old.config["lora"]["r"]
        info = json.loads((d / "playground_run.json").read_text())
        assert info["agent"] == key and info["runConfig"]["method"] == "diffmas"
    # the engine's reader accepts it (every adapter fits the base) and its evaluation gives our answers
    run_engine(["eval", str(out), str(tmp_path / "engine.json"), "--splits", "heldout"])
    eng = json.loads((tmp_path / "engine.json").read_text())["evaluation"]["heldout"]
    team = Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys})
    mine = Evaluator(team, load_tokenizer(b.base_dir, b.json["tokens"])).evaluate("heldout")
    same = sum(x == y for x, y in zip(mine["predictions"], eng["predictions"]))
    REPORT["engine evaluates the PyTorch-trained bundle"] = f"{same}/{len(mine['predictions'])} answers identical, loss {mine['loss']:.6f} vs {eng['loss']:.6f}"
    assert same >= 0.99 * len(mine["predictions"])
    assert abs(mine["loss"] - eng["loss"]) <= 1e-4 * eng["loss"]


def test_refusals(engine_dir, tmp_path, capsys):
    src = engine_dir / "lookup-diffmas" / "bundle"
    taken = tmp_path / "taken"
    taken.mkdir()
    assert main(["train", str(src), "--steps", "1", "--out", str(taken)]) == 1
    assert "already exists" in capsys.readouterr().err
    newer = tmp_path / "newer"
    shutil.copytree(src, newer)
    meta = json.loads((newer / "run.json").read_text())
    (newer / "run.json").write_text(json.dumps({**meta, "version": 3}))
    with pytest.raises(BundleError, match="version 3 was written by a newer playground"):
        read_bundle(newer)
    assert main(["eval", str(newer)]) == 1
    (newer / "run.json").write_text(json.dumps(meta))
    (newer / "episodes" / "heldout.jsonl").write_text('{"split":"heldout"}\n')
    with pytest.raises(BundleError, match=r"episodes/heldout.jsonl: 1 lines, but run.json says 64"):
        read_bundle(newer)
    assert main(["train", str(engine_dir / "lookup-latentmas" / "bundle"), "--steps", "1", "--out", str(tmp_path / "x")]) == 1
    assert "trains nothing" in capsys.readouterr().err
