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

import numpy as np
import pytest
from PIL import Image

from captioner import keywords as keywords_module
from captioner.captioner import CaptionResult
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
from captioner.tags import Tag
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
    assert not plan_keywords(Keywords(), ["ca\tt", "\x1b[2J", "x\udce9"], "image/jpeg").changes
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


# -- the CLI ---------------------------------------------------------------------------------------

DOG_PHOTO = "1001773457_577c3a7d70.jpg"  # two dogs: a tagged model's best tag is "dog"


def build_tagged_bundle(target: Path, photo: Path, kind: str = "sat") -> Path:
    """A small random decoder that reads tags, exported over efficientnet_lite0 (as
    tests/test_tags.py does): captions are noise, tags are the encoder's real ImageNet tags."""
    import torch

    from export.bundle_writer import ExportConfig, write_bundle
    from training.model import DecoderConfig, build_decoder
    from training.tags import load_tag_table
    from training.text_prior import caption_vocabulary

    table = load_tag_table()
    vocab = caption_vocabulary(["a dog runs on the grass"], [], 1, table.words)
    torch.manual_seed(0)
    cfg = DecoderConfig(len(vocab), 1280, 49, 32, 32, 32, 0.0, tag_count=len(table.words), kind=kind)
    decoder = build_decoder(cfg)
    decoder.set_tag_words([vocab.index[w] for w in table.words])
    return write_bundle(decoder, vocab, "efficientnet_lite0", 6, target,
                        ExportConfig(name="tagged", parity_images=[photo]))


def session_tagged_bundle(tmp_path_factory: pytest.TempPathFactory, flickr_dir: Path) -> Path:
    """The tagged bundle, built once a session (~30 s) for every module that asks for it."""
    target = tmp_path_factory.getbasetemp() / "tagged-bundle"
    if not (target / "manifest.json").is_file():
        pytest.importorskip("torch")
        build_tagged_bundle(target, flickr_dir / "images" / DOG_PHOTO)
    return target


@pytest.fixture(scope="session")
def tagged_bundle(tmp_path_factory: pytest.TempPathFactory, flickr_dir: Path) -> Path:
    return session_tagged_bundle(tmp_path_factory, flickr_dir)


def cli(*args: str) -> list[str]:
    return ["caption", *args, "--provider", "cpu", "--variant", "fp32", "--quiet"]


