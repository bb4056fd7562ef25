"""The main window: menus and shortcuts, the model, drops, the status bar, and the tabs.

The Photos tab (gui/photos_page.py) holds the captioning workspace; a Video tab is mounted
when gui.video.panel.VideoPanel can be imported, so the video work plugs in without touching
this file. All slow work runs in workers (gui/workers.py); this class only reacts to them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QMimeData, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from captioner.captioner import Captioner
from captioner.images import IMAGE_EXTENSIONS
from captioner.service import CaptionService
from captioner.writers import CaptionRecord, write_csv, write_json
from gui.actions import MENUS, SPECS, TOOLBAR, key_sequences, make_action
from gui.controllers.captioning import CaptionController, RunStats
from gui.controllers.metadata import install as install_alt_text
from gui.controllers.saving import OverwritePolicy, SaveController
from gui.dialogs.settings_dialog import SettingsDialog
from gui.models.items import ImageItem, Source
from gui.photos_page import PhotosPage
from gui.settings import AppSettings, settings_store
from gui.tasks import CaptionBackend, LoadedModel, ModelLoadWorker, Scanned, ScanWorker
from gui.widgets.log_pane import LogPane
from gui.workers import cancel_all

THUMB_STEPS = (64, 96, 128, 160, 200, 256, 320)


class MainWindow(QMainWindow):
    model_state_changed = Signal(str)  # "none", "loading", "ready", "error"
    scan_finished = Signal(int)  # images added by one open/drop

    def __init__(self, store: QSettings | None = None, load_model: bool = True) -> None:
        super().__init__()
        self.store = store if store is not None else settings_store()
        self.settings = AppSettings.load(self.store)
        self.captioner: Captioner | None = None
        self.service: CaptionService | None = None  # the model in a child process, for batches
        self._retiring: list[CaptionService] = []
        self.model_state, self.model_message = "none", ""
        self.confirm_close = True
        self.video_panel: QWidget | None = None
        self.actions_by_name: dict[str, QAction] = {}
        self._model_worker: ModelLoadWorker | None = None
        self._scans: list[ScanWorker] = []
        self._session_policy = OverwritePolicy(self, scope="session")
        self.log_pane = LogPane()
        self.page = PhotosPage(self.settings, self.log, self)
        self.saver = SaveController(self.page.model, self.log, self)
        self.captions = CaptionController(self.page.model, self.page.history, self.saver, self.log, self)
        self._build_ui()
        self._build_actions()
        self._connect()
        self.alt_text = install_alt_text(self)  # File ▸ Write alt text into photos
        self._restore_geometry()
        self.setAcceptDrops(True)
        self._install_drop_filters()
        self._update_title()
        if load_model:
            self.load_model()
        else:
            self._set_model_state("none", "No model loaded — open a bundle (File ▸ Open model bundle…)")

    # --- logging ---------------------------------------------------------------------------
    def log(self, text: str, level: str = "info") -> None:
        self.log_pane.log(text, level)
        if level == "error":
            self.statusBar().showMessage(f"⚠ {text}", 8000)

    # --- layout ----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.setWindowTitle("Captioner")
        self.resize(1500, 920)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_banner())
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.page, "Photos")
        self._mount_video_tab()
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("logDock")
        self.log_dock.setWidget(self.log_pane)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [120], Qt.Orientation.Vertical)
        self._build_status_bar()

    def _build_banner(self) -> QFrame:
        """A strip above the tabs that says why captioning is not available, with the fix."""
        self.banner = QFrame()
        self.banner.setObjectName("modelBanner")
        self.banner.setStyleSheet(
            "#modelBanner { background: #fff3cd; border-bottom: 1px solid #e0c060; }"
            "#modelBanner QLabel { color: #5a4300; }"
        )
        row = QHBoxLayout(self.banner)
        row.setContentsMargins(10, 6, 10, 6)
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        row.addWidget(self.banner_label, 1)
        button = QPushButton("Open model bundle…")
        button.clicked.connect(lambda: self.open_bundle())
        row.addWidget(button)
        self.banner.hide()
        return self.banner

    def _mount_video_tab(self) -> None:
        """Add the Video tab when gui.video.panel provides VideoPanel(parent, captioner_getter)."""
        try:
            module = importlib.import_module("gui.video.panel")
        except ModuleNotFoundError as exc:
            if exc.name not in ("gui.video", "gui.video.panel"):
                self.log(f"video tab unavailable: {exc}", "warning")
            return
        except Exception as exc:  # noqa: BLE001 - a broken optional tab must not stop the app
            self.log(f"video tab unavailable: {exc.__class__.__name__}: {exc}", "warning")
            return
        getter: Callable[[], Captioner | None] = lambda: self.captioner
        self.video_panel = module.VideoPanel(self.tabs, getter)
        self.tabs.addTab(self.video_panel, "Video")

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setObjectName("captionProgress")
        self.progress.setMinimumWidth(380)
        self.progress.setMaximumHeight(18)
        self.progress.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.hide()
        self.speed_label = QLabel("")
        self.speed_label.setObjectName("speedLabel")
        self.model_label = QLabel()
        self.model_label.setObjectName("modelLabel")
        for widget in (self.progress, self.cancel_button):
            bar.addPermanentWidget(widget)
        for label in (self.speed_label, self.model_label):
            bar.addPermanentWidget(_separated(label))

    # --- actions ---------------------------------------------------------------------------
    def _slots(self) -> dict[str, Callable[[], object]]:
        page = self.page
        slots: dict[str, Callable[[], object]] = {
            "open_images": self.choose_images, "open_folder": self.choose_folder,
            "open_bundle": self.open_bundle, "save": self.save_selected, "save_all": self.save_all,
            "export_json": lambda: self.export("json"), "export_csv": lambda: self.export("csv"),
            "remove": self.remove_selected, "clear": self.clear_list, "quit": self.close,
            "revert": self.revert_selected, "settings": self.open_settings,
            "caption_selected": self.caption_selected, "caption_all": self.caption_all,
            "caption_uncaptioned": self.caption_uncaptioned, "cancel": self.cancel_run, "escape": self.escape,
            "accept": self.accept_current, "next": lambda: page.step(1), "previous": lambda: page.step(-1),
            "next_uncaptioned": self.go_next_uncaptioned, "find": self.focus_filter,
            "word_next": lambda: page.step_word(1), "word_previous": lambda: page.step_word(-1),
            "play": page.strip.toggle_play, "bigger": lambda: self.zoom(1), "smaller": lambda: self.zoom(-1),
            "spotlight": self.toggle_spotlight, "shortcuts": self.show_shortcuts, "about": self.show_about,
        }
        for rank in range(1, 10):
            slots[f"alt{rank}"] = partial(page.pick_alternative, rank)
        return slots

    def _build_actions(self) -> None:
        slots = self._slots()
        for spec in SPECS:
            self.actions_by_name[spec.name] = make_action(self, spec, slots[spec.name])
        group = self.page.history.group
        undo, redo = group.createUndoAction(self, "&Undo"), group.createRedoAction(self, "&Redo")
        undo.setShortcuts(key_sequences((QKeySequence.StandardKey.Undo,)))
        redo.setShortcuts(key_sequences((QKeySequence.StandardKey.Redo, "Ctrl+Y")))
        log = self.log_dock.toggleViewAction()
        for name, action in (("undo", undo), ("redo", redo), ("log", log)):
            action.setObjectName(name)
            self.addAction(action)
            self.actions_by_name[name] = action
        log.setShortcut(QKeySequence("Ctrl+L"))
        spotlight = self.actions_by_name["spotlight"]
        spotlight.setCheckable(True)
        spotlight.setChecked(self.settings.overlay_style == "spotlight")
        for title, names in MENUS:
            menu = self.menuBar().addMenu(title)
            for entry in names:
                menu.addSeparator() if entry is None else menu.addAction(self.actions_by_name[entry])
        self._build_toolbar()
        self._build_grid_menu()
        self.page.add_buttons([self.actions_by_name[n] for n in ("accept", "save", "caption_selected")])
        self.page.editor.passthrough = [seq for action in self.actions_by_name.values()
                                        for seq in action.shortcuts()]

    def _build_grid_menu(self) -> None:
        """Right-click on the grid: the commands that act on the selected images."""
        grid = self.page.grid
        grid.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for name in ("caption_selected", "save", "revert", None, "remove"):
            if name is None:
                separator = QAction(grid)
                separator.setSeparator(True)
                grid.addAction(separator)
            else:
                grid.addAction(self.actions_by_name[name])

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in TOOLBAR:
            bar.addSeparator() if name is None else bar.addAction(self.actions_by_name[name])
        self.addToolBar(bar)

    def _connect(self) -> None:
        self.page.counts_changed.connect(self._schedule_counts)
        self.page.current_changed.connect(self._on_current_changed)
        self.page.grid.zoom_requested.connect(self.zoom)
        self.page.editor.accept_requested.connect(self.accept_current)
        self.cancel_button.clicked.connect(self.cancel_run)
        self.captions.started.connect(self._on_run_started)
        self.captions.progress.connect(self._on_run_progress)
        self.captions.result_applied.connect(self._on_result_applied)
        self.saver.item_saved.connect(self._on_result_applied)
        self.captions.finished.connect(self._on_run_finished)
        self._progress_state = (0, 0, 0.0)
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(250)
        self._progress_timer.timeout.connect(self._show_progress)
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(120)
        self._counts_timer.timeout.connect(self._update_counts)
        self._update_counts()
        self._update_actions()

    # --- the model -------------------------------------------------------------------------
    def load_model(self, bundle: Path | None = None) -> None:
        """Load the bundle in the background; the window stays usable without a model."""
        path = Path(bundle) if bundle is not None else self.settings.bundle_path()
        if not (path / "manifest.json").is_file():
            reason = (f"model bundle not found: {path}" if not path.exists()
                      else f"{path} has no manifest.json")
            if not self._keep_working_model(reason):
                self._set_model_state(
                    "none", f"No model loaded — open a bundle. (There is no model bundle at {path}.)"
                )
            return
        if self.captions.is_running():
            self.log("stopping the running batch to switch models", "warning")
            self.captions.cancel()
        worker = ModelLoadWorker(path, self.settings.provider)
        self._model_worker = worker
        worker.item.connect(lambda loaded, w=worker: self._on_model_loaded(w, loaded))
        worker.failed.connect(lambda text, w=worker: self._on_model_failed(w, text))
        self._set_model_state("loading", f"Loading model from {path} …")
        worker.start()

    def _on_model_loaded(self, worker: ModelLoadWorker, loaded: LoadedModel) -> None:
        if worker is not self._model_worker:
            self._retire(loaded.service)  # a newer request superseded this one
            return
        captioner = loaded.captioner
        self.captioner = captioner
        self._retire(self.service)
        self.service = loaded.service
        where = "in a separate process" if loaded.service else "in a thread"
        self._remember_bundle(Path(worker.bundle))
        self.log(f"model {captioner.name} loaded from {worker.bundle} ({captioner.provider.upper()}, "
                 f"{captioner.variant}); batches run {where}")
        if loaded.note:
            self.log(loaded.note, "warning")
        self._set_model_state("ready", "")

    def _on_model_failed(self, worker: ModelLoadWorker, text: str) -> None:
        if worker is not self._model_worker:
            return
        if self._keep_working_model(text):
            return
        self._retire(self.service)
        self.service = None
        self.log(f"model not loaded: {text}", "error")
        self._set_model_state("error", f"No model loaded — the bundle could not be used: {text}")

    def _remember_bundle(self, bundle: Path) -> None:
        if self.settings.bundle_path().resolve() != bundle.resolve():
            self.settings.bundle_dir = str(bundle)
            self.settings.save(self.store)

    def _keep_working_model(self, reason: str) -> bool:
        """A bundle that cannot be used does not take away the model that works."""
        self._model_worker = None
        if self.captioner is None:
            return False
        root = getattr(self.captioner.bundle, "root", None)
        if root is not None:  # the settings keep naming the bundle in use
            self._remember_bundle(Path(root))
        self.log(f"model not loaded: {reason} — still using {self.captioner.name}", "error")
        self.statusBar().showMessage(f"Model not loaded: {reason}", 10_000)
        self._set_model_state("ready", "")
        return True

    def _retire(self, service: CaptionService | None) -> None:
        """Close a caption process that is no longer wanted, once no batch is reading from it."""
        if service is not None:
            self._retiring.append(service)
        if not self.captions.is_running():
            retiring, self._retiring = self._retiring, []
            for old in retiring:  # close() waits for the child: not in the GUI thread
                threading.Thread(target=old.close, name="close-caption-process", daemon=True).start()

    def _backend(self) -> CaptionBackend | None:
        """The caption process when it is alive, else the in-process captioner."""
        if self.service is not None and not self.service.alive():
            self.log("the caption process stopped; captioning in a thread from now on", "warning")
            self.service = None
        return self.service or self.captioner

    def _set_model_state(self, state: str, message: str) -> None:
        self.model_state, self.model_message = state, message
        self.banner_label.setText(message)
        self.banner.setVisible(state != "ready")
        if state == "ready" and self.captioner is not None:
            self.model_label.setText(f"Model: {self.captioner.name} · {self.captioner.provider.upper()}")
            self.model_label.setToolTip(
                str(self.captioner.bundle.root) if hasattr(self.captioner.bundle, "root") else ""
            )
        else:
            self.model_label.setText(
                {"loading": "Loading model…"}.get(state, "No model loaded — open a bundle")
            )
        self._update_actions()
        self.model_state_changed.emit(state)

    def open_bundle(self, folder: Path | None = None) -> None:
        if folder is None:
            start = str(self.settings.bundle_path())
            chosen = QFileDialog.getExistingDirectory(self, "Open a model bundle folder", start)
            if not chosen:
                return
            folder = Path(chosen)
        self.load_model(folder)  # remembered in the settings once it has loaded

    # --- opening images ----------------------------------------------------------------------
    def open_paths(self, paths: list[Path]) -> ScanWorker | None:
        """Add files and folders (recursively); the grid fills as the scan reports chunks."""
        paths = [Path(p) for p in paths]
        if not paths:
            return None
        self.tabs.setCurrentWidget(self.page)
        self._session_policy = OverwritePolicy(self, scope="session")
        scan = ScanWorker(paths, recursive=True)
        added: list[ImageItem] = []
        scan.item.connect(lambda chunk: self._on_scanned(chunk, added))
        scan.message.connect(lambda text: self.log(text, "warning"))
        scan.failed.connect(lambda text: self.log(text, "error"))
        scan.finished.connect(lambda _c, s=scan: self._on_scan_finished(s, paths, added))
        self._scans.append(scan)
        scan.start()
        return scan

    def _on_scanned(self, chunk: list[Scanned], added: list[ImageItem]) -> None:
        fresh = self.page.model.add((s.path, s.sidecar) for s in chunk)
        added.extend(fresh)
        if fresh and self.page.current_item() is None:
            self.page.select_item(fresh[0])

    def _on_scan_finished(self, scan: ScanWorker, paths: list[Path], added: list[ImageItem]) -> None:
        self._scans.remove(scan)
        with_captions = sum(i.saved is not None for i in added)
        folders = {i.path.parent for i in added} or {p if p.is_dir() else p.parent for p in paths}
        where = next(iter(folders)).name if len(folders) == 1 else f"{len(folders)} folders"
        self.log(f"opened {len(added)} new image(s) from {where}; {with_captions} already had a caption file")
        self._update_title()
        if added and self.settings.auto_caption_on_drop and self.captioner is not None:
            self._caption(added)
        self.scan_finished.emit(len(added))

    def choose_images(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", "", f"Images ({patterns});;All files (*)"
        )
        self.open_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_paths([Path(folder)])

    # --- drag and drop -----------------------------------------------------------------------
    @staticmethod
    def dropped_paths(mime: QMimeData) -> list[Path]:
        return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:  # type: ignore[override]
        if self.dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self.dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def _install_drop_filters(self) -> None:
        """Children that take drops themselves (text boxes) would paste the file's URL; route
        file drops on them to the window instead, so 'drop anywhere' holds. The Video tab
        keeps its own drops."""
        for widget in self.findChildren(QWidget):
            inside_video = self.video_panel is not None and (
                widget is self.video_panel or self.video_panel.isAncestorOf(widget)
            )
            if widget.acceptDrops() and widget is not self and not inside_video:
                widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            paths = self.dropped_paths(event.mimeData())  # type: ignore[attr-defined]
            if paths:
                event.acceptProposedAction()  # type: ignore[attr-defined]
                if kind == QEvent.Type.Drop:
                    self.open_paths(paths)
                return True
        return super().eventFilter(watched, event)

    # --- captioning --------------------------------------------------------------------------
    def _caption(self, items: list[ImageItem]) -> bool:
        if self.captioner is None:
            self.statusBar().showMessage("No model loaded — open a bundle first", 6000)
            self.log("cannot caption: no model loaded — open a bundle (File ▸ Open model bundle…)", "warning")
            return False
        items = [i for i in items if not (i.error and not i.error.startswith("not saved"))]
        if not items:
            self.statusBar().showMessage("Nothing to caption", 4000)
            return False
        s, backend = self.settings, self._backend()
        assert backend is not None
        return self.captions.start(items, backend, s.caption_options(), s.batch_size, s.auto_save)

    def caption_selected(self) -> None:
        self._caption(self.page.selected_items())

    def caption_all(self) -> None:
        self._caption(self.page.model.items())

    def caption_uncaptioned(self) -> None:
        self._caption([i for i in self.page.model.items() if not i.has_caption])

    def cancel_run(self) -> None:
        if self.captions.is_running():
            self.captions.cancel()
            self.cancel_button.setEnabled(False)
            self.progress.setFormat("Cancelling…")

    def escape(self) -> None:
        """Esc: unpin an attention word first (cheap to redo), only then stop a running batch."""
        if self.page.strip.is_playing():
            self.page.strip.stop()
            self.page.pin_word(-1)
        elif self.page.pinned_word() >= 0:
            self.page.pin_word(-1)
        else:
            self.cancel_run()

    def _on_run_started(self, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat(f"Captioning 0 / {total}")
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self._update_actions()

    def _on_run_progress(self, done: int, total: int, rate: float) -> None:
        """Shown at most 4 times a second: QProgressBar.setValue repaints synchronously."""
        self._progress_state = (done, total, rate)
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _show_progress(self) -> None:
        done, total, rate = self._progress_state
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        eta = (total - done) / rate if rate > 0 else 0
        self.progress.setFormat(f"{done} / {total} captioned · {eta:.0f} s left")
        self.speed_label.setText(f"{rate:.1f} images/s")

    def _on_result_applied(self, item: ImageItem) -> None:
        if item is self.page.current_item():
            self.page.refresh_result()
            self.page.refresh_state()

    def _on_run_finished(self, stats: RunStats, cancelled: bool) -> None:
        self._progress_timer.stop()
        self.progress.hide()
        self.cancel_button.hide()
        verb = "cancelled after" if cancelled else "captioned"
        summary = (
            f"{verb} {stats.done} of {stats.total} image(s) in {stats.seconds:.1f} s ({stats.rate:.1f} img/s)"
        )
        if stats.failed:
            summary += f"; {stats.failed} could not be read (see the log)"
        self.log(summary, "warning" if stats.failed else "info")
        self.statusBar().showMessage(summary, 10000)
        self.speed_label.setText(f"Last run: {stats.rate:.1f} images/s")
        self._update_actions()
        self._retire(None)  # close caption processes replaced during the run

    # --- review loop --------------------------------------------------------------------------
    def accept_current(self) -> None:
        """Keep this caption (the model's best if there is none yet), save it, go on."""
        item = self.page.current_item()
        if item is None:
            return
        if not item.has_caption and item.result is not None and item.result.text:
            self.page.history.set_caption(item, item.result.text, Source.MODEL, "Accept")
        if item.dirty:
            self.saver.save([item], self._session_policy)
        if not self.page.step(1):
            self.statusBar().showMessage("That was the last image in the list", 4000)

    def go_next_uncaptioned(self) -> None:
        if self.page.next_uncaptioned() is None:
            self.statusBar().showMessage("Every image in the list has a caption", 5000)

    def focus_filter(self) -> None:
        self.tabs.setCurrentWidget(self.page)
        self.page.filter_edit.setFocus()
        self.page.filter_edit.selectAll()

    def _on_current_changed(self, item: ImageItem | None, previous: ImageItem | None) -> None:
        """With auto-save on, leaving an image with a typed caption saves it."""
        if self.settings.auto_save and previous is not None and previous.user_edit_pending:
            self.saver.save([previous], self._session_policy)
        self._update_actions()

    # --- saving and exporting -------------------------------------------------------------------
    def save_selected(self) -> None:
        items = self.page.selected_items()
        policy = self._session_policy if len(items) == 1 else OverwritePolicy(self)
        if not any(i.dirty for i in items):
            self.statusBar().showMessage("Nothing new to save in the selection", 4000)
        self.saver.save(items, policy)

    def save_all(self) -> None:
        items = [i for i in self.page.model.items() if i.dirty]
        if not items:
            self.statusBar().showMessage("Every caption is saved", 4000)
            return
        self.saver.save(items, OverwritePolicy(self))

    def export(self, kind: str, target: Path | None = None) -> Path | None:
        """All captions in one JSON or CSV file (with scores and n-best where the model wrote them)."""
        if target is None:
            name, _ = QFileDialog.getSaveFileName(
                self, f"Export captions as {kind.upper()}", f"captions.{kind}", f"{kind.upper()} (*.{kind})"
            )
            if not name:
                return None
            target = Path(name)
        records = [self._record(i) for i in self.page.model.items() if i.has_caption]
        try:
            (write_json if kind == "json" else write_csv)(target, records, overwrite=True)
        except Exception as exc:  # noqa: BLE001 - WriteError and anything odd: tell, don't crash
            self.log(f"export to {target} failed: {exc}", "error")
            return None
        self.log(f"exported {len(records)} caption(s) to {target}")
        self.statusBar().showMessage(f"Exported {len(records)} captions to {target}", 6000)
        return target

    @staticmethod
    def _record(item: ImageItem) -> CaptionRecord:
        result, caption = item.result, item.caption.strip()
        from_model = result is not None and result.text == caption
        return CaptionRecord(
            item.path,
            caption,
            result.score if from_model and result else None,
            tuple(result.alternatives) if result is not None else (),
        )

    def revert_selected(self) -> None:
        for item in self.page.selected_items():
            if item.saved is not None and item.caption != item.saved:
                self.page.history.set_caption(item, item.saved, Source.DISK, "Revert to saved")

    def remove_selected(self) -> None:
        items = self.page.selected_items()
        unsaved = sum(i.dirty for i in items)
        if unsaved and not self._confirm(f"{unsaved} of these have unsaved captions. Remove them anyway?"):
            return
        self.page.history.forget(items)
        self.page.select_item(None)
        self.page.model.remove(items)
        self._update_title()

    def clear_list(self) -> None:
        unsaved = self.page.model.counts()["unsaved"]
        if unsaved and not self._confirm(f"{unsaved} caption(s) are unsaved. Clear the list anyway?"):
            return
        self.captions.cancel()
        self.page.clear()
        self._update_title()

    def _confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Captioner", question)
        return answer == QMessageBox.StandardButton.Yes

    # --- settings and view ------------------------------------------------------------------
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, new: AppSettings) -> None:
        """Adopt new settings in place (widgets hold this object) and reload what they affect."""
        old = AppSettings(**{f.name: getattr(self.settings, f.name) for f in fields(AppSettings)})
        for f in fields(AppSettings):
            setattr(self.settings, f.name, getattr(new, f.name))
        self.settings.save(self.store)
        if (new.bundle_path(), new.provider) != (old.bundle_path(), old.provider) or self.captioner is None:
            self.load_model()
        if (new.overlay_style, new.overlay_opacity) != (old.overlay_style, old.overlay_opacity):
            self.page.set_overlay_style(new.overlay_style, new.overlay_opacity)
            self.actions_by_name["spotlight"].setChecked(new.overlay_style == "spotlight")

    def toggle_spotlight(self) -> None:
        style = "spotlight" if self.actions_by_name["spotlight"].isChecked() else "heat"
        self.settings.overlay_style = style
        self.settings.save(self.store)
        self.page.set_overlay_style(style, self.settings.overlay_opacity)

    def zoom(self, direction: int) -> None:
        size = self.settings.thumbnail_size
        bigger = [s for s in THUMB_STEPS if s > size]
        smaller = [s for s in THUMB_STEPS if s < size]
        size = (bigger[0] if bigger else size) if direction > 0 else (smaller[-1] if smaller else size)
        self.settings.thumbnail_size = size
        self.settings.save(self.store)
        self.page.set_thumbnail_size(size)

    def show_shortcuts(self) -> None:
        rows = [
            (a.text().replace("&&", "&").replace("&", ""), " or ".join(s.toString() for s in a.shortcuts()))
            for a in self.actions_by_name.values()
            if a.shortcuts()
        ]
        body = "".join(f"<tr><td>{t}</td><td>&nbsp;&nbsp;<b>{k}</b></td></tr>" for t, k in rows)
        QMessageBox.information(
            self,
            "Keyboard shortcuts",
            f"<table>{body}</table>"
            "<p>In the caption: Enter accepts; hover a word to see where the model looked.</p>",
        )

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About Captioner",
            "<b>Captioner</b><br>Offline image captioning: a CNN encoder "
            "and an attention LSTM, run by onnxruntime.<br>Hover a word of a caption to see "
            "where the model looked when it wrote it.",
        )

    # --- state shown around the edges ---------------------------------------------------------
    def _schedule_counts(self) -> None:
        if not self._counts_timer.isActive():
            self._counts_timer.start()

    def _update_counts(self) -> None:
        c = self.page.model.counts()
        parts = [f"{c['total']} images", f"{c['captioned']} captioned"]
        if c["unsaved"]:
            parts.append(f"{c['unsaved']} unsaved")
        if c["errors"]:
            parts.append(f"{c['errors']} with problems")
        text = " · ".join(parts)
        self.page.count_label.setText(text)
        self.page.refresh_state()
        self._update_title()
        self._update_actions()

    def _update_title(self) -> None:
        items = self.page.model.items()
        folders = self.page.model.folders()
        where = (folders[0].name if len(folders) == 1 else f"{len(folders)} folders") if folders else ""
        unsaved = sum(i.dirty for i in items)
        title = (
            "Captioner" + (f" — {where}" if where else "") + (f"  (● {unsaved} unsaved)" if unsaved else "")
        )
        self.setWindowTitle(title)

    def _update_actions(self) -> None:
        has_model, has_items = self.captioner is not None, self.page.model.rowCount() > 0
        for name in ("caption_selected", "caption_all", "caption_uncaptioned"):
            action = self.actions_by_name[name]
            action.setEnabled(has_model and has_items)
            action.setToolTip(action.statusTip() if has_model else "No model loaded — open a bundle")
        self.actions_by_name["cancel"].setEnabled(self.captions.is_running())  # Esc always works
        for name in ("save", "save_all", "export_json", "export_csv", "remove", "clear"):
            self.actions_by_name[name].setEnabled(has_items)

    # --- lifetime --------------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        geometry, state = self.store.value("window/geometry"), self.store.value("window/state")
        splitter = self.store.value("window/splitter")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        if isinstance(splitter, QByteArray):
            self.page.splitter.restoreState(splitter)

    def closeEvent(self, event: QCloseEvent) -> None:
        unsaved = [i for i in self.page.model.items() if i.dirty]
        if unsaved and self.confirm_close:
            answer = QMessageBox.question(
                self,
                "Unsaved captions",
                f"{len(unsaved)} caption(s) are not saved. Save them before quitting?",
                QMessageBox.StandardButton.Save
                | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel,
            )
            if answer == QMessageBox.StandardButton.Cancel:
                event.ignore()
                return
            if answer == QMessageBox.StandardButton.Save:
                self.saver.save(unsaved, OverwritePolicy(self))
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop background work, finish started writes, remember the window."""
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/state", self.saveState())
        self.store.setValue("window/splitter", self.page.splitter.saveState())
        self.settings.save(self.store)
        self.captions.shutdown()
        for service in [*self._retiring, self.service]:
            if service is not None:
                service.close()
        self._retiring, self.service = [], None
        for scan in list(self._scans):
            scan.cancel()
        self.saver.shutdown()
        self.alt_text.shutdown()
        self.page.shutdown()
        cancel_all(5000)


def _separated(widget: QWidget) -> QWidget:
    """A status-bar field with a little breathing room."""
    widget.setContentsMargins(8, 0, 8, 0)
    return widget
