"""TensorBoard scalars of a `train` run in the layout the engine's writer shares (one run folder per
method and seed, <logdir>/<method>/seed<seed>/, one events file written by torch.utils.tensorboard):
  train/loss, train/lr, train/grad_norm        every step (step = the 1-based step count after the update)
  perf/seconds_per_step, perf/tokens_per_second  every step
  eval/<split>/accuracy, eval/<split>/loss     at each evaluation (split: train, heldout, ood)
  control/<control>/<split>/accuracy           at the final step
  config (text, step 0)                         the RunConfig as JSON in a markdown code block
"""
from __future__ import annotations

import json
from pathlib import Path


def run_dir(logdir: Path, config: dict) -> Path:
    return Path(logdir) / str(config["method"]) / f"seed{config['seed']}"


class Board:
    def __init__(self, logdir: Path | None, config: dict, write_config: bool = True):
        self.w = None
        if logdir is None:
            return
        from torch.utils.tensorboard import SummaryWriter

        d = run_dir(logdir, config)
        d.mkdir(parents=True, exist_ok=True)
        self.w = SummaryWriter(log_dir=str(d))
        if write_config:
            self.w.add_text("config", "```json\n" + json.dumps(config, indent=2) + "\n```", global_step=0)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.w is not None:
            self.w.add_scalar(tag, float(value), global_step=step)

    def step(self, step: int, loss: float, lr: float, grad_norm: float, seconds: float, tokens: int) -> None:
        self.scalar("train/loss", loss, step)
        self.scalar("train/lr", lr, step)
        self.scalar("train/grad_norm", grad_norm, step)
        self.scalar("perf/seconds_per_step", seconds, step)
        self.scalar("perf/tokens_per_second", tokens / seconds if seconds > 0 else 0.0, step)

    def evaluation(self, step: int, rows: list[dict], controls: list[dict] = ()) -> None:
        for r in rows:
            self.scalar(f"eval/{r['split']}/accuracy", r["accuracy"], step)
            self.scalar(f"eval/{r['split']}/loss", r["loss"], step)
        for c in controls:
            self.scalar(f"control/{c['control']}/{c['split']}/accuracy", c["accuracy"], step)

    def flush(self) -> None:
        if self.w is not None:
            self.w.flush()

    def close(self) -> None:
        if self.w is not None:
            self.w.close()
            self.w = None
