"""CIDEr-D with document frequencies fixed from a reference corpus.

Fast enough to be the SCST reward and the validation score every epoch (pycocoevalcap's Cider
recomputes frequencies on each call and needs its Java tokenizer first). Follows the
coco-caption CiderD: n = 1..4, tf-idf vectors, clipped counts, Gaussian length penalty
(sigma 6), times 10.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

N = 4
SIGMA = 6.0


def _ngrams(words: Sequence[str]) -> list[Counter]:
    return [Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1)) for n in range(1, N + 1)]


class CiderD:
    def __init__(self, references: Sequence[Sequence[Sequence[str]]]) -> None:
        """references: for each image, its tokenised reference captions."""
        self.df: Counter = Counter()
        for refs in references:
            self.df.update({g for ref in refs for counts in _ngrams(ref) for g in counts})
        self.log_n = math.log(max(len(references), 1))
        self._cache: dict[tuple[str, ...], tuple[list[dict], list[float], int]] = {}

    def _vector(self, words: Sequence[str]) -> tuple[list[dict], list[float], int]:
        key = tuple(words)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        vecs, norms = [], []
        for counts in _ngrams(words):
            vec = {g: tf * (self.log_n - math.log(max(1.0, self.df.get(g, 0.0))))
                   for g, tf in counts.items()}
            vecs.append(vec)
            norms.append(math.sqrt(sum(v * v for v in vec.values())))
        result = (vecs, norms, len(words))
        if len(self._cache) < 500_000:
            self._cache[key] = result
        return result

    def score(self, candidate: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
        cv, cn, clen = self._vector(candidate)
        total = 0.0
        for ref in refs:
            rv, rn, rlen = self._vector(ref)
            delta = clen - rlen
            sim = 0.0
            for n in range(N):
                if cn[n] == 0 or rn[n] == 0:
                    continue
                dot = sum(min(v, rv[n][g]) * rv[n][g] for g, v in cv[n].items() if g in rv[n])
                sim += dot / (cn[n] * rn[n])
            total += sim / N * math.exp(-(delta ** 2) / (2 * SIGMA ** 2))
        return total / max(len(refs), 1) * 10.0

    def corpus_score(self, candidates: Sequence[Sequence[str]],
                     references: Sequence[Sequence[Sequence[str]]]) -> float:
        scores = [self.score(c, r) for c, r in zip(candidates, references)]
        return sum(scores) / max(len(scores), 1)
