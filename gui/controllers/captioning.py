"""Caption runs: queue images, run a CaptionWorker, apply each result as it arrives.

A result replaces the caption through the image's undo stack (so Ctrl+Z brings back what was
there), except a caption a person wrote: read from a caption file or from the photo's alt text,
or typed here. Those are kept and the model's suggestion waits in the n-best list, unless the
run was asked to replace them ("Caption all, replacing my captions"). Asking for more captions
while a run is going queues them for a follow-up run instead of refusing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Signal

from captioner.captioner import CaptionOptions, CaptionResult
from captioner.errors import CaptionerError
from captioner.writers import read_sidecar, sidecar_path
from gui.controllers.saving import OverwritePolicy, SaveController
from gui.models.image_list import ImageListModel
from gui.models.items import ImageItem, ProblemKind, Source, Status, reason_of
from gui.phrases import fit_to_phrase
from gui.tasks import CaptionBackend, CaptionWorker
from gui.undo import CaptionHistory

Log = Callable[[str, str], None]


@dataclass
class RunStats:
    total: int = 0
    done: int = 0  # images the run got to, captioned or not
    failed: int = 0  # of those, images that could not be read
    started: float = field(default_factory=time.perf_counter)
    ended: float = 0.0

    @property
    def seconds(self) -> float:
        return max((self.ended or time.perf_counter()) - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.done / self.seconds

    @property
    def captioned(self) -> int:
        return self.done - self.failed

    def summary(self, cancelled: bool) -> str:
        """'captioned 1 of 3 images in 0.4 s (7.5 images/s); 2 could not be read (see the log)'."""
        text = (f"{'cancelled: ' if cancelled else ''}captioned {self.captioned} of {self.total} "
                f"{'image' if self.total == 1 else 'images'} in {self.seconds:.1f} s "
                f"({self.rate:.1f} images/s)")
        if self.failed:
            text += f"; {self.failed} could not be read (see the log)"
        return text


@dataclass(frozen=True)
class _Setup:
    backend: CaptionBackend
    options: CaptionOptions
    batch_size: int
    auto_save: bool


class CaptionController(QObject):
    started = Signal(int)  # images in the run
    progress = Signal(int, int, float)  # done, total, images per second
    result_applied = Signal(object)  # ImageItem
    finished = Signal(object, bool)  # RunStats, cancelled

    def __init__(
        self,
        model: ImageListModel,
        history: CaptionHistory,
        saver: SaveController,
        log: Log,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model, self.history, self.saver, self.log = model, history, saver, log
        self.worker: CaptionWorker | None = None
        self.stats = RunStats()
        self.last: RunStats | None = None
        self._waiting: list[ImageItem] = []
        self._replacing: set[int] = set()  # ids of queued items whose caption a result replaces
        self._setup: _Setup | None = None
        self._autosave_policy: OverwritePolicy | None = None
        self._autosave: list[ImageItem] = []
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(300)
        self._flush.timeout.connect(self._flush_autosave)

    def is_running(self) -> bool:
        return self.worker is not None

    def start(
        self,
        items: list[ImageItem],
        backend: CaptionBackend,
        options: CaptionOptions,
        batch_size: int,
        auto_save: bool,
        replace: bool = False,
    ) -> bool:
        """Caption `items` now, or after the current run. False if the person backed out.
        With `replace`, the model's captions replace the ones people wrote too."""
        items = [i for i in items if i.status is not Status.QUEUED]
        if not items:
            return False
        self._setup = _Setup(backend, options, batch_size, auto_save)
        for item in items:
            item.status = Status.QUEUED
            self.model.changed(item)
            if replace:
                self._replacing.add(id(item))
        if self.worker is not None:
            self._waiting.extend(items)
            self.log(f"{len(items)} more image(s) queued after the current run", "info")
            return True
        return self._launch(items)

    def _launch(self, items: list[ImageItem]) -> bool:
        assert self._setup is not None
        setup = self._setup
        self._autosave_policy = None
        if setup.auto_save and not self._ask_autosave([i for i in items if self._will_replace(i)]):
            self._unqueue(items)
            return False
        self.stats = RunStats(total=len(items))
        self.worker = CaptionWorker(setup.backend, [i.path for i in items], setup.options, setup.batch_size)
        self.worker.item.connect(self._on_result)
        self.worker.progress.connect(self._on_progress)
        self.worker.failed.connect(lambda text: self.log(text, "error"))
        self.worker.finished.connect(self._on_finished)
        self.started.emit(len(items))
        self.worker.start()
        return True

    def _ask_autosave(self, items: list[ImageItem]) -> bool:
        """With auto-save on, settle up front what happens to caption files that exist."""
        self._autosave_policy = OverwritePolicy(self.saver.parent_widget)
        existing = [
            i.path
            for i in items
            if sidecar_path(i.path).exists()
            and (i.written is None or read_sidecar(i.path) != i.written.strip())
        ]
        return self._autosave_policy.begin(existing)

    def _will_replace(self, item: ImageItem) -> bool:
        """Whether a result may replace this item's caption."""
        return not item.keeps_caption or id(item) in self._replacing

    def cancel(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._unqueue(waiting)
        if self.worker is not None:
            self.worker.cancel()
            self.log("cancelling: the images being captioned now finish first", "info")

    def _unqueue(self, items: list[ImageItem]) -> None:
        for item in items:
            self._replacing.discard(id(item))
            if item.status is Status.QUEUED:
                item.status = Status.CAPTIONED if item.result is not None else Status.NEW
                self.model.changed(item)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.emit(done, total, self.stats.rate)

    def _on_result(self, payload: tuple) -> None:
        path, result = payload
        self.stats.done += 1
        item = self.model.item_for(path)
        if item is None:  # removed from the list while it was being captioned
            return
        if isinstance(result, CaptionerError):
            self.stats.failed += 1
            item.status = Status.CAPTIONED if item.result is not None else Status.NEW
            item.set_problem(ProblemKind.UNREADABLE, reason_of(result))
            self.log(f"{item.path}: {item.error}", "error")
            self.model.changed(item)
        else:
            self._apply(item, result)
        self.result_applied.emit(item)

    def _apply(self, item: ImageItem, result: CaptionResult) -> None:
        if self._setup is not None and self._setup.options.max_length:
            result = fit_to_phrase(result)
        item.result = result
        item.status = Status.CAPTIONED
        item.clear_problem(ProblemKind.UNREADABLE)
        replace = self._will_replace(item)
        self._replacing.discard(id(item))
        if not replace:
            self.model.changed(item)  # the person's caption stays; the model's is an alternative
            return
        self.history.set_caption(item, result.text, Source.MODEL, "Caption by model")
        self.model.changed(item)
        if self._setup is not None and self._setup.auto_save and result.text:
            self._autosave.append(item)
            if not self._flush.isActive():
                self._flush.start()

    def _flush_autosave(self) -> None:
        if self.saver.is_asking():  # a prompt is open; try again when it is answered
            self._flush.start()
            return
        items, self._autosave = self._autosave, []
        if items:
            self.saver.save(items, self._autosave_policy)

    def _on_finished(self, cancelled: bool) -> None:
        worker, self.worker = self.worker, None
        self.stats.ended = time.perf_counter()
        if worker is not None:
            self._unqueue([i for p in worker.paths if (i := self.model.item_for(p)) is not None])
        self._flush_autosave()
        self.last = self.stats
        self.log(self.stats.summary(cancelled), "warning" if self.stats.failed else "info")
        self.finished.emit(self.stats, cancelled)
        if self._waiting and not cancelled:
            waiting, self._waiting = self._waiting, []
            self._launch(waiting)

    def shutdown(self) -> None:
        self._waiting = []
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(10000)
