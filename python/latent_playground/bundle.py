"""Reading and writing run bundles (docs/run-bundle.md, src/storage/run-bundle.ts): run.json, the base
as Hugging Face files, PEFT adapters (trained and initial), the latent map, each split's episodes and
the first training batches. A folder or a zip (one top folder is looked through). What run.json may
ask (paths inside the bundle, settings within the engine's limits, a bounded zip) is checked before
anything is read or allocated (bundle_safety.py)."""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .bundle_safety import BundleError, check_config, check_episode, check_files, check_meta, check_plan, check_zip, inside

FORMAT = "latent-playground-run"
VERSION = 1
# a bundle that references its base (files.baseRef, base_ref.py) is version 2: a version-1 reader refuses it plainly
BASE_REF_VERSION = 2
SPLITS = ("train", "heldout", "ood")


@dataclass
class LatentMap:
    kind: str
    D: int
    target_norm: float
    Wa: object | None  # torch.Tensor [D, D] (float32 as stored) or None for the identity
    lam: float = 0.0


@dataclass
class Bundle:
    root: Path
    json: dict
    episodes: dict = field(default_factory=dict)
    batches: list = field(default_factory=list)
    latent_map: LatentMap | None = None
    _tmp: object = None
    # a referenced base (files.baseRef): its folder, resolved and digest-checked by read_bundle
    base_path: Path | None = None

    @property
    def config(self) -> dict:
        return self.json["config"]

    @property
    def method(self) -> dict:
        return self.json["method"]

    @property
    def agents(self) -> list[dict]:
        return self.json["agents"]

    @property
    def base_dir(self) -> Path:
        if self.base_path is not None:
            return self.base_path
        return inside(self.root, self.json["files"]["base"], "files.base")

    def adapter_dir(self, key: str, initial: bool = False) -> Path:
        files = self.json["files"]["initialAdapters" if initial else "adapters"]
        if key not in files:
            which = "initial_adapters" if initial else "adapters"
            raise BundleError(f"run.json: no {which} folder for adapter {key!r} (has: {', '.join(files) or 'none'})")
        return inside(self.root, files[key], f"files.{'initialAdapters' if initial else 'adapters'}.{key}")

    @property
    def adapter_keys(self) -> list[str]:
        keys = []
        for a in self.agents:
            if a["adapterKey"] is not None and a["adapterKey"] not in keys:
                keys.append(a["adapterKey"])
        return keys

    @property
    def rendering(self) -> str:
        r = self.config.get("rendering")
        if r:
            return r
        tk = json.loads((self.base_dir / "tokenizer.json").read_text())
        return "char" if tk.get("type") == "char" else "word"

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _need(cond, where: str, what: str):
    if not cond:
        raise BundleError(f"{where}: {what}")


def _lines(path: Path, count: int, where: str) -> list:
    _need(path.is_file(), where, "the file is missing (run.json lists it)")
    lines = [l for l in path.read_text().split("\n") if l.strip()]
    _need(len(lines) == count, where, f"{len(lines)} lines, but run.json says {count}")
    out = []
    for i, l in enumerate(lines):
        try:
            out.append(json.loads(l))
        except json.JSONDecodeError as e:
            raise BundleError(f"{where} line {i + 1} is not JSON: {e}") from None
    return out


