"""The standard caption metrics through pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr.

The PTB tokenizer and METEOR run on Java; SPICE is left out (it downloads Stanford models).
METEOR runs in a Java process that pycocoevalcap never closes on an error (its __del__ then
waits forever on a lock the failed call still holds, and the process hangs at exit), so it is
closed here whatever happens, and a failed METEOR costs only its own number.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from captioner.search import has_repeated_phrase
from captioner.vocab import tokenize


def coco_scores(references: Sequence[Sequence[str]], candidates: Sequence[str],
                meteor: bool = True) -> dict[str, float]:
    """Corpus scores for candidates[i] against references[i] (raw caption strings).

    METEOR is left out of the result (with a line on stderr) when the Java scorer fails."""
    if not candidates or len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} captions to score against {len(references)} reference sets")
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
        value = meteor_score(gts, res)
        if value is not None:
            out["METEOR"] = value
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    return out


def meteor_score(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float | None:
    """METEOR 1.5 of tokenized captions, or None (said on stderr) when the scorer fails."""
    from pycocoevalcap.meteor.meteor import Meteor

    try:
        scorer = Meteor()
    except OSError as exc:  # no Java
        print(f"METEOR left out: {exc}", file=sys.stderr)
        return None
    try:
        return float(scorer.compute_score(gts, res)[0])
    except (ValueError, OSError, AssertionError) as exc:
        print(f"METEOR left out: {exc}", file=sys.stderr)
        return None
    finally:
        close_meteor(scorer)


def close_meteor(scorer: Any) -> None:
    """End the Java process now and free the lock a failed call left held, so that the
    scorer's own __del__ finds nothing to wait for."""
    process = scorer.meteor_p
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass  # a broken pipe to a dead scorer
    process.kill()
    process.wait()
    if scorer.lock.locked():
        scorer.lock.release()


def caption_health(candidates: Sequence[str]) -> dict[str, float]:
    """What users notice: how many captions are distinct, and how many show <unk> or repeats."""
    n = max(len(candidates), 1)
    return {
        "distinct_fraction": len(set(candidates)) / n,
        "unk_count": float(sum("<unk>" in c for c in candidates)),
        "repeated_phrase_count": float(sum(has_repeated_phrase(tokenize(c)) for c in candidates)),
        "mean_length": sum(len(tokenize(c)) for c in candidates) / n,
    }
