"""torch's CPU threads by default: the cores this process may run on (os.sched_getaffinity, which a
container's or a scheduler's CPU set narrows) divided among the processes of this machine
(LOCAL_WORLD_SIZE, set by accelerate launch and torchrun), at least one. torch's own default is every
core of the machine for every process, which on a shared or busy machine oversubscribes the cores
(issue 24: eval 85 s instead of 14.8 s, train 13-19x slower per step on a busy 2-core machine).
OMP_NUM_THREADS, when set, is kept; --threads overrides both."""
from __future__ import annotations

import os


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def local_processes() -> int:
    for k in ("LOCAL_WORLD_SIZE", "ACCELERATE_NUM_PROCESSES"):
        v = os.environ.get(k)
        if v and v.isdigit() and int(v) > 0:
            return int(v)
    return 1


def default_threads() -> int:
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    return max(1, available_cores() // local_processes())


def set_threads(n: int | None) -> int:
    """Sets torch's intra-op threads to n, or to default_threads(); returns the number set."""
    import torch

    if n is not None and n < 1:
        raise ValueError(f"--threads must be at least 1, got {n}")
    k = n or default_threads()
    torch.set_num_threads(k)
    return k
