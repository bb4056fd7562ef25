"""The photo tab's background jobs, each a small `Worker` subclass.

Everything that touches the disk in bulk or runs the model happens here, never in the GUI
thread: scanning folders and reading sidecars, loading a bundle (onnxruntime session
creation takes seconds for a real model), captioning, and writing caption files (each write
fsyncs, which can take tens of milliseconds on a slow disk).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from captioner.captioner import Captioner, CaptionOptions, CaptionResult
from captioner.errors import CaptionerError, WriteError
from captioner.files import find_images
from captioner.images import is_image_path
from captioner.service import CaptionService
from captioner.session import Provider
from captioner.writers import Outcome, read_sidecar, write_sidecar
from gui.workers import Worker

CHILD_NICENESS = 0  # measured: nicer children caption 3x slower on a busy machine, gaps no better
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"})


@dataclass(frozen=True)
class Scanned:
    """One image found on disk with the caption stored beside it, if any."""

    path: Path
    sidecar: str | None
    error: str = ""  # an image-named path that cannot be used (a link loop): listed, flagged


class ScanWorker(Worker):
    """Find images under dropped paths (folders recursively) and read their sidecars.

    item: list[Scanned], in chunks, so a 10,000-image folder starts filling the grid at once.
    """

    chunk = 100  # rows added per GUI-thread turn: small enough never to stall it

    def __init__(self, paths: list[Path], recursive: bool = True) -> None:
        super().__init__("scan")
        self.paths, self.recursive = paths, recursive

    def work(self) -> None:
        named = [p for p in self.paths if not (p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)]
        for skipped in set(self.paths) - set(named):
            self.log(f"skipped {skipped.name}: a video (open videos in the Video tab)")
        found = find_images(named, recursive=self.recursive)
        flagged = [Scanned(p, None, reason) for p, reason in found.problems if is_image_path(p)]
        for path, reason in found.problems:
            if not is_image_path(path):  # a folder that cannot be read: said in the log only
                self.log(f"{path}: {reason}")
        total = len(found.images)
        for start in range(0, total, self.chunk):
            if self.is_cancelled():
                return
            chunk = found.images[start : start + self.chunk]
            self.emit_item([Scanned(p, read_sidecar(p)) for p in chunk])
            self.report(start + len(chunk), total)
        if flagged:
            self.emit_item(flagged)


@dataclass
class LoadedModel:
    captioner: Captioner  # in this process: the Video tab, and the fallback for batches
    service: CaptionService | None  # the same bundle in a child process, for batches
    note: str = ""  # why there is no service, if there is none


class ModelLoadWorker(Worker):
    """Load and verify a bundle here and in a caption process (in parallel).

    item: LoadedModel; failed: the bundle's one-line reason. Without a working child process
    (CAPTIONER_GUI_INPROCESS=1, or it failed to start) batches run in a thread instead. A
    `variant` asked for by name (the best-quality one) that cannot run falls back to "auto",
    the bundle's own choice, with a note: a setting never leaves the app without a model.
    """

    def __init__(self, bundle: Path, provider: Provider, variant: str = "auto") -> None:
        super().__init__("model loading")
        self.bundle, self.provider, self.variant = bundle, provider, variant

    def work(self) -> None:
        try:
            loaded = self._load(self.variant)
        except CaptionerError as exc:
            if self.variant == "auto":
                self.failed.emit(str(exc))
                return
            try:
                loaded = self._load("auto")
            except CaptionerError as again:
                self.failed.emit(str(again))
                return
            note = f"variant {self.variant} not used ({exc}); captioning with the bundle's default"
            notes = "; ".join(filter(None, [note, loaded.note]))
            loaded = LoadedModel(loaded.captioner, loaded.service, notes)
        self.emit_item(loaded)

    def _load(self, variant: str) -> LoadedModel:
        service, note = None, "in-process captioning (CAPTIONER_GUI_INPROCESS is set)"
        if not os.environ.get("CAPTIONER_GUI_INPROCESS"):
            try:
                niceness = int(os.environ.get("CAPTIONER_GUI_NICE", CHILD_NICENESS))
                service, note = CaptionService(self.bundle, provider=self.provider, variant=variant,
                                               niceness=niceness), ""
            except Exception as exc:  # noqa: BLE001 - no child process: fall back to a thread
                note = f"no caption process ({exc}); captioning in a thread"
        try:
            captioner = Captioner(self.bundle, provider=self.provider, variant=variant)
        except CaptionerError:
            if service is not None:
                service.close()
            raise
        if service is not None:
            try:
                service.wait_ready()
            except CaptionerError as exc:
                service, note = None, f"no caption process ({exc}); captioning in a thread"
        return LoadedModel(captioner, service, note)


class CaptionBackend(Protocol):
    """What captions a batch of files or a video's frames: a Captioner (in a thread) or a
    CaptionService (child process)."""

    def caption_files(self, paths: Iterable[Path], options: CaptionOptions | None = None,
                      batch_size: int = 16) -> Iterator[tuple[Path, CaptionResult | CaptionerError]]: ...

    def caption_images(self, images: list[Image.Image], options: CaptionOptions | None = None
                       ) -> list[CaptionResult]: ...


class CaptionWorker(Worker):
    """Caption files in batches. item: (path, CaptionResult | CaptionerError), in input order."""

    def __init__(self, backend: CaptionBackend, paths: list[Path], options: CaptionOptions,
                 batch_size: int = 8) -> None:
        super().__init__("captioning")
        self.backend, self.paths = backend, paths
        self.options, self.batch_size = options, batch_size
        self.done = 0

    def cancel(self) -> None:
        super().cancel()
        if isinstance(self.backend, CaptionService):
            self.backend.cancel()  # a caption process stops at once; a thread stops at the next image

    def work(self) -> None:
        total = len(self.paths)
        self.report(0, total, force=True)
        results = self.backend.caption_files(self.paths, self.options, self.batch_size)
        try:
            for path, result in results:
                self.done += 1
                self.emit_item((path, result))
                self.report(self.done, total)
                if self.is_cancelled():
                    return
        finally:
            if isinstance(results, Generator):
                results.close()  # stops the prefetch of the next batch (or the child's run)


@dataclass(frozen=True)
class WriteJob:
    """One caption to write somewhere for one image (a sidecar file, the photo's metadata)."""

    image: Path
    text: str
    overwrite: bool


@dataclass(frozen=True)
class WriteOutcome:
    job: WriteJob
    written: bool
    error: str = ""  # why it was not written, when it was not
    warning: str = ""  # written, but worth saying (e.g. longer than most tools keep)


class WriteWorker(Worker):
    """Write each job with `write_one`. item: WriteOutcome per job; one failure never stops
    the rest. Subclasses say where the text goes and what "appeared meanwhile" means."""

    cancellable = True
    appeared_meanwhile = "the text appeared meanwhile; kept it"

    def __init__(self, jobs: list[WriteJob], name: str) -> None:
        super().__init__(name)
        self.jobs = jobs

    def work(self) -> None:
        self.report(0, len(self.jobs), force=True)
        for done, job in enumerate(self.jobs, 1):
            if self.cancellable and self.is_cancelled():
                return
            self.emit_item(self.write(job))
            self.report(done, len(self.jobs))

    @classmethod
    def write(cls, job: WriteJob) -> WriteOutcome:
        warnings: list[str] = []
        try:
            outcome = cls.write_one(job, warnings)
        except WriteError as exc:
            return WriteOutcome(job, False, exc.reason)
        except CaptionerError as exc:
            return WriteOutcome(job, False, str(exc))
        warning = warnings[0] if warnings else ""
        if outcome is Outcome.SKIPPED_EXISTS:
            return WriteOutcome(job, False, cls.appeared_meanwhile, warning)
        return WriteOutcome(job, True, warning=warning)

    @staticmethod
    def write_one(job: WriteJob, warnings: list[str]) -> Outcome:
        raise NotImplementedError


class SaveWorker(WriteWorker):
    """Write sidecar files atomically; a save that started is never cancelled half-way."""

    cancellable = False
    appeared_meanwhile = "a caption file appeared meanwhile; kept it"

    def __init__(self, jobs: list[WriteJob]) -> None:
        super().__init__(jobs, "saving")

    @staticmethod
    def write_one(job: WriteJob, warnings: list[str]) -> Outcome:
        return write_sidecar(job.image, job.text, overwrite=job.overwrite)

