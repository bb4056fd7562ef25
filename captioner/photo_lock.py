"""An advisory lock on one photo, so that two writers never both find its alt text empty.

Two `--write-metadata` runs (or the app and the CLI) on the same photos each checked "no alt
text yet" and then replaced the file; the later replace won, and 8 of 30 photos got the other
run's text without `--overwrite`. Holding this lock from the existing-value check to the
replace makes the two one step for every writer that takes it.

The lock is `flock` on the photo itself (no lock files left in people's folders). The photo is
replaced by a new file (a new inode), so after taking the lock the name must still lead to the
locked file; if a writer replaced it meanwhile, the lock is taken again on the new file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from captioner.errors import WriteError

LOCK_WAIT_S = 60.0  # how long to wait for another writer of the same photo
_POLL_S = 0.02


@contextlib.contextmanager
def photo_lock(target: Path, path: Path, wait: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold an exclusive advisory lock on `target` (the real file behind `path`)."""
    deadline = time.monotonic() + wait
    while True:
        fd = _open(target, path)
        try:
            _take(fd, path, deadline)
            if _still_named(fd, target):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # replaced while we waited: lock the new file
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _open(target: Path, path: Path) -> int:
    try:  # non-blocking: a FIFO put in the photo's place must not hang the open
        return os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise WriteError(path, "file not found") from None
    except OSError as exc:
        raise WriteError(path, f"cannot read the file: {exc.strerror or exc}") from None


def _take(fd: int, path: Path, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise WriteError(path, "another program is writing this photo; try again later") \
                    from None
            time.sleep(_POLL_S)
        except OSError as exc:  # a file system without locks: go on as before
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return
            raise WriteError(path, f"cannot lock the file: {exc.strerror or exc}") from None


def _still_named(fd: int, target: Path) -> bool:
    try:
        now = os.stat(target)
    except OSError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
