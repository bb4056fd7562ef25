"""`captioner video FILE...`: caption the scenes of videos into SRT, WebVTT, CSV or JSON.

Segments are printed to stdout as `file<TAB>start<TAB>end<TAB>caption` (escaped) as they are
settled, a progress bar is drawn on stderr (when it is a terminal, or with --progress), and a
summary closes the run. Exit code: 0 all done, 1 some videos failed or stopped early, 2 bad
usage or no model. Distinct videos always get distinct outputs, no output is ever one of the
videos, and a video that decodes nothing leaves no files behind.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from captioner.captioner import Captioner, CaptionOptions
from captioner.cli.options import add_model_options, load_captioner, number
from captioner.cli.output import VIDEO_SECONDS, Progress, Tally, emit, message, shown, stderr_is_terminal
from captioner.cli.targets import Inputs, output_labels, prepare_out_dir
from captioner.cli.video_outputs import Outputs, write_outputs
from captioner.errors import CaptionerError
from captioner.files import regular_file_problem
from captioner.segments import Segment, VideoCaptioning, VideoJob
from captioner.subtitles import FORMATS
from captioner.video import SamplingOptions, timecode

DEFAULT_EVERY = 10.0  # with neither --every nor --scenes: scenes, split every 10 s
DAY = 86400.0


def add_video_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="caption the scenes of video files",
                       description="Caption videos: a frame every N seconds, one per scene, or both.")
    p.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="video files")
    p.add_argument("--every", type=number(0, DAY, low_included=False), default=None, metavar="SECONDS",
                   help="a frame every N seconds (with --scenes: inside scenes longer than N)")
    p.add_argument("--scenes", action="store_true", help="one segment per scene (cut detection)")
    p.add_argument("--format", dest="formats", action="append", default=None, metavar="FMT",
                   help="srt, vtt, csv, json or all; repeat or comma-separate (default: srt)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="folder for the outputs (default: next to each video)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that exist (never a video or a file this tool does not write)")
    p.add_argument("--thumbnails", action="store_true",
                   help="save a JPEG per segment in NAME_thumbs/ and list it in CSV/JSON")
    p.add_argument("--threshold", type=number(0, 100), default=10.0,
                   help="scene cut threshold, ffmpeg scdet score 0-100 (default 10)")
    p.add_argument("--min-scene", type=number(0, DAY), default=0.5, help="shortest scene in seconds")
    p.add_argument("--no-merge", action="store_true",
                   help="keep adjacent segments with the same caption apart")
    p.add_argument("--progress", action="store_true", help="draw the progress bar even if not a tty")
    p.add_argument("--quiet", action="store_true", help="no progress and no segment lines")
    add_model_options(p, batch_default=8)
    p.set_defaults(func=run_video)


def parse_formats(values: list[str] | None) -> list[str]:
    """['srt,vtt', 'json'] -> ['srt', 'vtt', 'json']; 'all' is the four."""
    chosen: list[str] = []
    for value in values or ["srt"]:
        for name in value.lower().replace(" ", "").split(","):
            for fmt in list(FORMATS) if name == "all" else [name]:
                if fmt not in FORMATS:
                    raise CaptionerError(f"unknown format {shown(fmt)!r}; choose {', '.join(FORMATS)} or all")
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


@dataclass
class VideoTally(Tally):
    videos: int = 0
    segments: int = 0
    seconds: float = 0.0
    written: int = 0


def run_video(args: argparse.Namespace) -> int:
    formats = parse_formats(args.formats)
    sampling = sampling_from(args)
    prepare_out_dir(args.out_dir)
    tally = VideoTally()
    videos = unique_videos(args.paths, tally)
    inputs = Inputs(args.paths)
    labels = output_labels(videos, args.out_dir)
    captioner = load_captioner(args)
    job = VideoJob(sampling, CaptionOptions(beam_size=args.beam, max_length=args.max_length),
                   batch_size=args.batch_size, merge=not args.no_merge, thumbnails=args.thumbnails)
    started = time.monotonic()
    show_bar = not args.quiet and (args.progress or stderr_is_terminal())
    for path in videos:
        outputs = Outputs(path, labels[path], formats, args.out_dir, inputs, args.overwrite)
        outputs.refuse_inputs(tally)
        if not outputs.files:
            continue
        if outputs.all_exist():
            tally.skipped.extend(outputs.files.values())
            continue
        try:
            one_video(captioner, path, job, outputs, args, show_bar, tally)
        except CaptionerError as exc:
            tally.fail_with(exc, path)
    elapsed = time.monotonic() - started
    rtf = tally.seconds / max(elapsed, 1e-6)
    head = (f"{tally.videos} videos, {tally.segments} segments, {tally.seconds:.1f} s of video in "
            f"{elapsed:.1f} s ({rtf:.1f}x real time); {tally.written} files written")
    return tally.close(head, with_incomplete=True)


def unique_videos(paths: list[Path], tally: Tally) -> list[Path]:
    """The videos to open: each file once, and never one that is not a regular file (a pipe
    named v.mp4 would block for ever when opened)."""
    seen = Inputs([])
    videos = []
    for path in paths:
        problem = regular_file_problem(path)
        if problem is not None:
            tally.fail(path, problem)
        elif seen.add(path):
            videos.append(path)
    return videos


def one_video(captioner: Captioner, path: Path, job: VideoJob, outputs: Outputs,
              args: argparse.Namespace, show_bar: bool, tally: VideoTally) -> None:
    bar = Progress(path.name, VIDEO_SECONDS, show_bar)
    t0 = time.monotonic()
    with VideoCaptioning(captioner, path, job) as run:
        segments: list[Segment] = []
        try:
            for seg in run.segments(bar.update):
                segments.append(seg)
                if not args.quiet:
                    emit(path, timecode(seg.start), timecode(seg.end), seg.caption)
        finally:
            bar.clear()
        status, info = run.reader.status, run.info
    elapsed = time.monotonic() - t0
    if not segments:  # no files: an empty .srt would make later runs skip this video
        tally.fail(path, f"{status.stopped or 'no frame could be decoded'}; nothing written")
        return
    written = write_outputs(outputs, segments, info.duration, status.stopped, tally)
    tally.videos += 1
    tally.segments += len(segments)
    tally.seconds += status.position
    tally.written += len(written)
    if status.stopped:
        tally.stop_early(path, status.stopped)
    rtf = status.position / max(elapsed, 1e-6)
    names = ", ".join(shown(p.name) for p in written) or "nothing written"
    message(f"{shown(path.name)}: {len(segments)} segments, {len(status.cuts)} cuts, "
            f"{status.position:.1f} s of video in {elapsed:.1f} s ({rtf:.1f}x real time) -> {names}")
