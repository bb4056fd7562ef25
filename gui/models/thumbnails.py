"""Thumbnails made in background threads, on demand, newest request first, kept in an LRU.

The grid asks for a thumbnail only when it paints an item, so a 10,000-image folder costs
only what is on screen. Requests are served last-in-first-out: after a fast scroll the
images now visible load before the ones scrolled past. Decoding uses Qt's
QImageReader (EXIF-upright like the core's `load_image`, JPEG scaled while decoding, all in
C++ without the GIL); a file Qt cannot read goes to the core's `load_image`, so a broken file
gets the same one-line reason the captioner would give.
Pixmaps are made from the decoded QImage in the GUI thread (QPixmap is GUI-thread only).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, QRunnable, QSize, QThreadPool, QTimer, Signal
from PySide6.QtGui import QImage, QImageIOHandler, QImageReader, QPixmap

from captioner.errors import CaptionerError
from captioner.images import MAX_PIXELS, load_image
from gui.models.items import reason_of


def pil_to_qimage(img: Image.Image) -> QImage:
    """RGB PIL image -> an independent QImage (the copy owns its pixels)."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


def _fitted(width: int, height: int, longest: int, box: tuple[int, int] | None) -> tuple[int, int]:
    """The size to show an image at: fitted to `box` (up or down), else capped at `longest`."""
    if box is not None and box[0] > 0 and box[1] > 0:
        scale = min(box[0] / width, box[1] / height)
    else:
        scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


NATURAL = "captioner-natural-size"  # QImage text key: the file's own size, upright, "WxH"


def natural_size(image: QImage) -> QSize:
    """The size of the file a loaded image was decoded from (its own size if not recorded)."""
    width, _, height = image.text(NATURAL).partition("x")
    return QSize(int(width), int(height)) if width.isdigit() and height.isdigit() else image.size()


def read_with_qt(path: Path, longest: int, box: tuple[int, int] | None) -> QImage | None:
    """Decode with Qt (EXIF-upright, JPEG scaled while decoding), or None if Qt cannot.

    Qt decodes in C++ with the GIL released, so a loader thread does not make the GUI thread
    wait for the GIL after each Qt call it makes (PIL runs Python code between its C parts).
    """
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    stored = reader.size()
    if not stored.isValid() or stored.width() * stored.height() > MAX_PIXELS:
        return None
    rotated = bool(reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90)
    width, height = (stored.height(), stored.width()) if rotated else (stored.width(), stored.height())
    target_w, target_h = _fitted(width, height, longest, box)
    reader.setScaledSize(QSize(target_h, target_w) if rotated else QSize(target_w, target_h))
    image = reader.read()
    if image.isNull():
        return None
    image.setText(NATURAL, f"{width}x{height}")
    return image


def load_scaled(path: Path, longest: int, box: tuple[int, int] | None = None) -> QImage:
    """Decode an image at the size it will be shown: fitted to `box` (up or down, aspect kept)
    when given, else no larger than `longest` px. Raises CaptionerError with the core's reason
    when the image cannot be read (PIL is asked then, for its precise one-line reason)."""
    image = read_with_qt(path, longest, box)
    if image is not None:
        return image
    img = load_image(path, draft_size=longest)
    natural = f"{img.width}x{img.height}"  # after a JPEG draft: as close as PIL tells cheaply
    size = _fitted(img.width, img.height, longest, box)
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS if size[0] < img.width else Image.Resampling.BICUBIC)
    image = pil_to_qimage(img)
    image.setText(NATURAL, natural)
    return image


_plugins_loaded = False


def load_image_plugins() -> None:
    """Load Qt's image format plugins once, in the GUI thread, before any loader thread runs:
    loader threads that made the first QImageReaders at the same time crashed (SIGSEGV) now
    and then in tests that open a folder and paint the page at once."""
    global _plugins_loaded
    if not _plugins_loaded:
        QImageReader.supportedImageFormats()
        _plugins_loaded = True


class _Signals(QObject):
    done = Signal(str, object)  # path, QImage | str (the error reason)
    job_done = Signal(object)  # the _LoadJob


class _LoadJob(QRunnable):
    """Loads a few images in turn. Batches keep QThreadPool.start() calls rare: each one hands
    the GIL to a pool thread, and the GUI thread then waits a switch interval to get it back."""

    def __init__(self, paths: list[Path], longest: int, box: tuple[int, int] | None,
                 signals: _Signals) -> None:
        super().__init__()
        self.paths, self.longest, self.box, self.signals = paths, longest, box, signals

    def run(self) -> None:
        for path in self.paths:
            try:
                result: QImage | str = load_scaled(path, self.longest, self.box)
            except CaptionerError as exc:
                result = reason_of(exc)
            except Exception as exc:  # noqa: BLE001 - never let a decoder bug kill a pool thread
                result = f"cannot show this image ({exc})"
            self.signals.done.emit(str(path), result)
        self.signals.job_done.emit(self)


