"""A curriculum (RunConfig.curriculumFrom; src/mas/curriculum.ts): the training batches come from
difficulty curriculumFrom first, then each next one up to the run's own, the steps split evenly over the
stages (the first (steps mod stages) take one more). Each stage draws its own difficulty's stream from its
start (tasks.py batch_stream at that difficulty), so the last stage is a plain run's stream; past the
planned steps the last stage goes on. Evaluation stays at the run's difficulty.
"""
from __future__ import annotations

import json

from .tasks import make_task


def curriculum_problem(c: dict, spec: dict) -> str | None:
    """curriculum.ts curriculumProblem: why a run cannot take its curriculum (None: it can, or it has none)."""
    f = c.get("curriculumFrom")
    if f is None:
        return None
    d = c["difficulty"]
    if d == 1:
        return "run config: curriculumFrom starts at an easier difficulty than the run's, but a run at difficulty 1 has no easier one: leave it out"
    if not (isinstance(f, int) and not isinstance(f, bool) and 1 <= f < d):
        return f"run config: curriculumFrom must be an integer difficulty from 1 to {d - 1} (below the run's difficulty {d}), got {json.dumps(f)}"
    if spec["train"] == "none":
        return f"run config: curriculumFrom orders the training batches, but method {spec['name']} trains nothing: leave it out"
    stages = d - f + 1
    if c["steps"] < stages:
        return f"run config: a curriculum from difficulty {f} to {d} has {stages} stages and needs at least as many steps, got {c['steps']}"
    return None


def curriculum_stages(c: dict) -> list[tuple[int, int]]:
    """curriculum.ts curriculumStages: (difficulty, steps) per stage."""
    d = c["difficulty"]
    f = c.get("curriculumFrom") or d
    n = d - f + 1
    base, extra = divmod(c["steps"], n)
    return [(f + i, base + (1 if i < extra else 0)) for i in range(n)]


def run_stream(c: dict, make):
    """The run's stream of training batches (bundle batch rows, numbered from 1): make(task) at the run's
    task without a curriculum, else the stages' streams in turn, renumbered."""
    if c.get("curriculumFrom") is None:
        yield from make(make_task(c["task"], c["difficulty"]))
        return
    stages = curriculum_stages(c)
    n = 0
    for i, (d, steps) in enumerate(stages):
        stream = make(make_task(c["task"], d))
        last = i == len(stages) - 1
        k = 0
        while last or k < steps:
            got = next(stream)
            k += 1
            n += 1
            yield {**got, "batch": n}
