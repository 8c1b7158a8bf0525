"""Issue 20 item 1: a config.json in transformers 5's layout (rope_parameters instead of a top-level
rope_theta; Llama 3.x's "llama3" scaling inside it) computes, in the engine, the model transformers
computes. transformers 5.x (the companion's pin) writes a tiny random Llama; the engine's CLI
(`generate --max-new-tokens 0 --logits`, the GPU model through the same reader the page uses) gives the
last position's logits; the companion loads the same folder as it loads a bundle's base
(AutoModelForCausalLM.from_pretrained) and its logits are the reference."""
from __future__ import annotations

import json
import subprocess

import pytest
import torch

from conftest import REPORT, ROOT, _vulkan_env

S = 96  # positions 0..95: far enough for theta 1e4 and 1e5 (and llama3's scaling) to turn the heads apart
LLAMA3 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 32}
CASES = {
    "theta 1e5": {"rope_type": "default", "rope_theta": 100000.0},
    # a short original context, so the scaled and smoothed pairs matter within 96 positions
    "llama3": LLAMA3,
}


def _save(tmp_path, rope: dict):
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, rope_parameters=dict(rope))
    torch.manual_seed(5)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # larger weights than the init's 0.02, so positions move the logits visibly
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    model.save_pretrained(tmp_path)
    return tmp_path


def _transformers_logits(folder, ids: list[int], rope_theta: float | None = None) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    kw = {}
    if rope_theta is not None:  # what the engine computed before: the same weights, RoPE with another theta
        cfg = json.loads((folder / "config.json").read_text())
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": rope_theta}
        assert cfg["rope_parameters"]
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float64, **kw).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1]


def _engine_logits(folder, ids: list[int], out) -> torch.Tensor:
    p = subprocess.run(["bash", "scripts/with-vulkan.sh", "node", "scripts/run-cli.mjs", "generate", "--model", str(folder),
                        "--ids", ",".join(map(str, ids)), "--max-new-tokens", "0", "--logits", str(out)],
                       cwd=ROOT, env=_vulkan_env(), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"generate failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    return torch.tensor(json.loads(out.read_text())["logits"], dtype=torch.float64)


@pytest.mark.parametrize("name", list(CASES))
def test_rope_parameters_give_transformers_logits(tmp_path, name):
    rope = CASES[name]
    folder = _save(tmp_path / "model", rope)
    written = json.loads((folder / "config.json").read_text())
    # transformers 5's layout: everything about RoPE inside rope_parameters, no top-level rope_theta
    assert "rope_theta" not in written and written["rope_parameters"]["rope_theta"] == rope["rope_theta"], written
    assert written["rope_parameters"]["rope_type"] == rope["rope_type"]

    from transformers import AutoConfig

    # the companion reads the same values (through transformers)
    read = AutoConfig.from_pretrained(str(folder)).rope_parameters
    for k, v in rope.items():
        assert read[k] == v, (k, read)

    ids = [(7 * i + 3) % 64 for i in range(S)]
    want = _transformers_logits(folder, ids)
    got = _engine_logits(folder, ids, tmp_path / "logits.json")
    diff = float((got - want).abs().max())
    # what a reader that ignored rope_parameters computed (theta 10000, no scaling): the test tells them apart
    plain = float((_transformers_logits(folder, ids, rope_theta=10000.0) - want).abs().max())
    REPORT[f"rope_parameters {name}: engine vs transformers, max |diff| of the last position's logits"] = (
        f"{diff:.2e} (max |logit| {float(want.abs().max()):.2f}; plain RoPE theta 1e4 would be {plain:.2f} away)")
    # 1e-4 for logits up to 10, as test_crosscheck.py's logits (two float32 implementations; the engine's
    # angles are float32 as transformers' are); the wrong RoPE is thousands of times further
    assert plain > 0.05, f"the case does not tell the RoPE settings apart ({plain})"
    assert diff <= 1e-4 * max(1.0, float(want.abs().max()) / 10), f"engine logits differ from transformers' by {diff}"
