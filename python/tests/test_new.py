"""`python -m latent_playground new` (issue 24 item 1): a run made from a RunConfig and a base alone.

- The companion draws what the engine draws: every task and difficulty's sample streams and evaluation
  sets, and for each rendering the engine has (char; word with a byte-level and a sentencepiece-style
  BPE; chat with the byte-level BPE and a ChatML template) the agents' prompts, ids, target ids and the first training batches of several methods and
  topologies, held to tests/fixtures/streams.json (scripts/dump-streams.mjs writes it from the engine;
  tests/streams-fixture.test.ts checks the file is what the engine draws today).
- A run made by `new` is the engine's own bundle of that configuration (episodes, batches, initial
  adapters bit for bit, latent map), on the tiny base (char) and on a Llama folder with a BPE (word).
- Trained a few steps in Python, the engine evaluates it with the answers Python gives, and the page's
  import (run-import.ts) reads the fresh run and the trained one as run records.
- The base by folder, by zip (the page's library export) and by Hub id from the local cache.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from conftest import REPORT, ROOT, run_engine
from latent_playground.cli import main
from latent_playground.render import answer_ids, rendering
from latent_playground.run_config import make_plan, method_spec, plan_agents, resolve_topology
from latent_playground.tasks import SPLITS, batch_stream, eval_episodes, make_task, prompt_text, sample_episodes
from latent_playground.tokenizer import CharTokenizer, HfTokenizer

FIXTURE = ROOT / "tests" / "fixtures" / "streams.json"
TINY = ROOT / "public" / "models" / "tiny"


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


def _tokenizer(fx: dict, name: str, tmp: Path):
    t = fx["tokenizers"][name]
    if t["json"].get("type") == "char":
        return CharTokenizer(t["json"])
    p = tmp / f"{name}.json"
    p.write_text(json.dumps(t["json"]))
    return HfTokenizer(p, t["tokens"])


def test_episodes_match_the_engine(fx):
    n = 0
    for key, want in fx["episodes"].items():
        name, d = key.split("/")
        task = make_task(name, int(d))
        h = fx["header"]["sample"]
        for split in SPLITS:
            got = [[e.key, e.content_key, e.parts, e.answer] for e in sample_episodes(task, split, h["n"], h["seed"])]
            assert got == want["sample"][split], f"{key} {split}: the sample stream"
            keys = [e.key for e in eval_episodes(task, want["evalSeed"], want["evalSize"], split)]
            assert keys == want["eval"][split], f"{key} {split}: the evaluation set"
            n += len(got) + len(keys)
    REPORT["new: episodes as the engine draws them"] = f"{n} episodes over {len(fx['episodes'])} task/difficulty pairs, identical"


def _chat_folder(fx: dict, name: str, tmp: Path) -> Path:
    """A folder with the fixture tokenizer's tokenizer.json and tokenizer_config.json (its chat template), which
    the chat rendering (chat_render.py) is made from."""
    t = fx["tokenizers"][name]
    d = tmp / f"{name}-folder"
    d.mkdir()
    (d / "tokenizer.json").write_text(json.dumps(t["json"]))
    (d / "tokenizer_config.json").write_text(json.dumps(t["config"]))
    return d


@pytest.mark.parametrize("combo", [("char", "char"), ("word", "bpe"), ("word", "sp"), ("chat", "bpechat")], ids=lambda c: f"{c[0]}-{c[1]}")
def test_prompts_and_batches_match_the_engine(fx, combo, tmp_path):
    cases = [c for c in fx["cases"] if (c["rendering"], c["tokenizer"]) == combo]
    assert cases, f"the fixture has no {combo} case"
    tk = _tokenizer(fx, combo[1], tmp_path)
    # chat: the rendering object itself (made from the folder's template) where char and word go by name
    chat = rendering("chat", _chat_folder(fx, combo[1], tmp_path)) if combo[0] == "chat" else None
    run = fx["header"]["run"]
    rows = 0
    for c in cases:
        where = f"{c['rendering']}/{c['tokenizer']} {c['task']} d{c['difficulty']} {c['method']} {c['topology']}"
        task = make_task(c["task"], c["difficulty"])
        spec = method_spec(c["method"])
        r = chat or rendering(c["rendering"])
        rr = chat or c["rendering"]
        plan = make_plan(resolve_topology(c["topology"], task, run["latentSteps"]), spec)
        assert [{k: a[k] for k in ("id", "role", "latentSteps", "final", "predecessors")} for a in plan] == c["agents"], f"{where}: the plan"
        assert r.max_answer_chars(task) == c["maxAnswerTokens"], where
        pas = plan_agents(plan)
        eval_seed = 11 if c["difficulty"] % 2 == 0 else None
        eps = eval_episodes(task, eval_seed, fx["episodes"][f"{c['task']}/{c['difficulty']}"]["evalSize"], "heldout")[:len(c["episodes"])]
        for ep, want in zip(eps, c["episodes"]):
            assert [ep.key, ep.parts, ep.answer] == [want["key"], want["parts"], want["answer"]], where
            assert answer_ids(tk, r, task, ep) == want["targetIds"], f"{where} {ep.key}: target ids"
            prompts = [prompt_text(ep, pa, spec["skyline"], rr) for pa in pas]
            assert [{"prompt": p, "ids": tk.encode(p)} for p in prompts] == want["agents"], f"{where} {ep.key}: prompts"
        T = run["textBudget"] if c["method"] == "text-trained" else None
        stream = batch_stream(task, tk, pas, spec["skyline"], run["seed"], run["batch"], c["maxAnswerTokens"], text_budget=T, rendering=rr)
        for want in c["batches"]:
            assert next(stream) == want, f"{where}: batch {want['batch']}"
            rows += len(want["rows"])
    REPORT[f"new: {combo[0]} rendering ({combo[1]} tokenizer) as the engine draws it"] = f"{len(cases)} cases, {rows} batch rows, identical"


# ---------------------------------------------------------------- a run made by new against the engine's own

def _same_bundle(engine: Path, mine: Path) -> str:
    """Asserts that `mine` (python new) holds what the engine's bundle of the same config holds; returns a summary."""
    e, p = json.loads((engine / "run.json").read_text()), json.loads((mine / "run.json").read_text())
    for k in ("config", "method", "positions", "agents", "base", "tokens", "maxAnswerTokens"):
        assert e[k] == p[k], k
    assert e["training"]["optimizer"] == p["training"]["optimizer"] and p["training"]["stepsDone"] == 0
    n = 0
    for split in SPLITS:
        read = lambda root, meta: [json.loads(x) for x in (root / meta["files"]["episodes"][split]["path"]).read_text().splitlines()]  # noqa: E731
        want, got = read(engine, e), read(mine, p)
        assert got == want, f"episodes/{split}"
        n += len(got)
    want = []
    if e["files"]["batches"] is None:
        assert p["files"]["batches"] is None, "batches of a method whose bundle holds none"
    else:
        read = lambda root, meta: [json.loads(x) for x in (root / meta["files"]["batches"]["path"]).read_text().splitlines()]  # noqa: E731
        want = read(engine, e)
        assert read(mine, p)[:len(want)] == want[:p["files"]["batches"]["count"]], "batches"
    assert set(e["files"]["initialAdapters"]) == set(p["files"]["initialAdapters"])
    for key in e["files"]["initialAdapters"]:
        a = load_file(str(engine / e["files"]["initialAdapters"][key] / "adapter_model.safetensors"))
        b = load_file(str(mine / p["files"]["initialAdapters"][key] / "adapter_model.safetensors"))
        assert sorted(a) == sorted(b) and all(np.array_equal(a[t], b[t]) for t in a), f"initial adapter {key}"
        cfg = lambda root, meta: json.loads((root / meta["files"]["initialAdapters"][key] / "adapter_config.json").read_text())  # noqa: E731
        assert cfg(engine, e) == cfg(mine, p)
    if e["files"]["latentMap"] is None:
        assert p["files"]["latentMap"] is None
        return f"{n} episodes, {len(want)} batches, initial adapters bit for bit"
    a, b = load_file(str(engine / "latent_map.safetensors")), load_file(str(mine / "latent_map.safetensors"))
    assert np.array_equal(a["target_norm"], b["target_norm"])
    # W_a is solved in float64 on both sides (the engine's Cholesky, LAPACK's here) and stored as float32:
    # the two solutions differ by rounding only, far below float32's resolution of the result
    ulps = int(np.abs(a["W_a"].view(np.int32).astype(np.int64) - b["W_a"].view(np.int32)).max())
    assert ulps <= 1, f"W_a differs by {ulps} float32 ulps"
    with safe_open(str(engine / "latent_map.safetensors"), "np") as f, safe_open(str(mine / "latent_map.safetensors"), "np") as g:
        assert f.metadata() == g.metadata()
    return f"{n} episodes, {len(want)} batches, initial adapters bit for bit, W_a within {ulps} ulp"


