"""Cache-to-Cache (method c2c, issue 22 item 3): the engine (WGSL kernels, hand-written backward of the
fuser, src/mas/c2c-fuser.ts) and the companion (torch autograd, latent_playground/c2c.py) held to each
other on the tiny base, on the engine's c2c runs (tests/python/c2c-check.ts: lookup d3, one sender; relay
d1, a chain whose middle agent reads a fused prefix and sends on), each 20 steps, lr 1e-3:

- answers on every split and under every control of the latent channel identical on at least 99% of the
  episodes (pooled), and the teacher-forced loss within 1e-4 relative where they are: the tolerance of the
  DiffMAS cross-check (test_crosscheck.py), the same float32 paths plus one matmul and one add per layer;
- training from the initial fuser on the bundle's batches: the loss within 1e-4 relative at step 1 and
  1e-3 at step 20, and the learning rates equal (the DiffMAS cross-check's tolerances);
- the gradient of the first batch's loss at the trained fuser, tensor by tensor: max |diff| within 1e-3 of
  the tensor's largest value, the global norm within 1e-3, the loss within 1e-4 (as for the adapters);
- `new` makes the engine's c2c bundle (episodes and batches identical, no adapter, no fuser file: the
  initial fuser is A = 0, gate = 0), `train` writes c2c_fuser.safetensors, which the engine evaluates to
  the same answers and loss; bad fuser files are refused.
"""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CACHE, REPORT, ROOT, _vulkan_env
from latent_playground.agents import Team, loss_sum
from latent_playground.bundle import read_bundle
from latent_playground.bundle_safety import BundleError
from latent_playground.c2c import FUSER_FILE, Fuser, read_fuser_file
from latent_playground.cli import main
from latent_playground.evaluate import Evaluator, controls_for
from latent_playground.tokenizer import load_tokenizer
from latent_playground.train import _inputs, train

TINY = ROOT / "public" / "models" / "tiny"
SCRIPT = ROOT / "tests" / "python" / "c2c-check.ts"
CASES = ["lookup-c2c", "relay-c2c"]


