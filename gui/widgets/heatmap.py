"""Attention map -> overlay image: smooth upsampling, a perceptual colour map, and alpha.

The model attends over a coarse grid (7x7 for a 224 px EfficientNet input) laid over the
*whole* image, which it saw squashed to a square. So the grid is stretched over the photo's
full rectangle, whatever its aspect ratio, and upsampled bicubically (cell centres to pixel
centres) so the heat reads as a soft blob rather than a chessboard.

Two styles (OverlayStyle): HEAT paints an inferno-like ramp over the photo, dark and faint where the
word's weight is low and bright and stronger where it peaks (the dark tint is what makes the
glow readable on bright photos); SPOTLIGHT only dims everything the model did not look at,
which keeps the photo's own colours for judging what is there.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage


class OverlayStyle(str, Enum):
    """How a word's attention map is painted (Settings ▸ Attention overlay; stored as its value)."""

    HEAT = "heat"
    SPOTLIGHT = "spotlight"


# inferno, sampled at 9 points (matplotlib's map, public domain data), interpolated to 256
_INFERNO = np.array(
    [
        (0, 0, 4),
        (31, 12, 72),
        (85, 15, 109),
        (136, 34, 106),
        (186, 54, 85),
        (227, 89, 51),
        (249, 140, 10),
        (249, 201, 50),
        (252, 255, 164),
    ],
    dtype=np.float64,
)


LUT = np.stack(
    [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_INFERNO)), _INFERNO[:, c]) for c in range(3)],
    axis=1,
).astype(np.uint8)


def upsample(attention: np.ndarray, width: int, height: int) -> np.ndarray:
    """(gh, gw) weights -> (height, width) float32 in [0, 1], 1 at the strongest place."""
    grid = np.asarray(attention, dtype=np.float32)
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"attention must be a 2-D grid, got shape {grid.shape}")
    smooth = Image.fromarray(grid).resize((max(width, 1), max(height, 1)), Image.Resampling.BICUBIC)
    values = np.clip(np.asarray(smooth, dtype=np.float32), 0.0, None)
    peak = float(values.max())
    return values / peak if peak > 0 else values


def _style_lut(style: OverlayStyle, opacity: float) -> np.ndarray:
    """Weight (0..255) -> RGBA for one style: the whole colour and alpha rule in 256 entries,
    so making an overlay is one resize and one table lookup per pixel."""
    v = np.linspace(0.0, 1.0, 256)
    lut = np.zeros((256, 4), dtype=np.uint8)
    if style is OverlayStyle.SPOTLIGHT:
        alpha = min(0.92, opacity * 1.3) * np.power(1.0 - v, 1.3)
    else:
        lut[:, :3] = LUT
        # the dark end of the ramp tints what was ignored, so the glow reads on bright photos too
        alpha = opacity * (0.4 + 0.6 * np.power(v, 0.8))
    lut[:, 3] = np.round(np.clip(alpha, 0.0, 1.0) * 255).astype(np.uint8)
    return lut


_LUTS: dict[tuple[OverlayStyle, float], np.ndarray] = {}


def overlay_rgba(attention: np.ndarray, width: int, height: int, style: OverlayStyle = OverlayStyle.HEAT,
                 opacity: float = 0.65) -> np.ndarray:
    """The overlay as (height, width, 4) uint8 RGBA, ready to paint over the photo."""
    key = (style, round(opacity, 3))
    if key not in _LUTS:
        _LUTS[key] = _style_lut(style, opacity)
    levels = np.round(upsample(attention, width, height) * 255).astype(np.uint8)
    return _LUTS[key][levels]


def overlay_image(attention: np.ndarray, aspect: float, style: OverlayStyle = OverlayStyle.HEAT,
                  opacity: float = 0.65, longest: int = 320) -> QImage:
    """A QImage overlay with the photo's aspect (width/height); the painter scales it up."""
    if aspect >= 1:
        width, height = longest, max(1, round(longest / aspect))
    else:
        width, height = max(1, round(longest * aspect)), longest
    rgba = np.ascontiguousarray(overlay_rgba(attention, width, height, style, opacity))
    image = QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888)
    return image.copy()  # own the pixels; the numpy buffer goes away


def peak_ratio(attention: np.ndarray) -> float:
    """How much stronger the hottest cell is than uniform attention (1.0 = looked everywhere)."""
    grid = np.asarray(attention, dtype=np.float64)
    total = grid.sum()
    return float(grid.max() * grid.size / total) if total > 0 else 0.0


def peak_cell(attention: np.ndarray) -> tuple[float, float]:
    """Centre of the hottest cell as fractions (x, y) of the image's width and height."""
    grid = np.asarray(attention)
    row, col = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return (col + 0.5) / grid.shape[1], (row + 0.5) / grid.shape[0]


def colour_bar(width: int, height: int) -> QImage:
    """A horizontal legend strip of the colour ramp."""
    ramp = LUT[np.linspace(0, 255, max(width, 1)).astype(np.uint8)]
    rgb = np.ascontiguousarray(np.repeat(ramp[None, :, :], max(height, 1), axis=0))
    image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888)
    return image.copy()