@pytest.fixture(scope="module")
def tiny_cases(tmp_path_factory) -> Path:
    """The engine's bundles of every cross-check case (tests/python/engine-check.ts: each method, both
    position schemes, a shared adapter, chains and stars of three) on the tiny base, 2 steps each."""
    eng = tmp_path_factory.mktemp("engine-tiny")
    run_engine(["make", str(eng), "--model", str(TINY), "--steps", "2", "--eval-size", "16", "--batch", "4"], timeout=1200)
    return eng


def test_new_makes_the_engines_bundle_for_every_method(tiny_cases, tmp_path):
    cases = sorted(p.parent for p in tiny_cases.glob("*/engine.json"))
    methods = set()
    for case in cases:
        src = case / "bundle"
        mine = tmp_path / case.name
        assert main(["new", "--base", str(TINY), "--config", str(src / "run.json"), "--batches", "2", "--out", str(mine)]) == 0
        try:
            _same_bundle(src, mine)
        except AssertionError as err:
            raise AssertionError(f"{case.name}: {err}") from None
        methods.add(json.loads((src / "run.json").read_text())["config"]["method"])
    assert len(cases) >= 12 and len(methods) >= 9, (len(cases), methods)
    REPORT["new = the engine's bundle, every case on tiny"] = f"{len(cases)} cases ({len(methods)} methods): episodes, batches, initial adapters, latent map identical"


