"""One image in the list: its caption as edited, as saved on disk, and as the model wrote it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from captioner.captioner import CaptionResult


class Status(Enum):
    NEW = "new"  # not captioned by the model in this session
    QUEUED = "queued"  # waiting in a caption run
    CAPTIONED = "captioned"  # the model has written a caption (result is set)


class Source(Enum):
    """Where the current caption text came from; decides whether the model may replace it."""

    NONE = "none"
    DISK = "disk"
    MODEL = "model"
    USER = "user"


@dataclass(eq=False)
class ImageItem:
    path: Path
    caption: str = ""
    saved: str | None = None  # the sidecar's text as last read or written; None: no sidecar
    written: str | None = None  # what this app itself last wrote (no prompt to replace that)
    source: Source = Source.NONE
    result: CaptionResult | None = None
    status: Status = Status.NEW
    error: str = ""  # the last problem (unreadable image, failed save); shown on the item
    extras: dict = field(default_factory=dict)  # room for features that need per-item state

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def dirty(self) -> bool:
        """True when the caption differs from the file on disk (an empty caption is not news)."""
        return self.caption.strip() != (self.saved or "").strip() and bool(self.caption.strip())

    @property
    def has_caption(self) -> bool:
        return bool(self.caption.strip())

    @property
    def user_edit_pending(self) -> bool:
        """An unsaved caption the person typed or picked: a model run must not clobber it."""
        return self.dirty and self.source is Source.USER
