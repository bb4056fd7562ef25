"""`captioner caption` options for tags and confidence: --tags, --min-confidence, --keywords-only.

Kept apart from caption.py so the caption command only wires them in. A caption below
--min-confidence is held back from every output (stdout, sidecar, photo, JSON, CSV) and left
for a person: it is reported, not failed. A photo without a confidence (a bundle without
calibration) is never held back, since no number says it is doubtful.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from captioner.captioner import CaptionResult
from captioner.cli.options import number
from captioner.cli.output import message, shown


class KeywordsOnly(argparse.Action):
    """--keywords-only: write into the photos (as --write-metadata), but only keywords."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        namespace.keywords_only = True
        namespace.write_metadata = True


def add_tag_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tags", action="store_true",
                   help="print the tags as a third column: path<TAB>caption<TAB>tag, tag")
    p.add_argument("--min-confidence", type=number(0, 1), default=None, metavar="X",
                   help="do not write captions whose confidence is below X (0-1): they are "
                        "reported as low confidence, not as failures; photos without a confidence "
                        "(a model without calibration) are never held back")
    p.add_argument("--keywords-only", action=KeywordsOnly,
                   help="write the tags into each photo as keywords (XMP dc:subject, IPTC "
                        "Keywords) and leave its alt text alone")


def tag_fields(args: argparse.Namespace, result: CaptionResult) -> tuple[str, ...]:
    """The extra stdout column --tags asks for (none without it)."""
    return (", ".join(t.word for t in result.tags),) if args.tags else ()


def tag_words(result: CaptionResult) -> list[str]:
    return [t.word for t in result.tags]


@dataclass
class LowConfidence:
    """--min-confidence: which captions are held back, one stderr line each, and a count."""

    threshold: float | None
    held: int = 0
    without: int = 0  # photos the model gave no confidence: never held back

    def holds_back(self, path: Path, result: CaptionResult) -> bool:
        if self.threshold is None:
            return False
        if result.confidence is None:
            self.without += 1
            return False
        if result.confidence >= self.threshold:
            return False
        self.held += 1
        message(f"low confidence: {shown(path)}: {result.confidence:.2f} < {self.threshold:g}, "
                f'not written: "{shown(result.text)}"')
        return True

    def summary(self) -> str:
        """What goes after `N captioned` in the closing line."""
        if self.threshold is None:
            return ""
        without = f", {self.without} without a confidence (written)" if self.without else ""
        return f", {self.held} low confidence{without}"
