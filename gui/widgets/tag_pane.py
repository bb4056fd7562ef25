"""The tag-count pane (as taggui's tag dock): how many of the listed photos carry each tag.
Click a tag to list only the photos with it (the filter box then says "tag:WORD", so it is
visible and cleared like any filter); click it again to drop it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.models.items import ImageItem

WORD_ROLE = Qt.ItemDataRole.UserRole + 1


def count_tags(items: Iterable[ImageItem]) -> list[tuple[str, int]]:
    """Tag words and how many photos carry each, most common first (then by word)."""
    counts: Counter[str] = Counter()
    for item in items:
        counts.update({tag.word for tag in item.tags})
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))


class TagPane(QWidget):
    tag_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tagPane")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(2)
        self.title = QLabel("<b>Tags</b> in the listed photos")
        layout.addWidget(self.title)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Tag", "Photos"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.tree.setToolTip("Click a tag to list only the photos with it; click again to list all")
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemClicked.connect(lambda row, _c: self.tag_clicked.emit(row.data(0, WORD_ROLE)))
        layout.addWidget(self.tree, 1)
        self._shown: tuple = ()

    def set_counts(self, counts: list[tuple[str, int]], active: list[str], empty: str = "") -> None:
        """Show these counts; the tags the list is filtered by are bold; `empty` says why
        there are none."""
        key = (tuple(counts), tuple(active), empty)
        if key == self._shown:
            return
        self._shown = key
        self.tree.clear()
        for word, count in counts:
            row = QTreeWidgetItem([word, str(count)])
            row.setData(0, WORD_ROLE, word)
            row.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if word in active:
                font = row.font(0)
                font.setBold(True)
                row.setFont(0, font)
                row.setFont(1, font)
                row.setText(0, f"✓ {word}")
            self.tree.addTopLevelItem(row)
        if not counts:
            row = QTreeWidgetItem([empty or "no tags yet (caption the photos)", ""])
            row.setFlags(Qt.ItemFlag.NoItemFlags)
            row.setData(0, WORD_ROLE, "")
            self.tree.addTopLevelItem(row)

    def words(self) -> list[str]:
        rows = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [row.data(0, WORD_ROLE) for row in rows if row is not None and row.data(0, WORD_ROLE)]
