"""The companion's quantisers (quantize.py) hold to the engine's schemes (src/mas/quantize.ts; the same
cases as tests/probe.test.ts): exact on representable values, within half a step otherwise, IEEE half
with ties to even, sign x mean |x| at one bit. Through whole evaluations they are held to the engine's
answers by test_crosscheck.py (heldout at every width, for every latent case)."""
import numpy as np

from latent_playground.quantize import quantize_rows, smallest_keeping_bits


def test_half_is_ieee_with_ties_to_even_and_overflow():
    q = quantize_rows(np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519.0, 65520.0, -1e6, 2.0 ** -26, 0.1, 0.2, 0.3, 0.4]), 2, 16)
    assert list(q[:6]) == [1.0, 1 + 2 ** -9, 65504.0, np.inf, -np.inf, 0.0]
    halves = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)  # every finite non-negative half
    assert np.array_equal(quantize_rows(np.concatenate([halves, -halves]), 2, 16), np.concatenate([halves, -halves]))


def test_uniform_widths_are_exact_on_their_grid_and_within_half_a_step():
    rng = np.random.default_rng(2)
    for k in (2, 3, 4, 8):
        top = 2 ** (k - 1) - 1
        v = np.concatenate([[top], rng.integers(-top, top + 1, 7)]) * 2.0 ** -3
        assert np.array_equal(quantize_rows(v, 8, k), v)
        x = rng.standard_normal((5, 32))
        y = quantize_rows(x, 32, k)
        step = np.abs(x).max(axis=1, keepdims=True) / top
        assert (np.abs(y - x) <= step / 2 * (1 + 1e-12)).all()
    assert np.array_equal(quantize_rows(np.zeros(4), 4, 4), np.zeros(4))
    # the engine's own example: each head its own absmax, 4 / (8/3) = 1.5 rounds away from zero
    rows = np.array([1, 0.5, -0.25, 0, 100, 50, -25, 10, 0.1, 0.2, 0.3, 0.4, 8, 4, 2, 1], dtype=np.float32).astype(np.float64)
    q = quantize_rows(rows, 4, 3)
    assert np.allclose(q[:8], [1, 2 / 3, -1 / 3, 0, 100, 200 / 3, -100 / 3, 0], rtol=1e-12)
    assert abs(q[13] - 16 / 3) < 1e-12 and q[15] == 0


def test_one_bit_and_the_smallest_width():
    assert list(quantize_rows(np.array([1.0, -3, 0, 2]), 4, 1)) == [1.5, -1.5, 1.5, 1.5]
    lv = lambda accs: dict(zip((16, 8, 4, 2, 1), accs))
    assert smallest_keeping_bits(0.9, lv([0.9, 0.895, 0.89, 0.5, 0.1])) == 4
    assert smallest_keeping_bits(0.9, lv([0.9, 0.85, 0.9, 0.9, 0.9])) == 16
    assert smallest_keeping_bits(0.9, lv([0.8] * 5)) is None
    assert smallest_keeping_bits(0.5, lv([0.5, 0.5, 0.5, 0.5, 0.49])) == 1


def test_eval_bits_prints_and_writes_the_sweep(engine_dir, capsys, tmp_path):
    import json

    from latent_playground.cli import main

    run = engine_dir / "lookup-latentmas" / "bundle"
    assert main(["eval", str(run), "--split", "heldout", "--no-controls", "--bits", "--json", str(tmp_path / "r.json")]) == 0
    assert "received K/V quantised" in capsys.readouterr().out
    bits = json.loads((tmp_path / "r.json").read_text())["bits"]
    assert sorted(int(k) for k in bits["levels"]) == [1, 2, 4, 8, 16]
    assert bits["levels"]["16"] == bits["unquantized"] or abs(bits["levels"]["16"] - bits["unquantized"]) <= 0.05
    assert bits["bitsPerPosition"] is None or bits["bitsPerPosition"] == bits["smallest"] * bits["floatsPerPosition"]
