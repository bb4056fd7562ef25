"""What the window says about the model: a strip above the tabs that says why captioning is
not available, with the fix, and the model's name in the status bar (its folder as tooltip)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from captioner.bundle import QUALITY
from gui.controllers.model import ModelController, ModelState

NO_MODEL = "No model loaded — open a bundle (File ▸ Open model bundle…)"


class ModelBanner(QFrame):
    open_requested = Signal()

    def __init__(self, models: ModelController) -> None:
        super().__init__()
        self.models = models
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
        self.status = QLabel()  # for the status bar
        self.status.setObjectName("modelLabel")
        self.status.setContentsMargins(8, 0, 8, 0)
        models.state_changed.connect(self.show_state)
        self.show_state(models.state)

    def show_state(self, state: ModelState) -> None:
        captioner = self.models.captioner
        ready = state is ModelState.READY and captioner is not None
        self.label.setText("" if ready else self.models.text or NO_MODEL)
        self.setVisible(not ready)
        if captioner is not None and ready:
            quality = " · best quality" if captioner.variant == QUALITY else ""
            self.status.setText(f"Model: {captioner.name} · {captioner.provider.value.upper()}{quality}")
            self.status.setToolTip(str(captioner.bundle.path))
        else:
            loading = state is ModelState.LOADING
            self.status.setText("Loading model…" if loading else "No model loaded — open a bundle")
            self.status.setToolTip("")
