"""Issue 23 item 5's prerequisite: the companion makes, trains and evaluates chat-rendering runs (the word
text through the base's chat template, chat_render.py) as the engine does. On a small random Llama with
the streams fixture's ChatML tokenizer (tests/fixtures/streams.json 'bpechat'), for DiffMAS,
text-trained, skyline-trained and the untrained text channel: `new --rendering chat` writes the episodes (prompts from
the template; a text receiver's messages right after the template's head), `train` reproduces the
bundle's batch and draws the next ones from the port's chat stream, and the engine (engine-check eval)
evaluates the Python-trained bundle to the same answers (every one identical) and the same loss
(1e-4 relative, float32 sums in another order); `eval` runs the controls."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPORT, ROOT, run_engine
from latent_playground.cli import main

FIXTURE = ROOT / "tests" / "fixtures" / "streams.json"
COMMON = ["--task", "lookup", "--difficulty", "1", "--steps", "3", "--batch", "2", "--eval-size", "8", "--seed", "5", "--rank", "2",
          "--latent-steps", "1", "--rendering", "chat", "--batches", "1"]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A small random Llama with the fixture's byte-level BPE and its ChatML template (no <bos>)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    t = json.loads(FIXTURE.read_text())["tokenizers"]["bpechat"]
    out = tmp_path_factory.mktemp("chat-llama")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=t["tokens"]["vocabSize"], hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, bos_token_id=None, eos_token_id=t["tokens"]["eos"], pad_token_id=t["tokens"]["pad"],
                      tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(str(out), safe_serialization=True)
    (out / "tokenizer.json").write_text(json.dumps(t["json"]))
    (out / "tokenizer_config.json").write_text(json.dumps(t["config"]))
    return out


def _evaluator(bundle: Path):
    from latent_playground.agents import Team
    from latent_playground.bundle import read_bundle
    from latent_playground.evaluate import Evaluator
    from latent_playground.tokenizer import load_tokenizer

    b = read_bundle(bundle)
    return Evaluator(Team(b, {k: b.adapter_dir(k) for k in b.adapter_keys}), load_tokenizer(b.base_dir, b.json["tokens"]))


@pytest.mark.parametrize("method", ["diffmas", "text-trained", "skyline-trained", "text"])
def test_a_chat_run_made_trained_and_evaluated_in_python_is_the_engines(method, base, tmp_path):
    from latent_playground.chat_render import ChatRendering
    from latent_playground.tokenizer import load_tokenizer

    fresh = tmp_path / "new"
    extra = ["--text-budget", "2"] if method == "text-trained" else []
    assert main(["new", "--base", str(base), "--out", str(fresh), "--method", method, *COMMON, *extra]) == 0
    run = json.loads((fresh / "run.json").read_text())
    assert run["config"]["rendering"] == "chat"
    r = ChatRendering(base)
    tk = load_tokenizer(fresh / "base", run["tokens"])
    heldout = [json.loads(x) for x in (fresh / "episodes" / "heldout.jsonl").read_text().splitlines()]
    for ep in heldout:
        for a in ep["agents"]:
            assert a["prompt"].startswith(r.head) and a["prompt"].endswith("<|im_start|>assistant\n"), a["prompt"]
            if "messagesAt" in a:  # after the head, as run-data.ts agentInputs
                assert a["messagesAt"] == len(tk.encode(r.head))
    # the answer region holds the chat rendering's slack (chat-render.ts maxAnswerChars)
    assert run["maxAnswerTokens"] == 1 + 12
    bundle = fresh
    if method != "text":
        bundle = tmp_path / "trained"
        # 3 steps from a bundle holding 1 batch: the port reproduces batch 1 in chat and draws 2 and 3
        assert main(["train", str(fresh), "--from", "initial", "--steps", "3", "--out", str(bundle), "--threads", "1", "--no-eval"]) == 0
        assert len(json.loads((bundle / "run.json").read_text())["training"]["losses"]) == 3
    run_engine(["eval", str(bundle), str(tmp_path / "eval.json"), "--splits", "heldout"], timeout=900)
    eng = json.loads((tmp_path / "eval.json").read_text())["evaluation"]["heldout"]
    py = _evaluator(bundle).evaluate("heldout")
    same = sum(x == y for x, y in zip(py["predictions"], eng["predictions"]))
    assert len(py["predictions"]) == len(eng["predictions"]) == 8 and same == 8, (py["predictions"], eng["predictions"])
    assert abs(py["loss"] - eng["loss"]) <= 1e-4 * abs(eng["loss"]), (py["loss"], eng["loss"])
    # the companion's eval with its controls takes the chat run
    assert main(["eval", str(bundle), "--split", "heldout", "--threads", "1", "--json", str(tmp_path / "py.json")]) == 0
    got = json.loads((tmp_path / "py.json").read_text())
    assert "controls" in got and got["rows"], got.keys()
    REPORT[f"chat run ({method}, tiny Llama, ChatML): Python-{'trained' if method != 'text' else 'made'}, engine-evaluated"] = (
        f"{same}/8 answers identical ({sum(bool(p) for p in py['predictions'])} not empty), loss {py['loss']:.6f} vs {eng['loss']:.6f}")
