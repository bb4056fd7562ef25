"""The app's persistent settings: one dataclass, read from and written to QSettings.

Keeping the fields in a dataclass (rather than scattering `QSettings.value` calls) gives one
place that knows every key, its type and its default, and lets the settings dialog and tests
work on a plain value object. Values read back are checked: a hand-edited or stale settings
file can never start the app with a beam size of -3.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from captioner.bundle import QUALITY
from captioner.captioner import CaptionOptions
from captioner.session import Provider
from gui.widgets.heatmap import OverlayStyle


class CaptionQuality(str, Enum):
    """Settings ▸ Caption quality (stored as its value)."""

    FAST = "fast"  # the bundle's measured choice ("auto")
    BEST = "best"  # its QUALITY variant, an ensemble of decoders at about half the speed
    # (docs/quality.md), where the bundle has one


_GROUP = "captioning"
_LIMITS: dict[str, tuple[float, float]] = {
    "beam_size": (1, 20),
    "max_length": (0, 100),
    "n_best": (1, 10),
    "batch_size": (1, 64),
    "thumbnail_size": (64, 320),
    "overlay_opacity": (0.1, 1.0),
    "low_confidence": (0.01, 0.99),
}


def default_bundle() -> Path:
    """The bundle the CLI would use; the CLI module is imported lazily so a broken or
    half-edited cli.py can never stop the window from opening."""
    try:
        from captioner.cli import default_bundle as cli_default

        return cli_default()
    except Exception:  # noqa: BLE001 - any failure falls back to the documented default
        if "CAPTIONER_MODEL" in os.environ:
            return Path(os.environ["CAPTIONER_MODEL"])
        return Path(__file__).resolve().parent.parent / "models" / "default"


def has_quality_variant(folder: Path) -> bool:
    """A quick look (no hashing, nothing checked: loading does that) at whether the bundle in
    `folder` offers the best-quality variant, to offer the setting or not."""
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return isinstance(data.get("variants"), dict) and QUALITY in data["variants"]
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class AppSettings:
    """Everything the user can set; defaults are what a first start should do."""

    bundle_dir: str = ""  # "" means the default bundle (models/default or $CAPTIONER_MODEL)
    provider: Provider = Provider.AUTO
    beam_size: int = 3
    max_length: int = 0  # 0: the bundle's own limit
    n_best: int = 5
    batch_size: int = 8
    auto_save: bool = False
    auto_caption_on_drop: bool = False
    thumbnail_size: int = 128
    overlay_style: OverlayStyle = OverlayStyle.HEAT
    overlay_opacity: float = 0.65
    # below this a caption is "doubtful" (red, Low confidence filter): chosen on Flickr8k dev with
    # the default model, where captions under 0.3 (a quarter) average CIDEr 0.24 and those over
    # 0.6 average 0.92 (docs/results.md, "Confidence")
    low_confidence: float = 0.3
    caption_quality: CaptionQuality = CaptionQuality.FAST

    def bundle_path(self) -> Path:
        return Path(self.bundle_dir).expanduser() if self.bundle_dir else default_bundle()

    def caption_options(self) -> CaptionOptions:
        return CaptionOptions(
            beam_size=self.beam_size, max_length=self.max_length or None, n_best=self.n_best
        )

    @classmethod
    def load(cls, store: QSettings) -> AppSettings:
        """Read every field, keeping the default for anything missing, mistyped or out of range."""
        settings = cls()
        store.beginGroup(_GROUP)
        try:
            for f in fields(cls):
                default = getattr(settings, f.name)
                raw = store.value(f.name, default)
                setattr(settings, f.name, _coerce(f.name, raw, default))
        finally:
            store.endGroup()
        return settings

    def save(self, store: QSettings) -> None:
        store.beginGroup(_GROUP)
        for f in fields(self):
            value = getattr(self, f.name)
            store.setValue(f.name, value.value if isinstance(value, Enum) else value)
        store.endGroup()
        store.sync()


def _coerce(name: str, raw: object, default: object) -> object:
    """Turn what QSettings hands back (often a string, for INI files) into the field's type."""
    if isinstance(default, Enum):
        try:
            return type(default)(str(raw))
        except ValueError:
            return default
    try:
        if isinstance(default, bool):
            value: object = raw if isinstance(raw, bool) else str(raw).strip().lower() in ("true", "1", "yes")
        elif isinstance(default, int):
            value = int(float(str(raw)))
        elif isinstance(default, float):
            value = float(str(raw))
        else:
            value = "" if raw is None else str(raw)
    except (TypeError, ValueError):
        return default
    if name in _LIMITS and isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = _LIMITS[name]
        if not low <= value <= high:
            return default
    return value


def settings_store(path: str | Path | None = None) -> QSettings:
    """The app's QSettings: the platform's native place, or an INI file (tests, portable use)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("Captioner", "Captioner")


def app_data_dir(store: QSettings) -> Path:
    """Where the app keeps files of its own (models it trained, their feature cache): beside an
    INI settings file (tests, portable use: `--settings FILE`), else the platform's app data
    folder (~/.local/share/Captioner/Captioner on Linux)."""
    if store.format() == QSettings.Format.IniFormat:
        return Path(store.fileName()).resolve().parent / "captioner-data"
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(location) if location else Path.home() / ".captioner"
