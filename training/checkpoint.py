"""A training checkpoint back as a decoder and its vocabulary (for export, benches, experiments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from captioner.vocab import Vocabulary
from training.model import CaptionDecoder, DecoderConfig, build_decoder


def load_checkpoint(path: Path) -> tuple[CaptionDecoder, Vocabulary, dict[str, Any]]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    decoder = build_decoder(DecoderConfig(**ckpt["decoder_config"]))
    decoder.load_state_dict(ckpt["model"])
    return decoder.eval(), Vocabulary(ckpt["vocab"]), ckpt
