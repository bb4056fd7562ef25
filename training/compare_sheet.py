"""A before/after contact sheet: the same photos captioned by two bundles, with a reference.

    python -m training.compare_sheet --split-folder ../shared/data/coco_ood \
        --before runs/before/coco_ood_captions_beam3.json --after runs/default/coco_ood_captions_beam3.json \
        --out docs/everyday_before_after.png

The caption files are the `{photo name: caption}` JSON that training.evaluate writes per split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.data import CaptionSet, folder_split
from training.sheets import Line, draw_sheet


def compare_sheet(split: CaptionSet, before: dict[str, str], after: dict[str, str], path: Path) -> None:
    def lines(i: int) -> list[Line]:
        name = split.paths[i].name
        return [("before: " + before.get(name, "?"), "#b03030", 2),
                ("after: " + after.get(name, "?"), "#106010", 3),
                ("ref: " + split.captions[i][0], "#666666", 2)]

    draw_sheet(split, lines, path)


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
