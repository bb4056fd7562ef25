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


def png_header_only(path: Path, width: int, height: int, bit_depth: int, colour_type: int) -> Path:
    """A PNG that claims a size in its header and holds no pixel data: opening it costs nothing,
    decoding it would cost what the header says."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_decode_is_bounded_by_bytes_not_only_pixels(tmp_path: Path) -> None:
    from captioner.images import MAX_DECODED_BYTES, MAX_PIXELS

    side = 9000  # 81 megapixels: under the pixel limit, but 324 MB as RGBA
    assert side * side < MAX_PIXELS and side * side * 4 > MAX_DECODED_BYTES
    with pytest.raises(ImageLoadError, match="MB decoded, the limit is"):
        load_image(png_header_only(tmp_path / "rgba.png", side, side, 8, 6))


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec
PEAK_SCRIPT = """
import re, sys
from captioner.images import load_image
image = load_image(sys.argv[1], draft_size=224)
status = open("/proc/self/status").read()
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1))
print(image.size[0], image.size[1], image.getpixel((7, 7))[0], peak_kb // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak memory from /proc")
def test_a_small_16_bit_png_of_9999_squared_stays_within_a_gigabyte(tmp_path: Path) -> None:
    """194 KB on disk, 9999x9999 16-bit grey: the conversion to 8 bits took 2.9 GB."""
    import subprocess
    import sys

    path = tmp_path / "deep.png"
    Image.new("I;16", (9999, 9999), 51400).save(path)  # 51400/65535 of white: level 200
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    width, height, level, peak_mb = map(int, done.stdout.split())
    assert (width, height, level) == (9999, 9999, 200)
    assert peak_mb < 1100, f"peak {peak_mb} MB"


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_deep_grey_converts_as_before(mode: str) -> None:
    rng = np.random.default_rng(2)
    top = 65535 if mode == "I;16" else 1000
    values = rng.integers(0, top, (600, 37))
    img = Image.fromarray(values.astype(np.uint16 if mode == "I;16" else np.int32))
    img = img if img.mode == mode else img.convert(mode)
    expected = np.clip(values / (65535.0 if top > 255 else 255.0) * 255.0, 0, 255).astype(np.uint8)
    out = np.asarray(to_rgb(img))
    assert out.shape == (600, 37, 3)
    assert np.array_equal(out[:, :, 0], expected) and np.array_equal(out[:, :, 2], expected)
