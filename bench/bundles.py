"""Two bundles side by side, end to end: JPEG files -> captions, images/second, one run.

    python -m bench.bundles models/default /tmp/old_default --photos 200 --beam 3

Each bundle runs with its own default variant through `Captioner.caption_files` (what the CLI
and the app do), on the same Flickr8k test photos, in alternating rounds; the best round of
each counts (load elsewhere only ever adds time). Prints images/s and the ratio to the first.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path

from captioner.captioner import Captioner, CaptionOptions


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def one_round(cap: Captioner, photos: list[Path], options: CaptionOptions) -> float:
    start = time.perf_counter()
    for _ in cap.caption_files(photos, options):
        pass
    return len(photos) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("bundles", type=Path, nargs="+")
    p.add_argument("--data", type=Path, default=Path("../shared/data/flickr8k"))
    p.add_argument("--photos", type=int, default=200)
    p.add_argument("--beam", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    names = (args.data / "Flickr_8k.testImages.txt").read_text().split()[: args.photos]
    photos = [args.data / "images" / n for n in names]
    caps = [Captioner(b) for b in args.bundles]
    options = CaptionOptions(beam_size=args.beam)
    for cap in caps:  # warm-up
        one_round(cap, photos[:16], options)
    best = [0.0] * len(caps)
    for _ in range(args.rounds):
        for i, cap in enumerate(caps):
            best[i] = max(best[i], one_round(cap, photos, options))
    print(f"{cpu_name()}, {args.photos} photos, beam {args.beam}, best of {args.rounds} rounds")
    print("| bundle | variant | images/s | ratio |\n|---|---|---|---|")
    for cap, rate in zip(caps, best):
        print(f"| {cap.name} | {cap.variant} | {rate:.1f} | {rate / best[0]:.2f} |")


if __name__ == "__main__":
    main()
