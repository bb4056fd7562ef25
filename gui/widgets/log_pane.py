"""The log pane: every error and notable event, timestamped, newest at the bottom.

Errors also show on the item they concern; the log is where a person reads all of them after
a long batch. It keeps the last few thousand lines so a runaway job cannot eat memory.
"""

from __future__ import annotations

import html
import time

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget

COLOURS = {"error": "#d03030", "warning": "#c07000", "info": ""}


class LogPane(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSizeF(max(self.font().pointSizeF() * 0.9, 7.0))
        self.setFont(font)
        self.setPlaceholderText("Errors and events appear here.")
        self.counts = {"error": 0, "warning": 0, "info": 0}

    def log(self, text: str, level: str = "info") -> None:
        self.counts[level] = self.counts.get(level, 0) + 1
        stamp = time.strftime("%H:%M:%S")
        body = html.escape(text)
        colour = COLOURS.get(level, "")
        if colour:
            body = f'<span style="color:{colour}">{level}: {body}</span>'
        self.appendHtml(f'<span style="color:#888">{stamp}</span>&nbsp;&nbsp;{body}')

    def lines(self) -> list[str]:
        return self.toPlainText().splitlines()
