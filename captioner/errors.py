"""The project's own error types: each carries a one-line reason a person can act on."""

from __future__ import annotations

from pathlib import Path


class CaptionerError(Exception):
    """Base class: anything the core refuses, with a message fit for a status line."""


class ImageLoadError(CaptionerError):
    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class BundleError(CaptionerError):
    """A model bundle that is missing, broken or does not fit together."""


class VideoError(CaptionerError):
    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class WriteError(CaptionerError):
    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")
