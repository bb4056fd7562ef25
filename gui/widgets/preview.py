"""The large preview: the photo fitted to the widget, with an optional attention overlay.

Painting must stay cheap: the GUI thread shares two cores with captioning. So the photo and
its overlay are composed once per change (image, word, style, size) into a pixmap of exactly
the displayed size; every repaint after that is a plain blit plus the small legend. The
overlay itself is computed at a modest resolution and scaled smoothly during composition.

Zoom (wheel around the cursor, double-click or Ctrl+0 for fit / 100 %, drag to pan) draws
only the visible part of the photo and of the overlay, from the same rectangle, so the heat
stays on the pixels it belongs to at any scale. 100 % means one pixel of the photo file per
screen pixel: the page hands in the photo's own size and a full-size copy when one is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
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
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.widgets.heatmap import OverlayStyle, colour_bar, overlay_image, peak_cell, peak_ratio

BACKGROUND = QColor(32, 33, 36)
MAX_SCALE = 8.0  # 800 %: enough to see single pixels
WHEEL_STEP = 1.25


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
    detail_wanted = Signal()  # zoomed in past the loaded copy's resolution: load the full photo
    zoom_changed = Signal(object)  # the scale (photo px -> screen px), None when fitted

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
        self.style_name, self.opacity = OverlayStyle.HEAT, 0.65
        self._bar = colour_bar(120, 8)
        self._natural = QSize()  # the photo file's size (upright); empty: the pixmap's own
        self._scale: float | None = None  # None: fitted to the widget
        self._centre = QPointF(0.5, 0.5)  # the photo point (0-1) at the widget's centre
        self._press: QPoint | None = None
        self._dragged = False

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    # --- state ---------------------------------------------------------------------------
    def set_pixmap(self, pixmap: QPixmap | None, message: str = "", natural: QSize | None = None) -> None:
        """Show a photo (a copy of any size); `natural` is the file's own size, for 100 %. The
        zoom stays: a sharper copy of the same photo replaces a smaller one in place."""
        self._pixmap, self._message = pixmap, message
        self._natural = QSize(natural) if natural is not None and natural.isValid() else QSize()
        self._overlay = None
        self.update()
        self._want_detail()

    # --- zoom ------------------------------------------------------------------------------
    def natural_size(self) -> QSize:
        if self._natural.isValid() and not self._natural.isEmpty():
            return self._natural
        return self._pixmap.size() if self._pixmap is not None else QSize()

    def scale(self) -> float | None:
        """Photo pixels to screen pixels; None when the photo is fitted to the widget."""
        return self._scale

    def fit_scale(self) -> float:
        natural, area = self.natural_size(), self.rect().adjusted(8, 8, -8, -8)
        if natural.isEmpty():
            return 1.0
        return min(area.width() / natural.width(), area.height() / natural.height())

    def reset_zoom(self) -> None:
        """Back to fit (a new photo is shown fitted)."""
        self._set_scale(None)

    def toggle_zoom(self, anchor: QPointF | None = None) -> None:
        """Fit <-> 100 %, keeping the photo point under `anchor` (default: the centre) still."""
        self.zoom_to(None if self._scale is not None else 1.0, anchor)

    def zoom_to(self, scale: float | None, anchor: QPointF | None = None) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            return
        anchor = anchor if anchor is not None else QPointF(self.rect().center())
        before = self._photo_point(anchor)
        if scale is not None:
            scale = min(scale, MAX_SCALE)
            if scale <= self.fit_scale() * 1.001:
                scale = None
        self._set_scale(scale)
        if scale is not None:  # keep the photo point under the anchor where it was
            size = self.image_rect().size()
            centre = QPointF(self.rect().center())
            self._centre = QPointF(before.x() - (anchor.x() - centre.x()) / size.width(),
                                   before.y() - (anchor.y() - centre.y()) / size.height())
            self._clamp_centre()
        self.update()
        self._want_detail()

    def _set_scale(self, scale: float | None) -> None:
        if scale != self._scale:
            self._scale = scale
            if scale is None:
                self._centre = QPointF(0.5, 0.5)
            self.update()
            self.zoom_changed.emit(scale)

    def _photo_point(self, pos: QPointF) -> QPointF:
        """The photo point (0-1 in each direction) under a widget position."""
        rect = self.image_rect()
        if rect.isEmpty():
            return QPointF(0.5, 0.5)
        return QPointF((pos.x() - rect.x()) / rect.width(), (pos.y() - rect.y()) / rect.height())

    def _clamp_centre(self) -> None:
        """A zoomed photo never leaves empty space on a side it could fill."""
        rect, area = self.image_rect(), self.rect()
        if rect.isEmpty():
            return
        x, y = self._centre.x(), self._centre.y()
        half_w, half_h = area.width() / 2 / rect.width(), area.height() / 2 / rect.height()
        x = 0.5 if half_w >= 0.5 else min(max(x, half_w), 1 - half_w)
        y = 0.5 if half_h >= 0.5 else min(max(y, half_h), 1 - half_h)
        self._centre = QPointF(x, y)

    def _want_detail(self) -> None:
        """Zoomed past what the loaded copy holds: ask for the photo at full size."""
        if self._scale is not None and self._pixmap is not None and not self._pixmap.isNull():
            if self.image_rect().width() > self._pixmap.width() * 1.05 \
                    and self._pixmap.size() != self.natural_size():
                self.detail_wanted.emit()

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

    def set_overlay_style(self, style: OverlayStyle, opacity: float) -> None:
        self.style_name, self.opacity = style, opacity
        self._overlay = None
        self.update()

    def fit_box(self) -> tuple[int, int]:
        """The size a loader should fit photos to, so they are drawn without rescaling."""
        area = self.rect().adjusted(8, 8, -8, -8)
        return max(area.width(), 1), max(area.height(), 1)

    def image_rect(self) -> QRect:
        """Where the photo is drawn: fitted, centred, aspect kept (a photo already fitted to
        fit_box() is used at its own size, so no pixel is rescaled); zoomed, the whole photo's
        rectangle at that scale, mostly outside the widget."""
        if self._pixmap is None or self._pixmap.isNull():
            return QRect()
        if self._scale is not None:
            natural = self.natural_size()
            width, height = round(natural.width() * self._scale), round(natural.height() * self._scale)
            centre = self.rect().center()
            return QRect(round(centre.x() - self._centre.x() * width),
                         round(centre.y() - self._centre.y() * height), max(width, 1), max(height, 1))
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
        if self._scale is None:
            painter.drawPixmap(target.topLeft(), self._composed(target))
        else:
            self._paint_zoomed(painter, target)
        painter.end()

    def _paint_zoomed(self, painter: QPainter, target: QRect) -> None:
        """Only the visible part: of the photo, then of the overlay, through the same mapping."""
        assert self._pixmap is not None
        visible = QRectF(target.intersected(self.rect()))
        if visible.isEmpty():
            return

        def source(width: int, height: int) -> QRectF:
            sx, sy = width / target.width(), height / target.height()
            return QRectF((visible.x() - target.x()) * sx, (visible.y() - target.y()) * sy,
                          visible.width() * sx, visible.height() * sy)

        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, (self._scale or 1.0) < 2.0)
        painter.drawPixmap(visible, self._pixmap, source(self._pixmap.width(), self._pixmap.height()))
        overlay = self.overlay()
        if overlay is not None and self._attention is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(visible, overlay, source(overlay.width(), overlay.height()))
            self._paint_peak(painter, target)
            self._paint_legend(painter, visible.toRect(), self._attention)
        self._paint_scale(painter)

    def _paint_scale(self, painter: QPainter) -> None:
        text = f"{(self._scale or 0) * 100:.0f} % · double-click: fit"
        font = QFont(self.font())
        painter.setFont(font)
        width = QFontMetrics(font).horizontalAdvance(text) + 16
        box = QRect(self.width() - width - 8, 8, width, QFontMetrics(font).height() + 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 160))
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(QColor(235, 235, 240))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

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
        height = 70 if self.style_name is OverlayStyle.HEAT else 56
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
        if self.style_name is OverlayStyle.HEAT:
            painter.drawImage(QRect(box.left() + 12, box.bottom() - 14, box.width() - 24, 6), self._bar)

    # --- mouse ------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press, self._dragged = event.position().toPoint(), False
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is not None and self._scale is not None:
            delta = event.position().toPoint() - self._press
            if self._dragged or delta.manhattanLength() > 3:
                rect = self.image_rect()
                self._dragged, self._press = True, event.position().toPoint()
                self._centre -= QPointF(delta.x() / rect.width(), delta.y() / rect.height())
                self._clamp_centre()
                self.setCursor(Qt.CursorShape.ClosedHandCursor)
                self.update()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._press is not None:
            if not self._dragged:
                self.clicked.emit()
            self._press = None
            self.unsetCursor()
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.toggle_zoom(event.position())
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if not steps or self._pixmap is None or self._pixmap.isNull():
            super().wheelEvent(event)
            return
        current = self._scale if self._scale is not None else self.fit_scale()
        self.zoom_to(current * WHEEL_STEP ** steps, event.position())
        event.accept()

    def resizeEvent(self, event: object) -> None:
        if self._scale is not None:
            self._clamp_centre()
        super().resizeEvent(event)  # type: ignore[arg-type]
