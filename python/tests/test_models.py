"""Any model transformers loads: tiny random Qwen3 (q/k norms, head_dim apart from hidden/heads) and Llama
(grouped-query) bases put in place of a bundle's base, with random adapters. Evaluation and training
run, and the gradient of a sender's v_proj adapter, which reaches the loss only through the receiver's
cache, matches central finite differences in float64 (the gradient really crosses the K/V and the
latent steps)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from latent_playground.agents import Team, compute_latent_map, loss_sum
from latent_playground.bundle import read_bundle
from latent_playground.evaluate import Evaluator, controls_for
from latent_playground.tokenizer import load_tokenizer
from latent_playground.train import _inputs, train


def _random_bundle(src, dst, arch: str):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    shutil.copytree(src, dst)
    meta = json.loads((dst / "run.json").read_text())
    kw = dict(vocab_size=meta["tokens"]["vocabSize"], hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=arch == "llama", bos_token_id=1, eos_token_id=2, pad_token_id=0)
    cfg = Qwen3Config(head_dim=16, **kw) if arch == "qwen3" else LlamaConfig(**kw)
    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_config(cfg)
    tok = (dst / "base" / "tokenizer.json").read_bytes()
    shutil.rmtree(dst / "base")
    model.save_pretrained(dst / "base")
    (dst / "base" / "tokenizer.json").write_bytes(tok)
    m = compute_latent_map(model, "ridge")
    save_file({"W_a": m.Wa.contiguous(), "target_norm": torch.tensor([m.target_norm], dtype=torch.float32)}, str(dst / "latent_map.safetensors"),
              metadata={"kind": "ridge", "D": str(m.D), "target_norm": repr(m.target_norm), "lambda": repr(m.lam)})
    lora = meta["config"]["lora"]
    for i, key in enumerate(meta["files"]["adapters"]):
        torch.manual_seed(10 + i)
        base = AutoModelForCausalLM.from_config(cfg)
        p = get_peft_model(base, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], target_modules=lora["targets"], init_lora_weights=False))
        for d in ("adapters", "initial_adapters"):
            shutil.rmtree(dst / d / key)
            p.save_pretrained(str(dst / d / key))
    return read_bundle(dst)


@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_a_random_base_evaluates_trains_and_differentiates_through_the_cache(engine_dir, tmp_path, arch):
    b = _random_bundle(engine_dir / "lookup-diffmas" / "bundle", tmp_path / arch, arch)
    tk = load_tokenizer(b.base_dir, b.json["tokens"])
    team = Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys})
    ev = Evaluator(team, tk)
    for c in ["none", *controls_for("latent")]:
        r = ev.evaluate("heldout", c)
        assert r["episodes"] == len(b.episodes["heldout"]) and torch.isfinite(torch.tensor(r["loss"]))
    out = train(b, tk, 2, start="initial", cpu=True, out=tmp_path / f"{arch}-trained", log=lambda s: None)
    assert all(torch.isfinite(torch.tensor(out["losses"])))
    assert read_bundle(tmp_path / f"{arch}-trained").json["training"]["stepsDone"] == 2

    # d loss / d (sender a0's layer-0 v_proj lora_B), autograd against central differences, float64
    t64 = Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys}, dtype="float64", trainable=True)
    batch = b.batches[0]
    inputs, targets = _inputs(batch, [0, 1], len(t64.plan))
    count = int((targets >= 0).sum())
    name, p = next((n, q) for n, q in t64.peft.named_parameters() if ".layers.0.self_attn.v_proj.lora_B.a0." in n)

    def loss():
        logits, *_ = t64.forward(inputs, grad=True)
        return loss_sum(logits, targets) / count

    l = loss()
    l.backward()
    g = p.grad.clone()
    idx = [(0, 0), (3, 1), (7, 2)]
    h = 1e-6
    for i, j in idx:
        with torch.no_grad():
            p[i, j] += h
            up = float(loss())
            p[i, j] -= 2 * h
            down = float(loss())
            p[i, j] += h
        fd = (up - down) / (2 * h)
        assert abs(fd - float(g[i, j])) <= 1e-6 + 1e-5 * abs(fd), f"{name}[{i},{j}]: autograd {float(g[i, j])}, finite differences {fd}"
    assert float(g.abs().max()) > 1e-8, "no gradient reached the sender through the cache"
