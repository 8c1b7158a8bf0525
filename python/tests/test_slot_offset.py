"""The learned latent slot offsets of issue 22 item 2 (config.latentSlotOffset; slot_offset.py, the engine's
src/mas/slot-offset.ts) against the engine on the tiny base (tests/python/engine-check.ts, its on-demand
cases lookup-diffmas-slot-offset, own adapters, and relay-diffmas-shared-slot-offset, one adapter and its
offsets shared by a chain of senders, at a constant lr after the warmup (config.lrSchedule); 20 steps):
- training from the bundle's initial adapters (offsets 0) on its batches: the losses within 1e-4 relative
  at step 1 and 1e-3 at step 20 (the DiffMAS cross-check's tolerances, test_crosscheck.py);
- the gradient of the first batch's loss at the trained adapters and offsets (both non-zero), every
  tensor within 1e-3 of its scale, the offsets' reported apart; the norm within 1e-3, the loss within
  1e-4 (+1e-6);
- the evaluation with the trained offsets answering as the engine does (99% of held-out, as there).
Plus the file, `new` writing zero offsets, and a run trained here saving its offsets.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from conftest import REPORT, ROOT, engine_json, run_engine
from latent_playground.agents import Team, loss_sum, plan_of
from latent_playground.bundle import read_bundle
from latent_playground.slot_offset import SLOT_OFFSET_FILE, SLOT_OFFSET_TENSOR, read_offsets, slot_counts, write_offsets
from latent_playground.tasks import PlanAgent
from latent_playground.tokenizer import load_tokenizer
from latent_playground.train import _inputs, train

TINY = ROOT / "public" / "models" / "tiny"
CASES = ["lookup-diffmas-slot-offset", "relay-diffmas-shared-slot-offset"]
STEPS = 20


@pytest.fixture(scope="module")
def offset_cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("engine-slot-offset")
    p = run_engine(["make", str(d), "--model", str(TINY), "--cases", ",".join(CASES), "--steps", str(STEPS), "--eval-size", "32", "--batch", "4"], timeout=1800)
    print(p.stdout)
    return d


def _python_gradients(b):
    """The gradient of batch 1's mean loss at the trained adapters and offsets, per adapter key: PEFT keys and the offsets' tensor name."""
    team = Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys}, trainable=True)
    batch = b.batches[0]
    inputs, targets = _inputs(batch, list(range(len(batch["rows"]))), len(team.plan))
    logits, *_ = team.forward(inputs, grad=True)
    loss = loss_sum(logits, targets) / int((targets >= 0).sum())
    loss.backward()
    out = {}
    for key in team.trainable:
        out[key] = {n.replace(f".{key}.", "."): p.grad.detach().double().numpy().copy() for n, p in team.peft.named_parameters() if f".{key}." in n and ".lora_" in n}
        if key in team.slot_offsets.params:
            out[key][SLOT_OFFSET_TENSOR] = team.slot_offsets.params[key].grad.detach().double().numpy().copy()
    return float(loss), out


@pytest.mark.parametrize("name", CASES)
def test_training_and_gradients_match_the_engine(offset_cases, name):
    case = offset_cases / name
    eng = engine_json(case)
    b = read_bundle(case / "bundle")
    assert b.config["latentSlotOffset"] is True and len(b.batches) == STEPS
    tk = load_tokenizer(b.base_dir, b.json["tokens"])
    # the bundle's initial offsets are 0, its trained ones not
    for key in slot_counts(plan_of(b)):
        assert not read_offsets(b.adapter_dir(key, initial=True), _dim(b)).any()
        assert read_offsets(b.adapter_dir(key), _dim(b)).abs().max() > 0
    r = train(b, tk, STEPS, start="initial", cpu=True, log=lambda s: None)
    want = [s["loss"] for s in eng["train"]]
    rel = [abs(p - e) / abs(e) for p, e in zip(r["losses"], want)]
    assert max(abs(p - e["lr"]) for p, e in zip(r["lrs"], eng["train"])) < 1e-9, "the schedule differs"
    if name.startswith("relay"):  # this case also runs config.lrSchedule constant: lr held after the 2-step warmup
        assert b.config["lrSchedule"] == "constant" and all(e["lr"] == b.config["lr"] for e in eng["train"][2:])
    assert rel[0] <= 1e-4, f"step 1: loss {r['losses'][0]} here, {want[0]} in the engine"
    assert rel[STEPS - 1] <= 1e-3, f"step {STEPS}: loss {r['losses'][STEPS - 1]} here, {want[STEPS - 1]} in the engine"
    g = eng["gradients"]
    loss, grads = _python_gradients(b)
    assert abs(loss - g["loss"]) <= 1e-4 * abs(g["loss"]) + 1e-6, f"loss {loss} here, {g['loss']} in the engine"
    worst, where, total_sq, off_worst = 0.0, "", 0.0, 0.0
    for key, tensors in g["grads"].items():
        assert set(tensors) == set(grads[key]), f"adapter {key}: other tensors here"
        for k, v in tensors.items():
            w = np.frombuffer(base64.b64decode(v), dtype=np.float32).astype(np.float64).reshape(grads[key][k].shape)
            total_sq += float((grads[key][k] ** 2).sum())
            err = float(np.abs(grads[key][k] - w).max() / max(np.abs(w).max(), 1e-12))
            if k == SLOT_OFFSET_TENSOR:
                assert np.abs(w).max() > 0, f"adapter {key}: the engine's offset gradient is 0"
                off_worst = max(off_worst, err)
            if err > worst:
                worst, where = err, f"{key} {k}"
    assert any(SLOT_OFFSET_TENSOR in t for t in g["grads"].values())
    norm = total_sq ** 0.5
    assert abs(norm - g["gradNorm"]) <= 1e-3 * g["gradNorm"], f"gradient norm {norm} here, {g['gradNorm']} in the engine"
    assert worst <= 1e-3, f"the gradient of {where} differs by {worst:.2e} of its scale"
    from latent_playground.evaluate import Evaluator

    ev = Evaluator(Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys}), tk)
    got = ev.evaluate("heldout")
    same = sum(a == c for a, c in zip(got["predictions"], eng["evaluation"]["heldout"]["predictions"]))
    assert same >= 0.99 * len(got["predictions"])
    REPORT[f"slot offsets {name} (tiny base)"] = (f"loss rel. diff step 1 {rel[0]:.1e}, step {STEPS} {rel[STEPS - 1]:.1e}; gradients max|diff|/max|engine| {worst:.1e} ({where}), "
                                                  f"offsets {off_worst:.1e}; norm {norm:.5f} vs {g['gradNorm']:.5f}; heldout answers {same}/{len(got['predictions'])} identical")


def _dim(b) -> int:
    return json.loads((b.base_dir / "config.json").read_text())["hidden_size"]


def test_the_file_and_its_refusals(tmp_path):
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7
    write_offsets(tmp_path, t)
    assert torch.equal(read_offsets(tmp_path, 4), t)
    with pytest.raises(ValueError, match=r"has shape \[3, 4\], expected \[slots, 5\]"):
        read_offsets(tmp_path, 5)
    from safetensors.torch import save_file

    save_file({SLOT_OFFSET_TENSOR: t, "x": t.clone()}, str(tmp_path / SLOT_OFFSET_FILE))
    with pytest.raises(ValueError, match="must hold the one tensor latent_slot_offset, it holds latent_slot_offset, x"):
        read_offsets(tmp_path, 4)
    with pytest.raises(ValueError, match="no latent_slot_offset.safetensors"):
        read_offsets(tmp_path / "none", 4)
    # slots per adapter key: the most latent steps among its senders; receivers and untrained agents have none
    plan = [PlanAgent("a0", 0, 3, "s", False, []), PlanAgent("a1", 1, 2, "s", False, [0]), PlanAgent("a2", 2, 0, "s", True, [0, 1]),
            PlanAgent("b", 0, 4, None, False, [])]
    assert slot_counts(plan) == {"s": 3}


def test_new_writes_zero_offsets_and_train_saves_trained_ones(tmp_path):
    from latent_playground.new_run import make_run
    from latent_playground.run_config import default_config, resolve_topology
    from latent_playground.tasks import make_task

    cfg = default_config(topology=resolve_topology("preset", make_task("lookup", 1), 2), modelId="tiny", steps=2, batch=4, evalSize=8, latentSlotOffset=True)
    out = make_run(cfg, str(TINY), tmp_path / "run", batches=2, log=lambda s: None)
    b = read_bundle(out)
    D = _dim(b)
    senders = [a["adapterKey"] for a in b.agents if not a["final"]]
    for key in senders:
        z = read_offsets(b.adapter_dir(key, initial=True), D)
        assert z.shape == (2, D) and not z.any()
    receiver = next(a["adapterKey"] for a in b.agents if a["final"])
    assert not (b.adapter_dir(receiver, initial=True) / SLOT_OFFSET_FILE).exists()
    tk = load_tokenizer(b.base_dir, b.json["tokens"])
    train(b, tk, 2, start="initial", out=tmp_path / "trained", cpu=True, log=lambda s: None)
    t = read_bundle(tmp_path / "trained")
    for key in senders:
        assert read_offsets(t.adapter_dir(key), D).abs().max() > 0
    # a bundle whose sender adapter lost its offsets is refused by name
    (t.adapter_dir(senders[0]) / SLOT_OFFSET_FILE).unlink()
    with pytest.raises(ValueError, match="no latent_slot_offset.safetensors, which a run with latentSlotOffset keeps"):
        Team(t, {k: t.adapter_dir(k) for k in t.adapter_keys})


def test_new_takes_both_flags_and_refuses_what_does_not_apply(tmp_path, capsys):
    from latent_playground.cli import main

    args = ["--task", "lookup", "--method", "diffmas", "--steps", "3", "--batch", "2", "--eval-size", "4", "--latent-steps", "2"]
    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "a"), *args, "--lr-schedule", "constant", "--latent-slot-offset"]) == 0
    b = read_bundle(tmp_path / "a")
    assert b.config["lrSchedule"] == "constant" and b.config["latentSlotOffset"] is True
    assert read_offsets(b.adapter_dir("a0", initial=True), _dim(b)).shape[0] == 2
    capsys.readouterr()
    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "b"), *args, "--lr-schedule", "step"]) == 1
    assert "lrSchedule must be 'cosine' or 'constant', got \"step\"" in capsys.readouterr().err
    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "c"), *[a if a != "diffmas" else "latentmas" for a in args], "--latent-slot-offset"]) == 1
    assert "method latentmas trains nothing: use diffmas or diffmas-full" in capsys.readouterr().err
