"""Score captions written by `captioner caption --json` against a split's references.

    captioner caption $(cat list) --beam 3 --json out.json
    python -m training.score_cli out.json --data ../shared/data/flickr8k        # test split
    python -m training.score_cli out.json --split-folder ../shared/data/coco_ood
    python -m training.score_cli test.json --data ../shared/data/flickr8k \
        --and ood.json ../shared/data/coco_ood       # + Spearman of confidence, both pooled

This is the "as users run it" figure: the CLI's own defaults (model variant, length penalty),
not the fp32 graphs that training.evaluate uses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training.calibrate import per_photo_cider, spearman
from training.data import CaptionSet, folder_split, load_splits
from training.metrics import caption_health, coco_scores


def in_split_order(records: list[dict], split: CaptionSet) -> list[dict]:
    by_name = {Path(r["file"]).name: r for r in records}
    missing = [p.name for p in split.paths if p.name not in by_name]
    if missing:
        raise SystemExit(f"{len(missing)} photos of the split have no caption, e.g. {missing[0]}")
    return [by_name[p.name] for p in split.paths]


def score(records: list[dict], split: CaptionSet) -> dict[str, float]:
    captions = [r.get("caption", "") for r in in_split_order(records, split)]
    return coco_scores(split.captions, captions) | caption_health(captions)


def confidence_spearman(runs: list[tuple[list[dict], CaptionSet]]) -> float:
    """Spearman of the CLI's confidence with each photo's own CIDEr, all runs pooled (the
    confidence issue's measure, on what users get rather than on the fp32 graphs)."""
    conf, cider = [], []
    for records, split in runs:
        rows = in_split_order(records, split)
        conf += [float(r["confidence"]) for r in rows]
        cider.append(per_photo_cider(split.captions, [r.get("caption", "") for r in rows]))
    return spearman(np.array(conf), np.concatenate(cider))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("json", type=Path)
    p.add_argument("--data", type=Path, help="Flickr8k folder: score on its test split")
    p.add_argument("--split-folder", type=Path, help="a captioned folder (images/ + captions.txt)")
    p.add_argument("--and", dest="more", nargs=2, action="append", default=[], type=Path,
                   metavar=("JSON", "FOLDER"), help="another run and its captioned folder, pooled "
                   "with the first for the confidence's Spearman")
    args = p.parse_args()
    if args.split_folder:
        split = folder_split(args.split_folder)
    else:
        split = load_splits("flickr8k", args.data)["test"]
    records = json.loads(args.json.read_text(encoding="utf-8"))
    result = score(records, split)
    runs = [(records, split)] + [(json.loads(j.read_text(encoding="utf-8")), folder_split(f))
                                 for j, f in args.more]
    if all("confidence" in r for recs, _ in runs for r in recs):
        result["spearman_confidence"] = confidence_spearman(runs)
    print(json.dumps({k: round(v, 4) for k, v in result.items()}))


if __name__ == "__main__":
    main()
