"""Several decoders as one: the "best quality" variant of a bundle (docs/quality.md).

Averaging the word distributions of two decoders at every step gave +2% val CIDEr-D in round 1
(docs/results.md), for twice the decoder time. DecoderEnsemble makes k decoders look like one
CaptionDecoder to the exporter (`encode`, `step`, `cfg`), so export/to_onnx.py writes its two
graphs and export/parity.py checks them with no special case, and the bundle's graph interface
stays what it is: the members' features, keys, h and c are concatenated along the last axis
(features (B, N, k*E), h (B, k*H)), and `step` splits them again. The output is the log of the
mean of the members' probabilities, log(1/k sum p_i), written as logsumexp - log k so that it
stays exact where the probabilities are tiny. The attention shown per word is the members' mean.

The members must mean the same thing by every id: the same vocabulary (word for word), the same
grid from the same encoder, and the same tag words (their copy mechanism reads the encoder's tag
probabilities by position). A mismatch is one ValueError naming the member that differs and what.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

import torch
from torch import nn

from captioner.vocab import Vocabulary
from training.model import CaptionDecoder


@dataclass(frozen=True)
class Member:
    """One decoder of an ensemble, the vocabulary its ids index, and a name for messages
    (its checkpoint's path)."""

    decoder: CaptionDecoder
    vocab: Vocabulary
    name: str


class DecoderEnsemble(nn.Module):
    """k decoders stepped side by side; log(mean probability) out. See the module docstring.

    `cfg` describes the ensemble's ports for export (embed_dim, attention_dim and hidden_size are
    the members' widths summed); it is not a configuration to build a decoder from.
    """

    def __init__(self, members: Sequence[Member], own_grids: bool = False) -> None:
        """own_grids: each member reads its own grid, the k grids side by side in the one the
        encoder graph passes (training/encoder_top.TunedBackbone); otherwise all read the same."""
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one decoder")
        for other in members[1:]:
            problem = member_mismatch(members[0], other)
            if problem:
                raise ValueError(problem)
        self.members = nn.ModuleList(m.decoder for m in members)
        self.names = [m.name for m in members]
        self.feature_widths, self.key_widths, self.state_widths = _widths(members[0].decoder.cfg.tag_count,
                                                                          [m.decoder for m in members])
        first = members[0].decoder.cfg
        self.grid_widths = [first.feature_dim] * len(members) if own_grids else None
        self.cfg = replace(first, embed_dim=sum(self.feature_widths), attention_dim=sum(self.key_widths),
                           hidden_size=sum(self.state_widths),
                           feature_dim=first.feature_dim * (len(members) if own_grids else 1))

    @property
    def decoders(self) -> list[CaptionDecoder]:
        return [cast(CaptionDecoder, member) for member in self.members]

    @property
    def state_size(self) -> int:
        """Width of the h and c the step passes on: the members' side by side."""
        return sum(self.state_widths)

    def encode(self, grid: torch.Tensor, tags: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Backbone grid -> the members' features, keys, h0 and c0, each concatenated."""
        grids = grid.split(self.grid_widths, dim=-1) if self.grid_widths else [grid] * len(self.decoders)
        outs = [decoder.encode(g, tags) for decoder, g in zip(self.decoders, grids)]
        return tuple(torch.cat(parts, dim=-1) for parts in zip(*outs))

    def step(
        self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
        feats: torch.Tensor, keys: torch.Tensor, tags: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One word for every member: log of the mean probability (B, V), h, c, mean attention."""
        parts = zip(self.decoders, h.split(self.state_widths, dim=-1), c.split(self.state_widths, dim=-1),
                    feats.split(self.feature_widths, dim=-1), keys.split(self.key_widths, dim=-1))
        outs = [decoder.step(token, h_i, c_i, f_i, k_i, tags) for decoder, h_i, c_i, f_i, k_i in parts]
        logps = torch.stack([out[0] for out in outs])
        logp = torch.logsumexp(logps, dim=0) - math.log(len(outs))
        alpha = torch.stack([out[3] for out in outs]).mean(dim=0)
        h_out, c_out = (torch.cat([out[i] for out in outs], dim=-1) for i in (1, 2))
        return logp, h_out, c_out, alpha


@torch.no_grad()
def _widths(tag_count: int, decoders: Sequence[CaptionDecoder]
            ) -> tuple[list[int], list[int], list[int]]:
    """Each member's feature, key and state widths, read off one encode of a blank grid (a
    decoder's h may be wider than cfg.hidden_size: Up-Down keeps two LSTMs' states in it)."""
    feats, keys, states = [], [], []
    for decoder in decoders:
        cfg = decoder.cfg
        grid = torch.zeros(1, cfg.grid_size, cfg.feature_dim)
        tags = torch.full((1, tag_count), 1.0 / tag_count) if tag_count else None
        f, k, h, _ = decoder.encode(grid, tags)[:4]
        feats.append(f.shape[-1])
        keys.append(k.shape[-1])
        states.append(h.shape[-1])
    return feats, keys, states


def member_mismatch(first: Member, other: Member) -> str | None:
    """Why `other` cannot be averaged with `first` (one line naming both), or None."""
    head = f"{other.name} cannot join an ensemble with {first.name}"
    a, b = first.vocab.words, other.vocab.words
    difference = vocabulary_difference(a, b)
    if difference:
        return f"{head}: {difference}"
    cfg_a, cfg_b = first.decoder.cfg, other.decoder.cfg
    if cfg_b.vocab_size != len(b) or cfg_a.vocab_size != len(a):
        return f"{head}: a decoder writes another number of words than its vocabulary has"
    if (cfg_a.grid_size, cfg_a.feature_dim) != (cfg_b.grid_size, cfg_b.feature_dim):
        return (f"{head}: it reads another encoder's grid ({cfg_b.grid_size} cells x "
                f"{cfg_b.feature_dim}, not {cfg_a.grid_size} x {cfg_a.feature_dim})")
    if cfg_a.tag_count != cfg_b.tag_count:
        return f"{head}: it reads {cfg_b.tag_count} tag words, not {cfg_a.tag_count}"
    if cfg_a.tag_count:
        ids_a, ids_b = first.decoder.tag_ids.tolist(), other.decoder.tag_ids.tolist()
        for index, (x, y) in enumerate(zip(ids_a, ids_b)):
            if x != y:
                return (f"{head}: other tag words (tag {index} is {_word(b, y)!r}, "
                        f"not {_word(a, x)!r})")
    return None


def vocabulary_difference(expected: Sequence[str], found: Sequence[str]) -> str | None:
    """How vocabulary `found` differs from `expected` (the first place), or None if identical."""
    if list(expected) == list(found):
        return None
    if len(expected) != len(found):
        return f"its vocabulary has {len(found)} words, not {len(expected)}"
    index = next(i for i, (x, y) in enumerate(zip(expected, found)) if x != y)
    return f"another vocabulary (word {index} is {found[index]!r}, not {expected[index]!r})"


def _word(words: list[str], index: int) -> str:
    return words[index] if 0 <= index < len(words) else f"id {index}"
