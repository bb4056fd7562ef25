"""The n-best list: the model's other candidate captions, with scores, one click to use one.

The score is the length-normalised log-probability the beam search ranks by; exp(score) is
shown as well, because "the model gave each word ~70 % on average" means more to a person
than "-0.36". The caption on disk (if it differs) is listed too, so going back to it is also
one click.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

TEXT_ROLE = Qt.ItemDataRole.UserRole + 1


class NBestList(QTreeWidget):
    picked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["", "Candidate caption", "Score"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
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
                    f"{score:+.2f}  ({math.exp(score):.0%})",
                    "mean log-probability per word (and its exponential: the average word "
                    "probability); nearer 0 / 100 % is more confident",
                )
            )
        if saved and saved.strip() not in texts:
            rows.append(("disk", saved, "", "the caption stored in the .txt file next to the image"))
        for key, text, score, tip in rows:
            row = QTreeWidgetItem(["", text, score])
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
        return [self.topLevelItem(i).data(0, TEXT_ROLE) for i in range(self.topLevelItemCount())]

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
