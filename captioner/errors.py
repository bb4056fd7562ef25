"""The project's own error types: each carries a one-line reason a person can act on."""

from __future__ import annotations

from pathlib import Path

MAX_REASON = 160  # characters of a library's message kept in a reason


def detail(exc: BaseException) -> str:
    """A library's message as part of a one-line reason: one line, printable, not too long."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class CaptionerError(Exception):
    """Base class: anything the core refuses, with a message fit for a status line."""


class PathError(CaptionerError):
    """A problem with one file: which file, and the one-line reason without the path."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ImageLoadError(PathError):
    pass


class BundleError(CaptionerError):
    """A model bundle that is missing, broken or does not fit together."""


class VideoError(PathError):
    pass


class WriteError(PathError):
    pass
