"""The n-best list: the model's other candidate captions, with scores, one click to use one.

The score is what the beam search ranks by: log-probability / (words + 1) ** 0.7; it only
orders the candidates. The number people judge a caption by is its calibrated confidence,
shown beside the editor; "about 60 % per word" (the geometric mean, recovered from the score)
over-states how often a caption is right, so it is only in the tooltip and the word strip.
The caption on disk (if it differs) is listed too, so going back to it is also one click.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from captioner.search import SearchConfig

TEXT_ROLE = Qt.ItemDataRole.UserRole + 1
LENGTH_PENALTY = SearchConfig().length_penalty


def per_word_probability(text: str, score: float) -> float:
    """Undo the length normalisation: the mean log-probability per token (words + <end>)."""
    tokens = len(text.split()) + 1
    return math.exp(score * tokens ** (LENGTH_PENALTY - 1.0))


class WrappingDelegate(QStyledItemDelegate):
    """Candidate captions wrap to the column's width (a tree view would cut them off)."""

    def __init__(self, view: QTreeWidget) -> None:
        super().__init__(view)
        self.view = view

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        width = max(self.view.columnWidth(index.column()) - 8, 40)
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        bounds = QFontMetrics(option.font).boundingRect(  # type: ignore[attr-defined]
            QRect(0, 0, width, 10_000), int(Qt.TextFlag.TextWordWrap), text)
        return QSize(width, bounds.height() + 6)

    def initStyleOption(self, option: QStyleOptionViewItem,
                        index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.features |= QStyleOptionViewItem.ViewItemFeature.WrapText  # type: ignore[attr-defined]


class NBestList(QTreeWidget):
    picked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["", "Candidate caption", "Score"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(False)
        self.setWordWrap(True)  # long candidates wrap instead of being cut off
        self.setItemDelegateForColumn(1, WrappingDelegate(self))
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.sectionResized.connect(lambda *_: self.scheduleDelayedItemsLayout())
        self.itemClicked.connect(self._on_clicked)
        self.itemActivated.connect(self._on_clicked)

    def set_entries(self, alternatives: list[tuple[str, float]], saved: str | None, current: str) -> None:
        self.clear()
        texts = [text for text, _ in alternatives]
        rows: list[tuple[str, str, str, str]] = []
        for rank, (text, score) in enumerate(alternatives, 1):
            rows.append(
                (
                    f"Alt+{rank}" if rank <= 9 else "",
                    text,
                    f"{score:+.2f}",
                    "the beam-search score (log-probability / length ** 0.7), higher ranks first; "
                    f"the model gave each word {per_word_probability(text, score):.0%} on average",
                )
            )
        if saved and saved.strip() not in texts:
            rows.append(("disk", saved, "", "the caption stored in the .txt file next to the image"))
        for key, text, score_text, tip in rows:
            row = QTreeWidgetItem(["", text, score_text])
            row.setText(0, key)
            row.setData(0, TEXT_ROLE, text)
            row.setToolTip(1, text)
            row.setToolTip(2, tip)
            row.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if text.strip() == current.strip():
                font = QFont(self.font())
                font.setBold(True)
                for column in range(3):
                    row.setFont(column, font)
                row.setText(0, f"✓ {key}")
            self.addTopLevelItem(row)

    def texts(self) -> list[str]:
        rows = (self.topLevelItem(i) for i in range(self.topLevelItemCount()))
        return [row.data(0, TEXT_ROLE) for row in rows if row is not None]

    def pick(self, rank: int) -> bool:
        """Use candidate number `rank` (1-based); False if there is no such candidate."""
        texts = self.texts()
        if not 1 <= rank <= len(texts):
            return False
        self.picked.emit(texts[rank - 1])
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if Qt.Key.Key_1 <= event.key() <= Qt.Key.Key_9 and not event.modifiers():
            self.pick(event.key() - Qt.Key.Key_0)
            return
        super().keyPressEvent(event)

    def _on_clicked(self, row: QTreeWidgetItem, column: int = 0) -> None:
        self.picked.emit(row.data(0, TEXT_ROLE))
