"""Reading video for captioning: PyAV only (no torch, no OpenCV), streaming, never the whole video.

Two ways through a file:

* sequential: every frame is decoded (threaded), scaled down inside libav's filter graph and,
  when scenes are wanted, scored by ffmpeg's own `scdet` filter in the same pass. Segments
  close at scene cuts and, inside long scenes, every N seconds.
* seeking: with `--every N` and no scenes only one frame per N seconds is needed, so the reader
  jumps to the keyframe before each target instead of decoding everything in between.

Scene cuts come from ffmpeg's `scdet` (the same score as `select='gt(scene,x)'`); bench/
video_detectors.py compares it with PySceneDetect on the shared clips (docs/video.md).
Every libav error is turned into VideoError, or, once frames have been decoded, into an
`incomplete` note saying where decoding stopped: a truncated file still gets its captions.
"""

from __future__ import annotations

import bisect
import math
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.filter
from PIL import Image

from captioner.errors import VideoError, detail

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
                              ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"})
DEFAULT_FRAME_BOX = 320  # frames are scaled to fit this box in libav: enough for a 224 px model


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def timecode(seconds: float, sep: str = ".") -> str:
    """HH:MM:SS.mmm (sep="," gives the SRT form)."""
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # as shown, after rotation
    height: int
    duration: float | None  # seconds; None when the container does not say
    fps: float | None  # average rate; variable-rate files are read by timestamps, not by this
    rotation: int  # degrees counter-clockwise the player turns each frame
    codec: str
    has_audio: bool

    @property
    def frame_interval(self) -> float:
        return 1.0 / self.fps if self.fps else 0.04


@dataclass(frozen=True)
class SamplingOptions:
    """What to sample: a frame every `every` seconds, one per scene, or both.

    With both, each scene is a segment and scenes longer than `every` are cut in N-second parts.
    """

    every: float | None = None
    scenes: bool = False
    threshold: float = 10.0  # scdet score (0-100) from which a frame starts a new scene
    min_scene: float = 0.5  # cuts closer than this to the previous one are ignored (flashes)
    frame_box: int = DEFAULT_FRAME_BOX

    def __post_init__(self) -> None:
        if self.every is None and not self.scenes:
            raise ValueError("choose --every SECONDS, --scenes, or both")
        if self.every is not None and not self.every > 0:
            raise ValueError("--every must be a positive number of seconds")


@dataclass
class Sample:
    """One segment of the video and the frame chosen to stand for it (nearest its middle)."""

    start: float
    end: float
    time: float
    image: Image.Image
    scene: int = 0


@dataclass
class ReadStatus:
    """Where decoding got to; `stopped` is a reason when the file ended early."""

    position: float = 0.0
    frames: int = 0
    stopped: str | None = None
    cuts: list[float] = field(default_factory=list)


def _wrap(path: Path, exc: BaseException) -> VideoError:
    if isinstance(exc, FileNotFoundError):
        return VideoError(path, "file not found")
    if isinstance(exc, IsADirectoryError):
        return VideoError(path, "is a folder, not a video")
    if isinstance(exc, PermissionError):
        return VideoError(path, "permission denied")
    if isinstance(exc, av.error.InvalidDataError):
        return VideoError(path, "not a video file, or truncated before its index (cannot be opened)")
    reason = getattr(exc, "strerror", None) or detail(exc)
    return VideoError(path, f"cannot read video ({reason})")


