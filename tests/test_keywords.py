"""Tags written into photos as keywords (XMP dc:subject, IPTC Keywords), read back by the
project, by Pillow's XMP and by exiftool where it is installed; keywords already in a photo
always survive, and the CLI's --tags, --min-confidence and --keywords-only (issue 17).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from captioner import keywords as keywords_module
from captioner.errors import WriteError
from captioner.keywords import IPTC_KEYWORDS, SUBJECT, Keywords, merged, plan_keywords
from captioner.metadata import (
    ALT_TEXT,
    ExistingText,
    MetadataWrite,
    read_alt_text,
    read_keywords,
    write_metadata,
)
from captioner.writers import Outcome
from tests.test_metadata import FORMATS, KEYWORDS, camera_exif, independent_read, make_photo, pixel_hash

exiv2 = pytest.importorskip("exiv2")

EXIFTOOL = shutil.which("exiftool") or ""
TAGS = ["dog", "sand", "Beach", "sea"]  # "Beach" is already there as "beach"
UNION = (*KEYWORDS, "sand", "sea")


def exiv2_keywords(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(XMP dc:subject, IPTC Keywords) as libexiv2 reads them."""
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    return keywords_module.read_back(image, SUBJECT), keywords_module.read_back(image, IPTC_KEYWORDS)


def exiftool_read(path: Path) -> dict:
    out = subprocess.run([EXIFTOOL, "-j", "-a", "-G1", "-XMP-dc:Subject", "-IPTC:Keywords",
                          "-XMP-iptcCore:AltTextAccessibility", "-XMP-dc:Description", str(path)],
                         capture_output=True, text=True, check=True).stdout
    found = json.loads(out)[0]

    def words(key: str) -> list[str]:
        value = found.get(key, [])
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    return {"subject": words("XMP-dc:Subject"), "iptc": words("IPTC:Keywords"),
            "alt_text": found.get("XMP-iptcCore:AltTextAccessibility")}


def set_iim_keywords(path: Path, words: list[str]) -> None:
    """IIM keywords as another tool would have left them."""
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    for word in words:
        datum = exiv2.Iptcdatum(exiv2.IptcKey(IPTC_KEYWORDS))
        datum.setValue(word)
        image.iptcData().add(datum)
    image.writeMetadata()


# -- the merge rule ------------------------------------------------------------------------------


def test_merge_keeps_what_is_there_and_adds_each_word_once() -> None:
    assert merged(["Beach", "dog"], ["dog", "beach", " sea ", "", "Sea", "sand"]) == (
        "Beach", "dog", "sea", "sand")
    plan = plan_keywords(Keywords(("beach",), ("Urlaub",)), ["dog", "BEACH"], "image/jpeg")
    assert plan.subject == ("beach", "Urlaub", "dog") and plan.iim == ("Urlaub", "beach", "dog")
    assert plan.added == ("dog",)
    png = plan_keywords(Keywords(("beach",)), ["dog"], "image/png")
    assert png.subject == ("beach", "dog") and png.iim is None  # IIM only in JPEG and TIFF
    assert not plan_keywords(Keywords(("beach",)), [], "image/jpeg").changes
    assert not plan_keywords(Keywords(("dog",), ("dog",)), ["Dog"], "image/jpeg").changes
    unreadable = plan_keywords(Keywords((), ("x",), iim_readable=False), ["dog"], "image/jpeg")
    assert unreadable.iim is None and unreadable.subject == ("x", "dog")
    long_word = "x" * 65
    assert plan_keywords(Keywords(), [long_word], "image/jpeg").iim is None  # IIM's 64-byte limit


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_keywords_round_trip_and_existing_ones_survive(tmp_path: Path, fmt: str) -> None:
    photo = make_photo(tmp_path, fmt)  # camera EXIF, GPS, ICC and the keywords beach, dog, summer
    before, pixels = independent_read(photo), pixel_hash(photo)
    assert read_keywords(photo) == tuple(KEYWORDS)

    result = write_metadata(photo, None, TAGS)

    assert result == MetadataWrite(None, ("sand", "sea"))
    assert read_keywords(photo) == UNION
    subject, iim = exiv2_keywords(photo)
    assert subject == UNION
    assert iim == (UNION if fmt in ("jpeg", "tiff") else ())
    after = independent_read(photo)
    assert after["keywords"] == list(UNION)  # Pillow + xml.etree, without libexiv2
    assert read_alt_text(photo) is None and after["alt_text"] == {}  # no alt text was asked for
    assert pixel_hash(photo) == pixels
    for field in ("make", "model", "datetime_original", "gps", "icc"):
        assert after[field] == before[field], field
    if EXIFTOOL:
        seen = exiftool_read(photo)
        assert seen["subject"] == list(UNION)
        assert seen["iptc"] == (list(UNION) if fmt in ("jpeg", "tiff") else [])


