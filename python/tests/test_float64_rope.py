"""Issue 24 item 4: float64 mode is float64 through RoPE too. transformers 5.23 computes the inverse
frequencies in float32 and the angle tables under .float() whatever the weights' dtype; Team's float64
mode computes them in float64 (the 'default' and Llama 3.x 'llama3' types)."""
from __future__ import annotations

import math

import pytest
import torch

from latent_playground.agents import _exact_rope

LLAMA3 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 32}


def _reference(theta: float, hd: int, positions: torch.Tensor, rp: dict | None):
    """cos, sin in float64 from the definitions (Llama 3.x's scaling written out again here)."""
    inv = []
    for i in range(hd // 2):
        f = theta ** (-2 * i / hd)
        if rp:
            wavelen = 2 * math.pi / f
            old, lo, hi, factor = rp["original_max_position_embeddings"], rp["low_freq_factor"], rp["high_freq_factor"], rp["factor"]
            if wavelen > old / lo:
                f /= factor
            elif wavelen >= old / hi:
                smooth = (old / wavelen - lo) / (hi - lo)
                f = (1 - smooth) * f / factor + smooth * f
        inv.append(f)
    a = positions[..., None].double() * torch.tensor(inv, dtype=torch.float64)
    a = torch.cat((a, a), dim=-1)
    return a.cos(), a.sin()


@pytest.mark.parametrize("rope", [{"rope_type": "default", "rope_theta": 1000000.0}, LLAMA3], ids=["qwen3 default 1e6", "llama3"])
def test_rope_tables_are_float64_in_float64_mode(rope):
    from transformers import AutoModelForCausalLM, Qwen3Config

    cfg = Qwen3Config(vocab_size=32, hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=32, max_position_embeddings=40000, rope_parameters=dict(rope))
    model = AutoModelForCausalLM.from_config(cfg).to(torch.float64)
    rot = model.model.rotary_emb
    pos = torch.tensor([[0, 1, 7, 1000, 32767]])
    x = torch.zeros(1, dtype=torch.float64)
    c32, s32 = rot(x, pos)  # transformers' own: float64 tensors holding float32 values
    want_c, want_s = _reference(rope["rope_theta"], 32, pos, rope if rope["rope_type"] == "llama3" else None)
    assert _exact_rope(model) == []
    c64, s64 = rot(x, pos)
    assert c64.dtype == torch.float64
    err64 = max(float((c64 - want_c).abs().max()), float((s64 - want_s).abs().max()))
    err32 = max(float((c32 - want_c).abs().max()), float((s32 - want_s).abs().max()))
    # float64 angles up to ~3e4 rad: a few ulps of the angle (3e4 * 2.2e-16 ~ 7e-12); float32's are off by ~1e-3 there
    assert err64 <= 1e-11, err64
    print(f"float64 {err64:.1e}, transformers float32 {err32:.1e}")
    assert err32 >= 1e-6, err32
