"""Evaluation inside `train`: the held-out split every --eval-every steps, and at the end every split the
bundle has with the controls of the run's channel on heldout (the table `eval` prints). Data parallel
like `eval` (Evaluator's shard): each process runs its share of the batches, every process gets the
whole result. The adapters are the ones being trained, as they stand (no copy)."""
from __future__ import annotations

import torch

from .evaluate import Evaluator, controls_for, format_table
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