def test_new_on_the_tiny_base_is_the_engines_run_and_the_engine_evaluates_it(tiny_cases, tmp_path):
    eng = tiny_cases
    src = eng / "lookup-diffmas" / "bundle"
    mine = tmp_path / "new"
    # the engine's run.json as the RunConfig, and the base by folder
    assert main(["new", "--base", str(TINY), "--config", str(src / "run.json"), "--batches", "2", "--out", str(mine)]) == 0
    REPORT["new on tiny = the engine's bundle (lookup diffmas)"] = _same_bundle(src, mine)
    # trained in Python on the run's own schedule: the engine's losses on its own run of this config
    trained = tmp_path / "trained"
    assert main(["train", str(mine), "--from", "initial", "--steps", "2", "--out", str(trained), "--threads", "1"]) == 0
    got = json.loads((trained / "run.json").read_text())["training"]["losses"]
    want = [s["loss"] for s in json.loads((eng / "lookup-diffmas" / "engine.json").read_text())["train"]]
    assert np.allclose(got, want, rtol=1e-4, atol=0), (got, want)
    # ... and evaluated by the engine: the answers Python gives
    run_engine(["eval", str(trained), str(tmp_path / "eval.json"), "--splits", "heldout,ood"], timeout=900)
    eng_eval = json.loads((tmp_path / "eval.json").read_text())["evaluation"]
    from latent_playground.agents import Team
    from latent_playground.bundle import read_bundle
    from latent_playground.evaluate import Evaluator
    from latent_playground.tokenizer import load_tokenizer

    b = read_bundle(trained)
    ev = Evaluator(Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys}), load_tokenizer(b.base_dir, b.json["tokens"]))
    summary = []
    for split in ("heldout", "ood"):
        py = ev.evaluate(split)
        same = sum(x == y for x, y in zip(py["predictions"], eng_eval[split]["predictions"]))
        assert len(py["predictions"]) == len(eng_eval[split]["predictions"]) and same == len(py["predictions"]), split
        assert abs(py["loss"] - eng_eval[split]["loss"]) <= 1e-4 * abs(eng_eval[split]["loss"]), split
        summary.append(f"{split} {same}/{len(py['predictions'])} answers identical, loss {py['loss']:.6f} vs {eng_eval[split]['loss']:.6f}")
    REPORT["new -> train (Python) -> eval (engine), tiny"] = f"losses {got} vs engine {want}; " + "; ".join(summary)
    # the page imports both: the fresh run (its initial adapters) and the trained one (its curve and adapters)
    config = json.loads((mine / "run.json").read_text())["config"]
    fresh, done = _page_import(mine, tmp_path), _page_import(trained, tmp_path)
    assert fresh["config"] == config and fresh["stepsDone"] == 0 and fresh["initial"] == ["a0", "a1"] and fresh["final"] == []
    assert done["config"] == config and done["stepsDone"] == 2 and done["losses"] == got and done["final"] == ["a0", "a1"]


