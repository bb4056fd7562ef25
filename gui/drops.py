"""'Drop anywhere': file drops on the window, or on any child of it, open those files.

Children that take drops themselves (text boxes) would paste the file's URL; this filter
takes file drops from them and hands them to `dropped` instead. Widgets with drops of their
own (the Video tab) are left alone.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, Signal
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QWidget


def dropped_paths(mime: QMimeData) -> list[Path]:
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class FileDrops(QObject):
    dropped = Signal(list)  # list[Path]

    def install(self, window: QWidget, keep_own: list[QWidget]) -> None:
        """Route file drops on `window` and its drop-taking children, except inside `keep_own`."""
        window.setAcceptDrops(True)
        window.installEventFilter(self)
        for widget in window.findChildren(QWidget):
            own = any(w is widget or w.isAncestorOf(widget) for w in keep_own)
            if widget.acceptDrops() and not own:
                widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            assert isinstance(event, QDropEvent)  # QDragEnterEvent and QDragMoveEvent derive from it
            paths = dropped_paths(event.mimeData())
            if paths:
                event.acceptProposedAction()
                if kind == QEvent.Type.Drop:
                    self.dropped.emit(paths)
                return True
        return super().eventFilter(watched, event)
