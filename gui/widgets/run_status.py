"""The caption run in the status bar: progress with time left, Cancel, and images per second.

It listens to the caption controller and nothing else listens to it. Progress is repainted at
most 4 times a second: QProgressBar.setValue repaints synchronously.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from gui.controllers.captioning import CaptionController, RunStats


class RunStatus(QWidget):
    def __init__(self, captions: CaptionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.captions = captions
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.progress = QProgressBar()
        self.progress.setObjectName("captionProgress")
        self.progress.setMinimumWidth(380)
        self.progress.setMaximumHeight(18)
        self.progress.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel)
        self.speed_label = QLabel("")
        self.speed_label.setObjectName("speedLabel")
        self.speed_label.setContentsMargins(8, 0, 8, 0)
        for widget in (self.progress, self.cancel_button, self.speed_label):
            row.addWidget(widget)
        self._state = (0, 0, 0.0)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._show_progress)
        captions.started.connect(self._on_started)
        captions.progress.connect(self._on_progress)
        captions.finished.connect(self._on_finished)

    def cancel(self) -> None:
        if self.captions.is_running():
            self.captions.cancel()
            self.cancel_button.setEnabled(False)
            self.progress.setFormat("Cancelling…")

    def _on_started(self, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat(f"Captioning 0 / {total}")
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()

    def _on_progress(self, done: int, total: int, rate: float) -> None:
        self._state = (done, total, rate)
        if not self._timer.isActive():
            self._timer.start()

    def _show_progress(self) -> None:
        done, total, rate = self._state
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        eta = (total - done) / rate if rate > 0 else 0
        self.progress.setFormat(f"{done} / {total} captioned · {eta:.0f} s left")
        self.speed_label.setText(f"{rate:.1f} images/s")

    def _on_finished(self, stats: RunStats, _cancelled: bool) -> None:
        self._timer.stop()
        self.progress.hide()
        self.cancel_button.hide()
        self.speed_label.setText(f"Last run: {stats.rate:.1f} images/s")
