"""Captioning one video off the GUI thread; segments, progress and the end come back as signals.

Cancel sets a flag that the progress callback checks (it runs at least five times a second),
so a cancel lands within a fraction of a second even inside a long scene, and closing the
segment stream stops the decoding thread and closes the file.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from captioner.captioner import Captioner
from captioner.errors import CaptionerError
from captioner.segments import VideoCaptioning, VideoJob


class _Cancelled(Exception):
    pass


class VideoWorker(QObject):
    """Lives in its own QThread; `run` captions, `cancel` may be called from any thread."""

    started = Signal(object)  # VideoInfo
    segment = Signal(object)  # Segment, in time order
    progress = Signal(float, float)  # seconds decoded, duration (0 when unknown)
    finished = Signal(str)  # "" when complete, else why it stopped early ("cancelled", ...)
    failed = Signal(str)  # the file could not be read at all

    def __init__(self, captioner: Captioner, path: Path, job: VideoJob) -> None:
        super().__init__()
        self.captioner, self.path, self.job = captioner, Path(path), job
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _progress(self, position: float, duration: float | None) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        self.progress.emit(position, duration or 0.0)

    @Slot()
    def run(self) -> None:
        try:
            with VideoCaptioning(self.captioner, self.path, self.job) as run:
                self.started.emit(run.info)
                for seg in run.segments(self._progress):
                    self.segment.emit(seg)
                    if self._cancel.is_set():
                        raise _Cancelled
                self.finished.emit(run.reader.status.stopped or "")
        except _Cancelled:
            self.finished.emit("cancelled")
        except CaptionerError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a worker must always report back, or the panel waits forever
            self.failed.emit(f"{self.path}: unexpected error ({exc})")


def start_worker(worker: VideoWorker) -> QThread:
    """Move the worker to a new thread and start it; the thread quits when the worker ends."""
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.failed.connect(thread.quit)
    thread.start()
    return thread
