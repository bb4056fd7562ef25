"""The Photos tab's one owner: the photo list, the current photo, undo history, opening,
captioning, saving and the alt-text feature.

Every Photos command goes window action -> this controller -> worker / caption service, and
results come back here -> item model -> views. The page (gui/photos_page.py) only shows the
current item and reports what the person picked; it never decides what a command acts on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from captioner.writers import CaptionRecord, write_csv, write_json
from gui.controllers.captioning import CaptionController
from gui.controllers.metadata import AltTextController
from gui.controllers.saving import OverwritePolicy, SaveController
from gui.models.image_list import ImageListModel
from gui.models.items import ImageItem, ProblemKind, Source
from gui.models.replace import Change
from gui.models.thumbnails import ThumbnailCache
from gui.settings import AppSettings
from gui.tasks import CaptionBackend, Scanned, ScanWorker
from gui.undo import CaptionHistory

Log = Callable[[str, str], None]


class PhotosController(QObject):
    current_changed = Signal(object, object)  # ImageItem | None: new, previous
    caption_changed = Signal(object)  # ImageItem whose caption text changed
    result_changed = Signal(object)  # ImageItem whose model result or stored state changed
    counts_changed = Signal()  # coalesced: at most a few times a second
    message = Signal(str, int)  # a status-bar line and how long to show it (ms)
    scan_finished = Signal(int)  # images added by one open/drop

    def __init__(self, settings: AppSettings, log: Log, dialog_parent: QWidget) -> None:
        super().__init__(dialog_parent)
        self.settings, self.log, self.dialog_parent = settings, log, dialog_parent
        self.thumbnails = ThumbnailCache(settings.thumbnail_size, parent=self)
        self.model = ImageListModel(self.thumbnails, self)
        self.history = CaptionHistory(self._apply_caption, self)
        self.saver = SaveController(self.model, log, dialog_parent)
        self.captions = CaptionController(self.model, self.history, self.saver, log, self)
        self.alt_text = AltTextController(self.model, log, dialog_parent, self)
        self.backend: Callable[[], CaptionBackend | None] = lambda: None  # set by the window
        self.selection: Callable[[], list[ImageItem]] = lambda: []  # set by the page
        self._current: ImageItem | None = None
        self._scans: list[ScanWorker] = []
        self._session_policy = OverwritePolicy(dialog_parent, scope="session")
        self._counts = QTimer(self)
        self._counts.setSingleShot(True)
        self._counts.setInterval(120)
        self._counts.timeout.connect(self.counts_changed)
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.modelReset):
            signal.connect(self._schedule_counts)
        self.model.dataChanged.connect(self._on_data_changed)
        self.captions.result_applied.connect(self.result_changed)
        self.saver.item_saved.connect(self.result_changed)
        self.alt_text.item_changed.connect(self._on_alt_text_changed)
        self.thumbnails.failed.connect(self.flag_unreadable)
        self.captions.finished.connect(lambda stats, cancelled: self.message.emit(
            stats.summary(cancelled), 10_000))

    # --- the current photo -------------------------------------------------------------------
    def current(self) -> ImageItem | None:
        return self._current

    def set_current(self, item: ImageItem | None) -> None:
        """The one place the current photo changes (the grid's click, keys, commands)."""
        if item is self._current:
            return
        previous, self._current = self._current, item
        self.history.activate(item)
        if self.settings.auto_save and previous is not None and previous.user_edit_pending:
            self.saver.save([previous], self._session_policy)
        self.current_changed.emit(item, previous)

    def flag_unreadable(self, path: Path, reason: str) -> None:
        """An image that cannot be read (found by the thumbnail or preview loader): flagged on
        its tile and said once in the log; runs skip it."""
        item = self.model.item_for(path)
        if item is not None and item.problem is None:
            item.set_problem(ProblemKind.UNREADABLE, reason)
            self.log(f"{item.path}: {reason}", "error")
            self.model.changed(item)
            if item is self._current:
                self.result_changed.emit(item)

    def selected(self) -> list[ImageItem]:
        """What a command on "the selection" acts on: the page's selection, which always holds
        the current photo (or just the current photo)."""
        chosen = self.selection()
        if self._current is not None and self._current not in chosen:
            return [self._current]
        return chosen

    # --- opening -----------------------------------------------------------------------------
    def open_paths(self, paths: list[Path]) -> ScanWorker | None:
        """Add files and folders (recursively); the grid fills as the scan reports chunks."""
        paths = [Path(p) for p in paths]
        if not paths:
            return None
        self._session_policy = OverwritePolicy(self.dialog_parent, scope="session")
        scan = ScanWorker(paths, recursive=True)
        added: list[ImageItem] = []
        scan.item.connect(lambda chunk: self._on_scanned(chunk, added))
        scan.message.connect(lambda text: self.log(text, "warning"))
        scan.failed.connect(lambda text: self.log(text, "error"))
        scan.finished.connect(lambda _c, s=scan: self._on_scan_finished(s, paths, added))
        self._scans.append(scan)
        scan.start()
        return scan

    def is_scanning(self) -> bool:
        return bool(self._scans)

    def _on_scanned(self, chunk: list[Scanned], added: list[ImageItem]) -> None:
        fresh = self.model.add((s.path, s.sidecar) for s in chunk)
        added.extend(fresh)
        if fresh and self._current is None:
            self.set_current(fresh[0])

    def _on_scan_finished(self, scan: ScanWorker, paths: list[Path], added: list[ImageItem]) -> None:
        self._scans.remove(scan)
        with_captions = sum(i.saved is not None for i in added)
        folders = {i.path.parent for i in added} or {p if p.is_dir() else p.parent for p in paths}
        where = next(iter(folders)).name if len(folders) == 1 else f"{len(folders)} folders"
        self.log(f"opened {len(added)} new image(s) from {where}; {with_captions} already had a caption file",
                 "info")
        if added and self.settings.auto_caption_on_drop and self.backend() is not None:
            self._caption(added)
        self.scan_finished.emit(len(added))

    # --- captioning --------------------------------------------------------------------------
    def _caption(self, items: list[ImageItem], replace: bool = False) -> bool:
        backend = self.backend()
        if backend is None:
            self.message.emit("No model loaded — open a bundle first", 6000)
            self.log("cannot caption: no model loaded — open a bundle (File ▸ Open model bundle…)", "warning")
            return False
        items = [i for i in items if not i.unreadable]
        if not items:
            self.message.emit("Nothing to caption", 4000)
            return False
        kept = 0 if replace else sum(i.keeps_caption for i in items)
        if kept:
            self.log(f"{kept} caption(s) from files, photos or typed by you are kept; the model's "
                     "suggestions go to the alternatives (Caption ▸ Caption all, replacing my captions)",
                     "info")
        s = self.settings
        return self.captions.start(items, backend, s.caption_options(), s.batch_size, s.auto_save, replace)

    def caption_selected(self) -> bool:
        return self._caption(self.selected())

    def caption_all(self) -> bool:
        return self._caption(self.model.items())

    def caption_uncaptioned(self) -> bool:
        return self._caption([i for i in self.model.items() if not i.has_caption])

    def caption_all_replacing(self) -> bool:
        """Every photo, the model's caption replacing the ones people wrote: asked first, with
        how many would be replaced (Cancel is the default)."""
        items = self.model.items()
        human = sum(i.keeps_caption for i in items)
        if human:
            box = QMessageBox(QMessageBox.Icon.Warning, "Replace your captions?",
                              f"{human} caption(s) came from caption files, from the photos or from your "
                              "typing. Replace them with the model's captions? (Undo brings each back; "
                              "nothing is written until you save.)",
                              QMessageBox.StandardButton.Cancel, self.dialog_parent)
            replace = box.addButton(f"Replace {human}", QMessageBox.ButtonRole.DestructiveRole)
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            box.setObjectName("confirmReplace")
            box.exec()
            if box.clickedButton() is not replace:
                return False
        return self._caption(items, replace=True)

    def stop_for_model_switch(self) -> None:
        if self.captions.is_running():
            self.log("stopping the running batch to switch models", "warning")
            self.captions.cancel()

    def human_caption_count(self) -> int:
        return sum(i.keeps_caption for i in self.model.items())

    # --- editing and reviewing ---------------------------------------------------------------
    def _apply_caption(self, item: ImageItem, text: str, source: Source) -> None:
        """The one place a caption changes (undo commands call it)."""
        item.caption, item.source = text, source
        self.model.changed(item)
        self.caption_changed.emit(item)

    def edit(self, text: str, label: str = "Typing", typing: bool = True) -> None:
        if self._current is not None:
            self.history.set_caption(self._current, text, Source.USER, label, typing=typing)

    def use_alternative(self, text: str) -> None:
        self.edit(text, "Use alternative", typing=False)

    def replace_captions(self, changes: list[Change], find: str, replacement: str) -> int:
        """Apply a find-and-replace plan as one undo step; returns how many captions changed."""
        what = f"“{find}” with “{replacement}” in {len(changes)} caption(s)"
        self.history.replace_many([(c.item, c.old, c.new) for c in changes], f"Replace {what}", self._current)
        self.log(f"replaced {what}", "info")
        self.message.emit(f"Replaced {what} — Ctrl+Z undoes it", 8000)
        return len(changes)

    def accept_current(self) -> bool:
        """Keep this caption (the model's best if there is none yet) and save it; the caller
        moves on."""
        item = self._current
        if item is None:
            return False
        if not item.has_caption and item.result is not None and item.result.text:
            self.history.set_caption(item, item.result.text, Source.MODEL, "Accept")
        if item.dirty:
            self.saver.save([item], self._session_policy)
        return True

    def revert_selected(self) -> None:
        for item in self.selected():
            stored = item.stored
            if stored is not None and item.caption != stored:
                source = Source.DISK if item.saved is not None else Source.ALT_TEXT
                self.history.set_caption(item, stored, source, "Revert to saved")

    # --- saving ------------------------------------------------------------------------------
    def save_selected(self) -> None:
        items = self.selected()
        policy = self._session_policy if len(items) == 1 else OverwritePolicy(self.dialog_parent)
        if not any(i.dirty for i in items):
            self.message.emit("Nothing new to save in the selection", 4000)
        self.saver.save(items, policy)

    def save_all(self) -> None:
        items = [i for i in self.model.items() if i.dirty]
        if not items:
            self.message.emit("Every caption is saved", 4000)
            return
        self.saver.save(items, OverwritePolicy(self.dialog_parent))

    def unsaved(self) -> list[ImageItem]:
        return [i for i in self.model.items() if i.dirty]

    def confirm_quit(self) -> bool:
        """Quitting with unsaved captions: save them (asking as usual), drop them, or stay."""
        unsaved = self.unsaved()
        if not unsaved:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self.dialog_parent, "Unsaved captions",
            f"{len(unsaved)} caption(s) are not saved. Save them before quitting?",
            buttons.Save | buttons.Discard | buttons.Cancel)
        if answer == buttons.Save:
            self.saver.save(unsaved, OverwritePolicy(self.dialog_parent))
        return answer != buttons.Cancel

    def write_alt_text(self) -> int:
        return self.alt_text.write(self.selected())

    def export(self, kind: str, target: Path) -> bool:
        """All captions in one JSON or CSV file (with scores and n-best where the model wrote them)."""
        records = [_record(i) for i in self.model.items() if i.has_caption]
        try:
            (write_json if kind == "json" else write_csv)(target, records, overwrite=True)
        except Exception as exc:  # noqa: BLE001 - WriteError and anything odd: tell, don't crash
            self.log(f"export to {target} failed: {exc}", "error")
            return False
        self.log(f"exported {len(records)} caption(s) to {target}", "info")
        self.message.emit(f"Exported {len(records)} captions to {target}", 6000)
        return True

    # --- the list ----------------------------------------------------------------------------
    def remove_selected(self) -> None:
        items = self.selected()
        unsaved = sum(i.dirty for i in items)
        if not unsaved or self._confirm(f"{unsaved} of these have unsaved captions. Remove them anyway?"):
            self.remove(items)

    def clear_list(self) -> None:
        unsaved = len(self.unsaved())
        if not unsaved or self._confirm(f"{unsaved} caption(s) are unsaved. Clear the list anyway?"):
            self.clear()

    def _confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self.dialog_parent, "Captioner", question)
        return answer == QMessageBox.StandardButton.Yes

    def remove(self, items: list[ImageItem]) -> None:
        if self._current in items:
            self.set_current(None)
        self.history.forget(items)
        self.model.remove(items)

    def clear(self) -> None:
        self.captions.cancel()
        self.set_current(None)
        self.history.forget(self.model.items())
        self.model.clear()

    def counts(self) -> dict[str, int]:
        return self.model.counts()

    def _schedule_counts(self, *_args: object) -> None:
        if not self._counts.isActive():
            self._counts.start()

    def _on_data_changed(self, _top: object, _bottom: object, roles: list[int] = ()) -> None:  # type: ignore[assignment]
        if not (roles and list(roles) == [Qt.ItemDataRole.DecorationRole]):  # a thumbnail: no count
            self._schedule_counts()

    def _on_alt_text_changed(self, item: ImageItem) -> None:
        if item is self._current:
            self.caption_changed.emit(item)
            self.result_changed.emit(item)

    def shutdown(self) -> None:
        """Stop background work and finish started writes."""
        self.captions.shutdown()
        for scan in list(self._scans):
            scan.cancel()
        self.saver.shutdown()
        self.alt_text.shutdown()
        self.thumbnails.shutdown()


def _record(item: ImageItem) -> CaptionRecord:
    result, caption = item.result, item.caption.strip()
    from_model = result is not None and result.text == caption
    return CaptionRecord(
        item.path,
        caption,
        result.score if from_model and result else None,
        tuple(result.alternatives) if result is not None else (),
    )
