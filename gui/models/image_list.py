"""The list of opened images as a Qt model, and the filter the grid shows it through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import IntEnum
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from captioner.writers import sidecar_path
from gui.models.items import ImageItem, Source, Status
from gui.models.thumbnails import ThumbnailCache

ModelIndex = QModelIndex | QPersistentModelIndex


class Role(IntEnum):
    ITEM = Qt.ItemDataRole.UserRole + 1
    CAPTION = Qt.ItemDataRole.UserRole + 2
    DIRTY = Qt.ItemDataRole.UserRole + 3
    ERROR = Qt.ItemDataRole.UserRole + 4


class ImageListModel(QAbstractListModel):
    """Owns the ImageItems, in the order they were opened; one row per distinct path."""

    def __init__(self, thumbnails: ThumbnailCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self._items: list[ImageItem] = []
        self._rows: dict[Path, int] = {}
        self._folders: Counter[Path] = Counter()  # kept up to date: the title asks often
        # caption file -> the first listed image that writes it (photo.jpg before photo.png)
        self._sidecar_owners: dict[Path, ImageItem] = {}
        thumbnails.ready.connect(self._on_thumbnail)

    # --- Qt model API ----------------------------------------------------------------------
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.name
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(item.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(item)
        if role == Role.ITEM:
            return item
        if role == Role.CAPTION:
            return item.caption
        if role == Role.DIRTY:
            return item.dirty
        if role == Role.ERROR:
            return item.error
        return None

    @staticmethod
    def _tooltip(item: ImageItem) -> str:
        lines = [str(item.path)]
        if item.error:
            lines.append(f"⚠ {item.error}")
        if item.caption:
            lines.append(item.caption)
        if item.dirty:
            lines.append("(unsaved)")
        if item.confidence is not None:
            lines.append(f"confidence {item.confidence:.0%}")
        if item.tags:
            lines.append("tags: " + ", ".join(t.word for t in item.tags))
        return "\n".join(lines)

    # --- items -----------------------------------------------------------------------------
    def items(self) -> list[ImageItem]:
        return list(self._items)

    def item_at(self, row: int) -> ImageItem:
        return self._items[row]

    def item_for(self, path: Path) -> ImageItem | None:
        row = self._rows.get(path)
        return None if row is None else self._items[row]

    def sidecar_owner(self, item: ImageItem) -> ImageItem:
        """The listed image whose caption goes into this item's caption file: itself, unless
        an image with the same name and another extension was listed first."""
        return self._sidecar_owners.get(sidecar_path(item.path), item)

    def row_of(self, item: ImageItem) -> int:
        return self._rows.get(item.path, -1)

    def add(self, entries: Iterable[tuple[Path, str | None]]) -> list[ImageItem]:
        """Append new paths (with their sidecar text); paths already listed are skipped."""
        fresh: list[ImageItem] = []
        seen = set(self._rows)
        for path, sidecar in entries:
            if path in seen:
                continue
            seen.add(path)
            item = ImageItem(
                path,
                caption=sidecar or "",
                saved=sidecar,
                source=Source.DISK if sidecar is not None else Source.NONE,
            )
            fresh.append(item)
        if fresh:
            first = len(self._items)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for offset, item in enumerate(fresh):
                self._rows[item.path] = first + offset
                self._folders[item.path.parent] += 1
                self._sidecar_owners.setdefault(sidecar_path(item.path), item)
            self._items.extend(fresh)
            self.endInsertRows()
        return fresh

    def remove(self, items: Iterable[ImageItem]) -> None:
        doomed = {id(i) for i in items}
        rows = sorted((self.row_of(i) for i in self._items if id(i) in doomed), reverse=True)
        for row in rows:
            self.beginRemoveRows(QModelIndex(), row, row)
            self._folders[self._items[row].path.parent] -= 1
            del self._items[row]
            self.endRemoveRows()
        self._rows = {item.path: row for row, item in enumerate(self._items)}
        self._folders = +self._folders  # drop folders with no image left
        self._sidecar_owners = {}
        for item in self._items:
            self._sidecar_owners.setdefault(sidecar_path(item.path), item)

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self._rows.clear()
        self._folders.clear()
        self._sidecar_owners.clear()
        self.thumbnails.clear()
        self.endResetModel()

    def folders(self) -> list[Path]:
        """The folders the listed images are in."""
        return list(self._folders)

    def changed(self, item: ImageItem) -> None:
        """Tell views an item's caption, status or error changed."""
        row = self.row_of(item)
        if row >= 0:
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def counts(self) -> dict[str, int]:
        return {
            "total": len(self._items),
            "captioned": sum(i.has_caption for i in self._items),
            "unsaved": sum(i.dirty for i in self._items),
            "errors": sum(bool(i.error) for i in self._items),
            "queued": sum(i.status is Status.QUEUED for i in self._items),
        }

    def _on_thumbnail(self, path: Path) -> None:
        row = self._rows.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class Show(IntEnum):
    ALL = 0
    UNCAPTIONED = 1
    UNSAVED = 2
    ERRORS = 3
    LOW = 4


