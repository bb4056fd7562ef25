"""`captioner video FILE...`: caption the scenes of videos into SRT, WebVTT, CSV or JSON.

Segments are printed to stdout as `file<TAB>start<TAB>end<TAB>caption` as they are settled,
a progress bar is drawn on stderr (when it is a terminal, or with --progress), and a summary
closes the run. Exit code: 0 all done, 1 some videos failed or stopped early, 2 bad usage
or no model.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from captioner.captioner import Captioner, CaptionOptions
from captioner.cli import add_model_options, load_captioner
from captioner.errors import CaptionerError, WriteError
from captioner.segments import Segment, VideoCaptioning, VideoJob
from captioner.subtitles import FORMATS, VideoDocument, write_segments
from captioner.video import SamplingOptions, timecode
from captioner.writers import Outcome

DEFAULT_EVERY = 10.0  # with neither --every nor --scenes: scenes, split every 10 s


def add_video_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="caption the scenes of video files",
                       description="Caption videos: a frame every N seconds, one per scene, or both.")
    p.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="video files")
    p.add_argument("--every", type=float, default=None, metavar="SECONDS",
                   help="a frame every N seconds (with --scenes: inside scenes longer than N)")
    p.add_argument("--scenes", action="store_true", help="one segment per scene (cut detection)")
    p.add_argument("--format", dest="formats", action="append", default=None, metavar="FMT",
                   help="srt, vtt, csv, json or all; repeat or comma-separate (default: srt)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="folder for the outputs (default: next to each video)")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    p.add_argument("--thumbnails", action="store_true",
                   help="save a JPEG per segment in NAME_thumbs/ and list it in CSV/JSON")
    p.add_argument("--threshold", type=float, default=10.0,
                   help="scene cut threshold, ffmpeg scdet score 0-100 (default 10)")
    p.add_argument("--min-scene", type=float, default=0.5, help="shortest scene in seconds")
    p.add_argument("--no-merge", action="store_true",
                   help="keep adjacent segments with the same caption apart")
    p.add_argument("--batch-size", type=int, default=8, help="frames captioned per batch")
    p.add_argument("--progress", action="store_true", help="draw the progress bar even if not a tty")
    p.add_argument("--quiet", action="store_true", help="no progress and no segment lines")
    add_model_options(p)
    p.set_defaults(func=run_video)


def parse_formats(values: list[str] | None) -> list[str]:
    """['srt,vtt', 'json'] -> ['srt', 'vtt', 'json']; 'all' is the four."""
    chosen: list[str] = []
    for value in values or ["srt"]:
        for name in value.lower().replace(" ", "").split(","):
            names = list(FORMATS) if name == "all" else [name]
            for fmt in names:
                if fmt not in FORMATS:
                    raise CaptionerError(f"unknown format {fmt!r}; choose {', '.join(FORMATS)} or all")
                if fmt not in chosen:
                    chosen.append(fmt)
    return chosen


def sampling_from(args: argparse.Namespace) -> SamplingOptions:
    every, scenes = args.every, args.scenes
    if every is None and not scenes:
        every, scenes = DEFAULT_EVERY, True
    try:
        return SamplingOptions(every=every, scenes=scenes, threshold=args.threshold,
                               min_scene=args.min_scene)
    except ValueError as exc:
        raise CaptionerError(str(exc)) from None


class ProgressBar:
    """`name [#####.....] 42% 7.4/17.6 s 3.1x` on stderr, redrawn at most ten times a second."""

    WIDTH = 24

    def __init__(self, name: str, enabled: bool) -> None:
        self.name, self.enabled = name, enabled
        self.start = time.monotonic()
        self.drawn = 0.0

    def __call__(self, position: float, duration: float | None) -> None:
        now = time.monotonic()
        finished = duration is not None and position >= duration
        if not self.enabled or (now - self.drawn < 0.1 and not finished):
            return
        self.drawn = now
        speed = position / max(now - self.start, 1e-6)
        if duration:
            share = min(1.0, position / duration)
            bar = "#" * int(share * self.WIDTH) + "." * (self.WIDTH - int(share * self.WIDTH))
            text = f"{self.name} [{bar}] {share:4.0%} {position:.1f}/{duration:.1f} s {speed:.1f}x"
        else:
            text = f"{self.name} {position:.1f} s {speed:.1f}x"
        print(f"\r{text[:100]:<100}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(f"\r{'':<100}\r", end="", file=sys.stderr, flush=True)


@dataclass
class Tally:
    videos: int = 0
    segments: int = 0
    seconds: float = 0.0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    incomplete: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def outputs_for(video: Path, formats: list[str], out_dir: Path | None) -> dict[str, Path]:
    folder = out_dir if out_dir is not None else video.parent
    return {fmt: folder / f"{video.stem}.{fmt}" for fmt in formats}


def run_video(args: argparse.Namespace) -> int:
    formats = parse_formats(args.formats)
    sampling = sampling_from(args)
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    captioner = load_captioner(args)
    job = VideoJob(sampling, CaptionOptions(beam_size=args.beam, max_length=args.max_length),
                   batch_size=max(1, args.batch_size), merge=not args.no_merge,
                   thumbnails=args.thumbnails)
    tally = Tally()
    started = time.monotonic()
    show_bar = not args.quiet and (args.progress or sys.stderr.isatty())
    for path in args.paths:
        targets = outputs_for(path, formats, args.out_dir)
        if not args.overwrite and all(t.exists() for t in targets.values()):
            tally.skipped.extend(targets.values())
            continue
        try:
            one_video(captioner, path, job, targets, args, show_bar, tally)
        except CaptionerError as exc:
            tally.failed.append((path, getattr(exc, "reason", str(exc))))
            print(f"error: {exc}", file=sys.stderr)
    summarise(tally, time.monotonic() - started)
    return 1 if tally.failed or tally.incomplete else 0


def one_video(captioner: Captioner, path: Path, job: VideoJob, targets: dict[str, Path],
              args: argparse.Namespace, show_bar: bool, tally: Tally) -> None:
    bar = ProgressBar(path.name, show_bar)
    t0 = time.monotonic()
    with VideoCaptioning(captioner, path, job) as run:
        segments: list[Segment] = []
        try:
            for seg in run.segments(bar):
                segments.append(seg)
                if not args.quiet:
                    print(f"{path}\t{timecode(seg.start)}\t{timecode(seg.end)}\t{seg.caption}", flush=True)
        finally:
            bar.close()
        status, info = run.reader.status, run.info
    elapsed = time.monotonic() - t0
    thumbs = write_thumbnails(path, segments, args) if args.thumbnails else None
    doc = VideoDocument(str(path), info.duration, status.stopped, thumbs)
    written = write_all(targets, segments, doc, args.overwrite, tally)
    tally.videos += 1
    tally.segments += len(segments)
    tally.seconds += status.position
    if status.stopped:
        tally.incomplete.append((path, status.stopped))
        print(f"warning: {path}: {status.stopped}; captioned what decoded", file=sys.stderr)
    rtf = status.position / max(elapsed, 1e-6)
    names = ", ".join(p.name for p in written) or "nothing written"
    print(f"{path.name}: {len(segments)} segments, {len(status.cuts)} cuts, {status.position:.1f} s "
          f"of video in {elapsed:.1f} s ({rtf:.1f}x real time) -> {names}", file=sys.stderr)


def write_thumbnails(video: Path, segments: list[Segment], args: argparse.Namespace
                     ) -> list[str | None]:
    """NAME_thumbs/0001.jpg ...; paths are stored relative to the output folder."""
    folder = (args.out_dir or video.parent) / f"{video.stem}_thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str | None] = []
    for i, seg in enumerate(segments, 1):
        target = folder / f"{i:04d}.jpg"
        if seg.thumbnail is None or (target.exists() and not args.overwrite):
            names.append(f"{folder.name}/{target.name}" if target.exists() else None)
            continue
        write_bytes_atomic(target, seg.thumbnail)
        names.append(f"{folder.name}/{target.name}")
    return names


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Like atomic_write_text, for JPEG bytes: a temp name in the folder, then os.replace."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(path, f"write failed: {exc.strerror or exc}") from None


def write_all(targets: dict[str, Path], segments: list[Segment], doc: VideoDocument,
              overwrite: bool, tally: Tally) -> list[Path]:
    written = []
    for fmt, target in targets.items():
        try:
            outcome = write_segments(target, fmt, segments, doc, overwrite)
        except CaptionerError as exc:
            tally.failed.append((target, getattr(exc, "reason", str(exc))))
            print(f"error: {exc}", file=sys.stderr)
            continue
        if outcome is Outcome.SKIPPED_EXISTS:
            tally.skipped.append(target)
        else:
            written.append(target)
            tally.written.append(target)
    return written


def summarise(tally: Tally, elapsed: float) -> None:
    for path in tally.skipped:
        print(f"skipped: {path} exists (use --overwrite to replace it)", file=sys.stderr)
    rtf = tally.seconds / max(elapsed, 1e-6)
    print(f"{tally.videos} videos, {tally.segments} segments, {tally.seconds:.1f} s of video in "
          f"{elapsed:.1f} s ({rtf:.1f}x real time); {len(tally.written)} files written, "
          f"{len(tally.skipped)} skipped, {len(tally.incomplete)} incomplete, "
          f"{len(tally.failed)} failed", file=sys.stderr)

