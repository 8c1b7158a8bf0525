"""capacity.py on the tiny base: a diffmas run of lookup d1 trained a few steps, 24 held-out episodes.
Free messages initialised from the senders' own reproduce the run's answers and loss at step 0, Adam
lowers the answer loss from either init, and a message of the wrong shape is refused with its shapes."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from latent_playground.agents import Team
from latent_playground.bundle import read_bundle
from latent_playground.capacity import Capacity, check_message, lookup_queries, optimise, real_message, received_positions
from latent_playground.cli import main
from latent_playground.evaluate import Evaluator
from latent_playground.tokenizer import load_tokenizer

TINY = Path(__file__).resolve().parents[2] / "public" / "models" / "tiny"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("capacity")
    assert main(["new", "--base", str(TINY), "--out", str(d / "new"), "--task", "lookup", "--difficulty", "1", "--method", "diffmas",
                 "--seed", "1", "--steps", "8", "--batch", "8", "--eval-size", "24", "--latent-steps", "2"]) == 0
    assert main(["train", str(d / "new"), "--from", "initial", "--steps", "8", "--no-eval", "--out", str(d / "run")]) == 0
    return d / "run"


@pytest.fixture(scope="module")
def team(run):
    b = read_bundle(run)
    t = Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys})
    return t, load_tokenizer(b.base_dir, b.json["tokens"])


def test_real_init_reproduces_the_run_at_step_0(team):
    t, tk = team
    ref = Evaluator(t, tk, batch=8).evaluate("heldout")
    r = Capacity(t, tk, batch=8).run("heldout", "real", 0, 0.01)
    assert r["step0"]["predictions"] == ref["predictions"] == r["final"]["predictions"]
    assert r["step0"]["accuracy"] == ref["accuracy"]
    assert r["rowNorm"]["step0"] == r["rowNorm"]["final"] and r["rowNorm"]["step0"]["k"] > 0
    # the same passes over the same prefix: float32 summation order only (a relative 1e-6 holds it)
    assert math.isclose(r["step0"]["loss"], ref["loss"], rel_tol=1e-6)


@pytest.mark.parametrize("init", ["zeros", "real"])
def test_optimisation_lowers_the_loss(team, init):
    t, tk = team
    r = Capacity(t, tk, batch=8).run("heldout", init, 15, 0.05, episodes=16)
    assert r["episodes"] == 16 and len(r["lossCurve"]) == 16
    assert r["final"]["loss"] < 0.8 * r["step0"]["loss"]
    assert r["lossCurve"][-1] == pytest.approx(r["final"]["loss"], rel=1e-6)
    assert r["final"]["accuracy"] >= r["step0"]["accuracy"]
    if init == "zeros":  # N(0, 0.01^2) per float: a row of W floats has norm about 0.01 sqrt(W)
        assert r["rowNorm"]["step0"]["v"] == pytest.approx(0.01 * math.sqrt(t.W), rel=0.1)


def test_episodes_are_independent(team):
    """One episode's vectors get only its own loss's gradient: optimising a batch moves each episode's
    message as optimising it alone does (Adam is per element)."""
    t, tk = team
    cap = Capacity(t, tk, batch=8)
    rows, real, inputs, targets, _, kv, start = next(cap.batches("heldout", 8))
    both, _ = optimise(t, kv, start, inputs[-1], targets, 3, 0.05, kv.shape[4])
    alone, _ = optimise(t, kv[:1], start, inputs[-1][:1], targets[:1], 3, 0.05, kv.shape[4])
    assert torch.allclose(both[:1], alone, atol=1e-5)


def test_wrong_shapes_are_refused(team):
    t, tk = team
    rows, real, inputs, targets, _, kv, start = next(Capacity(t, tk, batch=8).batches("heldout"))
    B, L, two, H, P, hd = kv.shape
    assert P == received_positions(t, [x.shape[1] for x in inputs]) == 2  # the run's 2 latent steps
    check_message(t, kv, B, P)
    want = f"message of shape {[B, L, 2, H, P, hd - 1]}, the receiver reads {[B, L, 2, H, P, hd]}"
    with pytest.raises(ValueError, match=re.escape(want)):
        check_message(t, kv[..., :-1], B, P)
    with pytest.raises(ValueError, match="received positions"):
        optimise(t, kv[:, :, :, :, :1], start, inputs[-1], targets, 1, 0.01, P)
    with pytest.raises(ValueError, match="message of shape"):
        optimise(t, kv[:4], start, inputs[-1], targets, 1, 0.01, P)
    with pytest.raises(ValueError, match="not floating point"):
        check_message(t, kv.long(), B, P)
    with pytest.raises(ValueError, match="lr > 0"):
        optimise(t, kv, start, inputs[-1], targets, 1, 0.0, P)


def test_cli_writes_the_report(run, tmp_path, capsys):
    out = tmp_path / "cap.json"
    assert main(["capacity", str(run), "--steps", "2", "--episodes", "8", "--batch", "8", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [(r["adapters"], r["scope"], r["init"]) for r in doc["results"]] == [(w, "episode", i) for w in ("trained", "initial") for i in ("zeros", "real")]
    assert doc["reference"]["chance"] > 0 and set(doc["realMessageAccuracy"]) == {"trained", "initial"}
    assert "| receiver | scope | init |" in capsys.readouterr().out
    assert main(["capacity", str(run), "--init", "ones"]) == 1
    assert "--init ones" in capsys.readouterr().err
    assert main(["capacity", str(run), "--scope", "batch"]) == 1
    assert "--scope batch: not one of episode, table" in capsys.readouterr().err


def test_table_scope_asks_every_key_with_one_message(team):
    t, tk = team
    cap = Capacity(t, tk, batch=4)
    eps = cap.ev.bundle.episodes["heldout"][:6]
    q, owner, own = lookup_queries(eps, tk, "char")
    size = len(eps[0]["parts"][0][4:]) // 2
    assert size >= 2 and len(q) == size * len(eps) and owner == [i for i in range(len(eps)) for _ in range(size)]
    for i, ep in enumerate(eps):
        mine = [x for x, o in zip(q, owner) if o == i]
        (it,) = [x for x, o, w in zip(q, owner, own) if o == i and w]
        assert it["agents"][-1]["ids"] == ep["agents"][-1]["ids"] and it["targetIds"] == ep["targetIds"] and it["answer"] == ep["answer"]
        assert all(x["agents"][0] == ep["agents"][0] for x in mine)  # the sender's prompt is the episode's
        assert sorted(x["answer"] for x in mine) == sorted(ep["parts"][0][5::2])
    # the senders' own message, scored on every query: on the own query it is the episode scope's step 0
    tab = cap.run("heldout", "real", 0, 0.01, episodes=12, scope="table")
    own = list(cap.own)
    epi = cap.run("heldout", "real", 0, 0.01, episodes=12)
    assert tab["queries"] == 12 * size and tab["step0"]["ownQueryAccuracy"] == epi["step0"]["accuracy"]
    mine = [p for p, w in zip(tab["step0"]["predictions"], own) if w]
    assert mine == epi["step0"]["predictions"]
    opt = cap.run("heldout", "zeros", 15, 0.05, episodes=12, scope="table")
    assert opt["final"]["loss"] < 0.8 * opt["step0"]["loss"]
    one = cap.run("heldout", "zeros", 15, 0.05, episodes=12, scope="table", positions=1)  # a narrower channel
    assert one["positions"] == 1 and one["final"]["loss"] < one["step0"]["loss"]
    with pytest.raises(ValueError, match="positions 3 exceeds the 2 the receiver reads"):
        cap.run("heldout", "zeros", 1, 0.05, episodes=4, positions=3)


def test_shared_messages_sum_their_queries_gradients(team):
    """Rows reading one message (share) train it on their summed loss: two rows of one message move it
    as the batch of those two rows with the message repeated and the gradients added."""
    t, tk = team
    rows, real, inputs, targets, _, kv, start = next(Capacity(t, tk, batch=8).batches("heldout", 8))
    P = kv.shape[4]
    share = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    ids = inputs[-1][[0, 1, 0, 1, 2, 3, 2, 3]]
    tg = targets[[0, 1, 0, 1, 2, 3, 2, 3]]
    got, losses = optimise(t, kv[[0, 0, 2, 2]], start, ids, tg, 1, 0.05, P, share)
    assert len(losses) == 2 and losses[1] < losses[0]
    with pytest.raises(ValueError, match="share must give each of the 8 rows one of the 4 messages"):
        optimise(t, kv[:4], start, ids, tg, 1, 0.05, P, torch.tensor([0, 1, 2, 3, 4, 5, 6, 7]))
    # one Adam step moves every element by lr in the direction of the summed gradient's sign (bias-corrected first step)
    x = kv[[0, 0, 2, 2]].clone().requires_grad_(True)
    from latent_playground.agents import loss_sum
    from latent_playground.capacity import final_logits
    loss_sum(final_logits(t, x[share], start, ids, grad=True), tg).backward()
    step = got - kv[[0, 0, 2, 2]]
    moved = x.grad.abs() > 1e-4  # (Adam divides by |g| + 1e-8: within 5e-6 of lr there)
    assert torch.allclose(step[moved], -0.05 * torch.sign(x.grad[moved]), atol=1e-4)
