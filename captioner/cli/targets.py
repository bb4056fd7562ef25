"""Where outputs go, checked before anything is written: no output path is ever an input, and
two inputs never share an output.

`captioner caption --overwrite --json *.jpg` puts the first photo after --json; a photo may be
named `p.txt` and a video `m.srt`; `a/clip.mp4` and `b/clip.mp4` have the same name. Files that
are not what this tool writes are never replaced either (captioner.sniff, in the writers).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from captioner.errors import CaptionerError
from captioner.sniff import replace_refusal


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


class Inputs:
    """The files a run reads, by identity (a second name or a hard link is the same file)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self._ids = {i for i in map(_identity, paths) if i is not None}

    def holds(self, path: Path) -> bool:
        ident = _identity(path)
        return ident is not None and ident in self._ids

    def add(self, path: Path) -> bool:
        """Take one more input; False if it is one already (the same file named twice)."""
        ident = _identity(path)
        if ident in self._ids:
            return False
        if ident is not None:
            self._ids.add(ident)
        return True


def same_file(a: Path, b: Path) -> bool:
    """The same file, existing or not (two spellings of one path, or two links to one file)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    return _identity(a) is not None and _identity(a) == _identity(b)


def check_output_file(option: str, path: Path, inputs: Inputs) -> None:
    """--json/--csv: CaptionerError (exit 2, before any work) for a target that is an input,
    that this tool could not have written (a photo), or whose folder is missing or read-only."""
    if inputs.holds(path):
        raise CaptionerError(f"{option} {path}: is one of the files to caption; choose another name")
    if os.path.lexists(path):
        refusal = replace_refusal(path)
        if refusal is not None:
            raise CaptionerError(f"{option} {path}: {refusal} (even with --overwrite)")
    if not path.parent.is_dir():
        raise CaptionerError(f"{option} {path}: its folder does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):  # found now, not after the whole batch
        raise CaptionerError(f"{option} {path}: its folder is read-only (permission denied)")


def prepare_out_dir(path: Path | None) -> None:
    """--out-dir: made if missing; CaptionerError (exit 2) if it is a file or cannot be made."""
    if path is None:
        return
    if os.path.lexists(path) and not path.is_dir():
        raise CaptionerError(f"--out-dir {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptionerError(f"--out-dir {path}: cannot make this folder ({exc.strerror or exc})") from None


def output_labels(videos: Sequence[Path], out_dir: Path | None) -> dict[Path, str]:
    """The name each video's outputs start with: its own stem, unless another video of the run
    would write into the same folder under the same name; then as many of its parent folders
    (or its extension) as tell them apart: a/clip.mp4, b/clip.mp4 -> a_clip, b_clip;
    clip.mp4, clip.mkv -> clip.mp4, clip.mkv. Any clash left gets -2, -3 in the order given.
    The same command always gives the same names."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for video in videos:
        folder = _folder_key(video, out_dir)
        groups.setdefault((folder, video.stem.casefold()), []).append(video)
    labels: dict[Path, str] = {}
    for members in groups.values():
        labels.update(_distinct(members))
    taken: dict[str, set[str]] = {}
    for video in videos:
        folder = _folder_key(video, out_dir)
        labels[video] = _free(labels[video], taken.setdefault(folder, set()))
    return labels


def _folder_key(video: Path, out_dir: Path | None) -> str:
    return os.path.normcase(os.path.abspath(out_dir if out_dir is not None else video.parent))


def _distinct(members: list[Path]) -> dict[Path, str]:
    if len(members) == 1:
        return {members[0]: members[0].stem}
    parts = [Path(os.path.abspath(m)).parent.parts[1:] for m in members]
    for depth in range(max(map(len, parts)) + 1):
        for ends in ((m.stem for m in members), (m.name for m in members)):
            names = ["_".join([*p[max(0, len(p) - depth):], end]).lstrip(".") if depth else end
                     for p, end in zip(parts, ends, strict=True)]
            if len({n.casefold() for n in names}) == len(names):
                return dict(zip(members, names, strict=True))
    return {m: m.stem for m in members}  # the same path twice: _free numbers them


def _free(label: str, taken: set[str]) -> str:
    name, n = label, 1
    while name.casefold() in taken:
        n += 1
        name = f"{label}-{n}"
    taken.add(name.casefold())
    return name