def _check_regular(path: Path) -> None:
    """Refuse folders, pipes, sockets and devices before opening: a FIFO would block for ever."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _wrap(path, exc) from None
    if stat.S_ISDIR(mode):
        raise VideoError(path, "is a folder, not a video")
    if not stat.S_ISREG(mode):
        raise VideoError(path, "not a regular file (a pipe, socket or device), so not read")


def _is_cover_art(stream: av.video.stream.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _rate(stream: av.video.stream.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream
              ) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _stream_rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream
                     ) -> int:
    """The display rotation, read from the first decoded frame (where libav puts it)."""
    try:
        for frame in container.decode(stream):
            return int(round(frame.rotation or 0)) % 360
    except av.FFmpegError:
        return 0
    return 0


class VideoReader:
    """Opens one video and yields Samples; use as a context manager so the file is closed."""

    def __init__(self, path: str | Path, options: SamplingOptions) -> None:
        self.path = Path(path)
        self.options = options
        self.status = ReadStatus()
        _check_regular(self.path)
        try:
            # "file:" so that a name such as "concat:a|b" or "http:x" is only ever a file name
            self.container = av.open("file:" + os.path.abspath(self.path), metadata_errors="ignore")
        except Exception as exc:  # av raises many types; none may escape
            raise _wrap(self.path, exc) from None
        try:
            self.stream = self._video_stream()
            self.origin = float(self.stream.start_time * self.stream.time_base) \
                if self.stream.start_time is not None and self.stream.time_base else 0.0
            self.info = self._probe()
        except BaseException:
            self.container.close()
            raise

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def _video_stream(self) -> av.video.stream.VideoStream:
        videos = [s for s in self.container.streams.video if not _is_cover_art(s)]
        if not videos:
            kind = "audio only" if self.container.streams.audio else "no streams it can show"
            raise VideoError(self.path, f"no video stream ({kind})")
        stream = videos[0]
        if stream.codec_context is None:  # a codec libav does not know (or a damaged header)
            raise VideoError(self.path, "unknown video codec: this stream cannot be decoded")
        stream.thread_type = "AUTO"  # frame + slice threads
        stream.codec_context.thread_count = 0
        return stream

    def _probe(self) -> VideoInfo:
        stream = self.stream
        rotation = _stream_rotation(self.container, stream)
        self._rewind()
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(self.path, width, height, _duration(self.container, stream), _rate(stream),
                         rotation, stream.codec_context.name, bool(self.container.streams.audio))

    def seconds(self, frame: av.VideoFrame) -> float:
        """A frame's time from the start of the video (timestamps, so variable rates are right)."""
        pts, base = frame.pts or 0, frame.time_base or self.stream.time_base or Fraction(1)
        return float(pts * base) - self.origin

    def _rewind(self) -> None:
        try:
            self.container.seek(0, backward=True)
        except av.FFmpegError:
            pass

    # -- frames -----------------------------------------------------------------------------

    def _scaled_size(self) -> tuple[int, int]:
        """Fit the stored frame (with its pixel aspect) in the box, even sides, never upscaled."""
        ctx = self.stream.codec_context
        sar = self.stream.sample_aspect_ratio or Fraction(1)
        width, height = ctx.width * float(sar), float(ctx.height)
        box = self.options.frame_box
        scale = min(1.0, box / max(width, height, 1))
        return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)

    def _graph(self) -> av.filter.Graph:
        """buffer -> scale (area) [-> scdet] -> sink: scaling and scene scores inside libav."""
        graph = av.filter.Graph()
        width, height = self._scaled_size()
        try:  # a damaged stream may lack a pixel format or size: say so, never a traceback
            nodes = [graph.add_buffer(template=self.stream),
                     graph.add("scale", f"{width}:{height}:flags=area")]
            if self.options.scenes:
                nodes.append(graph.add("scdet", f"threshold={self.options.threshold}"))
            nodes.append(graph.add("buffersink"))
            for a, b in zip(nodes, nodes[1:], strict=False):
                a.link_to(b)
            graph.configure()
        except (ValueError, TypeError, av.FFmpegError) as exc:
            raise VideoError(self.path, f"the video stream cannot be decoded ({detail(exc)})") from None
        return graph

    def _decoded(self, stop: threading.Event | None) -> Iterator[av.VideoFrame]:
        """Every decoded frame in order; a libav error ends the stream with a note, not a crash."""
        try:
            for frame in self.container.decode(self.stream):
                if stop is not None and stop.is_set():
                    return
                if frame.pts is None:
                    continue
                yield frame
        except av.FFmpegError as exc:
            self.status.stopped = f"decoding failed at {timecode(self.status.position)} ({exc})"
        except (OSError, EOFError) as exc:
            self.status.stopped = f"read failed at {timecode(self.status.position)} ({exc})"

    def _filtered(self, stop: threading.Event | None) -> Iterator[tuple[float, av.VideoFrame, float]]:
        """(time, small frame, scene score) for every frame, through the filter graph."""
        graph = self._graph()
        for frame in self._decoded(stop):
            graph.push(frame)
            yield from self._pull(graph)
        try:
            graph.push(None)
        except (av.FFmpegError, ValueError):
            return
        yield from self._pull(graph)

    def _pull(self, graph: av.filter.Graph) -> Iterator[tuple[float, av.VideoFrame, float]]:
        while True:
            try:
                out = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            except av.FFmpegError:
                return
            if out.pts is None or not isinstance(out, av.VideoFrame):
                continue
            time = self.seconds(out)
            score = float(out.metadata.get("lavfi.scd.score", 0.0)) if self.options.scenes else 0.0
            self._advance(time, out)
            yield time, out, score

    def _advance(self, time: float, frame: av.VideoFrame) -> None:
        duration = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
        self.status.position = max(self.status.position, time + (duration or self.info.frame_interval))
        self.status.frames += 1

    def to_image(self, frame: av.VideoFrame) -> Image.Image:
        """An upright RGB image of a frame, as a player would show it."""
        if max(frame.width, frame.height) > self.options.frame_box:
            width, height = self._scaled_size()
            frame = frame.reformat(width=width, height=height, interpolation="AREA")
        return upright(frame.to_image(), self.info.rotation)

    # -- samples ----------------------------------------------------------------------------

    def samples(self, stop: threading.Event | None = None) -> Iterator[Sample]:
        """The segments and their frames, in order, as decoding reaches them."""
        if self.options.scenes or not self._can_seek():
            yield from self._sequential(stop)
            if stop is None or not stop.is_set():
                self._note_if_short()
        else:
            yield from self._seeking(stop)

    def _note_if_short(self) -> None:
        duration = self.info.duration
        if self.status.stopped is not None or not duration:
            return
        slack = max(0.5, 3 * self.info.frame_interval)
        if self.status.position < duration - slack:
            self.status.stopped = (f"decoding stopped at {timecode(self.status.position)} of "
                                   f"{timecode(duration)} (file truncated or damaged)")

    def _can_seek(self) -> bool:
        return self.info.duration is not None

    def _sequential(self, stop: threading.Event | None) -> Iterator[Sample]:
        builder = _SegmentBuilder(self.options)
        last = None
        for time, frame, score in self._filtered(stop):
            cut = self.options.scenes and score >= self.options.threshold and builder.may_cut(time)
            if cut:
                self.status.cuts.append(time)
            for closed in builder.add(time, frame, cut):
                yield self._sample(closed)
            last = time
        if last is not None and (stop is None or not stop.is_set()):
            for final in builder.finish(self.status.position):
                yield self._sample(final)

    def _sample(self, seg: _OpenSegment) -> Sample:
        time, frame = seg.pick()
        return Sample(seg.start, seg.end, time, self.to_image(frame), seg.scene)

    def _seeking(self, stop: threading.Event | None) -> Iterator[Sample]:
        """One frame per N seconds, nearest each window's middle, by seeking to keyframes."""
        assert self.options.every is not None and self.info.duration is not None
        every, duration = float(self.options.every), self.info.duration
        seeker = _Seeker(self)
        held: Sample | None = None  # yielded once the next target decodes, so a short file's
        windows = max(1, math.floor(duration / every + 0.75))  # a stub under N/4 joins the last
        for k in range(windows):  # (and the last end can be clamped)
            if stop is not None and stop.is_set():
                return
            start, end = k * every, (k + 1) * every if k + 1 < windows else duration
            found = seeker.frame_at((start + end) / 2)
            if found is None:
                self.status.stopped = self.status.stopped or (
                    f"decoding stopped at {timecode(self.status.position)} of {timecode(duration)} "
                    "(file truncated or damaged)")
                if held is not None:
                    held.end = max(held.time, min(held.end, self.status.position))
                break
            if held is not None:
                yield held
            held = Sample(start, end, found[0], self.to_image(found[1]), 0)
        if held is not None:
            yield held


