"""A language prior from captions without photos, and tags simulated for them.

`text/` holds 169k Flickr30k and COCO captions whose photos are not here. Mixed into training
as caption-only batches (a blank image), they keep the words that Flickr8k's photos never show
("giraffe", "toilet", "laptop") alive in the decoder, and with tags simulated from their own
words (the caption's tag words at a random confidence, a distractor or two, sometimes none) they
teach the copy gate to write a tag word where the sentence needs an object.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from captioner.vocab import Vocabulary, tokenize


def read_captions(path: Path) -> list[str]:
    """Captions of a file in the Flickr8k token format (`name.jpg#i<TAB>caption`)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.partition("\t")[2].strip() for line in lines if "\t" in line]


def text_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.txt"))


def tag_index_of_tokens(vocab: Vocabulary, tag_words: tuple[str, ...]) -> dict[int, int]:
    """Vocabulary id -> tag index, for a tag word and its plural ("dog", "dogs" -> dog)."""
    out: dict[int, int] = {}
    for t, word in enumerate(tag_words):
        for form in (word, word + "s", word + "es"):
            if form in vocab.index:
                out.setdefault(vocab.index[form], t)
    return out


@dataclass
class SimulatedTags:
    """How tags are drawn for a caption-only row."""

    none_rate: float = 0.3  # rows given no tags at all (photos the classifier knows nothing of)
    distractors: int = 2  # up to this many wrong tag words per row


class LanguageBatches:
    """All text captions as padded ids; each draw is a batch sorted longest first, with tags."""

    def __init__(self, captions: list[str], vocab: Vocabulary, max_length: int,
                 tag_words: tuple[str, ...], sim: SimulatedTags | None = None) -> None:
        encoded = [vocab.encode(c, max_length) for c in captions]
        self.lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        self.tokens = np.zeros((len(encoded), max_length + 2), dtype=np.int64)
        for row, ids in enumerate(encoded):
            self.tokens[row, : len(ids)] = ids
        self.tag_of = tag_index_of_tokens(vocab, tag_words)
        self.n_tags = len(tag_words)
        self.sim = sim or SimulatedTags()

    def __len__(self) -> int:
        return len(self.lengths)

    def draw(self, batch: int, rng: np.random.Generator
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = rng.integers(len(self), size=batch)
        rows = rows[np.argsort(-self.lengths[rows], kind="stable")]
        lengths = self.lengths[rows]
        tokens = self.tokens[rows, : int(lengths.max())]
        return torch.from_numpy(tokens), torch.from_numpy(lengths), self.simulate(tokens, rng)

    def simulate(self, tokens: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Tag probabilities (B, T) shaped like the classifier's: mostly right, sometimes not."""
        tags = np.zeros((len(tokens), self.n_tags), dtype=np.float32)
        if not self.n_tags:  # a decoder without tags: nothing to simulate
            return torch.from_numpy(tags)
        for row, ids in enumerate(tokens):
            if rng.random() < self.sim.none_rate:
                continue
            true = {self.tag_of[i] for i in ids.tolist() if i in self.tag_of}
            for t in true:
                tags[row, t] = rng.uniform(0.15, 1.0)
            for t in rng.integers(self.n_tags, size=rng.integers(0, self.sim.distractors + 1)):
                if t not in true:
                    tags[row, t] = rng.uniform(0.0, 0.3)
            total = tags[row].sum()
            if total > 1.0:
                tags[row] /= total / rng.uniform(0.6, 1.0)
        return torch.from_numpy(tags)


def caption_vocabulary(train_captions: list[str], text_captions: list[str], min_count: int,
                       must_have: tuple[str, ...]) -> Vocabulary:
    """Words seen min_count times in the paired and text-only captions, plus every tag word."""
    vocab = Vocabulary.build([*train_captions, *text_captions], min_count)
    missing = [w for w in must_have if w not in vocab.index and tokenize(w) == [w]]
    return Vocabulary(vocab.words + sorted(missing)) if missing else vocab
