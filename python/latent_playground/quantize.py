"""The received K/V quantised to k bits per float (src/mas/quantize.ts), per vector of one position, layer,
K or V and KV head (hd floats), in float64 on the host:

  k = 16       IEEE half: each float rounded to the nearest float16 (ties to even; overflow to +-inf)
  2 <= k <= 8  symmetric uniform: s = absmax / (2^(k-1) - 1), x -> s * min(top, floor(|x| / s + 0.5)) * sign(x)
  k = 1        sign(x) * mean |x| (sign(0) = +1)

An all-zero vector stays zero.
"""
from __future__ import annotations

import numpy as np

BIT_WIDTHS = (16, 8, 4, 2, 1)
BITS_TOLERANCE = 0.01


def quantize_rows(rows: np.ndarray, hd: int, k: int) -> np.ndarray:
    """rows [..., W] (W = heads * hd) quantised to k bits per float, head vector by head vector."""
    shape = rows.shape
    if shape[-1] % hd:
        raise ValueError(f"quantize: width {shape[-1]} is not a whole number of {hd}-wide heads")
    x = np.asarray(rows, dtype=np.float64).reshape(-1, hd)
    if k == 16:
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float64).reshape(shape)
    if k == 1:
        m = np.abs(x).mean(axis=1, keepdims=True)
        return np.where(x < 0, -m, m).reshape(shape)
    if not (isinstance(k, int) and 2 <= k <= 8):
        raise ValueError(f"quantize: {k} bits per float is not a scheme here (have {', '.join(map(str, BIT_WIDTHS))}, or 2..8)")
    top = 2 ** (k - 1) - 1
    amax = np.abs(x).max(axis=1, keepdims=True)
    s = amax / top
    safe = np.where(s > 0, s, 1.0)
    q = np.minimum(top, np.floor(np.abs(x) / safe + 0.5))
    out = np.sign(x) * q * safe
    return np.where(amax > 0, out, x).reshape(shape)


def smallest_keeping_bits(unquantized: float, levels: dict[int, float], tolerance: float = BITS_TOLERANCE) -> int | None:
    """quantize.ts smallestKeepingBits: the smallest k such that k and every wider k are within tolerance."""
    best = None
    for k in sorted(levels, reverse=True):
        if levels[k] < unquantized - tolerance - 1e-12:
            break
        best = k
    return best
