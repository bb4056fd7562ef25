"""Alt text inside the photo: IPTC "Alt Text (Accessibility)", XMP dc:description, EXIF ImageDescription.

Lightroom, Photo Mechanic and most content systems read the IPTC alt-text field
(XMP ``Iptc4xmpCore:AltTextAccessibility``); older tools read ``dc:description`` or only EXIF
``ImageDescription``. `write_alt_text` writes the caption into all three, through libexiv2 (the
``exiv2`` package, python-exiv2, which ships it in its wheels), into JPEG, PNG, WebP and TIFF.

The write is lossless and safe:

* the photo is copied to a temporary file in the same folder, the copy is written, then
  verified (the new fields read back, every other EXIF/IPTC/XMP field and the ICC profile are
  unchanged, and the decoded pixels hash the same) and only then moved over the original with
  ``os.replace``. A failure or a kill at any point leaves the original file as it was;
* an existing alt text or description is never replaced unless the caller says so
  (``overwrite=True``), like sidecars.

Alt text longer than `ALT_TEXT_LIMIT` characters is still written, but `alt_text_warning` (and
the ``warnings`` list of `write_alt_text`) say so: many tools cut it there.

`write_metadata` also adds keywords (XMP ``dc:subject``, IPTC ``Keywords``; see
`captioner.keywords`) in the same locked, verified replace; keywords are only ever added.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from captioner.errors import WriteError, detail
from captioner.image_data import image_data_digest
from captioner.keywords import (
    IPTC_KEYWORDS,
    SUBJECT,
    KeywordPlan,
    needs_utf8_charset,
    plan_keywords,
    read_back,
    read_image_keywords,
    set_keywords,
)
from captioner.photo_lock import photo_lock
from captioner.writers import Outcome

ALT_TEXT_LIMIT = 250

ALT_TEXT = "Xmp.iptc.AltTextAccessibility"
DESCRIPTION = "Xmp.dc.description"
IPTC_CAPTION = "Iptc.Application2.Caption"
EXIF_DESCRIPTION = "Exif.Image.ImageDescription"

FIELD_LABELS = {
    ALT_TEXT: "IPTC alt text",
    DESCRIPTION: "XMP description",
    IPTC_CAPTION: "IPTC caption",
    EXIF_DESCRIPTION: "EXIF ImageDescription",
    SUBJECT: "XMP keywords (dc:subject)",
    IPTC_KEYWORDS: "IPTC keywords",
}
# read in this order: the first field that holds text is "the photo's caption"
READ_ORDER = (ALT_TEXT, DESCRIPTION, IPTC_CAPTION, EXIF_DESCRIPTION)

WRITABLE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", "image/tiff": "TIFF"}
WRITABLE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".tif", ".tiff"})
SUPPORTED_TEXT = "JPEG, PNG, WebP and TIFF"

# What cameras put into EXIF ImageDescription when nobody wrote anything: not a caption.
CAMERA_PLACEHOLDERS = frozenset({
    "olympus digital camera", "sony dsc", "digital camera", "kodak digital still camera",
    "minolta digital camera", "samsung digital camera", "default", "image", "untitled",
})

# EXIF entries that are file offsets, pointers or containers of other metadata: libexiv2
# rewrites them whenever it lays the file out again, so they are not compared by value.
_LAYOUT_TAGS = ("Offset", "Offsets", "ByteCounts", "ExifTag", "GPSTag", "InteroperabilityTag",
                "SubIFDs", "JPEGInterchangeFormat", "JPEGInterchangeFormatLength", "ImageStart",
                "XMLPacket", "IPTCNAA", "ImageResources")
_UTF8_CHARSET = "\x1b%G"  # IPTC IIM 1:90 CodedCharacterSet escape for UTF-8
IIM_CHARSET = "Iptc.Envelope.CharacterSet"

Expected = str | tuple[str, ...] | None  # what a written field must read back as (None: unchecked)

_lock = threading.Lock()  # libexiv2's XMP toolkit is not safe to enter from two threads at once


@dataclass(frozen=True)
class ExistingText:
    """A caption already stored inside a photo, and the field it came from."""

    text: str
    field: str

    @property
    def label(self) -> str:
        return FIELD_LABELS.get(self.field, self.field)


def alt_text_warning(text: str) -> str | None:
    """A one-line warning when `text` is longer than most tools keep, else None."""
    n = len(text.strip())
    if n > ALT_TEXT_LIMIT:
        return f"alt text is {n} characters; many tools cut alt text at {ALT_TEXT_LIMIT}"
    return None


def can_write_metadata(path: str | Path) -> bool:
    """Whether the file name says a format `write_alt_text` supports (the content decides)."""
    return Path(path).suffix.lower() in WRITABLE_EXTENSIONS


def read_alt_text(path: str | Path) -> ExistingText | None:
    """The caption stored in the photo: alt text, else description, else EXIF; None if none.

    Never raises: a file libexiv2 cannot read, or a format without metadata, has no caption.
    """
    try:
        exiv2 = _exiv2(Path(path))
        with _lock:
            image = exiv2.ImageFactory.open(str(path))
            image.readMetadata()
            return _existing(image)
    except Exception:  # noqa: BLE001 - any failure to read means "no caption stored"
        return None


def write_alt_text(path: str | Path, text: str, overwrite: bool = False,
                   warnings: list[str] | None = None) -> Outcome:
    """Write `text` as the photo's alt text, description and EXIF ImageDescription.

    Returns Outcome.SKIPPED_EXISTS, touching nothing, when the photo already holds an alt
    text or description and `overwrite` is false (`read_alt_text` tells what it holds).
    Raises WriteError with a one-line reason when it cannot write, and then the file is as
    it was. A warning for over-long alt text is appended to `warnings` when given.
    """
    alt_text = write_metadata(path, text, (), overwrite, warnings).alt_text
    assert alt_text is not None  # asked for, so answered
    return alt_text


def read_keywords(path: str | Path) -> tuple[str, ...]:
    """The photo's keywords (XMP dc:subject, then IPTC Keywords, each word once); () if none.

    Never raises, like `read_alt_text`."""
    try:
        exiv2 = _exiv2(Path(path))
        with _lock:
            image = exiv2.ImageFactory.open(str(path))
            image.readMetadata()
            return read_image_keywords(image).all()
    except Exception:  # noqa: BLE001 - any failure to read means "no keywords stored"
        return ()


@dataclass(frozen=True)
class MetadataWrite:
    """What one photo got: its alt text (None: not asked) and the keywords new to it."""

    alt_text: Outcome | None
    keywords_added: tuple[str, ...] = ()


def write_metadata(path: str | Path, text: str | None, keywords: Sequence[str] = (),
                   overwrite: bool = False, warnings: list[str] | None = None) -> MetadataWrite:
    """Write alt text (unless `text` is None) and add `keywords`, in one verified replace.

    Alt text follows `write_alt_text`; keywords are only ever added (`captioner.keywords`),
    also when the alt text already there is kept. Raises WriteError when it cannot write,
    and then the file is as it was.
    """
    path = Path(path)
    what = "alt text" if text is not None else "keywords"
    if text is not None:
        text = text.strip()
        if not text:
            raise WriteError(path, "no alt text to write (the caption is empty)")
        warning = alt_text_warning(text)
        if warning and warnings is not None:
            warnings.append(warning)
    exiv2 = _exiv2(path)
    target = Path(os.path.realpath(path))  # write through a link, do not replace it
    _check_writable(path, target)
    with photo_lock(target, path):  # another run or the app may be writing the same photo
        with _lock:  # only libexiv2 calls hold the lock; reading pixels does not
            image = _open(exiv2, path, target, what)
            if image.mimeType() not in WRITABLE_TYPES:
                raise WriteError(path, f"cannot write {what} into this kind of file "
                                       f"({image.mimeType()}); supported: {SUPPORTED_TEXT}")
            _check_xmp_parsed(image, path)
            alt = _alt_text_step(image, text, overwrite)
            plan = plan_keywords(read_image_keywords(image), keywords, image.mimeType())
            result = MetadataWrite(alt.outcome, plan.added)
            if not alt.write and not plan.changes:
                return result
            before = _snapshot(image)
            del image
        with _temporary_copy(target, path) as tmp:
            pixels = image_data_digest(tmp)  # the copy is still byte for byte the original
            with _lock:
                try:
                    copy = exiv2.ImageFactory.open(str(tmp))
                    copy.readMetadata()
                    expected = _set_fields(copy, text) if alt.write and text is not None else {}
                    expected.update(_set_keywords(copy, plan))
                    copy.writeMetadata()
                    del copy
                except exiv2.Exiv2Error as exc:
                    raise WriteError(path, f"libexiv2 could not write the metadata: "
                                           f"{_exiv2_reason(exc)}") from None
            _verify(exiv2, tmp, path, before, expected)
            _verify_pixels(target, tmp, path, pixels)
            _fsync(tmp)
            _replace(tmp, target, path)
    return result


# -- internals ---------------------------------------------------------------------------------


def _exiv2(path: Path) -> Any:
    try:
        import exiv2
    except ImportError:
        raise WriteError(path, "writing alt text needs the exiv2 package (pip install exiv2)") from None
    return exiv2


def _exiv2_reason(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    message = args[-1] if args and isinstance(args[-1], str) else str(exc)
    return detail(RuntimeError(message.strip().rstrip(".")))  # one printable line: it may quote the file


def _check_writable(path: Path, target: Path) -> None:
    try:
        st = target.stat()
    except FileNotFoundError:
        raise WriteError(path, "file not found") from None
    except OSError as exc:
        raise WriteError(path, f"cannot read the file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise WriteError(path, "not a regular file")
    if not os.access(target, os.W_OK) or not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise WriteError(path, "file is read-only")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise WriteError(path, "folder is read-only (permission denied)")


def _open(exiv2: Any, path: Path, target: Path, what: str) -> Any:
    try:
        image = exiv2.ImageFactory.open(str(target))
        image.readMetadata()
    except exiv2.Exiv2Error as exc:
        code = getattr(exc, "code", None)
        if code in (exiv2.ErrorCode.kerFileContainsUnknownImageType,
                    exiv2.ErrorCode.kerUnsupportedImageType):
            raise WriteError(path, f"cannot write {what} into this kind of file; "
                                   f"supported: {SUPPORTED_TEXT}") from None
        raise WriteError(path, f"cannot read the photo's metadata: {_exiv2_reason(exc)}") from None
    return image


def _check_xmp_parsed(image: Any, path: Path) -> None:
    """Refuse when the photo has an XMP packet libexiv2 could not parse: writing would drop it."""
    packet = image.xmpPacket()
    if isinstance(packet, bytes):
        packet = packet.decode("utf-8", "replace")
    if packet and packet.strip() and image.xmpData().empty():
        raise WriteError(path, "the photo's XMP metadata is damaged; not writing, so nothing in it is lost")


def _datum_text(data: Any, key: str) -> str | None:
    """The text of one field; for language alternatives the x-default (else the first) entry."""
    datum = data.findKey(_key(key))
    if datum == data.end():
        return None
    try:
        if key.startswith("Xmp."):
            value = datum.value()
            if hasattr(value, "items") and value.count() > 0:
                entries = dict(value.items())
                text = entries.get("x-default") or next(iter(entries.values()), "")
                return str(text)
        return str(datum.toString())
    except (UnicodeDecodeError, ValueError, TypeError):
        return None


def _key(key: str) -> Any:
    import exiv2

    family = key.split(".", 1)[0]
    return {"Xmp": exiv2.XmpKey, "Iptc": exiv2.IptcKey, "Exif": exiv2.ExifKey}[family](key)


def _container(image: Any, key: str) -> Any:
    family = key.split(".", 1)[0]
    return {"Xmp": image.xmpData, "Iptc": image.iptcData, "Exif": image.exifData}[family]()


def _field(image: Any, key: str) -> str | None:
    text = _datum_text(_container(image, key), key)
    if text is None:
        return None
    text = text.strip().rstrip("\x00").strip()
    if not text:
        return None
    if key == EXIF_DESCRIPTION and text.lower() in CAMERA_PLACEHOLDERS:
        return None
    return text


def _existing(image: Any) -> ExistingText | None:
    for key in READ_ORDER:
        text = _field(image, key)
        if text is not None:
            return ExistingText(text, key)
    return None


def _holds(image: Any, text: str) -> bool:
    """Whether the three fields (and an IPTC caption, if any) already say exactly `text`."""
    keys = [ALT_TEXT, DESCRIPTION, EXIF_DESCRIPTION]
    if _field(image, IPTC_CAPTION) is not None:
        keys.append(IPTC_CAPTION)
    return all(_field(image, key) == text for key in keys)


@dataclass(frozen=True)
class _AltTextStep:
    """What the alt-text part of a write does: its outcome, and whether the fields change."""

    outcome: Outcome | None
    write: bool


def _alt_text_step(image: Any, text: str | None, overwrite: bool) -> _AltTextStep:
    if text is None:
        return _AltTextStep(None, False)
    if _existing(image) is not None and not overwrite:
        return _AltTextStep(Outcome.SKIPPED_EXISTS, False)
    return _AltTextStep(Outcome.WRITTEN, not _holds(image, text))


def _set_fields(image: Any, text: str) -> dict[str, Expected]:
    """Set the alt-text fields on an opened image; returns each key changed and what it must
    read back as (None: not checked)."""
    xmp = image.xmpData()
    xmp[ALT_TEXT] = "lang=x-default " + text  # other languages stay as they were
    xmp[DESCRIPTION] = "lang=x-default " + text
    image.exifData()[EXIF_DESCRIPTION] = text  # UTF-8, as exiftool and most readers expect
    written: dict[str, Expected] = {ALT_TEXT: text, DESCRIPTION: text, EXIF_DESCRIPTION: text}
    iptc = image.iptcData()
    if _datum_text(iptc, IPTC_CAPTION) is not None:  # keep an old IIM caption in step (MWG rule)
        iptc[IPTC_CAPTION] = text
        written[IPTC_CAPTION] = text
        if not text.isascii():
            written.update(_utf8_iim(image))
    return written


def _set_keywords(image: Any, plan: KeywordPlan) -> dict[str, Expected]:
    written: dict[str, Expected] = dict(set_keywords(image, plan))
    if needs_utf8_charset(plan):
        written.update(_utf8_iim(image))
    return written


def _utf8_iim(image: Any) -> dict[str, Expected]:
    image.iptcData()[IIM_CHARSET] = _UTF8_CHARSET
    return {IIM_CHARSET: None}


def _is_layout(key: str) -> bool:
    return key.startswith("Exif.") and key.rsplit(".", 1)[-1].endswith(_LAYOUT_TAGS)


def _safe_string(datum: Any) -> str:
    try:
        return str(datum.toString())
    except (UnicodeDecodeError, ValueError, TypeError):
        return f"<{datum.typeName()} {datum.size()} bytes>"


def _snapshot(image: Any) -> dict[str, Any]:
    """Every metadata field but the file-layout ones, by key, for comparing before and after."""
    snap: dict[str, Any] = {}
    for family, data in (("exif", image.exifData()), ("iptc", image.iptcData()), ("xmp", image.xmpData())):
        for datum in data:
            key = datum.key()
            if _is_layout(key):
                continue
            value = _safe_string(datum)
            if family == "iptc":  # repeatable (keywords): keep them all, in order
                snap[key] = (*snap.get(key, ()), value)
            else:
                snap[key] = value
    exiv2 = sys.modules["exiv2"]
    if any(exiv2.ExifTags.isMakerGroup(key.split(".")[1]) for key in snap
           if key.startswith("Exif.") and not key.startswith("Exif.MakerNote.")):
        # a maker note libexiv2 decoded is compared entry by entry (above); its raw block holds
        # offsets (Canon's count from the file start) that change when the block moves
        snap.pop("Exif.Photo.MakerNote", None)
    if image.iccProfileDefined():
        snap["ICC profile"] = hashlib.sha256(bytes(image.iccProfile().data())).hexdigest()
    if image.comment():
        snap["comment"] = image.comment()
    return snap


def _pixel_hash(file: Path, path: Path) -> str:
    """SHA-256 of every frame's decoded pixels (mode, size and bytes)."""
    from PIL import Image, ImageSequence

    digest = hashlib.sha256()
    try:
        with Image.open(file) as img:
            for frame in ImageSequence.Iterator(img):
                digest.update(f"{frame.mode} {frame.size}\n".encode())
                digest.update(frame.tobytes())
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for undecodable files
        raise WriteError(path, f"cannot decode the pixels to check them, so not writing "
                               f"({detail(exc)})") from None
    return digest.hexdigest()


