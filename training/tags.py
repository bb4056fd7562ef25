"""ImageNet tags: the encoder's own classifier head, mapped to everyday caption words.

The 1,000 ImageNet class probabilities are summed per word of the reviewed table
`training/tags/imagenet_words.tsv` (breeds -> "dog", "four-poster" -> "bed"; classes with no
everyday word are dropped), so each image gets a probability per tag word. The same head runs
on cached training features (the global average of the grid the decoder attends over) and
inside the exported encoder graph, so the app's tags are the ones the decoder learned from.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from training.features import FeatureStore

TABLE = Path(__file__).parent / "tags" / "imagenet_words.tsv"


@dataclass(frozen=True)
class TagTable:
    """Tag words (sorted) and the ImageNet class -> word assignment."""

    words: tuple[str, ...]
    class_word: tuple[int, ...]  # per ImageNet class: index into words, or -1 (no word)

    def matrix(self) -> torch.Tensor:
        """(1000, T) 0/1 matrix that sums class probabilities into word probabilities."""
        m = torch.zeros(len(self.class_word), len(self.words))
        for cls, word in enumerate(self.class_word):
            if word >= 0:
                m[cls, word] = 1.0
        return m


def load_tag_table(path: Path = TABLE) -> TagTable:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    words = tuple(sorted({r["word"] for r in rows if r["word"]}))
    index = {w: i for i, w in enumerate(words)}
    return TagTable(words, tuple(index[r["word"]] if r["word"] else -1 for r in rows))


class TagHead(nn.Module):
    """Backbone grid (B, N, D) -> tag word probabilities (B, T): pool, ImageNet fc, softmax, sum."""

    to_words: torch.Tensor  # (1000, T) buffer

    def __init__(self, fc: nn.Linear, table: TagTable) -> None:
        super().__init__()
        self.fc = nn.Linear(fc.in_features, fc.out_features)
        self.fc.load_state_dict(fc.state_dict())
        self.register_buffer("to_words", table.matrix())
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.fc(grid.float().mean(dim=1)), dim=1)
        return probs @ self.to_words


def build_tag_head(encoder_name: str, table: TagTable | None = None) -> TagHead:
    """The classifier head of a registered encoder (its weights ship with the backbone's)."""
    from training.encoders import get_encoder

    info = get_encoder(encoder_name)
    if info.classifier is None:
        raise ValueError(f"encoder {encoder_name} has no ImageNet classifier head for tags")
    net = info.classifier()
    fc = net._fc if hasattr(net, "_fc") else cast(nn.Sequential, net.classifier)[-1]  # Lite / MobileNet
    return TagHead(cast(nn.Linear, fc), table or load_tag_table()).eval()


@torch.no_grad()
def tag_probs(head: TagHead, feats: FeatureStore | torch.Tensor, batch: int = 512,
              views: int | None = None) -> torch.Tensor:
    """Tag probabilities of cached features (views, N, P, D) -> (views, N, T) float32, of the
    first `views` views (None: all). Read `batch` photos at a time, so a memory-mapped
    FeatureStore is never loaded whole; the result is small (T words per photo)."""
    count, n = feats.shape[0] if views is None else views, feats.shape[1]
    out = [torch.cat([head(feats[v, i:i + batch]) for i in range(0, n, batch)]) for v in range(count)]
    return torch.stack(out)
