"""--jsonl PATH: one JSON object per photo, appended and flushed as each one is captioned.

A run that is killed keeps every line it finished, and a rerun with the same PATH skips the
photos already in it (resume). Only the last line can be torn by a kill (each line is one
`write`): a tail that is a whole record gets its newline back, anything else is cut off, so
no earlier line is ever lost. One run at a time holds the file (`flock`); `-` is stdout,
which has nothing to resume.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from captioner.cli.output import message, shown
from captioner.cli.targets import Inputs, check_output_file
from captioner.errors import CaptionerError, WriteError
from captioner.writers import CaptionRecord, atomic_write_bytes, escape_surrogates, json_item

STDOUT = "-"


def record_line(record: CaptionRecord) -> bytes:
    """One record as one line of UTF-8 (an odd byte in a name stays a \\udcXX escape)."""
    text = escape_surrogates(json.dumps(json_item(record), ensure_ascii=False))
    return (text + "\n").encode("utf-8")


def path_key(path: Path | str) -> str:
    """How a photo is matched against the lines of a previous run: its path as given, normalised."""
    return os.path.normpath(str(path))


@dataclass
class Resumed:
    """What an existing JSONL file already holds."""

    done: set[str] = field(default_factory=set)  # path_key of every photo with a line
    bad_lines: int = 0  # lines that are not records (kept, ignored)
    torn: bool = False  # the last line was cut off by a killed run


class JsonlOutput:
    """The --jsonl target: a file opened for appending (and locked), or stdout."""

    def __init__(self, fd: int | None, name: str, resumed: Resumed) -> None:
        self.fd, self.name, self.resumed = fd, name, resumed
        self.reader_left = False  # stdout only: the pipe was closed (`| head`)
        self.written = 0

    @classmethod
    def open(cls, target: str, inputs: Inputs, overwrite: bool) -> JsonlOutput:
        """Open (or make) the file; CaptionerError (exit 2, before any work) if it cannot be."""
        if target == STDOUT:
            return cls(None, "stdout", Resumed())
        path = Path(target)
        check_output_file("--jsonl", path, inputs)
        if os.path.lexists(path):
            st = os.stat(path)
            if not os.path.isfile(path):
                raise CaptionerError(f"--jsonl {path}: not a regular file")
            if not st.st_mode & 0o222:
                raise CaptionerError(f"--jsonl {path}: is read-only (locked); not written")
        if overwrite:  # a fresh file, through the same checks as every replaced output
            try:
                atomic_write_bytes(path, b"", overwrite=True)
            except WriteError as exc:
                raise CaptionerError(f"--jsonl {path}: {exc.reason}") from None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise CaptionerError(f"--jsonl {path}: cannot open ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CaptionerError(f"--jsonl {path}: another captioner run is writing it") from None
        out = cls(fd, str(path), _resume(fd))
        out.report()
        return out

    @property
    def done(self) -> set[str]:
        return self.resumed.done

    def report(self) -> None:
        r = self.resumed
        if r.torn:
            message(f"warning: --jsonl {shown(self.name)}: the last line was cut off (a killed run); "
                    "removed, its photo is captioned again")
        if r.bad_lines:
            message(f"warning: --jsonl {shown(self.name)}: {r.bad_lines} lines are not caption "
                    "records; kept and ignored")

    def write(self, record: CaptionRecord) -> None:
        """Append one line and hand it to the system at once (a kill after this keeps it)."""
        data = record_line(record)
        if self.fd is None:
            self._to_stdout(data)
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            reason = exc.strerror or exc
            raise CaptionerError(f"--jsonl {shown(self.name)}: write failed ({reason})") from None
        self.written += 1

    def _to_stdout(self, data: bytes) -> None:
        if self.reader_left:
            return
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            self.written += 1
        except BrokenPipeError:
            self.reader_left = True
            try:  # what is still buffered goes nowhere, so exiting raises no second BrokenPipeError
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def _resume(fd: int) -> Resumed:
    """Read the lines a previous run left; repair a torn last line in place."""
    resumed = Resumed()
    size = os.fstat(fd).st_size
    kept = 0  # bytes up to the end of the last whole line
    with os.fdopen(os.dup(fd), "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # the torn tail: judged below
            kept += len(raw)
            _take(raw, resumed)
        tail = b""
        if kept < size:
            fh.seek(kept)
            tail = fh.read()
    if tail:
        if _record_file(tail) is not None:  # whole record, only the newline missing
            _take(tail, resumed)
            os.write(fd, b"\n")
        else:
            os.ftruncate(fd, kept)
            resumed.torn = True
    return resumed


def _take(raw: bytes, resumed: Resumed) -> None:
    name = _record_file(raw)
    if name is None:
        if raw.strip():
            resumed.bad_lines += 1
    else:
        resumed.done.add(path_key(name))


def _record_file(raw: bytes) -> str | None:
    """The "file" of a JSONL line, or None if the line is not one of our records."""
    try:
        item = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(item, dict) and isinstance(item.get("file"), str) and "caption" in item:
        return str(item["file"])
    return None
