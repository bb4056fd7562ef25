"""Tags: everyday words the encoder's ImageNet head sees in a photo, with probabilities.

The encoder graph sums the 1,000 class probabilities per word of the bundle's `tags.json`
(training/tags.py made it), so a photo of a golden retriever gets "dog" with the mass of all
118 breeds. A tag is shown when its probability reaches `min_p`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MIN_P = 0.2  # the lowest threshold with >= 60% precision on Flickr8k dev (docs/results.md, "Tags")
MAX_TAGS = 5


@dataclass(frozen=True)
class Tag:
    word: str
    p: float

    def to_json(self) -> dict[str, object]:
        return {"tag": self.word, "p": round(self.p, 4)}


def top_tags(probs: np.ndarray, words: Sequence[str], min_p: float = MIN_P,
             limit: int = MAX_TAGS) -> list[Tag]:
    """The most probable tag words of one photo, best first."""
    order = np.argsort(-probs)[:limit]
    return [Tag(words[i], float(probs[i])) for i in order if probs[i] >= min_p]


# what people write for a tag word besides the word itself (both directions are not needed:
# keys are tag words of training/tags/imagenet_words.tsv)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "dog": ("puppy", "puppies"), "cat": ("kitten", "kitty"), "couch": ("sofa",),
    "airplane": ("plane", "jet", "airliner"), "television": ("tv",), "bicycle": ("bike",),
    "cellphone": ("phone",), "telephone": ("phone",), "refrigerator": ("fridge",),
    "laptop": ("computer",), "computer": ("laptop",), "monitor": ("computer", "screen"),
    "car": ("vehicle",), "truck": ("vehicle",), "boat": ("ship",), "ship": ("boat",),
    "motorcycle": ("motorbike", "bike"), "moped": ("scooter",), "burger": ("hamburger", "sandwich"),
    "dessert": ("cake",), "sunglasses": ("glasses",), "suit": ("tie",), "sailboat": ("boat",),
    "hotdog": ("hot",), "tram": ("trolley", "train"), "trolley": ("tram", "train"),
    "bear": ("bears",), "seal": ("sea",), "bench": ("benches",), "sofa": ("couch",),
}


def word_forms(word: str) -> tuple[str, ...]:
    """A tag word as captions write it: itself, its plurals and its common synonyms."""
    forms = [word, word + "s", word + "es"]
    for synonym in SYNONYMS.get(word, ()):
        forms += [synonym, synonym + "s"]
    return tuple(forms)


def mentioned(tag_word: str, caption_words: Iterable[str]) -> bool:
    forms = set(word_forms(tag_word))
    return any(w in forms for w in caption_words)
