"""A before/after contact sheet: the same photos captioned by two bundles, with a reference.

    python -m training.compare_sheet --split-folder ../shared/data/coco_ood \
        --before runs/before/coco_ood_captions_beam3.json --after runs/default/coco_ood_captions_beam3.json \
        --out docs/everyday_before_after.png

The caption files are the `{photo name: caption}` JSON that training.evaluate writes per split.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from captioner.images import load_image
from training.data import CaptionSet, folder_split


def compare_sheet(split: CaptionSet, before: dict[str, str], after: dict[str, str], path: Path,
                  count: int = 24, cols: int = 4, thumb: int = 200) -> None:
    step = max(len(split) // count, 1)
    picks = list(range(0, len(split), step))[:count]
    cell_h = thumb + 118
    sheet = Image.new("RGB", (cols * (thumb + 16) + 16, -(-len(picks) // cols) * cell_h + 16), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for n, i in enumerate(picks):
        x, y = 16 + (n % cols) * (thumb + 16), 16 + (n // cols) * cell_h
        name = split.paths[i].name
        sheet.paste(load_image(split.paths[i]).resize((thumb, thumb)), (x, y))
        lines = [("before: " + before.get(name, "?"), "#b03030", 2), ("after: " + after.get(name, "?"),
                 "#106010", 3), ("ref: " + split.captions[i][0], "#666666", 2)]
        row = y + thumb + 3
        for text, colour, limit in lines:
            for line in textwrap.wrap(text, 33)[:limit]:
                draw.text((x, row), line, fill=colour, font=font)
                row += 13
    sheet.save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--split-folder", type=Path, required=True)
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--after", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    before, after = (json.loads(f.read_text(encoding="utf-8")) for f in (args.before, args.after))
    compare_sheet(folder_split(args.split_folder), before, after, args.out)


if __name__ == "__main__":
    main()
