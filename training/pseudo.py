"""Pseudo-captions for photos that have none, retrieved from text-only captions by their tags.

For each unlabeled everyday photo, the COCO captions in `text/` that mention its confident tag
words (and few words the classifier did not see) are taken as its references, so the decoder
sees everyday photos beside everyday sentences (the pseudo-caption idea of PS-NOC, Bujimalla et
al. 2021, with retrieval in place of a template). Photos without a confident tag are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioner.vocab import tokenize


@dataclass(frozen=True)
class RetrievalConfig:
    per_photo: int = 5  # captions kept per photo
    min_top_tag: float = 0.3  # a photo needs one tag at least this probable
    unseen_penalty: float = 0.2  # per tag word in a caption that the photo's tags lack
    unseen_below: float = 0.1  # a tag this improbable counts as lacking


def _forms(words: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t, w in enumerate(words):
        for form in (w, w + "s", w + "es"):
            out.setdefault(form, t)
    return out


def incidence(captions: list[str], tag_words: tuple[str, ...]) -> np.ndarray:
    """(captions, T) 0/1: which tag words (or plurals) each caption mentions."""
    forms = _forms(tag_words)
    out = np.zeros((len(captions), len(tag_words)), dtype=np.float32)
    for row, caption in enumerate(captions):
        for word in tokenize(caption):
            if word in forms:
                out[row, forms[word]] = 1.0
    return out


def retrieve(tags: np.ndarray, captions: list[str], tag_words: tuple[str, ...],
             cfg: RetrievalConfig | None = None) -> list[list[str]]:
    """Per photo (rows of tags, (N, T)), its retrieved captions, or [] when it has no sure tag."""
    cfg = cfg or RetrievalConfig()
    inc = incidence(captions, tag_words)
    keep = inc.sum(axis=1) > 0
    inc, pool = inc[keep], [c for c, k in zip(captions, keep) if k]
    out: list[list[str]] = []
    for start in range(0, len(tags), 256):
        q = tags[start:start + 256]
        score = q @ inc.T - cfg.unseen_penalty * ((q < cfg.unseen_below).astype(np.float32) @ inc.T)
        top = np.argsort(-score, axis=1)[:, : cfg.per_photo]
        for row, best in enumerate(top):
            sure = q[row].max() >= cfg.min_top_tag
            out.append([pool[i] for i in best] if sure else [])
    return out


def unlabeled_photos(folder: Path) -> list[Path]:
    from captioner.images import is_image_path

    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))


def teacher_captioned(records: list[dict], photos: list[Path], min_confidence: float
                      ) -> tuple[list[int], list[list[str]]]:
    """Self-training (issue 15's fourth lever): the photos a stronger model captioned with a
    confidence of at least `min_confidence` (records of `captioner caption --json`), as rows of
    `photos` with that model's n-best captions as their references. Records of other photos,
    or without a confidence, are left out."""
    index = {p.resolve(): i for i, p in enumerate(photos)}
    rows, captions = [], []
    for record in records:
        confidence, row = record.get("confidence"), index.get(Path(str(record.get("file"))).resolve())
        if row is None or not isinstance(confidence, float) or confidence < min_confidence:
            continue
        best = [a["caption"] for a in record.get("alternatives", []) if a.get("caption")]
        rows.append(row)
        captions.append(best or [record["caption"]])
    return rows, captions