def upright(image: Image.Image, rotation: int) -> Image.Image:
    """Turn a decoded image the way its display matrix says (counter-clockwise degrees)."""
    turn = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_270}.get(rotation % 360)
    return image.transpose(turn) if turn is not None else image


class _OpenSegment:
    """A segment still being read: a few candidate frames, thinned as it grows (bounded memory)."""

    KEEP = 9

    def __init__(self, start: float, scene: int) -> None:
        self.start, self.end, self.scene = start, start, scene
        self.candidates: list[tuple[float, av.VideoFrame]] = []
        self.stride, self.seen = 1, 0

    def add(self, time: float, frame: av.VideoFrame) -> None:
        if self.seen % self.stride == 0:
            self.candidates.append((time, frame))
            if len(self.candidates) > self.KEEP:
                self.candidates = self.candidates[::2]
                self.stride *= 2
        self.seen += 1

    def pick(self) -> tuple[float, av.VideoFrame]:
        middle = (self.start + self.end) / 2
        return min(self.candidates, key=lambda item: abs(item[0] - middle))


class _SegmentBuilder:
    """Turns a stream of (time, frame, is_cut) into closed segments: at cuts and every N seconds.

    A part closed at an N-second mark is held back until the scene goes on or ends, so that a
    scene's last stub (under N/4, e.g. 0.2 s before a cut or the end) joins the part before
    it instead of becoming a flash of a subtitle.
    """

    def __init__(self, options: SamplingOptions) -> None:
        self.options = options
        self.current: _OpenSegment | None = None
        self.held: _OpenSegment | None = None
        self.scene = 0
        self.last_cut = -math.inf

    def may_cut(self, time: float) -> bool:
        """Cuts within min_scene of the start or of the previous cut are flashes, not scenes."""
        return self.current is not None and time - max(self.last_cut, 0.0) >= self.options.min_scene

    def add(self, time: float, frame: av.VideoFrame, cut: bool) -> list[_OpenSegment]:
        closed: list[_OpenSegment] = []
        if self.current is None:
            self.current = _OpenSegment(0.0, self.scene)
        elif cut:
            self.last_cut = time
            self.scene += 1
            closed += self._release(self._close(time, self.scene))
        elif self.options.every and time >= self.current.start + self.options.every:
            steps = math.floor((time - self.current.start) / self.options.every)  # >1 over gaps
            closed += self._hold(self._close(self.current.start + steps * self.options.every,
                                             self.scene))
        assert self.current is not None
        self.current.add(time, frame)
        self.current.end = max(self.current.end, time)
        return [seg for seg in closed if seg.candidates]

    def _close(self, end: float, scene: int) -> _OpenSegment:
        assert self.current is not None
        done = self.current
        done.end = end
        self.current = _OpenSegment(end, scene)
        return done

    def _hold(self, part: _OpenSegment) -> list[_OpenSegment]:
        released, self.held = self.held, part
        return [released] if released is not None else []

    def _release(self, last: _OpenSegment) -> list[_OpenSegment]:
        """`last` ends a scene: a stub joins the held part before it."""
        held, self.held = self.held, None
        if held is None:
            return [last]
        if self.options.every and last.end - last.start < self.options.every / 4:
            held.end = last.end
            return [held]
        return [held, last]

    def finish(self, end: float) -> list[_OpenSegment]:
        done, self.current = self.current, None
        if done is None:
            return self._release_held()
        done.end = max(end, done.end)
        return [seg for seg in self._release(done) if seg.candidates]

    def _release_held(self) -> list[_OpenSegment]:
        held, self.held = self.held, None
        return [held] if held is not None else []


