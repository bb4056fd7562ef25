"""The `captioner` command line: one subcommand per module (caption, video)."""

from __future__ import annotations

import argparse

from captioner.cli.caption import add_caption_command
from captioner.cli.options import OneLineParser, version
from captioner.cli.video import add_video_command


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="captioner", description="Caption photos and videos offline.")
    parser.add_argument("--version", action="version", version=f"captioner {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_caption_command(sub)
    add_video_command(sub)
    return parser
