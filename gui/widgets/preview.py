"""The large preview: the photo fitted to the widget, with an optional attention overlay.

Painting must stay cheap: the GUI thread shares two cores with captioning. So the photo and
its overlay are composed once per change (image, word, style, size) into a pixmap of exactly
the displayed size; every repaint after that is a plain blit plus the small legend. The
overlay itself is computed at a modest resolution and scaled smoothly during composition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.widgets.heatmap import colour_bar, overlay_image, peak_cell, peak_ratio

BACKGROUND = QColor(32, 33, 36)


@dataclass(frozen=True)
class Attention:
    """One word's map and what the legend says about it."""

    grid: np.ndarray
    word: str
    index: int  # position of the word in the model's caption
    count: int  # words in the model's caption
    pinned: bool = False


class PreviewWidget(QWidget):
    """Shows one image; paints the attention of one word over it when asked."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pixmap: QPixmap | None = None
        self._message = ""
        self._attention: Attention | None = None
        self._overlay: QImage | None = None
        self._scaled: QPixmap | None = None
        self._scaled_key: tuple = ()
        self._frame: QPixmap | None = None
        self._frame_key: tuple = ()
        self.style_name, self.opacity = "heat", 0.65
        self._bar = colour_bar(120, 8)

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    # --- state ---------------------------------------------------------------------------
    def set_pixmap(self, pixmap: QPixmap | None, message: str = "") -> None:
        self._pixmap, self._message = pixmap, message
        self._overlay = None
        self.update()

    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def set_message(self, message: str) -> None:
        self._message = message
        self.update()

    def set_attention(self, attention: Attention | None) -> None:
        self._attention = attention
        self._overlay = None
        self.update()

    def attention(self) -> Attention | None:
        return self._attention

    def set_overlay_style(self, style: str, opacity: float) -> None:
        self.style_name, self.opacity = style, opacity
        self._overlay = None
        self.update()

    def fit_box(self) -> tuple[int, int]:
        """The size a loader should fit photos to, so they are drawn without rescaling."""
        area = self.rect().adjusted(8, 8, -8, -8)
        return max(area.width(), 1), max(area.height(), 1)

    def image_rect(self) -> QRect:
        """Where the photo is drawn: fitted, centred, aspect kept (a photo already fitted to
        fit_box() is used at its own size, so no pixel is rescaled)."""
        if self._pixmap is None or self._pixmap.isNull():
            return QRect()
        area = self.rect().adjusted(8, 8, -8, -8)
        size = self._pixmap.size()
        fits = size.width() <= area.width() and size.height() <= area.height()
        if not (fits and min(area.width() - size.width(), area.height() - size.height()) <= 1):
            size = size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRect(
            area.center().x() - size.width() // 2 + 1,
            area.center().y() - size.height() // 2 + 1,
            size.width(),
            size.height(),
        )

    def overlay(self) -> QImage | None:
        """The current overlay image (computed on demand), or None without attention."""
        if self._attention is None or self._pixmap is None or self._pixmap.isNull():
            return None
        if self._overlay is None:
            aspect = self._pixmap.width() / max(self._pixmap.height(), 1)
            self._overlay = overlay_image(self._attention.grid, aspect, self.style_name, self.opacity)
        return self._overlay

    # --- painting ---------------------------------------------------------------------------
    def _composed(self, target: QRect) -> QPixmap:
        """The photo with its overlay at the displayed size. Two caches: the scaled photo
        (redone when the image or size changes) and the frame with the overlay (redone when
        the word changes too), so stepping through words never rescales the photo."""
        assert self._pixmap is not None
        photo_key = (target.size().toTuple(), self._pixmap.cacheKey())
        if self._scaled is None or photo_key != self._scaled_key:
            self._scaled = self._pixmap.scaled(target.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation)
            self._scaled_key, self._frame = photo_key, None
        overlay = self.overlay()
        if overlay is None or self._attention is None:
            return self._scaled
        frame_key = (photo_key, id(self._attention), self.style_name, self.opacity)
        if self._frame is None or frame_key != self._frame_key:
            frame = QPixmap(self._scaled)
            area = QRect(0, 0, frame.width(), frame.height())
            painter = QPainter(frame)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(QRectF(area), overlay)
            self._paint_peak(painter, area)  # ring and legend are baked in too: repaints just blit
            self._paint_legend(painter, area, self._attention)
            painter.end()
            self._frame, self._frame_key = frame, frame_key
        return self._frame

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        target = self.image_rect()
        if target.isNull():
            self._paint_message(painter)
            return
        painter.drawPixmap(target.topLeft(), self._composed(target))
        painter.end()

    def _paint_message(self, painter: QPainter) -> None:
        if not self._message:
            return
        painter.setPen(QColor(190, 190, 195))
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        painter.setFont(font)
        painter.drawText(
            self.rect().adjusted(24, 24, -24, -24),
            Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            self._message,
        )

    def _paint_peak(self, painter: QPainter, target: QRect) -> None:
        """A thin ring where the word's attention peaks: the eye finds it even on pale heat."""
        assert self._attention is not None
        fx, fy = peak_cell(self._attention.grid)
        centre = QPointF(target.x() + fx * target.width(), target.y() + fy * target.height())
        radius = max(6.0, min(target.width(), target.height()) / 28)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(0, 0, 0, 150), 3.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(centre, radius, radius)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 1.6))
        painter.drawEllipse(centre, radius, radius)

    def _paint_legend(self, painter: QPainter, target: QRect, att: Attention) -> None:
        word_font = QFont(self.font())
        word_font.setPointSizeF(word_font.pointSizeF() * 1.5)
        word_font.setBold(True)
        small = QFont(self.font())
        small.setPointSizeF(max(small.pointSizeF() * 0.9, 7.0))
        detail = f"word {att.index + 1} of {att.count} · peak {peak_ratio(att.grid):.1f}× uniform"
        if att.pinned:
            detail += " · pinned"
        word_w = QFontMetrics(word_font).horizontalAdvance(f"“{att.word}”") + 24
        width = int(max(word_w, QFontMetrics(small).horizontalAdvance(detail) + 24, 150))
        height = 70 if self.style_name == "heat" else 56
        box = QRect(target.left() + 10, target.bottom() - height - 10, width, height)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(box, 8, 8)
        painter.setPen(QColor(255, 255, 255))
        painter.setFont(word_font)
        painter.drawText(box.adjusted(12, 6, -8, 0), Qt.AlignmentFlag.AlignLeft, f"“{att.word}”")
        painter.setFont(small)
        painter.setPen(QColor(215, 215, 220))
        painter.drawText(box.adjusted(12, 34, -8, 0), Qt.AlignmentFlag.AlignLeft, detail)
        if self.style_name == "heat":
            painter.drawImage(QRect(box.left() + 12, box.bottom() - 14, box.width() - 24, 6), self._bar)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)
