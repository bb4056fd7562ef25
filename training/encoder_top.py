"""The last blocks of an EfficientNet-Lite backbone, split off so that they can be fine-tuned.

Fine-tuning the whole CNN is beyond a 2-core CPU, but its last stage runs on the 9x9 grid and
costs little: the activations that enter it are cached once per view (as the frozen features
are, by `training.features`), and the stage trains with the decoder on them. The exported
encoder then runs the shared trunk once and two tops: the tuned one feeds the decoder, the
frozen one the ImageNet tag head, so the tags stay the ones the tag table was reviewed on.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, cast

import torch
from torch import nn

from training.encoders import EncoderInfo


class LiteTrunk(nn.Module):
    """Stem and the first blocks: image (B,3,S,S) -> activations (B,C,gh,gw)."""

    def __init__(self, net: nn.Module, cut: int) -> None:
        super().__init__()
        lite = cast(Any, net)
        self.conv_stem, self.bn0 = lite._conv_stem, lite._bn0
        self.blocks = nn.ModuleList(list(lite._blocks)[:cut])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(self.bn0(self.conv_stem(image)), 0.0, 6.0)  # ReLU6, as Lite's stem
        for block in self.blocks:
            x = block(x)
        return x


class LiteTop(nn.Module):
    """The last blocks and the 1,280-channel head conv: (B,C,gh,gw) -> (B,1280,gh,gw).

    Batch norm keeps ImageNet's statistics (eval mode always): batches of 64 photos of one
    dataset would drift them, and there is no dropout or drop-connect to switch on.
    """

    def __init__(self, net: nn.Module, cut: int) -> None:
        super().__init__()
        lite = cast(Any, net)
        self.blocks = nn.ModuleList(list(lite._blocks)[cut:])
        self.conv_head, self.bn1 = lite._conv_head, lite._bn1
        super().train(False)

    def train(self, mode: bool = True) -> LiteTop:
        return self  # always in eval mode: see the class docstring

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.through_blocks(x)[-1])

    def through_blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input and the activation after each block (a top that tunes fewer blocks starts
        from one of them)."""
        acts = [x]
        for block in self.blocks:
            acts.append(block(acts[-1]))
        return acts

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.bn1(self.conv_head(x)), 0.0, 6.0)


class TokenTop(nn.Module):
    """A top over cached grids stored as tokens: (B,N,C) -> (B,N,1280), N = gh * gw."""

    def __init__(self, top: LiteTop, grid: tuple[int, int]) -> None:
        super().__init__()
        self.top, self.grid = top, grid

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n, c = tokens.shape
        x = tokens.transpose(1, 2).reshape(b, c, *self.grid)
        return self.top(x).flatten(2).transpose(1, 2)


def lite_net(info: EncoderInfo) -> nn.Module:
    """The whole pretrained Lite classifier (its blocks are what trunk and tops share)."""
    if info.classifier is None or not info.name.startswith("efficientnet_lite"):
        raise ValueError(f"fine-tuning the last blocks needs an EfficientNet-Lite encoder, not {info.name}")
    return info.classifier()


def _cut(net: nn.Module, tune_blocks: int) -> int:
    """Where the trunk ends: `tune_blocks` blocks before the last."""
    return len(cast(Any, net)._blocks) - tune_blocks


def trunk_info(info: EncoderInfo, tune_blocks: int) -> EncoderInfo:
    """The registry entry of the trunk that stops `tune_blocks` blocks early: what
    `training.features.cached_features` caches when the last blocks are trained."""
    net = lite_net(info)
    cut = _cut(net, tune_blocks)
    channels = cast(Any, net)._blocks[cut]._block_args.input_filters

    def build() -> nn.Module:
        return LiteTrunk(lite_net(info), cut).eval()

    return dataclasses.replace(info, name=f"{info.name}-trunk{cut}", feature_dim=channels, build=build)


def make_top(info: EncoderInfo, tune_blocks: int) -> TokenTop:
    """A trainable copy of the last `tune_blocks` blocks and the head, over cached tokens."""
    net = lite_net(info)
    return TokenTop(LiteTop(net, _cut(net, tune_blocks)), info.grid)


def split_grids(out: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """A backbone's output as (decoder grid, tag grid): one grid serves both unless the
    backbone's last blocks were tuned (`TunedBackbone`)."""
    return out if isinstance(out, tuple) else (out, out)


TunedTopState = tuple[dict[str, torch.Tensor], int]  # a tuned top's weights and its block count


class TunedBackbone(nn.Module):
    """image -> (the decoder's grid, the tags' grid): the trunk once, the frozen last blocks
    (for the tags, and for any decoder that reads the frozen grid) and each tuned top. With
    several decoders (an ensemble) their grids lie side by side along the channels; a top that
    tuned fewer blocks than the deepest one starts after the frozen blocks it left alone."""

    def __init__(self, trunk: LiteTrunk, frozen: LiteTop, tuned: list[TokenTop | None], blocks: int
                 ) -> None:
        super().__init__()
        self.trunk, self.frozen, self.blocks = trunk, frozen, blocks
        self.tuned = nn.ModuleList([top for top in tuned if top is not None])
        # how many frozen blocks each tuned top comes after (0 for the deepest)
        self.starts = [blocks - len(cast(TokenTop, top).top.blocks) for top in self.tuned]
        positions = iter(range(len(self.tuned)))
        self.order = [-1 if top is None else next(positions) for top in tuned]  # -1: frozen

    @property
    def only_top(self) -> TokenTop:
        """The tuned top of a one-decoder backbone (what a checkpoint or a bundle keeps)."""
        if self.order != [0]:
            raise ValueError("this backbone serves several decoders, not one tuned one")
        return cast(TokenTop, self.tuned[0])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acts = self.frozen.through_blocks(self.trunk(image))
        frozen = self.frozen.head(acts[-1])
        grids = [frozen if i < 0 else cast(TokenTop, self.tuned[i]).top(acts[self.starts[i]])
                 for i in self.order]
        return torch.cat(grids, dim=1) if len(grids) > 1 else grids[0], frozen


def tuned_backbone(info: EncoderInfo, members: list[TunedTopState | None]) -> TunedBackbone:
    """The exportable backbone of one checkpoint whose last blocks were fine-tuned, or of an
    ensemble of checkpoints (None: that one read the frozen grid; the tuned ones may have tuned
    different numbers of blocks: the trunk stops before the most)."""
    counts = [entry[1] for entry in members if entry is not None]
    if not counts or min(counts) < 1:
        raise ValueError("a tuned backbone needs a checkpoint that tuned at least one block")
    blocks = max(counts)
    net = lite_net(info)
    cut = _cut(net, blocks)
    tops: list[TokenTop | None] = []
    for entry in members:
        top = None
        if entry is not None:
            top = make_top(info, entry[1])
            top.load_state_dict(entry[0])
        tops.append(top)
    return TunedBackbone(LiteTrunk(net, cut), LiteTop(copy.deepcopy(net), cut), tops, blocks).eval()
