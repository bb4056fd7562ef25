"""A digest of the bytes that make an image's pixels, leaving out its metadata, without decoding.

Writing alt text must not change a photo's pixels. Decoding every frame of the original and of
the written copy proves it, but costs seconds for an animation (a 1,500-frame APNG took 87 s).
libexiv2 only rewrites metadata blocks, so comparing everything else byte for byte is enough:
if those bytes are identical, the decoded pixels are too. This module reads PNG (and APNG)
chunks, JPEG segments and WebP (RIFF) chunks; for anything else, or a file it cannot parse,
it answers None and the caller decodes.
"""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path

# PNG chunks that hold metadata only: text, EXIF, time, and the ICC profile (libexiv2
# recompresses it; the metadata check compares the profile itself).
PNG_METADATA = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"iCCP"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG segments that hold metadata only: EXIF/XMP (APP1), IPTC (APP13), comments.
JPEG_METADATA = frozenset({0xE1, 0xED, 0xFE})
JPEG_ICC = b"ICC_PROFILE\x00"  # APP2 with this header is the ICC profile (others, e.g. MPF, count)
WEBP_METADATA = frozenset({b"EXIF", b"XMP ", b"ICCP"})
WEBP_PIXEL_FLAGS = 0x12  # VP8X flags that change decoding: alpha and animation


def image_data_digest(path: Path) -> str | None:
    """SHA-256 of the pixel-making bytes of a PNG, JPEG or WebP; None for other files."""
    with open(path, "rb") as fh:
        if fh.seek(0, 2) < 16:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as data:
            digest = hashlib.sha256()
            for parse in (_png, _jpeg, _webp):
                found = parse(data, digest)
                if found is not None:
                    return digest.hexdigest() if found else None
            return None


def _png(data: memoryview, digest: hashlib._Hash) -> bool | None:
    """Hash every non-metadata chunk (type and data), in order; False when damaged."""
    if bytes(data[:8]) != PNG_SIGNATURE:
        return None
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = bytes(data[pos + 4:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return False
        if kind not in PNG_METADATA:
            digest.update(data[pos:end])
        if kind == b"IEND":
            return True
        pos = end
    return False


def _jpeg(data: memoryview, digest: hashlib._Hash) -> bool | None:
    """Hash every segment but the metadata ones, then everything from the first scan on."""
    if bytes(data[:2]) != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: entropy-coded data and the tables between scans
            digest.update(data[pos:])
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            digest.update(data[pos:pos + 2])
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if end > len(data) or end < pos + 4:
            return False
        icc = marker == 0xE2 and bytes(data[pos + 4:pos + 4 + len(JPEG_ICC)]) == JPEG_ICC
        if marker not in JPEG_METADATA and not icc:
            digest.update(data[pos:end])
        pos = end
    return False


def _webp(data: memoryview, digest: hashlib._Hash) -> bool | None:
    """Hash every RIFF chunk but EXIF, XMP and ICC; of VP8X only the canvas and pixel flags."""
    if bytes(data[:4]) != b"RIFF" or bytes(data[8:12]) != b"WEBP":
        return None
    pos = 12
    while pos + 8 <= len(data):
        kind = bytes(data[pos:pos + 4])
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        end = pos + 8 + size
        if end > len(data):
            return False
        if kind == b"VP8X" and size >= 10:
            digest.update(kind + bytes([data[pos + 8] & WEBP_PIXEL_FLAGS]))
            digest.update(data[pos + 12:pos + 18])  # canvas width and height
        elif kind not in WEBP_METADATA:
            digest.update(data[pos:end])
        pos = end + (size & 1)  # chunks are padded to an even size
    return pos >= 20
