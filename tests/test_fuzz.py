"""Fuzzing the image loader and the video reader: mutated real files, only our errors escape.

Seeds are real files made on the spot (JPEG with EXIF, progressive JPEG, PNG, palette PNG with
transparency, animated GIF, multi-page TIFF, WebP, BMP, MP4, Matroska); hypothesis flips,
overwrites, inserts, deletes, duplicates and truncates their bytes. Whatever comes out,
`load_image` may only raise ImageLoadError and the video reader only VideoError.

In CI each target runs a fixed, derandomized set of examples (well under a minute in all).
Longer runs, with fresh random examples until a deadline:

    python bench/fuzz_long.py --minutes 30          # both targets, 15 minutes each
    CAPTIONER_FUZZ_SECONDS=1800 python -m pytest -q --runxfail tests/test_fuzz.py
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from captioner.errors import CaptionerError
from captioner.images import load_image
from tests.bad_inputs import exif_oriented, png_bytes, rgb16_png
from tests.synthetic import draw_shape

FUZZ_SECONDS = float(os.environ.get("CAPTIONER_FUZZ_SECONDS", "0"))  # 0: one fixed CI round
LONG = FUZZ_SECONDS > 0
IMAGE_EXAMPLES = int(os.environ.get("CAPTIONER_FUZZ_IMAGE_EXAMPLES", "2000" if LONG else "1500"))
VIDEO_EXAMPLES = int(os.environ.get("CAPTIONER_FUZZ_VIDEO_EXAMPLES", "1000" if LONG else "500"))


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=not LONG,
                    suppress_health_check=list(HealthCheck), print_blob=True)


def _save(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()  # on copies: a JPEG save leaves its settings on the image (Pillow 12)
    appended = [im.copy() for im in options.pop("append_images", [])]  # type: ignore[attr-defined]
    img.copy().save(buf, fmt, **options, **({"append_images": appended} if appended else {}))
    return buf.getvalue()


def image_seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    a, b = draw_shape("red", "triangle", rng, size=48), draw_shape("blue", "circle", rng, size=48)
    stored, exif = exif_oriented(a, 6)
    return {
        "exif.jpg": _save(stored, "JPEG", quality=80, exif=exif),
        "progressive.jpg": _save(b, "JPEG", quality=70, progressive=True),
        "cmyk.jpg": _save(a.convert("CMYK"), "JPEG"),
        "rgb.png": png_bytes(a),
        "rgb16.png": rgb16_png(b),
        "palette.png": png_bytes(b.quantize(8), transparency=0),
        "anim.gif": _save(a, "GIF", save_all=True, append_images=[b], duration=100),
        "pages.tif": _save(a, "TIFF", save_all=True, append_images=[b], compression="tiff_deflate"),
        "lossy.webp": _save(a, "WEBP", quality=60),
        "plain.bmp": _save(b, "BMP"),
    }


def video_seeds(folder: Path) -> dict[str, bytes]:
    pytest.importorskip("av")
    from tests.videos import shape_shots, write_video

    shots = shape_shots([("red", "circle", 0.6), ("blue", "square", 0.6)], seed=2)
    seeds = {}
    for name, opts in (("plain.mp4", {}), ("fast.mp4", {"movflags": "+faststart"}), ("clip.mkv", {})):
        path = folder / name
        write_video(path, shots, fps=10, size=(64, 64), gop=5, container_options=opts)
        seeds[name] = path.read_bytes()
    return seeds


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """A seed with 1-6 byte-level mutations; headers (the first 64 bytes) are hit more often."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        head = draw(st.booleans())
        pos = draw(st.integers(0, min(len(data), 64) - 1 if head else len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "truncate"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            value = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE]))
            data[pos:pos + draw(st.integers(1, 4))] = bytes([value]) * 4
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 256))]
        elif op == "duplicate":
            n = draw(st.integers(1, 512))
            data[pos:pos] = data[pos:pos + n]
        else:
            del data[pos:]
    return name, bytes(data)


def bounded(run_round: Callable[[], None]) -> None:
    """One round in CI; rounds with fresh random examples until the deadline in a long run."""
    deadline = time.monotonic() + FUZZ_SECONDS
    run_round()
    while time.monotonic() < deadline:
        run_round()


def test_fuzz_image_loader() -> None:
    seeds = image_seeds()
    with tempfile.TemporaryDirectory() as folder:

        @fuzz_settings(IMAGE_EXAMPLES)
        @given(mutated(seeds))
        def one(case: tuple[str, bytes]) -> None:
            name, data = case
            path = Path(folder) / name
            path.write_bytes(data)
            for draft in (224, None):
                try:
                    img = load_image(path, draft_size=draft)
                except CaptionerError as exc:
                    assert "\n" not in str(exc)
                else:
                    assert img.mode == "RGB" and img.width >= 1 and img.height >= 1

        bounded(one)


def test_fuzz_video_reader(tmp_path: Path) -> None:
    video = pytest.importorskip("captioner.video")
    seeds = video_seeds(tmp_path)
    options = [video.SamplingOptions(every=0.3), video.SamplingOptions(scenes=True, every=1.0)]

    @fuzz_settings(VIDEO_EXAMPLES)
    @given(mutated(seeds), st.sampled_from(options))
    def one(case: tuple[str, bytes], sampling: object) -> None:
        name, data = case
        path = tmp_path / name
        path.write_bytes(data)
        try:
            with video.VideoReader(path, sampling) as reader:
                for n, sample in enumerate(reader.samples()):
                    assert sample.image.mode == "RGB"
                    if n >= 20:
                        break
        except CaptionerError as exc:
            assert "\n" not in str(exc)

    bounded(one)


# -- bundles and the undecoded pixel digest (issue 13) ----------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _paths(data: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document (dict keys and list indexes), the root excluded."""
    found = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


def test_fuzz_manifest_fields(tiny_bundle: Path) -> None:
    """Any JSON value anywhere in a good manifest: it loads, or BundleError in one line."""
    import copy
    import json

    from captioner.bundle import Manifest

    good = json.loads((tiny_bundle / "manifest.json").read_text())
    places = _paths(good)

    @fuzz_settings(300)
    @given(st.sampled_from(places), json_values)
    def one(place: tuple, value: object) -> None:
        data = copy.deepcopy(good)
        target = data
        for key in place[:-1]:
            target = target[key]
        target[place[-1]] = value
        try:
            Manifest.from_json(data)
        except CaptionerError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 400

    bounded(one)


def test_fuzz_onnx_scan_and_pixel_digest(tiny_bundle: Path) -> None:
    """Mutated graphs and photos: the scanner raises only OnnxScanError, the digest never raises."""
    from captioner.image_data import image_data_digest
    from captioner.onnx_scan import OnnxScanError, scan_onnx

    seeds = {"decoder_step.onnx": (tiny_bundle / "decoder_step.onnx").read_bytes(),
             **{k: v for k, v in image_seeds().items() if k.endswith((".png", ".jpg", ".webp"))}}
    with tempfile.TemporaryDirectory() as folder:

        @fuzz_settings(400)
        @given(mutated(seeds))
        def one(case: tuple[str, bytes]) -> None:
            name, data = case
            path = Path(folder) / name
            path.write_bytes(data)
            if name.endswith(".onnx"):
                try:
                    scan_onnx(path)
                except OnnxScanError as exc:
                    assert "\n" not in str(exc)
            else:
                digest = image_data_digest(path)
                assert digest is None or len(digest) == 64

        bounded(one)
