"""Experiment (not shipped): consensus (MBR) reranking of the beam n-best, measured on val.

    python -m training.experiments.mbr_rerank 5 5      # beam size, n-best

Each candidate is scored by its CIDEr-D against the other candidates (weighted by their
probabilities at temperature t, or equally for t=0); the top one is kept. Result in
docs/results.md.
"""
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
    def pick(cands, temp):
        if len(cands) < 2:
            return cands[0][0] if cands else ""
        toks = [tokenize(t) for t, _ in cands]
        ws = [math.exp(s / temp) if temp else 1.0 for _, s in cands]
        best, best_v = None, -1e9
        for i, t in enumerate(toks):
            v = sum(w * cider.score(t, [o]) for j, (o, w) in enumerate(zip(toks, ws)) if j != i)
            v /= sum(w for j, w in enumerate(ws) if j != i)
            if v > best_v:
                best, best_v = cands[i][0], v
        return best
    top = [a[0][0] if a else "" for a in alts]
    s = coco_scores(val.captions, top, meteor=False)
    print(f"top1      B4 {s['BLEU-4']:.4f} CIDEr {s['CIDEr']:.4f}")
    for temp in (0, 1.0, 0.3):
        c = [pick(a, temp) for a in alts]
        s = coco_scores(val.captions, c, meteor=False)
        print(f"mbr t={temp} B4 {s['BLEU-4']:.4f} CIDEr {s['CIDEr']:.4f}")


if __name__ == "__main__":
    main()
