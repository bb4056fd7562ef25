"""What the CLI shows: escaped text, stdout lines that survive a closed pipe, one progress bar,
one-line messages and one summary.

Everything that comes from a file or a file name (paths, captions, alt text already in a photo)
goes through `shown()` before it reaches a terminal or a TSV line, so a name or an EXIF field
holding ESC sequences, newlines or tabs can neither drive the terminal nor split a line.
"""

from __future__ import annotations

import os
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from captioner.errors import CaptionerError, ImageLoadError, VideoError, WriteError

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def shown(text: object) -> str:
    """Text as one printable line: a control character (ESC, newline, tab, C1), a line or
    paragraph separator, a bidirectional override or a byte that is not UTF-8 (a lone
    surrogate from os.fsdecode) becomes a backslash escape, like `ls -b`."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif (0xD800 <= code <= 0xDFFF or ch in BIDI_CONTROLS
              or unicodedata.category(ch) in ("Cc", "Zl", "Zp")):
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def reason_of(exc: CaptionerError) -> str:
    """The one-line reason of one of the project's errors (without its path)."""
    if isinstance(exc, (ImageLoadError, VideoError, WriteError)):
        return exc.reason
    return str(exc)


def path_of(exc: CaptionerError, default: Path) -> Path:
    """The file an error is about: its own path when it carries one, else `default`."""
    if isinstance(exc, (ImageLoadError, VideoError, WriteError)):
        return exc.path
    return default


@dataclass
class _Stdout:
    gone: bool = False  # the reader left (`| head -1`): stdout is dropped, the run goes on


_stdout = _Stdout()


def emit(*fields: object) -> None:
    """One TSV line on stdout, each field escaped. When the reader has gone (a closed pipe)
    nothing more is printed, but the run goes on and writes its files."""
    if _stdout.gone:
        return
    try:
        print("\t".join(shown(f) for f in fields), flush=True)
    except BrokenPipeError:
        _stdout.gone = True
        try:  # what is still buffered goes nowhere, so exiting raises no second BrokenPipeError
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass


@dataclass(frozen=True)
class Meter:
    """How a progress bar counts: photos, or seconds of video."""

    unit: str  # after `done/total`
    rate: str  # after the rate
    digits: int  # decimals of done/total


PHOTOS = Meter("", " img/s", 0)  # 12/30 14.2 img/s
VIDEO_SECONDS = Meter(" s", "x", 1)  # 7.4/17.6 s 3.1x (seconds of video per second)


class Progress:
    """`label [#####.......] 42% 12/30 14.2 img/s` on stderr, redrawn in place at most ten times
    a second, only when asked (a terminal, or --progress); `message` clears it first."""

    WIDTH, LINE = 24, 100
    on_screen: Progress | None = None

    def __init__(self, label: str, meter: Meter, enabled: bool) -> None:
        self.label, self.meter, self.enabled = shown(label), meter, enabled
        self.start = time.monotonic()
        self.drawn = 0.0

    def update(self, done: float, total: float | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not self.enabled or (now - self.drawn < 0.1 and not finished):
            return
        self.drawn = now
        rate = done / max(now - self.start, 1e-6)
        m = self.meter
        count = f"{done:.{m.digits}f}"
        if total:
            share = min(1.0, done / total)
            filled = int(share * self.WIDTH)
            count = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {share:4.0%} {count}/{total:.{m.digits}f}"
        text = f"{self.label} {count}{m.unit} {rate:.1f}{m.rate}".strip()
        print(f"\r{text[:self.LINE]:<{self.LINE}}", end="", file=sys.stderr, flush=True)
        Progress.on_screen = self

    def clear(self) -> None:
        if self.enabled:
            print(f"\r{'':<{self.LINE}}\r", end="", file=sys.stderr, flush=True)
        Progress.on_screen = None


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def message(text: str) -> None:
    """One line on stderr (an error, a warning), on a line of its own even under the bar."""
    if Progress.on_screen is not None:
        Progress.on_screen.clear()
    print(text, file=sys.stderr, flush=True)


@dataclass
class Tally:
    """What a run did, reported as it goes (`error:` lines) and summed up at the end:
    `HEAD, N skipped[, N incomplete], N failed`."""

    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    incomplete: list[tuple[Path, str]] = field(default_factory=list)

    def fail(self, path: Path, reason: str) -> None:
        self.failed.append((path, reason))
        message(f"error: {shown(path)}: {shown(reason)}")

    def fail_with(self, exc: CaptionerError, path: Path) -> None:
        self.fail(path_of(exc, path), reason_of(exc))

    def stop_early(self, path: Path, reason: str) -> None:
        self.incomplete.append((path, reason))
        message(f"warning: {shown(path)}: {shown(reason)}; captioned what decoded")

    def close(self, head: str, with_incomplete: bool = False) -> int:
        """Print the skipped files and the summary line; return the exit code (0 or 1)."""
        for path in self.skipped:
            print(f"skipped: {shown(path)} exists (use --overwrite to replace it)", file=sys.stderr)
        middle = f", {len(self.incomplete)} incomplete" if with_incomplete else ""
        print(f"{head}, {len(self.skipped)} skipped{middle}, {len(self.failed)} failed", file=sys.stderr)
        return 1 if self.failed or self.incomplete else 0
