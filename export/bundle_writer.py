"""Write a model bundle from a training checkpoint: graphs, vocabulary, manifest, parity check.

    python -m export.bundle_writer CHECKPOINT --out models/NAME [--quantize] [--parity-images DIR]

The bundle is assembled in a temporary folder beside the target and moved into place only
after parity passed, so a failed export never leaves a half-written bundle.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from captioner.bundle import (
    TAGS,
    TUNED_TOP,
    Bundle,
    Manifest,
    TunedTop,
    Variant,
    write_manifest,
    write_tag_words,
)
from captioner.images import load_image, preprocess_batch
from captioner.vocab import Vocabulary
from export.parity import check_parity
from export.to_onnx import ExportableDecoder, export_encoder, export_step
from training.checkpoint import load_checkpoint
from training.encoder_top import TunedBackbone, tuned_backbone
from training.encoders import get_encoder
from training.model import CaptionDecoder
from training.tags import TagHead, build_tag_head, load_tag_table


@dataclass
class ExportConfig:
    name: str
    quantize: bool = False
    parity_images: list[Path] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)


def parity_batch(paths: list[Path], size: int, spec: Any) -> np.ndarray:
    if paths:
        return preprocess_batch([load_image(p) for p in paths[:4]], spec)
    rng = np.random.default_rng(0)  # no photos given: random images still exercise the graphs
    return rng.normal(size=(2, 3, size, size)).astype(np.float32)


def tag_head_for(encoder_name: str, decoder: ExportableDecoder) -> TagHead | None:
    """The ImageNet tag head the bundle's encoder graph carries (None: the encoder has none)."""
    if get_encoder(encoder_name).classifier is None:
        if decoder.cfg.tag_count:
            raise ValueError(f"the decoder reads tags but {encoder_name} has no classifier head")
        return None
    table = load_tag_table()
    if decoder.cfg.tag_count and decoder.cfg.tag_count != len(table.words):
        raise ValueError("the decoder was trained with another tag table than training/tags/")
    return build_tag_head(encoder_name, table)


def checkpoint_backbone(ckpt: dict[str, Any]) -> nn.Module:
    """The backbone a checkpoint was trained on: the registry's frozen one, or with its last
    blocks fine-tuned (`train.py --tune-blocks`) the trunk with a tuned and a frozen top."""
    info = get_encoder(ckpt["encoder"])
    if not ckpt.get("tune_blocks"):
        return info.build()
    return tuned_backbone(info, [(ckpt["encoder_top"], ckpt["tune_blocks"])])


def bundle_backbone(bundle: Bundle) -> nn.Module:
    """The backbone a bundle's encoder graph runs (for tools that train on its features): the
    registry's frozen one, or with the bundle's tuned last blocks read back from their .npz."""
    info = get_encoder(bundle.manifest.encoder_name)
    tuned = bundle.manifest.tuned_top
    if tuned is None:
        return info.build()
    with np.load(bundle.path / tuned.file, allow_pickle=False) as arrays:
        state = {name: torch.from_numpy(arrays[name]) for name in arrays.files}
    return tuned_backbone(info, [(state, tuned.blocks)])


def save_tuned_top(backbone: TunedBackbone, folder: Path) -> TunedTop:
    """The tuned blocks' weights as a plain .npz in the bundle (see captioner.bundle.TunedTop)."""
    state = {name: value.detach().numpy() for name, value in backbone.only_top.state_dict().items()}
    np.savez(folder / TUNED_TOP, **state)  # type: ignore[arg-type]
    return TunedTop(TUNED_TOP, backbone.blocks)


def write_bundle(decoder: CaptionDecoder, vocab: Vocabulary, encoder_name: str, max_length: int,
                 out: Path, cfg: ExportConfig, backbone: nn.Module | None = None) -> Path:
    """Export, check parity, and move the finished bundle to `out`. Returns `out`.
    `backbone`: the encoder's CNN when it is not the registry's frozen one (tuned blocks)."""
    info = get_encoder(encoder_name)
    backbone = backbone if backbone is not None else info.build()
    decoder = decoder.eval()
    tag_head = tag_head_for(encoder_name, decoder)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    export_encoder(backbone, decoder, info.input_spec.size, staging / "encoder.onnx", tag_head)
    export_step(decoder, staging / "decoder_step.onnx")
    vocab.save(staging / "vocab.json")
    tag_file = None
    if tag_head is not None:
        tag_file = TAGS
        write_tag_words(staging / TAGS, load_tag_table().words)
    variants = {"fp32": Variant("fp32", "encoder.onnx", "decoder_step.onnx")}
    manifest = Manifest(
        name=cfg.name, encoder_name=info.name, input_spec=info.input_spec, grid=info.grid,
        feature_dim=decoder.cfg.embed_dim, hidden_size=decoder.state_size,
        vocab_size=len(vocab), max_length=max_length, variants=variants,
        training=cfg.training, scores=cfg.scores, tags_file=tag_file,
        tuned_top=save_tuned_top(backbone, staging) if isinstance(backbone, TunedBackbone) else None,
    )
    write_manifest(staging, manifest)
    batch = parity_batch(cfg.parity_images, info.input_spec.size, info.input_spec)
    report = check_parity(backbone, decoder, staging, batch, tag_head=tag_head)
    print(report.summary(), file=sys.stderr)
    if not report.ok:
        raise RuntimeError(f"export refused: {report.summary()}")
    manifest.training = {**manifest.training, "parity": report.summary()}
    if cfg.quantize:
        from export.quantize import add_quantized_variants

        add_quantized_variants(staging, manifest, cfg.parity_images)
    write_manifest(staging, manifest)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--quantize", action="store_true")
    parser.add_argument("--parity-images", type=Path, nargs="*", default=[])
    parser.add_argument("--evaluate", type=Path, metavar="DATA", help="then score the bundle on "
                        "this dataset's test split (training.evaluate)")
    parser.add_argument("--dataset", default="flickr8k", choices=["flickr8k", "coco", "sidecar"])
    parser.add_argument("--annotations", type=Path)
    parser.add_argument("--eval-beams", type=int, nargs="*", default=[1, 3, 5])
    parser.add_argument("--workdir", type=Path, default=Path("runs/eval"))
    args = parser.parse_args(argv)
    decoder, vocab, ckpt = load_checkpoint(args.checkpoint)
    training = {**ckpt.get("training", {}), "history": ckpt.get("history", [])}
    cfg = ExportConfig(name=args.name or args.out.name, quantize=args.quantize,
                       parity_images=args.parity_images, training=training,
                       scores=ckpt.get("scores", {}))
    write_bundle(decoder, vocab, ckpt["encoder"], ckpt["max_length"], args.out, cfg,
                 checkpoint_backbone(ckpt))
    print(f"wrote {args.out}")
    if args.evaluate and args.eval_beams:
        from training.data import load_splits
        from training.evaluate import evaluate_bundle

        args.workdir.mkdir(parents=True, exist_ok=True)
        test = load_splits(args.dataset, args.evaluate, args.annotations)["test"]
        evaluate_bundle(args.out, test, args.eval_beams, args.workdir)


if __name__ == "__main__":
    main()