def read_bundle(path: str | Path, base: str | Path | None = None) -> Bundle:
    """Reads and checks a bundle (a folder, or a zip unpacked into a temporary folder). A bundle that
    references its base (files.baseRef) has it resolved (or taken from `base`) and refused unless its
    weights, config.json and tokenizer files have the recorded sha256 digests (base_ref.py)."""
    path = Path(path)
    tmp = None
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                check_zip(z, path)  # names and the unpacked size, before anything is unpacked
                tmp = tempfile.TemporaryDirectory(prefix="run-bundle-")
                z.extractall(tmp.name)
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:
            if tmp is not None:
                tmp.cleanup()
            raise BundleError(f"{path.name}: the zip cannot be read ({e})") from None
        except BaseException:
            if tmp is not None:
                tmp.cleanup()
            raise
        path = Path(tmp.name)
    _need(path.is_dir(), str(path), "not a folder or zip")
    root = path
    if not (root / "run.json").is_file():
        tops = [d for d in root.iterdir() if d.is_dir() and (d / "run.json").is_file()]
        _need(tops, "run.json", "not found: this is not a run bundle")
        root = tops[0]
    try:
        meta = json.loads((root / "run.json").read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"run.json is not JSON: {e}") from None
    _need(isinstance(meta, dict), "run.json", "not a JSON object")
    _need(meta.get("format") == FORMAT, "run.json", f"format is {meta.get('format')!r}, not {FORMAT!r}")
    v = meta.get("version")
    _need(isinstance(v, int), "run.json", "version is not an integer")
    _need(v <= BASE_REF_VERSION, "run.json", f"version {v} was written by a newer playground (this one reads versions up to {BASE_REF_VERSION})")
    _need(v >= 1, "run.json", f"version {v} is not a bundle version")
    for k in ("config", "method", "agents", "files", "tokens", "maxAnswerTokens", "positions", "training"):
        _need(k in meta, "run.json", f"{k} is missing")
    # before any file is opened or anything sized by run.json is allocated
    check_files(meta["files"])
    check_config(meta["config"])
    check_plan(meta)
    check_meta(meta)
    agents = meta["agents"]
    _need(sum(a["final"] for a in agents) == 1 and agents[-1]["final"], "run.json", "exactly one final agent, listed last")
    files = meta["files"]
    base_path = None
    if files.get("base") is None and "baseRef" in files:
        from .base_ref import describe, resolve_base

        base_path = resolve_base(files["baseRef"], root, base)
        where = f"the referenced base ({describe(files['baseRef'])})"
        for n in ("config.json", "tokenizer.json"):
            _need((base_path / n).is_file(), f"{where}/{n}", "missing")
        _need((base_path / "model.safetensors").is_file() or (base_path / "model.safetensors.index.json").is_file(), f"{where}/model.safetensors", "missing")
    else:
        _need("baseRef" not in files, "run.json", "files.base and files.baseRef: a bundle holds its base or references it, not both")
        base = inside(root, files["base"], "files.base")
        _need(base.is_dir(), files["base"], "missing (run.json lists it)")
        # transformers reads whatever the base folder holds: none of it may be a link out of the bundle
        for f in sorted(base.iterdir()):
            inside(root, f"{files['base']}/{f.name}", "files.base")
        for n in ("config.json", "tokenizer.json"):
            _need((base / n).is_file(), f"{files['base']}/{n}", "missing")
        _need((base / "model.safetensors").is_file() or (base / "model.safetensors.index.json").is_file(), f"{files['base']}/model.safetensors", "missing")
    for group in ("adapters", "initialAdapters"):
        for key, p in files[group].items():
            d = inside(root, p, f"files.{group}.{key}")
            for f in ("adapter_config.json", "adapter_model.safetensors"):
                # a link inside the folder may lead out too
                _need(inside(d, f, f"files.{group}.{key}").is_file(), f"{p}/{f}", "missing")
    if files.get("fuser") is not None:
        _need(inside(root, files["fuser"], "files.fuser").is_file(), files["fuser"], "missing (run.json lists it)")
    if meta["method"]["train"] == "fuser" and meta["training"]["stepsDone"] > 0:
        _need(files.get("fuser") is not None, "run.json", f"a c2c run trained {meta['training']['stepsDone']} steps, but files.fuser names no c2c_fuser.safetensors")
    b = Bundle(root=root, json=meta, _tmp=tmp, base_path=base_path)
    for split, e in files["episodes"].items():
        _need(split in SPLITS, "run.json", f"unknown split {split!r} in files.episodes")
        eps = _lines(inside(root, e["path"], f"files.episodes.{split}.path"), e["count"], e["path"])
        for i, ep in enumerate(eps):
            check_episode(ep, f"{e['path']} line {i + 1}", split, len(agents))
        b.episodes[split] = eps
    if files.get("batches"):
        b.batches = _lines(inside(root, files["batches"]["path"], "files.batches.path"), files["batches"]["count"], files["batches"]["path"])
    if files.get("latentMap"):
        from safetensors import safe_open

        p = inside(root, files["latentMap"], "files.latentMap")
        _need(p.is_file(), files["latentMap"], "missing")
        with safe_open(str(p), framework="pt") as f:
            md = f.metadata() or {}
            names = set(f.keys())
            wa = f.get_tensor("W_a") if "W_a" in names else None
            tn = f.get_tensor("target_norm") if "target_norm" in names else None
        kind = md.get("kind")
        _need(kind in ("ridge", "identity"), files["latentMap"], f"kind {kind!r} is not ridge or identity")
        D = int(md.get("D", 0))
        _need(tn is not None and D > 0, files["latentMap"], "needs D and target_norm")
        _need(kind == "identity" or (wa is not None and tuple(wa.shape) == (D, D)), files["latentMap"], f"a ridge map needs W_a of {D} x {D}")
        try:
            norm = float(md["target_norm"])
        except (KeyError, ValueError):
            norm = float(tn[0])
        b.latent_map = LatentMap(kind=kind, D=D, target_norm=norm, Wa=wa, lam=float(md.get("lambda", 0)))
    return b


