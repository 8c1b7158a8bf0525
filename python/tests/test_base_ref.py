"""Issue 23 item 4, the companion's side: a run bundle that references its base (files.baseRef: by
library id, Hub id or folder, with the sha256 of its weights, config.json and tokenizer files)
instead of copying it. The engine writes one (`experiment --export-run DIR --base-ref folder`), this
package reads it, evaluates it as the engine did, continues its training into a new bundle that
references the same base, and the engine reads that back; a base whose weights differ, or (issue 20
item 2) whose config.json or tokenizer.json differs under the same weights, is refused on both sides."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from conftest import ROOT, _vulkan_env, run_engine
from latent_playground.agents import Team
from latent_playground.base_ref import base_digests, check_base_ref, weights_digest
from latent_playground.bundle import BundleError, read_bundle
from latent_playground.cli import main
from latent_playground.evaluate import Evaluator
from latent_playground.tokenizer import load_tokenizer

TINY = ROOT / "public" / "models" / "tiny"
# the engine's weightsDigest of the same three files (tests/base-ref.test.ts SHARDED_DIGEST)
SHARDED_DIGEST = "069c51ca0896404c05713faf57dd92e4f0b0a629600d3d1c151ef28126800310"


def test_the_digest_is_the_engines(tmp_path):
    assert weights_digest(TINY) == hashlib.sha256((TINY / "model.safetensors").read_bytes()).hexdigest()
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}}')
    (tmp_path / "model-00001-of-00002.safetensors").write_text("first shard")
    (tmp_path / "model-00002-of-00002.safetensors").write_text("second shard")
    assert weights_digest(tmp_path) == SHARDED_DIGEST
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(BundleError, match="names the shard model-00002-of-00002.safetensors"):
        weights_digest(tmp_path)


def test_a_malformed_reference_is_refused_naming_the_field():
    sha = "a" * 64
    fs = {"config.json": "b" * 64, "tokenizer.json": "c" * 64, "tokenizer_config.json": None}
    assert check_base_ref({"source": "hub", "id": "Org/name", "revision": "main", "sha256": sha, "fileSha256": fs})
    no_tc = {k: v for k, v in fs.items() if k != "tokenizer_config.json"}
    for ref, msg in [({"source": "url", "id": "x", "sha256": sha, "fileSha256": fs}, "source must be one of library, hub, folder"),
                     ({"source": "folder", "id": "", "sha256": sha, "fileSha256": fs}, "id must be a non-empty string"),
                     ({"source": "folder", "id": "x", "sha256": "ABC", "fileSha256": fs}, "sha256 must be 64 lowercase hex digits"),
                     ({"source": "hub", "id": "no-slash", "sha256": sha, "fileSha256": fs}, "not a Hub repo id"),
                     ({"source": "folder", "id": "x", "revision": "main", "sha256": sha, "fileSha256": fs}, "only for a Hub reference"),
                     # the other defining files, as the engine's checkBaseRef
                     ({"source": "folder", "id": "x", "sha256": sha}, r'fileSha256 must be an object \{"config.json", "tokenizer.json", "tokenizer_config.json"\}'),
                     ({"source": "folder", "id": "x", "sha256": sha, "fileSha256": no_tc}, "fileSha256 has no entry for tokenizer_config.json"),
                     ({"source": "folder", "id": "x", "sha256": sha, "fileSha256": {**fs, "config.json": None}}, r'fileSha256\["config.json"\] is null, but every base has one'),
                     ({"source": "folder", "id": "x", "sha256": sha, "fileSha256": {**fs, "tokenizer.json": "XYZ"}}, r'fileSha256\["tokenizer.json"\] must be 64 lowercase hex digits or null, got "XYZ"'),
                     ({"source": "folder", "id": "x", "sha256": sha, "fileSha256": {**fs, "vocab.txt": sha}}, 'fileSha256 names "vocab.txt", which is not one of')]:
        with pytest.raises(BundleError, match=msg):
            check_base_ref(ref)


def test_the_recorded_digests_are_the_engines():
    d = base_digests(TINY)
    sha = lambda name: hashlib.sha256((TINY / name).read_bytes()).hexdigest()  # noqa: E731
    assert d == {"sha256": sha("model.safetensors"),
                 "fileSha256": {"config.json": sha("config.json"), "tokenizer.json": sha("tokenizer.json"), "tokenizer_config.json": None}}


@pytest.fixture(scope="module")
def engine_ref_bundle(tmp_path_factory):
    """A tiny DiffMAS run exported by the engine with its base referenced by folder."""
    out = tmp_path_factory.mktemp("ref") / "runs"
    p = subprocess.run(["npm", "run", "-s", "experiment", "--", "--preset", "tiny", "--methods", "diffmas", "--seeds", "1", "--steps", "2", "--batch", "2",
                        "--eval-size", "4", "--no-controls", "--quiet", "--export-run", str(out), "--base-ref", "folder"],
                       cwd=ROOT, env=_vulkan_env(), capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "estimate: about" in p.stdout
    return out / "diffmas-seed1"


def test_the_engines_reference_bundle_reads_evaluates_and_continues_into_one_the_engine_reads(engine_ref_bundle, tmp_path):
    src = engine_ref_bundle
    assert not (src / "base").exists()
    b = read_bundle(src)
    assert b.json["version"] == 2 and b.json["files"]["base"] is None
    assert b.json["files"]["baseRef"] == {"source": "folder", "id": str(TINY.resolve()), **base_digests(TINY)}
    assert b.base_dir == TINY.resolve()
    # PyTorch evaluates it as the engine did, on the referenced base
    team = Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys})
    mine = Evaluator(team, load_tokenizer(b.base_dir, b.json["tokens"])).evaluate("heldout")
    eng = next(r for r in b.json["results"]["evaluation"] if r["split"] == "heldout")
    assert mine["accuracy"] == eng["accuracy"]
    assert abs(mine["loss"] - eng["loss"]) <= 1e-4 * abs(eng["loss"])
    # continued here: the new bundle references the same base (no copy), and the engine reads it
    out = tmp_path / "continued"
    assert main(["train", str(src), "--steps", "1", "--out", str(out), "--no-eval"]) == 0
    c = read_bundle(out)
    assert not (out / "base").exists() and c.json["files"]["baseRef"] == {**b.json["files"]["baseRef"]} and c.json["version"] == 2
    run_engine(["eval", str(out), str(tmp_path / "engine.json"), "--splits", "heldout"])
    assert json.loads((tmp_path / "engine.json").read_text())["evaluation"]["heldout"]["episodes"] == 4


def test_other_weights_are_refused(engine_ref_bundle, tmp_path):
    altered = tmp_path / "altered"
    shutil.copytree(TINY, altered)
    w = bytearray((altered / "model.safetensors").read_bytes())
    w[-1] ^= 1
    (altered / "model.safetensors").write_bytes(bytes(w))
    with pytest.raises(BundleError, match=r"the base referenced as folder .* has weights with sha256 [0-9a-f]{64}, but run.json records [0-9a-f]{64}: these are not the weights"):
        read_bundle(engine_ref_bundle, base=altered)
    moved = tmp_path / "moved"
    shutil.copytree(engine_ref_bundle, moved)
    meta = json.loads((moved / "run.json").read_text())
    meta["files"]["baseRef"]["id"] = "../altered"
    (moved / "run.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"the base referenced as folder \.\./altered has weights with sha256"):
        read_bundle(moved)
    # the engine refuses it too
    with pytest.raises(RuntimeError, match="these are not the weights the run was trained on"):
        run_engine(["eval", str(moved), str(tmp_path / "e.json"), "--splits", "heldout"])
    # a library reference needs the base given; given, it is checked the same way
    meta["files"]["baseRef"] = {"source": "library", "id": "tiny", **base_digests(TINY)}
    (moved / "run.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="lives in the page's library"):
        read_bundle(moved)
    assert read_bundle(moved, base=TINY).base_dir == TINY.resolve()
    with pytest.raises(BundleError, match="has weights with sha256"):
        read_bundle(moved, base=altered)


def _sibling(tmp_path, name, edit):
    """A copy of the tiny base with the same weights and one file changed by `edit(folder)`."""
    d = tmp_path / name
    shutil.copytree(TINY, d)
    edit(d)
    assert weights_digest(d) == weights_digest(TINY)
    return d


def test_the_same_weights_under_another_config_or_tokenizer_are_refused(engine_ref_bundle, tmp_path):
    """Issue 20 item 2: a base is matched on every file that defines it, not its weights alone."""
    ref = json.loads((engine_ref_bundle / "run.json").read_text())["files"]["baseRef"]

    def rope(d):
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "rope_theta": 100000}))
    reconfigured = _sibling(tmp_path, "reconfigured", rope)
    cfg_sha = hashlib.sha256((reconfigured / "config.json").read_bytes()).hexdigest()
    with pytest.raises(BundleError, match=rf"the base referenced as folder .* has a config.json with sha256 {cfg_sha}, but run.json records "
                                          rf"{ref['fileSha256']['config.json']}: this is not the model the run was trained on \(the same weights"):
        read_bundle(engine_ref_bundle, base=reconfigured)

    def lowercase(d):
        tok = json.loads((d / "tokenizer.json").read_text())
        (d / "tokenizer.json").write_text(json.dumps({**tok, "normalizer": {"type": "Lowercase"}}))
    retokenized = _sibling(tmp_path, "retokenized", lowercase)
    with pytest.raises(BundleError, match=rf"has a tokenizer.json with sha256 [0-9a-f]{{64}}, but run.json records {ref['fileSha256']['tokenizer.json']}: this is not the model"):
        read_bundle(engine_ref_bundle, base=retokenized)
    untokenized = _sibling(tmp_path, "untokenized", lambda d: (d / "tokenizer.json").unlink())
    with pytest.raises(BundleError, match=rf"has no tokenizer.json, but run.json records one with sha256 {ref['fileSha256']['tokenizer.json']}"):
        read_bundle(engine_ref_bundle, base=untokenized)
    extra = _sibling(tmp_path, "extra", lambda d: (d / "tokenizer_config.json").write_text('{"model_max_length": 64}'))
    with pytest.raises(BundleError, match="has a tokenizer_config.json with sha256 [0-9a-f]{64}, but run.json records none"):
        read_bundle(engine_ref_bundle, base=extra)
    # a file beside the defining ones does not matter
    assert read_bundle(engine_ref_bundle, base=_sibling(tmp_path, "noted", lambda d: (d / "README.md").write_text("notes"))).base_dir == (tmp_path / "noted").resolve()
    # the engine refuses the reconfigured base too, through the reference
    moved = tmp_path / "moved"
    shutil.copytree(engine_ref_bundle, moved)
    meta = json.loads((moved / "run.json").read_text())
    meta["files"]["baseRef"]["id"] = "../reconfigured"
    (moved / "run.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"the base referenced as folder \.\./reconfigured has a config.json with sha256"):
        read_bundle(moved)
    with pytest.raises(RuntimeError, match="has a config.json with sha256 [0-9a-f]{64}, but run.json records [0-9a-f]{64}: this is not the model the run was trained on"):
        run_engine(["eval", str(moved), str(tmp_path / "e.json"), "--splits", "heldout"])