@pytest.mark.skipif(not EXIFTOOL, reason="exiftool is not installed")
@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_exiftool_sees_alt_text_and_keywords_together(tmp_path: Path, fmt: str) -> None:
    photo = make_photo(tmp_path, fmt)
    result = write_metadata(photo, "a brown dog on the beach", ["dog", "café"])
    assert result == MetadataWrite(Outcome.WRITTEN, ("café",))
    seen = exiftool_read(photo)
    assert seen["alt_text"] == "a brown dog on the beach"
    assert seen["subject"] == [*KEYWORDS, "café"]
    if fmt == "jpeg":  # the UTF-8 escape is set, so exiftool reads café without -charset
        assert seen["iptc"] == [*KEYWORDS, "café"]


def test_iim_keywords_of_another_tool_survive_and_both_families_hold_all(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, "jpeg")
    set_iim_keywords(photo, ["Urlaub", "Familie", "dog"])
    assert read_keywords(photo) == (*KEYWORDS, "Urlaub", "Familie")

    assert write_metadata(photo, None, ["dog", "sand"]).keywords_added == ("sand",)

    subject, iim = exiv2_keywords(photo)
    assert subject == (*KEYWORDS, "Urlaub", "Familie", "sand")
    assert iim == ("Urlaub", "Familie", "dog", "beach", "summer", "sand")
    if EXIFTOOL:
        assert exiftool_read(photo)["iptc"] == list(iim)


def test_keywords_only_leaves_alt_text_alone_and_kept_alt_text_still_gets_keywords(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, "png", xmp_description={"x-default": "Sunset at the pier"})
    assert write_metadata(photo, None, ["pier"]) == MetadataWrite(None, ("pier",))
    assert read_alt_text(photo) == ExistingText("Sunset at the pier", "Xmp.dc.description")
    assert independent_read(photo)["alt_text"] == {}  # no alt text was made up from it

    # alt text that is there is kept without --overwrite, and the keywords still go in
    result = write_metadata(photo, "a pier at sunset", ["sunset"])
    assert result == MetadataWrite(Outcome.SKIPPED_EXISTS, ("sunset",))
    assert read_alt_text(photo) == ExistingText("Sunset at the pier", "Xmp.dc.description")
    assert read_keywords(photo) == (*KEYWORDS, "pier", "sunset")
    # and with it, both are written in one replace
    result = write_metadata(photo, "a pier at sunset", ["sea"], overwrite=True)
    assert result == MetadataWrite(Outcome.WRITTEN, ("sea",))
    assert read_alt_text(photo) == ExistingText("a pier at sunset", ALT_TEXT)
    assert read_keywords(photo) == (*KEYWORDS, "pier", "sunset", "sea")


def test_nothing_new_touches_nothing(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, "jpeg")
    assert write_metadata(photo, "a dog", ["dog"]) == MetadataWrite(Outcome.WRITTEN, ())
    assert exiv2_keywords(photo)[1] == tuple(KEYWORDS)  # IIM made to hold the XMP keywords
    data, inode = photo.read_bytes(), photo.stat().st_ino
    assert write_metadata(photo, "a dog", ["DOG", "beach"], overwrite=True) == MetadataWrite(
        Outcome.WRITTEN, ())
    assert write_metadata(photo, "a cat", ["DOG"]) == MetadataWrite(Outcome.SKIPPED_EXISTS, ())
    assert write_metadata(photo, None, []) == MetadataWrite(None, ())
    assert photo.read_bytes() == data and photo.stat().st_ino == inode


def test_a_keyword_that_does_not_read_back_leaves_the_photo_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = make_photo(tmp_path, "jpeg")
    data = photo.read_bytes()
    monkeypatch.setattr("captioner.metadata.read_back", lambda image, key: ())
    with pytest.raises(WriteError, match="keywords did not read back as written"):
        write_metadata(photo, None, ["sand"])
    assert photo.read_bytes() == data
    assert not [p for p in tmp_path.iterdir() if "captioner-tmp" in p.name]


def test_unsupported_file_says_keywords(tmp_path: Path) -> None:
    bmp = tmp_path / "old.bmp"
    Image.new("RGB", (8, 8)).save(bmp)
    with pytest.raises(WriteError, match="cannot write keywords into this kind of file"):
        write_metadata(bmp, None, ["dog"])


RACE_SCRIPT = """
import sys, time
from captioner.metadata import write_metadata
word, start, photos = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
time.sleep(max(0.0, start - time.time()))  # both runs start together
for photo in photos:
    write_metadata(photo, None, [word])
"""


def test_two_runs_adding_keywords_at_once_lose_neither(tmp_path: Path) -> None:
    """The per-photo lock covers keywords too: without it the later replace would drop the
    other run's word."""
    photos = [tmp_path / f"p{i:02d}.jpg" for i in range(12)]
    for i, photo in enumerate(photos):
        Image.new("RGB", (32, 32), (i * 20, 90, 40)).save(photo, exif=camera_exif().tobytes())
    start = time.time() + 1.5
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    runs = [subprocess.Popen([sys.executable, "-c", RACE_SCRIPT, word, str(start), *map(str, photos)],
                             env=env)
            for word in ("alpha", "beta")]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    for photo in photos:
        assert sorted(read_keywords(photo)) == ["alpha", "beta"], photo
