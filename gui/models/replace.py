"""Find and replace across captions: the plan (which captions change, and to what) as plain
data, so the dialog can preview it and the undo history can apply it as one step."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gui.models.items import ImageItem


@dataclass(frozen=True)
class Change:
    item: ImageItem
    old: str
    new: str


def pattern(find: str, match_case: bool = False, whole_words: bool = True) -> re.Pattern[str] | None:
    """The search as a regex (the text is literal); None for an empty search."""
    if not find.strip():
        return None
    body = re.escape(find.strip())
    if whole_words:
        body = rf"(?<!\w){body}(?!\w)"
    return re.compile(body, 0 if match_case else re.IGNORECASE)


def plan_replace(items: Iterable[ImageItem], find: str, replacement: str, match_case: bool = False,
                 whole_words: bool = True) -> list[Change]:
    """The captions that change, with their new text (spaces tidied: replacing a word with
    nothing leaves no double space)."""
    regex = pattern(find, match_case, whole_words)
    if regex is None:
        return []
    changes: list[Change] = []
    for item in items:
        if not item.has_caption:
            continue
        new = " ".join(regex.sub(lambda _m: replacement, item.caption).split())
        if new != item.caption:
            changes.append(Change(item, item.caption, new))
    return changes
