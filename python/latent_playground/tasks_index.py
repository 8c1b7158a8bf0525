"""The index task (src/tasks/index-task.ts), ported: the sender sees a dense array of n digits in fixed
order, the receiver holds a 1-based position i and answers digit i. Draws, enumeration order and content
keys are the engine's, so the companion draws the same episodes from the same seeds."""
from __future__ import annotations

from .rng import Rng

DIGITS = list("0123456789")
INDEX_SIZES = [2, 3, 4, 6, 8]
INDEX_OOD_EXTRA = 2


def index_size(d: int, ood: bool) -> int:
    return INDEX_SIZES[d - 1] + (INDEX_OOD_EXTRA if ood else 0)


def _draw(array: str, i: int):
    return f"{array}@{i}", array, [array, str(i)], [array, ""], array[i - 1]


class IndexSpec:
    name, flow = "index", "star"
    cues = ["arr:", "idx:"]
    role_names = ["array", "asker"]

    def chance(self, d, split):
        return 1 / 10

    def answer_set(self, d, split):
        return list(DIGITS)

    def max_answer(self, d, split):
        return 1

    def draw(self, rng: Rng, d: int, ood: bool):
        n = index_size(d, ood)
        array = "".join(DIGITS[rng.int(0, 10)] for _ in range(n))
        return _draw(array, rng.int(1, n + 1))

    def universe(self, d: int, ood: bool) -> int:
        n = index_size(d, ood)
        return 10**n * n

    def enumerate(self, d: int, ood: bool, keep, rng: Rng):
        """Arrays counting up (first digit most significant), then positions."""
        n = index_size(d, ood)
        out = []
        for v in range(10**n):
            array = str(v).zfill(n)
            if keep(array):
                out += [_draw(array, i) for i in range(1, n + 1)]
        return out
