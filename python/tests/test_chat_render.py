"""Issue 23 item 3: the chat rendering (src/tasks/chat-render.ts, rendered with @huggingface/jinja) gives
the token ids transformers' apply_chat_template gives on the same messages, and the companion's port
(latent_playground/chat_render.py, rendering the template with jinja2 itself) the same text. Each case is a tiny model folder written here (a
byte-level BPE tokenizer.json trained with `tokenizers`, the chat specials as added tokens, and a
tokenizer_config.json with the template): SmolLM2-135M-Instruct's ChatML template (default system
turn), a Qwen2.5-style one (whitespace control, tools branch, default system turn) and a Llama-3-style
one (bos_token from the config, `| trim`). A node script bundled from the engine's sources renders the
task's prompts (final agent with a received message, a sender, the skyline) of four tasks; the ids
must be identical, not close. Opt-in: CHAT_RENDER_MODEL=DIR runs the same on a real ChatML model folder
(SmolLM2-135M-Instruct as the GGUF import makes it: 36 prompts, identical ids, 2026-12-07).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPORT, ROOT
from latent_playground.chat_render import ChatRendering, chat_extract, chat_template_of
from latent_playground.render import WORD
from latent_playground.tasks import BOS, make_task, sample_episodes

SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI "
    "assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
LLAMA3 = (
    "{{- bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + "
    "message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
TEMPLATES = {
    "smollm2": (SMOLLM2, CHATML_SPECIALS, {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"}, "<|im_end|>"),
    "qwen": (QWEN, CHATML_SPECIALS, {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, "<|im_end|>"),
    "llama3": (LLAMA3, LLAMA3_SPECIALS, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, "<|eot_id|>"),
}
TEXTS = [
    "Table: apple=3, key=7. Question: key? Answer: 7. Secret: q b x z. Relay: m p o a. Question: letter 3 of the secret?",
    "a = 37. b = 5. Question: a + b? Digits: 3 0 5 7. Question: digit 3? Message: hello world. You are a helpful assistant.",
    "system user assistant SmolLM Hugging Face Qwen Alibaba Cloud 0123456789 -12 42",
]
CASES = [("lookup", 1), ("relay", 1), ("arith", 2), ("index", 1)]
NODE_MAIN = """
import {{ readFileSync, writeFileSync }} from 'node:fs';
import {{ chatRendering }} from {chat};
import {{ HfTokenizer }} from {hf};
import {{ makeTask, sampleEpisodes }} from {tasks};
const [folder, out, cases] = process.argv.slice(2);
const read = (f) => JSON.parse(readFileSync(`${{folder}}/${{f}}`, 'utf8'));
const tk = new HfTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
const r = chatRendering(tk);
const rows = [];
for (const [name, d] of JSON.parse(cases)) {{
  const task = makeTask(name, d);
  for (const ep of sampleEpisodes(task, 'heldout', 3, 7)) {{
    const texts = {{
      final: r.prompt(ep, task.finalRole, {{ final: true, messages: ['3 x'] }}),
      sender: r.prompt(ep, 0, {{ send: true }}),
      skyline: r.skyline(ep),
    }};
    for (const [kind, text] of Object.entries(texts)) rows.push({{ task: name, d, key: ep.key, kind, text, ids: tk.encode(text) }});
  }}
}}
writeFileSync(out, JSON.stringify({{ endOfTurn: r.endOfTurn, head: r.head, rows }}));
"""


def write_model(folder: Path, template: str, specials: list[str], tokens: dict) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder.mkdir(parents=True)
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(TEXTS * 4, trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tk.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 2048, "chat_template": template, **tokens}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("chat-engine")
    q = lambda p: json.dumps(str(ROOT / p))  # noqa: E731
    (d / "main.ts").write_text(NODE_MAIN.format(chat=q("src/tasks/chat-render.ts"), hf=q("src/tokenizers/hf.ts"), tasks=q("src/tasks/tasks.ts")))
    subprocess.run(["node", "scripts/bundle.mjs", str(d / "main.ts"), str(d / "main.mjs")], cwd=ROOT, check=True)
    return d / "main.mjs"


def engine_rows(engine: Path, folder: Path, tmp_path: Path):
    out = tmp_path / "rows.json"
    p = subprocess.run(["node", str(engine), str(folder), str(out), json.dumps(CASES)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(out.read_text())


def transformers_ids(tok, content: str) -> list[int]:
    ids = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=True, add_generation_prompt=True)
    if not isinstance(ids, list):  # a BatchEncoding where return_dict defaults to True
        ids = ids["input_ids"]
    return list(ids)


def check_folder(engine: Path, folder: Path, tmp_path: Path, end_of_turn: str) -> int:
    """The engine's chat prompts of a model folder against the port's text and transformers' ids; the number of prompts."""
    from transformers import AutoTokenizer

    got = engine_rows(engine, folder, tmp_path)
    assert got["endOfTurn"] == end_of_turn
    port = ChatRendering(folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert port.end_of_turn == end_of_turn
    assert port.head == got["head"] and all(row["text"].startswith(got["head"]) for row in got["rows"])
    eps = {}
    for task_name, d in CASES:
        task = make_task(task_name, d)
        for ep in sample_episodes(task, "heldout", 3, 7):
            eps[(task_name, ep.key)] = (task, ep)
    assert len(got["rows"]) == 3 * 3 * len(CASES)
    for row in got["rows"]:
        task, ep = eps[(row["task"], row["key"])]
        ours = {"final": lambda: port.prompt(ep, task.final_role, final=True, messages=["3 x"]),
                "sender": lambda: port.prompt(ep, 0, send=True), "skyline": lambda: port.skyline(ep)}[row["kind"]]()
        assert ours == row["text"], (folder, row["kind"])
        # the user turn the template was given: the word rendering's text (what chat() wrapped)
        content = {"final": lambda: WORD.prompt(ep, task.final_role, final=True, messages=["3 x"]),
                   "sender": lambda: WORD.prompt(ep, 0, send=True), "skyline": lambda: WORD.skyline(ep)}[row["kind"]]()[len(BOS):]
        assert row["ids"] == transformers_ids(tok, content), (folder, row["kind"], row["text"])
        # the port renders with jinja2 itself: its text is transformers' too
        assert ours == tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
    return len(got["rows"])


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_chat_rendering_ids_equal_apply_chat_template(name, engine, tmp_path):
    template, specials, tokens, end_of_turn = TEMPLATES[name]
    folder = tmp_path / name
    write_model(folder, template, specials, tokens)
    check_folder(engine, folder, tmp_path, end_of_turn)


REAL = os.environ.get("CHAT_RENDER_MODEL")


@pytest.mark.skipif(not REAL, reason="opt-in: CHAT_RENDER_MODEL=DIR (a real model folder with a ChatML template, e.g. SmolLM2-135M-Instruct)")
def test_real_model_chat_ids_equal_apply_chat_template(engine, tmp_path):
    n = check_folder(engine, Path(REAL), tmp_path, "<|im_end|>")
    REPORT[f"chat rendering on {Path(REAL).name}: prompts with ids identical to apply_chat_template"] = str(n)


def test_a_model_without_a_chat_template_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "plain"
    write_model(folder, SMOLLM2, CHATML_SPECIALS, {"eos_token": "<|im_end|>"})
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    del cfg["chat_template"]
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert chat_template_of(cfg) is None
    with pytest.raises(ValueError, match=r"tokenizer_config\.json has no \"chat_template\""):
        ChatRendering(folder)


# tests/chat-render.test.ts EXTRACTION_CASES: (decoded, answer) with the stops <|im_end|> and END
EXTRACTION_CASES = [
    ("7", "7"), (" 7.", "7"), ("7<|im_end|>", "7"), ("-12<|im_end|>", "-12"), ("- 12", "12"), ("a - b = -12", "-12"), ("x", "x"), ("x.", "x"),
    ("The answer is 7.", "7"), ("The answer is: o.<|im_end|>", "o"), ("The 3rd letter is x", "x"), ('The answer is "egg."<|im_end|>', ""),
    ('The letter "v" is a special', "a"), ("<|im_end|>", ""), ("", ""), ("\n7", ""), ("4 2", "2"), ("a-3", "3"), ("key-7", "7"), ("42abc", "42"),
    ("7<eos>", "7"), ("<eos>7", ""), (" END 7", ""), ("\u00e97", "7"), ("  **9**", "9"), ("7\n8", "7"), ("I think 5", "5"),
]


def test_extraction_rule_as_the_engine():
    for decoded, want in EXTRACTION_CASES:
        assert chat_extract(decoded, ("<|im_end|>", "END")) == want, decoded


def test_render_rendering_by_name_makes_chat_from_the_base_folder(tmp_path):
    from latent_playground.render import rendering

    folder = tmp_path / "m"
    write_model(folder, SMOLLM2, CHATML_SPECIALS, TEMPLATES["smollm2"][2])
    r = rendering("chat", folder)
    assert isinstance(r, ChatRendering) and r.chat("hi").endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="no base folder was given"):
        rendering("chat")
    assert rendering("word") is WORD
