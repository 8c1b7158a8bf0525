"""How a run's batch is split over processes and micro-batches (train --per-device-batch, --grad-accum).

The run's batch of B rows (config.batch, the engine's) is B = per-device x processes x K: process r
takes the contiguous rows [r K P, (r + 1) K P), in K micro-batches of P rows, one forward and backward
each. Every micro-batch's loss is its sum over the whole batch's target count, the gradients are
accumulated, then summed across processes: the update is the one the engine makes with the whole batch.
Without either flag each process takes one contiguous share (r B / processes ...), uneven if need be."""
from __future__ import annotations


def micro_batches(B: int, world: int, rank: int, per_device: int | None = None, accum: int | None = None) -> list[list[int]]:
    """The row numbers of each of this process's micro-batches (empty: this process has no rows)."""
    if per_device is None and accum is None:
        share = [r for r in range(B) if r * world // B == rank]
        return [share] if share else []
    if accum is not None and accum < 1:
        raise ValueError(f"--grad-accum must be at least 1, got {accum}")
    if per_device is not None and per_device < 1:
        raise ValueError(f"--per-device-batch must be at least 1, got {per_device}")
    procs = f"{world} process{'es' if world > 1 else ''}"
    if per_device is None:
        if B % (world * accum):
            raise ValueError(f"--grad-accum {accum}: the run's batch of {B} rows does not divide into {procs} x {accum} micro-batches "
                             f"(per-device batch x processes x K must be {B})")
        per_device = B // (world * accum)
    elif accum is None:
        if B % (world * per_device):
            raise ValueError(f"--per-device-batch {per_device}: the run's batch of {B} rows does not divide into {procs} x micro-batches of {per_device} "
                             f"(per-device batch x processes x K must be {B})")
        accum = B // (world * per_device)
    elif per_device * world * accum != B:
        raise ValueError(f"--per-device-batch {per_device} x {procs} x --grad-accum {accum} = {per_device * world * accum} rows, "
                         f"but the run's batch is {B} rows")
    first = rank * accum * per_device
    return [list(range(first + j * per_device, first + (j + 1) * per_device)) for j in range(accum)]


def batch_tokens(batch: dict, n_agents: int, latent_steps: int) -> int:
    """The positions one training step runs through the model: every agent's prompt, the final agent's
    sequence and the senders' latent steps, over the batch's rows (tokens/s in the log)."""
    rows = batch["rows"]
    return sum(sum(len(p) for p in r["promptIds"][:n_agents - 1]) + len(r["finalIds"]) for r in rows) + latent_steps * len(rows)
