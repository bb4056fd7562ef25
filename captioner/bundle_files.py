"""Opening the files of a bundle folder, and nothing outside it.

A manifest is data from whoever made the bundle. A name such as `/etc/passwd`, `../../x` or a
symbolic link that leads out of the folder made the tool open and hash that file, and the two
error messages ("missing" / "does not match its checksum") told whether it existed. Here every
name is checked as text first (a plain file name: no separator, no `..`, no control
character), then where it leads without opening it (a link must stay in the folder); only then
is it opened, without following links and without waiting on a pipe. A refused name gets the
same message whether or not anything exists where it points.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

MAX_NAME = 200  # characters in a bundle file name


class UnsafeName(ValueError):
    """A name that is not a plain file name inside the bundle folder (the text says why)."""


def check_name(name: object) -> str:
    """The name itself if it is a plain file name, else UnsafeName (decided from the text alone)."""
    if not isinstance(name, str) or not name:
        raise UnsafeName("a file name must be a non-empty string")
    if len(name) > MAX_NAME:
        raise UnsafeName(f"file name longer than {MAX_NAME} characters")
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UnsafeName(f"{shown_name(name)} is not a plain file name inside the bundle folder")
    if not name.isprintable():
        raise UnsafeName(f"{shown_name(name)} has control characters")
    return name


def shown_name(name: str) -> str:
    """A manifest name fit for a one-line message: quoted, escaped, not too long."""
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def resolve_inside(root: Path, name: str) -> Path:
    """`root/name` with links followed, refused if it leads out of `root` (nothing is opened)."""
    check_name(name)
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(root / name))
    if real.parent != real_root:
        raise UnsafeName(f"{shown_name(name)} is a link that leads out of the bundle folder")
    return real


def open_regular(path: Path) -> int:
    """A read-only descriptor on a regular file: no link followed, no wait on a pipe.

    Raises FileNotFoundError, or OSError with a reason for anything that is not a plain file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


def read_limited(path: Path, limit: int) -> bytes:
    """The whole file, refused (ValueError) when it is larger than `limit` bytes."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit >> 20} MB")
    return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
