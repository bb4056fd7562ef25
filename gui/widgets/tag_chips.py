"""The photo's tags as chips under the caption: click one to put the word into the caption at
the cursor. The words the caption already says (or a plural or synonym of them) are greyed,
so the chips read as "what the caption may have missed".
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from captioner.tags import Tag, mentioned


class TagChips(QWidget):
    """One flat button per tag; `insert_requested(word)` when one is clicked."""

    insert_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tagChips")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self._layout.addWidget(QLabel("Tags:"))
        self._layout.addStretch(1)
        self.buttons: list[QToolButton] = []
        self._pool: list[QToolButton] = []
        self._shown: tuple = ()
        self.setVisible(False)

    def set_tags(self, tags: list[Tag], caption: str) -> None:
        """Show these tags (hidden when there are none); chips are reused."""
        words = caption.lower().replace(",", " ").replace(".", " ").split()
        key = (tuple(tags), tuple(words))
        if key == self._shown:
            return
        self._shown = key
        while len(self._pool) < len(tags):
            self._layout.insertWidget(self._layout.count() - 1, self._chip())
        for button, tag in zip(self._pool, tags, strict=False):
            said = mentioned(tag.word, words)
            button.setText(tag.word)
            button.setProperty("word", tag.word)
            button.setStyleSheet("color: gray;" if said else "")
            button.setToolTip(f"“{tag.word}”: {tag.p:.0%} likely in the photo"
                              + (" — the caption says it" if said else " — click to add it at the cursor"))
        for index, button in enumerate(self._pool):
            button.setVisible(index < len(tags))
        self.buttons = self._pool[: len(tags)]
        self.setVisible(bool(tags))

    def _chip(self) -> QToolButton:
        button = QToolButton()
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the editor keeps focus and its cursor
        button.setStyleSheet("")
        button.clicked.connect(lambda _=False, b=button: self.insert_requested.emit(str(b.property("word"))))
        self._pool.append(button)
        return button
