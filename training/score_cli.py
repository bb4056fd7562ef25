"""Score captions written by `captioner caption --json` against a split's references.

    captioner caption $(cat list) --beam 3 --json out.json
    python -m training.score_cli out.json --data ../shared/data/flickr8k        # test split
    python -m training.score_cli out.json --split-folder ../shared/data/coco_ood

This is the "as users run it" figure: the CLI's own defaults (model variant, length penalty),
not the fp32 graphs that training.evaluate uses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.data import CaptionSet, folder_split, load_splits
from training.metrics import caption_health, coco_scores


def score(records: list[dict], split: CaptionSet) -> dict[str, float]:
    by_name = {Path(r["file"]).name: r.get("caption", "") for r in records}
    missing = [p.name for p in split.paths if p.name not in by_name]
    if missing:
        raise SystemExit(f"{len(missing)} photos of the split have no caption, e.g. {missing[0]}")
    captions = [by_name[p.name] for p in split.paths]
    return coco_scores(split.captions, captions) | caption_health(captions)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("json", type=Path)
    p.add_argument("--data", type=Path, help="Flickr8k folder: score on its test split")
    p.add_argument("--split-folder", type=Path, help="a captioned folder (images/ + captions.txt)")
    args = p.parse_args()
    if args.split_folder:
        split = folder_split(args.split_folder)
    else:
        split = load_splits("flickr8k", args.data)["test"]
    result = score(json.loads(args.json.read_text(encoding="utf-8")), split)
    print(json.dumps({k: round(v, 4) for k, v in result.items()}))


if __name__ == "__main__":
    main()
