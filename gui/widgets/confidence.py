"""How sure the model is of a caption, as a colour and a small meter: on each tile and beside
the editor. The colour says "look at this one" faster than a number; the number is in the
meter's text and tooltips. A caption without a confidence shows nothing (never a made-up one).
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

LOW = QColor(215, 50, 50)
MIDDLE = QColor(225, 160, 20)
HIGH = QColor(40, 160, 70)
TRACK = QColor(0, 0, 0, 110)
SURE = 0.6  # from here a caption reads as sure (green): see gui/settings.py low_confidence


def confidence_colour(confidence: float, low: float) -> QColor:
    """Red below the doubtful threshold (a setting), amber in between, green when sure."""
    if confidence < low:
        return LOW
    return HIGH if confidence >= max(SURE, low) else MIDDLE


def confidence_word(confidence: float, low: float) -> str:
    if confidence < low:
        return "doubtful"
    return "sure" if confidence >= max(SURE, low) else "fair"


def paint_meter(painter: QPainter, rect: QRect, confidence: float, low: float) -> None:
    """A small bar: the track, and the filled part in the confidence's colour."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(TRACK)
    radius = rect.height() / 2
    painter.drawRoundedRect(rect, radius, radius)
    filled = QRect(rect.x(), rect.y(), max(rect.height(), round(rect.width() * confidence)), rect.height())
    painter.setBrush(confidence_colour(confidence, low))
    painter.drawRoundedRect(filled, radius, radius)
    painter.restore()


def paint_pill(painter: QPainter, corner: QRect, confidence: float, low: float) -> None:
    """The tile's mark: "32%" on the confidence's colour, in the bottom-left of `corner` (the
    thumbnail), readable at a glance in a grid of hundreds."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont(painter.font())
    font.setPixelSize(11)
    font.setBold(True)
    painter.setFont(font)
    text = f"{confidence:.0%}"
    width = QFontMetrics(font).horizontalAdvance(text) + 10
    pill = QRect(corner.left() + 4, corner.bottom() - 19, width, 16)
    painter.setPen(QPen(QColor(255, 255, 255, 200), 1))
    painter.setBrush(confidence_colour(confidence, low))
    painter.drawRoundedRect(pill, 8, 8)
    painter.setPen(QColor(255, 255, 255))
    painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


class MeterBar(QWidget):
    """The bar alone, for layouts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.value: float | None = None
        self.low = 0.5
        self.setFixedSize(QSize(70, 10))

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.value is None:
            return
        painter = QPainter(self)
        paint_meter(painter, self.rect().adjusted(0, 1, 0, -1), self.value, self.low)
        painter.end()


class ConfidenceMeter(QWidget):
    """Under the editor: "Confidence ▬▬▬ 32% · doubtful", or nothing when there is no number."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confidenceMeter")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.title = QLabel("Confidence")
        self.bar = MeterBar()
        self.label = QLabel()
        self.label.setObjectName("confidenceLabel")
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addWidget(self.label, 1)
        self.setToolTip("How likely the model's caption is right, calibrated on held-out photos. "
                        "Captions below the threshold in Settings are listed by "
                        "Low confidence and sorted first by Lowest confidence first.")
        self.show_value(None)

    def show_value(self, confidence: float | None, low: float = 0.5, model_only: bool = False) -> None:
        """`model_only`: the caption shown is not the model's any more; say whose number it is."""
        self.setVisible(confidence is not None)
        self.bar.value, self.bar.low = confidence, low
        self.bar.update()
        if confidence is None:
            self.label.setText("")
            return
        colour = confidence_colour(confidence, low).name()
        word = confidence_word(confidence, low)
        if model_only:
            self.title.setText("Model's caption")
            note = f"{confidence:.0%} · {word} (yours replaces it)"
            self.label.setText(f"<span style='color:gray'>{note}</span>")
        else:
            self.title.setText("Confidence")
            self.label.setText(f"<b style='color:{colour}'>{confidence:.0%}</b> · {word}")
