"""Experiment (not shipped): consensus (MBR) reranking of the beam n-best, measured on val.

    python -m training.experiments.mbr_rerank 5 5      # beam size, n-best

Each candidate is scored by its CIDEr-D against the other candidates (weighted by their
probabilities at temperature t, or equally for t=0); the top one is kept. Result in
docs/results.md.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from captioner.captioner import Captioner, CaptionOptions
from captioner.errors import CaptionerError
from captioner.vocab import tokenize
from training.cider import CiderD
from training.data import load_splits
from training.metrics import coco_scores


def consensus_pick(cider: CiderD, candidates: list[list], temperature: float) -> str:
    """The candidate (text, score) with the highest weighted CIDEr-D against the others."""
    if len(candidates) < 2:
        return candidates[0][0] if candidates else ""
    words = [tokenize(text) for text, _ in candidates]
    weights = [math.exp(score / temperature) if temperature else 1.0 for _, score in candidates]
    best, best_value = "", -1e9
    for i, mine in enumerate(words):
        others = [(w, weight) for j, (w, weight) in enumerate(zip(words, weights)) if j != i]
        value = sum(weight * cider.score(mine, [w]) for w, weight in others) / sum(x for _, x in others)
        if value > best_value:
            best, best_value = candidates[i][0], value
    return best


def main() -> None:
    splits = load_splits("flickr8k", Path("../shared/data/flickr8k"), None)
    val = splits["val"]
    beam, nbest = int(sys.argv[1]), int(sys.argv[2])
    cap = Captioner("models/default", provider="cpu", variant="fp32")
    out = Path(f"runs/mbr/val_nbest_b{beam}_n{nbest}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        alts = json.loads(out.read_text())
    else:
        alts = []
        for _, r in cap.caption_files(val.paths, CaptionOptions(beam_size=beam, n_best=nbest), batch_size=32):
            alts.append([] if isinstance(r, CaptionerError) else [list(a) for a in r.alternatives])
        out.write_text(json.dumps(alts))
    train_refs = [[tokenize(c) for c in caps] for caps in splits["train"].captions]
    cider = CiderD(train_refs)
    top = [a[0][0] if a else "" for a in alts]
    s = coco_scores(val.captions, top, meteor=False)
    print(f"top1      B4 {s['BLEU-4']:.4f} CIDEr {s['CIDEr']:.4f}")
    for temp in (0, 1.0, 0.3):
        c = [consensus_pick(cider, a, temp) for a in alts]
        s = coco_scores(val.captions, c, meteor=False)
        print(f"mbr t={temp} B4 {s['BLEU-4']:.4f} CIDEr {s['CIDEr']:.4f}")


if __name__ == "__main__":
    main()
