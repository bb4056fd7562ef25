"""What an existing file holds, from its first bytes: may an output replace it?

An output never replaces a photo, a video or any other binary file, whatever its name and
whatever --overwrite says: `captioner caption --overwrite --json *.jpg` puts the first photo
after --json, and a photo may well be called `p.txt`. Only text this tool could have written
(captions, subtitles, JSON, CSV) and empty files are replaced, and thumbnails only by JPEGs.
"""

from __future__ import annotations

import os
import re
import stat
from enum import Enum
from pathlib import Path


class Replaceable(Enum):
    """What kind of existing file a write may replace (with overwrite on)."""

    TEXT = "text"  # captions, subtitles, JSON, CSV: text this tool could have written
    JPEG = "jpeg"  # video thumbnails


# The first bytes of photos, videos and other binary files (most also hold NUL bytes, which
# rule them out anyway): (magic, offset, what the file is).
SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "a JPEG image"), (b"\x89PNG\r\n\x1a\n", 0, "a PNG image"),
    (b"GIF8", 0, "a GIF image"), (b"II*\x00", 0, "a TIFF image"), (b"MM\x00*", 0, "a TIFF image"),
    (b"WEBP", 8, "a WebP image"), (b"AVI ", 8, "an AVI video"),
    (b"ftyp", 4, "a video or HEIF/AVIF image"), (b"\x1aE\xdf\xa3", 0, "a Matroska/WebM video"),
    (b"OggS", 0, "an Ogg file"), (b"FLV\x01", 0, "a Flash video"), (b"%PDF-", 0, "a PDF document"),
    (b"PK\x03\x04", 0, "a zip archive"),
)
_PNM = re.compile(rb"P[1-7]\s")  # Netpbm images may be plain text
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}
SNIFF_BYTES = 8192
EMPTY, TEXT, BINARY = "empty", "text", "binary data"


def sniff_kind(head: bytes) -> str:
    """'empty', 'text', 'binary data', or what a signature says ("a JPEG image")."""
    if not head:
        return EMPTY
    for magic, offset, kind in SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if _PNM.match(head):
        return "a Netpbm image"
    if b"\x00" in head or sum(byte in _CONTROL for byte in head) * 100 > len(head):
        return BINARY
    return TEXT


def replace_refusal(path: Path, replaces: Replaceable = Replaceable.TEXT) -> str | None:
    """Why the existing file at path must not be replaced, or None if it may be.

    Only a regular file is opened (a pipe named like a caption file is never read, which
    could block), without blocking, and only its first bytes are read.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return "is not a regular file (a folder, pipe or device); not replaced"
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            head = os.read(fd, SNIFF_BYTES)
        finally:
            os.close(fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be checked before replacing it ({exc.strerror or exc}); not replaced"
    kind = sniff_kind(head)
    allowed = (EMPTY, TEXT) if replaces is Replaceable.TEXT else (EMPTY, "a JPEG image")
    if kind in allowed:
        return None
    what = "a caption file" if replaces is Replaceable.TEXT else "a thumbnail"
    return f"is {kind}, not {what}; not replaced"
