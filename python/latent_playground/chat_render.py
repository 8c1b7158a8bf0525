"""The chat rendering (src/tasks/chat-render.ts), ported: the word rendering's text put through the
model's chat template as one user turn with the generation prompt. The template is rendered with jinja2
as the engine renders it with @huggingface/jinja, and both as transformers' apply_chat_template does:
a sandboxed environment with trim_blocks and lstrip_blocks (and loop controls), raise_exception,
strftime_now and a tojson that keeps non-ASCII text; the variables are the messages,
add_generation_prompt, and every `*_token` setting of tokenizer_config.json as its text (bos_token,
eos_token, ...: a string, or the "content" of an added-token object). The template, not the rendering,
decides whether a <bos> opens the text. Their texts are held equal, and the ids equal to
apply_chat_template's, in python/tests/test_chat_render.py. A model whose tokenizer_config.json has no
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
from datetime import datetime
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


def _compile(source: str):
    """The template in jinja2's sandbox, set up as transformers' and @huggingface/jinja's environments."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except jinja2.exceptions.TemplateError as e:
        raise ValueError(f"{TOKENIZER_CONFIG_FILE}: its chat_template cannot be parsed: {e}") from None


class ChatTemplate:
    """chat-render.ts ChatTemplate: a compiled template with the special tokens of the config."""

    def __init__(self, config: dict | None):
        source = chat_template_of(config)
        if source is None:
            raise ValueError(f"the chat rendering needs the model's chat template, and its {TOKENIZER_CONFIG_FILE} has no \"chat_template\" "
                             "(use the word rendering, or a model with a template, e.g. an -Instruct one)")
        self.template = _compile(source)
        self.specials = {k: t for k, v in (config or {}).items() if k.endswith("_token") and (t := _token_text(v)) is not None}

    def render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        """The template over these messages (apply_chat_template(..., tokenize=False))."""
        import jinja2

        try:
            return self.template.render(**self.specials, messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt)
        except jinja2.exceptions.TemplateError as e:
            raise ValueError(f"{TOKENIZER_CONFIG_FILE}: its chat_template failed to render: {e}") from None


class ChatRendering:
    name = "chat"
    open = WORD.open

    def __init__(self, folder: Path):
        folder = self.folder = Path(folder)
        cfg_path = folder / TOKENIZER_CONFIG_FILE
        config = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        if chat_template_of(config) is None:
            raise ValueError(f"the chat rendering needs the model's chat template, and {cfg_path} has no \"chat_template\" "
                             "(use the word rendering, or a model with a template, e.g. an -Instruct one)")
        self.template = ChatTemplate(config)
        self.end_of_turn = self._end_of_turn()
        self.stops = tuple(s for s in (self.end_of_turn, _token_text(config.get("eos_token"))) if s)
        marked = self.chat(_CONTENT)
        if _CONTENT not in marked:
            raise ValueError(f"{cfg_path}: its chat_template does not write the user's message")
        # every prompt's text up to the user turn's content (a text receiver's messages follow it)
        self.head = marked[:marked.index(_CONTENT)]

    @property
    def tokenizer(self):
        """transformers' tokenizer of the folder, loaded when asked (the rendering does not use it; the
        zero-shot harness recorded in bench/results/smollm2-zero-shot.json reads it)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.folder))

    def chat(self, content: str) -> str:
        """The template over one user turn with the generation prompt."""
        return self.template.render([{"role": "user", "content": content}], True)

    def _end_of_turn(self):
        try:
            text = self.template.render([{"role": "user", "content": "Q"}, {"role": "assistant", "content": _MARK}], False)
        except ValueError:
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
