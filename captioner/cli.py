"""Command line: `captioner caption PATH...` prints `path<TAB>caption` for each image.

Errors go to stderr as one line per file, the batch goes on, and a summary closes the run.
Exit code: 0 all captioned, 1 some files failed, 2 nothing could run (bad bundle, bad usage).
Paths are printed on one line each whatever their name holds: control characters and bytes
that are not UTF-8 are shown as backslash escapes (--json keeps the exact names).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from captioner.captioner import Captioner, CaptionOptions, CaptionResult
from captioner.errors import CaptionerError
from captioner.files import find_images
from captioner.metadata import ExistingText, read_alt_text, write_alt_text
from captioner.writers import (
    CaptionRecord,
    Outcome,
    shared_sidecar_reason,
    sidecar_path,
    write_csv,
    write_json,
    write_sidecar,
)

DEFAULT_BUNDLE = Path(__file__).resolve().parent.parent / "models" / "default"


def default_bundle() -> Path:
    """$CAPTIONER_MODEL, else the bundle shipped in the checkout, else ./models/default."""
    if "CAPTIONER_MODEL" in os.environ:
        return Path(os.environ["CAPTIONER_MODEL"])
    if DEFAULT_BUNDLE.is_dir():
        return DEFAULT_BUNDLE
    return Path.cwd() / "models" / "default"


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=None,
                   help="model bundle folder (default: $CAPTIONER_MODEL or models/default)")
    p.add_argument("--beam", type=int, default=3, help="beam size (1 = greedy)")
    p.add_argument("--max-length", type=int, default=None, help="maximum words per caption")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--variant", default="auto",
                   help="graph variant: auto (fastest that keeps quality), fp32, int8")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captioner", description="Caption photos and videos offline.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("caption", help="caption image files and folders")
    p.add_argument("paths", nargs="+", type=Path, help="image files or folders")
    p.add_argument("-r", "--recursive", action="store_true", help="look into sub-folders")
    add_model_options(p)
    p.add_argument("--sidecar", action="store_true", help="write NAME.txt next to each image")
    p.add_argument("--json", type=Path, help="write all captions to one JSON file")
    p.add_argument("--csv", type=Path, help="write all captions to one CSV file")
    p.add_argument("--write-metadata", action="store_true",
                   help="write the caption into each photo as its alt text (IPTC alt text, XMP "
                        "description, EXIF ImageDescription); JPEG, PNG, WebP, TIFF")
    p.add_argument("--overwrite", action="store_true",
                   help="replace caption files that exist, and alt text already in photos")
    p.add_argument("--alternatives", action="store_true", help="print the n-best list too")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run_caption)
    register_extra_commands(sub)
    return parser


def register_extra_commands(sub: argparse._SubParsersAction) -> None:
    """Other commands (video) live in their own modules and add themselves here."""
    try:
        from captioner.video_cli import add_video_command
    except ImportError:
        return
    add_video_command(sub)


def shown(path: str | Path) -> str:
    """A path as one printable line: a control character (a newline in a name) or a byte that
    is not UTF-8 (which os.fsdecode turns into a lone surrogate) becomes a backslash escape."""
    out = []
    for ch in str(path):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def describe(exc: CaptionerError, path: Path | None = None) -> str:
    """`path: reason` for the project's errors, with the path made printable."""
    reason = getattr(exc, "reason", None)
    where = getattr(exc, "path", None) or path
    return f"{shown(where)}: {reason}" if reason is not None and where is not None else str(exc)


def video_files(paths: Sequence[Path]) -> set[Path]:
    """Paths named like videos: `caption` says to use `captioner video` for them."""
    try:
        from captioner.video import is_video_path
    except ImportError:
        return set()
    return {p for p in paths if is_video_path(p)}


def load_captioner(args: argparse.Namespace) -> Captioner:
    return Captioner(args.model or default_bundle(), provider=args.provider, variant=args.variant)


class Progress:
    """`[n/N] rate img/s` on stderr, redrawn in place, only for batches worth watching and
    only on a terminal (a log file gets the one-line errors and the summary, no redraws)."""

    shown: Progress | None = None  # the bar on screen, if any: `message` clears it first

    def __init__(self, total: int, enabled: bool) -> None:
        enabled = enabled and total > 1 and sys.stderr.isatty()
        self.total, self.enabled, self.start, self.done = total, enabled, time.time(), 0

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            rate = self.done / max(time.time() - self.start, 1e-9)
            print(f"\r[{self.done}/{self.total}] {rate:.1f} img/s", end="", file=sys.stderr, flush=True)
            Progress.shown = self

    def clear(self) -> None:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
        Progress.shown = None

    def close(self) -> None:
        if self.enabled and self.done:
            print(file=sys.stderr)
        Progress.shown = None


def message(text: str) -> None:
    """One line on stderr (an error, a warning), on a line of its own even under the bar."""
    if Progress.shown is not None:
        Progress.shown.clear()
    print(text, file=sys.stderr)


