"""Command line: `captioner caption ...` (caption.py) and `captioner video ...` (video.py).

`parser` builds the argument parser, `options` holds what the commands share (bounded numbers,
the model), `output` everything shown (escaping, progress, summary), `targets` the checks that
keep outputs away from inputs. `main` is the console script's entry point.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from captioner.cli.options import default_bundle
from captioner.cli.output import shown
from captioner.cli.parser import build_parser
from captioner.errors import CaptionerError

__all__ = ["build_parser", "default_bundle", "main", "shown"]


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a message must never fail on a character
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            pass
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CaptionerError as exc:
        print(f"error: {shown(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
