"""Captioning one video, and decoding one frame of it for the preview, off the GUI thread, on
the app's Worker base (gui/workers.py).

Segments arrive through `item` in time order, progress through `progress` in milliseconds of
video (total 0 when the length is unknown), and `finished(cancelled)` comes last, after every
segment was delivered; `stopped` then says why decoding ended early, if it did.
Cancel is checked in the progress callback, which runs at least five times a second, so it
lands within a fraction of a second even inside a long scene; leaving the segment stream
stops the decoding thread and closes the file.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import Signal
from PySide6.QtGui import QImage

from captioner.errors import CaptionerError
from captioner.segments import ImageCaptioner, VideoCaptioning, VideoJob
from captioner.video import frame_at
from gui.workers import Worker


class _Cancelled(Exception):
    pass


class VideoWorker(Worker):
    opened = Signal(object)  # VideoInfo, once the file is open

    def __init__(self, captioner: ImageCaptioner, path: Path, job: VideoJob) -> None:
        super().__init__(f"caption {Path(path).name}")
        self.captioner, self.path, self.job = captioner, Path(path), job
        self.stopped: str | None = None  # why decoding ended early (truncated file), if it did
        self.error: str | None = None  # why the file could not be read at all

    def work(self) -> None:
        try:
            with VideoCaptioning(self.captioner, self.path, self.job) as run:
                self.opened.emit(run.info)
                for seg in run.segments(self._progress):
                    self.emit_item(seg)
                    if self.is_cancelled():
                        raise _Cancelled
                self.stopped = run.reader.status.stopped
        except _Cancelled:
            return
        except CaptionerError as exc:
            self.error = str(exc)
            self.failed.emit(self.error)

    def _progress(self, position: float, duration: float | None) -> None:
        if self.is_cancelled():
            raise _Cancelled
        self.report(int(position * 1000), int((duration or 0.0) * 1000))


def to_qimage(image: Image.Image) -> QImage:
    """A PIL image as a QImage that owns its pixels (safe to hand to the GUI thread)."""
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


class FrameWorker(Worker):
    """Decode the frame at `time` scaled into `box`. item: QImage; failed: the reason."""

    def __init__(self, path: Path, time: float, box: int) -> None:
        super().__init__(f"frame of {Path(path).name}")
        self.path, self.time, self.box = Path(path), time, box

    def work(self) -> None:
        try:
            self.emit_item(to_qimage(frame_at(self.path, self.time, self.box)))
        except CaptionerError as exc:
            self.failed.emit(str(exc))
