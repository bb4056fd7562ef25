"""Caption writers: sidecar .txt, one JSON, one CSV, and `atomic_write_bytes`, which every
file this tool writes goes through (captions, subtitles, thumbnails).

A file is written to a temporary name in the same folder and moved over the target with
os.replace, so a process killed mid-write leaves the old file or the new one, never a torn
one. Files that exist are never overwritten unless the caller says so, and never at all when
they are not what this tool writes (a photo, a video: see captioner.sniff).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar

from captioner.errors import WriteError
from captioner.sniff import Replaceable, replace_refusal
from captioner.tags import Tag


class Outcome(Enum):
    WRITTEN = "written"
    SKIPPED_EXISTS = "skipped (caption file exists)"


@dataclass(frozen=True)
class CaptionRecord:
    """One captioned file as the writers see it.

    `fields()` is the one place that says what a record holds in JSON and CSV: a new field
    (tags, confidence) is added there and in the dataclass, and both writers follow.
    """

    path: Path
    caption: str
    score: float | None = None
    alternatives: Sequence[tuple[str, float]] = ()
    confidence: float | None = None  # 0-1 (captioner/confidence.py); None: not calibrated
    tags: Sequence[Tag] = ()  # best first

    FIELDS: ClassVar[tuple[str, ...]] = ("file", "caption", "score", "confidence", "tags")

    def fields(self) -> dict[str, object]:
        """The flat fields, in FIELDS order (lists are joined by the CSV writer)."""
        score = None if self.score is None else round(self.score, 4)
        confidence = None if self.confidence is None else round(self.confidence, 4)
        tags = tuple(t.word for t in self.tags)
        return dict(zip(self.FIELDS, (str(self.path), self.caption, score, confidence, tags),
                        strict=True))


def _read_umask() -> int:
    """The process umask, without changing it where /proc says it (os.umask must set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_read_umask()  # what open() would give a new file


def atomic_write_text(path: Path, text: str, overwrite: bool = True, errors: str = "strict") -> bool:
    """Write text as UTF-8 through atomic_write_bytes (see there); raise WriteError on failure."""
    try:
        data = text.encode("utf-8", errors)
    except UnicodeEncodeError as exc:
        raise WriteError(path, f"text cannot be written as UTF-8 ({exc.reason})") from None
    return atomic_write_bytes(Path(path), data, overwrite)


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = True,
                       replaces: Replaceable = Replaceable.TEXT) -> bool:
    """Write bytes to path via temp file + fsync + rename; raise WriteError on failure.

    The bytes go to a hidden temporary file in the same folder (`.NAME.XXXXXXXX.tmp`) which
    then takes the target's name in one step, so a reader, or a process killed at any moment,
    sees the old file or the new one, never a mix. The new file gets the old one's permissions
    (or the umask's, for a new file), not mkstemp's owner-only 0600.

    With overwrite=False the rename cannot replace a file that appeared since the caller
    looked (a hard link publishes it, failing if the name exists): the function then returns
    False and leaves that file alone. It returns True when it wrote. A file that is read-only
    for everyone (chmod a-w) is treated as locked and never replaced, and neither is a file
    that this tool could not have written (`replaces` says what may be replaced: a photo, a
    video or any binary file never is, whatever `overwrite` says).
    """
    path = Path(path)
    mode = _NEW_FILE_MODE
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None:
        if not overwrite:
            return False
        mode = _replaceable_mode(path, st, replaces)
    fd, tmp = _temporary(path)
    try:
        _fill(fd, data, mode)
        if overwrite:
            os.replace(tmp, path)
        elif not _publish_new(tmp, path):
            return False
    except OSError as exc:
        raise WriteError(path, f"write failed: {exc.strerror or exc}") from None
    finally:
        if os.path.lexists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return True


def _replaceable_mode(path: Path, st: os.stat_result, replaces: Replaceable) -> int:
    """The permissions the replacement keeps; WriteError if the file must not be replaced."""
    if not st.st_mode & 0o222:
        raise WriteError(path, "caption file is read-only (locked), not replaced")
    refusal = replace_refusal(path, replaces)
    if refusal is not None:
        raise WriteError(path, refusal)
    return st.st_mode & 0o7777


def _shortened(name: str, limit: int = 100) -> str:
    """The start of a file name in at most `limit` bytes (names are limited in bytes, not
    characters: 80 CJK characters are 240), so the temporary name's own parts still fit."""
    out, size = [], 0
    for ch in name:
        size += len(os.fsencode(ch))
        if size > limit:
            break
        out.append(ch)
    return "".join(out)


