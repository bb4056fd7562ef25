"""A Qt table model of captioned segments: thumbnail, time span, editable caption."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPixmap

from captioner.segments import Segment, merge_pair, similar_captions
from captioner.video import timecode

Index = QModelIndex | QPersistentModelIndex
THUMB, TIME, CAPTION = range(3)
ROOT = QModelIndex()  # the invalid parent index of a flat model
HEADERS = ("", "Time", "Caption")


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
        if role == Qt.ItemDataRole.DecorationRole and column == THUMB:
            return self._pixmap(index.row())
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == TIME:
                return span_text(seg)
            if column == CAPTION:
                return seg.caption
        if role == Qt.ItemDataRole.ToolTipRole and column == CAPTION:
            return f"score {seg.score:.3f}, frame at {timecode(seg.frame_time)}"
        if role == Qt.ItemDataRole.UserRole:
            return seg
        return None

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
        self.dataChanged.emit(index, index, [role])
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
        self.edited = False
        self.endResetModel()

    def segment(self, row: int) -> Segment:
        return self._segments[row]

    def segments(self) -> list[Segment]:
        """The segments with the user's edits, for export."""
        return list(self._segments)