SHOW_LABELS = {
    Show.ALL: "All",
    Show.UNCAPTIONED: "Uncaptioned",
    Show.UNSAVED: "Unsaved",
    Show.ERRORS: "Problems",
    Show.LOW: "Low confidence",
}


class Sort(IntEnum):
    LIST = 0
    CONFIDENCE = 1
    NAME = 2


SORT_LABELS = {
    Sort.LIST: "As opened",
    Sort.CONFIDENCE: "Lowest confidence first",
    Sort.NAME: "File name",
}
TAG_PREFIX = "tag:"


def tag_terms(text: str) -> list[str]:
    """The tags a filter text asks for: its "tag:WORD" terms."""
    return [w[len(TAG_PREFIX):] for w in text.lower().split() if w.startswith(TAG_PREFIX) and w != TAG_PREFIX]


def is_low(item: ImageItem, threshold: float) -> bool:
    """A model caption the model itself doubts (no confidence: not counted as doubtful)."""
    return item.confidence is not None and item.confidence < threshold


def sort_key(item: ImageItem, sort: Sort) -> tuple:
    if sort is Sort.CONFIDENCE:  # doubtful first; captions with no confidence (a person's) last
        confidence = item.confidence
        return (1, 0.0) if confidence is None else (0, confidence)
    if sort is Sort.NAME:
        return (item.name.lower(),)
    return ()


class ImageFilter(QSortFilterProxyModel):
    """Filter by words in the caption or file name, by tag ("tag:dog"), by state (uncaptioned,
    unsaved, low confidence...), and sort.

    The current item is always let through: editing a caption so that it stops matching
    must not make the image vanish from under the cursor. Sorting uses keys taken when the
    sort is chosen (or refreshed after a run), so fixing a doubtful caption does not make it
    jump away while the person reviews the list in order.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self._tags: list[str] = []
        self._show = Show.ALL
        self._sort = Sort.LIST
        self._keys: dict[Path, tuple] = {}
        self._pinned: ImageItem | None = None
        self.low_confidence = 0.5
        self.setDynamicSortFilter(True)

    def set_text(self, text: str) -> None:
        words = text.lower().split()
        self._tags = tag_terms(text)
        self._words = [w for w in words if not w.startswith(TAG_PREFIX)]
        self.invalidateRowsFilter()

    def set_show(self, show: Show) -> None:
        self._show = Show(show)
        self.invalidateRowsFilter()

    def set_low_confidence(self, threshold: float) -> None:
        self.low_confidence = threshold
        if self._show is Show.LOW:
            self.invalidateRowsFilter()

    def set_sort(self, sort: Sort) -> None:
        """Order the grid; LIST is the order the photos were opened in."""
        self._sort = Sort(sort)
        self.refresh_sort()

    def sort_mode(self) -> Sort:
        return self._sort

    def refresh_sort(self) -> None:
        """Take the sort keys anew (when the sort is chosen, and after a caption run)."""
        self._keys.clear()
        self.sort(-1 if self._sort is Sort.LIST else 0)
        self.invalidate()

    def set_pinned(self, item: ImageItem | None) -> None:
        if item is not self._pinned:
            previous, self._pinned = self._pinned, item
            if self.is_filtering() and previous is not None:  # only then can a row come or go
                self.invalidateRowsFilter()

    def is_filtering(self) -> bool:
        return bool(self._words or self._tags) or self._show is not Show.ALL

    def lessThan(self, left: ModelIndex, right: ModelIndex) -> bool:
        source = self.sourceModel()
        assert isinstance(source, ImageListModel)
        a, b = self._key(source.item_at(left.row())), self._key(source.item_at(right.row()))
        return (a, left.row()) < (b, right.row())

    def _key(self, item: ImageItem) -> tuple:
        key = self._keys.get(item.path)
        if key is None:
            key = self._keys[item.path] = sort_key(item, self._sort)
        return key

    def filterAcceptsRow(self, row: int, parent: ModelIndex) -> bool:
        source = self.sourceModel()
        assert isinstance(source, ImageListModel)
        item = source.item_at(row)
        if item is self._pinned:
            return True
        if self._show is Show.UNCAPTIONED and item.has_caption:
            return False
        if self._show is Show.UNSAVED and not item.dirty:
            return False
        if self._show is Show.ERRORS and not item.error:
            return False
        if self._show is Show.LOW and not is_low(item, self.low_confidence):
            return False
        if self._tags:
            have = {t.word.lower() for t in item.tags}
            if not all(tag in have for tag in self._tags):
                return False
        if self._words:
            haystack = f"{item.caption} {item.name}".lower()
            return all(word in haystack for word in self._words)
        return True
