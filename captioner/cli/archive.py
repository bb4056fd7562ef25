"""Large runs: which photos a `captioner caption` run takes, in order, and which it need not
touch at all.

Photos come from the command line, then from --files-from as the list arrives; each is taken
once (by its path as given), only if --shard holds it, and videos are reported. A photo whose
outputs all exist already (its sidecar, its line in the --jsonl file) is skipped before it is
read, decoded or encoded, so a rerun over a finished folder costs a `stat` a photo. That holds
only when every output of the run is one a photo can be skipped for: --json and --csv need
every caption, --write-metadata looks inside the photo, and --overwrite redoes everything.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from captioner.cli.jsonl import STDOUT, JsonlOutput, path_key
from captioner.cli.listing import parse_shard, read_list
from captioner.cli.mirror import make_folder_inside, mirrored_sidecar
from captioner.cli.options import whole_number
from captioner.cli.output import Tally
from captioner.cli.targets import Inputs, prepare_out_dir, same_file
from captioner.errors import CaptionerError
from captioner.files import find_images
from captioner.video import is_video_path
from captioner.writers import Outcome, atomic_write_text, sidecar_path


@dataclass
class Sources:
    """Where a run's photos come from and what it already knows of them."""

    named: list[Path]  # images found from the command-line paths
    listed: BinaryIO | None  # --files-from, read as it arrives
    inputs: Inputs  # every input so far, by identity (outputs are checked against it)
    outputs: Inputs  # --json, --csv, --jsonl: never captioned as inputs of their own run
    seen: set[str] = field(default_factory=set)


def photos(args: argparse.Namespace, sources: Sources, tally: Tally) -> Iterator[Path]:
    """Every photo of the run in order, once, in this shard; bad entries are reported."""
    for path in _all(args, sources, tally):
        if args.shard is not None and not args.shard.holds(path):
            continue
        if is_video_path(path):
            tally.fail(path, "a video file: caption it with `captioner video`")
        elif sources.outputs.holds(path):
            tally.fail(path, "is an output of this run (--json, --csv or --jsonl); not captioned")
        else:
            yield path


def _all(args: argparse.Namespace, sources: Sources, tally: Tally) -> Iterator[Path]:
    yield from sources.named
    if sources.listed is None:
        return
    sources.seen.update(path_key(p) for p in sources.named)
    for entry in read_list(sources.listed, args.null):
        found = find_images([entry], recursive=args.recursive)
        for path, reason in found.problems:
            tally.fail(path, reason)
        for path in found.images:
            key = path_key(path)
            if key not in sources.seen:
                sources.seen.add(key)
                sources.inputs.add(path)
                yield path


def sidecar_target(args: argparse.Namespace, image: Path) -> Path:
    """The caption file of a photo: beside it, or mirrored under --out-dir."""
    return sidecar_path(image) if args.out_dir is None else mirrored_sidecar(image, args.out_dir)


@dataclass
class Skipper:
    """Decides, from names alone, whether a photo's outputs all exist already."""

    args: argparse.Namespace
    jsonl: JsonlOutput | None
    inputs: Inputs
    tally: Tally
    in_jsonl: int = 0  # skipped because the JSONL has them (and no sidecar was asked for)

    @property
    def active(self) -> bool:
        a = self.args
        files = a.sidecar or (self.jsonl is not None and self.jsonl.fd is not None)
        return files and not (a.overwrite or a.json or a.csv or a.write_metadata)

    def todo(self, images: Iterable[Path]) -> Iterator[Path]:
        """The photos that still need captioning."""
        active = self.active
        for path in images:
            if not (active and self._done(path)):
                yield path

    def _done(self, path: Path) -> bool:
        if self.jsonl is not None and path_key(path) not in self.jsonl.done:
            return False
        if self.args.sidecar:
            target = sidecar_target(self.args, path)
            if not os.path.lexists(target) or self.inputs.holds(target):
                return False  # a caption file that is an input is reported by the writer
            self.tally.skipped.append(target)
        else:
            self.in_jsonl += 1
        return True


def add_archive_options(p: argparse.ArgumentParser) -> None:
    """The options of large runs (docs/scale.md)."""
    p.add_argument("--jsonl", metavar="PATH",
                   help="one JSON object per photo, written as each is done (- for stdout); a rerun "
                        "with the same file skips the photos already in it")
    p.add_argument("--files-from", metavar="PATH",
                   help="read photo paths from a file, one per line (- for stdin)")
    p.add_argument("--null", action="store_true", help="--files-from is NUL-separated (find -print0)")
    p.add_argument("--shard", type=parse_shard, metavar="I/N",
                   help="caption only shard I of N (0-based, by path hash): N runs cover each photo once")
    p.add_argument("--out-dir", type=Path, metavar="DIR",
                   help="with --sidecar: write caption files under DIR, mirroring the photos' folders")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="caption on a Ray cluster (pip install 'captioner[cluster]'); no ADDRESS: a "
                        "local one. Put it after the photos, or write --ray=ADDRESS")
    p.add_argument("--actors", type=whole_number(1, 4096), default=None,
                   help="with --ray: model copies working at once (default: one per CPU)")


def check_archive_options(args: argparse.Namespace) -> None:
    """Bad combinations end the run before any work (exit 2), in one line."""
    if not args.paths and not args.files_from:
        raise CaptionerError("give photos or folders to caption, or --files-from PATH")
    if args.null and not args.files_from:
        raise CaptionerError("--null describes the list of --files-from; give --files-from too")
    if args.out_dir is not None and not args.sidecar:
        raise CaptionerError("--out-dir says where caption files go: add --sidecar")
    if args.actors is not None and not args.ray:
        raise CaptionerError("--actors is for --ray")
    if args.ray and importlib.util.find_spec("ray") is None:
        raise CaptionerError("--ray needs Ray Data: pip install 'captioner[cluster]'")
    if args.jsonl and args.jsonl != STDOUT:
        for option, other in (("--json", args.json), ("--csv", args.csv)):
            if other is not None and same_file(Path(args.jsonl), other):
                raise CaptionerError(f"--jsonl and {option} name the same file ({args.jsonl})")
    prepare_out_dir(args.out_dir)


def output_files(args: argparse.Namespace) -> Inputs:
    """The run's single output files, by identity (a listed photo may not be one of them)."""
    named = [p for p in (args.json, args.csv) if p is not None]
    if args.jsonl and args.jsonl != STDOUT:
        named.append(Path(args.jsonl))
    return Inputs(named)


def write_mirrored(target: Path, out_dir: Path, text: str, overwrite: bool) -> Outcome:
    """A caption file under --out-dir (its folders made there, never outside it)."""
    make_folder_inside(target, out_dir)
    written = atomic_write_text(target, text.strip() + "\n", overwrite=overwrite)
    return Outcome.WRITTEN if written else Outcome.SKIPPED_EXISTS
