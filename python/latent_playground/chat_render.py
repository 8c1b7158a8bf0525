"""The chat rendering (src/tasks/chat-render.ts), ported: the word rendering's text put through the
model's chat template as one user turn with the generation prompt, rendered by transformers'
apply_chat_template (the engine renders the same template with @huggingface/jinja; their token ids are
held equal in python/tests/test_chat_render.py). A model whose tokenizer_config.json has no
chat_template refuses it.

Answer extraction, as chat-render.ts: the decoded text is cut at the first end of turn (the <eos>
marker, the template's end-of-turn token, the eos token's text), then at the first "<" or line end;
the candidates are the maximal runs of ASCII digits (with a "-" right before one that follows no
letter or digit) and the ASCII letters standing alone; the answer is the last candidate ("" when
none). The answer region holds CHAT_ANSWER_SLACK tokens more than the answer, for a lead-in.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .render import WORD
from .tasks import BOS, EOS, Episode

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
_CANDIDATE = re.compile(r"(?:(?<![A-Za-z0-9])-)?[0-9]+|(?<![A-Za-z])[A-Za-z](?![A-Za-z])")
CHAT_ANSWER_SLACK = 12
_MARK = "ZqxAnswerMarkZqx"
_CONTENT = "ZqxContentMarkZqx"


def _token_text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def chat_template_of(config: dict | None) -> str | None:
    """tokenizer_config.json's chat template: the string, or the "default" of a list of named ones."""
    t = (config or {}).get("chat_template")
    if isinstance(t, str) and t.strip():
        return t
    if isinstance(t, list):
        for x in t:
            if isinstance(x, dict) and x.get("name") == "default" and isinstance(x.get("template"), str):
                return x["template"]
    return None


def cut_at_end_of_turn(decoded: str, stops=()) -> str:
    end = len(decoded)
    for stop in (EOS, *stops, "<", "\n"):
        if stop:
            i = decoded.find(stop)
            if 0 <= i < end:
                end = i
    return decoded[:end]


def chat_extract(decoded: str, stops=()) -> str:
    found = _CANDIDATE.findall(cut_at_end_of_turn(decoded, stops))
    return found[-1] if found else ""


class ChatRendering:
    name = "chat"
    open = WORD.open

    def __init__(self, folder: Path):
        from transformers import AutoTokenizer

        folder = Path(folder)
        cfg_path = folder / TOKENIZER_CONFIG_FILE
        config = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        if chat_template_of(config) is None:
            raise ValueError(f"the chat rendering needs the model's chat template, and {cfg_path} has no \"chat_template\" "
                             "(use the word rendering, or a model with a template, e.g. an -Instruct one)")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.end_of_turn = self._end_of_turn()
        self.stops = tuple(s for s in (self.end_of_turn, _token_text(config.get("eos_token"))) if s)
        marked = self.chat(_CONTENT)
        if _CONTENT not in marked:
            raise ValueError(f"{cfg_path}: its chat_template does not write the user's message")
        # every prompt's text up to the user turn's content (a text receiver's messages follow it)
        self.head = marked[:marked.index(_CONTENT)]

    def chat(self, content: str) -> str:
        """The template over one user turn with the generation prompt (apply_chat_template, tokenize=False)."""
        return self.tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)

    def _end_of_turn(self):
        try:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": "Q"}, {"role": "assistant", "content": _MARK}], tokenize=False)
        except Exception:
            return None
        at = text.rfind(_MARK)
        m = re.match(r"\S+", text[at + len(_MARK):]) if at >= 0 else None
        return m.group(0) if m else None

    @staticmethod
    def _content(text: str) -> str:
        if not text.startswith(BOS):
            raise ValueError(f"chat rendering: the word text must start with {BOS}, got {text[:20]!r}")
        return text[len(BOS):]

    def part(self, ep: Episode, i: int) -> str:
        return WORD.part(ep, i)

    def prompt(self, ep: Episode, part, final: bool = False, send: bool = False, messages=()) -> str:
        return self.chat(self._content(WORD.prompt(ep, part, final=final, send=send, messages=messages)))

    def target(self, ep: Episode) -> str:
        return f"{ep.answer}{EOS}"

    def skyline(self, ep: Episode) -> str:
        return self.chat(self._content(WORD.skyline(ep)))

    def extract_answer(self, decoded: str) -> str:
        return chat_extract(decoded, self.stops)

    def is_correct(self, ep: Episode, decoded: str) -> bool:
        return self.extract_answer(decoded) == ep.answer

    def max_answer_chars(self, task) -> int:
        return task.max_answer_length + CHAT_ANSWER_SLACK
