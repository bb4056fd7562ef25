"""--write-metadata: write each caption into its photo as alt text; tell what was kept.

Alt text already in a photo comes from the file, so it is shown escaped (an EXIF description
holding `\\x1b[2J` and a newline must not clear the screen or fake an `error:` line).
"""

from __future__ import annotations

import sys
from pathlib import Path

from captioner.cli.output import Tally, shown
from captioner.errors import CaptionerError, detail
from captioner.metadata import ExistingText, read_alt_text, write_alt_text
from captioner.writers import Outcome


class AltTextReport:
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.written = 0
        self.kept: list[tuple[Path, ExistingText | None]] = []
        self.warnings: list[tuple[Path, str]] = []

    def write(self, path: Path, text: str, overwrite: bool) -> None:
        warnings: list[str] = []
        try:
            outcome = write_alt_text(path, text, overwrite, warnings)
        except CaptionerError as exc:
            self.tally.fail_with(exc, path)
            return
        except Exception as exc:  # the metadata library failing on one file must not end the batch
            self.tally.fail(path, f"alt text not written ({type(exc).__name__}: {detail(exc)})")
            return
        self.warnings += [(path, w) for w in warnings]
        if outcome is Outcome.SKIPPED_EXISTS:
            self.kept.append((path, read_alt_text(path)))
        else:
            self.written += 1

    def report(self) -> None:
        for path, warning in self.warnings:
            print(f"warning: {shown(path)}: {shown(warning)}", file=sys.stderr)
        for path, existing in self.kept:
            held = f'{existing.label}: "{shown(existing.text)}"' if existing else "existing alt text"
            print(f"kept existing alt text: {shown(path)}: {held} (use --overwrite to replace it)",
                  file=sys.stderr)
        print(f"alt text: {self.written} written, {len(self.kept)} kept", file=sys.stderr)
