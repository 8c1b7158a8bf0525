"""A run bundle that references its base instead of holding it (docs/run-bundle.md, the engine's
src/storage/base-ref.ts): run.json has ``files.base: null`` and ``files.baseRef`` = {source, id,
revision?, sha256, fileSha256}. The base is found by the reference (a folder, relative to the bundle's
folder or absolute; a Hub model in the playground's own Hub cache, where the engine's `--model hf:`
fetches, else in the Hugging Face cache: hub_folder; the page's library, which only a given folder
can stand for) and refused unless its weights have the recorded digest and each other file
that defines the model (config.json, tokenizer.json, tokenizer_config.json: issue 20 item 2) the
recorded sha256."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import quote

from .bundle_safety import BundleError

SOURCES = ("library", "hub", "folder")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# the files besides the weights that define a base: the engine's BASE_REF_FILES (its modelDigest's set)
FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def sha256_file(p: Path) -> str:
    """The sha256 of a file, read in blocks (what sha256sum prints)."""
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def weights_digest(folder: Path) -> str:
    """The sha256 of model.safetensors; for a sharded base, the sha256 of the text "<name> <sha256>\\n"
    over the index and then each shard in name order (the engine's weightsDigest)."""
    folder = Path(folder)
    single = folder / "model.safetensors"
    if single.is_file():
        return sha256_file(single)
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        raise BundleError(f"{folder}: the base has neither model.safetensors nor model.safetensors.index.json")
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise BundleError(f"{index}: no weight_map ({e})") from None
    lines = [f"model.safetensors.index.json {sha256_file(index)}\n"]
    for s in sorted(set(map(str, weight_map.values()))):
        if not (folder / s).is_file():
            raise BundleError(f"the base's model.safetensors.index.json names the shard {s}, which {folder} does not hold")
        lines.append(f"{s} {sha256_file(folder / s)}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def file_digests(folder: Path) -> dict:
    """The sha256 of each of FILES in the folder, None where absent."""
    return {name: sha256_file(Path(folder) / name) if (Path(folder) / name).is_file() else None for name in FILES}


def base_digests(folder: Path) -> dict:
    """What a reference records of a base: {"sha256": weights digest, "fileSha256": {name: sha256 or None}}."""
    if not (Path(folder) / "config.json").is_file():
        raise BundleError(f"{folder}: the base has no config.json")
    return {"sha256": weights_digest(folder), "fileSha256": file_digests(folder)}


def check_base_ref(v) -> dict:
    """run.json's files.baseRef, checked as the engine checks it."""
    def bad(what):
        return BundleError(f"run.json: files.baseRef {what}")
    if not isinstance(v, dict):
        raise bad("must be an object {source, id, revision?, sha256, fileSha256}")
    if v.get("source") not in SOURCES:
        raise bad(f"source must be one of {', '.join(SOURCES)}, got {json.dumps(v.get('source'))}")
    if not isinstance(v.get("id"), str) or not v["id"].strip():
        raise bad("id must be a non-empty string")
    if "revision" in v and (not isinstance(v["revision"], str) or not v["revision"] or v["source"] != "hub"):
        raise bad("revision is a non-empty string, and only for a Hub reference")
    if v["source"] == "hub" and not _HUB_ID.match(v["id"]):
        raise bad(f"id {json.dumps(v['id'])} is not a Hub repo id (org/name)")
    if not isinstance(v.get("sha256"), str) or not re.fullmatch(r"[0-9a-f]{64}", v["sha256"]):
        raise bad("sha256 must be 64 lowercase hex digits (the digest of the base's weights)")
    f = v.get("fileSha256")
    want = "{" + ", ".join(f'"{n}"' for n in FILES) + "}"
    if not isinstance(f, dict):
        raise bad(f"fileSha256 must be an object {want}: the sha256 of each file that defines the base besides its weights, null where it has none")
    for k in f:
        if k not in FILES:
            raise bad(f"fileSha256 names {json.dumps(k)}, which is not one of {want} (written by a newer playground?)")
    for name in FILES:
        if name not in f:
            raise bad(f"fileSha256 has no entry for {name} (its sha256, or null where the base has none)")
        d = f[name]
        if d is None and name == "config.json":
            raise bad('fileSha256["config.json"] is null, but every base has one')
        if d is not None and not (isinstance(d, str) and _HEX64.fullmatch(d)):
            raise bad(f'fileSha256["{name}"] must be 64 lowercase hex digits or null, got {json.dumps(d)}')
    return v


def describe(ref: dict) -> str:
    return f"{ref['source']} {ref['id']}" + (f"@{ref['revision']}" if ref.get("revision") else "")


def playground_hub_cache() -> Path:
    """The engine CLI's Hub cache (src/cli/hub.ts hubCacheDir): LATENT_PLAYGROUND_HUB_CACHE, else
    $XDG_CACHE_HOME/latent-playground/hub, else ~/.cache/latent-playground/hub."""
    if os.environ.get("LATENT_PLAYGROUND_HUB_CACHE"):
        return Path(os.environ["LATENT_PLAYGROUND_HUB_CACHE"]).resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "latent-playground" / "hub"


def hf_hub_cache() -> Path:
    """huggingface_hub's cache folder (its constants: HF_HUB_CACHE, else HF_HOME/hub, else
    ~/.cache/huggingface/hub), read when asked."""
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    except ImportError:
        if os.environ.get("HF_HUB_CACHE"):
            return Path(os.environ["HF_HUB_CACHE"])
        return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


_COMMIT = re.compile(r"[0-9a-f]{40}")


def _in_playground_cache(repo: str, revision: str, cache: Path) -> Path | None:
    """hub.ts cachedHubFolder: ORG--NAME/<commit>/, a branch or tag through ORG--NAME/refs/<encodeURIComponent(rev)>."""
    top = cache / repo.replace("/", "--")
    commit = revision if _COMMIT.fullmatch(revision) else None
    if commit is None:
        ref_file = top / "refs" / quote(revision, safe="!*'()")
        commit = ref_file.read_text().strip() if ref_file.is_file() else None
    d = top / commit if commit and _COMMIT.fullmatch(commit) else None
    return d if d is not None and d.is_dir() else None


def _in_hf_cache(repo: str, revision: str, cache: Path) -> Path | None:
    """huggingface_hub's layout: models--ORG--NAME/snapshots/<commit>/, a branch or tag through refs/<rev>."""
    top = cache / f"models--{repo.replace('/', '--')}"
    ref_file = top / "refs" / revision
    commit = ref_file.read_text().strip() if ref_file.is_file() else revision
    d = top / "snapshots" / commit
    return d if commit and d.is_dir() else None


def hub_folder(repo: str, revision: str | None = None) -> Path:
    """The folder of a Hub model (revision: a branch, tag or commit; main when None), from the
    playground's Hub cache first, then the Hugging Face cache (the engine's base-ref-node.ts
    hubBaseFolder). Nothing is fetched; absent from both, the ValueError names both places."""
    rev = revision or "main"
    if not re.fullmatch(r"[\w./-]{1,200}", rev) or ".." in rev or rev.startswith("/"):
        raise ValueError(f"{json.dumps(rev)} is not a revision: give a branch, a tag or a commit id (letters, digits, '-', '_', '.', '/')")
    ours, hf = playground_hub_cache(), hf_hub_cache()
    found = _in_playground_cache(repo, rev, ours) or _in_hf_cache(repo, rev, hf)
    if found is not None:
        return found
    spec = f"{repo}@{revision}" if revision else repo
    raise ValueError(f"the base hub:{spec} is not in the playground's Hub cache ({ours}), and not in the Hugging Face cache ({hf}): "
                      f"fetch it (npm run cli -- hub hf:{spec}, or huggingface-cli download {repo}"
                      f"{f' --revision {revision}' if revision else ''}), or give the base folder")


def ref_folder(ref: dict, bundle_root: Path) -> Path:
    """The folder a reference names (without checking its digest)."""
    if ref["source"] == "folder":
        return (Path(bundle_root) / ref["id"]).resolve()
    if ref["source"] == "hub":
        try:
            return hub_folder(ref["id"], ref.get("revision"))
        except ValueError as e:
            raise BundleError(str(e)) from None
    raise BundleError(f"the base referenced as {describe(ref)} lives in the page's library: export it from the page (Library, Export) "
                      "and give that folder as the base (read_bundle(path, base=FOLDER))")


def resolve_base(ref, bundle_root: Path, base: str | Path | None = None) -> Path:
    """The referenced base's folder (`base` when given), refused unless its weights and each other
    defining file have the recorded digests (every mismatch named with both digests, as the engine's
    verifyBaseRef)."""
    ref = check_base_ref(ref)
    folder = Path(base).resolve() if base is not None else ref_folder(ref, bundle_root)
    if not folder.is_dir():
        raise BundleError(f"the base referenced as {describe(ref)} cannot be read: {folder} is not a folder")
    wrong = []
    have = file_digests(folder)
    for name in FILES:
        got, want = have[name], ref["fileSha256"][name]
        if got == want:
            continue
        if got is None:
            wrong.append(f"has no {name}, but run.json records one with sha256 {want}")
        elif want is None:
            wrong.append(f"has a {name} with sha256 {got}, but run.json records none")
        else:
            wrong.append(f"has a {name} with sha256 {got}, but run.json records {want}")
    weights = weights_digest(folder)
    weights_differ = weights != ref["sha256"]
    if weights_differ:
        wrong.insert(0, f"has weights with sha256 {weights}, but run.json records {ref['sha256']}")
    if wrong:
        why = ("these are not the weights the run was trained on" if weights_differ else
               "this is not the model the run was trained on (the same weights, but another file that defines what it computes or how it reads text)")
        raise BundleError(f"the base referenced as {describe(ref)} {'; '.join(wrong)}: {why} (restore that base, or point the reference at the right one)")
    return folder
