"""The curriculum (curriculum.py) draws what the engine draws: the fixture's curricula
(tests/fixtures/streams.json "curriculum", scripts/dump-streams.mjs: every batch of the stages and a few
past them; lookup and arith in the char rendering, text-trained's batcher, the word rendering over a
byte-level BPE), its stages and its refusals in the engine's words; and python new writes a curriculum
run's bundle batches from the stages.
"""
from __future__ import annotations

import json

import pytest

from conftest import REPORT, ROOT
from latent_playground.curriculum import curriculum_stages, run_stream
from latent_playground.run_config import default_config, make_plan, method_spec, plan_agents, resolve_topology, validate_config
from latent_playground.tasks import batch_stream, make_task, split_of_content
from latent_playground.tokenizer import CharTokenizer, HfTokenizer

FIXTURE = ROOT / "tests" / "fixtures" / "streams.json"


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


def _tokenizer(fx: dict, name: str, tmp):
    t = fx["tokenizers"][name]
    if t["json"].get("type") == "char":
        return CharTokenizer(t["json"])
    p = tmp / f"{name}.json"
    p.write_text(json.dumps(t["json"]))
    return HfTokenizer(p, t["tokens"])


def test_curricula_match_the_engine(fx, tmp_path):
    run = fx["header"]["run"]
    assert len(fx["curriculum"]) >= 4
    rows = 0
    for c in fx["curriculum"]:
        where = f"{c['rendering']}/{c['tokenizer']} {c['task']} d{c['difficulty']} {c['method']} from d{c['curriculumFrom']}"
        tk = _tokenizer(fx, c["tokenizer"], tmp_path)
        task = make_task(c["task"], c["difficulty"])
        spec = method_spec(c["method"])
        plan = make_plan(resolve_topology("preset", task, run["latentSteps"]), spec)
        assert [{k: a[k] for k in ("id", "role", "latentSteps", "final", "predecessors")} for a in plan] == c["agents"], where
        pas = plan_agents(plan)
        T = run["textBudget"] if c["method"] == "text-trained" else None
        cfg = {"task": c["task"], "difficulty": c["difficulty"], "curriculumFrom": c["curriculumFrom"], "steps": c["steps"]}
        stream = run_stream(cfg, lambda t: batch_stream(t, tk, pas, spec["skyline"], run["seed"], run["batch"], c["maxAnswerTokens"], text_budget=T, rendering=c["rendering"]))
        stage_of = [d for d, n in curriculum_stages(cfg) for _ in range(n)]
        for want in c["batches"]:
            got = next(stream)
            assert got == want, f"{where}: batch {want['batch']}"
            d = stage_of[min(want["batch"], len(stage_of)) - 1]
            for row in got["rows"]:
                rows += 1
                # every stage draws train-partition content only, of its own difficulty
                assert split_of_content(c["task"], _content(c["task"], row)) == "train", f"{where}: {row['key']}"
                assert _fits(c["task"], row, d), f"{where}: batch {want['batch']} row {row['key']} is not of difficulty {d}"
    REPORT["curriculum streams as the engine draws them"] = f"{len(fx['curriculum'])} curricula, {rows} batch rows, identical"


def _content(task: str, row: dict) -> str:
    """The row's contentKey from its key (tasks.ts: lookup 'table?q', arith 'a+b')."""
    if task == "lookup":
        return row["key"].split("?")[0]
    if task == "arith":
        a, b = row["parts"][0][2:], row["parts"][1][2:]
        return f"{a},{b}"
    raise ValueError(task)


def _fits(task: str, row: dict, d: int) -> bool:
    """Whether a row can be of difficulty d: lookup's table size; arith's operands below 10^d (a stage's
    range includes the smaller ones, so only the bound tells the stages apart)."""
    if task == "lookup":
        return len(row["parts"][0]) - len("tbl:") == 2 * [2, 3, 4, 6, 8][d - 1]
    a, b = int(row["parts"][0][2:]), int(row["parts"][1][2:])
    return max(a, b) < 10 ** d


def test_stages_split_the_steps():
    assert curriculum_stages({"difficulty": 3, "curriculumFrom": 1, "steps": 1200}) == [(1, 400), (2, 400), (3, 400)]
    assert curriculum_stages({"difficulty": 3, "curriculumFrom": 1, "steps": 8}) == [(1, 3), (2, 3), (3, 2)]
    assert curriculum_stages({"difficulty": 3, "curriculumFrom": 2, "steps": 5}) == [(2, 3), (3, 2)]


def test_refusals_in_the_engines_words():
    def cfg(**over):
        return default_config(topology=resolve_topology("preset", make_task("lookup", 3)), task="lookup", difficulty=3, **over)
    validate_config(cfg(curriculumFrom=1))
    validate_config(cfg(curriculumFrom=2, method="text-trained"))
    for bad in (3, 0, 1.5, "1"):
        with pytest.raises(ValueError, match="curriculumFrom must be an integer difficulty from 1 to 2"):
            validate_config(cfg(curriculumFrom=bad))
    with pytest.raises(ValueError, match="no easier one"):
        validate_config({**cfg(curriculumFrom=1), "difficulty": 1, "topology": resolve_topology("preset", make_task("lookup", 1))})
    with pytest.raises(ValueError, match="method latentmas trains nothing"):
        validate_config(cfg(curriculumFrom=1, method="latentmas"))
    with pytest.raises(ValueError, match="3 stages and needs at least as many steps, got 2"):
        validate_config(cfg(curriculumFrom=1, steps=2))
