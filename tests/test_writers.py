"""Writers: sidecars are never overwritten unless asked; JSON/CSV round-trip; atomic writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from captioner.writers import (
    CaptionRecord,
    Outcome,
    atomic_write_text,
    read_sidecar,
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
