"""Captioned video segments: frames captioned in batches while decoding runs ahead, and
adjacent segments that say the same thing merged into one.

`caption_video` is a generator, so the CLI prints and the app shows segments as they come,
and closing it (Cancel) stops the decoding thread and closes the file.
"""

from __future__ import annotations

import io
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from pathlib import Path
from typing import Protocol

from PIL import Image

from captioner.captioner import CaptionOptions, CaptionResult
from captioner.tags import MAX_TAGS, Tag
from captioner.video import Sample, SamplingOptions, VideoReader


class ImageCaptioner(Protocol):
    """What captions the frames: a Captioner, or a CaptionService (the app's caption process)."""

    def caption_images(self, images: list[Image.Image], options: CaptionOptions | None = None
                       ) -> list[CaptionResult]: ...


STOPWORDS = frozenset("a an the of on in at to with and is are its it this that there some two "
                      "while near next by for from into up down front top".split())
THUMBNAIL_BOX = 160


@dataclass
class Segment:
    """A stretch of video and what it shows. Times are seconds from the start."""

    start: float
    end: float
    caption: str
    score: float
    frame_time: float  # the frame the caption was made from
    scene: int = 0
    thumbnail: bytes | None = None  # small JPEG of that frame
    confidence: float | None = None  # of the caption, 0-1 (None: the model is not calibrated)
    tags: tuple[Tag, ...] = ()  # what the segment's frames show, best first

    @property
    def duration(self) -> float:
        return self.end - self.start


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def similar_captions(a: str, b: str, min_ratio: float = 0.75) -> bool:
    """Same or nearly the same: the content words of one contain the other's, and the word
    sequences mostly match ("a man riding a wave" ~ "a man riding a big wave", but never
    "a red circle" ~ "a blue circle", where a content word changed)."""
    wa, wb = _words(a), _words(b)
    if wa == wb:
        return True
    ca, cb = set(wa) - STOPWORDS, set(wb) - STOPWORDS
    if not (ca <= cb or cb <= ca) or not (ca or cb):
        return False
    return SequenceMatcher(None, wa, wb).ratio() >= min_ratio


def merge_tags(a: Sequence[Tag], b: Sequence[Tag], limit: int = MAX_TAGS) -> tuple[Tag, ...]:
    """The tags of two frames as one list: each word once, at its higher probability, best first."""
    best: dict[str, float] = {}
    for tag in (*a, *b):
        best[tag.word] = max(tag.p, best.get(tag.word, 0.0))
    ranked = sorted(best.items(), key=lambda item: -item[1])[:limit]
    return tuple(Tag(word, p) for word, p in ranked)


def merge_pair(a: Segment, b: Segment) -> Segment:
    """One segment spanning both; the caption (its frame and confidence) of the surer one is
    kept, and the tags of both frames."""
    best = a if a.score >= b.score else b
    return replace(best, start=min(a.start, b.start), end=max(a.end, b.end), scene=a.scene,
                   tags=merge_tags(a.tags, b.tags))


def merge_segments(segments: list[Segment], min_ratio: float = 0.75) -> list[Segment]:
    """Merge runs of adjacent segments whose captions are the same or nearly the same."""
    out: list[Segment] = []
    for seg in segments:
        if out and similar_captions(out[-1].caption, seg.caption, min_ratio):
            out[-1] = merge_pair(out[-1], seg)
        else:
            out.append(seg)
    return out


def thumbnail_jpeg(image: Image.Image, box: int = THUMBNAIL_BOX) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((box, box), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


@dataclass(frozen=True)
class VideoJob:
    """Everything one video run needs besides the captioner and the file."""

    sampling: SamplingOptions
    caption: CaptionOptions = CaptionOptions()
    batch_size: int = 8
    merge: bool = True
    merge_ratio: float = 0.75
    thumbnails: bool = False
    flush_after: float = 1.0  # caption a part batch after this long so segments keep coming


ProgressFn = Callable[[float, float | None], None]  # (seconds decoded, duration or None)
_DONE = object()


class _Decoder(threading.Thread):
    """Runs reader.samples() ahead of the captioner, through a small bounded queue."""

    def __init__(self, reader: VideoReader, depth: int) -> None:
        super().__init__(daemon=True, name=f"decode {reader.path.name}")
        self.reader = reader
        self.out: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for sample in self.reader.samples(self.stop):
                if not self._put(sample):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def halt(self) -> None:
        self.stop.set()
        self.join(timeout=10)


class VideoCaptioning:
    """One video: open it, then iterate `segments()`; `reader.status` tells where it stopped."""

    def __init__(self, captioner: ImageCaptioner, path: str | Path, job: VideoJob) -> None:
        self.captioner, self.job = captioner, job
        self.reader = VideoReader(path, job.sampling)
        self.info = self.reader.info
        self.frames_captioned = 0

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> VideoCaptioning:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def segments(self, progress: ProgressFn | None = None) -> Iterator[Segment]:
        """Captioned (and merged) segments in order, as soon as each is settled."""
        yield from self._merged(self._captioned(progress))

    def _merged(self, segments: Iterator[Segment]) -> Iterator[Segment]:
        held: Segment | None = None
        for seg in segments:
            if held is not None and self.job.merge and similar_captions(
                    held.caption, seg.caption, self.job.merge_ratio):
                held = merge_pair(held, seg)
                continue
            if held is not None:
                yield held
            held = seg
        if held is not None:
            yield held

    def _captioned(self, progress: ProgressFn | None) -> Iterator[Segment]:
        decoder = _Decoder(self.reader, depth=2 * self.job.batch_size)
        decoder.start()
        pending: list[Sample] = []
        oldest = 0.0
        try:
            while True:
                item = self._next(decoder, progress)
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Sample):
                    oldest = oldest if pending else time.monotonic()
                    pending.append(item)
                if pending and (len(pending) >= self.job.batch_size
                                or time.monotonic() - oldest >= self.job.flush_after):
                    yield from self._caption(pending)
                    pending = []
            yield from self._caption(pending)
            if progress is not None:
                progress(self.reader.status.position, self.info.duration)
        finally:
            decoder.halt()

    def _next(self, decoder: _Decoder, progress: ProgressFn | None) -> object:
        """The next sample, error or end; None after a short wait (to report progress)."""
        try:
            return decoder.out.get(timeout=0.2)
        except queue.Empty:
            return None
        finally:
            if progress is not None:
                progress(self.reader.status.position, self.info.duration)

    def _caption(self, samples: list[Sample]) -> Iterator[Segment]:
        if not samples:
            return
        results = self.captioner.caption_images([s.image for s in samples], self.job.caption)
        self.frames_captioned += len(samples)
        for sample, result in zip(samples, results, strict=True):
            thumb = thumbnail_jpeg(sample.image) if self.job.thumbnails else None
            yield Segment(sample.start, sample.end, result.text, result.score, sample.time,
                          sample.scene, thumb, result.confidence, tuple(result.tags))


def caption_video(captioner: ImageCaptioner, path: str | Path, job: VideoJob,
                  progress: ProgressFn | None = None) -> tuple[list[Segment], str | None]:
    """All segments of one video and the note on where decoding stopped early (or None)."""
    with VideoCaptioning(captioner, path, job) as run:
        segments = list(run.segments(progress))
        return segments, run.reader.status.stopped

