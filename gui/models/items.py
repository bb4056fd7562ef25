"""One image in the list: its caption as edited, as stored (caption file or alt text inside the
photo), and as the model wrote it, with its problem, if it has one, as a typed value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from captioner.captioner import CaptionResult
from captioner.errors import CaptionerError, PathError
from captioner.metadata import ExistingText
from captioner.tags import Tag


def reason_of(error: CaptionerError) -> str:
    """The one-line reason of a core error, without the path the item already shows."""
    return error.reason if isinstance(error, PathError) else str(error)


class Status(Enum):
    NEW = "new"  # not captioned by the model in this session
    QUEUED = "queued"  # waiting in a caption run
    CAPTIONED = "captioned"  # the model has written a caption (result is set)


class Source(Enum):
    """Where the current caption text came from; decides whether the model may replace it."""

    NONE = "none"
    DISK = "disk"  # the caption file beside the photo
    ALT_TEXT = "alt text"  # the alt text or description stored inside the photo
    MODEL = "model"
    USER = "user"

    @property
    def human(self) -> bool:
        """A caption a person wrote (in a file, in the photo, or here): a run keeps it."""
        return self in (Source.DISK, Source.ALT_TEXT, Source.USER)


class ProblemKind(Enum):
    UNREADABLE = "unreadable"  # the image cannot be read: it is never captioned
    NOT_SAVED = "not saved"  # its caption file could not be written
    ALT_TEXT = "alt text not written"  # its alt text could not be written into the photo


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    reason: str  # one line, from the core

    @property
    def text(self) -> str:
        return self.reason if self.kind is ProblemKind.UNREADABLE else f"{self.kind.value}: {self.reason}"


@dataclass(eq=False)
class ImageItem:
    path: Path
    caption: str = ""
    saved: str | None = None  # the caption file's text as last read or written; None: no file
    written: str | None = None  # what this app itself last wrote there (no prompt to replace that)
    source: Source = Source.NONE
    result: CaptionResult | None = None  # the model's last caption: words, attention, n-best
    status: Status = Status.NEW
    problem: Problem | None = None
    embedded: ExistingText | None = None  # alt text read from (or written into) the photo
    alt_text_written: str | None = None  # what this app itself wrote into the photo
    undo_epoch: int = 0  # bumped by a save: typing after it is an undo step of its own

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def error(self) -> str:
        """The problem as one line for tiles, tooltips and the state line ("" when none)."""
        return self.problem.text if self.problem is not None else ""

    @property
    def unreadable(self) -> bool:
        return self.problem is not None and self.problem.kind is ProblemKind.UNREADABLE

    def set_problem(self, kind: ProblemKind, reason: str) -> None:
        """Record a problem; an unreadable image stays flagged as that (it explains the rest)."""
        if not self.unreadable:
            self.problem = Problem(kind, reason)

    def clear_problem(self, kind: ProblemKind) -> bool:
        """Forget a problem of this kind (a later save or write worked); True if one was cleared."""
        if self.problem is not None and self.problem.kind is kind:
            self.problem = None
            return True
        return False

    @property
    def stored(self) -> str | None:
        """The caption as kept on disk: the caption file, else the photo's own alt text."""
        if self.saved is not None:
            return self.saved
        return self.embedded.text if self.embedded is not None else None

    @property
    def dirty(self) -> bool:
        """True when the caption differs from what is stored (an empty caption is not news)."""
        return self.caption.strip() != (self.stored or "").strip() and bool(self.caption.strip())

    @property
    def has_caption(self) -> bool:
        return bool(self.caption.strip())

    @property
    def user_edit_pending(self) -> bool:
        """An unsaved caption the person typed or picked: leaving the image auto-saves it."""
        return self.dirty and self.source is Source.USER

    @property
    def confidence(self) -> float | None:
        """How sure the model is of the caption shown: only while that caption is the model's
        own (a person's caption is not the model's guess), None when the bundle is not
        calibrated: no number is better than a made-up one."""
        result = self.result
        if result is None or result.confidence is None or self.source is not Source.MODEL:
            return None
        return result.confidence if self.caption.strip() == result.text.strip() else None

    @property
    def tags(self) -> list[Tag]:
        """What the model sees in the photo, best first (from the last caption run)."""
        return self.result.tags if self.result is not None else []

    @property
    def keeps_caption(self) -> bool:
        """A run of the model must not replace this caption unless asked to replace."""
        return self.has_caption and self.source.human
