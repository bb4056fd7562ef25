"""Add the "best quality" variant to an existing bundle: an ensemble of decoders (docs/quality.md).

    python -m export.ensemble BUNDLE --checkpoints FIRST.pt SECOND.pt [...] \\
        --calibration-images DIR_OR_FILES... [--max-images 200]
    python -m export.ensemble models/default \\
        --checkpoints runs/everyday/best.pt runs/soup/best.pt \\
        --calibration-images ../shared/data/flickr8k/Flickr_8k.trainImages.txt

The checkpoints' decoders are averaged at every step (training/ensemble.py). Each must have been
trained on the bundle's encoder with the bundle's vocabulary (word for word: vocab.json) and tag
words; the first is normally the one the bundle was made from. A checkpoint that tuned the
encoder's last blocks (`train.py --tune-blocks`) brings them: the quality encoder then runs the
trunk once and gives each decoder its own grid (training/encoder_top.TunedBackbone). The
ensemble's encoder graph (backbone + every decoder's head) and step graph are exported, checked
against PyTorch (export/parity.py), and quantized the way export/quantize.py quantizes the default pair
(static int8 CNN calibrated on the given photos, dynamic int8 step). Only that int8 pair ships,
as variant `quality` (encoder.quality.int8.onnx, decoder_step.quality.int8.onnx), with its
own hidden_size in the manifest; the default variant stays what it was, and "auto" never
picks `quality` (captioner/bundle.py). The work is done in a copy of the bundle that replaces
it only when everything passed, so a failed export changes nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from captioner.bundle import QUALITY, Bundle, Variant, load_bundle, write_manifest
from captioner.errors import CaptionerError
from export.bundle_writer import parity_batch, tag_head_for
from export.parity import TOLERANCE, check_parity, scaled_difference
from export.quantize import (
    QuantizeConfig,
    add_quantize_options,
    agreement,
    calibration_batches,
    evenly,
    expand_image_paths,
    quantization_record,
    quantize_decoder,
    quantize_encoder,
)
from export.to_onnx import export_encoder, export_step
from training.checkpoint import load_checkpoint
from training.encoder_top import TunedTopState, tuned_backbone
from training.encoders import get_encoder
from training.ensemble import DecoderEnsemble, Member, vocabulary_difference
from training.tags import load_tag_table

ENCODER, DECODER = "encoder.quality.onnx", "decoder_step.quality.onnx"  # fp32: checked, not shipped
ENCODER_INT8, DECODER_INT8 = "encoder.quality.int8.onnx", "decoder_step.quality.int8.onnx"


@dataclass(frozen=True)
class EnsembleJob:
    checkpoints: tuple[Path, ...]
    calibration_images: tuple[Path, ...]  # training photos (never the test split)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    check_images: int = 16  # photos captioned by quality and fp32 at the end (0: none)


def load_members(checkpoints: Sequence[Path], bundle: Bundle
                 ) -> tuple[list[Member], list[TunedTopState | None]]:
    """The checkpoints' decoders, and each one's tuned last encoder blocks (None: it read the
    frozen grid); ValueError naming the first that does not fit the bundle."""
    members: list[Member] = []
    tuned: list[TunedTopState | None] = []
    for path in checkpoints:
        decoder, vocab, ckpt = load_checkpoint(path)
        difference = vocabulary_difference(bundle.vocab.words, vocab.words)
        if difference:
            raise ValueError(f"{path} does not fit {bundle.path}: {difference} in its vocab.json")
        if ckpt.get("encoder") != bundle.manifest.encoder_name:
            raise ValueError(f"{path} was trained on {ckpt.get('encoder')}'s grid, but the bundle's "
                             f"encoder is {bundle.manifest.encoder_name}")
        members.append(Member(decoder, vocab, str(path)))
        tuned.append((ckpt["encoder_top"], ckpt["tune_blocks"]) if ckpt.get("tune_blocks") else None)
    return members, tuned


def add_quality_variant(bundle_dir: Path, job: EnsembleJob) -> Bundle:
    """Export, check and quantize the ensemble, and add it to the bundle as variant `quality`.
    Returns the bundle as reloaded; raises ValueError/RuntimeError and leaves it as it was."""
    bundle = load_bundle(bundle_dir)  # every checksum checked before anything is written
    manifest = bundle.manifest
    members, tuned = load_members(job.checkpoints, bundle)
    own_grids = any(entry is not None for entry in tuned)  # then each member reads its own grid
    ensemble = DecoderEnsemble(members, own_grids).eval()
    info = get_encoder(manifest.encoder_name)
    tag_head = tag_head_for(info.name, ensemble)
    if tag_head is not None and tuple(load_tag_table().words) != bundle.tag_words:
        raise ValueError(f"{bundle_dir}'s tags.json is not training/tags' table: the ensemble's "
                         "encoder graph would label its tags otherwise")
    photos = expand_image_paths(job.calibration_images)
    batches = calibration_batches(photos, manifest.input_spec, job.quantize)  # before any export
    staging = bundle_dir.with_name(bundle_dir.name + f".{QUALITY}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(bundle_dir, staging)
    try:
        backbone = tuned_backbone(info, tuned) if own_grids else info.build().eval()
        export_encoder(backbone, ensemble, manifest.input_spec.size, staging / ENCODER, tag_head)
        export_step(ensemble, staging / DECODER)
        manifest.variants[QUALITY] = Variant(QUALITY, ENCODER, DECODER, ensemble.state_size)
        write_manifest(staging, manifest)
        batch = parity_batch(evenly(photos, 4), manifest.input_spec.size, manifest.input_spec)
        report = check_parity(backbone, ensemble, staging, batch, variant=QUALITY, tag_head=tag_head)
        print(report.summary(), file=sys.stderr)
        if not report.ok:
            raise RuntimeError(f"export refused: {report.summary()}")
        _check_first_is_the_bundles(staging, batch, job.checkpoints[0])
        quantize_encoder(staging / ENCODER, staging / ENCODER_INT8, batches, job.quantize)
        quantize_decoder(staging / DECODER, staging / DECODER_INT8, job.quantize)
        for name in (ENCODER, DECODER):  # the fp32 pair would double the bundle's size
            (staging / name).unlink()
        manifest.variants[QUALITY] = Variant(QUALITY, ENCODER_INT8, DECODER_INT8, ensemble.state_size)
        manifest.training = {**manifest.training, QUALITY: {
            "checkpoints": [str(p) for p in job.checkpoints], "decoders": len(job.checkpoints),
            "parity": report.summary(), "quantization": quantization_record(job.quantize, batches),
        }}
        write_manifest(staging, manifest)
        load_bundle(staging)  # every file against its new checksum
        if job.check_images and "fp32" in manifest.variants:
            for row in agreement(staging, evenly(photos, job.check_images), [QUALITY]):
                print(f"{QUALITY}: same captions as fp32 on {row.same_captions:.0%} of "
                      f"{job.check_images} photos", file=sys.stderr)
        _swap_in(staging, bundle_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_bundle(bundle_dir)


def _check_first_is_the_bundles(staging: Path, batch: np.ndarray, first: Path) -> None:
    """The first decoder's features (the ensemble's first columns) must be the bundle's own: the
    confidence calibration was fitted on them (captioner/confidence.py reads those columns)."""
    from captioner.captioner import Captioner

    if "fp32" not in load_bundle(staging).manifest.variants:
        print("no fp32 variant: the first checkpoint is not compared with the bundle's decoder",
              file=sys.stderr)
        return
    own = Captioner(staging, provider="cpu", variant="fp32").encoder.run(None, {"image": batch})[0]
    ours = Captioner(staging, provider="cpu", variant=QUALITY).encoder.run(None, {"image": batch})[0]
    difference = scaled_difference(ours[..., : own.shape[-1]], own)  # as parity measures it
    if difference > TOLERANCE:
        raise ValueError(f"{first} is not the decoder the bundle was made from (its features differ "
                         f"by {difference:.2g}): put the bundle's own checkpoint first")


def _swap_in(staging: Path, target: Path) -> None:
    """Put the finished copy where the bundle is: two renames, the old one put back if the
    second fails, and only then removed."""
    old = target.with_name(target.name + f".{QUALITY}.old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("bundle", type=Path, help="an existing bundle (it gets the variant)")
    parser.add_argument("--checkpoints", type=Path, nargs="+", required=True,
                        help="two or more training checkpoints with the bundle's vocabulary, "
                             "the bundle's own first")
    add_quantize_options(parser, 16, "photos to caption with the new variant and fp32 at the end (0: skip)")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        parser.error("--checkpoints: an ensemble needs two or more")
    job = EnsembleJob(tuple(args.checkpoints), tuple(args.calibration_images),
                      QuantizeConfig(max_images=args.max_images, method=args.method), args.check_images)
    try:
        bundle = add_quality_variant(args.bundle, job)
    except (ValueError, RuntimeError, FileNotFoundError, CaptionerError) as exc:
        print(f"export.ensemble: {exc}", file=sys.stderr)
        sys.exit(1)
    manifest = bundle.manifest
    print(f"{args.bundle}: added variant {QUALITY} ({len(job.checkpoints)} decoders, int8); "
          f"default variant still {manifest.default_variant}")


if __name__ == "__main__":
    main()
