"""The Photos tab: grid on the left, preview with attention in the middle, caption on the right.

This module is layout and the wiring between the widgets of one tab: what the editor, n-best
list, word strip and preview show for the current image, and how hovering a word reaches the
overlay. Which image is current, the list itself, captioning and saving belong to the Photos
controller (gui/controllers/photos.py): the grid's click goes there, and the page shows what
the controller says is current, so the highlight and the editor can never disagree.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer
from PySide6.QtGui import QAction, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from captioner.captioner import CaptionResult
from gui.controllers.photos import PhotosController
from gui.models.image_list import (
    SHOW_LABELS,
    SORT_LABELS,
    TAG_PREFIX,
    ImageFilter,
    Role,
    Show,
    Sort,
    tag_terms,
)
from gui.models.items import ImageItem, Source
from gui.models.thumbnails import ImageLoader, natural_size
from gui.widgets.caption_editor import CaptionEditor, insert_word, word_spans
from gui.widgets.confidence import ConfidenceMeter
from gui.widgets.heatmap import OverlayStyle
from gui.widgets.nbest import NBestList, per_word_probability
from gui.widgets.preview import Attention, PreviewWidget
from gui.widgets.tag_chips import TagChips
from gui.widgets.tag_pane import TagPane, count_tags
from gui.widgets.thumbnail_grid import ThumbnailGrid
from gui.widgets.word_strip import AttentionStrip

PREVIEW_PX = 1600
THUMB_STEPS = (64, 96, 128, 160, 200, 256, 320)
PREVIEW_CACHE = 12
FULL_PX = 8192  # the longest side loaded for 100 % and more


def align_words(edited: list[str], model: list[str]) -> dict[int, int]:
    """Map editor word positions to model word positions for the words left unchanged, so a
    lightly edited caption still shows the model's attention for the words it kept."""

    def norm(words: list[str]) -> list[str]:
        return [w.lower().strip(".,;:!?\"'()[]") for w in words]

    matcher = SequenceMatcher(None, norm(edited), norm(model), autojunk=False)
    return {a + k: b + k for a, b, size in matcher.get_matching_blocks() for k in range(size)}


