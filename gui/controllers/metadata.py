"""File ▸ "Write alt text into photos": captions into the photos' own metadata, and back.

Two jobs, both off the GUI thread on the app's Worker base:

* reading: when images are opened, each one without a caption file is read for an alt text
  or description stored inside it (captioner.metadata.read_alt_text); one that has it shows
  it as its current caption, as a caption file would be shown;
* writing: the selected images' captions go into IPTC alt text, XMP description and EXIF
  ImageDescription (captioner.metadata.write_alt_text: copy, write, verify, replace). A photo
  that already holds other alt text is never changed without asking, with the same questions
  as for caption files (overwrite all / keep / decide for each, keep being the default), except
  for alt text this app wrote itself in this session.

The Photos controller owns it; its menu action is declared in gui/actions.py like the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QModelIndex, QObject, Qt, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from captioner.metadata import (
    ALT_TEXT,
    SUPPORTED_TEXT,
    ExistingText,
    can_write_metadata,
    read_alt_text,
    write_alt_text,
)
from captioner.writers import Outcome
from gui.dialogs.overwrite import BatchChoiceDialog, Choice, ChoicePolicy, FileOverwriteDialog, FileQuestion
from gui.models.image_list import ImageListModel
from gui.models.items import ImageItem, ProblemKind, Source
from gui.tasks import WriteJob, WriteOutcome, WriteWorker
from gui.workers import Worker

ACTION_NAME = "write_alt_text"

Log = Callable[[str, str], None]


# --- jobs --------------------------------------------------------------------------------------


class AltTextReadWorker(Worker):
    """Read embedded alt text. item: list[(Path, ExistingText)] in chunks (only photos with one)."""

    chunk = 50

    def __init__(self, paths: list[Path]) -> None:
        super().__init__("reading alt text")
        self.paths = paths

    def work(self) -> None:
        found: list[tuple[Path, ExistingText]] = []
        for n, path in enumerate(self.paths, 1):
            if self.is_cancelled():
                return
            existing = read_alt_text(path) if can_write_metadata(path) else None
            if existing is not None:
                found.append((path, existing))
            if len(found) >= self.chunk:
                self.emit_item(found)
                found = []
            self.report(n, len(self.paths))
        if found:
            self.emit_item(found)


class AltTextWriteWorker(WriteWorker):
    """Write alt text into photos (cancellable between photos)."""

    appeared_meanwhile = "alt text appeared in the photo meanwhile; kept it"

    def __init__(self, jobs: list[WriteJob]) -> None:
        super().__init__(jobs, "writing alt text")

    @staticmethod
    def write_one(job: WriteJob, warnings: list[str]) -> Outcome:
        return write_alt_text(job.image, job.text, overwrite=job.overwrite, warnings=warnings)


# --- the questions -----------------------------------------------------------------------------


class AltTextBatchDialog(BatchChoiceDialog):
    """'3 of the photos already have alt text'."""

    def __init__(self, parent: QWidget | None, conflicts: list[tuple[Path, ExistingText]]) -> None:
        super().__init__(
            parent, "Photos already have alt text",
            f"<b>{len(conflicts)} of the photos already have alt text or a description inside.</b>"
            "<br>Replace it with the new caption?",
            [f"{p.name}: {e.text[:60]}" for p, e in conflicts],
        )


def alt_text_question(image: Path, existing: ExistingText) -> FileQuestion:
    """The per-file question's words for a photo that holds alt text."""
    return FileQuestion(
        title="Replace the photo's alt text?",
        headline=f"<b>{image.name}</b> already has alt text inside (its {existing.label}).",
        existing_label="In the photo:",
        remember="Do the same for the other {remaining} photo(s) in this batch",
        cancel="Cancel",
    )


class AltTextPolicy(ChoicePolicy[tuple[Path, ExistingText]]):
    """Replace alt text already in photos?"""

    def ask_batch(self, conflicts: list[tuple[Path, ExistingText]]) -> Choice:
        return AltTextBatchDialog(self.parent, conflicts).ask()

    def ask_file(self, image: Path, existing: ExistingText, new: str, remaining: int) -> tuple[Choice, bool]:
        dialog = FileOverwriteDialog(self.parent, image, existing.text, new, remaining,
                                     alt_text_question(image, existing))
        return dialog.ask_remembering()


