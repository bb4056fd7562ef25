"""The one preprocessing function: whole image, no crop, upright, any mode, normalised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.errors import ImageLoadError
from captioner.images import InputSpec, load_image, preprocess, to_rgb

SPEC = InputSpec(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_whole_image_is_squashed_not_cropped() -> None:
    img = Image.new("RGB", (400, 100), (255, 0, 0))
    img.paste((0, 0, 255), (300, 0, 400, 100))  # the right quarter is blue
    x = preprocess(img, SPEC)
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    blue = (x[2] > 1.0) & (x[0] < 0)
    cols = np.where(blue.all(axis=0))[0]
    assert 22 <= cols.min() <= 25 and cols.max() == 31  # the last quarter, all rows kept


def test_normalisation_uses_the_spec() -> None:
    x = preprocess(Image.new("RGB", (10, 10), (255, 127, 0)), SPEC)
    np.testing.assert_allclose(x[:, 0, 0], [(1 - 0.5) / 0.25, (127 / 255 - 0.5) / 0.25, -2.0],
                               rtol=1e-5)


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "LA", "I;16", "1", "I", "F"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    img = Image.new("RGB", (8, 8), (200, 100, 50)).convert(mode) if mode not in ("I;16", "F") \
        else Image.new(mode, (8, 8))
    out = to_rgb(img)
    assert out.mode == "RGB" and out.size == (8, 8)


def test_transparent_pixels_become_white() -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert to_rgb(img).getpixel((0, 0)) == (255, 255, 255)


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    upright = Image.new("RGB", (60, 30), (0, 0, 0))
    upright.paste((255, 255, 255), (0, 0, 30, 30))  # white on the left
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways stores
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.size == (60, 30)
    left, right = np.asarray(loaded)[:, :30].mean(), np.asarray(loaded)[:, 30:].mean()
    assert left > 200 and right < 50


def test_broken_files_raise_the_projects_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.png"
    noise.write_bytes(np.random.default_rng(0).bytes(500))
    for path in (empty, noise, tmp_path / "missing.jpg"):
        with pytest.raises(ImageLoadError) as info:
            load_image(path)
        assert info.value.reason and "\n" not in str(info.value)


def test_draft_mode_keeps_at_least_the_asked_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1500), (10, 200, 30)).save(path)
    img = load_image(path, draft_size=224)
    assert min(img.size) >= 224 and img.size[0] < 2000
