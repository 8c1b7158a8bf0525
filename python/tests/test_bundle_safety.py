"""Issue 20 items 7 and 8, the companion's side: a run bundle is read only inside itself (the engine's
rule and the same hostile cases, tests/fixtures/bundle-paths.json, which tests/nothing-lost-writers.test.ts
reads too), run.json is held to the engine's limits before anything is allocated, a zip unpacks to a
bounded size, and what used to be a traceback is a message. No model is loaded: the bundles here are
made by hand, with placeholder base files (every refusal comes before they are read)."""
from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from latent_playground.bundle import BundleError, read_bundle
from latent_playground.bundle_safety import LIMITS, MAX_AGENTS, MAX_LATENT_STEPS, ZIP_RATIO, ZIP_SLACK, bundle_key_problem, bundle_path_problem
from latent_playground.cli import main
from latent_playground.tasks import make_task

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "bundle-paths.json").read_text())
TAIL = "; a path in a run bundle is relative to its root and stays inside it"


EPISODE = {"split": "heldout", "index": 0, "key": "k", "parts": ["a", "b"], "answer": "7", "targetIds": [9, 2],
           "agents": [{"id": "a0", "prompt": "<bos>a", "ids": [1, 5]}, {"id": "a1", "prompt": "<bos>b", "ids": [1, 6]}]}


def run_json() -> dict:
    """A two-agent lookup d1 text run as the engine writes it (the parts read_bundle looks at)."""
    L = make_task("lookup", 1).max_answer_length
    agents = [
        {"id": "a0", "name": "sender", "role": 0, "latentSteps": 0, "adapter": "own", "adapterKey": "a0", "final": False, "predecessors": []},
        {"id": "a1", "name": "receiver", "role": 1, "latentSteps": 0, "adapter": "own", "adapterKey": "a1", "final": True, "predecessors": ["a0"]},
    ]
    return {
        "format": "latent-playground-run", "version": 1, "createdAt": "2026-01-01T00:00:00Z", "createdBy": "test",
        "config": {"task": "lookup", "difficulty": 1, "method": "text", "topology": {}, "modelId": "toy", "lora": {"r": 2, "alpha": 4, "targets": ["q_proj"]},
                   "lr": 1e-3, "steps": 10, "batch": 4, "seed": 1, "latentMap": "ridge", "textBudget": 4, "evalEvery": 0, "evalSize": 2, "positions": "stream"},
        "method": {"name": "text", "channel": "text", "trace": None, "train": "none", "skyline": False},
        "positions": "stream", "agents": agents, "base": {"id": "toy"},
        "tokens": {"pad": 0, "bos": 1, "eos": 2, "vocabSize": 40}, "maxAnswerTokens": L,
        "training": {"stepsDone": 0, "losses": [], "optimizer": {"name": "adamw", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weightDecay": 0,
                                                        "clip": 1, "warmupSteps": 1, "schedule": "cosine", "minLr": 1e-4}}, "results": {"evaluation": [], "heldout": []}, "wallSeconds": None,
        "files": {"base": "base", "adapters": {"a0": "adapters/a0", "a1": "adapters/a1"}, "initialAdapters": {}, "latentMap": None,
                  "episodes": {"heldout": {"path": "episodes/heldout.jsonl", "count": 1}}, "batches": None},
    }


