"""Settings ▸ Caption quality: Best loads a bundle's `quality` variant (docs/quality.md); a
bundle without one greys the choice out and captions with its default, keeping the choice for
a bundle that has one; a quality variant that cannot run falls back to the default with a note."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from captioner.bundle import QUALITY, Variant, load_bundle, write_manifest
from gui.controllers.model import ModelState
from gui.dialogs.settings_dialog import SettingsDialog
from gui.settings import AppSettings, CaptionQuality, has_quality_variant

pytestmark = pytest.mark.gui
TIMEOUT = 30_000


def with_quality(tiny_bundle: Path, target: Path, hidden_size: int | None = None) -> Path:
    """A copy of the tiny bundle whose `quality` variant runs its own graphs (the app only
    chooses the variant; tests/test_ensemble.py checks real ensembles)."""
    bundle = Path(shutil.copytree(tiny_bundle, target))
    manifest = load_bundle(bundle).manifest
    fp32 = manifest.variants["fp32"]
    manifest.variants[QUALITY] = Variant(QUALITY, fp32.encoder, fp32.decoder, hidden_size)
    write_manifest(bundle, manifest)
    return bundle


def test_best_loads_the_quality_variant_and_a_bundle_without_one_falls_back(
        qtbot, make_window, tiny_bundle: Path, tmp_path: Path) -> None:
    quality = with_quality(tiny_bundle, tmp_path / "quality-bundle")
    assert has_quality_variant(quality) and not has_quality_variant(tiny_bundle)
    window = make_window(bundle=quality, wait=False, caption_quality=CaptionQuality.BEST)
    qtbot.waitUntil(lambda: window.models.captioner is not None, timeout=TIMEOUT)
    assert window.models.captioner.variant == QUALITY
    qtbot.waitUntil(lambda: window.model_label.text().endswith("· best quality"), timeout=TIMEOUT)

    dialog = SettingsDialog(window.settings, window)
    assert dialog.quality.isEnabled() and dialog.quality.currentData() == "best"
    dialog.bundle.setText(str(tiny_bundle))  # no quality variant: greyed out, saying why
    assert not dialog.quality.isEnabled() and dialog.quality.currentData() == "fast"
    assert "no best-quality variant" in dialog.quality.toolTip()
    new = dialog.result_settings()
    assert new.caption_quality is CaptionQuality.BEST  # kept for a bundle that has one
    old_captioner = window.models.captioner
    window.apply_settings(new)
    qtbot.waitUntil(lambda: window.models.captioner is not old_captioner
                    and window.models.state is ModelState.READY, timeout=TIMEOUT)
    assert window.models.captioner.variant == load_bundle(tiny_bundle).manifest.default_variant
    assert "best quality" not in window.model_label.text()
    assert any("has no best-quality variant" in line for line in window.log_pane.lines())
    assert AppSettings.load(window.store).caption_quality is CaptionQuality.BEST  # persisted

    old_captioner = window.models.captioner
    window.apply_settings(replace(window.settings, bundle_dir=str(quality),
                                  caption_quality=CaptionQuality.FAST))
    qtbot.waitUntil(lambda: window.models.captioner is not old_captioner
                    and window.models.state is ModelState.READY, timeout=TIMEOUT)
    assert window.models.captioner.variant != QUALITY
    assert AppSettings.load(window.store).caption_quality is CaptionQuality.FAST


def test_a_quality_variant_that_cannot_run_falls_back_with_a_note(
        qtbot, make_window, tiny_bundle: Path, tmp_path: Path) -> None:
    hidden = load_bundle(tiny_bundle).manifest.hidden_size
    broken = with_quality(tiny_bundle, tmp_path / "broken-quality", hidden_size=hidden + 1)
    entry = json.loads((broken / "manifest.json").read_text())["variants"][QUALITY]
    assert entry["hidden_size"] == hidden + 1
    window = make_window(bundle=broken, wait=False, caption_quality=CaptionQuality.BEST)
    qtbot.waitUntil(lambda: window.models.captioner is not None, timeout=TIMEOUT)
    assert window.models.state is ModelState.READY and window.models.captioner.variant != QUALITY
    assert any(f"variant {QUALITY} not used" in line for line in window.log_pane.lines())
