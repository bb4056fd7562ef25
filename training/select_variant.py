"""Choose a bundle's default variant by measurement: the fastest one that keeps quality.

    python -m training.select_variant --bundle models/default --data ../shared/data/flickr8k

Every variant (fp32, int8, int8-decoder, ...) captions the whole test split through
`captioner/` exactly as users run it (files -> captions, beam 3, batches of 16 with the next
batch loading meanwhile). That one pass gives both its speed (images/second) and its quality
(BLEU-4, CIDEr). A variant keeps quality when its BLEU-4 is within --bleu-tolerance points
(default 0.5) and its CIDEr within --cider-tolerance points (default 2) of fp32; the fastest
such variant becomes `default_variant` (what "auto" picks on the CPU). fp32 stays the GPU's
choice unless this ran on a GPU. The figures are stored in the manifest under scores.variants.
The best-quality variant (`quality`, an ensemble of decoders: docs/quality.md) is scored and
timed with the others but never chosen: it runs only when a user asks for it.

Add the quantized graphs first with `python -m export.quantize BUNDLE --calibration-images ...`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from captioner.bundle import QUALITY, load_bundle, write_manifest
from captioner.captioner import Captioner, CaptionOptions
from captioner.errors import CaptionerError
from training.data import CaptionSet, load_splits
from training.metrics import coco_scores


@dataclass
class VariantScore:
    variant: str
    provider: str
    images: int
    images_per_s: float
    bleu4: float  # points (0-100)
    cider: float  # points (0-100+)
    keeps_quality: bool = True


def caption_split(captioner: Captioner, split: CaptionSet, beam: int, batch_size: int = 16
                  ) -> tuple[list[str], float]:
    """Captions of every image of the split and the wall time it took (files -> captions)."""
    start = time.perf_counter()
    texts = ["" if isinstance(r, CaptionerError) else r.text
             for _, r in captioner.caption_files(split.paths, CaptionOptions(beam_size=beam),
                                                 batch_size=batch_size)]
    return texts, time.perf_counter() - start


def score_variant(bundle_dir: Path, variant: str, split: CaptionSet, beam: int = 3,
                  provider: str = "cpu") -> tuple[VariantScore, list[str]]:
    captioner = Captioner(bundle_dir, provider=provider, variant=variant)
    size = captioner.input_size
    captioner.caption_arrays(np.zeros((2, 3, size, size), np.float32))  # warm-up, not timed
    texts, seconds = caption_split(captioner, split, beam)
    scores = coco_scores(split.captions, texts, meteor=False)
    return VariantScore(variant, captioner.provider, len(split), len(split) / seconds,
                        100 * scores["BLEU-4"], 100 * scores["CIDEr"]), texts


def choose(scores: list[VariantScore], bleu_tolerance: float = 0.5, cider_tolerance: float = 2.0,
           reference: str = "fp32") -> str:
    """Mark which variants keep quality against `reference`; return the fastest of those
    (never QUALITY, which is only run when asked for)."""
    ref = next(s for s in scores if s.variant == reference)
    for s in scores:
        s.keeps_quality = (s.bleu4 >= ref.bleu4 - bleu_tolerance
                           and s.cider >= ref.cider - cider_tolerance)
    candidates = [s for s in scores if s.keeps_quality and s.variant != QUALITY]
    return max(candidates, key=lambda s: s.images_per_s).variant


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--dataset", default="flickr8k", choices=["flickr8k", "coco", "sidecar"])
    parser.add_argument("--annotations", type=Path)
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--limit", type=int, default=0, help="first N images of the split (0: all)")
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--provider", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--variants", nargs="*", help="default: every variant of the bundle")
    parser.add_argument("--bleu-tolerance", type=float, default=0.5, help="BLEU-4 points")
    parser.add_argument("--cider-tolerance", type=float, default=2.0, help="CIDEr points")
    parser.add_argument("--dry-run", action="store_true", help="report only, leave the manifest")
    args = parser.parse_args(argv)

    bundle = load_bundle(args.bundle)
    split = load_splits(args.dataset, args.data, args.annotations)[args.split]
    if args.limit:
        split = CaptionSet(split.paths[: args.limit], split.captions[: args.limit])
    names = args.variants or list(bundle.manifest.variants)
    if "fp32" not in names:
        names.insert(0, "fp32")
    scores = []
    for name in names:
        score, _ = score_variant(args.bundle, name, split, args.beam, args.provider)
        scores.append(score)
        print(f"{name:13s} {score.images_per_s:7.1f} images/s   BLEU-4 {score.bleu4:5.2f}   "
              f"CIDEr {score.cider:6.2f}", flush=True)
    best = choose(scores, args.bleu_tolerance, args.cider_tolerance)
    for s in scores:
        note = " (only when asked for)" if s.variant == QUALITY else ""
        print(f"  {s.variant:13s} {'keeps quality' if s.keeps_quality else 'LOSES quality'}{note}")
    print(f"fastest variant that keeps quality on {args.provider}: {best}")
    if args.dry_run:
        return
    manifest = bundle.manifest
    if args.provider == "cpu":
        manifest.default_variant = best
        manifest.provider_variants = {"cuda": "fp32", **manifest.provider_variants}
    else:
        manifest.provider_variants = {**manifest.provider_variants, args.provider: best}
    manifest.scores = {**manifest.scores, "variants": {
        **manifest.scores.get("variants", {}),
        "split": args.split, "beam": args.beam, "images": len(split),
        "bleu_tolerance": args.bleu_tolerance, "cider_tolerance": args.cider_tolerance,
        args.provider: {s.variant: asdict(s) for s in scores},
    }}
    write_manifest(args.bundle, manifest)
    load_bundle(args.bundle)
    print(json.dumps({"default_variant": manifest.default_variant,
                      "provider_variants": manifest.provider_variants}))


if __name__ == "__main__":
    main()
