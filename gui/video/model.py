"""A Qt table model of captioned segments: thumbnail, time span, editable caption, tags.

A segment whose caption the model doubts (confidence below the threshold) is tinted and
carries a red dot, so a person reviewing a long video looks at those first; a caption they
edited is theirs, and is not marked any more.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap

from captioner.segments import Segment, merge_pair, similar_captions
from captioner.video import timecode
from gui.settings import AppSettings
from gui.widgets.confidence import confidence_colour, confidence_word

Index = QModelIndex | QPersistentModelIndex
THUMB, TIME, CAPTION, TAGS = range(4)
ROOT = QModelIndex()  # the invalid parent index of a flat model
HEADERS = ("", "Time", "Caption", "Tags")
DOUBTFUL_TINT = QColor(215, 50, 50, 45)


def dot(colour: QColor, size: int = 12) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor(255, 255, 255))
    painter.setBrush(colour)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return pixmap


def span_text(seg: Segment) -> str:
    """'00:01:05.2 – 00:01:09.6': tenths are enough to find a scene."""
    return f"{timecode(seg.start)[:-2]} – {timecode(seg.end)[:-2]}"


class SegmentModel(QAbstractTableModel):
    """Rows are segments in time order; rows are appended as the worker settles them."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._segments: list[Segment] = []
        self._pixmaps: dict[int, QPixmap] = {}
        self.merge = True
        self.edited = False  # a caption was changed by hand since the run or the last export
        self.low_confidence = AppSettings().low_confidence  # below it a segment is doubtful
        self._by_hand: set[int] = set()  # rows whose caption a person wrote
        self._dots: dict[str, QPixmap] = {}

    def rowCount(self, parent: Index = ROOT) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else len(self._segments)

    def columnCount(self, parent: Index = ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,  # noqa: N802
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        seg = self._segments[index.row()]
        column = index.column()
        confidence = self.confidence(index.row())
        if role == Qt.ItemDataRole.DecorationRole and column == THUMB:
            return self._pixmap(index.row())
        if role == Qt.ItemDataRole.DecorationRole and column == CAPTION and confidence is not None:
            colour = confidence_colour(confidence, self.low_confidence)
            return self._dots.setdefault(colour.name(), dot(colour))
        if role == Qt.ItemDataRole.BackgroundRole and self.doubtful(index.row()):
            return DOUBTFUL_TINT
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == TIME:
                return span_text(seg)
            if column == CAPTION:
                return seg.caption
            if column == TAGS and role == Qt.ItemDataRole.DisplayRole:
                return ", ".join(tag.word for tag in seg.tags)
        if role == Qt.ItemDataRole.ToolTipRole and column in (CAPTION, TAGS):
            sure = "" if confidence is None else \
                f"confidence {confidence:.0%} ({confidence_word(confidence, self.low_confidence)}), "
            tags = ", ".join(f"{t.word} {t.p:.0%}" for t in seg.tags)
            return f"{sure}frame at {timecode(seg.frame_time)}" + (f"\ntags: {tags}" if tags else "")
        if role == Qt.ItemDataRole.UserRole:
            return seg
        return None

    def confidence(self, row: int) -> float | None:
        """The model's confidence in the row's caption; None once a person rewrote it."""
        return None if row in self._by_hand else self._segments[row].confidence

    def doubtful(self, row: int) -> bool:
        confidence = self.confidence(row)
        return confidence is not None and confidence < self.low_confidence

    def doubtful_count(self) -> int:
        return sum(self.doubtful(row) for row in range(len(self._segments)))

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable if index.column() == CAPTION else base

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if role != Qt.ItemDataRole.EditRole or index.column() != CAPTION:
            return False
        row = index.row()
        text = " ".join(str(value).split())
        if text == self._segments[row].caption:
            return False
        self._segments[row] = replace(self._segments[row], caption=text)
        self.edited = True
        self._by_hand.add(row)
        self.dataChanged.emit(index, index, [role])
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1),
                              [Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.DecorationRole])
        return True

    def _pixmap(self, row: int) -> QPixmap | None:
        if row not in self._pixmaps:
            data = self._segments[row].thumbnail
            if not data:
                return None
            pixmap = QPixmap()
            pixmap.loadFromData(data, "JPEG")
            self._pixmaps[row] = pixmap
        return self._pixmaps[row]

    def add(self, seg: Segment) -> None:
        """Append, or grow the last row when it says the same (rows show up at once, merged)."""
        if self.merge and self._segments and similar_captions(self._segments[-1].caption, seg.caption):
            row = len(self._segments) - 1
            merged = merge_pair(self._segments[-1], seg)
            if merged.thumbnail is not self._segments[row].thumbnail:
                self._pixmaps.pop(row, None)
            self._segments[row] = merged
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))
            return
        self.append(seg)

    def append(self, seg: Segment) -> None:
        row = len(self._segments)
        self.beginInsertRows(QModelIndex(), row, row)
        self._segments.append(seg)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._segments, self._pixmaps = [], {}
        self._by_hand = set()
        self.edited = False
        self.endResetModel()

    def segment(self, row: int) -> Segment:
        return self._segments[row]

    def segments(self) -> list[Segment]:
        """The segments with the user's edits, for export."""
        return list(self._segments)