class ImageLoader(QObject):
    """Loads scaled images in a small thread pool, LIFO, at most one request per path.

    Requests made while painting are only collected; they are dispatched on the next loop turn,
    in batches of up to `batch` images per job.
    """

    loaded = Signal(object, QImage)  # path, image
    failed = Signal(object, str)  # path, reason

    def __init__(self, longest: int, threads: int = 2, batch: int = 6, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.longest, self.batch = longest, batch
        self.box: tuple[int, int] | None = None  # fit images to this size (the preview's)
        load_image_plugins()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._pool.setExpiryTimeout(-1)  # keep the few threads: starting one costs milliseconds
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done)
        self._signals.job_done.connect(self._on_job_done)
        self._stack: list[Path] = []
        self._queued: set[Path] = set()
        self._running: set[Path] = set()
        self._jobs: set[_LoadJob] = set()
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.setInterval(0)
        self._later.timeout.connect(self._dispatch)

    def request(self, path: Path) -> None:
        if path in self._running:
            return
        if path in self._queued:
            self._stack.remove(path)  # move to the top: it was asked for again, so it is visible
        self._queued.add(path)
        self._stack.append(path)
        if not self._later.isActive():
            self._later.start()

    def forget(self) -> None:
        """Drop queued requests (the list was cleared); running ones finish and are ignored."""
        self._stack.clear()
        self._queued.clear()

    def pending(self) -> int:
        return len(self._stack) + len(self._running)

    def _dispatch(self) -> None:
        while self._stack and len(self._jobs) < self._pool.maxThreadCount():
            paths = [self._stack.pop() for _ in range(min(self.batch, len(self._stack)))]
            self._queued.difference_update(paths)
            self._running.update(paths)
            job = _LoadJob(paths, self.longest, self.box, self._signals)
            job.setAutoDelete(False)  # Python keeps it in _jobs until it reports back
            self._jobs.add(job)
            self._pool.start(job)

    def _on_done(self, path_text: str, result: object) -> None:
        path = Path(path_text)
        self._running.discard(path)
        if isinstance(result, QImage):
            self.loaded.emit(path, result)
        else:
            self.failed.emit(path, str(result))

    def _on_job_done(self, job: _LoadJob) -> None:
        self._jobs.discard(job)
        self._dispatch()

    def shutdown(self) -> None:
        self.forget()
        self._pool.waitForDone(3000)


class ThumbnailCache(QObject):
    """Path -> QPixmap, at most `capacity` kept, least recently used dropped first."""

    ready = Signal(object)  # path
    failed = Signal(object, str)  # path, reason

    def __init__(self, size: int = 128, capacity: int = 1500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size, self.capacity = size, capacity
        self._pixmaps: OrderedDict[Path, QPixmap] = OrderedDict()
        self._broken: dict[Path, str] = {}
        self._loader = ImageLoader(self._decode_size(size), threads=2, parent=self)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self._on_failed)

    @staticmethod
    def _decode_size(size: int) -> int:
        return size  # exactly the cell's size: the grid then blits without rescaling

    def get(self, path: Path) -> QPixmap | None:
        """The thumbnail if cached (and mark it used), else None and a background request."""
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path not in self._broken:
            self._loader.request(path)
        return None

    def broken_reason(self, path: Path) -> str | None:
        return self._broken.get(path)

    def set_size(self, size: int) -> None:
        """A new zoom level reloads thumbnails at the new size (visible ones first)."""
        if size != self.size:
            self.size = size
            self._loader.longest = self._decode_size(size)
            self._loader.forget()
            self._pixmaps.clear()

    def invalidate(self, path: Path) -> None:
        self._pixmaps.pop(path, None)
        self._broken.pop(path, None)

    def clear(self) -> None:
        self._loader.forget()
        self._pixmaps.clear()
        self._broken.clear()

    def pending(self) -> int:
        return self._loader.pending()

    def shutdown(self) -> None:
        self._loader.shutdown()

    def _on_loaded(self, path: Path, image: QImage) -> None:
        self._pixmaps[path] = QPixmap.fromImage(image)
        while len(self._pixmaps) > self.capacity:
            self._pixmaps.popitem(last=False)
        self.ready.emit(path)

    def _on_failed(self, path: Path, reason: str) -> None:
        self._broken[path] = reason
        self.failed.emit(path, reason)
