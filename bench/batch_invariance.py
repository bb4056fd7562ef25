"""Does a photo's caption depend on the photos it is batched with? Per variant of a bundle.

    python -m bench.batch_invariance models/default --folder ../shared/data/coco_ood/images

A user expects one photo to get one caption, whatever else is in the folder. Each variant
captions the same photos three ways through `Captioner.caption_files` (what the CLI and the app
do): one photo per batch, batches of `--batch`, and batches of `--batch` in reversed order;
it prints how many captions differ from the one-per-batch run. A dynamically quantized graph
(ORT's DynamicQuantizeLinear: one activation scale per tensor, i.e. per batch) can differ; a
float or statically quantized one should not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from captioner.bundle import load_bundle
from captioner.captioner import Captioner, CaptionOptions
from captioner.errors import CaptionerError
from captioner.images import is_image_path


def captions(cap: Captioner, photos: list[Path], batch: int) -> dict[Path, str]:
    options = CaptionOptions(beam_size=3)
    return {path: "" if isinstance(result, CaptionerError) else result.text
            for path, result in cap.caption_files(photos, options, batch_size=batch)}


def differing(a: dict[Path, str], b: dict[Path, str]) -> int:
    return sum(a[path] != b[path] for path in a)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--folder", type=Path, default=Path("../shared/data/coco_ood/images"))
    p.add_argument("--photos", type=int, default=161)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--variants", nargs="*", help="default: every variant of the bundle")
    args = p.parse_args()
    photos = sorted(path for path in args.folder.iterdir() if is_image_path(path))[: args.photos]
    variants = args.variants or list(load_bundle(args.bundle).manifest.variants)
    print(f"{len(photos)} photos of {args.folder}, beam 3; captions that differ from one photo per batch:")
    print(f"| variant | batches of {args.batch} | batches of {args.batch}, reversed order |")
    print("|---|---|---|")
    for variant in variants:
        cap = Captioner(args.bundle, provider="cpu", variant=variant)
        alone = captions(cap, photos, 1)
        batched = captions(cap, photos, args.batch)
        reversed_order = captions(cap, photos[::-1], args.batch)
        print(f"| {variant} | {differing(alone, batched)} | {differing(alone, reversed_order)} |",
              flush=True)


if __name__ == "__main__":
    main()
