"""How sure a caption is: a number in [0, 1] that predicts whether the caption is right.

Signals, combined by a logistic model fitted per bundle (training/calibrate.py, on the
Flickr8k dev split) and stored in its `calibration.json`:
- the caption's own length-normalised log-probability, its margin over the runner-up, and how
  much the n-best alternatives agree with it (words in common: a model that is sure writes
  the same sentence several ways);
- agreement with the tags: how much tag probability the caption's words carry, and whether
  the photo has a sure tag the caption leaves out;
- how typical its phrases are: the mean log count of its word trigrams in the training
  captions (with the other signals, a caption stitched from the commonest template phrases,
  "a man in a blue shirt is", is more often wrong than one of the same score in rarer words);
- how far the photo's features lie from the training photos' (a z-score distance of the mean
  feature), since captions of unfamiliar photos are more often wrong;
- how good this model's captions were for the most similar calibration photos (their CIDEr,
  weighted by cosine similarity of the mean features): a model is reliably good on some kinds
  of photo (a dog in snow) and reliably poor on others (a crowd indoors).
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from captioner.tags import mentioned

SIGNALS = ("score", "margin", "consensus", "length", "top_tag", "tag_agreement", "top_tag_missing",
           "phrase_typicality", "distance", "neighbour_score")
NEIGHBOURS = 15
PHRASE = 3  # words per phrase (trigrams)


@dataclass(frozen=True)
class Phrases:
    """How often each word trigram occurs in the training captions (those seen twice or more)."""

    counts: Mapping[str, int]

    @classmethod
    def build(cls, captions: Iterable[Sequence[str]], min_count: int = 2) -> Phrases:
        counts = Counter(" ".join(words[i:i + PHRASE]) for words in captions
                         for i in range(len(words) - PHRASE + 1))
        return cls({g: n for g, n in counts.items() if n >= min_count})

    def typicality(self, words: Sequence[str]) -> float:
        """Mean log(1 + count) of the caption's trigrams (0.0 for a caption under three words)."""
        grams = [" ".join(words[i:i + PHRASE]) for i in range(len(words) - PHRASE + 1)]
        return float(np.mean([np.log1p(self.counts.get(g, 0)) for g in grams])) if grams else 0.0

    def to_json(self) -> dict[str, int]:
        return dict(self.counts)

    @classmethod
    def from_json(cls, data: object) -> Phrases:
        if not isinstance(data, dict) or not all(
                isinstance(g, str) and type(n) is int and n > 0 for g, n in data.items()):
            raise ValueError("calibration phrases are not a table of phrase counts")
        return cls(data)


@dataclass(frozen=True)
class Neighbours:
    """Calibration photos' mean features (unit vectors) and how good their captions were."""

    features: np.ndarray  # (N, E) float32, unit length
    scores: np.ndarray  # (N,) CIDEr of the bundle's own caption of each photo
    k: int = NEIGHBOURS

    @classmethod
    def build(cls, mean_features: np.ndarray, scores: np.ndarray, k: int = NEIGHBOURS) -> Neighbours:
        unit = mean_features / np.maximum(np.linalg.norm(mean_features, axis=1, keepdims=True), 1e-9)
        return cls(unit.astype(np.float32), np.asarray(scores, dtype=np.float32), k)

    def expected_score(self, mean_feature: np.ndarray, exclude: int | None = None) -> float:
        """Similarity-weighted score of the k most similar photos (`exclude`: leave one out)."""
        sims = self.features @ (mean_feature / max(float(np.linalg.norm(mean_feature)), 1e-9))
        if exclude is not None:
            sims[exclude] = -np.inf
        top = np.argsort(-sims)[: self.k]
        weights = np.maximum(sims[top], 1e-6)
        return float((self.scores[top] * weights).sum() / weights.sum())

    def to_json(self) -> dict[str, object]:
        raw = self.features.astype(np.float16).tobytes()
        return {"k": self.k, "shape": list(self.features.shape), "scores": self.scores.round(4).tolist(),
                "features_f16": base64.b64encode(raw).decode("ascii")}

    @classmethod
    def from_json(cls, data: dict) -> Neighbours:
        n, e = (int(x) for x in data["shape"])
        raw = base64.b64decode(data["features_f16"], validate=True)
        if len(raw) != n * e * 2 or n < 1 or e < 1:
            raise ValueError("calibration neighbours do not match their shape")
        scores = np.asarray(data["scores"], dtype=np.float32)
        if scores.shape != (n,) or not np.isfinite(scores).all():
            raise ValueError("calibration neighbour scores are malformed")
        features = np.frombuffer(raw, dtype=np.float16).reshape(n, e).astype(np.float32)
        return cls(features, scores, max(1, min(int(data["k"]), n)))


