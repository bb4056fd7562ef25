"""Contact sheets: evenly spaced photos of a split, each with a few lines of coloured text."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from captioner.images import load_image
from training.data import CaptionSet

Line = tuple[str, str, int]  # text, colour, at most this many wrapped rows


def draw_sheet(split: CaptionSet, lines_of: Callable[[int], list[Line]], path: Path, count: int = 24,
               cols: int = 4, thumb: int = 200, rows: int = 8) -> None:
    """`count` photos of `split` in a grid of `cols`, `lines_of(i)` under photo i."""
    step = max(len(split) // count, 1)
    picks = list(range(0, len(split), step))[:count]
    cell_h = thumb + 6 + 13 * rows
    sheet = Image.new("RGB", (cols * (thumb + 16) + 16, -(-len(picks) // cols) * cell_h + 16), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    width = max(thumb // 6, 20)
    for n, i in enumerate(picks):
        x, y = 16 + (n % cols) * (thumb + 16), 16 + (n // cols) * cell_h
        sheet.paste(load_image(split.paths[i]).resize((thumb, thumb)), (x, y))
        row = y + thumb + 3
        for text, colour, limit in lines_of(i):
            for line in textwrap.wrap(text, width)[:limit]:
                draw.text((x, row), line, fill=colour, font=font)
                row += 13
    sheet.save(path)
