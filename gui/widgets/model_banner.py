"""A strip above the tabs that says why captioning is not available, with the fix."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton


class ModelBanner(QFrame):
    open_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("modelBanner")
        self.setStyleSheet(
            "#modelBanner { background: #fff3cd; border-bottom: 1px solid #e0c060; }"
            "#modelBanner QLabel { color: #5a4300; }"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        row.addWidget(self.label, 1)
        button = QPushButton("Open model bundle…")
        button.clicked.connect(self.open_requested)
        row.addWidget(button)
        self.hide()

    def show_text(self, text: str) -> None:
        """Shown with `text`; hidden when there is nothing to say."""
        self.label.setText(text)
        self.setVisible(bool(text))
