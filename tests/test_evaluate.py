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