def _copy_tree(src: Path, dst: Path):
    """Copies a folder, hard-linking files where the file system allows (a base of gigabytes is not copied twice)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_dir():
            _copy_tree(f, dst / f.name)
            continue
        try:
            (dst / f.name).hardlink_to(f)
        except OSError:
            shutil.copy2(f, dst / f.name)


def write_bundle(src: Bundle, out: Path, meta: dict, adapter_dirs: dict[str, Path], fuser_file: Path | None = None) -> Path:
    """A new bundle at `out`, complete or not at all: the source's base, initial adapters, latent map,
    episodes and batches, the given trained adapters (c2c: its trained fuser file) and run.json `meta`
    (its files are set here). Written into a temporary sibling, then renamed into place."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists: choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        files = {"base": "base", "adapters": {}, "initialAdapters": {}, "latentMap": None, "episodes": {}, "batches": None}
        ref = src.json["files"].get("baseRef")
        if ref is not None:
            # the source referenced its base: so does the new bundle (the same weights, by digest)
            files["base"] = None
            files["baseRef"] = ref
            if ref["source"] == "folder" and not Path(ref["id"]).is_absolute():
                files["baseRef"] = {**ref, "id": str(src.base_dir)}
        else:
            _copy_tree(src.base_dir, tmp / "base")
        for key, d in adapter_dirs.items():
            _copy_tree(Path(d), tmp / "adapters" / key)
            files["adapters"][key] = f"adapters/{key}"
        for key, p in src.json["files"]["initialAdapters"].items():
            _copy_tree(inside(src.root, p, f"files.initialAdapters.{key}"), tmp / "initial_adapters" / key)
            files["initialAdapters"][key] = f"initial_adapters/{key}"
        sf = src.json["files"]
        if sf.get("latentMap"):
            shutil.copy2(inside(src.root, sf["latentMap"], "files.latentMap"), tmp / "latent_map.safetensors")
            files["latentMap"] = "latent_map.safetensors"
        if fuser_file is not None:
            shutil.copy2(fuser_file, tmp / "c2c_fuser.safetensors")
            files["fuser"] = "c2c_fuser.safetensors"
        for split, e in sf["episodes"].items():
            (tmp / "episodes").mkdir(exist_ok=True)
            shutil.copy2(inside(src.root, e["path"], f"files.episodes.{split}.path"), tmp / "episodes" / f"{split}.jsonl")
            files["episodes"][split] = {"path": f"episodes/{split}.jsonl", "count": e["count"]}
        if sf.get("batches"):
            shutil.copy2(inside(src.root, sf["batches"]["path"], "files.batches.path"), tmp / "batches.jsonl")
            files["batches"] = {"path": "batches.jsonl", "count": sf["batches"]["count"]}
        doc = {"format": FORMAT, "version": BASE_REF_VERSION if ref is not None else VERSION, **{k: v for k, v in meta.items() if k not in ("format", "version", "files")}, "files": files}
        (tmp / "run.json").write_text(json.dumps(doc, indent=2) + "\n")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
