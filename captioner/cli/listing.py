"""Where a large run's photos come from and which of them this process takes.

`--files-from PATH` (`-` stdin) reads a list as it arrives, so `find photos -name '*.jpg' |
captioner caption --files-from - --jsonl -` starts captioning before `find` ends; entries are
bytes (`--null` for `find -print0`), decoded like os.listdir names, so any file name works.
`--shard I/N` keeps the photos whose path hash is I modulo N: N processes or machines given
the same list (or the same folder, spelt the same) share it without talking to each other,
and together take every photo exactly once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from captioner.errors import CaptionerError

READ_SIZE = 1 << 16
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based)."""

    index: int
    count: int

    def holds(self, path: Path | str) -> bool:
        """Stable across runs, machines and Python versions (not `hash()`, which is salted)."""
        name = os.fsencode(os.path.normpath(str(path)))
        digest = hashlib.blake2b(name, digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index


def parse_shard(text: str) -> Shard:
    """An argparse type: `I/N` with 0 <= I < N."""
    index, slash, count = text.partition("/")
    try:
        shard = Shard(int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (for example 0/4)") from None
    if not slash or shard.count < 1 or not 0 <= shard.index < shard.count:
        raise argparse.ArgumentTypeError(f"{text!r}: use I/N with 0 <= I < N (for example 0/4)")
    return shard


def open_list(source: str) -> BinaryIO:
    """The list's byte stream; CaptionerError (exit 2, before any work) if it cannot be read."""
    if source == "-":
        return sys.stdin.buffer
    try:
        return open(source, "rb")  # noqa: SIM115 -- read lazily by read_list, closed there
    except OSError as exc:
        raise CaptionerError(f"--files-from {source}: cannot read ({exc.strerror or exc})") from None


def read_list(stream: BinaryIO, null: bool) -> Iterator[Path]:
    """The paths of a list, one per line (or NUL-separated), as soon as each arrives; empty
    entries are skipped and a CR before a newline is dropped (lists written on Windows)."""
    sep = b"\0" if null else b"\n"
    pending = b""
    try:
        while True:
            chunk = stream.read1(READ_SIZE) if hasattr(stream, "read1") else stream.read(READ_SIZE)
            if not chunk:
                break
            *entries, pending = (pending + chunk).split(sep)
            yield from _paths(entries, null)
        yield from _paths([pending], null)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _paths(entries: list[bytes], null: bool) -> Iterator[Path]:
    for entry in entries:
        if not null and entry.endswith(b"\r"):
            entry = entry[:-1]
        if entry:
            yield Path(os.fsdecode(entry))


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` items, the last one shorter."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_END = object()


def as_available(items: Iterable[T], most: int) -> Iterator[list[T]]:
    """Lists of what `items` has produced so far (at least one, at most `most`), read on a
    thread: a list that trickles in (a slow `find`, a queue) is captioned as it comes, not once
    `most` paths have arrived. An exception in `items` is raised here."""
    box: queue.Queue[object] = queue.Queue(maxsize=most * 4)

    def fill() -> None:
        try:
            for item in items:
                box.put(item)
            box.put(_END)
        except BaseException as exc:  # handed to the reader, which raises it
            box.put(exc)

    threading.Thread(target=fill, name="files-from", daemon=True).start()
    while True:
        chunk = [box.get()]
        while len(chunk) < most and not box.empty():
            chunk.append(box.get_nowait())
        ended = next((x for x in chunk if x is _END or isinstance(x, BaseException)), None)
        ready = [x for x in chunk if x is not _END and not isinstance(x, BaseException)]
        if ready:
            yield ready  # type: ignore[misc]
        if isinstance(ended, BaseException):
            raise ended
        if ended is not None:
            return