def _temporary(path: Path) -> tuple[int, str]:
    """A new hidden file beside path; WriteError (saying why) if the folder takes none."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{_shortened(path.name)}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:
        raise WriteError(path, "folder does not exist") from None
    except NotADirectoryError:
        raise WriteError(path, "cannot write here: its folder is a file") from None
    except PermissionError:
        raise WriteError(path, "folder is read-only (permission denied)") from None
    except OSError as exc:
        raise WriteError(path, f"cannot write here: {exc.strerror or exc}") from None
    return fd, tmp


def _fill(fd: int, data: bytes, mode: int) -> None:
    """Write all of data to fd with the given permissions, fsync and close it."""
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_new(tmp: str, path: Path) -> bool:
    """Give tmp the name path only if nothing has that name; False if something does."""
    try:
        os.link(tmp, path)  # atomic and never replaces: fails with EEXIST instead
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.EMLINK, errno.ENOSYS):
            raise
    # no hard links here (FAT, exFAT, some network shares): check, then rename
    if os.path.lexists(path):
        return False
    os.replace(tmp, path)
    return True


def sidecar_path(image: Path) -> Path:
    return Path(image).with_suffix(".txt")


def shared_sidecar_reason(image: Path, owner: Path) -> str:
    """Why `image` gets no sidecar: photo.jpg and photo.png share photo.txt; the first keeps it."""
    return (f"{sidecar_path(image).name} already holds the caption of {owner.name} "
            "(same name, other extension); not written")


def read_sidecar(image: Path) -> str | None:
    """The caption stored next to an image, or None if there is none (or it is unreadable)."""
    path = sidecar_path(image)
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def write_sidecar(image: Path, caption: str, overwrite: bool = False) -> Outcome:
    """NAME.txt next to the image; one that exists is kept unless overwrite is set.

    A photo named NAME.txt is its own sidecar name: it is never replaced by its caption."""
    target = sidecar_path(image)
    if os.path.normcase(os.path.abspath(target)) == os.path.normcase(os.path.abspath(image)):
        raise WriteError(target, "is the photo itself (named .txt), so it gets no caption file; not written")
    written = atomic_write_text(target, caption.strip() + "\n", overwrite=overwrite)
    return Outcome.WRITTEN if written else Outcome.SKIPPED_EXISTS


def json_item(r: CaptionRecord) -> dict[str, object]:
    """One record as --json writes it in its list and --jsonl on its own line."""
    item = {name: value for name, value in r.fields().items() if value is not None}
    item["confidence"] = r.fields()["confidence"]  # always there: null when not calibrated
    item["tags"] = [t.to_json() for t in r.tags]  # JSON keeps each tag's probability
    if r.alternatives:
        item["alternatives"] = [{"caption": t, "score": round(s, 4)} for t, s in r.alternatives]
    return item


def to_json(records: Iterable[CaptionRecord]) -> str:
    items = [json_item(r) for r in records]
    return escape_surrogates(json.dumps(items, indent=2, ensure_ascii=False)) + "\n"


_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(text: str) -> str:
    """A file name that is not valid UTF-8 reaches Python with its odd bytes as lone
    surrogates (os.fsdecode); JSON keeps them as \\udcXX escapes, which json.load gives back
    and os.fsencode turns into the exact bytes of the name."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula (= + - @, or a tab or
    carriage return before one) gets a leading apostrophe, as OWASP advises. Numbers we write
    are not passed through here (a negative score starts with '-' and is no formula)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_value(value: object) -> str:
    """A field as a CSV cell: numbers with 4 decimals, lists joined, text made formula-safe."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return csv_cell("; ".join(map(str, value)))
    return csv_cell(value)


def to_csv(records: Iterable[CaptionRecord]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(list(CaptionRecord.FIELDS))
    for r in records:
        writer.writerow([_csv_value(value) for value in r.fields().values()])
    return buf.getvalue()


def write_json(path: Path, records: Iterable[CaptionRecord], overwrite: bool = False) -> Outcome:
    written = atomic_write_text(Path(path), to_json(records), overwrite=overwrite)
    return Outcome.WRITTEN if written else Outcome.SKIPPED_EXISTS


def write_csv(path: Path, records: Iterable[CaptionRecord], overwrite: bool = False) -> Outcome:
    """All captions in one CSV; a file name that is not valid UTF-8 is written as its own
    bytes (the CSV is otherwise UTF-8)."""
    written = atomic_write_text(Path(path), to_csv(records), overwrite=overwrite, errors="surrogateescape")
    return Outcome.WRITTEN if written else Outcome.SKIPPED_EXISTS