def run_caption(args: argparse.Namespace) -> int:
    found = find_images(args.paths, recursive=args.recursive)
    failures = [(p, reason) for p, reason in found.problems]
    videos = video_files(found.images)
    failures += [(p, "a video file: caption it with `captioner video`") for p in found.images if p in videos]
    for path, reason in failures:
        print(f"error: {shown(path)}: {reason}", file=sys.stderr)
    images = [p for p in found.images if p not in videos]
    captioner = load_captioner(args)
    options = CaptionOptions(beam_size=args.beam, max_length=args.max_length)
    records: list[CaptionRecord] = []
    skipped: list[Path] = []
    alt_text = AltTextReport()
    claimed: dict[Path, Path] = {}  # sidecar -> the image whose caption it got in this run
    progress = Progress(len(images), not args.quiet)
    for path, result in captioner.caption_files(images, options, args.batch_size):
        progress.update()
        if isinstance(result, CaptionerError):
            failures.append((path, getattr(result, "reason", str(result))))
            message(f"error: {describe(result, path)}")
            continue
        records.append(emit(path, result, args.alternatives))
        if args.sidecar:
            target = sidecar_path(path)
            if target in claimed:  # photo.jpg and photo.png share photo.txt: the first keeps it
                reason = shared_sidecar_reason(path, claimed[target])
                failures.append((path, reason))
                message(f"error: {shown(path)}: {reason}")
                continue
            claimed[target] = path
            write_one(partial(write_sidecar, path, result.text, args.overwrite), path, skipped, failures)
        if args.write_metadata:
            alt_text.write(path, result.text, args.overwrite, failures)
    progress.close()
    if args.write_metadata:
        alt_text.report()
    for target, writer in ((args.json, write_json), (args.csv, write_csv)):
        if target:
            write_one(partial(writer, target, records, args.overwrite), target, skipped, failures)
    summarise(len(records), skipped, failures)
    return 1 if failures else 0


def emit(path: Path, result: CaptionResult, alternatives: bool) -> CaptionRecord:
    print(f"{shown(path)}\t{result.text}", flush=True)
    if alternatives:
        for text, score in result.alternatives:
            print(f"\t{score:8.3f}  {text}")
    return CaptionRecord(path, result.text, result.score, result.alternatives)


def write_one(write: Callable[[], Outcome], target: Path, skipped: list[Path],
              failures: list[tuple[Path, str]]) -> None:
    try:
        if write() is Outcome.SKIPPED_EXISTS:
            skipped.append(target)
    except CaptionerError as exc:
        failures.append((target, getattr(exc, "reason", str(exc))))
        message(f"error: {describe(exc, target)}")


class AltTextReport:
    """--write-metadata: write each caption into its photo; tell what was kept or warned about."""

    def __init__(self) -> None:
        self.written = 0
        self.kept: list[tuple[Path, ExistingText | None]] = []
        self.warnings: list[tuple[Path, str]] = []

    def write(self, path: Path, text: str, overwrite: bool, failures: list[tuple[Path, str]]) -> None:
        warnings: list[str] = []
        try:
            outcome = write_alt_text(path, text, overwrite, warnings)
        except CaptionerError as exc:
            failures.append((path, getattr(exc, "reason", str(exc))))
            message(f"error: {describe(exc, path)}")
            return
        except Exception as exc:  # the metadata library failing on one file must not end the batch
            detail = " ".join(str(exc).split())[:160]
            reason = f"alt text not written ({type(exc).__name__}: {detail})"
            failures.append((path, reason))
            message(f"error: {shown(path)}: {reason}")
            return
        self.warnings += [(path, w) for w in warnings]
        if outcome is Outcome.SKIPPED_EXISTS:
            try:
                existing = read_alt_text(path)
            except Exception:  # only shown to say what was kept
                existing = None
            self.kept.append((path, existing))
        else:
            self.written += 1

    def report(self) -> None:
        for path, warning in self.warnings:
            print(f"warning: {shown(path)}: {warning}", file=sys.stderr)
        for path, existing in self.kept:
            held = f'{existing.label}: "{existing.text}"' if existing else "existing alt text"
            print(f"kept existing alt text: {shown(path)}: {held} (use --overwrite to replace it)",
                  file=sys.stderr)
        print(f"alt text: {self.written} written, {len(self.kept)} kept", file=sys.stderr)


def summarise(captioned: int, skipped: Sequence[Path], failures: Sequence[tuple[Path, str]]) -> None:
    for path in skipped:
        print(f"skipped: {shown(path)} exists (use --overwrite to replace it)", file=sys.stderr)
    print(f"{captioned} captioned, {len(skipped)} skipped, {len(failures)} failed", file=sys.stderr)


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
    except BrokenPipeError:  # `captioner caption ... | head`: the reader left; stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
