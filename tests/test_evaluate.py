"""Evaluation through captioner/: scores land in the manifest, the length penalty is chosen on val."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from captioner.bundle import load_bundle
from tests.synthetic import make_shapes_folder
from training.data import CaptionSet

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap needs Java")


def shapes_split(root: Path, seed: int) -> CaptionSet:
    pairs = make_shapes_folder(root, per_class=1, seed=seed, sidecars=False)
    return CaptionSet([p for p, _ in pairs], [[c, c.replace("a ", "one ", 1)] for _, c in pairs])


def test_scores_and_length_penalty_go_into_the_manifest(tiny_bundle: Path, tmp_path: Path) -> None:
    from training.evaluate import choose_length_penalty, evaluate_bundle

    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    chosen = choose_length_penalty(bundle, shapes_split(tmp_path / "val", 41), 3, [0.0, 1.0])
    manifest = load_bundle(bundle).manifest
    assert chosen in (0.0, 1.0) and manifest.length_penalty == chosen
    tried = manifest.training["length_penalty_choice"]["CIDEr"]
    assert set(tried) == {"0.0", "1.0"} and tried[str(chosen)] == max(tried.values())

    scores = evaluate_bundle(bundle, shapes_split(tmp_path / "test", 42), [1, 3], tmp_path)
    on_disk = load_bundle(bundle).manifest.scores
    assert on_disk == json.loads(json.dumps(scores))
    for beam in ("beam_1", "beam_3"):  # the shapes model names colour and shape right
        assert on_disk[beam]["BLEU-1"] > 0.8 and on_disk[beam]["CIDEr"] > 1.0, on_disk[beam]
        assert on_disk[beam]["unk_count"] == 0 and on_disk[beam]["repeated_phrase_count"] == 0
    assert (tmp_path / "contact_sheet.png").is_file()
    captions = json.loads((tmp_path / "test_captions_beam3.json").read_text())
    assert len(captions) == 12 and all(c.startswith("a ") for c in captions.values())


def test_cli_confidence_is_ranked_against_each_photos_own_cider(tmp_path: Path) -> None:
    """Confidences that follow caption quality give Spearman 1, reversed ones -1, pooled
    across runs (the JSON's order does not matter: photos are matched by file name)."""
    from training.score_cli import confidence_spearman

    refs = [["a red circle on grass", "a red circle"], ["a blue square on sand", "a blue square"],
            ["a green star in snow", "a green star"], ["a black dog on a beach", "a black dog"]]
    paths = [tmp_path / f"{i}.jpg" for i in range(4)]
    captions = ["a red circle on grass", "a blue square", "a green star on a road", "a cat in a tree"]
    good = [{"file": str(p), "caption": c, "confidence": q}
            for p, c, q in zip(paths, captions, [0.9, 0.7, 0.4, 0.1])]
    first = (list(reversed(good[:2])), CaptionSet(paths[:2], refs[:2]))
    second = (good[2:], CaptionSet(paths[2:], refs[2:]))
    assert confidence_spearman([first, second]) == pytest.approx(1.0)
    flipped = [dict(r, confidence=1 - r["confidence"]) for r in good]
    assert confidence_spearman([(flipped, CaptionSet(paths, refs))]) == pytest.approx(-1.0)
