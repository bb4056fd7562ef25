"""Alt text written into real photos: read back by captioner.metadata and by an independent reader.

The independent reader is Pillow (it pulls the XMP packet and the EXIF block out of each
format) with the standard library's XML parser; Pillow's own `getxmp()` is checked too where
defusedxml is installed. Photos carry EXIF camera data, GPS, an ICC profile and keywords
before the write, and every one of them must survive it, as must the decoded pixels.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageSequence
from PIL.PngImagePlugin import PngInfo

from captioner import metadata
from captioner.errors import WriteError
from captioner.metadata import (
    ALT_TEXT,
    DESCRIPTION,
    EXIF_DESCRIPTION,
    IPTC_CAPTION,
    alt_text_warning,
    read_alt_text,
    write_alt_text,
)
from captioner.writers import Outcome

exiv2 = pytest.importorskip("exiv2")

ROOT = Path(__file__).resolve().parent.parent
FLICKR = ROOT.parent / "shared" / "data" / "flickr8k" / "images"
FLICKR_PHOTOS = sorted(FLICKR.glob("*.jpg"))[:3] if FLICKR.is_dir() else []

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
KEYWORDS = ["beach", "dog", "summer"]
CAPTION = "a brown dog runs along the beach"
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
FORMATS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "tiff": ".tif"}

# EXIF tags
MAKE, MODEL, IMAGE_DESCRIPTION, DATETIME_ORIGINAL, FNUMBER = 0x010F, 0x0110, 0x010E, 0x9003, 0x829D
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4


def xmp_packet(keywords: list[str] = KEYWORDS, description: dict[str, str] | None = None) -> bytes:
    """An XMP packet as another tool would write it: keywords (dc:subject), maybe a description."""
    desc = ""
    if description:
        items = "".join(f'<rdf:li xml:lang="{lang}">{text}</rdf:li>' for lang, text in description.items())
        desc = f"<dc:description><rdf:Alt>{items}</rdf:Alt></dc:description>"
    subjects = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4">'
        f"<dc:subject><rdf:Bag>{subjects}</rdf:Bag></dc:subject>{desc}"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def camera_exif(description: str | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE] = "Canon"
    exif[MODEL] = "Canon EOS R5"
    if description is not None:
        exif[IMAGE_DESCRIPTION] = description
    exif.get_ifd(EXIF_IFD).update({DATETIME_ORIGINAL: "2023:07:14 18:02:11", FNUMBER: 5.6})
    exif.get_ifd(GPS_IFD).update({GPS_LAT_REF: "N", GPS_LAT: (48.0, 51.0, 29.5),
                                  GPS_LON_REF: "E", GPS_LON: (2.0, 17.0, 40.2)})
    return exif


def source_pixels() -> Image.Image:
    """A real photo's pixels when the Flickr8k images are there, else a synthetic scene."""
    if FLICKR_PHOTOS:
        with Image.open(FLICKR_PHOTOS[0]) as img:
            return img.convert("RGB")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:240, 0:320]
    scene = np.stack([x * 255 // 320, y * 255 // 240, (x + y) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(np.clip(scene + rng.integers(0, 24, scene.shape), 0, 255).astype(np.uint8))


def make_photo(folder: Path, fmt: str, *, description: str | None = None,
               xmp_description: dict[str, str] | None = None, name: str = "photo") -> Path:
    """Save a photo with camera EXIF, GPS, an ICC profile and XMP keywords, all through Pillow."""
    img = source_pixels()
    path = folder / f"{name}{FORMATS[fmt]}"
    exif = camera_exif(description).tobytes()
    packet = xmp_packet(description=xmp_description)
    if fmt == "jpeg":
        img.save(path, "JPEG", quality=92, exif=exif, icc_profile=ICC, xmp=packet)
    elif fmt == "png":
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet.decode())
        img.save(path, "PNG", exif=exif, icc_profile=ICC, pnginfo=info)
    elif fmt == "webp":
        img.save(path, "WEBP", quality=85, exif=exif, icc_profile=ICC, xmp=packet)
    else:  # Pillow writes EXIF sub-IFDs (camera, GPS) only through its own, uncompressed writer
        ifd = camera_exif(description)
        tags = {**dict(ifd), 700: packet, EXIF_IFD: dict(ifd.get_ifd(EXIF_IFD)),
                GPS_IFD: dict(ifd.get_ifd(GPS_IFD))}
        img.save(path, "TIFF", icc_profile=ICC, tiffinfo=tags)
    return path


def pixel_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with Image.open(path) as img:
        for frame in ImageSequence.Iterator(img):
            digest.update(f"{frame.mode}{frame.size}".encode())
            digest.update(frame.tobytes())
    return digest.hexdigest()


def independent_read(path: Path) -> dict:
    """What Pillow and the standard XML parser see in the file, without captioner or libexiv2."""
    with Image.open(path) as img:
        img.load()
        if img.format == "PNG":
            raw = img.info.get("XML:com.adobe.xmp")
        elif img.format == "TIFF":
            raw = img.tag_v2.get(700)
        else:
            raw = img.info.get("xmp")
        exif = img.getexif()
        found = {
            "exif_description": exif.get(IMAGE_DESCRIPTION),
            "make": exif.get(MAKE),
            "model": exif.get(MODEL),
            "datetime_original": exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL),
            "gps": {k: exif.get_ifd(GPS_IFD).get(k) for k in (GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON)},
            "icc": img.info.get("icc_profile"),
        }
        try:
            import defusedxml  # noqa: F401  (Pillow's getxmp needs it)
        except ImportError:
            found["getxmp"] = None
        else:
            found["getxmp"] = img.getxmp()
    assert raw, f"no XMP packet in {path.name}"
    if isinstance(raw, str):
        raw = raw.encode()
    root = ET.fromstring(raw[raw.index(b"<x:xmpmeta"):raw.rindex(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")])

    def lang_alt(tag: str) -> dict[str, str]:
        return {li.get(XML_LANG): li.text or "" for li in root.iterfind(f".//{tag}/rdf:Alt/rdf:li", NS)}

    found["alt_text"] = lang_alt("Iptc4xmpCore:AltTextAccessibility")
    found["description"] = lang_alt("dc:description")
    found["keywords"] = [li.text for li in root.iterfind(".//dc:subject/rdf:Bag/rdf:li", NS)]
    return found


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "captioner-tmp" in p.name)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_alt_text_written_read_back_and_nothing_else_changes(tmp_path: Path, fmt: str) -> None:
    photo = make_photo(tmp_path, fmt)
    before = independent_read(photo)
    pixels = pixel_hash(photo)
    assert read_alt_text(photo) is None
    assert before["alt_text"] == {} and before["keywords"] == KEYWORDS

    assert write_alt_text(photo, CAPTION) is Outcome.WRITTEN

    # through the project
    assert read_alt_text(photo) == metadata.ExistingText(CAPTION, ALT_TEXT)
    # through Pillow + xml.etree
    after = independent_read(photo)
    assert after["alt_text"] == {"x-default": CAPTION}
    assert after["description"] == {"x-default": CAPTION}
    assert after["exif_description"] == CAPTION
    # lossless: pixels, camera data, GPS, ICC profile, keywords
    assert pixel_hash(photo) == pixels
    for field in ("make", "model", "datetime_original", "gps", "icc", "keywords"):
        assert after[field] == before[field], field
    assert after["make"] == "Canon" and after["gps"][GPS_LAT] == (48.0, 51.0, 29.5)
    assert after["icc"] == ICC
    if after["getxmp"] is not None:  # Pillow's own XMP reader, where defusedxml is installed
        desc = after["getxmp"]["xmpmeta"]["RDF"]["Description"]
        assert desc["AltTextAccessibility"]["Alt"]["li"]["text"] == CAPTION
    assert leftovers(tmp_path) == []


def test_every_frame_of_multi_frame_files_survives(tmp_path: Path) -> None:
    """A multi-page LZW TIFF and an animated WebP: the pixel hash covers every frame."""
    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for _ in range(3)]
    tiff, webp = tmp_path / "pages.tif", tmp_path / "anim.webp"
    frames[0].save(tiff, save_all=True, append_images=frames[1:], compression="tiff_lzw")
    frames[0].save(webp, save_all=True, append_images=frames[1:], lossless=True, duration=100)
    for photo in (tiff, webp):
        pixels = pixel_hash(photo)
        assert write_alt_text(photo, CAPTION) is Outcome.WRITTEN
        assert pixel_hash(photo) == pixels
        with Image.open(photo) as img:
            assert img.n_frames == 3
        assert independent_read(photo)["alt_text"] == {"x-default": CAPTION}


@pytest.mark.parametrize("make, notes", [
    ("Canon", {"Exif.Canon.OwnerName": "Grace", "Exif.CanonCs.Macro": "2"}),
    ("NIKON CORPORATION", {"Exif.Nikon3.Version": "48 50 49 48", "Exif.Nikon3.Quality": "FINE"}),
])
def test_camera_maker_notes_and_thumbnail_survive(tmp_path: Path, make: str, notes: dict[str, str]) -> None:
    """Maker notes move when the file is laid out again (Canon's hold absolute offsets): every
    decoded entry must still read the same, and the EXIF thumbnail must still be there."""
    photo = make_photo(tmp_path, "jpeg")
    image = exiv2.ImageFactory.open(str(photo))
    image.readMetadata()
    exif = image.exifData()
    exif["Exif.Image.Make"] = make
    for key, value in notes.items():
        exif[key] = value
    thumb = tmp_path / "thumb.jpg"
    source_pixels().resize((160, 120)).save(thumb, quality=80)
    exiv2.ExifThumb(exif).setJpegThumbnail(str(thumb))
    image.writeMetadata()
    del image
    pixels = pixel_hash(photo)

    assert write_alt_text(photo, CAPTION) is Outcome.WRITTEN
    image = exiv2.ImageFactory.open(str(photo))
    image.readMetadata()
    exif = image.exifData()
    assert {key: exif[key].toString() for key in notes} == notes
    assert bytes(exiv2.ExifThumb(exif).copy().data()) == thumb.read_bytes()
    assert pixel_hash(photo) == pixels
    assert independent_read(photo)["alt_text"] == {"x-default": CAPTION}


@pytest.mark.skipif(not FLICKR_PHOTOS, reason="Flickr8k photos not in shared/data")
def test_real_photos_as_they_came(tmp_path: Path) -> None:
    """Untouched Flickr JPEGs (whatever metadata they carry): alt text in, pixels and the rest kept."""
    for source in FLICKR_PHOTOS:
        photo = tmp_path / source.name
        shutil.copyfile(source, photo)
        pixels = pixel_hash(photo)
        with Image.open(photo) as img:
            icc, exif = img.info.get("icc_profile"), dict(img.getexif())
        assert write_alt_text(photo, CAPTION) is Outcome.WRITTEN
        assert read_alt_text(photo) == metadata.ExistingText(CAPTION, ALT_TEXT)
        assert independent_read(photo)["alt_text"] == {"x-default": CAPTION}
        assert pixel_hash(photo) == pixels
        with Image.open(photo) as img:
            assert img.info.get("icc_profile") == icc
            after = dict(img.getexif())
        assert {k: v for k, v in after.items() if k not in (IMAGE_DESCRIPTION, EXIF_IFD, GPS_IFD)} == \
            {k: v for k, v in exif.items() if k not in (IMAGE_DESCRIPTION, EXIF_IFD, GPS_IFD)}


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_existing_alt_text_is_never_replaced_without_asking(tmp_path: Path, fmt: str) -> None:
    photo = make_photo(tmp_path, fmt)
    assert write_alt_text(photo, "a person's own alt text") is Outcome.WRITTEN
    kept = photo.read_bytes()

    assert write_alt_text(photo, CAPTION) is Outcome.SKIPPED_EXISTS
    assert photo.read_bytes() == kept
    assert read_alt_text(photo) == metadata.ExistingText("a person's own alt text", ALT_TEXT)

    assert write_alt_text(photo, CAPTION, overwrite=True) is Outcome.WRITTEN
    assert independent_read(photo)["alt_text"] == {"x-default": CAPTION}
    assert independent_read(photo)["exif_description"] == CAPTION


def test_existing_description_counts_and_other_languages_survive(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, "jpeg", xmp_description={"x-default": "Sunset at the pier",
                                                          "de-DE": "Sonnenuntergang am Steg"})
    assert read_alt_text(photo) == metadata.ExistingText("Sunset at the pier", DESCRIPTION)
    assert read_alt_text(photo).label == "XMP description"  # type: ignore[union-attr]
    assert write_alt_text(photo, CAPTION) is Outcome.SKIPPED_EXISTS

    assert write_alt_text(photo, CAPTION, overwrite=True) is Outcome.WRITTEN
    after = independent_read(photo)
    assert after["description"] == {"x-default": CAPTION, "de-DE": "Sonnenuntergang am Steg"}
    assert after["keywords"] == KEYWORDS


def test_exif_only_description_is_read_but_camera_placeholders_are_not(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, "jpeg", description="Grandma's garden", name="garden")
    assert read_alt_text(photo) == metadata.ExistingText("Grandma's garden", EXIF_DESCRIPTION)
    assert write_alt_text(photo, CAPTION) is Outcome.SKIPPED_EXISTS

    camera = make_photo(tmp_path, "jpeg", description="OLYMPUS DIGITAL CAMERA         ", name="camera")
    assert read_alt_text(camera) is None
    assert write_alt_text(camera, CAPTION) is Outcome.WRITTEN
    assert independent_read(camera)["exif_description"] == CAPTION


def test_iptc_iim_caption_is_read_and_kept_in_step(tmp_path: Path) -> None:
    """Older JPEG tools keep caption and keywords in IPTC IIM; both are read and survive."""
    photo = make_photo(tmp_path, "jpeg")
    image = exiv2.ImageFactory.open(str(photo))
    image.readMetadata()
    iptc = image.iptcData()
    iptc["Iptc.Application2.Caption"] = "Old IIM caption"
    for word in ("harbour", "boats"):
        iptc.add(exiv2.IptcKey("Iptc.Application2.Keywords"), exiv2.StringValue(word))
    image.writeMetadata()
    del image
    assert read_alt_text(photo) == metadata.ExistingText("Old IIM caption", IPTC_CAPTION)
    assert write_alt_text(photo, CAPTION) is Outcome.SKIPPED_EXISTS

    assert write_alt_text(photo, "un café au port", overwrite=True) is Outcome.WRITTEN
    image = exiv2.ImageFactory.open(str(photo))
    image.readMetadata()
    iptc = image.iptcData()
    assert [d.toString() for d in iptc if d.key() == "Iptc.Application2.Keywords"] == ["harbour", "boats"]
    assert iptc["Iptc.Application2.Caption"].toString() == "un café au port"
    assert read_alt_text(photo) == metadata.ExistingText("un café au port", ALT_TEXT)


def test_unicode_and_long_alt_text_warns(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, "webp")
    long_text = "a small café terrace with " + "red and white umbrellas, " * 12
    warnings: list[str] = []
    assert write_alt_text(photo, long_text, warnings=warnings) is Outcome.WRITTEN
    assert len(warnings) == 1 and "250" in warnings[0]
    assert read_alt_text(photo) == metadata.ExistingText(long_text.strip(), ALT_TEXT)
    assert independent_read(photo)["alt_text"] == {"x-default": long_text.strip()}
    assert alt_text_warning(CAPTION) is None


def test_a_failure_at_any_step_leaves_the_original_byte_identical(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    photo = make_photo(tmp_path, "jpeg")
    original = photo.read_bytes()

    def boom(*args: object) -> None:
        raise WriteError(photo, "verification failed (simulated)")

    with monkeypatch.context() as m:
        m.setattr(metadata, "_verify", boom)
        with pytest.raises(WriteError, match="simulated"):
            write_alt_text(photo, CAPTION)
    assert photo.read_bytes() == original and leftovers(tmp_path) == []

    def no_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(metadata.os, "replace", no_replace)
        with pytest.raises(WriteError, match="No space left"):
            write_alt_text(photo, CAPTION)
    assert photo.read_bytes() == original and leftovers(tmp_path) == []


def test_verification_catches_lost_fields_and_changed_pixels(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The verify step is real: a write that drops a field or touches pixels is refused."""
    photo = make_photo(tmp_path, "png")
    original = photo.read_bytes()
    real_set_fields = metadata._set_fields

    def set_fields_and_lose_make(image: object, text: str) -> set[str]:
        written = real_set_fields(image, text)
        image.exifData().erase(image.exifData().findKey(exiv2.ExifKey("Exif.Image.Make")))  # type: ignore[attr-defined]
        return written

    with monkeypatch.context() as m:
        m.setattr(metadata, "_set_fields", set_fields_and_lose_make)
        with pytest.raises(WriteError, match="lose Exif.Image.Make"):
            write_alt_text(photo, CAPTION)
    assert photo.read_bytes() == original

    digests = iter(["before", "after"])  # the undecoded bytes differ: both files are decoded
    hashes = iter(["before", "after"])
    with monkeypatch.context() as m:
        m.setattr(metadata, "image_data_digest", lambda file: next(digests))
        m.setattr(metadata, "_pixel_hash", lambda file, path: next(hashes))
        with pytest.raises(WriteError, match="pixels"):
            write_alt_text(photo, CAPTION)
    assert photo.read_bytes() == original and leftovers(tmp_path) == []


KILL_SCRIPT = """
import os, signal, sys
from captioner import metadata
real_fsync = metadata._fsync
def fsync_then_die(file):
    real_fsync(file)
    os.kill(os.getpid(), signal.SIGKILL)  # killed with the written copy ready, before the replace
metadata._fsync = fsync_then_die
metadata.write_alt_text(sys.argv[1], "a caption that never lands")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX kill")
def test_a_kill_mid_write_leaves_the_original(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, "tiff")
    original = photo.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(photo)], cwd=ROOT, timeout=120,
                          capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert photo.read_bytes() == original
    assert read_alt_text(photo) is None
    # what a kill leaves is a hidden temporary file that folder scans do not take for a photo
    from captioner.files import find_images
    assert find_images([tmp_path]).images == [photo]


def test_unsupported_formats_and_read_only_files_get_clear_messages(tmp_path: Path) -> None:
    for fmt in ("BMP", "GIF"):
        path = tmp_path / f"old.{fmt.lower()}"
        source_pixels().convert("RGB" if fmt == "BMP" else "P").save(path, fmt)
        before = path.read_bytes()
        with pytest.raises(WriteError, match="supported: JPEG, PNG, WebP and TIFF"):
            write_alt_text(path, CAPTION)
        assert path.read_bytes() == before
        assert read_alt_text(path) is None

    photo = make_photo(tmp_path, "jpeg")
    photo.chmod(0o444)
    try:
        with pytest.raises(WriteError, match="read-only"):
            write_alt_text(photo, CAPTION)
    finally:
        photo.chmod(0o644)
    assert read_alt_text(photo) is None

    with pytest.raises(WriteError, match="empty"):
        write_alt_text(photo, "   ")
    with pytest.raises(WriteError, match="not found"):
        write_alt_text(tmp_path / "missing.jpg", CAPTION)


def test_damaged_xmp_is_not_overwritten(tmp_path: Path) -> None:
    photo = tmp_path / "damaged.jpg"
    bad = b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    source_pixels().save(photo, "JPEG", xmp=bad)
    before = photo.read_bytes()
    with pytest.raises(WriteError, match="damaged"):
        write_alt_text(photo, CAPTION)
    assert photo.read_bytes() == before


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_write_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, "png")
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    assert write_alt_text(link, CAPTION) is Outcome.WRITTEN
    assert link.is_symlink()
    assert read_alt_text(photo) == metadata.ExistingText(CAPTION, ALT_TEXT)


def test_cli_write_metadata(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from captioner.cli import main
    from tests.synthetic import make_shapes_folder

    shapes = make_shapes_folder(tmp_path / "shapes", per_class=1, seed=5, sidecars=False)[:3]
    photos = []
    for i, (path, _) in enumerate(shapes):
        fmt = ["jpeg", "png", "webp"][i]
        target = tmp_path / f"shape{i}{FORMATS[fmt]}"
        with Image.open(path) as img:
            img.convert("RGB").save(target, quality=95, exif=camera_exif().tobytes())
        photos.append(target)
    args = ["caption", *map(str, photos), "--write-metadata", "--model", str(tiny_bundle),
            "--provider", "cpu", "--quiet"]

    assert main(args) == 0
    out, err = capsys.readouterr()
    captions = dict(line.split("\t") for line in out.splitlines())
    for photo in photos:
        assert read_alt_text(photo) == metadata.ExistingText(captions[str(photo)], ALT_TEXT)
        assert independent_read(photo)["alt_text"] == {"x-default": captions[str(photo)]}
    assert "alt text: 3 written, 0 kept" in err

    # a photo whose alt text someone wrote by hand keeps it, and the CLI says what it holds
    assert write_alt_text(photos[0], "hand-written alt text", overwrite=True) is Outcome.WRITTEN
    assert main(args) == 0
    _, err = capsys.readouterr()
    assert f'kept existing alt text: {photos[0]}: IPTC alt text: "hand-written alt text"' in err
    assert "alt text: 0 written, 3 kept" in err
    assert read_alt_text(photos[0]).text == "hand-written alt text"  # type: ignore[union-attr]

    assert main([*args, "--overwrite"]) == 0
    _, err = capsys.readouterr()
    assert "alt text: 3 written, 0 kept" in err
    assert read_alt_text(photos[0]).text == captions[str(photos[0])]  # type: ignore[union-attr]

    # an unsupported file fails alone, with a clear line, and the exit code says so
    bmp = tmp_path / "old.bmp"
    with Image.open(shapes[0][0]) as img:
        img.convert("RGB").save(bmp)
    assert main(["caption", str(bmp), str(photos[1]), "--write-metadata", "--model", str(tiny_bundle),
                 "--provider", "cpu", "--quiet"]) == 1
    _, err = capsys.readouterr()
    assert f"error: {bmp}: cannot write alt text into this kind of file" in err


# -- hostile input and races (issue 13) --------------------------------------------------------

RACE_SCRIPT = """
import sys, time
from pathlib import Path
from captioner.metadata import write_alt_text
text, start, photos = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
time.sleep(max(0.0, start - time.time()))  # both runs start together
for photo in photos:
    print(photo, write_alt_text(photo, text).name, flush=True)
"""


def test_two_runs_at_once_never_replace_each_others_alt_text(tmp_path: Path) -> None:
    """Two writers, no --overwrite: each photo gets exactly one run's text, and only the run
    whose text it holds may say it wrote it (the other must say it kept the existing one)."""
    photos = [make_photo(tmp_path, "png", name=f"p{i:02d}") for i in range(30)]
    start = __import__("time").time() + 3.0
    procs = {text: subprocess.Popen([sys.executable, "-c", RACE_SCRIPT, text, str(start),
                                     *map(str, photos)], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for text in ("written by run A", "written by run B")}
    reports = {}
    for text, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports[text] = dict(line.rsplit(" ", 1) for line in out.splitlines())
    for photo in photos:
        held = read_alt_text(photo)
        assert held is not None
        claims = [text for text, report in reports.items() if report[str(photo)] == "WRITTEN"]
        assert claims == [held.text], (photo.name, claims, held.text)
    assert leftovers(tmp_path) == []


def test_a_photo_whose_name_is_near_the_limit_gets_its_alt_text(tmp_path: Path) -> None:
    name = "p" * (255 - len(".png"))  # the longest name the file system allows
    photo = make_photo(tmp_path, "png", name=name)
    assert write_alt_text(photo, CAPTION) is Outcome.WRITTEN
    assert read_alt_text(photo) == metadata.ExistingText(CAPTION, ALT_TEXT)
    assert leftovers(tmp_path) == []


def apng(path: Path, frames: int, changed_frame: int | None = None) -> Path:
    rng = np.random.default_rng(4)
    images = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(frames)]
    if changed_frame is not None:
        images[changed_frame].putpixel((3, 3), (1, 2, 3))
    images[0].save(path, save_all=True, append_images=images[1:], duration=40)
    return path


def test_alt_text_into_a_long_animation_does_not_decode_every_frame(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    photo = apng(tmp_path / "anim.png", 1500)
    pixels = pixel_hash(photo)
    decoded: list[Path] = []
    real = metadata._pixel_hash
    monkeypatch.setattr(metadata, "_pixel_hash", lambda file, path: decoded.append(file) or real(file, path))
    assert write_alt_text(photo, CAPTION) is Outcome.WRITTEN
    assert decoded == []  # the pixel-making chunks were compared byte for byte instead
    assert pixel_hash(photo) == pixels
    with Image.open(photo) as img:
        assert img.n_frames == 1500
    assert read_alt_text(photo) == metadata.ExistingText(CAPTION, ALT_TEXT)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_undecoded_pixel_digest_ignores_metadata_and_sees_any_pixel(tmp_path: Path, fmt: str) -> None:
    from captioner.image_data import image_data_digest

    photo = make_photo(tmp_path, fmt)
    digest = image_data_digest(photo)
    assert digest is not None
    bare = tmp_path / f"bare{FORMATS[fmt]}"
    shutil.copy(photo, bare)
    assert write_alt_text(photo, CAPTION) is Outcome.WRITTEN  # metadata only: same digest
    assert image_data_digest(photo) == digest
    with Image.open(bare) as img:  # one pixel changed, same metadata: another digest
        changed = img.convert("RGB")
    changed.putpixel((5, 5), tuple(255 - v for v in changed.getpixel((5, 5))))
    changed.save(bare, quality=92, lossless=fmt == "webp")
    assert image_data_digest(bare) != digest


def test_a_changed_frame_deep_in_an_animation_is_caught(tmp_path: Path) -> None:
    original = apng(tmp_path / "a.png", 40)
    changed = apng(tmp_path / "b.png", 40, changed_frame=33)
    from captioner.image_data import image_data_digest

    with pytest.raises(WriteError, match="pixels"):
        metadata._verify_pixels(original, changed, original, image_data_digest(original))
    metadata._verify_pixels(original, original, original, image_data_digest(original))
