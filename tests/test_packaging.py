"""Installed as users install it: where the default bundle is found, what a missing one says,
what `import training` says without torch, and that the shipped bundle captions a real photo
(the CI run against the lowest supported versions runs this file too)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from captioner import default_model
from captioner.errors import BundleError

ROOT = Path(__file__).resolve().parent.parent
PHOTO = "1000268201_693b08cb0e.jpg"  # a girl climbing into a wooden playhouse


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(default_model.ENV, raising=False)


def test_checkout_bundle_is_the_default(no_env: None) -> None:
    assert default_model.default_bundle() == ROOT / "models" / "default"


def test_installed_bundle_is_found_as_package_data(
        no_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout a wheel installs: site-packages/captioner_models/default/, no checkout."""
    site = tmp_path / "site-packages"
    bundle = site / default_model.MODELS_PACKAGE / "default"
    bundle.mkdir(parents=True)
    (bundle / "manifest.json").write_text("{}")
    monkeypatch.setattr(default_model, "_CHECKOUT", tmp_path / "no-checkout" / "default")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    assert default_model.packaged_bundle() == bundle
    assert default_model.default_bundle() == bundle


def test_no_bundle_says_how_to_point_at_one(
        no_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default_model, "_CHECKOUT", tmp_path / "no-checkout" / "default")
    monkeypatch.setattr(default_model, "MODELS_PACKAGE", "captioner_models_not_installed")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BundleError, match="--model PATH or CAPTIONER_MODEL"):
        default_model.default_bundle()


def test_cli_with_a_missing_env_bundle_says_how(tmp_path: Path) -> None:
    env = {**os.environ, "CAPTIONER_MODEL": str(tmp_path / "nowhere"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "captioner", "caption", str(tmp_path / "a.jpg")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "CAPTIONER_MODEL" in done.stderr and "--model PATH" in done.stderr


@pytest.mark.parametrize("package", ["training", "export"])
def test_import_without_torch_says_install_train_extra(package: str) -> None:
    blocked = f"import sys; sys.modules['torch'] = None; import {package}"
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "install captioner[train]" in done.stderr


def test_shipped_bundle_captions_a_real_photo(no_env: None, flickr_dir: Path) -> None:
    """The default bundle, both variants, under whatever onnxruntime is installed (the lowest
    supported one in CI's second run)."""
    from captioner.bundle import load_bundle
    from captioner.captioner import Captioner, CaptionOptions

    photo = flickr_dir / "images" / PHOTO
    bundle = load_bundle(default_model.default_bundle())
    assert {"fp32", bundle.manifest.default_variant} <= set(bundle.manifest.variants)
    for variant in sorted(bundle.manifest.variants):  # fp32 and the measured int8 choice
        captioner = Captioner(bundle, provider="cpu", variant=variant)
        [(_, result)] = list(captioner.caption_files([photo], CaptionOptions(beam_size=3)))
        assert not isinstance(result, Exception), result
        assert {"girl", "child", "kid"} & set(result.words), (variant, result.text)


def test_heic_is_read_with_the_heic_extra(tmp_path: Path) -> None:
    """With pillow-heif (the `heic` extra) a .heic photo is an image in folders and opens."""
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image

    from captioner.images import IMAGE_EXTENSIONS, is_image_path, load_image

    photo = tmp_path / "phone.heic"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo, format="HEIF", quality=90)
    assert {".heic", ".heif"} <= IMAGE_EXTENSIONS and is_image_path(photo)
    img = load_image(photo)
    assert img.mode == "RGB" and img.size == (64, 48), pillow_heif.__version__
    pixel = img.getpixel((32, 24))
    assert isinstance(pixel, tuple) and pixel[0] > 150 and pixel[1] < 80, pixel