class _Seeker:
    """Finds the frame at a time, seeking only when the target lies past the next keyframe."""

    def __init__(self, reader: VideoReader) -> None:
        self.reader, self.stream = reader, reader.stream
        base = self.stream.time_base or Fraction(1, 1000)
        self.base = float(base)
        self.keyframes = sorted(e.timestamp * self.base - reader.origin
                                for e in self.stream.index_entries if e.is_keyframe)
        self.origin = reader.origin
        self.frames: Iterator[av.VideoFrame] | None = None
        self.last: float | None = None

    def _should_seek(self, target: float) -> bool:
        if self.frames is None or self.last is None:
            return True
        if not self.keyframes:
            return target - self.last > 5.0
        i = bisect.bisect_right(self.keyframes, target) - 1
        return i >= 0 and self.keyframes[i] > self.last

    def _seek(self, target: float) -> None:
        try:
            offset = int((target + self.origin) / self.base)
            self.reader.container.seek(offset, stream=self.stream, backward=True)
        except av.FFmpegError:
            pass  # decode on from where we are
        self.frames = self.reader._decoded(None)

    def frame_at(self, target: float) -> tuple[float, av.VideoFrame] | None:
        """The first frame at or after target minus half a frame, or None when the file ends."""
        if self._should_seek(target):
            self._seek(target)
        assert self.frames is not None
        half = self.reader.info.frame_interval / 2
        for frame in self.frames:
            time = self.reader.seconds(frame)
            self.last = time
            self.reader._advance(time, frame)
            if time >= target - half:
                return time, frame
        return None


def frame_at(path: str | Path, time: float, box: int = 720) -> Image.Image:
    """The upright frame shown at `time` seconds, scaled to fit `box` (for a preview).

    Seeks to the keyframe before it and decodes forward, so it costs one GOP at most.
    """
    with VideoReader(path, SamplingOptions(every=1.0, frame_box=box)) as reader:
        found = _Seeker(reader).frame_at(max(0.0, time))
        if found is None:
            raise VideoError(reader.path, f"no frame at {timecode(time)}")
        return reader.to_image(found[1])
