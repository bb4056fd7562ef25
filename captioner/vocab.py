"""Words <-> token ids. Torch-free so that training, export and the app share one tokenizer."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(caption: str) -> list[str]:
    """Lower-case words; punctuation dropped ("A dog ." -> ["a", "dog"])."""
    return _WORD.findall(caption.lower())


@dataclass
class Vocabulary:
    words: list[str]

    def __post_init__(self) -> None:
        if tuple(self.words[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        self.index = {w: i for i, w in enumerate(self.words)}

    pad_id = 0
    start_id = 1
    end_id = 2
    unk_id = 3

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 5) -> Vocabulary:
        counts = Counter(w for c in captions for w in tokenize(c))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + kept)

    def encode(self, caption: str, max_length: int | None = None) -> list[int]:
        """<start> w1 .. wn <end>, unknown words as <unk>; truncated to max_length words."""
        ids = [self.index.get(w, self.unk_id) for w in tokenize(caption)]
        if max_length is not None:
            ids = ids[:max_length]
        return [self.start_id, *ids, self.end_id]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Token ids -> words, stopping at <end> and skipping <start>/<pad>."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i in (self.start_id, self.pad_id):
                continue
            out.append(self.words[i])
        return out

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.words, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))