# --- the controller ----------------------------------------------------------------------------


@dataclass
class AltTextRun:
    total: int = 0
    written: int = 0
    kept: int = 0
    failed: int = 0
    skipped: int = 0  # no caption, or a format without alt text
    cancelled: bool = False

    def summary(self) -> str:
        parts = [f"alt text written into {self.written} of {self.total} photo(s)"]
        if self.kept:
            parts.append(f"{self.kept} kept their own")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.failed:
            parts.append(f"{self.failed} failed (see the log)")
        return ("cancelled: " if self.cancelled else "") + ", ".join(parts)


class AltTextController(QObject):
    """Reads embedded alt text for opened images and writes captions into photos."""

    finished = Signal(object)  # AltTextRun
    embedded_read = Signal(int)  # how many opened photos showed their embedded alt text
    item_changed = Signal(object)  # ImageItem whose caption or stored alt text changed
    message = Signal(str, int)  # a status-bar line and how long to show it (ms)

    def __init__(self, model: ImageListModel, log: Log, dialog_parent: QWidget | None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.log, self.dialog_parent = model, log, dialog_parent
        self._reader: AltTextReadWorker | None = None
        self._pending_reads: list[Path] = []
        self._writer: AltTextWriteWorker | None = None
        self._run = AltTextRun()
        self._progress: QProgressDialog | None = None
        self.model.rowsInserted.connect(self._on_rows_inserted)

    # --- showing alt text already in photos ---------------------------------------------------
    def _on_rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        paths = [item.path for item in (self.model.item_at(r) for r in range(first, last + 1))
                 if item.saved is None and not item.caption and can_write_metadata(item.path)]
        if paths:
            self._pending_reads.extend(paths)
            self._next_read()

    def _next_read(self) -> None:
        if self._reader is not None or not self._pending_reads:
            return
        paths, self._pending_reads = self._pending_reads, []
        reader = AltTextReadWorker(paths)
        self._reader = reader
        found: list[int] = []
        reader.item.connect(lambda chunk: found.append(self._apply_embedded(chunk)))
        reader.failed.connect(lambda text: self.log(text, "error"))
        reader.finished.connect(lambda _c: self._on_read_finished(sum(found)))
        reader.start()

    def _apply_embedded(self, chunk: list[tuple[Path, ExistingText]]) -> int:
        shown = 0
        for path, existing in chunk:
            item = self.model.item_for(path)
            if item is None:
                continue
            item.embedded = existing
            if item.saved is None and not item.caption and item.source is Source.NONE:
                # shown like a caption file's text: current, not "unsaved"; editing it and saving
                # writes a caption file; "Write alt text" puts an edit back into the photo
                item.caption = existing.text
                item.source = Source.ALT_TEXT
                self.model.changed(item)
                self.item_changed.emit(item)
                shown += 1
        return shown

    def _on_read_finished(self, shown: int) -> None:
        self._reader = None
        if shown:
            self.log(f"{shown} photo(s) without a caption file show the alt text stored inside them", "info")
        self.embedded_read.emit(shown)
        self._next_read()

    # --- writing ------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self._writer is not None

    def write(self, items: list[ImageItem], policy: AltTextPolicy | None = None) -> int:
        """Plan (asking where a photo holds other alt text) and start the writes; returns how many."""
        if self._writer is not None:
            self.message.emit("Alt text is being written; wait for it to finish", 5000)
            return 0
        policy = policy or AltTextPolicy(self.dialog_parent)
        run = AltTextRun(total=len(items))
        jobs: list[WriteJob] = []
        conflicts: list[tuple[ImageItem, ExistingText]] = []
        for item in items:
            text = item.caption.strip()
            if not text:
                run.skipped += 1
                self.log(f"{item.name}: no caption yet, so no alt text written", "warning")
            elif not can_write_metadata(item.path):
                run.skipped += 1
                self.log(f"{item.name}: alt text can only be written into {SUPPORTED_TEXT} files", "warning")
            else:
                existing = read_alt_text(item.path)
                if existing is None:
                    jobs.append(WriteJob(item.path, text, overwrite=False))
                elif existing.text == text:
                    jobs.append(WriteJob(item.path, text, overwrite=True))  # same text: fills every field
                elif item.alt_text_written == existing.text:
                    jobs.append(WriteJob(item.path, text, overwrite=True))  # our own earlier write
                else:
                    conflicts.append((item, existing))
        if conflicts and not policy.begin([(i.path, e) for i, e in conflicts]):
            self.log("writing alt text cancelled; no photo was changed", "info")
            return 0
        for n, (item, existing) in enumerate(conflicts):
            choice = policy.decide(item.path, existing, item.caption.strip(), len(conflicts) - n - 1)
            if choice is Choice.CANCEL:
                self.log("writing alt text cancelled; no photo was changed", "info")
                return 0
            if choice is Choice.OVERWRITE:
                jobs.append(WriteJob(item.path, item.caption.strip(), overwrite=True))
            else:
                run.kept += 1
                self.log(f"{item.name}: kept the alt text already in the photo ({existing.label}: "
                         f"“{existing.text}”)", "info")
        self._run = run
        if not jobs:
            self._report(run)
            return 0
        self._start(jobs)
        return len(jobs)

    def _start(self, jobs: list[WriteJob]) -> None:
        worker = AltTextWriteWorker(jobs)
        self._writer = worker
        self._progress = progress = QProgressDialog("Writing alt text into photos…", "Cancel", 0, len(jobs),
                                                    self.dialog_parent)
        progress.setObjectName("altTextProgress")
        progress.setWindowTitle("Write alt text")
        progress.setWindowModality(Qt.WindowModality.NonModal)
        progress.setMinimumDuration(400)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.canceled.connect(worker.cancel)
        progress.setValue(0)
        worker.progress.connect(self._on_progress)
        worker.item.connect(self._on_outcome)
        worker.failed.connect(lambda text: self.log(text, "error"))
        worker.finished.connect(self._on_finished)
        worker.start()

    def _on_progress(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress.setMaximum(total)
            self._progress.setValue(done)
            self._progress.setLabelText(f"Writing alt text into photos… {done} / {total}")
        self.message.emit(f"Writing alt text {done} / {total}", 2000)

    def _on_outcome(self, outcome: WriteOutcome) -> None:
        job = outcome.job
        item = self.model.item_for(job.image)
        if outcome.warning:
            self.log(f"{job.image.name}: {outcome.warning}", "warning")
        if outcome.written:
            self._run.written += 1
            if item is not None:
                item.alt_text_written = job.text
                item.embedded = ExistingText(job.text, ALT_TEXT)
                item.clear_problem(ProblemKind.ALT_TEXT)
                self.model.changed(item)
                self.item_changed.emit(item)
            return
        if outcome.error == AltTextWriteWorker.appeared_meanwhile:
            self._run.kept += 1
            self.log(f"{job.image.name}: {outcome.error}", "warning")
            return
        self._run.failed += 1
        self.log(f"{job.image}: alt text not written: {outcome.error}", "error")
        if item is not None:
            item.set_problem(ProblemKind.ALT_TEXT, outcome.error)
            self.model.changed(item)

    def _on_finished(self, cancelled: bool) -> None:
        self._writer = None
        if self._progress is not None:
            self._progress.close()
            self._progress.deleteLater()
            self._progress = None
        self._run.cancelled = cancelled
        self._report(self._run)

    def _report(self, run: AltTextRun) -> None:
        text = run.summary()
        self.log(text, "warning" if run.failed else "info")
        self.message.emit(text, 8000)
        self.finished.emit(run)

    def shutdown(self) -> None:
        """Let a started write finish (each is atomic; the batch stops at the next photo)."""
        for worker in (self._writer, self._reader):
            if worker is not None:
                worker.cancel()
                worker.wait(10000)
