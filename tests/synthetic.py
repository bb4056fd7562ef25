"""Synthetic caption data for tests: coloured shapes on plain backgrounds ("a red circle")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220),
           "yellow": (240, 210, 20)}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = ((255, 255, 255), (200, 200, 200), (40, 40, 40))


def draw_shape(colour: str, shape: str, rng: np.random.Generator, size: int = 224) -> Image.Image:
    img = Image.new("RGB", (size, size), BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    draw = ImageDraw.Draw(img)
    r = int(rng.integers(size // 5, size // 3))
    cx, cy = (int(rng.integers(r + 4, size - r - 4)) for _ in range(2))
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    return img


def make_shapes_folder(root: Path, per_class: int, seed: int = 0, sidecars: bool = True
                       ) -> list[tuple[Path, str]]:
    """Write per_class JPEGs for every colour x shape; returns (path, caption) pairs."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for colour in COLOURS:
        for shape in SHAPES:
            for k in range(per_class):
                path = root / f"{colour}_{shape}_{seed}_{k}.jpg"
                draw_shape(colour, shape, rng).save(path, quality=92)
                caption = f"a {colour} {shape}"
                if sidecars:
                    path.with_suffix(".txt").write_text(caption + "\n")
                out.append((path, caption))
    return out
