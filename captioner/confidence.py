"""How sure a caption is: a number in [0, 1] that predicts whether the caption is right.

Signals, combined by a logistic model fitted per bundle (training/calibrate.py, on the
Flickr8k dev split and coco_ood) and stored in its `calibration.json`:
- the caption's own length-normalised log-probability, its margin over the runner-up, and how
  much the n-best alternatives agree with it (words in common: a model that is sure writes
  the same sentence several ways);
- agreement with the tags: how much tag probability the caption's words carry, and whether
  the photo has a sure tag the caption leaves out;
- how far the photo's features lie from the training photos' (a z-score distance of the mean
  feature), since captions of unfamiliar photos are more often wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from captioner.tags import mentioned

SIGNALS = ("score", "margin", "consensus", "length", "top_tag", "tag_agreement", "top_tag_missing",
           "distance")


@dataclass(frozen=True)
class Calibration:
    """A fitted logistic model over SIGNALS (standardised), and the training feature stats."""

    weights: tuple[float, ...]
    bias: float
    signal_mean: tuple[float, ...]
    signal_scale: tuple[float, ...]
    feature_center: np.ndarray  # (E,) mean of the training photos' mean feature
    feature_scale: np.ndarray  # (E,) their standard deviation

    def confidence(self, signals: np.ndarray) -> float:
        z = (signals - np.asarray(self.signal_mean)) / np.asarray(self.signal_scale)
        return float(1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias))))

    def to_json(self) -> dict[str, object]:
        return {"signals": list(SIGNALS), "weights": list(self.weights), "bias": self.bias,
                "signal_mean": list(self.signal_mean), "signal_scale": list(self.signal_scale),
                "feature_center": self.feature_center.round(5).tolist(),
                "feature_scale": self.feature_scale.round(5).tolist()}

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
        return cls(weights, float(data["bias"]), mean, scale, center, fscale)


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
                    tag_probs: np.ndarray | None, tag_words: Sequence[str],
                    distance: float) -> np.ndarray:
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
    return np.array([score, min(margin, 1.0), agree, len(words), top_p, agreement, missing, distance],
                    dtype=np.float64)
