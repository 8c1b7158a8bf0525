"""The permute control in the companion (controls.py) against the engine's (src/mas/controls.ts): the
same seeded derangements (pinned from the engine, tests/probe.test.ts pins the same), and each moved key
equal to RoPE applied afresh at its new slot, values moved exactly. The whole control through a run is
held to the engine's answers by test_crosscheck.py (every control of the latent channel)."""
import numpy as np

from latent_playground.controls import key_frequencies, latent_permutation, permute_blocks
from latent_playground.rng import Rng, derive_seed


def test_permutations_match_the_engine():
    pinned = {(3, 1, 0, 4): [1, 2, 3, 0], (1, 2, 1, 3): [2, 0, 1], (7, 1, 0, 6): [3, 0, 1, 5, 2, 4]}
    for (seed, agent, pred, m), want in pinned.items():
        assert latent_permutation(m, Rng(derive_seed(seed, "permute-control", agent, pred))) == want
    assert latent_permutation(1, Rng(1)) == [0]


def rope(x: np.ndarray, pos: int, inv: np.ndarray) -> np.ndarray:
    """HF rotate-half RoPE of head vectors x [..., hd] at one position."""
    half = x.shape[-1] // 2
    a = pos * inv
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * np.cos(a) - x2 * np.sin(a), x2 * np.cos(a) + x1 * np.sin(a)], axis=-1)


def test_keys_turn_to_their_new_slot_and_values_only_move():
    B, P, H, hd = 2, 6, 2, 8
    inv = key_frequencies(10000.0, hd)
    raw = np.random.default_rng(0).standard_normal((B, P, H, hd))
    keys = np.stack([rope(raw[:, s], 30 + s, inv) for s in range(P)], axis=1).reshape(B, P, H * hd)
    vals = raw.reshape(B, P, H * hd)
    blocks = [(1, [2, 0, 1]), (4, [1, 0])]
    source = [0, 3, 1, 2, 5, 4]
    k = permute_blocks(keys, hd, blocks, inv)
    v = permute_blocks(vals, hd, blocks, None)
    for s in range(P):
        assert np.array_equal(v[:, s], vals[:, source[s]])
        want = rope(raw[:, source[s]], 30 + s, inv).reshape(B, H * hd)
        assert np.abs(k[:, s] - want).max() < 1e-12


def test_key_frequencies_follow_transformers_llama3_scaling():
    """With rope_type 'llama3' the turn uses the scaled frequencies transformers computes (float32 there)."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rp = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}
    cfg = LlamaConfig(hidden_size=256, num_attention_heads=4, rope_parameters=rp, max_position_embeddings=131072)
    want, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    got = key_frequencies(500000.0, 64, rp)
    assert (np.abs(want.double().numpy() - got) / got).max() < 1e-6
    assert np.array_equal(key_frequencies(10000.0, 8), 10000.0 ** (-np.arange(4) * 2 / 8))
