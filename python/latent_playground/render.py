"""How an episode becomes text (src/tasks/render.ts), ported: the char rendering of the shipped toys
(tasks.py's formats) and the word rendering of real models with a BPE vocabulary, plus the final agent's
answer ids as the engine makes them (data.ts answerIds: a BPE tokenizes the answer as it continues the
final prompt). The engine has no other rendering today; render.ts's RENDERINGS lists them.
"""
from __future__ import annotations

from .tasks import BOS, EOS, PART_END, Episode, format_prompt, format_skyline, format_target

RENDERINGS = ("char", "word", "chat")

# render.ts KEY_WORDS: one word per key letter of lookup
KEY_WORDS = {
    "a": "apple", "b": "bird", "c": "cat", "d": "dog", "e": "egg", "f": "fish", "g": "gold", "h": "hat", "i": "ice", "j": "jar",
    "k": "key", "l": "lamp", "m": "moon", "n": "nose", "o": "oil", "p": "pen", "q": "queen", "r": "rain", "s": "sun", "t": "tree",
    "u": "unit", "v": "van", "w": "wind", "x": "box", "y": "yard", "z": "zoo",
}
ANSWER_CUE = "Answer:"


class CharRendering:
    name = "char"
    open = "msg:"

    def part(self, ep: Episode, i: int) -> str:
        return ep.parts[i]

    def prompt(self, ep: Episode, part, final: bool = False, send: bool = False, messages=()) -> str:
        if final and send:
            raise ValueError("prompt: an agent is either final or a sender")
        return format_prompt(ep, part, final=final, send=send, messages=messages)

    def target(self, ep: Episode) -> str:
        return format_target(ep)

    def skyline(self, ep: Episode) -> str:
        return format_skyline(ep)

    def max_answer_chars(self, task) -> int:
        return task.max_answer_length


def _word_part(ep: Episode, i: int) -> str:
    c = ep.contents
    if ep.task == "lookup":
        if i == 0:
            return "Table: " + ", ".join(f"{KEY_WORDS[c[0][j]]}={c[0][j + 1]}" for j in range(0, len(c[0]), 2)) + "."
        return f"Question: {KEY_WORDS[c[1]]}?"
    if ep.task == "relay":
        if i == 0:
            return f"Secret: {' '.join(c[0])}."
        if i == 1:
            return f"Relay: {' '.join(c[1])}."
        return f"Question: letter {c[2]} of the secret?"
    if ep.task == "arith":
        if i == 0:
            return f"a = {c[0]}."
        if i == 1:
            return f"b = {c[1]}."
        return f"Question: a {c[2]} b?"
    if ep.task == "index":
        return f"Digits: {' '.join(c[0])}." if i == 0 else f"Question: digit {c[1]}?"
    raise ValueError(f"the word rendering has no text for task {ep.task!r}")


class WordRendering:
    name = "word"
    open = "Message:"

    def part(self, ep: Episode, i: int) -> str:
        if not (isinstance(i, int) and 0 <= i < len(ep.parts)):
            raise ValueError(f"part {i} is out of range for task {ep.task} (0..{len(ep.parts) - 1})")
        return _word_part(ep, i)

    def prompt(self, ep: Episode, part, final: bool = False, send: bool = False, messages=()) -> str:
        if final and send:
            raise ValueError("prompt: an agent is either final or a sender")
        s = BOS
        for m in messages:
            if "\n" in m:
                raise ValueError(f"text message {m!r} contains a newline")
            s += f"{self.open}{m}\n"
        if part != "none":
            s += self.part(ep, part) + PART_END
        if final:
            s += ANSWER_CUE
        if send:
            s += self.open
        return s

    def target(self, ep: Episode) -> str:
        return f" {ep.answer}{EOS}"

    def skyline(self, ep: Episode) -> str:
        return BOS + "".join(self.part(ep, i) + PART_END for i in range(len(ep.parts))) + ANSWER_CUE

    def max_answer_chars(self, task) -> int:
        return task.max_answer_length + 1


CHAR, WORD = CharRendering(), WordRendering()


def rendering(name: str, folder=None):
    """render.ts rendering(): the rendering by name; chat is made from the base folder's chat template
    (chat_render.py)."""
    if name == "chat":
        if folder is None:
            raise ValueError("the chat rendering is made from the model's tokenizer_config.json (its chat template); no base folder was given")
        from .chat_render import ChatRendering

        return ChatRendering(folder)
    if name == "char":
        return CHAR
    if name == "word":
        return WORD
    raise ValueError(f"unknown rendering {name!r} (known: {', '.join(RENDERINGS)})")


def default_rendering(tokenizer_kind: str) -> str:
    """char for the character tokenizer of the toys, word for a real vocabulary (render.ts defaultRendering)."""
    return "char" if tokenizer_kind == "char" else "word"


def encode_continuation(tk, context: str, continuation: str) -> list[int]:
    """hf.ts encodeContinuation: the whole text's ids minus the context's when those are a prefix of
    them, else the continuation alone (the char tokenizer: the continuation alone)."""
    if getattr(tk, "kind", "") == "char":
        return tk.encode(continuation)
    ctx = tk.encode(context)
    whole = tk.encode(context + continuation)
    if whole[:len(ctx)] == ctx:
        return whole[len(ctx):]
    return tk.encode(continuation)


def answer_ids(tk, r, task, ep: Episode) -> list[int]:
    """data.ts answerIds: the target's ids as they continue the final prompt."""
    return encode_continuation(tk, r.prompt(ep, task.final_role, final=True), r.target(ep))



def rendering_of_bundle(bundle):
    """A run bundle's rendering (train, evaluate, the text channel): by config.rendering's name, chat made
    from the bundle's base folder (its tokenizer_config.json), as the engine's runRendering."""
    return rendering(bundle.rendering, bundle.base_dir)
