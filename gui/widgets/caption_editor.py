"""The caption editor: plain text, one line, whose words light up under the mouse.

Hovering a word emits its index so the preview can paint that word's attention. Undo is not
the widget's own: each image keeps its own QUndoStack (see gui/undo.py), so undo follows the
image, survives switching images, and also covers model captions and picked alternatives.
The editor therefore lets the window's Undo/Redo and navigation shortcuts through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QMimeData, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QMouseEvent, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


def word_spans(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]


class CaptionEditor(QPlainTextEdit):
    """Emits `edited` for the person's changes only, never for `set_text`."""

    edited = Signal(str)
    word_hovered = Signal(int)  # index into word_spans(text), -1 when off the words
    accept_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setUndoRedoEnabled(False)
        self.setTabChangesFocus(True)
        self.setPlaceholderText("No caption yet — type one, or caption this image (Ctrl+R)")
        self.viewport().setMouseTracking(True)
        self.passthrough: list[QKeySequence] = [
            QKeySequence(QKeySequence.StandardKey.Undo),
            QKeySequence(QKeySequence.StandardKey.Redo),
        ]
        self._hovered = -1
        self._marked = -1
        self._setting = False
        self.textChanged.connect(self._on_text_changed)

    # --- text ----------------------------------------------------------------------------
    def text(self) -> str:
        return self.toPlainText()

    def set_text(self, text: str) -> None:
        """Replace the text programmatically, keeping the cursor where it was when possible."""
        if text == self.toPlainText():
            return
        position = self.textCursor().position()
        self._setting = True
        try:
            self.setPlainText(text)
        finally:
            self._setting = False
        cursor = self.textCursor()
        cursor.setPosition(min(position, len(text)))
        self.setTextCursor(cursor)
        self._hovered = -1
        self._refresh_marks()

    def cursor_position(self) -> int:
        return self.textCursor().position()

    def set_cursor_position(self, position: int) -> None:
        cursor = self.textCursor()
        cursor.setPosition(max(0, min(position, len(self.toPlainText()))))
        self.setTextCursor(cursor)

    def _on_text_changed(self) -> None:
        self._refresh_marks()
        if not self._setting:
            self.edited.emit(self.toPlainText())

    def insertFromMimeData(self, source: QMimeData) -> None:
        """Pasted text becomes one line: a newline inside a sidecar caption breaks training tools."""
        text = " ".join(source.text().split())
        if text:
            self.insertPlainText(text)

    # --- keys ---------------------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            combo = QKeySequence(event.keyCombination())
            if any(combo.matches(seq) == QKeySequence.SequenceMatch.ExactMatch for seq in self.passthrough):
                event.ignore()  # let the window's shortcut have it
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier):
                self.accept_requested.emit()  # a caption is one line: Enter means "done"
            event.accept()
            return
        super().keyPressEvent(event)

    # --- hovering words -------------------------------------------------------------------
    def word_rect(self, index: int) -> QRect:
        """The viewport rectangle of word `index` (first line part if it wraps)."""
        spans = word_spans(self.toPlainText())
        if not 0 <= index < len(spans):
            return QRect()
        span = spans[index]
        cursor = QTextCursor(self.document())
        cursor.setPosition(span.start)
        start = self.cursorRect(cursor)
        cursor.setPosition(span.end)
        end = self.cursorRect(cursor)
        if end.top() != start.top():  # wrapped: take up to the end of the first line
            return QRect(start.left(), start.top(), self.viewport().width() - start.left(), start.height())
        return QRect(start.left(), start.top(), max(end.left() - start.left(), 2), start.height())

    def word_at(self, pos: QPoint) -> int:
        for index in range(len(word_spans(self.toPlainText()))):
            if self.word_rect(index).adjusted(-2, 0, 2, 0).contains(pos):
                return index
        return -1

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        self._set_hovered(self.word_at(event.position().toPoint()))

    def leaveEvent(self, event: QEvent) -> None:
        super().leaveEvent(event)
        self._set_hovered(-1)

    def _set_hovered(self, index: int) -> None:
        if index != self._hovered:
            self._hovered = index
            self._refresh_marks()
            self.word_hovered.emit(index)

    def mark_word(self, index: int) -> None:
        """Underline the word whose attention the preview shows (hovered elsewhere or pinned)."""
        if index != self._marked:
            self._marked = index
            self._refresh_marks()

    def hovered_word(self) -> int:
        return self._hovered

    def _refresh_marks(self) -> None:
        spans = word_spans(self.toPlainText())
        selections = []
        for index, colour in (
            (self._marked, QColor(255, 196, 0, 90)),
            (self._hovered, QColor(255, 160, 0, 150)),
        ):
            if not 0 <= index < len(spans):
                continue
            selection = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(colour)
            selection.format = fmt  # type: ignore[attr-defined]
            cursor = QTextCursor(self.document())
            cursor.setPosition(spans[index].start)
            cursor.setPosition(spans[index].end, QTextCursor.MoveMode.KeepAnchor)
            selection.cursor = cursor  # type: ignore[attr-defined]
            selections.append(selection)
        self.setExtraSelections(selections)


def insert_word(text: str, position: int, word: str) -> tuple[str, int]:
    """`word` put into `text` at `position` as a word of its own (spaces added where needed);
    returns the new text and the position just after the word."""
    position = max(0, min(position, len(text)))
    before, after = text[:position], text[position:]
    lead = " " if before and not before[-1].isspace() else ""
    trail = " " if after and not after[0].isspace() else ""
    new = f"{before}{lead}{word}{trail}{after}"
    return new, len(before) + len(lead) + len(word)
