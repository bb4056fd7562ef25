"""The thumbnail grid: a QListView in icon mode, drawn by a delegate that shows each image's
state at a glance (unsaved dot, saved tick, queued clock, error triangle) and the start of
its caption, so a person can scan a folder for what still needs work.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from gui.models.image_list import Role
from gui.models.items import ImageItem, Status
from gui.widgets.confidence import paint_pill

ModelIndex = QModelIndex | QPersistentModelIndex
UNSAVED = QColor(235, 140, 20)
SAVED = QColor(40, 160, 70)
ERROR = QColor(215, 50, 50)
QUEUED = QColor(60, 120, 220)


class ThumbnailDelegate(QStyledItemDelegate):
    """Thumbnail on top, then the file name and two lines of caption."""

    def __init__(self, size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.cell_width = size + 16
        self.low_confidence = 0.5  # the doubtful threshold (a setting): red meters below it
        self._text_cache: dict[tuple, str] = {}  # the view widens cells so the columns fill its width

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        line = QFontMetrics(option.font).height()  # type: ignore[attr-defined]
        return QSize(max(self.cell_width, self.size + 16), self.size + 14 + 3 * line)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        item: ImageItem | None = index.data(Role.ITEM)
        if item is None:
            return
        rect: QRect = option.rect  # type: ignore[attr-defined]
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        if selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(rect.adjusted(2, 2, -2, -2), 6, 6)
        thumb_box = QRect(rect.x() + (rect.width() - self.size) // 2, rect.y() + 6, self.size, self.size)
        shown = self._paint_thumbnail(painter, thumb_box, index, item)
        self._paint_badge(painter, thumb_box, item)
        if item.confidence is not None:
            paint_pill(painter, shown, item.confidence, self.low_confidence)
        self._paint_text(painter, option, rect, thumb_box, item, selected)
        painter.restore()

    def _paint_thumbnail(self, painter: QPainter, box: QRect, index: ModelIndex, item: ImageItem) -> QRect:
        """Draw the thumbnail; returns where it went (the box when there is none yet)."""
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is None or pixmap.isNull():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(ERROR.red(), 60, 60, 40) if item.error else QColor(128, 128, 128, 45))
            painter.drawRoundedRect(box.adjusted(6, 6, -6, -6), 6, 6)
            painter.setPen(QColor(120, 120, 120))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "can't open" if item.error else "…")
            return box
        size = pixmap.size()
        if size.width() > box.width() or size.height() > box.height():  # only while a zoom reloads
            size = size.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(
            box.x() + (box.width() - size.width()) // 2,
            box.y() + (box.height() - size.height()) // 2,
            size.width(),
            size.height(),
        )
        painter.drawPixmap(target, pixmap)
        return target

    @staticmethod
    def _paint_badge(painter: QPainter, box: QRect, item: ImageItem) -> None:
        """One dot in the thumbnail's corner: the state that most needs attention wins."""
        if item.error:
            colour, mark = ERROR, "!"
        elif item.status is Status.QUEUED:
            colour, mark = QUEUED, "…"
        elif item.dirty:
            colour, mark = UNSAVED, "●"
        elif item.stored is not None and item.has_caption:
            colour, mark = SAVED, "✓"
        else:
            return
        badge = QRect(box.right() - 19, box.top() + 3, 17, 17)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.setBrush(colour)
        painter.drawEllipse(badge)
        font = QFont(painter.font())
        font.setPixelSize(11)
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, "" if mark == "●" else mark)

    def _paint_text(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        rect: QRect,
        box: QRect,
        item: ImageItem,
        selected: bool,
    ) -> None:
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        text_colour = palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        font = QFont(option.font)  # type: ignore[attr-defined]
        metrics = QFontMetrics(font)
        line = metrics.height()
        text_rect = QRect(rect.x() + 6, box.bottom() + 4, rect.width() - 12, line)
        name_font = QFont(font)
        name_font.setBold(True)
        painter.setFont(name_font)
        painter.setPen(text_colour)
        name = self._laid_out(("name", item.name, text_rect.width(), name_font.key()), lambda: QFontMetrics(
            name_font).elidedText(item.name, Qt.TextElideMode.ElideMiddle, text_rect.width()))
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft, name)
        painter.setFont(font)
        caption_rect = QRect(text_rect.x(), text_rect.bottom() + 1, text_rect.width(), 2 * line)
        if item.error:
            painter.setPen(ERROR if not selected else text_colour)
            body = item.error
        elif item.has_caption:
            painter.setPen(text_colour)
            body = item.caption
        else:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            body = "queued…" if item.status is Status.QUEUED else "no caption"
        lines = self._laid_out(("body", body, caption_rect.width(), font.key()),
                               lambda: _elide_lines(body, metrics, caption_rect.width(), 2))
        for n, text in enumerate(lines.split("\n")):  # line by line: never re-wrapped by the painter
            painter.drawText(caption_rect.adjusted(0, n * line, 0, 0), Qt.AlignmentFlag.AlignLeft, text)

    def _laid_out(self, key: tuple, make: Callable[[], str]) -> str:
        """Elided text per (text, width, font): measuring words on every paint is what made the
        grid slow to repaint while captions stream in."""
        text = self._text_cache.get(key)
        if text is None:
            if len(self._text_cache) > 20_000:
                self._text_cache.clear()
            text = self._text_cache[key] = make()
        return text


