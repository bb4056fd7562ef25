"""Captions cut by "Maximum words" end at a phrase boundary, not mid-phrase ("a girl in").

The search stops after N words wherever it is; a caption that then ends on an article,
preposition or conjunction reads as broken. Dropping those trailing function words gives
"a girl" instead: shorter than N, but a phrase a person would write.
"""

from __future__ import annotations

from dataclasses import replace

from captioner.captioner import CaptionResult
from captioner.search import FUNCTION_WORDS


def trim_words(words: list[str]) -> list[str]:
    """The words without a trailing run of function words (at least one word is kept)."""
    end = len(words)
    while end > 1 and words[end - 1].lower() in FUNCTION_WORDS:
        end -= 1
    return words[:end]


def trim_text(text: str) -> str:
    return " ".join(trim_words(text.split()))


def fit_to_phrase(result: CaptionResult) -> CaptionResult:
    """The result with its caption, words, attention and alternatives ending on a phrase."""
    words = trim_words(result.words)
    alternatives: list[tuple[str, float]] = []
    for text, score in result.alternatives:
        trimmed = trim_text(text)
        if trimmed not in (t for t, _ in alternatives):
            alternatives.append((trimmed, score))
    if len(words) == len(result.words) and alternatives == result.alternatives:
        return result
    return replace(result, text=" ".join(words), words=words, attention=result.attention[: len(words)],
                   alternatives=alternatives)
