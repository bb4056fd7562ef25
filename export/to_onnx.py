"""torch -> ONNX: the encoder graph (image -> everything the first step needs) and one step.

encoder.onnx:      image (B,3,S,S) -> features (B,N,E), keys (B,N,A), h0 (B,H), c0 (B,H)
                   [, tags (B,T): tag word probabilities from the backbone's ImageNet head]
decoder_step.onnx: token (B,), h, c, features, keys [, tags] -> log_probs (B,V), h, c, alpha (B,N)

The attention keys are computed once per image inside the encoder graph, so each decoding
step only adds the query. Every batch axis is dynamic so beams run as one batch.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from captioner.bundle import DECODER_IO, ENCODER_IO
from training.encoder_top import split_grids
from training.model import DecoderConfig
from training.tags import TagHead

OPSET = 17
# the names are defined once, in captioner.bundle; "tags" is the optional port of both graphs
ENCODER_OUTPUTS = [p.name for p in ENCODER_IO.outputs if p.required]
STEP_INPUTS = [p.name for p in DECODER_IO.inputs if p.required]
STEP_OUTPUTS = [p.name for p in DECODER_IO.outputs]
TAGS = "tags"


class ExportableDecoder(Protocol):
    """What the two graphs need of a decoder: a CaptionDecoder, or a DecoderEnsemble of several
    (training/ensemble.py). `cfg` gives the sizes of the graphs' ports: features (B, N,
    embed_dim), keys (B, N, attention_dim), h and c (B, hidden_size), tags (B, tag_count)."""

    cfg: DecoderConfig

    @property
    def state_size(self) -> int: ...  # h and c's width (Up-Down and ensembles: wider than hidden_size)

    def eval(self) -> Any: ...

    def encode(self, grid: torch.Tensor, tags: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]: ...

    def step(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor, feats: torch.Tensor,
             keys: torch.Tensor, tags: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]: ...


class EncoderGraph(nn.Module):
    def __init__(self, backbone: nn.Module, decoder: ExportableDecoder, tag_head: TagHead | None = None
                 ) -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.tag_head = tag_head

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        grid, tag_grid = (g.flatten(2).transpose(1, 2) for g in split_grids(self.backbone(image)))
        if self.tag_head is None:
            return self.decoder.encode(grid)
        tags = self.tag_head(tag_grid)
        return (*self.decoder.encode(grid, tags if self.decoder.cfg.tag_count else None), tags)


class StepGraph(nn.Module):
    def __init__(self, decoder: ExportableDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                feats: torch.Tensor, keys: torch.Tensor, tags: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, ...]:
        return self.decoder.step(token, h, c, feats, keys, tags)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), dynamo=False, opset_version=OPSET,
            input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
            do_constant_folding=True,
        )


def export_encoder(backbone: nn.Module, decoder: ExportableDecoder, image_size: int, path: Path,
                   tag_head: TagHead | None = None) -> None:
    outputs = ENCODER_OUTPUTS + ([TAGS] if tag_head is not None else [])
    dynamic = {name: {0: "batch"} for name in ["image", *outputs]}
    _export(EncoderGraph(backbone, decoder, tag_head), (torch.zeros(1, 3, image_size, image_size),),
            path, ["image"], outputs, dynamic)


def export_step(decoder: ExportableDecoder, path: Path) -> None:
    cfg = decoder.cfg
    b, n = 2, cfg.grid_size
    args: tuple[torch.Tensor, ...] = (
        torch.ones(b, dtype=torch.long),
        torch.zeros(b, decoder.state_size),
        torch.zeros(b, decoder.state_size),
        torch.zeros(b, n, cfg.embed_dim),
        torch.zeros(b, n, cfg.attention_dim),
    )
    inputs = STEP_INPUTS
    if cfg.tag_count:
        args = (*args, torch.full((b, cfg.tag_count), 1.0 / cfg.tag_count))
        inputs = STEP_INPUTS + [TAGS]
    dynamic = {name: {0: "batch"} for name in inputs + STEP_OUTPUTS}
    _export(StepGraph(decoder), args, path, inputs, STEP_OUTPUTS, dynamic)