PAGE_IMPORT = """
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runRecordFromBundle } from 'ROOT/src/mas/run-import';
import { decodeCheckpoint } from 'ROOT/src/storage/checkpoint';
import { loadTokenizer } from 'ROOT/src/tokenizers';
// the page's import of a run bundle (src/worker/engine.ts importRun): the record it stores
export function main(dir: string) {
  const files = new Map<string, Uint8Array>();
  const walk = (sub: string) => {
    for (const d of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${d.name}` : d.name;
      if (d.isDirectory()) walk(rel);
      else files.set(rel, new Uint8Array(readFileSync(path.join(dir, rel))));
    }
  };
  walk('');
  const { record } = runRecordFromBundle(files, (b) => {
    const ck = decodeCheckpoint(b);
    if (!loadTokenizer(ck)) throw new Error('the base has no tokenizer');
    return ck.config;
  }, { fallbackId: 'imported', label: 'python', now: 0 });
  return { status: record.status, stepsDone: record.stepsDone, losses: record.curves.loss, config: record.config,
    initial: record.adapters.initial.map((a) => a.agent), final: record.adapters.final.map((a) => a.agent) };
}
"""
BUILD = """
import { build } from 'esbuild';
const [entry, out, dir] = process.env.PAGE_IMPORT.split('\\n');
await build({ entryPoints: [entry], outfile: out, bundle: true, platform: 'node', format: 'esm', logLevel: 'warning',
  plugins: [{ name: 'wgsl', setup: (b) => b.onLoad({ filter: /\\.wgsl$/ }, () => ({ contents: '', loader: 'text' })) }] });
const { main } = await import(out);
console.log(JSON.stringify(main(dir)));
"""


