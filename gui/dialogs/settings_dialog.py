"""Settings: model bundle, provider, caption quality, search options, saving behaviour, overlay look.

Works on a copy of AppSettings and hands back a new one; the window decides what changed
(a new bundle or provider means reloading the model in the background).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from captioner.session import Provider, available_providers
from gui.settings import AppSettings, CaptionQuality, default_bundle, has_quality_variant
from gui.widgets.heatmap import OverlayStyle

PROVIDER_CHOICES = ((Provider.AUTO, "Automatic (GPU when available)"), (Provider.CPU, "CPU"),
                    (Provider.CUDA, "GPU (CUDA)"))
QUALITY_CHOICES = ((CaptionQuality.FAST, "Fast (default)"), (CaptionQuality.BEST, "Best (slower)"))
QUALITY_TIP = ("Best: an ensemble of decoders averaged at every word, about half the speed "
               "(docs/quality.md)")
NO_QUALITY_TIP = ("This model bundle has no best-quality variant: build one with "
                  "python -m export.ensemble (docs/quality.md)")


def describe_bundle(folder: Path) -> tuple[bool, str]:
    """A quick look (no hashing): does the folder hold a bundle manifest, and what is it?"""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False, f"no manifest.json in {folder}"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        encoder = data.get("encoder", {}).get("name", "?")
        words = data.get("vocabulary", {}).get("size", "?")
        return True, f"{data.get('name', folder.name)} — {encoder}, {words} words"
    except (OSError, ValueError, AttributeError) as exc:
        return False, f"manifest.json is unreadable ({exc})"


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self._original = settings
        layout = QVBoxLayout(self)
        layout.addWidget(self._model_group(settings))
        layout.addWidget(self._caption_group(settings))
        layout.addWidget(self._app_group(settings))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._check_bundle()
        self.resize(560, self.sizeHint().height())

    def _model_group(self, s: AppSettings) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.bundle = QLineEdit(s.bundle_dir)
        self.bundle.setPlaceholderText(f"default: {default_bundle()}")
        self.bundle.textChanged.connect(self._check_bundle)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.bundle, 1)
        row.addWidget(browse)
        form.addRow("Bundle folder:", row)
        self.bundle_info = QLabel()
        self.bundle_info.setWordWrap(True)
        form.addRow("", self.bundle_info)
        self.provider = QComboBox()
        found = available_providers()
        for provider, label in PROVIDER_CHOICES:
            self.provider.addItem(label, provider.value)
            if provider is Provider.CUDA and provider not in found:
                index = self.provider.count() - 1
                self.provider.model().item(index).setEnabled(False)  # type: ignore[attr-defined]
                self.provider.setItemData(
                    index, "onnxruntime-gpu with a CUDA GPU is not available", Qt.ItemDataRole.ToolTipRole
                )
        self.provider.setCurrentIndex(max(self.provider.findData(s.provider.value), 0))
        form.addRow("Run on:", self.provider)
        self.quality = QComboBox()
        self.quality.setObjectName("captionQuality")
        for quality, label in QUALITY_CHOICES:
            self.quality.addItem(label, quality.value)
        self._quality_wanted = s.caption_quality  # kept while a bundle without one is shown
        self.quality.currentIndexChanged.connect(self._quality_chosen)
        form.addRow("Caption quality:", self.quality)
        return box

    def _caption_group(self, s: AppSettings) -> QGroupBox:
        box = QGroupBox("Captioning")
        form = QFormLayout(box)
        self.beam = self._spin(1, 20, s.beam_size, "1 = greedy (fastest); 3-5 usually reads best")
        form.addRow("Beam size:", self.beam)
        self.max_length = self._spin(0, 100, s.max_length, "0 = the bundle's own limit")
        self.max_length.setSpecialValueText("bundle default")
        form.addRow("Maximum words:", self.max_length)
        self.n_best = self._spin(1, 10, s.n_best, "how many candidate captions to keep per image")
        form.addRow("Alternatives:", self.n_best)
        self.batch = self._spin(1, 64, s.batch_size, "images per model call; captions appear per batch")
        form.addRow("Batch size:", self.batch)
        return box

    def _app_group(self, s: AppSettings) -> QGroupBox:
        box = QGroupBox("Behaviour")
        form = QFormLayout(box)
        self.auto_save = QCheckBox("Save each caption to its .txt file as soon as it is written or accepted")
        self.auto_save.setChecked(s.auto_save)
        form.addRow("Auto-save:", self.auto_save)
        self.auto_caption = QCheckBox("Caption new images as soon as they are dropped or opened")
        self.auto_caption.setChecked(s.auto_caption_on_drop)
        form.addRow("Auto-caption:", self.auto_caption)
        self.overlay_style = QComboBox()
        for style in OverlayStyle:
            self.overlay_style.addItem(style.value.capitalize(), style.value)
        self.overlay_style.setCurrentIndex(max(self.overlay_style.findData(s.overlay_style.value), 0))
        form.addRow("Attention overlay:", self.overlay_style)
        self.opacity = QDoubleSpinBox()
        self.opacity.setRange(0.1, 1.0)
        self.opacity.setSingleStep(0.05)
        self.opacity.setValue(s.overlay_opacity)
        form.addRow("Overlay strength:", self.opacity)
        self.low_confidence = QDoubleSpinBox()
        self.low_confidence.setObjectName("lowConfidence")
        self.low_confidence.setRange(0.05, 0.95)
        self.low_confidence.setSingleStep(0.05)
        self.low_confidence.setValue(s.low_confidence)
        self.low_confidence.setToolTip("Captions the model is less sure of than this are marked red, "
                                       "listed by Low confidence and sorted first")
        form.addRow("Doubtful below:", self.low_confidence)
        return box

    @staticmethod
    def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    def _browse(self) -> None:
        start = self.bundle.text() or str(default_bundle().parent)
        folder = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder", start)
        if folder:
            self.bundle.setText(folder)

    def _check_bundle(self) -> None:
        folder = Path(self.bundle.text()).expanduser() if self.bundle.text() else default_bundle()
        ok, text = describe_bundle(folder)
        self.bundle_info.setText(("✓ " if ok else "⚠ ") + text)
        self.bundle_info.setStyleSheet("" if ok else "color: #c05000;")
        offered = has_quality_variant(folder)  # a bundle without one shows Fast, greyed out
        self.quality.setEnabled(offered)
        self.quality.setToolTip(QUALITY_TIP if offered else NO_QUALITY_TIP)
        shown = self._quality_wanted if offered else CaptionQuality.FAST
        self.quality.setCurrentIndex(max(self.quality.findData(shown.value), 0))

    def _quality_chosen(self) -> None:
        if self.quality.isEnabled():
            self._quality_wanted = CaptionQuality(self.quality.currentData())

    def result_settings(self) -> AppSettings:
        return replace(
            self._original,
            bundle_dir=self.bundle.text().strip(),
            provider=Provider(self.provider.currentData()),
            beam_size=self.beam.value(),
            max_length=self.max_length.value(),
            n_best=self.n_best.value(),
            batch_size=self.batch.value(),
            auto_save=self.auto_save.isChecked(),
            auto_caption_on_drop=self.auto_caption.isChecked(),
            overlay_style=OverlayStyle(self.overlay_style.currentData()),
            overlay_opacity=round(self.opacity.value(), 2),
            low_confidence=round(self.low_confidence.value(), 2),
            caption_quality=self._quality_wanted,  # also while greyed out: for a bundle with one
        )
