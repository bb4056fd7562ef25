"""Writers: sidecars are never overwritten unless asked; JSON/CSV round-trip; atomic writes;
nothing that is not a caption file is ever replaced; CSV cells never start a formula."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from captioner.errors import WriteError
from captioner.sniff import Replaceable, replace_refusal, sniff_kind
from captioner.writers import (
    CaptionRecord,
    Outcome,
    atomic_write_bytes,
    atomic_write_text,
    csv_cell,
    read_sidecar,
    to_csv,
    to_json,
    write_csv,
    write_json,
    write_sidecar,
)


def test_sidecar_is_kept_unless_overwrite(tmp_path: Path) -> None:
    image = tmp_path / "photo.jpg"
    assert write_sidecar(image, "a dog runs") is Outcome.WRITTEN
    assert read_sidecar(image) == "a dog runs"
    assert write_sidecar(image, "a cat sits") is Outcome.SKIPPED_EXISTS
    assert read_sidecar(image) == "a dog runs"
    assert write_sidecar(image, "a cat sits", overwrite=True) is Outcome.WRITTEN
    assert (tmp_path / "photo.txt").read_text() == "a cat sits\n"


def test_json_and_csv_round_trip(tmp_path: Path) -> None:
    records = [CaptionRecord(tmp_path / "a.jpg", 'a "quoted", caption', -0.5, [("x", -0.5)]),
               CaptionRecord(tmp_path / "b.jpg", "ünïcode caption", None)]
    write_json(tmp_path / "out.json", records)
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [d["caption"] for d in data] == [r.caption for r in records]
    assert data[0]["alternatives"][0] == {"caption": "x", "score": -0.5}
    write_csv(tmp_path / "out.csv", records)
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["caption"] for r in rows] == [r.caption for r in records]
    assert write_csv(tmp_path / "out.csv", []) is Outcome.SKIPPED_EXISTS


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    for i in range(5):
        atomic_write_text(target, f"version {i}")
    assert target.read_text() == "version 4"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_overwrite_never_replaces_a_photo_or_a_binary_file(tmp_path: Path) -> None:
    """--json a.jpg --overwrite, a photo named p.txt: what the tool did not write is kept."""
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(100))
    with pytest.raises(WriteError, match="is a JPEG image, not a caption file"):
        write_json(photo, [CaptionRecord(photo, "a dog")], overwrite=True)
    blob = tmp_path / "data.csv"
    blob.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(WriteError, match="binary data"):
        write_csv(blob, [], overwrite=True)
    named_txt = tmp_path / "p.txt"
    named_txt.write_bytes(photo.read_bytes())
    with pytest.raises(WriteError, match="is the photo itself"):
        write_sidecar(named_txt, "a cat", overwrite=True)
    assert photo.read_bytes()[:3] == named_txt.read_bytes()[:3] == b"\xff\xd8\xff"
    assert blob.read_bytes() == bytes(range(256)) * 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "data.csv", "p.txt"]


def test_text_and_empty_files_may_be_replaced(tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_bytes("file,caption\ncaf\xe9.jpg,a dog\n".encode("latin-1"))  # a name that is not UTF-8
    assert write_csv(old, [], overwrite=True) is Outcome.WRITTEN
    empty = tmp_path / "x.srt"
    empty.write_bytes(b"")
    assert atomic_write_text(empty, "1\n") is True
    assert replace_refusal(tmp_path / "missing.txt") is None


def test_sniffing_never_opens_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    assert "not a regular file" in (replace_refusal(fifo) or "")
    with pytest.raises(WriteError, match="not a regular file"):
        write_json(fifo, [], overwrite=True)


@pytest.mark.parametrize(("head", "kind"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "a PNG image"),
    (b"\x00\x00\x00\x18ftypmp42", "a video or HEIF/AVIF image"),
    (b"\x1aE\xdf\xa3\x01\x00", "a Matroska/WebM video"), (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "a WebP image"),
    (b"P6\n2 2\n255\n", "a Netpbm image"), (b"1\n00:00:00,000 --> 00:00:01,000\nhi\n", "text"),
    (b"WEBVTT\n", "text"), (b'[{"file": "a.jpg"}]', "text"), (b"", "empty"),
])
def test_sniff_kinds(head: bytes, kind: str) -> None:
    assert sniff_kind(head) == kind


def test_thumbnails_replace_only_jpegs(tmp_path: Path) -> None:
    thumb = tmp_path / "0001.jpg"
    jpeg = b"\xff\xd8\xff\xdb" + bytes(50)
    assert atomic_write_bytes(thumb, jpeg, True, Replaceable.JPEG) is True
    assert atomic_write_bytes(thumb, jpeg + b"\x01", True, Replaceable.JPEG) is True
    notes = tmp_path / "0002.jpg"
    notes.write_text("my notes\n")
    with pytest.raises(WriteError, match="not a thumbnail"):
        atomic_write_bytes(notes, jpeg, True, Replaceable.JPEG)
    assert notes.read_text() == "my notes\n"


def test_csv_cells_cannot_start_a_formula(tmp_path: Path) -> None:
    cells = [("=HYPERLINK(1).jpg", "+a dog"), ("@SUM.jpg", "-x"), ("\tx.jpg", "\rcr"), ("ok.jpg", "a cat")]
    records = [CaptionRecord(Path(name), caption, -0.25) for name, caption in cells]
    write_csv(tmp_path / "out.csv", records)
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == ["'=HYPERLINK(1).jpg", "'@SUM.jpg", "'\tx.jpg", "ok.jpg"]
    assert [r["caption"] for r in rows] == ["'+a dog", "'-x", "'\rcr", "a cat"]
    assert {r["score"] for r in rows} == {"-0.2500"}  # numbers are not text: left as they are
    assert csv_cell("a = b") == "a = b"


def test_one_place_says_what_a_record_holds() -> None:
    record = CaptionRecord(Path("a.jpg"), "a dog", None)
    assert list(record.fields()) == list(CaptionRecord.FIELDS)
    assert to_csv([record]).splitlines()[0] == ",".join(CaptionRecord.FIELDS)
    assert json.loads(to_json([record])) == [{"file": "a.jpg", "caption": "a dog", "confidence": None,
                                                "tags": []}]


def test_records_carry_tags_and_confidence_in_json_and_csv(tmp_path: Path) -> None:
    from captioner.tags import Tag

    record = CaptionRecord(Path("a.jpg"), "a dog on a bed", -0.31, (), 0.8123456,
                           (Tag("dog", 0.91234), Tag("bed", 0.25)))
    (item,) = json.loads(to_json([record]))
    assert item["confidence"] == 0.8123 and item["tags"] == [{"tag": "dog", "p": 0.9123},
                                                             {"tag": "bed", "p": 0.25}]
    write_csv(tmp_path / "out.csv", [record])
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["tags"] == "dog; bed" and row["confidence"] == "0.8123"


def test_a_long_name_in_a_script_of_wide_characters_gets_its_caption(tmp_path: Path) -> None:
    """80 CJK characters are 240 bytes: the temporary name is shortened in bytes, not characters."""
    photo = tmp_path / ("写" * 80 + ".jpg")
    photo.write_bytes(b"\xff\xd8\xff")
    assert write_sidecar(photo, "a dog") is Outcome.WRITTEN
    assert read_sidecar(photo) == "a dog"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([photo.name, "写" * 80 + ".txt"])