def _key() -> str:
    h = hashlib.sha256()
    files = sorted((ROOT / "src").rglob("*.ts")) + sorted((ROOT / "shaders").rglob("*.wgsl")) + [SCRIPT] + sorted(TINY.iterdir())
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _engine_run(args: list[str]) -> subprocess.CompletedProcess:
    """tests/python/c2c-check.ts, bundled once per session, on Dawn (scripts/with-vulkan.sh)."""
    script = CACHE / "c2c-check.mjs"
    if not getattr(_engine_run, "built", False):
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["node", "scripts/bundle.mjs", str(SCRIPT), str(script)], cwd=ROOT, check=True)
        _engine_run.built = True
    p = subprocess.run(["bash", "scripts/with-vulkan.sh", "node", str(script), *args], cwd=ROOT, env=_vulkan_env(),
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"c2c-check {args[0]} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


@pytest.fixture(scope="session")
def c2c_dir() -> Path:
    d = CACHE / f"c2c-{_key()}"
    if not (d / "done").is_file():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        p = _engine_run(["make", str(d)])
        (d / "done").write_text("\n".join(l for l in p.stdout.splitlines() if not l.startswith("Warning")) + "\n")
    return d


def _engine(d: Path, name: str) -> dict:
    return json.loads((d / name / "engine.json").read_text())


def test_answers_and_losses_match_the_engine(c2c_dir):
    total, same, worst = 0, 0, []
    for name in CASES:
        eng = _engine(c2c_dir, name)
        b = read_bundle(c2c_dir / name / "bundle")
        assert b.method["train"] == "fuser" and b.adapter_keys == [] and b.json["files"]["fuser"] == FUSER_FILE
        team = Team(b, None)
        assert float(team.fuser.A[0].detach().abs().max()) > 0, "the trained fuser was not loaded"
        ev = Evaluator(team, load_tokenizer(b.base_dir, b.json["tokens"]))
        assert sorted(eng["controls"]) == sorted(controls_for("latent"))
        pairs = [(s, eng["evaluation"][s], ev.evaluate(s)) for s in ("train", "heldout", "ood")]
        pairs += [(f"heldout/{c}", eng["controls"][c], ev.evaluate("heldout", c)) for c in eng["controls"]]
        for label, e, p in pairs:
            n = len(e["predictions"])
            assert n == len(p["predictions"]), f"{name} {label}: {n} episodes in the engine, {len(p['predictions'])} here"
            k = sum(x == y for x, y in zip(e["predictions"], p["predictions"]))
            total, same = total + n, same + k
            if k < n:
                worst.append(f"{name} {label}: {n - k} of {n} differ")
            else:
                assert abs(e["loss"] - p["loss"]) <= 1e-4 * abs(e["loss"]) + 1e-6, f"{name} {label}: loss {p['loss']} here, {e['loss']} in the engine"
                assert abs(e["accuracy"] - p["accuracy"]) < 1e-12
    REPORT["c2c answers identical"] = f"{same}/{total} = {100 * same / total:.2f}% (2 cases, every split and control)" + (f"; {'; '.join(worst)}" if worst else "")
    assert same / total >= 0.99, REPORT["c2c answers identical"]


@pytest.mark.parametrize("name", CASES)
def test_training_losses_match_the_engine(c2c_dir, name):
    eng = _engine(c2c_dir, name)
    b = read_bundle(c2c_dir / name / "bundle")
    tk = load_tokenizer(b.base_dir, b.json["tokens"])
    r = train(b, tk, 20, start="initial", cpu=True, log=lambda s: None)
    want = [s["loss"] for s in eng["train"]]
    rel = [abs(p - e) / abs(e) for p, e in zip(r["losses"], want)]
    REPORT[f"c2c training {name}"] = f"loss rel. diff step 1 {rel[0]:.1e}, step 20 {rel[19]:.1e}, max over 20 {max(rel):.1e}"
    assert max(abs(p - e["lr"]) for p, e in zip(r["lrs"], eng["train"])) < 1e-9, "the schedule differs"
    assert rel[0] <= 1e-4, f"step 1: loss {r['losses'][0]} here, {want[0]} in the engine"
    assert rel[19] <= 1e-3, f"step 20: loss {r['losses'][19]} here, {want[19]} in the engine"


@pytest.mark.parametrize("name", CASES)
def test_fuser_gradients_at_the_trained_fuser_match_the_engine(c2c_dir, name):
    eng = _engine(c2c_dir, name)["gradients"]
    b = read_bundle(c2c_dir / name / "bundle")
    team = Team(b, None)
    batch = b.batches[0]
    inputs, targets = _inputs(batch, list(range(len(batch["rows"]))), len(team.plan))
    logits, *_ = team.forward(inputs, grad=True)
    loss = loss_sum(logits, targets) / int((targets >= 0).sum())
    loss.backward()
    loss = float(loss.detach())
    names = team.fuser.names()
    assert sorted(eng["grads"]) == sorted(names)
    worst, where, sq = 0.0, "", 0.0
    for n, p in zip(names, team.fuser.params()):
        got = p.grad.detach().double().numpy()
        want = np.frombuffer(base64.b64decode(eng["grads"][n]), dtype=np.float32).astype(np.float64).reshape(got.shape)
        sq += float((got**2).sum())
        err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))
        if err > worst:
            worst, where = err, n
    norm = sq**0.5
    REPORT[f"c2c gradients {name}"] = (f"max over tensors of max|diff|/max|engine| {worst:.1e} ({where}); loss rel. {abs(loss - eng['loss']) / eng['loss']:.1e}; "
                                       f"norm {norm:.6f} vs {eng['gradNorm']:.6f}")
    assert abs(loss - eng["loss"]) <= 1e-4 * abs(eng["loss"]) + 1e-6
    assert abs(norm - eng["gradNorm"]) <= 1e-3 * eng["gradNorm"]
    assert worst <= 1e-3, f"the gradient of {where} differs by {worst:.2e} of its scale"


