"""The main window: layout, the action table wired to the controllers, the tabs, and shutdown.

Each feature has its owner: the Photos tab's list, current photo, captioning and saving are
gui/controllers/photos.py's, the model bundle's lifetime gui/controllers/model.py's, training a
model on the saved captions gui/controllers/training.py's, the Video tab owns itself. This
class lays them out, maps each action name to one of their methods, and shows what they report
around the edges (title, banner, status bar).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from functools import partial
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from captioner.images import IMAGE_EXTENSIONS
from gui.actions import GRID_MENU
from gui.actions import install as install_actions
from gui.controllers.model import ModelController
from gui.controllers.photos import PhotosController
from gui.controllers.training import TrainingController
from gui.dialogs.find_replace import FindReplaceDialog
from gui.dialogs.help import show_about, show_shortcuts
from gui.dialogs.settings_dialog import SettingsDialog
from gui.drops import FileDrops
from gui.photos_page import PhotosPage
from gui.settings import AppSettings, app_data_dir, settings_store
from gui.tasks import ScanWorker
from gui.video.panel import VideoPanel
from gui.widgets.heatmap import OverlayStyle
from gui.widgets.log_pane import LogPane
from gui.widgets.model_banner import ModelBanner
from gui.widgets.run_status import RunStatus
from gui.workers import cancel_all

PREFERRED_SIZE = QSize(1500, 920)  # room for the grid, the preview and the caption pane


def fitted_size(available: QSize) -> QSize:
    """The first-start window size: the preferred one, shrunk to fit the screen's free area
    (a 1,400-pixel-wide screen cut the caption pane off), with a margin for the frame."""
    return PREFERRED_SIZE.boundedTo(QSize(int(available.width() * 0.95), int(available.height() * 0.92)))


class MainWindow(QMainWindow):
    def __init__(self, store: QSettings | None = None, load_model: bool = True) -> None:
        super().__init__()
        self.store = store if store is not None else settings_store()
        self.settings = AppSettings.load(self.store)
        self.confirm_close = True
        self.actions_by_name: dict[str, QAction] = {}
        self.log_pane = LogPane()
        self.photos = PhotosController(self.settings, self.log, self)
        self.captions, self.saver = self.photos.captions, self.photos.saver
        self.models = ModelController(self.settings, self.store, self.log, self.captions.is_running, self)
        self.photos.backend = self.models.backend
        self.training = TrainingController(self.photos.model.items, lambda: self.models.captioner,
                                           app_data_dir(self.store), self.log, self)
        self.page = PhotosPage(self.photos, self)
        self.video_panel = VideoPanel(self, self.models.backend)
        self.video_panel.model.low_confidence = self.settings.low_confidence
        self._build_ui()
        self._build_actions()
        self._connect()
        self._restore_geometry()
        self.drops = FileDrops(self)
        self.drops.install(self, keep_own=[self.video_panel])
        self.drops.dropped.connect(self.open_paths)
        self._show_counts()
        if load_model:
            self.models.load()

    def log(self, text: str, level: str = "info") -> None:
        self.log_pane.log(text, level)
        if level == "error":
            self.statusBar().showMessage(f"⚠ {text}", 8000)

    # --- layout ----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.setWindowTitle("Captioner")
        self.resize(fitted_size(self.screen().availableGeometry().size()))
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = ModelBanner(self.models)
        self.banner.open_requested.connect(lambda: self.open_bundle())
        layout.addWidget(self.banner)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.page, "Photos")
        self.tabs.addTab(self.video_panel, "Video")
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("logDock")
        self.log_dock.setWidget(self.log_pane)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [120], Qt.Orientation.Vertical)
        self.run_status = RunStatus(self.captions)
        self.model_label = self.banner.status
        self.statusBar().addPermanentWidget(self.run_status)
        self.statusBar().addPermanentWidget(self.model_label)

    # --- actions ---------------------------------------------------------------------------
    def _slots(self) -> dict[str, Callable[[], object]]:
        page, photos = self.page, self.photos
        slots: dict[str, Callable[[], object]] = {
            "open_images": self.choose_images, "open_folder": self.choose_folder,
            "open_bundle": self.open_bundle, "save": photos.save_selected, "save_all": photos.save_all,
            "export_json": lambda: self.export("json"), "export_csv": lambda: self.export("csv"),
            "write_alt_text": photos.write_alt_text, "remove": photos.remove_selected,
            "clear": photos.clear_list, "quit": self.close, "revert": photos.revert_selected,
            "replace": self.find_replace, "preview_zoom": page.preview.toggle_zoom,
            "tag_pane": lambda: page.tag_pane.setVisible(self.actions_by_name["tag_pane"].isChecked()),
            "settings": self.open_settings, "caption_selected": photos.caption_selected,
            "caption_all": photos.caption_all, "caption_uncaptioned": photos.caption_uncaptioned,
            "caption_all_replace": photos.caption_all_replacing, "cancel": self.run_status.cancel,
            "escape": lambda: page.escape(self.run_status.cancel), "accept": page.accept_and_next,
            "next": lambda: page.step(1), "previous": lambda: page.step(-1),
            "next_uncaptioned": page.go_next_uncaptioned, "find": self.focus_filter,
            "word_next": lambda: page.step_word(1),
            "word_previous": lambda: page.step_word(-1), "play": page.strip.toggle_play,
            "bigger": lambda: self.zoom(1), "smaller": lambda: self.zoom(-1),
            "spotlight": self.toggle_spotlight, "about": lambda: show_about(self),
            "train": self.training.open,
            "shortcuts": lambda: show_shortcuts(self, list(self.actions_by_name.values())),
        }
        for rank in range(1, 10):
            slots[f"alt{rank}"] = partial(page.pick_alternative, rank)
        return slots

    def _build_actions(self) -> None:
        self.actions_by_name = install_actions(self, self._slots(), self.photos.history.group, self.log_dock)
        spotlight = self.actions_by_name["spotlight"]
        spotlight.setCheckable(True)
        spotlight.setChecked(self.settings.overlay_style is OverlayStyle.SPOTLIGHT)
        self.page.add_actions([self.actions_by_name[n] for n in GRID_MENU],
                              [self.actions_by_name[n] for n in ("accept", "save", "caption_selected")])
        self.page.editor.passthrough = [seq for action in self.actions_by_name.values()
                                        for seq in action.shortcuts()]
        if why := self.training.unavailable():  # the menu item says what to install
            self.actions_by_name["train"].setStatusTip(why)
            self.actions_by_name["train"].setToolTip(why)

    def _connect(self) -> None:
        self.page.grid.zoom_requested.connect(self.zoom)
        self.photos.counts_changed.connect(self._show_counts)
        self.photos.current_changed.connect(lambda *_: self._update_actions())
        self.photos.scan_finished.connect(lambda _n: self._show_counts())
        for source in (self.photos, self.photos.alt_text, self.models):
            source.message.connect(self.statusBar().showMessage)
        self.captions.started.connect(lambda _n: self._update_actions())
        self.captions.finished.connect(self._on_run_finished)
        self.models.state_changed.connect(lambda _state: self._update_actions())
        self.models.switching.connect(self.photos.stop_for_model_switch)
        self.training.use_model.connect(self.models.load)

    def _on_run_finished(self, *_args: object) -> None:
        self._update_actions()
        self.models.retire(None)  # close caption processes replaced during the run

    # --- the model -------------------------------------------------------------------------
    def open_bundle(self, folder: Path | None = None) -> None:
        if folder is None:
            start = str(self.settings.bundle_path())
            chosen = QFileDialog.getExistingDirectory(self, "Open a model bundle folder", start)
            if not chosen:
                return
            folder = Path(chosen)
        self.models.load(folder)  # remembered in the settings once it has loaded

    # --- opening -----------------------------------------------------------------------------
    def open_paths(self, paths: list[Path]) -> ScanWorker | None:
        self.tabs.setCurrentWidget(self.page)
        return self.photos.open_paths(paths)

    def choose_images(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "",
                                                f"Images ({patterns});;All files (*)")
        self.open_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_paths([Path(folder)])

    # --- commands -----------------------------------------------------------------------------
    def focus_filter(self) -> None:
        self.tabs.setCurrentWidget(self.page)
        self.page.filter_edit.setFocus()
        self.page.filter_edit.selectAll()

    def find_replace(self) -> FindReplaceDialog:
        """Find and replace in the captions the grid lists (the dialog is modal; tests get it
        back through `open` instead)."""
        self.tabs.setCurrentWidget(self.page)
        dialog = FindReplaceDialog(self.page.visible_items(), self.photos.replace_captions, self)
        dialog.setModal(True)
        dialog.open()
        return dialog

    def export(self, kind: str, target: Path | None = None) -> Path | None:
        if target is None:
            name, _ = QFileDialog.getSaveFileName(
                self, f"Export captions as {kind.upper()}", f"captions.{kind}", f"{kind.upper()} (*.{kind})")
            if not name:
                return None
            target = Path(name)
        return target if self.photos.export(kind, target) else None

    # --- settings and view ------------------------------------------------------------------
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, new: AppSettings) -> None:
        """Adopt new settings in place (the controllers hold this object) and reload what they affect."""
        old = replace(self.settings)
        for f in fields(AppSettings):
            setattr(self.settings, f.name, getattr(new, f.name))
        self.settings.save(self.store)
        model_changed = ((new.bundle_path(), new.provider, new.caption_quality)
                         != (old.bundle_path(), old.provider, old.caption_quality))
        if model_changed or self.models.captioner is None:
            self.models.load()
        if (new.overlay_style, new.overlay_opacity) != (old.overlay_style, old.overlay_opacity):
            self.page.set_overlay_style(new.overlay_style, new.overlay_opacity)
            self.actions_by_name["spotlight"].setChecked(new.overlay_style is OverlayStyle.SPOTLIGHT)
        if new.low_confidence != old.low_confidence:
            self.page.set_low_confidence(new.low_confidence)
            self.video_panel.model.low_confidence = new.low_confidence
            self.video_panel.table.viewport().update()

    def toggle_spotlight(self) -> None:
        spotlight = self.actions_by_name["spotlight"].isChecked()
        self.settings.overlay_style = OverlayStyle.SPOTLIGHT if spotlight else OverlayStyle.HEAT
        self.settings.save(self.store)
        self.page.set_overlay_style(self.settings.overlay_style, self.settings.overlay_opacity)

    def zoom(self, direction: int) -> None:
        self.page.zoom(direction)
        self.settings.save(self.store)

    # --- state shown around the edges ---------------------------------------------------------
    def _show_counts(self) -> None:
        folders = self.photos.model.folders()
        where = (folders[0].name if len(folders) == 1 else f"{len(folders)} folders") if folders else ""
        unsaved = self.photos.counts()["unsaved"]
        self.setWindowTitle("Captioner" + (f" — {where}" if where else "")
                            + (f"  (● {unsaved} unsaved)" if unsaved else ""))
        self._update_actions()

    def _update_actions(self) -> None:
        has_model, has_items = self.models.captioner is not None, self.photos.model.rowCount() > 0
        for name in ("caption_selected", "caption_all", "caption_uncaptioned", "caption_all_replace"):
            action = self.actions_by_name[name]
            action.setEnabled(has_model and has_items)
            action.setToolTip(action.statusTip() if has_model else "No model loaded — open a bundle")
        self.actions_by_name["cancel"].setEnabled(self.captions.is_running())  # Esc always works
        for name in ("save", "save_all", "export_json", "export_csv", "write_alt_text", "remove", "clear",
                     "replace"):
            self.actions_by_name[name].setEnabled(has_items)

    # --- lifetime --------------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        for key, restore in (("window/geometry", self.restoreGeometry), ("window/state", self.restoreState),
                             ("window/splitter", self.page.splitter.restoreState)):
            value = self.store.value(key)
            if isinstance(value, QByteArray):
                restore(value)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Each tab may keep the app open to save or keep what would be lost."""
        if self.confirm_close and not (self.photos.confirm_quit()
                                       and self.video_panel.confirm_discard("quitting")
                                       and self.training.confirm_quit()):
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop background work, finish started writes, remember the window."""
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/state", self.saveState())
        self.store.setValue("window/splitter", self.page.splitter.saveState())
        self.settings.save(self.store)
        self.photos.shutdown()
        self.models.shutdown()
        self.training.shutdown()
        self.video_panel.shutdown()
        self.page.shutdown()
        cancel_all(5000)
