"""The honest end-to-end test: synthetic data -> train -> export -> caption through captioner/."""

from __future__ import annotations

from pathlib import Path

from captioner.bundle import load_bundle
from captioner.captioner import Captioner, CaptionOptions
from tests.synthetic import COLOURS, SHAPES, make_shapes_folder


def test_held_back_shapes_are_named_right(tiny_bundle: Path, tmp_path: Path) -> None:
    held_back = make_shapes_folder(tmp_path, per_class=3, seed=99, sidecars=False)
    captioner = Captioner(tiny_bundle, provider="cpu")
    results = dict(captioner.caption_files([p for p, _ in held_back], CaptionOptions(beam_size=3)))
    right = sum(results[path].text == caption for path, caption in held_back)
    # 36 images, 12 classes: chance is 1/12; a model that ignores the image gets <= 3 right
    assert right >= 0.85 * len(held_back), [(p.name, results[p].text) for p, _ in held_back]
    colours_named = {w for r in results.values() for w in r.words if w in COLOURS}
    shapes_named = {w for r in results.values() for w in r.words if w in SHAPES}
    assert colours_named == set(COLOURS) and shapes_named == set(SHAPES)


def test_maximum_words_means_words(tiny_bundle: Path, tmp_path: Path) -> None:
    """A limit of 2 words gives captions of 2 words (the end of the caption is not a word)."""
    pairs = make_shapes_folder(tmp_path, per_class=1, seed=11)
    captioner = Captioner(tiny_bundle, provider="cpu")
    options = CaptionOptions(max_length=2)
    lengths = [len(r.words) for _, r in captioner.caption_files([p for p, _ in pairs], options)]
    assert max(lengths) == 2, lengths


def test_bundle_records_parity_and_training(tiny_bundle: Path) -> None:
    manifest = load_bundle(tiny_bundle).manifest
    assert manifest.training["parity"].startswith("parity PASS")
    assert manifest.encoder_name == "efficientnet_lite0"
    assert manifest.input_spec.size == 224


def test_console_script_and_module_run_the_cli_package() -> None:
    """`captioner` (pyproject's console script) and `python -m captioner` reach the same main."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    import captioner.cli

    script = next(e for e in entry_points(group="console_scripts") if e.name == "captioner")
    assert script.value == "captioner.cli:main" and script.load() is captioner.cli.main
    done = subprocess.run([sys.executable, "-m", "captioner", "--version"], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0 and done.stdout.startswith("captioner "), done.stderr


def test_parity_scales_its_tolerance_to_large_features() -> None:
    """A 1e-6-relative float32 difference on features of size 50 passes; the same absolute
    difference on features below 1 fails, as does a 1e-3-relative one on large features."""
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    from export.parity import TOLERANCE, scaled_difference

    large = np.full((2, 81, 512), 50.0, dtype=np.float32)
    assert scaled_difference(large + 1.5e-4, large) <= TOLERANCE
    assert scaled_difference(large * 1.001, large) > TOLERANCE
    small = np.full((2, 81, 512), 0.5, dtype=np.float32)
    assert scaled_difference(small + 1.5e-4, small) > TOLERANCE
