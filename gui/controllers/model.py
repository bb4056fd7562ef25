"""The model bundle's lifetime: loading it in the background, the caption process that serves
batches, and which bundle the settings remember.

A bundle that cannot be used never takes away the model that works, and is never remembered
as the one to use: the settings keep naming the bundle in use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal

from captioner.bundle import QUALITY
from captioner.captioner import Captioner
from captioner.service import CaptionService
from gui.settings import AppSettings, CaptionQuality, has_quality_variant
from gui.tasks import CaptionBackend, LoadedModel, ModelLoadWorker

Log = Callable[[str, str], None]


class ModelState(Enum):
    """Where the model is; the window's banner, label and actions follow it."""

    NONE = "none"
    LOADING = "loading"
    READY = "ready"
    ERROR = "error"


class ModelController(QObject):
    state_changed = Signal(object)  # ModelState
    switching = Signal()  # a new bundle is about to load: running batches should stop
    message = Signal(str, int)  # a status-bar line and how long to show it (ms)

    def __init__(self, settings: AppSettings, store: QSettings, log: Log, in_use: Callable[[], bool],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings, self.store, self.log = settings, store, log
        self.in_use = in_use  # whether a batch is reading from the caption process
        self.captioner: Captioner | None = None
        self.service: CaptionService | None = None  # the model in a child process, for batches
        self.state, self.text = ModelState.NONE, ""
        self._retiring: list[CaptionService] = []
        self._worker: ModelLoadWorker | None = None

    def bundle(self) -> Path | None:
        return self.captioner.bundle.path if self.captioner is not None else None

    def load(self, bundle: Path | None = None) -> None:
        """Load the bundle in the background; the window stays usable without a model."""
        path = Path(bundle) if bundle is not None else self.settings.bundle_path()
        if not (path / "manifest.json").is_file():
            reason = (f"model bundle not found: {path}" if not path.exists()
                      else f"{path} has no manifest.json")
            if not self._keep_working_model(reason):
                self._set_state(ModelState.NONE,
                                f"No model loaded — open a bundle. (There is no model bundle at {path}.)")
            return
        self.switching.emit()
        worker = ModelLoadWorker(path, self.settings.provider, self._variant(path))
        self._worker = worker
        worker.item.connect(lambda loaded, w=worker: self._on_loaded(w, loaded))
        worker.failed.connect(lambda text, w=worker: self._on_failed(w, text))
        self._set_state(ModelState.LOADING, f"Loading model from {path} …")
        worker.start()

    def _variant(self, bundle: Path) -> str:
        """The variant the Caption quality setting asks for in this bundle: its best-quality
        ensemble for "best" where it has one, else the bundle's own choice ("auto")."""
        if self.settings.caption_quality is not CaptionQuality.BEST:
            return "auto"
        if has_quality_variant(bundle):
            return QUALITY
        self.log(f"{bundle.name} has no best-quality variant; captioning with its default one", "info")
        return "auto"

    def _on_loaded(self, worker: ModelLoadWorker, loaded: LoadedModel) -> None:
        if worker is not self._worker:
            self.retire(loaded.service)  # a newer request superseded this one
            return
        captioner = self.captioner = loaded.captioner
        self.retire(self.service)
        self.service = loaded.service
        where = "in a separate process" if loaded.service else "in a thread"
        self._remember(captioner.bundle.path)
        self.log(f"model {captioner.name} loaded from {worker.bundle} ({captioner.provider.value.upper()}, "
                 f"{captioner.variant}); batches run {where}", "info")
        if loaded.note:
            self.log(loaded.note, "warning")
        self._set_state(ModelState.READY, "")

    def _on_failed(self, worker: ModelLoadWorker, text: str) -> None:
        if worker is not self._worker or self._keep_working_model(text):
            return
        self.retire(self.service)
        self.service = None
        self.log(f"model not loaded: {text}", "error")
        self._set_state(ModelState.ERROR, f"No model loaded — the bundle could not be used: {text}")

    def _keep_working_model(self, reason: str) -> bool:
        """A bundle that cannot be used does not take away the model that works."""
        self._worker = None
        if self.captioner is None:
            return False
        self._remember(self.captioner.bundle.path)  # not the refused one (Settings saved it)
        self.log(f"model not loaded: {reason} — still using {self.captioner.name}", "error")
        self.message.emit(f"Model not loaded: {reason}", 10_000)
        self._set_state(ModelState.READY, "")
        return True

    def _remember(self, bundle: Path) -> None:
        if self.settings.bundle_path().resolve() != bundle.resolve():
            self.settings.bundle_dir = str(bundle)
            self.settings.save(self.store)

    def _set_state(self, state: ModelState, text: str) -> None:
        self.state, self.text = state, text
        self.state_changed.emit(state)

    def backend(self) -> CaptionBackend | None:
        """The caption process when it is alive, else the in-process captioner."""
        if self.service is not None and not self.service.alive():
            self.log("the caption process stopped; captioning in a thread from now on", "warning")
            self.service = None
        return self.service or self.captioner

    def retire(self, service: CaptionService | None) -> None:
        """Close a caption process that is no longer wanted, once no batch is reading from it."""
        if service is not None:
            self._retiring.append(service)
        if not self.in_use():
            retiring, self._retiring = self._retiring, []
            for old in retiring:  # close() waits for the child: not in the GUI thread
                threading.Thread(target=old.close, name="close-caption-process", daemon=True).start()

    def shutdown(self) -> None:
        for service in [*self._retiring, self.service]:
            if service is not None:
                service.close()
        self._retiring, self.service = [], None
