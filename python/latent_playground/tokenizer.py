"""The base model's tokenizer.json: the toys' character tokenizer (src/tokenizers/char.ts) or a Hugging
Face tokenizer.json (through the `tokenizers` library). Text may hold the markers <bos>, <eos>, <pad>,
which become the model's special ids (a model without a <bos> token drops it), as in the engine.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

MARKERS = ("<pad>", "<bos>", "<eos>")
_MARKER_RE = re.compile(r"<bos>|<eos>|<pad>")


class CharTokenizer:
    kind = "char"

    def __init__(self, obj: dict):
        if obj.get("type") != "char" or obj.get("version") != 1:
            raise ValueError("tokenizer.json: not a char tokenizer of version 1")
        self.vocab: list[str] = list(obj["vocab"])
        sp = obj["specials"]
        self.pad_id, self.bos_id, self.eos_id = sp["pad"], sp["bos"], sp["eos"]
        self.special = {t: i for i, t in enumerate(self.vocab) if re.fullmatch(r"<[a-z0-9_]+>", t)}
        self.chars = {t: i for i, t in enumerate(self.vocab) if t not in self.special}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        out, i = [], 0
        while i < len(text):
            if text[i] == "<":
                close = text.find(">", i + 1)
                if close > i and text[i:close + 1] in self.special:
                    out.append(self.special[text[i:close + 1]])
                    i = close + 1
                    continue
            ch = text[i]
            if ch not in self.chars:
                raise ValueError(f"character {ch!r} at position {i} of {text!r} is not in the vocabulary")
            out.append(self.chars[ch])
            i += 1
        return out

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def is_special(self, i: int) -> bool:
        return self.vocab[i] in self.special

    def stops(self, i: int) -> bool:
        """Decoding stops here: a special token, or one whose text holds a line end (tokenizers/index.ts stopsText)."""
        return self.is_special(i) or "\n" in self.vocab[i]


class HfTokenizer:
    """A Hugging Face tokenizer.json; markers map to the ids run.json's `tokens` gives."""
    kind = "hf"

    def __init__(self, path: Path, tokens: dict):
        from tokenizers import Tokenizer

        self.tk = Tokenizer.from_file(str(path))
        self.pad_id, self.bos_id, self.eos_id = tokens.get("pad"), tokens.get("bos"), tokens["eos"]
        self.vocab_size = tokens.get("vocabSize") or self.tk.get_vocab_size()
        data = json.loads(Path(path).read_text())
        self.specials = {t["id"] for t in data.get("added_tokens", []) if t.get("special")}
        self.specials |= {i for i in (self.pad_id, self.bos_id, self.eos_id) if i is not None}

    def encode(self, text: str) -> list[int]:
        out, pos = [], 0
        for m in _MARKER_RE.finditer(text):
            if m.start() > pos:
                out += self.tk.encode(text[pos:m.start()], add_special_tokens=False).ids
            marker = {"<bos>": self.bos_id, "<eos>": self.eos_id, "<pad>": self.pad_id}[m.group()]
            if marker is not None:
                out.append(marker)
            pos = m.end()
        if pos < len(text):
            out += self.tk.encode(text[pos:], add_special_tokens=False).ids
        return out

    def decode(self, ids) -> str:
        return self.tk.decode([int(i) for i in ids], skip_special_tokens=False)

    def is_special(self, i: int) -> bool:
        return i in self.specials

    def stops(self, i: int) -> bool:
        return self.is_special(i) or "\n" in self.tk.decode([int(i)], skip_special_tokens=False)


def load_tokenizer(folder: Path, tokens: dict):
    path = Path(folder) / "tokenizer.json"
    obj = json.loads(path.read_text())
    if obj.get("type") == "char":
        return CharTokenizer(obj)
    return HfTokenizer(path, tokens)
