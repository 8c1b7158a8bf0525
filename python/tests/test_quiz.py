"""The quiz loss and the curriculum of issue 22 item 2 (quiz.py, curriculum.py) against the engine on the
tiny base (tests/python/engine-check.ts, its on-demand cases lookup-diffmas-quiz, lookup-diffmas-curriculum
and lookup-diffmas-quiz-curriculum, 20 steps): training from the bundle's initial adapters on its batches,
the losses within 1e-4 relative at step 1 and 1e-3 at step 20 (the DiffMAS cross-check's tolerances,
test_crosscheck.py); the gradient of the first batch's loss at the trained adapters, every tensor within
1e-3 of its scale, the norm within 1e-3 and the loss within 1e-4 (+1e-6); and the evaluation (unchanged
by either option) answering as the engine does. Plus the rows and the refusals, with the engine's words.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from conftest import REPORT, ROOT, engine_json, run_engine
from latent_playground.agents import Team, loss_sum
from latent_playground.bundle import read_bundle
from latent_playground.quiz import QuizBatches, quiz_problem, quiz_rows
from latent_playground.render import rendering
from latent_playground.run_config import default_config, method_spec, resolve_topology, validate_config
from latent_playground.tasks import PlanAgent, make_task, sample_episodes
from latent_playground.tokenizer import load_tokenizer
from latent_playground.train import _inputs, train

TINY = ROOT / "public" / "models" / "tiny"
CASES = ["lookup-diffmas-quiz", "lookup-diffmas-curriculum", "lookup-diffmas-quiz-curriculum"]
STEPS = 20


def test_quiz_rows_ask_every_key():
    from latent_playground.tokenizer import CharTokenizer
    import json

    tk = CharTokenizer(json.loads((TINY / "tokenizer.json").read_text()))
    task = make_task("lookup", 3)
    eps = sample_episodes(task, "train", 2, 5)
    final = PlanAgent("a1", 1, 0, "a1", True, [0])
    Q, ids, targets, qeps = quiz_rows(task, tk, "char", final, False, eps, 1)
    assert Q == 4 and ids.shape == (8, ids.shape[1]) and targets.shape == ids.shape
    for b, ep in enumerate(eps):
        table = ep.contents[0]
        for k in range(4):
            row = qeps[b * 4 + k]
            assert row.contents == [table, table[2 * k]] and row.answer == table[2 * k + 1] and row.content_key == ep.content_key
            t = [x for x in targets[b * 4 + k].tolist() if x != -100]
            assert tk.decode(t) == table[2 * k + 1] + "<eos>"
        assert ep.key in [q.key for q in qeps[b * 4:b * 4 + 4]]


def test_refusals_in_the_engines_words():
    def cfg(task, **over):
        return default_config(topology=resolve_topology("preset", make_task(task, 2)), task=task, difficulty=2, **over)
    for m in ("diffmas", "diffmas-full", "diffmas-detached"):
        validate_config(cfg("lookup", method=m, quizLoss=True))
    with pytest.raises(ValueError, match="only task lookup has .*use task lookup, or turn quizLoss off"):
        validate_config(cfg("relay", quizLoss=True))
    with pytest.raises(ValueError, match="method text-trained sends no latent message"):
        validate_config(cfg("lookup", method="text-trained", quizLoss=True))
    with pytest.raises(ValueError, match="method latentmas trains nothing"):
        validate_config(cfg("lookup", method="latentmas", quizLoss=True))
    with pytest.raises(ValueError, match="quizLoss must be true or false"):
        validate_config(cfg("lookup", quizLoss=1))
    assert quiz_problem({"task": "lookup"}, method_spec("single")) is None


@pytest.fixture(scope="module")
def quiz_cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("engine-quiz")
    p = run_engine(["make", str(d), "--model", str(TINY), "--cases", ",".join(CASES), "--steps", str(STEPS), "--eval-size", "32", "--batch", "4"], timeout=1800)
    print(p.stdout)
    return d


def _python_gradients(b, tk):
    """The gradient of batch 1's loss at the trained adapters (the quiz's rows where the run asks for them)."""
    team = Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys}, trainable=True)
    batch = b.batches[0]
    rows = list(range(len(batch["rows"])))
    inputs, targets = _inputs(batch, rows, len(team.plan))
    fanout = 1
    if b.config.get("quizLoss"):
        q = QuizBatches(make_task(b.config["task"], b.config["difficulty"]), tk, rendering(b.rendering), team.plan, False, b.json["maxAnswerTokens"])
        inputs, targets, fanout = q.inputs(batch, rows, inputs)
    logits, *_ = team.forward(inputs, grad=True, fanout=fanout)
    loss = loss_sum(logits, targets) / int((targets >= 0).sum())
    loss.backward()
    out = {}
    for key in team.trainable:
        out[key] = {n.replace(f".{key}.", "."): p.grad.detach().double().numpy().copy() for n, p in team.peft.named_parameters() if f".{key}." in n and ".lora_" in n}
    return float(loss), out


@pytest.mark.parametrize("name", CASES)
def test_training_and_gradients_match_the_engine(quiz_cases, name):
    case = quiz_cases / name
    eng = engine_json(case)
    b = read_bundle(case / "bundle")
    assert len(b.batches) == STEPS
    if "curriculum" in name:  # the bundle's batches are the stages' (d1 first)
        assert b.batches[0]["rows"][0]["parts"][0].count(":") == 1 and len(b.batches[0]["rows"][0]["parts"][0]) == len("tbl:") + 4
    tk = load_tokenizer(b.base_dir, b.json["tokens"])
    # training from the initial adapters: the engine's tolerances (test_crosscheck.py)
    r = train(b, tk, STEPS, start="initial", cpu=True, log=lambda s: None)
    want = [s["loss"] for s in eng["train"]]
    rel = [abs(p - e) / abs(e) for p, e in zip(r["losses"], want)]
    assert rel[0] <= 1e-4, f"step 1: loss {r['losses'][0]} here, {want[0]} in the engine"
    assert rel[STEPS - 1] <= 1e-3, f"step {STEPS}: loss {r['losses'][STEPS - 1]} here, {want[STEPS - 1]} in the engine"
    # the gradient at the trained adapters, tensor by tensor
    g = eng["gradients"]
    loss, grads = _python_gradients(b, tk)
    assert abs(loss - g["loss"]) <= 1e-4 * abs(g["loss"]) + 1e-6, f"loss {loss} here, {g['loss']} in the engine"
    worst, where, total_sq = 0.0, "", 0.0
    for key, tensors in g["grads"].items():
        assert set(tensors) == set(grads[key])
        for k, v in tensors.items():
            w = np.frombuffer(base64.b64decode(v), dtype=np.float32).astype(np.float64).reshape(grads[key][k].shape)
            total_sq += float((grads[key][k] ** 2).sum())
            err = float(np.abs(grads[key][k] - w).max() / max(np.abs(w).max(), 1e-12))
            if err > worst:
                worst, where = err, f"{key} {k}"
    norm = total_sq ** 0.5
    assert abs(norm - g["gradNorm"]) <= 1e-3 * g["gradNorm"], f"gradient norm {norm} here, {g['gradNorm']} in the engine"
    assert worst <= 1e-3, f"the gradient of {where} differs by {worst:.2e} of its scale"
    # evaluation is unchanged by either option: the engine's answers with its trained adapters
    from latent_playground.evaluate import Evaluator

    ev = Evaluator(Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys}), tk)
    got = ev.evaluate("heldout")
    same = sum(a == c for a, c in zip(got["predictions"], eng["evaluation"]["heldout"]["predictions"]))
    assert same >= 0.99 * len(got["predictions"])
    REPORT[f"training {name} (tiny base)"] = (f"loss rel. diff step 1 {rel[0]:.1e}, step {STEPS} {rel[STEPS - 1]:.1e}; gradients max|diff|/max|engine| {worst:.1e} ({where}), "
                                              f"norm {norm:.5f} vs {g['gradNorm']:.5f}; heldout answers {same}/{len(got['predictions'])} identical")
