"""Help ▸ Keyboard shortcuts and Help ▸ About."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox, QWidget


def show_shortcuts(parent: QWidget, actions: list[QAction]) -> None:
    """Every action that has a shortcut, as the menus name it."""
    rows = [
        (a.text().replace("&&", "&").replace("&", ""), " or ".join(s.toString() for s in a.shortcuts()))
        for a in actions
        if a.shortcuts()
    ]
    body = "".join(f"<tr><td>{t}</td><td>&nbsp;&nbsp;<b>{k}</b></td></tr>" for t, k in rows)
    QMessageBox.information(
        parent,
        "Keyboard shortcuts",
        f"<table>{body}</table>"
        "<p>In the caption: Enter accepts; hover a word to see where the model looked. "
        "In the grid: Delete removes the selected images from the list.</p>",
    )


def show_about(parent: QWidget) -> None:
    QMessageBox.about(
        parent,
        "About Captioner",
        "<b>Captioner</b><br>Offline image captioning: a CNN encoder "
        "and an attention LSTM, run by onnxruntime.<br>Hover a word of a caption to see "
        "where the model looked when it wrote it.",
    )