def test_new_makes_the_engines_c2c_bundle_and_train_writes_the_fuser(c2c_dir, tmp_path):
    src = c2c_dir / "lookup-c2c" / "bundle"
    mine = tmp_path / "new"
    assert main(["new", "--base", str(TINY), "--config", str(src / "run.json"), "--batches", "2", "--out", str(mine)]) == 0
    meta = json.loads((mine / "run.json").read_text())
    assert meta["method"] == {"name": "c2c", "channel": "latent", "trace": "full", "train": "fuser", "skyline": False}
    assert meta["files"]["adapters"] == {} and meta["files"]["initialAdapters"] == {} and "fuser" not in meta["files"]
    for split in ("train", "heldout", "ood"):
        assert (mine / f"episodes/{split}.jsonl").read_text() == (src / f"episodes/{split}.jsonl").read_text(), split
    assert (mine / "batches.jsonl").read_text().splitlines() == (src / "batches.jsonl").read_text().splitlines()[:2]
    b = read_bundle(mine)
    team = Team(b, None)
    assert all(float(p.detach().abs().max()) == 0 for p in team.fuser.params()), "a fresh c2c run starts at A = 0, gate = 0"
    # two steps from there: the companion writes its fuser, which reads back and differs from zero
    out = tmp_path / "trained"
    r = train(b, load_tokenizer(b.base_dir, b.json["tokens"]), 2, start="initial", out=out, cpu=True, log=lambda s: None)
    assert len(r["losses"]) == 2
    t = read_bundle(out)
    assert t.json["files"]["fuser"] == FUSER_FILE and t.json["training"]["stepsDone"] == 2
    w = read_fuser_file(out / FUSER_FILE, team.L, team.W)
    assert float(w["layers.0.k.A"].abs().max()) > 0


def test_the_engine_evaluates_a_companion_trained_c2c_run(c2c_dir, tmp_path):
    """The other direction: 5 steps trained here from the engine's bundle, its fuser file loaded into an
    engine run: the same heldout answers (>= 99%, as above) and loss (1e-4 relative)."""
    b = read_bundle(c2c_dir / "lookup-c2c" / "bundle")
    out = tmp_path / "torch5"
    train(b, load_tokenizer(b.base_dir, b.json["tokens"]), 5, start="initial", out=out, cpu=True, log=lambda s: None)
    t = read_bundle(out)
    here = Evaluator(Team(t, None), load_tokenizer(t.base_dir, t.json["tokens"])).evaluate("heldout")
    _engine_run(["eval", str(out), str(tmp_path / "engine.json")])
    eng = json.loads((tmp_path / "engine.json").read_text())["heldout"]
    same = sum(x == y for x, y in zip(eng["predictions"], here["predictions"]))
    REPORT["c2c: the engine evaluates a PyTorch-trained fuser"] = f"{same}/{len(here['predictions'])} answers, loss {eng['loss']:.6f} vs {here['loss']:.6f}"
    assert len(eng["predictions"]) == len(here["predictions"]) and same / len(here["predictions"]) >= 0.99
    assert abs(eng["loss"] - here["loss"]) <= 1e-4 * abs(here["loss"]) + 1e-6


def test_bad_fuser_files_and_bundles_are_refused(c2c_dir, tmp_path):
    b = read_bundle(c2c_dir / "lookup-c2c" / "bundle")
    team = Team(b, None)
    f = tmp_path / "f.safetensors"
    Fuser(team.L + 1, team.W).save(f)
    with pytest.raises(ValueError, match="a fuser of 3 layers and K/V width 16, but the base has 2 and 16"):
        read_fuser_file(f, team.L, team.W)
    fu = Fuser(team.L, team.W)
    with pytest.raises(ValueError, match="layers.0.k.A has shape"):
        fu.load({**fu.state(), "layers.0.k.A": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="unexpected tensor bias"):
        fu.load({**fu.state(), "bias": torch.zeros(1)})
    # a trained c2c run whose run.json names no fuser
    bad = tmp_path / "bad"
    shutil.copytree(c2c_dir / "lookup-c2c" / "bundle", bad)
    meta = json.loads((bad / "run.json").read_text())
    del meta["files"]["fuser"]
    (bad / "run.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="files.fuser names no c2c_fuser.safetensors"):
        read_bundle(bad)
