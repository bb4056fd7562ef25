"""Caption writers: sidecar .txt, one JSON, one CSV. Every write is atomic.

A file is written to a temporary name in the same folder and moved over the target with
os.replace, so a process killed mid-write leaves the old file or the new one, never a torn
one. Sidecars that exist are never overwritten unless the caller says so.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from captioner.errors import WriteError


class Outcome(Enum):
    WRITTEN = "written"
    SKIPPED_EXISTS = "skipped (caption file exists)"


@dataclass(frozen=True)
class CaptionRecord:
    """One captioned file as the writers see it."""

    path: Path
    caption: str
    score: float | None = None
    alternatives: Sequence[tuple[str, float]] = ()


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to path via temp file + fsync + os.replace; raise WriteError on failure."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:
        raise WriteError(path, "folder does not exist") from None
    except PermissionError:
        raise WriteError(path, "folder is read-only (permission denied)") from None
    except OSError as exc:
        raise WriteError(path, f"cannot write here: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise WriteError(path, f"write failed: {exc.strerror or exc}") from None


def sidecar_path(image: Path) -> Path:
    return Path(image).with_suffix(".txt")


def read_sidecar(image: Path) -> str | None:
    """The caption stored next to an image, or None if there is none (or it is unreadable)."""
    path = sidecar_path(image)
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def write_sidecar(image: Path, caption: str, overwrite: bool = False) -> Outcome:
    path = sidecar_path(image)
    if path.exists() and not overwrite:
        return Outcome.SKIPPED_EXISTS
    atomic_write_text(path, caption.strip() + "\n")
    return Outcome.WRITTEN


def to_json(records: Iterable[CaptionRecord]) -> str:
    items = [{"file": str(r.path), "caption": r.caption,
              **({"score": round(r.score, 4)} if r.score is not None else {}),
              **({"alternatives": [{"caption": t, "score": round(s, 4)} for t, s in r.alternatives]}
                 if r.alternatives else {})} for r in records]
    return json.dumps(items, indent=2, ensure_ascii=False) + "\n"


def to_csv(records: Iterable[CaptionRecord]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "caption", "score"])
    for r in records:
        writer.writerow([str(r.path), r.caption, "" if r.score is None else f"{r.score:.4f}"])
    return buf.getvalue()


def write_json(path: Path, records: Iterable[CaptionRecord], overwrite: bool = False) -> Outcome:
    if Path(path).exists() and not overwrite:
        return Outcome.SKIPPED_EXISTS
    atomic_write_text(Path(path), to_json(records))
    return Outcome.WRITTEN


def write_csv(path: Path, records: Iterable[CaptionRecord], overwrite: bool = False) -> Outcome:
    if Path(path).exists() and not overwrite:
        return Outcome.SKIPPED_EXISTS
    atomic_write_text(Path(path), to_csv(records))
    return Outcome.WRITTEN
