"""A Hub base (`--base-ref hub:ORG/NAME[@REV]` in a bundle, `new --base ORG/NAME[@REV]`) resolves in the
playground's own Hub cache (where the engine's `--model hf:` fetches: src/cli/hub.ts) first, then in
the Hugging Face cache, as the engine's base-ref-node.ts hubBaseFolder does (tests/base-ref-hub-cache.test.ts);
absent from both, the error names both folders. Fake cache folders only: nothing is fetched."""
from __future__ import annotations

import json
import shutil
from urllib.parse import quote

import pytest
from conftest import ROOT
from latent_playground.base_ref import base_digests, hub_folder, playground_hub_cache, resolve_base
from latent_playground.bundle_safety import BundleError
from latent_playground.cli import main

TINY = ROOT / "public" / "models" / "tiny"
C1, C2 = "c" * 40, "d" * 40


@pytest.fixture
def caches(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    ours, hf = tmp_path / "ours", tmp_path / "hf"
    ours.mkdir()
    hf.mkdir()
    monkeypatch.setenv("LATENT_PLAYGROUND_HUB_CACHE", str(ours))
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(hf))
    return ours, hf


def put_ours(ours, repo, revision, commit):
    """hub.ts's layout: ORG--NAME/<commit>/, ORG--NAME/refs/<encodeURIComponent(revision)> holding the commit."""
    top = ours / repo.replace("/", "--")
    (top / "refs").mkdir(parents=True, exist_ok=True)
    (top / "refs" / quote(revision, safe="!*'()")).write_text(commit + "\n")
    shutil.copytree(TINY, top / commit)
    return top / commit


def put_hf(hf, repo, revision, commit):
    """huggingface_hub's layout: models--ORG--NAME/refs/<revision> -> snapshots/<commit>/."""
    top = hf / f"models--{repo.replace('/', '--')}"
    (top / "refs").mkdir(parents=True, exist_ok=True)
    (top / "refs" / revision).write_text(commit)
    shutil.copytree(TINY, top / "snapshots" / commit)
    return top / "snapshots" / commit


def test_the_playground_cache_is_the_engines(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENT_PLAYGROUND_HUB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert playground_hub_cache() == tmp_path / "latent-playground" / "hub"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert playground_hub_cache() == tmp_path / "home" / ".cache" / "latent-playground" / "hub"


def test_found_in_the_playground_cache_by_branch_slashed_revision_and_commit(caches):
    ours, hf = caches
    d = put_ours(ours, "Org/ours-only", "main", C1)
    assert hub_folder("Org/ours-only") == d
    assert hub_folder("Org/ours-only", "main") == d
    assert hub_folder("Org/ours-only", C1) == d
    pr = put_ours(ours, "Org/ours-only", "refs/pr/1", C2)
    assert hub_folder("Org/ours-only", "refs/pr/1") == pr


def test_found_in_the_hf_cache_when_ours_lacks_it_and_ours_first_when_both_have_it(caches):
    ours, hf = caches
    d = put_hf(hf, "Org/hf-only", "main", C1)
    assert hub_folder("Org/hf-only") == d
    assert hub_folder("Org/hf-only", C1) == d
    mine = put_ours(ours, "Org/both", "main", C1)
    put_hf(hf, "Org/both", "main", C1)
    assert hub_folder("Org/both") == mine


def test_absent_from_both_names_both_places(caches):
    ours, hf = caches
    with pytest.raises(ValueError) as e:
        hub_folder("Org/absent", "v2")
    assert str(e.value) == (f"the base hub:Org/absent@v2 is not in the playground's Hub cache ({ours}), and not in the Hugging Face cache ({hf}): "
                            "fetch it (npm run cli -- hub hf:Org/absent@v2, or huggingface-cli download Org/absent --revision v2), or give the base folder")
    put_ours(ours, "Org/one", "main", C1)
    with pytest.raises(ValueError, match="is not in the playground's Hub cache"):
        hub_folder("Org/one", "v9")  # another revision is not taken for it
    with pytest.raises(ValueError, match="is not a revision"):
        hub_folder("Org/one", "../../etc")


def test_a_bundles_hub_reference_and_new_base_resolve_from_the_playground_cache(caches, tmp_path):
    ours, _ = caches
    d = put_ours(ours, "Org/tiny", "main", C1)
    ref = {"source": "hub", "id": "Org/tiny", **base_digests(TINY)}
    assert resolve_base(ref, tmp_path) == d
    with pytest.raises(BundleError, match=r"run bundle: the base hub:Org/tiny@v3 is not in the playground's Hub cache .* and not in the Hugging Face cache"):
        resolve_base({**ref, "revision": "v3"}, tmp_path)
    # `new --base ORG/NAME` takes it from there too
    args = ["--method", "diffmas", "--steps", "2", "--batch", "2", "--eval-size", "2", "--rank", "2", "--latent-steps", "1"]
    assert main(["new", "--base", "Org/tiny", "--out", str(tmp_path / "run"), *args]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["base"]["id"] == "Org/tiny"
