"""The table-driven normalisation in `preprocess` must equal the plain per-pixel arithmetic
bit for bit: training features, parity checks and the app all depend on the same pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from captioner.images import InputSpec, preprocess


def per_pixel(img: Image.Image, spec: InputSpec) -> np.ndarray:
    resized = img.convert("RGB").resize((spec.size, spec.size), Image.Resampling.BILINEAR,
                                        reducing_gap=None)
    arr = np.asarray(resized, dtype=np.float32) / 255.0
    normalised = (arr - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


SPECS = [
    InputSpec(260, (127 / 255,) * 3, (128 / 255,) * 3),  # EfficientNet-Lite
    InputSpec(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet
    InputSpec(37, (0.1, 0.9, 0.5), (0.3, 0.07, 1.0)),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: str(s.size))
@pytest.mark.parametrize("shape", [(224, 224), (341, 256), (19, 500)])
def test_table_equals_per_pixel_arithmetic(spec: InputSpec, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0])
    img = Image.fromarray(rng.integers(0, 256, size=(shape[1], shape[0], 3), dtype=np.uint8), "RGB")
    out = preprocess(img, spec)
    assert out.dtype == np.float32 and out.shape == (3, spec.size, spec.size)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, per_pixel(img, spec))


def test_every_level_is_covered() -> None:
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = Image.fromarray(np.stack([levels, levels.T, 255 - levels], axis=-1), "RGB")
    spec = InputSpec(16, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    np.testing.assert_array_equal(preprocess(img, spec), per_pixel(img, spec))
