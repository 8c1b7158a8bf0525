"""Numbers printed as the engine prints them: JavaScript's Number.prototype.toFixed rounds the exact
binary value half away from zero (0.3125, 80/256, reads 0.313), where Python's format rounds half to
even (0.312). The tables of `eval` and `train` use to_fixed so both sides read the same."""
from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal


def to_fixed(x: float, digits: int) -> str:
    """(x).toFixed(digits) as JavaScript writes it, for |x| < 1e21 (NaN and infinities as JavaScript too)."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    q = Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    s = f"{q:f}"
    # JavaScript writes -0 as "0" (toFixed of -0.0001 to 3 digits is "-0.000", of -0 is "0")
    return s[1:] if x == 0 and s.startswith("-") else s
