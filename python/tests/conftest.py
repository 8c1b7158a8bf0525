"""Shared fixtures: one torch thread (CI's two cores also run the engine), and the engine's side of the
cross-checks (tests/python/engine-check.ts) made once per content of the engine's sources and the base:
a run bundle and what the engine measured per case, under .cache/pycheck/<key>/.

LP_ENGINE_CASES=DIR uses an existing output of `engine-check.mjs make DIR` instead.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "public" / "models" / "toy"
CACHE = ROOT / ".cache" / "pycheck"
REPORT: dict = {}


def _key() -> str:
    h = hashlib.sha256()
    files = sorted((ROOT / "src").rglob("*.ts")) + sorted((ROOT / "shaders").rglob("*.wgsl")) + [ROOT / "tests" / "python" / "engine-check.ts"]
    files += sorted(TOY.iterdir())
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _vulkan_env() -> dict:
    """lavapipe when scripts/lavapipe.sh can provide it (about 7x SwiftShader), as scripts/test.sh does for the long test."""
    env = dict(os.environ)
    if env.get("VK_ICD_FILENAMES") or list(Path("/usr/share/vulkan/icd.d").glob("nvidia*.json")):
        return env
    try:
        out = subprocess.run(["bash", "scripts/lavapipe.sh"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return env
    if out.returncode == 0:
        for part in out.stdout.replace("export ", "").split():
            k, _, v = part.partition("=")
            if k in ("VK_ICD_FILENAMES", "LD_LIBRARY_PATH"):
                env[k] = v.replace("${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}", (":" + os.environ["LD_LIBRARY_PATH"]) if os.environ.get("LD_LIBRARY_PATH") else "")
    return env


def node_script() -> Path:
    out = CACHE / "engine-check.mjs"
    subprocess.run(["node", "scripts/bundle.mjs", "tests/python/engine-check.ts", str(out)], cwd=ROOT, check=True)
    return out


def run_engine(args: list[str], timeout: int = 3000) -> subprocess.CompletedProcess:
    """Runs engine-check.mjs with a Vulkan driver (scripts/with-vulkan.sh); raises with its output on failure."""
    script = node_script()
    p = subprocess.run(["bash", "scripts/with-vulkan.sh", "node", str(script), *args], cwd=ROOT, env=_vulkan_env(),
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"engine-check {' '.join(args)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


@pytest.fixture(scope="session")
def engine_dir() -> Path:
    given = os.environ.get("LP_ENGINE_CASES")
    if given:
        return Path(given)
    d = CACHE / _key()
    if not (d / "done").is_file():
        shutil.rmtree(d, ignore_errors=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        p = run_engine(["make", str(d)])
        print(p.stdout, file=sys.stderr)
        (d / "done").write_text("\n".join(l for l in p.stdout.splitlines() if not l.startswith("Warning")) + "\n")
    return d


def case_dirs(engine_dir: Path) -> list[Path]:
    return sorted(p.parent for p in engine_dir.glob("*/engine.json"))


def engine_json(case: Path) -> dict:
    return json.loads((case / "engine.json").read_text())


def pytest_terminal_summary(terminalreporter):
    if not REPORT:
        return
    tr = terminalreporter
    tr.section("cross-checks against the engine (issue 13 item 3)")
    for k in sorted(REPORT):
        tr.write_line(f"{k}: {REPORT[k]}")
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "report.json").write_text(json.dumps(REPORT, indent=1, sort_keys=True) + "\n")
