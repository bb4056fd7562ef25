"""What the app and export.finetune agree on (captioner/finetune_protocol.py), without torch:
progress lines both ways, the photo list, the held-out scores read back from a manifest."""

from __future__ import annotations

import json
from pathlib import Path

from captioner.finetune_protocol import (
    HeldOutScores,
    Progress,
    Stage,
    parse_progress,
    read_held_out_scores,
    read_photo_list,
    write_photo_list,
)


def test_progress_lines_round_trip_and_anything_else_is_not_progress() -> None:
    line = Progress(Stage.TRAINING, "epoch 3 of 15: loss 2.4", 1.7).line()
    assert parse_progress(line) == Progress(Stage.TRAINING, "epoch 3 of 15: loss 2.4", 1.0)  # clamped
    assert parse_progress(Progress(Stage.EXPORTING, "exporting").line()) == Progress(Stage.EXPORTING,
                                                                                      "exporting")
    for other in ("", "wrote models/mine", "{", "[1, 2]", '{"progress": "nonsense"}', '{"text": "x"}',
                  "Loaded pretrained weights for efficientnet-lite2"):
        assert parse_progress(other) is None
    assert parse_progress('{"progress": "training", "done": NaN}') == Progress(Stage.TRAINING, "", None)


def test_the_photo_list_keeps_listed_photos_with_a_caption_file(tmp_path: Path) -> None:
    photos = [tmp_path / f"{n}.jpg" for n in ("a", "b", "c", "gone")]
    for photo in photos[:3]:
        photo.write_bytes(b"jpeg")
    (tmp_path / "a.txt").write_text("a dog\n\n a cat \n")
    (tmp_path / "c.txt").write_text("\n")  # empty: nothing to learn
    (tmp_path / "gone.txt").write_text("a photo that was deleted\n")
    listed = tmp_path / "photos.txt"
    write_photo_list(listed, [*photos, photos[0]])
    assert read_photo_list(listed) == {photos[0]: ["a dog", "a cat"]}


def test_held_out_scores_are_read_back_from_the_manifest(tmp_path: Path) -> None:
    scores = HeldOutScores(60, 3, {"BLEU-4": 0.32, "CIDEr": 0.918, "METEOR": 0.27},
                           {"BLEU-4": 0.35, "CIDEr": 0.928})
    (tmp_path / "manifest.json").write_text(json.dumps({"scores": {"finetune": scores.to_json()}}))
    back = read_held_out_scores(tmp_path)
    assert back == scores and back.better() is True and back.better("METEOR") is None
    assert back.rows() == [("BLEU-4", 0.32, 0.35), ("CIDEr", 0.918, 0.928)]
    (tmp_path / "manifest.json").write_text(json.dumps({"scores": {}}))
    assert read_held_out_scores(tmp_path) is None and read_held_out_scores(tmp_path / "none") is None
