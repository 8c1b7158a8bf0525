"""The evaluation controls of src/mas/controls.ts and src/mas/run.ts, with the same seeded streams:

  shuffle  every sender reads the episode of another row (a derangement of the evaluation set,
           Rng(deriveSeed(seed, 'shuffle-control', n)); the final agent keeps its own)
  zero     every received K/V prefix is 0
  noise    every received prefix is replaced by Gaussian draws with that prefix's mean and full
           covariance per receiver, layer and K or V (measured over the split's uncontrolled traces),
           one stream per evaluation (seed, 'noise-control', split)
  rotate   every received K/V is turned by a random rotation per receiver, layer and K/V head (seed,
           'rotate-control', receiver, layer, head), the same for K and V
Float64 on the host; K/V rows are [positions, Hkv * hd] as in the engine.
"""
from __future__ import annotations

import numpy as np

from .rng import Rng, derive_seed


def derangement(n: int, rng: Rng) -> list[int]:
    """data.ts derangement: a seeded shuffle of range(n), each fixed point swapped with its successor (n >= 2)."""
    if n < 2:
        raise ValueError("the shuffle control needs at least 2 episodes")
    p = rng.shuffled(range(n))
    for i in range(n):
        if p[i] == i:
            j = (i + 1) % n
            p[i], p[j] = p[j], p[i]
    return p


def shuffle_permutation(seed: int, n: int) -> list[int]:
    return derangement(n, Rng(derive_seed(seed, "shuffle-control", n)))


class Moments:
    """Mean and (biased, 1/n) covariance of rows of width W, accumulated in float64."""

    def __init__(self, W: int):
        self.W = W
        self.n = 0
        self.s = np.zeros(W)
        self.ss = np.zeros((W, W))
        self.shift = None

    def add(self, rows: np.ndarray):
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, self.W)
        if self.shift is None:
            self.shift = rows[0].copy()  # shifted sums: no cancellation when the mean is large
        x = rows - self.shift
        self.n += len(x)
        self.s += x.sum(0)
        self.ss += x.T @ x

    def mean(self) -> np.ndarray:
        return self.shift + self.s / self.n

    def covariance(self) -> np.ndarray:
        m = self.s / self.n
        return self.ss / self.n - np.outer(m, m)


def cholesky_psd(C: np.ndarray) -> np.ndarray:
    """controls.ts choleskyPsd: L with L L^T = C for a PSD C; a pivot at or below the tolerance gets a zero column."""
    n = C.shape[0]
    L = np.zeros_like(C)
    scale = max(float(np.abs(np.diag(C)).max()), 1e-300)
    tol = 1e-12 * scale * n
    for j in range(n):
        d = C[j, j] - np.dot(L[j, :j], L[j, :j])
        if d < -1e-6 * scale * n:
            raise ValueError(f"cholesky: the matrix is not positive semi-definite (pivot {j} is {d})")
        if d <= tol:
            continue
        ljj = np.sqrt(d)
        L[j, j] = ljj
        L[j + 1:, j] = (C[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / ljj
    return L


class GaussianRows:
    def __init__(self, m: Moments):
        self.W = m.W
        self.mean = m.mean()
        self.L = cholesky_psd(m.covariance())

    def draw(self, rows: int, rng: Rng) -> np.ndarray:
        """rows independent draws in the engine's order (row by row, W normals each)."""
        z = rng.normals(rows * self.W).reshape(rows, self.W)
        return self.mean + z @ self.L.T


def random_rotation(n: int, rng: Rng) -> np.ndarray:
    """controls.ts randomRotation: Haar on SO(n) by Gram-Schmidt (twice) of Gaussian columns, det +1."""
    cols: list[np.ndarray] = []
    for _ in range(n):
        v = np.array([rng.normal() for _ in range(n)])
        for _pass in range(2):
            for q in cols:
                v = v - np.dot(q, v) * q
        norm = np.sqrt(np.dot(v, v))
        if not norm > 1e-12:
            raise ValueError("randomRotation: a degenerate draw")
        cols.append(v / norm)
    Q = np.stack(cols, axis=1)
    if np.linalg.det(Q) < 0:
        Q[:, -1] = -Q[:, -1]
    return Q


def rotations(seed: int, agent: int, layer: int, heads: int, hd: int) -> list[np.ndarray]:
    return [random_rotation(hd, Rng(derive_seed(seed, "rotate-control", agent, layer, h))) for h in range(heads)]


def rotate_heads(rows: np.ndarray, hd: int, rots: list[np.ndarray]) -> np.ndarray:
    """Each head's block of each row [.., H * hd] becomes Q_h x."""
    shape = rows.shape
    x = rows.reshape(-1, len(rots), hd)
    out = np.einsum("hij,rhj->rhi", np.stack(rots), x)
    return out.reshape(shape)


# permute (controls.ts permuteBlocks): each sender's latent slots in a received prefix change places by
# a seeded derangement (seed, 'permute-control', receiver, sender), the same for every layer, K and V,
# and episode; each moved key is turned from its old slot's RoPE angles to its new slot's (a sender's
# latent steps sit at consecutive positions), values only move. Without the turn the receiver would
# compute the same thing: attention over a prefix is a sum over its positions, ordered only by the
# keys' rotations.

def latent_permutation(m: int, rng: Rng) -> list[int]:
    """controls.ts latentPermutation: slot j receives the row of slot perm[j]; no fixed point for m >= 2."""
    if m < 1:
        raise ValueError(f"latentPermutation: m must be a positive integer, got {m}")
    if m == 1:
        return [0]
    return derangement(m, rng)


def key_frequencies(theta: float, hd: int, scaling: dict | None = None) -> np.ndarray:
    """inv_freq theta^(-2i/hd), i < hd/2, in float64 as the engine's permute control uses them, with Llama
    3.x's frequency scaling when given (rope_type 'llama3': src/reference/rope.ts ropeInvFreq)."""
    out = []
    for i in range(hd // 2):
        f = theta ** (-2 * i / hd)
        if scaling:
            factor, lo, hi, old = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"], scaling["original_max_position_embeddings"]
            wavelen = 2 * np.pi / f
            if wavelen > old / lo:
                f /= factor
            elif wavelen >= old / hi:
                smooth = (old / wavelen - lo) / (hi - lo)
                f = (1 - smooth) * f / factor + smooth * f
        out.append(f)
    return np.array(out, dtype=np.float64)


def permute_blocks(rows: np.ndarray, hd: int, blocks: list[tuple[int, list[int]]], inv_freq: np.ndarray | None) -> np.ndarray:
    """rows [B, P, W]; blocks (offset, perm); keys (inv_freq given) turned by (j - perm[j]) * inv_freq per rotate-half pair."""
    out = rows.copy()
    B, P, W = rows.shape
    half = hd // 2
    for off, perm in blocks:
        for j, src in enumerate(perm):
            x = rows[:, off + src].reshape(B, W // hd, hd)
            delta = j - src
            if inv_freq is not None and delta != 0:
                a = delta * inv_freq
                c, s = np.cos(a), np.sin(a)
                x1, x2 = x[..., :half], x[..., half:]
                x = np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)
            out[:, off + j] = x.reshape(B, W)
    return out