def _elide_lines(text: str, metrics: QFontMetrics, width: int, lines: int) -> str:
    """Word-wrap into at most `lines` lines, each fitting `width`; text that does not fit ends
    in an ellipsis (so does a word too long for a line)."""
    words, out, i = text.split(), list[str](), 0
    while i < len(words) and len(out) < lines - 1:
        current, i = words[i], i + 1
        while i < len(words) and metrics.horizontalAdvance(f"{current} {words[i]}") <= width:
            current, i = f"{current} {words[i]}", i + 1
        fits = metrics.horizontalAdvance(current) <= width  # elidedText measures a hair wider
        out.append(current if fits else metrics.elidedText(current, Qt.TextElideMode.ElideRight, width))
    if i < len(words):
        out.append(metrics.elidedText(" ".join(words[i:]), Qt.TextElideMode.ElideRight, width))
    return "\n".join(out)


class ThumbnailGrid(QListView):
    """Icon-mode list that lays out lazily, zooms with Ctrl+wheel and shows a hint when empty."""

    zoom_requested = Signal(int)  # +1 / -1

    def __init__(self, size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.delegate = ThumbnailDelegate(size, self)
        self.setItemDelegate(self.delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(256)
        self.setSpacing(2)
        self.setWordWrap(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setDragEnabled(False)
        self.empty_hint = "Drop photos or folders here\n\nor use File ▸ Open folder… (Ctrl+Shift+O)"

    def set_thumbnail_size(self, size: int) -> None:
        """Cells grow or shrink with the thumbnails: the view must lay them out again even
        when the column width stays (uniform item sizes are cached), or tiles overlap."""
        self.delegate.size = size
        self._fit_columns()
        self.scheduleDelayedItemsLayout()
        self.viewport().update()

    def _fit_columns(self) -> None:
        """Widen cells so whole columns fill the width (no ragged empty band on the right).
        The scroll bar's width is always reserved, so showing it cannot re-trigger a resize."""
        usable = self.width() - 2 * self.frameWidth() - self.verticalScrollBar().sizeHint().width() - 4
        base = self.delegate.size + 16
        columns = max(1, usable // (base + 2 * self.spacing()))
        width = max(base, usable // columns - 2 * self.spacing())
        if width != self.delegate.cell_width:
            self.delegate.cell_width = width
            self.scheduleDelayedItemsLayout()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_requested.emit(1 if event.angleDelta().y() > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.viewport().rect().adjusted(20, 20, -20, -20),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.empty_hint,
            )
            painter.end()
