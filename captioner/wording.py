"""Small fixes a reader notices at once: "a accordion" -> "an accordion".

A copied tag word lands after whatever article the decoder had already written, so the
article is fixed afterwards, word for word (the attention map keeps one entry per word).
"""

from __future__ import annotations

from collections.abc import Sequence

_VOWEL_LETTERS = tuple("aeiou")
_CONSONANT_SOUNDS = ("uni", "use", "usu", "one", "once", "euro", "ewe", "uk")  # "a unicycle"
_VOWEL_SOUNDS = ("hour", "honest", "heir", "honour", "honor")  # "an hour"


def needs_an(word: str) -> bool:
    if word.startswith(_VOWEL_SOUNDS):
        return True
    return word.startswith(_VOWEL_LETTERS) and not word.startswith(_CONSONANT_SOUNDS)


def fix_articles(words: Sequence[str]) -> list[str]:
    out = list(words)
    for i in range(len(out) - 1):
        if out[i] in ("a", "an"):
            out[i] = "an" if needs_an(out[i + 1]) else "a"
    return out
