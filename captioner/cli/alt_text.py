"""--write-metadata and --keywords-only: write each caption into its photo as alt text and its
tags as keywords; tell what was kept.

Alt text already in a photo comes from the file, so it is shown escaped (an EXIF description
holding `\\x1b[2J` and a newline must not clear the screen or fake an `error:` line).
Keywords are only ever added, so there is nothing "kept" to report for them: the summary says
how many were added to how many photos.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from captioner.cli.output import Tally, shown
from captioner.errors import CaptionerError, detail
from captioner.metadata import ExistingText, read_alt_text, write_metadata
from captioner.writers import Outcome


@dataclass
class MetadataReport:
    """What a run wrote into photos: alt text (unless --keywords-only) and the tags as keywords."""

    tally: Tally
    alt_text: bool = True  # False: --keywords-only
    written: int = 0
    kept: list[tuple[Path, ExistingText | None]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    keywords_added: int = 0
    photos_with_new_keywords: int = 0
    photos_with_tags: int = 0
    photos_without_tags: int = 0  # a model without tags gives none to any photo

    def write(self, path: Path, text: str, tags: Sequence[str], overwrite: bool) -> None:
        words = list(tags)
        self.photos_with_tags += bool(words)
        self.photos_without_tags += not words
        if not words and not self.alt_text:
            return  # nothing to write into this photo
        warnings: list[str] = []
        what = "alt text" if self.alt_text else "keywords"
        try:
            done = write_metadata(path, text if self.alt_text else None, words, overwrite, warnings)
        except CaptionerError as exc:
            self.tally.fail_with(exc, path)
            return
        except Exception as exc:  # the metadata library failing on one file must not end the batch
            self.tally.fail(path, f"{what} not written ({type(exc).__name__}: {detail(exc)})")
            return
        self.warnings += [(path, w) for w in warnings]
        if done.alt_text is Outcome.SKIPPED_EXISTS:
            self.kept.append((path, read_alt_text(path)))
        elif done.alt_text is Outcome.WRITTEN:
            self.written += 1
        self.keywords_added += len(done.keywords_added)
        self.photos_with_new_keywords += bool(done.keywords_added)

    def report(self) -> None:
        for path, warning in self.warnings:
            print(f"warning: {shown(path)}: {shown(warning)}", file=sys.stderr)
        for path, existing in self.kept:
            held = f'{existing.label}: "{shown(existing.text)}"' if existing else "existing alt text"
            print(f"kept existing alt text: {shown(path)}: {held} (use --overwrite to replace it)",
                  file=sys.stderr)
        if self.alt_text:
            print(f"alt text: {self.written} written, {len(self.kept)} kept", file=sys.stderr)
        if self.photos_with_tags or not self.alt_text:
            untagged = f", {self.photos_without_tags} photos without tags" if self.photos_without_tags else ""
            print(f"keywords: {self.keywords_added} added to {self.photos_with_new_keywords} photos"
                  f"{untagged}", file=sys.stderr)
