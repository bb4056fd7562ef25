"""Segment writers: SRT, WebVTT, CSV and JSON, all through atomic_write_text (CSV text cells
that would start a spreadsheet formula are neutralised).

Subtitle cues follow the usual norms: at most two lines of at most 42 characters, broken at
spaces so the lines are as even as they can be. A caption too long for one cue is split over
several cues that share its segment's time in proportion to their length, so nothing is cut.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from captioner.segments import Segment
from captioner.video import timecode
from captioner.writers import Outcome, atomic_write_text, csv_cell, escape_surrogates

FORMATS = ("srt", "vtt", "csv", "json")
TAG_SEPARATOR = "; "  # as in the photos' CSV (writers.py)
MAX_CHARS = 42
MAX_LINES = 2


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]


def _break_words(words: list[str], width: int) -> list[list[str]]:
    """Greedy lines of at most `width` characters; a longer word is hard-split."""
    lines: list[list[str]] = []
    length = 0
    for word in words:
        while len(word) > width:
            lines.append([word[:width - 1] + "-"])
            word = word[width - 1:]
        if lines and length + 1 + len(word) <= width and length:
            lines[-1].append(word)
            length += 1 + len(word)
        else:
            lines.append([word])
            length = len(word)
    return lines


def _balanced(words: list[str], width: int) -> tuple[str, ...] | None:
    """The two-line break that keeps the longer line shortest, or None if none fits."""
    best: tuple[str, ...] | None = None
    for i in range(1, len(words)):
        top, bottom = " ".join(words[:i]), " ".join(words[i:])
        if max(len(top), len(bottom)) <= width and (
                best is None or max(len(top), len(bottom)) < max(map(len, best))):
            best = (top, bottom)
    return best


def wrap_cue(text: str, width: int = MAX_CHARS, max_lines: int = MAX_LINES) -> list[tuple[str, ...]]:
    """Text -> the lines of one or more cues, each <= max_lines lines of <= width characters."""
    words = text.split()
    if len(" ".join(words)) <= width:
        return [(" ".join(words),)]
    lines = _break_words(words, width)
    if len(lines) <= max_lines:
        return [_balanced(words, width) or tuple(" ".join(line) for line in lines)]
    cues = []
    for i in range(0, len(lines), max_lines):
        chunk = [w for line in lines[i:i + max_lines] for w in line]
        cues.append(_balanced(chunk, width) if max_lines == 2 else None)
        cues[-1] = cues[-1] or tuple(" ".join(line) for line in lines[i:i + max_lines])
    return [cue for cue in cues if cue is not None]


def to_cues(segments: Sequence[Segment]) -> list[Cue]:
    """Segments -> cues; a long caption's cues split its time by their share of characters.

    A segment whose caption was emptied (by an edit) gets no cue: a blank cue ends an SRT block.
    """
    cues: list[Cue] = []
    for seg in segments:
        if not seg.caption.strip():
            continue
        parts = wrap_cue(seg.caption)
        sizes = [max(1, sum(len(line) for line in part)) for part in parts]
        at = seg.start
        for part, size in zip(parts, sizes, strict=True):
            end = at + (seg.end - seg.start) * size / sum(sizes)
            cues.append(Cue(at, end, part))
            at = end
    return cues


def _srt_line(line: str) -> str:
    return line.replace("-->", "->")


def _vtt_line(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(segments: Sequence[Segment]) -> str:
    blocks = []
    for n, cue in enumerate(to_cues(segments), 1):
        text = "\n".join(_srt_line(line) for line in cue.lines)
        blocks.append(f"{n}\n{timecode(cue.start, ',')} --> {timecode(cue.end, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(segments: Sequence[Segment], source: str | None = None) -> str:
    head = "WEBVTT\n"
    if source:  # a file name on one line: a newline in it must not end the NOTE and start cues
        name = " ".join("".join(ch if ch.isprintable() else " " for ch in source).split())
        head += f"\nNOTE captions of {_vtt_line(name).replace('-->', '->')} by captioner\n"
    blocks = [head]
    for n, cue in enumerate(to_cues(segments), 1):
        text = "\n".join(_vtt_line(line) for line in cue.lines)
        blocks.append(f"{n}\n{timecode(cue.start)} --> {timecode(cue.end)}\n{text}\n")
    return "\n".join(blocks)


def _thumb_name(thumbs: Sequence[str | None] | None, i: int) -> str:
    return (thumbs[i] or "") if thumbs else ""


def to_csv(segments: Sequence[Segment], thumbnails: Sequence[str | None] | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "start", "end", "start_time", "end_time", "caption", "score",
                     "confidence", "tags", "frame_time", "thumbnail"])  # as the photos' CSV
    for i, seg in enumerate(segments):
        confidence = "" if seg.confidence is None else f"{seg.confidence:.4f}"
        writer.writerow([i + 1, f"{seg.start:.3f}", f"{seg.end:.3f}", timecode(seg.start),
                         timecode(seg.end), csv_cell(seg.caption), f"{seg.score:.4f}", confidence,
                         csv_cell(TAG_SEPARATOR.join(t.word for t in seg.tags)),
                         f"{seg.frame_time:.3f}", csv_cell(_thumb_name(thumbnails, i))])
    return buf.getvalue()


def to_json(segments: Sequence[Segment], video: str | None = None, duration: float | None = None,
            stopped: str | None = None, thumbnails: Sequence[str | None] | None = None) -> str:
    items = []
    for i, seg in enumerate(segments):
        item = {"index": i + 1, "start": round(seg.start, 3), "end": round(seg.end, 3),
                "caption": seg.caption, "score": round(seg.score, 4),
                "confidence": None if seg.confidence is None else round(seg.confidence, 4),
                "tags": [t.to_json() for t in seg.tags],
                "frame_time": round(seg.frame_time, 3), "scene": seg.scene}
        if _thumb_name(thumbnails, i):
            item["thumbnail"] = _thumb_name(thumbnails, i)
        items.append(item)
    doc = {"video": video, "duration": None if duration is None else round(duration, 3),
           "complete": stopped is None, "stopped": stopped, "segments": items}
    return escape_surrogates(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"


@dataclass(frozen=True)
class VideoDocument:
    """What a writer needs about one video besides its segments."""

    video: str | None = None
    duration: float | None = None
    stopped: str | None = None
    thumbnails: Sequence[str | None] | None = None


def render(fmt: str, segments: Sequence[Segment], doc: VideoDocument = VideoDocument()) -> str:
    if fmt == "srt":
        return to_srt(segments)
    if fmt == "vtt":
        return to_vtt(segments, Path(doc.video).name if doc.video else None)
    if fmt == "csv":
        return to_csv(segments, doc.thumbnails)
    if fmt == "json":
        return to_json(segments, doc.video, doc.duration, doc.stopped, doc.thumbnails)
    raise ValueError(f"unknown format {fmt!r}; choose {', '.join(FORMATS)}")


def write_segments(path: Path, fmt: str, segments: Sequence[Segment],
                   doc: VideoDocument = VideoDocument(), overwrite: bool = False) -> Outcome:
    """Write one file atomically; an existing file is left alone unless overwrite is set, and
    one that is not text (a video named .srt) always."""
    written = atomic_write_text(Path(path), render(fmt, segments, doc), overwrite=overwrite)
    return Outcome.WRITTEN if written else Outcome.SKIPPED_EXISTS
