"""Evaluation inside `train`: the held-out split every --eval-every steps, and at the end every split the
bundle has with the controls of the run's channel on heldout (the table `eval` prints). Data parallel
like `eval` (Evaluator's shard): each process runs its share of the batches, every process gets the
whole result. The adapters are the ones being trained, as they stand (no copy)."""
from __future__ import annotations

import math

import torch

from .evaluate import Evaluator, controls_for, format_table, wilson95
from .tasks import make_task


class InTraining:
    def __init__(self, team, tokenizer, shard: tuple[int, int], autocast):
        self.team = team
        self.ev = Evaluator(team, tokenizer, shard=shard)
        self.autocast = autocast

    def splits(self, splits: list[str], control: str = "none") -> list[dict]:
        with torch.no_grad(), self.autocast():
            return [{k: v for k, v in self.ev.evaluate(s, control).items() if k not in ("predictions", "messages")} for s in splits]

    def final(self, board, step: int, log) -> dict:
        b = self.team.bundle
        splits = [s for s in ("train", "heldout", "ood") if s in b.episodes]
        rows = self.splits(splits)
        controls = []
        if "heldout" in b.episodes:
            controls = [{"control": c, **self.splits(["heldout"], c)[0]} for c in controls_for(b.method["channel"])]
        board.evaluation(step, rows, controls)
        if log is not None:
            task = make_task(b.config["task"], b.config["difficulty"])
            log(f"evaluation after step {step}:\n" + format_table(rows, controls, {s: task.chance_for(s) for s in ("heldout", "ood")}))
        return {"rows": rows, "controls": controls}


def _finite(x):
    return float(x) if x is not None and math.isfinite(x) else None


def heldout_point(step: int, row: dict) -> dict:
    return {"step": step, "loss": _finite(row["loss"]), "accuracy": _finite(row["accuracy"])}


def run_results(source: dict, start: str, heldout: list[dict], evaluation: dict | None = None) -> dict:
    """run.json's results as the page's import reads them (src/storage/run-bundle.ts RunBundleMeta.results):
    the evaluation at the end (EvalRow with its Wilson interval), heldout at each evaluation during
    training (a continued run keeps the source's, whose steps come first), the controls on heldout."""
    before = list(source.get("results", {}).get("heldout", [])) if start == "trained" else []
    out = {"evaluation": [], "heldout": before + heldout}
    if evaluation:
        keys = ("method", "split", "accuracy", "validity", "entropy", "episodes", "messageFloats", "messageTokens", "messagePositions", "loss")
        out["evaluation"] = [{**{k: (_finite(r[k]) if isinstance(r[k], float) else r[k]) for k in keys},
                              "ci95": wilson95(round(r["accuracy"] * r["episodes"]), r["episodes"])} for r in evaluation["rows"]]
        out["controls"] = [{"control": c["control"], "accuracy": c["accuracy"]} for c in evaluation["controls"]]
    return out