@dataclass(frozen=True)
class Calibration:
    """A fitted logistic model over SIGNALS (standardised), and the training feature stats."""

    weights: tuple[float, ...]
    bias: float
    signal_mean: tuple[float, ...]
    signal_scale: tuple[float, ...]
    feature_center: np.ndarray  # (E,) mean of the training photos' mean feature
    feature_scale: np.ndarray  # (E,) their standard deviation
    neighbours: Neighbours
    phrases: Phrases

    def photo_signals(self, mean_feature: np.ndarray) -> tuple[float, float]:
        """The photo's signals from its mean feature. A wider feature is an ensemble's (the
        quality variant, docs/quality.md): its decoders' features side by side, the bundle's
        own decoder first, whose features are the ones this calibration was fitted on."""
        own = mean_feature[: self.feature_center.shape[0]]
        return photo_signals(own, self.feature_center, self.feature_scale, self.neighbours)

    def confidence(self, signals: np.ndarray) -> float:
        z = (signals - np.asarray(self.signal_mean)) / np.asarray(self.signal_scale)
        return float(1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias))))

    def to_json(self) -> dict[str, object]:
        return {"signals": list(SIGNALS), "weights": list(self.weights), "bias": self.bias,
                "signal_mean": list(self.signal_mean), "signal_scale": list(self.signal_scale),
                "feature_center": self.feature_center.round(5).tolist(),
                "feature_scale": self.feature_scale.round(5).tolist(),
                "neighbours": self.neighbours.to_json(), "phrases": self.phrases.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        if list(data["signals"]) != list(SIGNALS):
            raise ValueError(f"calibration signals {data['signals']} are not {list(SIGNALS)}")
        n = len(SIGNALS)
        weights, mean, scale = (tuple(float(x) for x in data[k]) for k in
                                ("weights", "signal_mean", "signal_scale"))
        if not len(weights) == len(mean) == len(scale) == n or min(scale) <= 0:
            raise ValueError("calibration weights do not fit its signals")
        center = np.asarray(data["feature_center"], dtype=np.float32)
        fscale = np.asarray(data["feature_scale"], dtype=np.float32)
        if center.shape != fscale.shape or center.ndim != 1 or (fscale <= 0).any():
            raise ValueError("calibration feature statistics are malformed")
        neighbours = Neighbours.from_json(data["neighbours"])
        if neighbours.features.shape[1] != center.shape[0]:
            raise ValueError("calibration neighbours and feature statistics differ in size")
        return cls(weights, float(data["bias"]), mean, scale, center, fscale, neighbours,
                   Phrases.from_json(data["phrases"]))


def photo_signals(mean_feature: np.ndarray, center: np.ndarray, scale: np.ndarray,
                  neighbours: Neighbours, exclude: int | None = None) -> tuple[float, float]:
    """The photo's own signals: distance from the training photos, and its neighbours' score
    (`exclude`: a calibration photo leaves itself out)."""
    return (feature_distance(mean_feature, center, scale),
            neighbours.expected_score(mean_feature, exclude))


def feature_distance(mean_feature: np.ndarray, center: np.ndarray, scale: np.ndarray) -> float:
    """Root-mean-square z-score of a photo's mean feature against the training photos'."""
    return float(np.sqrt(np.mean(((mean_feature - center) / scale) ** 2)))


def consensus(words: Sequence[str], alternatives: Sequence[str]) -> float:
    """Mean word-overlap F1 of the caption with the other n-best captions (1.0: none)."""
    mine = set(words)
    scores = []
    for other in alternatives:
        theirs = set(other.split())
        common = len(mine & theirs)
        scores.append(2 * common / max(len(mine) + len(theirs), 1))
    return float(np.mean(scores)) if scores else 1.0


def caption_signals(score: float, alternatives: Sequence[tuple[str, float]], words: Sequence[str],
                    tag_probs: np.ndarray | None, tag_words: Sequence[str], phrases: Phrases,
                    photo: tuple[float, float]) -> np.ndarray:
    """The SIGNALS of one caption, in order; `alternatives` is the n-best list, best first."""
    margin = score - alternatives[1][1] if len(alternatives) > 1 else 1.0
    agree = consensus(words, [text for text, _ in alternatives[1:]])
    agreement, missing, top_p = 0.0, 0.0, 0.0
    if tag_probs is not None:
        for i in np.nonzero(tag_probs >= 0.05)[0]:
            if mentioned(tag_words[int(i)], words):
                agreement += float(tag_probs[i])
        top = int(np.argmax(tag_probs))
        top_p = float(tag_probs[top])
        missing = top_p if not mentioned(tag_words[top], words) else 0.0
    return np.array([score, min(margin, 1.0), agree, len(words), top_p, agreement, missing,
                     phrases.typicality(words), *photo], dtype=np.float64)