@contextlib.contextmanager
def _temporary_copy(target: Path, path: Path) -> Iterator[Path]:
    """A copy of `target` in its own folder, removed on the way out unless it was moved away.

    Its name ends in .captioner-tmp, not an image extension, so that a copy left by a killed
    process is never taken for a photo by folder scans.
    """
    try:  # a short name: the photo's own may already be near the 255-byte limit
        fd, name = tempfile.mkstemp(prefix=".", suffix=".captioner-tmp", dir=target.parent)
    except OSError as exc:
        raise WriteError(path, f"cannot write in this folder: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, open(target, "rb") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        yield tmp
    except OSError as exc:
        raise WriteError(path, f"write failed: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _read_back(image: Any, key: str, expected: Expected) -> bool:
    if expected is None:
        return True
    if isinstance(expected, tuple):
        return read_back(image, key) == expected
    return _field(image, key) == expected


def _verify(exiv2: Any, tmp: Path, path: Path, before: dict[str, Any], written: dict[str, Expected]
            ) -> None:
    """Re-read the written copy: new fields present, all others unchanged."""
    with _lock:
        try:
            check = exiv2.ImageFactory.open(str(tmp))
            check.readMetadata()
        except exiv2.Exiv2Error as exc:
            raise WriteError(path, f"the written copy does not read back: {_exiv2_reason(exc)}") from None
        misread = [key for key, value in sorted(written.items()) if not _read_back(check, key, value)]
        after = _snapshot(check)
        del check
    if misread:
        raise WriteError(path, f"{FIELD_LABELS.get(misread[0], misread[0])} did not read back as written; "
                               f"the photo was left as it was")
    for key, value in before.items():
        if key in written:
            continue
        if key not in after:
            raise WriteError(path, f"writing would lose {key}; the photo was left as it was")
        if after[key] != value:
            raise WriteError(path, f"writing would change {key}; the photo was left as it was")


def _verify_pixels(original: Path, tmp: Path, path: Path, before: str | None) -> None:
    """Same pixels in the written copy as in the original.

    Cheap first: when the bytes that make the pixels (every PNG/WebP chunk, every JPEG segment
    but the metadata ones) are identical, so are the decoded pixels, and nothing is decoded; a
    1,500-frame APNG costs a read instead of two decodes of every frame. When they differ (or
    the format is TIFF, whose strips libexiv2 moves) both files are decoded and compared.
    """
    after = image_data_digest(tmp)
    if before is not None and before == after:
        return
    if _pixel_hash(original, path) != _pixel_hash(tmp, path):
        raise WriteError(path, "writing would change the pixels; the photo was left as it was")


def _fsync(file: Path) -> None:
    with open(file, "rb+") as fh:
        os.fsync(fh.fileno())


def _replace(tmp: Path, target: Path, path: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError as exc:
        raise WriteError(path, f"cannot replace the photo: {exc.strerror or exc}") from None
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        with contextlib.suppress(OSError):
            fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
