"""The standard caption metrics through pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr.

The PTB tokenizer and METEOR run on Java; SPICE is left out (it downloads Stanford models).
"""

from __future__ import annotations

from collections.abc import Sequence

from captioner.search import has_repeated_phrase
from captioner.vocab import tokenize


def coco_scores(references: Sequence[Sequence[str]], candidates: Sequence[str],
                meteor: bool = True) -> dict[str, float]:
    """Corpus scores for candidates[i] against references[i] (raw caption strings)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    res = tokenizer.tokenize({i: [{"caption": c or "empty"}] for i, c in enumerate(candidates)})
    out: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n, value in enumerate(bleu, start=1):
        out[f"BLEU-{n}"] = float(value)
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        out["METEOR"] = float(scorer.compute_score(gts, res)[0])
        del scorer
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    return out


def caption_health(candidates: Sequence[str]) -> dict[str, float]:
    """What users notice: how many captions are distinct, and how many show <unk> or repeats."""
    n = max(len(candidates), 1)
    return {
        "distinct_fraction": len(set(candidates)) / n,
        "unk_count": float(sum("<unk>" in c for c in candidates)),
        "repeated_phrase_count": float(sum(has_repeated_phrase(tokenize(c)) for c in candidates)),
        "mean_length": sum(len(tokenize(c)) for c in candidates) / n,
    }
