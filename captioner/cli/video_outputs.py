"""The files one video's captions go to: NAME.srt/.vtt/.csv/.json and NAME_thumbs/, where NAME
is the label `targets.output_labels` chose (distinct for distinct videos)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from captioner.cli.output import Tally
from captioner.cli.targets import Inputs
from captioner.errors import CaptionerError, WriteError
from captioner.segments import Segment
from captioner.sniff import Replaceable
from captioner.subtitles import VideoDocument, write_segments
from captioner.writers import Outcome, atomic_write_bytes


@dataclass
class Outputs:
    video: Path
    label: str
    formats: Sequence[str]
    out_dir: Path | None
    inputs: Inputs
    overwrite: bool

    @property
    def folder(self) -> Path:
        return self.out_dir if self.out_dir is not None else self.video.parent

    @property
    def files(self) -> dict[str, Path]:
        """The output of each format, less any that is one of the inputs (see refuse_inputs)."""
        named = {fmt: self.folder / f"{self.label}.{fmt}" for fmt in self.formats}
        return {fmt: path for fmt, path in named.items() if not self.inputs.holds(path)}

    def refuse_inputs(self, tally: Tally) -> None:
        """One error line for each output that would replace an input (a video named m.srt)."""
        for fmt in self.formats:
            target = self.folder / f"{self.label}.{fmt}"
            if self.inputs.holds(target):
                tally.fail(target, "is one of the videos being captioned; not replaced")

    @property
    def thumbs(self) -> Path:
        return self.folder / f"{self.label}_thumbs"

    def all_exist(self) -> bool:
        """Nothing to do without --overwrite."""
        return not self.overwrite and all(os.path.lexists(t) for t in self.files.values())


def write_outputs(outputs: Outputs, segments: list[Segment], duration: float | None,
                  stopped: str | None, tally: Tally) -> list[Path]:
    """Thumbnails, then each format; every failure is one line and the rest is still written."""
    thumbs = write_thumbnails(outputs, segments, tally) if segments[0].thumbnail is not None else None
    doc = VideoDocument(str(outputs.video), duration, stopped, thumbs)
    written = []
    for fmt, target in outputs.files.items():
        try:
            outcome = write_segments(target, fmt, segments, doc, outputs.overwrite)
        except CaptionerError as exc:
            tally.fail_with(exc, target)
            continue
        if outcome is Outcome.SKIPPED_EXISTS:
            tally.skipped.append(target)
        else:
            written.append(target)
    return written


def write_thumbnails(outputs: Outputs, segments: list[Segment], tally: Tally) -> list[str | None] | None:
    """NAME_thumbs/0001.jpg ...; names are relative to the output folder. A folder that cannot
    be made is one error line, and the captions are still written, without thumbnails."""
    folder = outputs.thumbs
    try:
        if folder.is_symlink():  # planted in a shared folder, it would send the JPEGs elsewhere
            raise NotADirectoryError(0, "it is a symbolic link, not followed")
        if os.path.lexists(folder) and not folder.is_dir():
            raise NotADirectoryError(0, "a file of that name exists")
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        tally.fail(folder, f"cannot make the thumbnails folder ({exc.strerror or exc}); "
                           "captions written without thumbnails")
        return None
    names: list[str | None] = []
    for i, seg in enumerate(segments, 1):
        target = folder / f"{i:04d}.jpg"
        try:
            if seg.thumbnail is not None:
                atomic_write_bytes(target, seg.thumbnail, outputs.overwrite, Replaceable.JPEG)
        except WriteError as exc:
            tally.fail_with(exc, target)
        names.append(f"{folder.name}/{target.name}" if target.is_file() else None)
    return names
