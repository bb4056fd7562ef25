"""Saving captions as sidecar .txt files, with the overwrite rules, off the GUI thread.

The rule: a caption file that exists is never replaced without asking, except a file this app
wrote itself in this session (its content is still exactly what we wrote). Questions are
asked in the GUI thread before anything is written (they are quick stat/reads); the writes
(atomic, fsynced) happen in a SaveWorker, one batch after another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from captioner.writers import read_sidecar, shared_sidecar_reason, sidecar_path
from gui.dialogs.overwrite import (
    BatchOverwriteDialog,
    Choice,
    ChoicePolicy,
    FileOverwriteDialog,
    FileQuestion,
)
from gui.models.image_list import ImageListModel
from gui.models.items import ImageItem, ProblemKind
from gui.tasks import SaveWorker, WriteJob, WriteOutcome
from gui.undo import CaptionHistory

Log = Callable[[str, str], None]


class OverwritePolicy(ChoicePolicy[Path]):
    """Replace existing caption files? `scope="session"` offers to remember the answer until
    other images are opened (used for single saves)."""

    def __init__(self, parent: QWidget | None, fixed: Choice | None = None, scope: str = "batch") -> None:
        super().__init__(parent, fixed)
        self.scope = scope

    def ask_batch(self, conflicts: list[Path]) -> Choice:
        return BatchOverwriteDialog(self.parent, conflicts).ask()

    def ask_file(self, image: Path, existing: Any, new: str, remaining: int) -> tuple[Choice, bool]:
        words = FileQuestion(remember="Don't ask again until other images are opened") \
            if self.scope == "session" else FileQuestion()
        dialog = FileOverwriteDialog(self.parent, image, existing, new, remaining, words)
        if self.scope == "session":
            dialog.remember.setVisible(True)
        return dialog.ask_remembering()


@dataclass(frozen=True)
class _Plan:
    jobs: list[WriteJob]
    kept: list[ImageItem]
    cancelled: bool


class SaveController(QObject):
    """Plans saves (asking where needed) and runs them through one SaveWorker at a time."""

    item_saved = Signal(object)  # ImageItem, whether written or failed
    busy_changed = Signal(bool)

    def __init__(self, model: ImageListModel, log: Log, parent_widget: QWidget | None) -> None:
        super().__init__(parent_widget)
        self.model, self.log, self.parent_widget = model, log, parent_widget
        self._queue: list[WriteJob] = []
        self._worker: SaveWorker | None = None
        self._asking = False

    def is_busy(self) -> bool:
        return self._worker is not None or bool(self._queue)

    def is_asking(self) -> bool:
        return self._asking

    def save(self, items: list[ImageItem], policy: OverwritePolicy | None = None) -> int:
        """Save the items whose caption is new; returns how many writes were queued."""
        policy = policy or OverwritePolicy(self.parent_widget)
        self._asking = True
        try:
            plan = self._plan([i for i in items if i.dirty], policy)
        finally:
            self._asking = False
        for item in plan.kept:
            self.log(
                f"kept the existing {sidecar_path(item.path).name}; the new caption is not saved", "warning"
            )
        if plan.cancelled:
            self.log("saving cancelled; nothing was written", "info")
            return 0
        if plan.jobs:
            self._queue.extend(plan.jobs)
            self._next()
        return len(plan.jobs)

    def _plan(self, items: list[ImageItem], policy: OverwritePolicy) -> _Plan:
        jobs: list[WriteJob] = []
        conflicts: list[tuple[ImageItem, str]] = []
        for item in items:
            owner = self.model.sidecar_owner(item)
            if owner is not item:  # photo.png after photo.jpg: never take photo.jpg's file
                self._not_saved(item, shared_sidecar_reason(item.path, owner.path))
                continue
            new = item.caption.strip()
            if not sidecar_path(item.path).exists():
                jobs.append(WriteJob(item.path, new, overwrite=False))
                continue
            disk = read_sidecar(item.path) or ""
            if disk == new:
                self._mark_saved(item, new)  # already on disk: nothing to write
            elif item.written is not None and disk == item.written.strip():
                jobs.append(WriteJob(item.path, new, overwrite=True))  # our own earlier write
            else:
                conflicts.append((item, disk))
        kept: list[ImageItem] = []
        if conflicts and not policy.begin([i.path for i, _ in conflicts]):
            return _Plan([], [], cancelled=True)
        for n, (item, disk) in enumerate(conflicts):
            choice = policy.decide(item.path, disk, item.caption.strip(), len(conflicts) - n - 1)
            if choice is Choice.CANCEL:
                return _Plan([], [], cancelled=True)
            if choice is Choice.OVERWRITE:
                jobs.append(WriteJob(item.path, item.caption.strip(), overwrite=True))
            else:
                kept.append(item)
        return _Plan(jobs, kept, cancelled=False)

    def _next(self) -> None:
        if self._worker is not None or not self._queue:
            return
        jobs, self._queue = self._queue, []
        self._worker = SaveWorker(jobs)
        self._worker.item.connect(self._on_outcome)
        self._worker.failed.connect(lambda text: self.log(text, "error"))
        self._worker.finished.connect(self._on_finished)
        self.busy_changed.emit(True)
        self._worker.start()

    def _on_outcome(self, outcome: WriteOutcome) -> None:
        item = self.model.item_for(outcome.job.image)
        if item is None:
            return
        if outcome.written:
            self._mark_saved(item, outcome.job.text)
            item.written = outcome.job.text
            self.model.changed(item)
        else:
            self._not_saved(item, outcome.error)
        self.item_saved.emit(item)

    def _not_saved(self, item: ImageItem, reason: str) -> None:
        item.set_problem(ProblemKind.NOT_SAVED, reason)
        self.log(f"{sidecar_path(item.path)}: {reason}", "error")
        self.model.changed(item)

    def _mark_saved(self, item: ImageItem, text: str) -> None:
        item.saved = text
        CaptionHistory.seal(item)
        item.clear_problem(ProblemKind.NOT_SAVED)
        self.model.changed(item)

    def _on_finished(self, _cancelled: bool) -> None:
        self._worker = None
        if self._queue:
            self._next()
        else:
            self.busy_changed.emit(False)

    def shutdown(self) -> None:
        """Finish writes that were started (never leave a save half done on quit)."""
        if self._worker is not None:
            self._worker.wait(10000)
        for job in self._queue:
            outcome = SaveWorker.write(job)
            if not outcome.written:
                self.log(f"{sidecar_path(job.image)}: {outcome.error}", "error")
        self._queue = []
