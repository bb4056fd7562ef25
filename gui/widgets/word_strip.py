"""The attention strip under the preview: one chip per word the model wrote.

Each chip carries a tiny copy of the photo with that word's heat on it, so the whole caption
reads like the "show, attend and tell" figure at a glance. Hover a chip to see the map large;
click to pin it (click again or Esc to unpin); ▶ plays the caption word by word.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.widgets.heatmap import OverlayStyle, overlay_image

ICON = 52


def word_icon(thumbnail: QPixmap | None, grid: np.ndarray, style: OverlayStyle, opacity: float) -> QIcon:
    """The photo at icon size with one word's attention painted over it."""
    if thumbnail is None or thumbnail.isNull():
        return QIcon()
    base = thumbnail.scaled(
        QSize(ICON, ICON),
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    canvas = QPixmap(base)
    painter = QPainter(canvas)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    aspect = base.width() / max(base.height(), 1)
    painter.drawImage(
        QRect(0, 0, base.width(), base.height()),
        overlay_image(grid, aspect, style, min(1.0, opacity + 0.15), longest=64),
    )
    painter.end()
    return QIcon(canvas)


class AttentionStrip(QScrollArea):
    """Signals the word to show: hovered (temporary) and pinned (sticky); -1 means none."""

    hovered = Signal(int)
    pin_requested = Signal(int)  # the word to pin; -1 to unpin

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(ICON + 40)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._inner = QWidget()
        self._layout = QHBoxLayout(self._inner)
        self._layout.setContentsMargins(4, 2, 4, 2)
        self._layout.setSpacing(4)
        self.setWidget(self._inner)
        self.buttons: list[QToolButton] = []
        self.play_button = QToolButton()
        self.play_button.setText("▶")
        self.play_button.setToolTip("Play the caption word by word (Alt+P)")
        self.play_button.clicked.connect(self.toggle_play)
        self._hint = QLabel()
        self.per_word = QLabel()  # the average word probability: for those who want it
        self.per_word.setObjectName("perWord")
        self.per_word.setStyleSheet("color: gray; font-size: 9px;")
        self.per_word.setToolTip("The average probability the model gave each word of its caption "
                                 "(geometric mean). It runs high even for wrong captions: the "
                                 "confidence beside the editor is the calibrated one.")
        self._timer = QTimer(self)
        self._timer.setInterval(900)
        self._timer.timeout.connect(self._play_step)
        self._play_index = -1
        self._pool: list[QToolButton] = []
        self._shown: tuple = ()
        self._icon_key: tuple = ()
        self._icons: dict[int, QIcon] = {}  # model word -> its chip icon, for the map shown
        self._layout.addWidget(self._hint)
        controls = QWidget()  # ▶ with the average word probability under it: no width taken
        column = QVBoxLayout(controls)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.play_button, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(self.per_word, 0, Qt.AlignmentFlag.AlignHCenter)
        self._layout.addWidget(controls)
        self._layout.addStretch(1)
        self.set_words([], None, None, OverlayStyle.HEAT, 0.65)

    def set_words(
        self,
        words: list[str],
        attention: np.ndarray | None,
        thumbnail: QPixmap | None,
        style: OverlayStyle,
        opacity: float,
        hint: str = "",
        model_index: list[int] | None = None,
    ) -> None:
        """Show one chip per word of the caption. `model_index[i]` is the model word whose map
        chip i shows (-1: a word the model did not write, shown without a map); by default
        the words are the model's own. Chips and their icons are reused, and nothing is redone
        when the same caption, map and thumbnail are shown again: this runs on every selection
        and, for an edited caption, on every change of its words."""
        indexes = list(range(len(words))) if model_index is None else model_index
        usable = (attention is not None and len(words) > 0
                  and all(-1 <= i < attention.shape[0] for i in indexes) and any(i >= 0 for i in indexes))
        thumb_key = thumbnail.cacheKey() if thumbnail else 0
        key = (tuple(words), tuple(indexes), id(attention), thumb_key, style, opacity,
               hint) if usable else ("hint", hint)
        if key == self._shown:
            return
        self._shown = key
        self.stop()
        if not usable:
            self._hint.setText(hint or "Caption an image to see where the model looked for each word.")
            self._hint.show()
            self.play_button.hide()
            for button in self._pool:
                button.hide()
            self.buttons = []
            return
        assert attention is not None
        self._hint.hide()
        self.play_button.show()
        while len(self._pool) < len(words):
            self._layout.insertWidget(self._layout.count() - 1, self._chip(len(self._pool)))
        icon_key = (id(attention), thumb_key, style, opacity)
        if icon_key != self._icon_key:
            self._icon_key, self._icons = icon_key, {}
        for index, button in enumerate(self._pool):
            if index < len(words):
                word, model = words[index], indexes[index]
                button.setText(word)
                button.setProperty("word_index", model)
                button.setEnabled(model >= 0)
                if model >= 0 and model not in self._icons:
                    self._icons[model] = word_icon(thumbnail, attention[model], style, opacity)
                button.setIcon(self._icons[model] if model >= 0 else QIcon())
                button.setToolTip(f"Where the model looked when it wrote “{word}” — click to pin"
                                  if model >= 0 else f"“{word}” is not a word the model wrote: no map")
                button.setChecked(False)
            button.setVisible(index < len(words))
        self.buttons = self._pool[: len(words)]

    def set_word_probability(self, probability: float | None) -> None:
        self.per_word.setText("" if probability is None else f"{probability:.0%}/word")
        self.per_word.setVisible(probability is not None)

    def _chip(self, index: int) -> QToolButton:
        button = QToolButton()
        button.setIconSize(QSize(ICON, ICON))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        button.setCheckable(True)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.setProperty("word_index", index)
        button.installEventFilter(self)
        button.clicked.connect(lambda checked=False, b=button: self.pin_requested.emit(
            int(b.property("word_index")) if checked else -1))
        self._pool.append(button)
        return button

    def set_pinned(self, index: int) -> None:
        """Check the chip showing model word `index` (-1: none)."""
        for button in self.buttons:
            button.setChecked(index >= 0 and int(button.property("word_index")) == index)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(watched, QToolButton) and watched in self.buttons:
            if event.type() == QEvent.Type.Enter:
                self.hovered.emit(int(watched.property("word_index")))
            elif event.type() == QEvent.Type.Leave:
                self.hovered.emit(-1)
        return super().eventFilter(watched, event)

    # --- playback -----------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self._timer.isActive():
            self.stop()
            self.pin_requested.emit(-1)
        elif self.buttons:
            self._play_index = -1
            self.play_button.setText("■")
            self._play_step()
            self._timer.start()

    def _play_step(self) -> None:
        playable = [int(b.property("word_index")) for b in self.buttons if int(b.property("word_index")) >= 0]
        self._play_index += 1
        if self._play_index >= len(playable):
            self.stop()
            return
        self.pin_requested.emit(playable[self._play_index])

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def stop(self) -> None:
        self._timer.stop()
        self.play_button.setText("▶")
