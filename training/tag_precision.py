"""How often a bundle's tags are right, by probability threshold.

    python -m training.tag_precision --bundle models/default --flickr ../shared/data/flickr8k \
        --ood ../shared/data/coco_ood

A tag is right when its word, a plural or a listed synonym (captioner/tags.py) is in one of the
photo's reference captions. For each threshold: the share of photos with at least one tag, and
the precision of all tags shown. The app's threshold (captioner.tags.MIN_P) is chosen on the
Flickr8k dev split; coco_ood is reported.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from captioner.captioner import Captioner
from captioner.images import load_image, preprocess_batch
from captioner.tags import mentioned
from captioner.vocab import tokenize
from training.data import CaptionSet, folder_split, load_splits

THRESHOLDS = (0.1, 0.15, 0.2, 0.3, 0.5)


def tag_probabilities(cap: Captioner, split: CaptionSet, batch: int = 32) -> np.ndarray:
    spec = cap.bundle.manifest.input_spec
    rows = []
    for start in range(0, len(split), batch):
        images = [load_image(p, draft_size=spec.size) for p in split.paths[start:start + batch]]
        tags = cap.encode(preprocess_batch(images, spec)).tags
        if tags is None:
            raise SystemExit(f"bundle {cap.name} has no tags")
        rows.append(tags)
    return np.concatenate(rows)


def precision_table(probs: np.ndarray, split: CaptionSet, words: tuple[str, ...]
                    ) -> dict[str, dict[str, float]]:
    refs = [[w for c in caps for w in tokenize(c)] for caps in split.captions]
    out = {}
    for threshold in THRESHOLDS:
        shown = right = photos = 0
        for row, ref_words in zip(probs, refs):
            tags = [words[i] for i in np.argsort(-row)[:5] if row[i] >= threshold]
            photos += bool(tags)
            shown += len(tags)
            right += sum(mentioned(t, ref_words) for t in tags)
        out[str(threshold)] = {"photos_with_tags": round(photos / len(refs), 3),
                               "precision": round(right / max(shown, 1), 3), "tags": shown}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--flickr", type=Path, required=True)
    p.add_argument("--ood", type=Path, required=True)
    args = p.parse_args()
    cap = Captioner(args.bundle, provider="cpu", variant="fp32")
    report = {}
    for name, split in (("flickr8k_dev", load_splits("flickr8k", args.flickr)["val"]),
                        ("coco_ood", folder_split(args.ood))):
        report[name] = precision_table(tag_probabilities(cap, split), split, cap.bundle.tag_words)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
