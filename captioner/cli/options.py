"""Options every command shares: bounded numbers, the model, the provider, --version.

Numbers are bounded where they are parsed, so `--beam 100000` or `--batch-size 0` is one line
and exit code 2, never a run that eats the machine's memory or captions nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import NoReturn

from captioner.captioner import Captioner
from captioner.default_model import default_bundle
from captioner.errors import CaptionerError
from captioner.session import Provider, available_providers

MAX_BEAM, MAX_LENGTH, MAX_BATCH = 20, 100, 256
GPU_HINT = ("install onnxruntime-gpu in its place (the `gpu` extra): pip install 'captioner[gpu]', "
            "then pip uninstall -y onnxruntime and pip install --force-reinstall onnxruntime-gpu")


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line on stderr (`captioner caption: error: ...`) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from low to high."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: use {low} to {high}")
        return value
    return parse


def number(low: float, high: float, low_included: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number from low (or just above it) to high."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        above = value >= low if low_included else value > low
        if not (math.isfinite(value) and above and value <= high):
            side = "from" if low_included else "above"
            raise argparse.ArgumentTypeError(f"{text} is out of range: use {side} {low:g} to {high:g}")
        return value
    return parse


def version() -> str:
    try:
        return metadata.version("captioner")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def add_model_options(p: argparse.ArgumentParser, batch_default: int) -> None:
    p.add_argument("--model", type=Path, default=None,
                   help="model bundle folder (default: $CAPTIONER_MODEL or models/default)")
    p.add_argument("--beam", type=whole_number(1, MAX_BEAM), default=3,
                   help=f"beam size, 1 (greedy) to {MAX_BEAM}")
    p.add_argument("--max-length", type=whole_number(1, MAX_LENGTH), default=None,
                   help=f"maximum words per caption, 1 to {MAX_LENGTH} (default: the model's)")
    p.add_argument("--batch-size", type=whole_number(1, MAX_BATCH), default=batch_default,
                   help=f"images captioned together, 1 to {MAX_BATCH} (default {batch_default})")
    p.add_argument("--provider", default=Provider.AUTO.value, choices=[p.value for p in Provider],
                   help="where to run: cuda needs onnxruntime-gpu in place of onnxruntime")
    p.add_argument("--variant", default="auto",
                   help="graph variant: auto (fastest that keeps quality), fp32, int8, or quality "
                        "(best quality: an ensemble of decoders, about half the speed; only in "
                        "bundles built with it, see docs/quality.md)")


def chosen_provider(args: argparse.Namespace) -> Provider:
    """--provider as a Provider, or CaptionerError (exit 2) saying what to do when CUDA is asked
    for in vain."""
    provider = Provider(args.provider)
    if provider is Provider.CUDA and Provider.CUDA not in available_providers():
        raise CaptionerError(f"provider 'cuda' is not available in this onnxruntime build; {GPU_HINT}")
    return provider


def load_captioner(args: argparse.Namespace) -> Captioner:
    """The model, or CaptionerError (exit 2) as chosen_provider says."""
    return Captioner(args.model or default_bundle(), provider=chosen_provider(args), variant=args.variant)