def test_cli_tags_column_keywords_in_photos_and_json(tagged_bundle: Path, flickr_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from captioner.cli import main

    jpeg = tmp_path / "dogs.jpg"
    shutil.copyfile(flickr_dir / "images" / DOG_PHOTO, jpeg)
    png = tmp_path / "dogs.png"
    with Image.open(jpeg) as img:
        img.save(png)
    set_iim_keywords(jpeg, ["Urlaub"])  # someone's own keyword: it must survive
    out_json = tmp_path / "c.json"
    code = main(cli(str(jpeg), str(png), "--model", str(tagged_bundle), "--tags", "--write-metadata",
                    "--json", str(out_json), "--csv", str(tmp_path / "c.csv")))
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert [len(r) for r in rows] == [3, 3]
    tags = rows[0][2].split(", ")
    assert tags[0] == "dog" and rows[1][2].split(", ")[0] == "dog"
    assert read_alt_text(jpeg) == ExistingText(rows[0][1], ALT_TEXT)
    assert read_keywords(jpeg) == ("Urlaub", *tags)
    assert read_keywords(png)[:1] == ("dog",)
    assert "alt text: 2 written, 0 kept" in err and "keywords: " in err
    records = json.loads(out_json.read_text())
    assert [t["tag"] for t in records[0]["tags"]] == tags and records[0]["tags"][0]["p"] > 0.5
    assert records[0]["confidence"] is None  # this bundle has no calibration: no number pretends
    assert (tmp_path / "c.csv").read_text().splitlines()[1].split(",")[-1] == "; ".join(tags)
    if EXIFTOOL:
        seen = exiftool_read(jpeg)
        assert seen["iptc"] == ["Urlaub", *tags] and seen["subject"] == ["Urlaub", *tags]
        assert seen["alt_text"] == rows[0][1]

    # --keywords-only on a photo with alt text of its own: the alt text is left alone
    plain = tmp_path / "own.jpg"
    shutil.copyfile(flickr_dir / "images" / DOG_PHOTO, plain)
    write_metadata(plain, "my own words", ["pets"])
    assert main(cli(str(plain), "--model", str(tagged_bundle), "--keywords-only", "--overwrite")) == 0
    _, err = capsys.readouterr()
    assert read_alt_text(plain) == ExistingText("my own words", ALT_TEXT)
    assert read_keywords(plain) == ("pets", *tags)
    assert "alt text:" not in err and f"keywords: {len(tags)} added to 1 photos" in err


class FakeCaptioner:
    """Stands in for the model where only the results matter: captions, confidences, tags."""

    def __init__(self, results: dict[str, tuple[str, float | None, list[Tag]]]) -> None:
        self.results = results

    def caption_files(self, paths, options=None, batch_size=16):  # noqa: ANN001, ANN201
        for path in paths:
            text, confidence, tags = self.results[Path(path).name]
            yield Path(path), CaptionResult(text, text.split(), -0.5, [(text, -0.5)],
                                            np.zeros((len(text.split()), 2, 2), np.float32),
                                            tags, confidence)


def test_cli_min_confidence_holds_doubtful_captions_back_from_every_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from captioner.cli import main

    fake = FakeCaptioner({
        "sure.png": ("a dog with a ball", 0.9, [Tag("dog", 0.8), Tag("ball", 0.3)]),
        "doubt.png": ("a man on a wall", 0.2, [Tag("bed", 0.4)]),
        "plain.png": ("a field", None, []),  # an uncalibrated model: never held back
        "odd.png": ("a cat", 0.7, [Tag("ca\tt\x1b[2J", 0.5)]),  # a tag is escaped like the rest
    })
    monkeypatch.setattr("captioner.cli.caption.load_captioner", lambda args: fake)
    photos = []
    for i, name in enumerate(fake.results):
        photos.append(tmp_path / name)
        Image.new("RGB", (16, 16), (40 * i, 80, 120)).save(photos[-1])
    out_json, out_csv = tmp_path / "c.json", tmp_path / "c.csv"
    code = main(["caption", *map(str, photos), "--min-confidence", "0.5", "--tags", "--sidecar",
                 "--write-metadata", "--json", str(out_json), "--csv", str(out_csv), "--quiet"])
    out, err = capsys.readouterr()

    assert code == 0, err  # low confidence is not a failure
    assert out.splitlines() == [f"{photos[0]}\ta dog with a ball\tdog, ball", f"{photos[2]}\ta field\t",
                                f"{photos[3]}\ta cat\tca\\tt\\x1b[2J"]
    assert f'low confidence: {photos[1]}: 0.20 < 0.5, not written: "a man on a wall"' in err
    assert "3 captioned, 1 low confidence, 1 without a confidence (written), 0 skipped, 0 failed" in err
    doubt = photos[1]
    assert not doubt.with_suffix(".txt").exists()
    assert read_alt_text(doubt) is None and read_keywords(doubt) == ()
    records = json.loads(out_json.read_text())
    assert [r["file"] for r in records] == [str(p) for p in photos if p != doubt]
    assert str(doubt) not in out_csv.read_text()
    assert records[0]["confidence"] == 0.9 and records[0]["tags"] == [{"tag": "dog", "p": 0.8},
                                                                       {"tag": "ball", "p": 0.3}]
    assert read_keywords(photos[0]) == ("dog", "ball")
    assert read_keywords(photos[3]) == ()  # XMP cannot hold a control character: not written
    assert "keywords: 2 added to 1 photos, 1 photos without tags" in err

    # without --min-confidence nothing is held back and the summary is as before
    assert main(["caption", str(doubt), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{doubt}\ta man on a wall\n" and err.strip().endswith("1 captioned, 0 skipped, 0 failed")


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "high"])
def test_cli_min_confidence_out_of_range_is_one_line_and_exit_2(
        value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from captioner.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["caption", "x.jpg", "--min-confidence", value])
    assert exit_.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