def write(root: Path, meta: dict) -> Path:
    """The bundle folder: run.json and placeholder files where it points."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "run.json").write_text(json.dumps(meta))
    for n in ("config.json", "tokenizer.json", "model.safetensors"):
        (root / "base").mkdir(exist_ok=True)
        (root / "base" / n).write_text("{}")
    for k in ("a0", "a1"):
        (root / "adapters" / k).mkdir(parents=True, exist_ok=True)
        for n in ("adapter_config.json", "adapter_model.safetensors"):
            (root / "adapters" / k / n).write_text("{}")
    (root / "episodes").mkdir(exist_ok=True)
    (root / "episodes" / "heldout.jsonl").write_text(json.dumps(EPISODE) + "\n")
    return root


def test_the_hand_made_bundle_reads(tmp_path):
    b = read_bundle(write(tmp_path / "ok", run_json()))
    assert b.agents[-1]["id"] == "a1" and len(b.episodes["heldout"]) == 1


# ------------------------------------------------------------------------- 7. paths stay inside


def test_7a_the_rule_word_for_word_with_the_engine():
    for h in FIXTURE["hostile"]:
        assert bundle_path_problem(h["path"]) == h["problem"], h["path"]
    for p in FIXTURE["fine"]:
        assert bundle_path_problem(p) is None, p
    for h in FIXTURE["hostileKeys"]:
        assert bundle_key_problem(h["key"]) == h["problem"]


@pytest.mark.parametrize("where", ["base", "latentMap", "episodes", "batches", "adapters"])
@pytest.mark.parametrize("case", FIXTURE["hostile"], ids=lambda c: repr(c["path"]))
def test_7b_every_hostile_path_in_every_field_is_refused_before_anything_is_opened(tmp_path, where, case):
    meta = run_json()
    f = meta["files"]
    field = {"base": "files.base", "latentMap": "files.latentMap", "episodes": "files.episodes.heldout.path",
             "batches": "files.batches.path", "adapters": "files.adapters.a0"}[where]
    if where == "base":
        f["base"] = case["path"]
    elif where == "latentMap":
        f["latentMap"] = case["path"]
    elif where == "episodes":
        f["episodes"]["heldout"]["path"] = case["path"]
    elif where == "batches":
        f["batches"] = {"path": case["path"], "count": 1}
    else:
        f["adapters"]["a0"] = case["path"]
    if where == "latentMap" and case["path"] is None:
        return  # null is "no latent map", not a path
    root = write(tmp_path / "b", meta)
    with pytest.raises(BundleError) as e:
        read_bundle(root)
    assert str(e.value) == f"run bundle: run.json: {field} {json.dumps(case['path'], ensure_ascii=False, separators=(',', ':'))} {case['problem']}{TAIL}"


def test_7c_etc_passwd_is_not_opened_as_a_latent_map_and_a_bad_adapter_key_is_a_message(tmp_path, capsys):
    meta = run_json()
    meta["files"]["latentMap"] = "/etc/passwd"
    root = write(tmp_path / "b", meta)
    assert main(["eval", str(root)]) == 1
    assert capsys.readouterr().err == f'error: run bundle: run.json: files.latentMap "/etc/passwd" is absolute{TAIL}\n'
    meta = run_json()
    meta["files"]["adapters"] = {"../../x": "adapters/a0"}
    meta["agents"][0]["adapterKey"] = meta["agents"][1]["adapterKey"] = "../../x"
    with pytest.raises(BundleError, match=re.escape('run.json: files.adapters key "../../x" is not 1-64 letters')):
        read_bundle(write(tmp_path / "k", meta))
    meta = run_json()
    meta["agents"][0]["adapterKey"] = "../../x"  # the KeyError of the audit
    with pytest.raises(BundleError, match=re.escape('run.json: agents[0].adapterKey "../../x" is not 1-64 letters')):
        read_bundle(write(tmp_path / "k2", meta))
    meta = run_json()
    meta["agents"][0]["adapterKey"] = "zz"
    with pytest.raises(BundleError, match=re.escape('agents[0]: adapterKey "zz" is not in files.adapters or files.initialAdapters (has: a0, a1)')):
        read_bundle(write(tmp_path / "k3", meta))


@pytest.mark.parametrize("case", FIXTURE["symlinks"], ids=lambda c: c["field"])
def test_7d_a_symbolic_link_out_of_the_bundle_is_refused(tmp_path, case):
    meta = run_json()
    if case["field"] == "latentMap":
        meta["files"]["latentMap"] = "latent_map.safetensors"
    root = write(tmp_path / "b", meta)
    link = root / case["link"]
    if link.is_dir():
        for p in sorted(link.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        link.rmdir()
    target = case["to"] if case["to"] != ".." else str(tmp_path)
    os.symlink(target, link)
    if case["field"] == "episodes.heldout":
        (tmp_path / "heldout.jsonl").write_text(json.dumps(EPISODE) + "\n")
    with pytest.raises(BundleError) as e:
        read_bundle(root)
    assert case["problem"] in str(e.value)
    assert str(e.value).startswith("run bundle: run.json: files.")


def test_7e_a_link_inside_the_base_folder_and_train_copies_nothing(tmp_path, capsys):
    root = write(tmp_path / "b", run_json())
    (root / "base" / "tokenizer.json").unlink()
    os.symlink("/etc/hostname", root / "base" / "tokenizer.json")
    with pytest.raises(BundleError, match=re.escape(f'run.json: files.base "base/tokenizer.json" leads outside the bundle (through a symbolic link){TAIL}')):
        read_bundle(root)
    out = tmp_path / "out"
    assert main(["train", str(root), "--steps", "1", "--out", str(out)]) == 1
    assert "leads outside the bundle" in capsys.readouterr().err
    assert not out.exists()
    # a link that stays inside is fine
    (root / "base" / "tokenizer.json").unlink()
    (root / "tk.json").write_text("{}")
    os.symlink(root / "tk.json", root / "base" / "tokenizer.json")
    read_bundle(root)


# ------------------------------------------------------------------------- 8. limits before allocation


def test_8a_the_limits_are_the_engines():
    methods = (ROOT / "src" / "mas" / "methods.ts").read_text()
    block = re.search(r"export const LIMITS = Object\.freeze\(\{(.*?)\}\);", methods, re.S).group(1)
    engine = {k: (float(a.replace("_", "")), float(b.replace("_", ""))) for k, a, b in re.findall(r"(\w+): \[([\d._e-]+), ([\d._e-]+)\]", block)}
    assert engine == {k: (float(a), float(b)) for k, (a, b) in LIMITS.items()}
    topology = (ROOT / "src" / "mas" / "topology.ts").read_text()
    assert int(re.search(r"MAX_LATENT_STEPS = (\d+)", topology).group(1)) == MAX_LATENT_STEPS
    assert int(re.search(r"MAX_AGENTS = (\d+)", topology).group(1)) == MAX_AGENTS


CASES = [
    ("maxAnswerTokens 1e9", lambda m: m.__setitem__("maxAnswerTokens", 10**9),
     "run.json: maxAnswerTokens must be what task lookup d1 implies ({L} for the char rendering, {L1} for word), got 1000000000"),
    ("latentSteps 1e9", lambda m: m["agents"][0].__setitem__("latentSteps", 10**9),
     "run.json agents[0]: latentSteps must be an integer in 0..64 (the engine's limit), got 1000000000"),
    ("steps 1e9", lambda m: m["config"].__setitem__("steps", 10**9), "run.json: config.steps must be an integer in 0..100000 (the engine's limit), got 1000000000"),
    ("batch 1e6", lambda m: m["config"].__setitem__("batch", 10**6), "run.json: config.batch must be an integer in 1..256 (the engine's limit), got 1000000"),
    ("evalSize 1e9", lambda m: m["config"].__setitem__("evalSize", 10**9), "run.json: config.evalSize must be an integer in 1..10000 (the engine's limit), got 1000000000"),
    ("textBudget 1e9", lambda m: m["config"].__setitem__("textBudget", 10**9), "run.json: config.textBudget must be an integer in 1..64 (the engine's limit), got 1000000000"),
    ("lora.r 1e6", lambda m: m["config"]["lora"].__setitem__("r", 10**6), "run.json: config.lora.r must be an integer in 1..64, got 1000000"),
    ("difficulty 99", lambda m: m["config"].__setitem__("difficulty", 99), "run.json: config.difficulty must be an integer in 1..5, got 99"),
    ("an episode count 1e9", lambda m: m["files"]["episodes"]["heldout"].__setitem__("count", 10**9),
     "run.json: files.episodes.heldout.count must be an integer in 0..10000 (the engine's largest evaluation set), got 1000000000"),
    ("vocabSize 1e12", lambda m: m["tokens"].__setitem__("vocabSize", 10**12), "run.json: tokens.vocabSize must be an integer in 1..16777216"),
    ("eos past the vocabulary", lambda m: m["tokens"].__setitem__("eos", 40), "run.json: tokens.eos must be a token id below vocabSize 40, got 40"),
    ("100 agents", lambda m: m.__setitem__("agents", [dict(m["agents"][0], id=f"x{i}") for i in range(100)]), "run.json: agents must be a list of 1..32 agents"),
    ("a cycle in predecessors", lambda m: m["agents"][0].__setitem__("predecessors", ["a1"]),
     'run.json agents[0]: predecessor "a1" is not an agent listed before it (the plan is in topological order; a cycle or an unknown id cannot be run)'),
    ("an unknown predecessor", lambda m: m["agents"][1].__setitem__("predecessors", ["ghost"]),
     'run.json agents[1]: predecessor "ghost" is not an agent listed before it'),
    ("an agent without an id", lambda m: m["agents"][0].pop("id"), "run.json agents[0]: needs an id (a string of 1..64 characters)"),
    ("a boolean for steps", lambda m: m["config"].__setitem__("steps", True), "run.json: config.steps must be an integer in 0..100000 (the engine's limit), got true"),
]


@pytest.mark.parametrize("what,edit,message", CASES, ids=[c[0] for c in CASES])
def test_8b_run_json_out_of_range_is_refused_at_once_with_a_message(tmp_path, what, edit, message):
    L = make_task("lookup", 1).max_answer_length
    meta = copy.deepcopy(run_json())
    edit(meta)
    root = write(tmp_path / "b", meta)
    t0 = time.process_time()
    with pytest.raises(BundleError) as e:
        read_bundle(root)
    assert time.process_time() - t0 < 5  # CPU time, generous: the refusal allocates nothing sized by the value
    assert message.format(L=L, L1=L + 1) in str(e.value)


def test_8c_a_traceback_of_the_audit_is_a_message_on_the_command_line(tmp_path, capsys):
    meta = run_json()
    meta["agents"][0]["predecessors"] = ["a1"]
    assert main(["eval", str(write(tmp_path / "b", meta))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: run bundle: run.json agents[0]: predecessor") and "Traceback" not in err


def _bomb(path: Path, unpacked: int):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("b/run.json", json.dumps(run_json()))
        with z.open("b/base/model.safetensors", "w") as f:
            chunk = bytes(1 << 20)
            for _ in range(unpacked >> 20):
                f.write(chunk)


def test_8d_a_zip_bomb_is_refused_before_anything_is_unpacked(tmp_path):
    z = tmp_path / "bomb.zip"
    _bomb(z, 200 << 20)
    size = z.stat().st_size
    before = set(Path(tempfile.gettempdir()).glob("run-bundle-*"))
    with pytest.raises(BundleError) as e:
        read_bundle(z)
    total = 200 * 2**20 + len(json.dumps(run_json()))
    assert str(e.value) == (
        f"run bundle: bomb.zip: its entries unpack to {total} bytes, more than the {ZIP_RATIO * size + ZIP_SLACK} this reader unpacks from an archive of {size} bytes "
        f"({ZIP_RATIO}x its size plus {ZIP_SLACK >> 20} MiB: a bundle is mostly weights, which hardly compress; this one looks like a zip bomb)"
    )
    assert set(Path(tempfile.gettempdir()).glob("run-bundle-*")) == before  # no temporary folder made, nothing unpacked


def test_8e_a_zipped_bundle_within_the_bound_reads_and_a_corrupt_zip_is_a_message(tmp_path):
    root = write(tmp_path / "b", run_json())
    z = tmp_path / "ok.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, f"b/{p.relative_to(root)}")
    b = read_bundle(z)
    assert b.agents[-1]["id"] == "a1"
    b.close()
    data = bytearray(z.read_bytes())
    at = data.index(b"b/run.json") + 10  # inside the first entry's deflated bytes
    data[at + 40] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"^run bundle: bad\.zip: the zip cannot be read \("):
        read_bundle(bad)


def _paths(o, at=()):
    yield at
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _paths(v, at + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _paths(v, at + (i,))


def test_8f_every_one_field_change_of_run_json_or_an_episode_is_read_or_refused_with_a_message(tmp_path):
    """Each field of run.json and of an episode line set to each of 9 hostile values, or deleted: read_bundle
    reads it or raises BundleError, never another exception (the audit's KeyError, IndexError, TypeError)."""
    values = [None, 10**9, -1, "x", [], {}, True, 1.5, "../x"]
    tried = 0
    for doc in ("run.json", "episode"):
        src = run_json() if doc == "run.json" else EPISODE
        for at in list(_paths(src))[1:]:
            for change in values + ["<delete>"]:
                m = copy.deepcopy(src)
                o = m
                for k in at[:-1]:
                    o = o[k]
                if change == "<delete>":
                    del o[at[-1]]
                else:
                    o[at[-1]] = change
                root = tmp_path / f"b{tried}"
                write(root, m if doc == "run.json" else run_json())
                if doc == "episode":
                    (root / "episodes" / "heldout.jsonl").write_text(json.dumps(m) + "\n")
                tried += 1
                try:
                    read_bundle(root)
                except BundleError:
                    pass
                except Exception as e:  # noqa: BLE001 - what this test looks for
                    raise AssertionError(f"{doc} {'.'.join(map(str, at))} = {change!r}: {type(e).__name__}: {e}") from e
    assert tried > 1000
