"""Experiment (not shipped): average the weights of checkpoints of one run (a "model soup").

    python -m training.experiments.soup runs/everyday/best.pt runs/scst/best.pt --out runs/soup/best.pt

Checkpoints along one trajectory (cross-entropy, then SCST from it) lie in one basin, so their
mean is a model of its own; the result is a checkpoint that `export.bundle_writer` takes as it
takes any. Results in docs/results.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def average(paths: list[Path]) -> dict:
    """The first checkpoint with its floating-point weights replaced by the mean of all."""
    ckpts = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    soup = dict(ckpts[0])
    soup.pop("optimizer", None)  # no optimiser state fits the mean
    first = ckpts[0]["model"]
    soup["model"] = {
        name: torch.stack([c["model"][name].float() for c in ckpts]).mean(0).to(value.dtype)
        if value.is_floating_point() else value
        for name, value in first.items()}
    soup["soup_of"] = [str(p) for p in paths]
    return soup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(average(args.checkpoints), args.out)


if __name__ == "__main__":
    main()