def _page_import(bundle: Path, tmp: Path) -> dict:
    """What the page's import makes of a bundle (src/mas/run-import.ts runRecordFromBundle), through Node."""
    import os
    import subprocess

    entry = tmp / "page-import.ts"
    entry.write_text(PAGE_IMPORT.replace("ROOT/", f"{ROOT}/"))
    env = {**os.environ, "PAGE_IMPORT": f"{entry}\n{tmp / 'page-import.mjs'}\n{bundle}"}
    p = subprocess.run(["node", "--input-type=module", "-e", BUILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def _llama_folder(fx: dict, out: Path) -> Path:
    """A small random Llama with the fixture's byte-level BPE (no <bos>), saved by transformers."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    t = fx["tokenizers"]["bpe"]
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=t["tokens"]["vocabSize"], hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=256, bos_token_id=None, eos_token_id=t["tokens"]["eos"], pad_token_id=t["tokens"]["pad"],
                      tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(str(out), safe_serialization=True)
    (out / "tokenizer.json").write_text(json.dumps(t["json"]))
    (out / "tokenizer_config.json").write_text(json.dumps(t["config"]))
    return out


def test_new_in_the_word_rendering_is_the_engines_run(fx, tmp_path):
    base = _llama_folder(fx, tmp_path / "llama")
    eng = tmp_path / "engine"
    run_engine(["make", str(eng), "--model", str(base), "--steps", "2", "--eval-size", "16", "--cases", "relay-diffmas-shared"], timeout=900)
    src = eng / "relay-diffmas-shared" / "bundle"
    mine = tmp_path / "new"
    assert main(["new", "--base", str(base), "--config", str(src / "run.json"), "--batches", "3", "--out", str(mine)]) == 0
    assert json.loads((mine / "run.json").read_text())["tokens"]["bos"] is None
    REPORT["new on a Llama folder, word rendering = the engine's bundle (relay diffmas shared)"] = _same_bundle(src, mine)


# ---------------------------------------------------------------- where the base comes from, and refusals

ARGS = ["--method", "diffmas", "--steps", "5", "--batch", "2", "--eval-size", "4", "--seed", "3", "--rank", "2", "--latent-steps", "1"]


def _content(root: Path) -> dict:
    """Every file but run.json: safetensors as metadata and tensors (the writer orders its header freely),
    adapter configs without base_model_name_or_path (the base's id, which names where it came from)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == "run.json":
            continue
        if p.suffix == ".safetensors":
            with safe_open(str(p), "np") as f:
                out[p.relative_to(root).as_posix()] = (f.metadata(), {k: f.get_tensor(k).tobytes() for k in sorted(f.keys())})
        elif p.name == "adapter_config.json":
            out[p.relative_to(root).as_posix()] = {k: v for k, v in json.loads(p.read_text()).items() if k != "base_model_name_or_path"}
        else:
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def test_the_base_by_folder_zip_and_hub_id(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "folder"), *ARGS]) == 0
    lib = tmp_path / "tiny.zip"  # the page's library export: the model's files at the zip's root
    with zipfile.ZipFile(lib, "w") as z:
        for f in TINY.iterdir():
            z.write(f, f.name)
    assert main(["new", "--base", str(lib), "--out", str(tmp_path / "zip"), *ARGS]) == 0
    # a Hub id resolves through huggingface_hub's cache, offline (a snapshot as `huggingface-cli download`
    # leaves it: its files are links into the cache's blobs, which the bundle must not keep as links)
    cache = tmp_path / "hub"
    snap = cache / "models--someone--tiny" / "snapshots" / ("ab" * 20)
    (cache / "models--someone--tiny" / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for i, f in enumerate(sorted(TINY.iterdir())):
        shutil.copy2(f, cache / "models--someone--tiny" / "blobs" / f"blob{i}")
        (snap / f.name).symlink_to(Path("..") / ".." / "blobs" / f"blob{i}")
    (cache / "models--someone--tiny" / "refs").mkdir()
    (cache / "models--someone--tiny" / "refs" / "main").write_text("ab" * 20)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["new", "--base", "someone/tiny", "--out", str(tmp_path / "hub-run"), *ARGS]) == 0
    ref = _content(tmp_path / "folder")
    for other in ("zip", "hub-run"):
        assert _content(tmp_path / other) == ref, other
    ids = [json.loads((tmp_path / d / "run.json").read_text())["base"]["id"] for d in ("folder", "zip", "hub-run")]
    assert ids == [str(TINY), str(lib), "someone/tiny"]
    # the bundle reads back (the companion's reader: paths, limits, plan) and the base's files are the base's
    from latent_playground.bundle import read_bundle

    b = read_bundle(tmp_path / "hub-run")
    assert not any(p.is_symlink() for p in (tmp_path / "hub-run").rglob("*"))
    assert (b.base_dir / "model.safetensors").read_bytes() == (TINY / "model.safetensors").read_bytes()
    for key in b.adapter_keys:  # at step 0 the adapters are the initial ones
        assert (b.adapter_dir(key) / "adapter_model.safetensors").read_bytes() == (b.adapter_dir(key, initial=True) / "adapter_model.safetensors").read_bytes()


def test_refusals(tmp_path, capsys):
    assert main(["new", "--base", "nobody/nothing-here", "--out", str(tmp_path / "a"), *ARGS]) == 1
    assert "not in the Hugging Face cache" in capsys.readouterr().err
    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "b"), *ARGS, "--topology", "single"]) == 1
    assert "method diffmas needs senders" in capsys.readouterr().err
    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "c"), *ARGS, "--topology", "v1;t:0:2:o:table,q:1:0:o:query;q-t;q"]) == 1
    assert "The final agent q sends to t" in capsys.readouterr().err
    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "d"), *ARGS, "--rank", "0"]) == 1
    assert "lora.r must be an integer in 1..64" in capsys.readouterr().err
    # chat: made from the base's chat template (python/tests/test_chat_runs.py); the tiny base has none
    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "f"), *ARGS, "--rendering", "chat"]) == 1
    assert 'tokenizer_config.json has no "chat_template"' in capsys.readouterr().err
    from latent_playground.bundle_safety import BundleError, check_config
    from latent_playground.run_config import default_config

    check_config(default_config())
    check_config(default_config(rendering="chat"))
    with pytest.raises(BundleError, match="config.rendering must be char, word or chat"):
        check_config(default_config(rendering="html"))
    (tmp_path / "taken").mkdir()
    assert main(["new", "--base", str(TINY), "--out", str(tmp_path / "taken"), *ARGS]) == 1
    assert "already exists" in capsys.readouterr().err
    bad = tmp_path / "nested.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("tiny/config.json", "{}")
    assert main(["new", "--base", str(bad), "--out", str(tmp_path / "e"), *ARGS]) == 1
    assert "is in a folder" in capsys.readouterr().err
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()), "a refused run leaves no temporary folder"
