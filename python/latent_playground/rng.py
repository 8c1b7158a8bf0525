"""The playground's seeded randomness (src/tasks/rng.ts), bit for bit: murmur3-style seed derivation
and the mulberry32 stream. The tasks' episodes, the training batches and the controls' draws are made
from these streams, so the Python side reproduces the tab's data and controls exactly.

JavaScript's 32-bit integer arithmetic (Math.imul, >>>, ^) is done here on unsigned ints masked to 32
bits, which gives the same bits. Gaussian draws use the same Box-Muller formula; libm's log and cos may
differ from V8's in the last bit, which no integer draw (shuffles, samples) depends on.
"""
from __future__ import annotations

import math

import numpy as np

M32 = 0xFFFFFFFF
_STEP = 0x6D2B79F5


def _imul(a: int, b: int) -> int:
    return (a * b) & M32


def fmix32(h: int) -> int:
    """murmur3's finaliser on a 32-bit value."""
    h &= M32
    h ^= h >> 16
    h = _imul(h, 0x85EBCA6B)
    h ^= h >> 13
    h = _imul(h, 0xC2B2AE35)
    h ^= h >> 16
    return h & M32


def hash_string(s: str, salt: int = 0) -> int:
    """hashString: 32-bit hash of a string's UTF-16 code units, salted."""
    units = s.encode("utf-16-le")
    codes = [units[i] | (units[i + 1] << 8) for i in range(0, len(units), 2)]
    h = (salt ^ 0x9E3779B9) & M32
    for c in codes:
        k = _imul(c, 0xCC9E2D51)
        k = ((k << 15) | (k >> 17)) & M32
        k = _imul(k, 0x1B873593)
        h ^= k
        h = ((h << 13) | (h >> 19)) & M32
        h = (_imul(h, 5) + 0xE6546B64) & M32
    return fmix32(h ^ len(codes))


def check_seed(seed: int) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or abs(seed) > 2**53 - 1:
        raise ValueError(f"seed must be a safe integer, got {seed!r}")
    lo = seed % 2**32
    hi = (seed // 2**32) % 2**32
    return lo if hi == 0 else fmix32(lo ^ fmix32(hi + 0x632BE5AB))


def derive_seed(seed: int, *labels: str | int) -> int:
    """deriveSeed: a 32-bit seed from a seed and a path of labels (numbers as '#n', strings as '$s')."""
    h = fmix32(check_seed(seed) ^ 0x243F6A88)
    for label in labels:
        part = f"#{label}" if isinstance(label, int) else f"${label}"
        h = fmix32(h ^ hash_string(part, h))
    return h


def _mulberry(states: np.ndarray) -> np.ndarray:
    """mulberry32's output for an array of states (uint64 holding uint32 values)."""
    t = states.copy()
    t = ((t ^ (t >> 15)) * (t | 1)) & M32
    t = (t ^ ((t + (((t ^ (t >> 7)) * (t | 61)) & M32)) & M32)) & M32
    return (t ^ (t >> 14)) & M32


class Rng:
    """The mulberry32 stream of rng.ts (Rng)."""

    def __init__(self, seed: int):
        self.s = check_seed(seed)

    def next_uint32(self) -> int:
        self.s = (self.s + _STEP) & M32
        t = self.s
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & M32
        return (t ^ (t >> 14)) & M32

    def next(self) -> float:
        return self.next_uint32() / 4294967296

    def int(self, lo: int, hi: int) -> int:
        if hi <= lo:
            raise ValueError(f"Rng.int: need integers lo < hi, got [{lo}, {hi})")
        span = hi - lo
        if span <= 4294967296:
            return lo + math.floor(self.next() * span)
        r = (self.next_uint32() * 2097152 + (self.next_uint32() >> 11)) / 9007199254740992
        return lo + math.floor(r * span)

    def choice(self, items):
        if not items:
            raise ValueError("Rng.choice: empty array")
        return items[self.int(0, len(items))]

    def shuffle(self, items: list) -> list:
        for i in range(len(items) - 1, 0, -1):
            j = self.int(0, i + 1)
            items[i], items[j] = items[j], items[i]
        return items

    def shuffled(self, items) -> list:
        return self.shuffle(list(items))

    def sample(self, items, k: int) -> list:
        a = list(items)
        if k < 0 or k > len(a):
            raise ValueError(f"Rng.sample: cannot draw {k} distinct items from {len(a)}")
        for i in range(k):
            j = self.int(i, len(a))
            a[i], a[j] = a[j], a[i]
        return a[:k]

    def normal(self, mean: float = 0.0, std: float = 1.0) -> float:
        u = 1 - self.next()
        v = self.next()
        return mean + std * math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * v)

    def uint32s(self, n: int) -> np.ndarray:
        """The next n draws of next_uint32 at once (the state advances by n)."""
        k = np.arange(1, n + 1, dtype=np.uint64)
        states = (np.uint64(self.s) + k * np.uint64(_STEP)) & np.uint64(M32)
        self.s = (self.s + n * _STEP) & M32
        return _mulberry(states)

    def normals(self, n: int) -> np.ndarray:
        """n Gaussian draws in stream order (as n calls of normal()), float64."""
        x = self.uint32s(2 * n).astype(np.float64) / 4294967296
        u = 1 - x[0::2]
        v = x[1::2]
        return np.sqrt(-2 * np.log(u)) * np.cos(2 * np.pi * v)