class PhotosPage(QWidget):
    def __init__(self, photos: PhotosController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.photos, self.settings = photos, photos.settings
        self.thumbnails, self.model = photos.thumbnails, photos.model
        self.proxy = ImageFilter(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.low_confidence = self.settings.low_confidence
        photos.selection = self.selected_items
        self._previews = ImageLoader(PREVIEW_PX, threads=1, batch=2, parent=self)
        self._previews.loaded.connect(self._on_preview_loaded)
        self._previews.failed.connect(self._on_preview_failed)
        self._full = ImageLoader(FULL_PX, threads=1, batch=1, parent=self)  # zoomed past the preview
        self._full.loaded.connect(self._on_full_loaded)
        self._full_path: Path | None = None  # the photo the preview shows at full size, if any
        self._preview_cache: OrderedDict = OrderedDict()
        self._pinned = -1  # model word index pinned on the overlay
        self._hovered = -1  # model word index under the mouse (strip or editor)
        self._editor_map: dict[int, int] = {}
        self._result_timer = QTimer(self)  # coalesces result refreshes into one per loop turn
        self._result_timer.setSingleShot(True)
        self._result_timer.setInterval(0)
        self._result_timer.timeout.connect(self.refresh_result)
        self._pin_timer = QTimer(self)  # the filter lets the current image through: see _show_current
        self._pin_timer.setSingleShot(True)
        self._pin_timer.setInterval(0)
        self._pin_timer.timeout.connect(lambda: self.proxy.set_pinned(self.photos.current()))
        self._tag_timer = QTimer(self)  # the tag counts follow the listed photos, a few times a second
        self._tag_timer.setSingleShot(True)
        self._tag_timer.setInterval(250)
        self._tag_timer.timeout.connect(self._count_tags)
        self._build()
        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                       self.proxy.layoutChanged, self.proxy.dataChanged):
            signal.connect(self._schedule_tag_count)
        photos.captions.finished.connect(lambda *_: self._after_run())
        self.thumbnails.ready.connect(self._on_thumbnail_ready)
        photos.current_changed.connect(self._show_current)
        photos.caption_changed.connect(self._on_caption_changed)
        photos.result_changed.connect(self._on_result_changed)
        photos.counts_changed.connect(self._show_counts)
        self.model.modelReset.connect(self._on_reset)

    # --- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self._left_panel())
        self.splitter.addWidget(self._centre_panel())
        self.splitter.addWidget(self._right_panel())
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([470, 680, 350])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def _left_panel(self) -> QWidget:
        panel, layout = _column(6, 6, 0, 6)
        row = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("filterEdit")
        self.filter_edit.setPlaceholderText("Filter by caption or file name (Ctrl+F)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter)
        self.show_combo = QComboBox()
        for show, label in SHOW_LABELS.items():
            self.show_combo.addItem(label, int(show))
        self.show_combo.currentIndexChanged.connect(self._on_filter)
        self.show_combo.setToolTip("Which photos to list; Low confidence: the model's captions below "
                                   "the threshold in Settings")
        self.sort_combo = QComboBox()
        self.sort_combo.setObjectName("sortCombo")
        for sort, label in SORT_LABELS.items():
            self.sort_combo.addItem(label, int(sort))
        self.sort_combo.setToolTip("Order of the grid. Lowest confidence first puts the doubtful "
                                   "captions on top; it is taken again after each run, not while you edit")
        self.sort_combo.currentIndexChanged.connect(
            lambda: self.proxy.set_sort(Sort(self.sort_combo.currentData())))
        row.addWidget(self.filter_edit, 1)
        row.addWidget(self.show_combo)
        row.addWidget(self.sort_combo)
        layout.addLayout(row)
        self.grid = ThumbnailGrid(self.settings.thumbnail_size)
        self.grid.delegate.low_confidence = self.settings.low_confidence
        self.grid.setModel(self.proxy)
        self.grid.selectionModel().currentChanged.connect(self._on_current_index)
        self.tag_pane = TagPane()
        self.tag_pane.tag_clicked.connect(self.toggle_tag_filter)
        self.left_splitter = QSplitter(Qt.Orientation.Vertical)
        self.left_splitter.addWidget(self.grid)
        self.left_splitter.addWidget(self.tag_pane)
        self.left_splitter.setStretchFactor(0, 1)
        self.left_splitter.setStretchFactor(1, 0)
        self.left_splitter.setSizes([640, 130])
        layout.addWidget(self.left_splitter, 1)
        self.count_label = QLabel()
        self.count_label.setObjectName("countLabel")
        layout.addWidget(self.count_label)
        return panel

    def _centre_panel(self) -> QWidget:
        panel, layout = _column(0, 6, 0, 6)
        layout.setSpacing(2)
        self.preview = PreviewWidget()
        self.preview.set_overlay_style(self.settings.overlay_style, self.settings.overlay_opacity)
        self.preview.set_message("Select a photo to see it here.")
        self.preview.clicked.connect(lambda: self.pin_word(-1))
        self.preview.detail_wanted.connect(self._load_full)
        layout.addWidget(self.preview, 1)
        self.strip = AttentionStrip()
        self.strip.hovered.connect(self._on_strip_hover)
        self.strip.pin_requested.connect(self.pin_word)
        layout.addWidget(self.strip)
        return panel

    def _right_panel(self) -> QWidget:
        panel, layout = _column(0, 6, 6, 6)
        self.file_label = QLabel("No image selected")
        self.file_label.setObjectName("fileLabel")
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_label.setWordWrap(True)
        layout.addWidget(self.file_label)
        layout.addWidget(self._heading("Caption"))
        self.editor = CaptionEditor()
        self.editor.setMaximumHeight(84)
        self.editor.setEnabled(False)
        self.editor.edited.connect(self._on_edited)
        self.editor.accept_requested.connect(self.accept_and_next)
        self.editor.word_hovered.connect(self._on_editor_hover)
        layout.addWidget(self.editor)
        self.tag_chips = TagChips()
        self.tag_chips.insert_requested.connect(self.insert_tag)
        layout.addWidget(self.tag_chips)
        self.confidence = ConfidenceMeter()
        layout.addWidget(self.confidence)
        self.state_label = QLabel()
        self.state_label.setObjectName("stateLabel")
        self.state_label.setWordWrap(True)
        layout.addWidget(self.state_label)
        self.button_row = QHBoxLayout()
        layout.addLayout(self.button_row)
        layout.addWidget(self._heading("Alternatives  (click, or Alt+1 … Alt+9)"))
        self.nbest = NBestList()
        self.nbest.picked.connect(self.use_alternative)
        layout.addWidget(self.nbest, 1)
        return panel

    @staticmethod
    def _heading(text: str) -> QLabel:
        label = QLabel(f"<b>{text}</b>")
        label.setContentsMargins(0, 8, 0, 0)
        return label

    def add_actions(self, grid_menu: list[QAction], buttons: list[QAction]) -> None:
        """The window's actions on this page (one source of truth): the grid's right-click
        menu, Delete in the grid for "remove", and the buttons under the editor."""
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for action in grid_menu:
            self.grid.addAction(action)
            if action.objectName() == "remove":
                delete = QShortcut(QKeySequence.StandardKey.Delete, self.grid,
                                   context=Qt.ShortcutContext.WidgetShortcut)
                delete.activated.connect(action.trigger)
        for action in buttons:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            self.button_row.addWidget(button)
        self.button_row.addStretch(1)

    # --- items and selection ----------------------------------------------------------------
    def current_item(self) -> ImageItem | None:
        return self.photos.current()

    def selected_items(self) -> list[ImageItem]:
        """Selected images in list order (the controller adds the current one if it is not)."""
        rows = sorted(self.proxy.mapToSource(i).row() for i in self.grid.selectionModel().selectedIndexes())
        return [self.model.item_at(r) for r in rows if r >= 0]

    def visible_items(self) -> list[ImageItem]:
        return [self.proxy.index(r, 0).data(Role.ITEM) for r in range(self.proxy.rowCount())]

    def select_item(self, item: ImageItem | None) -> None:
        """Make `item` current through the grid, so its highlight follows."""
        if item is None:
            self.grid.selectionModel().clear()
            self.photos.set_current(None)
            return
        index = self.proxy.mapFromSource(self.model.index(self.model.row_of(item)))
        if not index.isValid():
            return
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.grid.selectionModel().setCurrentIndex(index, flags)
        self.grid.scrollTo(index)

    def step(self, delta: int) -> bool:
        """Move to the next (+1) or previous (-1) image in the list as filtered."""
        rows = self.proxy.rowCount()
        if rows == 0:
            return False
        current = self.grid.currentIndex()
        row = current.row() + delta if current.isValid() else (0 if delta > 0 else rows - 1)
        if not 0 <= row < rows:
            return False
        self.select_item(self.proxy.index(row, 0).data(Role.ITEM))
        return True

    def next_uncaptioned(self) -> ImageItem | None:
        """The next image after the current one (wrapping) that has no caption and can be read."""
        items = self.visible_items()
        current = self.photos.current()
        start = items.index(current) + 1 if current in items else 0
        for item in items[start:] + items[:start]:
            if not item.has_caption and not item.unreadable:
                self.select_item(item)
                return item
        return None

    def accept_and_next(self) -> None:
        """Keep this caption (saved), go on."""
        if self.photos.accept_current() and not self.step(1):
            self.photos.message.emit("That was the last image in the list", 4000)

    def go_next_uncaptioned(self) -> None:
        if self.next_uncaptioned() is None:
            self.photos.message.emit("Every image in the list has a caption", 5000)

    def escape(self, stop_run: Callable[[], None]) -> None:
        """Esc: unpin an attention word first (cheap to redo), only then stop a running batch."""
        if self.strip.is_playing():
            self.strip.stop()
            self.pin_word(-1)
        elif self._pinned >= 0:
            self.pin_word(-1)
        else:
            stop_run()

    def _on_current_index(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """The grid's current index moved (click, keys): tell the controller, which owns it."""
        if current.isValid():
            self.photos.set_current(current.data(Role.ITEM))

    def _show_current(self, item: ImageItem | None, _previous: ImageItem | None) -> None:
        """The controller's current image changed: show it. The filter always lets it through,
        but with a filter on that is redone on the next loop turn: redone inside the grid's
        click, rows would shift between the grid setting its current index and selecting that
        row, and the highlight would land on another image than the editor shows."""
        if self.proxy.is_filtering():
            self._pin_timer.start()
        else:
            self.proxy.set_pinned(item)
        if item is not None:
            index = self.proxy.mapFromSource(self.model.index(self.model.row_of(item)))
            if index.isValid() and self.grid.currentIndex() != index:
                flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
                self.grid.selectionModel().setCurrentIndex(index, flags)
        self._pinned = self._hovered = -1
        self.preview.reset_zoom()
        self._full_path = None
        self.refresh_current()

    def _on_thumbnail_ready(self, path: object) -> None:
        """The word strip's icons are made from the thumbnail: redo them when it arrives."""
        current = self.photos.current()
        if current is not None and current.path == path:
            self._result_timer.start()

    def _on_caption_changed(self, item: ImageItem) -> None:
        if item is self.photos.current():
            self.editor.set_text(item.caption)
            self.refresh_state()
            self._show_tags_and_confidence(item)
            self.nbest.set_entries(item.result.alternatives if item.result else [], item.stored, item.caption)
            self._realign()
            self._show_strip()
            self._update_attention()

    def _on_result_changed(self, item: ImageItem) -> None:
        if item is self.photos.current():
            self.refresh_result()
            self.refresh_state()

    def _show_counts(self) -> None:
        c = self.photos.counts()
        parts = [f"{c['total']} images", f"{c['captioned']} captioned"]
        if c["unsaved"]:
            parts.append(f"{c['unsaved']} unsaved")
        if c["errors"]:
            parts.append(f"{c['errors']} with problems")
        self.count_label.setText(" · ".join(parts))
        self.refresh_state()

    def _on_reset(self) -> None:
        self._preview_cache.clear()
        self._previews.forget()

    # --- what the panels show for the current image ----------------------------------------
    def refresh_current(self) -> None:
        """What must change at once (text, photo); the rest follows on the next loop turn so
        holding PgDown through a folder never stalls the window."""
        item = self.photos.current()
        self.editor.setEnabled(item is not None)
        self.editor.set_text(item.caption if item else "")
        self._refresh_file_label(item)
        self.refresh_state()
        self._show_preview(item)
        self.preview.set_attention(None)
        self._result_timer.start()

    def refresh_result(self) -> None:
        """n-best list and word strip: they change when the model captions this image."""
        item = self.photos.current()
        result = item.result if item else None
        self.nbest.set_entries(
            result.alternatives if result else [], item.stored if item else None, item.caption if item else ""
        )
        self._realign()
        self._show_strip()
        self._update_attention()
        self._show_tags_and_confidence(item)

    def _show_tags_and_confidence(self, item: ImageItem | None) -> None:
        """The tag chips and the confidence meter of the current photo."""
        result = item.result if item is not None else None
        self.tag_chips.set_tags(item.tags if item is not None else [], item.caption if item else "")
        low = self.settings.low_confidence
        if item is not None and item.confidence is not None:
            self.confidence.show_value(item.confidence, low)
        elif result is not None and result.confidence is not None and item is not None and item.has_caption:
            self.confidence.show_value(result.confidence, low, model_only=True)
        else:
            self.confidence.show_value(None)

    def _show_strip(self) -> None:
        """One chip per word of the caption shown; the words kept from the model's caption show
        its map for them, so picking an alternative or editing updates the strip."""
        item = self.photos.current()
        result = item.result if item else None
        hint = ""
        if item is not None and result is None and item.has_caption:
            where = {Source.DISK: "its .txt file", Source.ALT_TEXT: "the photo's alt text"}.get(item.source)
            hint = (f"This caption was read from {where}. " if where else "") + \
                "Caption the image (Ctrl+R) to see where the model looks."
        words: list[str] = []
        indexes: list[int] | None = None
        if result is not None:
            words = [s.text for s in word_spans(self.editor.text())]
            if [w.lower().strip(".,;:!?") for w in words] == result.words:
                words = result.words
            else:
                indexes = [self._editor_map.get(i, -1) for i in range(len(words))]
        self.strip.set_word_probability(per_word_probability(result.text, result.score) if result else None)
        self.strip.set_words(
            words,
            result.attention if result else None,
            self.thumbnails.get(item.path) if item else None,
            self.preview.style_name,
            self.preview.opacity,
            hint,
            indexes,
        )

    def _refresh_file_label(self, item: ImageItem | None) -> None:
        if item is None:
            self.file_label.setText("No image selected")
            return
        self.file_label.setText(f"<b>{item.name}</b><br><span style='color:gray'>{item.path.parent}</span>")

    def refresh_state(self) -> None:
        item = self.photos.current()
        if item is None:
            self.state_label.setText("")
            return
        if item.error:
            text, colour = f"⚠ {item.error}", "#c03030"
        elif item.dirty:
            text, colour = "● unsaved — Ctrl+S saves it to " + item.path.with_suffix(".txt").name, "#c07000"
        elif item.saved is not None and item.has_caption:
            text, colour = "✓ saved in " + item.path.with_suffix(".txt").name, "#2a8a40"
        elif item.embedded is not None and item.has_caption:
            text, colour = (f"✓ stored in the photo ({item.embedded.label}); "
                            "no caption file yet"), "#2a8a40"
        else:
            text, colour = "no caption file yet", "gray"
        self.state_label.setText(f"<span style='color:{colour}'>{text}</span>")

    def _result(self) -> CaptionResult | None:
        current = self.photos.current()
        return current.result if current is not None else None

    # --- editing ----------------------------------------------------------------------------
    def _on_edited(self, text: str) -> None:
        self.photos.edit(text)

    def use_alternative(self, text: str) -> None:
        self.photos.use_alternative(text)

    def insert_tag(self, word: str) -> None:
        """A tag chip was clicked: the word goes into the caption at the cursor, one undo step."""
        if self.photos.current() is None:
            return
        text, position = insert_word(self.editor.text(), self.editor.cursor_position(), word)
        self.photos.edit(text, f"Insert “{word}”", typing=False)
        self.editor.set_cursor_position(position)
        self.editor.setFocus()

    def pick_alternative(self, rank: int) -> bool:
        return self.nbest.pick(rank)

    # --- attention --------------------------------------------------------------------------
    def _realign(self) -> None:
        result = self._result()
        words = [s.text for s in word_spans(self.editor.text())]
        self._editor_map = align_words(words, result.words) if result else {}

    def _on_editor_hover(self, editor_index: int) -> None:
        self._hovered = self._editor_map.get(editor_index, -1)
        self._update_attention()

    def _on_strip_hover(self, index: int) -> None:
        self._hovered = index
        self._update_attention()

    def pin_word(self, index: int) -> None:
        self._pinned = index
        self.strip.set_pinned(index)
        self._update_attention()

    def pinned_word(self) -> int:
        return self._pinned

    def step_word(self, delta: int) -> None:
        """Alt+Left/Right: walk the pinned word through the caption."""
        result = self._result()
        if result is None or not result.words:
            return
        start = self._pinned if self._pinned >= 0 else (-1 if delta > 0 else len(result.words))
        self.pin_word(max(0, min(len(result.words) - 1, start + delta)))

    def _update_attention(self) -> None:
        result = self._result()
        index = self._hovered if self._hovered >= 0 else self._pinned
        if result is None or not 0 <= index < min(len(result.words), len(result.attention)):
            self.preview.set_attention(None)
            self.editor.mark_word(-1)
            return
        self.preview.set_attention(
            Attention(
                result.attention[index],
                result.words[index],
                index,
                len(result.words),
                pinned=self._hovered < 0,
            )
        )
        reverse = {m: e for e, m in self._editor_map.items()}
        self.editor.mark_word(reverse.get(index, -1))

    def set_overlay_style(self, style: OverlayStyle, opacity: float) -> None:
        self.preview.set_overlay_style(style, opacity)
        self.refresh_result()

    # --- preview image ----------------------------------------------------------------------
    def _show_preview(self, item: ImageItem | None) -> None:
        if item is None:
            self.preview.set_pixmap(
                None,
                "Select a photo to see it here."
                if self.model.rowCount()
                else "Drop photos or folders anywhere on this window.",
            )
            return
        cached = self._preview_cache.get(item.path)
        if cached is not None:
            self._preview_cache.move_to_end(item.path)
            self.preview.set_pixmap(*cached)
            return
        broken = self.thumbnails.broken_reason(item.path)
        if broken:
            self.preview.set_pixmap(None, f"Cannot show {item.name}:\n{broken}")
            return
        self.preview.set_pixmap(self.thumbnails.get(item.path), "Loading…")
        following = self._neighbour(item)
        self._previews.box = self.preview.fit_box()  # the loader thread scales, not this one
        if following is not None and following.path not in self._preview_cache:
            self._previews.request(following.path)  # LIFO: requested first, served second
        self._previews.request(item.path)

    def _neighbour(self, item: ImageItem) -> ImageItem | None:
        index = self.proxy.mapFromSource(self.model.index(self.model.row_of(item)))
        below = self.proxy.index(index.row() + 1, 0) if index.isValid() else QModelIndex()
        return below.data(Role.ITEM) if below.isValid() else None

    def _on_preview_loaded(self, path: object, image: QImage) -> None:
        self._preview_cache[path] = (QPixmap.fromImage(image), "", natural_size(image))
        while len(self._preview_cache) > PREVIEW_CACHE:
            self._preview_cache.popitem(last=False)
        current = self.photos.current()
        if current is not None and current.path == path and not self._showing_full(path):
            self.preview.set_pixmap(*self._preview_cache[path])

    def _load_full(self) -> None:
        """The preview is zoomed past the copy it has: load the photo at its own size."""
        current = self.photos.current()
        if current is not None and not self._showing_full(current.path):
            self._full.request(current.path)

    def _showing_full(self, path: object) -> bool:
        return self._full_path is not None and self._full_path == path

    def _on_full_loaded(self, path: object, image: QImage) -> None:
        current = self.photos.current()
        if current is not None and current.path == path:
            self._full_path = Path(str(path))
            self.preview.set_pixmap(QPixmap.fromImage(image), "", natural_size(image))

    def _on_preview_failed(self, path: object, reason: str) -> None:
        self.photos.flag_unreadable(Path(str(path)), reason)
        item = self.photos.current()
        if item is not None and item.path == path:
            self.preview.set_pixmap(None, f"Cannot show {item.name}:\n{reason}")

    # --- filter and zoom --------------------------------------------------------------------
    def _on_filter(self) -> None:
        self.proxy.set_text(self.filter_edit.text())
        self.proxy.set_show(Show(self.show_combo.currentData()))
        self.grid.empty_hint = (
            "No image matches the filter."
            if self.proxy.is_filtering()
            else "Drop photos or folders here\n\nor use File ▸ Open folder… (Ctrl+Shift+O)"
        )
        self.grid.viewport().update()

    def set_low_confidence(self, threshold: float) -> None:
        self.proxy.set_low_confidence(threshold)
        self.grid.delegate.low_confidence = threshold
        self.grid.viewport().update()
        self._show_tags_and_confidence(self.photos.current())

    def _after_run(self) -> None:
        """A run changed confidences: sort again (never while it streams, nor while editing)."""
        if self.proxy.sort_mode() is not Sort.LIST:
            self.proxy.refresh_sort()

    def toggle_tag_filter(self, word: str) -> None:
        """List only the photos with this tag (through the filter box), or drop it again."""
        if not word:
            return
        token = f"{TAG_PREFIX}{word}".lower()
        words = self.filter_edit.text().split()
        words = [w for w in words if w.lower() != token] if token in (w.lower() for w in words) \
            else [w for w in words if not w.lower().startswith(TAG_PREFIX)] + [token]
        self.filter_edit.setText(" ".join(words))

    def _schedule_tag_count(self, *_args: object) -> None:
        if not self._tag_timer.isActive():
            self._tag_timer.start()

    def _count_tags(self) -> None:
        listed = self.visible_items()
        captioned = any(i.result is not None for i in listed)
        self.tag_pane.set_counts(count_tags(listed), tag_terms(self.filter_edit.text()),
                                 "no tags: this model writes none" if captioned else "")

    def zoom(self, direction: int) -> None:
        """One step larger (+1) or smaller (-1) thumbnails; the size is a setting."""
        size = self.settings.thumbnail_size
        steps = [s for s in THUMB_STEPS if (s > size if direction > 0 else s < size)]
        self.settings.thumbnail_size = (steps[0] if direction > 0 else steps[-1]) if steps else size
        self.set_thumbnail_size(self.settings.thumbnail_size)

    def set_thumbnail_size(self, size: int) -> None:
        self.thumbnails.set_size(size)
        self.grid.set_thumbnail_size(size)

    def shutdown(self) -> None:
        self._previews.shutdown()
        self._full.shutdown()


def _column(left: int, top: int, right: int, bottom: int) -> tuple[QWidget, QVBoxLayout]:
    """A panel of the splitter: a widget with a vertical layout and these margins."""
    panel = QWidget()
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(left, top, right, bottom)
    return panel, layout
