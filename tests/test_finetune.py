"""Fine-tuning from a bundle (issue 20): the decoder rebuilt from the graphs, a fine-tune of the
tiny bundle with a new word, the too-few-photos refusal, and METEOR failing without a hang."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from captioner.bundle import load_bundle, write_manifest  # noqa: E402
from captioner.captioner import Captioner  # noqa: E402
from captioner.images import load_image, preprocess_batch  # noqa: E402
from export.finetune import MIN_PHOTOS, main  # noqa: E402
from export.from_bundle import decoder_from_bundle  # noqa: E402

PHOTOS = ("1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg", "1002674143_1b742ab4b8.jpg")


def step_difference(bundle: Path, photos: list[Path], steps: int = 6) -> float:
    """Largest |log-prob| (and h) difference between the rebuilt decoder's steps and
    onnxruntime's, fed the same inputs (the ORT encoder's outputs, ORT's own state)."""
    decoder, vocab, _, _ = decoder_from_bundle(bundle)
    cap = Captioner(bundle, provider="cpu", variant="fp32")
    batch = preprocess_batch([load_image(p) for p in photos], cap.bundle.manifest.input_spec)
    out = cap.encoder.run(None, {"image": batch})
    feats, keys, h, c = out[:4]
    tags = out[4] if decoder.cfg.tag_count else None
    token = np.full(len(photos), vocab.start_id, dtype=np.int64)
    worst = 0.0
    with torch.no_grad():
        for _ in range(steps):
            o_logp, o_h, o_c, _ = cap._step(token, h, c, feats, keys, tags)
            t_logp, t_h, _, _ = decoder.step(
                torch.from_numpy(token), torch.from_numpy(h), torch.from_numpy(c),
                torch.from_numpy(feats), torch.from_numpy(keys),
                None if tags is None else torch.from_numpy(tags))
            worst = max(worst, float(np.abs(o_logp - t_logp.numpy()).max()),
                        float(np.abs(o_h - t_h.numpy()).max()))
            token, h, c = o_logp.argmax(axis=1).astype(np.int64), o_h, o_c
    return worst


def test_rebuilt_decoder_steps_like_onnxruntime(tiny_bundle: Path, flickr_dir: Path) -> None:
    assert step_difference(tiny_bundle, [flickr_dir / "images" / p for p in PHOTOS]) <= 1e-4


def test_rebuilt_tagged_decoder_steps_like_onnxruntime(tmp_path_factory: pytest.TempPathFactory,
                                                        flickr_dir: Path) -> None:
    """The tagged model (attr_proj, copy gate, tag words read from tags.json)."""
    from tests.test_keywords import session_tagged_bundle

    bundle = session_tagged_bundle(tmp_path_factory, flickr_dir)
    assert decoder_from_bundle(bundle)[0].cfg.tag_count > 0
    assert step_difference(bundle, [flickr_dir / "images" / p for p in PHOTOS]) <= 1e-4


def test_graphs_without_scopes_are_mapped_by_a_fresh_export(tiny_bundle: Path, tmp_path: Path) -> None:
    """Node names cleared (another exporter): the generated-name MatMul weights are placed by
    shape and order against a fresh export, and the same weights come back."""
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    for name in ("encoder.onnx", "decoder_step.onnx"):
        model = onnx.load(str(copy / name))
        for node in model.graph.node:
            node.name = ""
        onnx.save(model, str(copy / name))
    write_manifest(copy, load_bundle(copy, verify=False).manifest)
    expected = decoder_from_bundle(tiny_bundle)[0].state_dict()
    rebuilt = decoder_from_bundle(copy)[0].state_dict()
    assert all(torch.equal(expected[k], rebuilt[k]) for k in expected)


def shapes_with_a_new_colour(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import synthetic

    monkeypatch.setitem(synthetic.COLOURS, "purple", (130, 30, 160))
    synthetic.make_shapes_folder(root, per_class=2, seed=3)


def test_finetune_tiny_bundle_learns_a_new_word(tiny_bundle: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    data, out = tmp_path / "photos", tmp_path / "mine"
    shapes_with_a_new_colour(data, monkeypatch)
    code = main(["--from", str(tiny_bundle), "--data", str(data), "--out", str(out), "--no-meteor",
                 "--epochs", "3", "--patience", "5", "--lr", "3e-3", "--beam", "1",
                 "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    bundle, source = load_bundle(out), load_bundle(tiny_bundle)
    assert bundle.vocab.words[: len(source.vocab)] == source.vocab.words  # old words, old ids
    assert "purple" in bundle.vocab.index and bundle.manifest.vocab_size == len(source.vocab) + 1
    scores = bundle.manifest.scores["finetune"]
    assert scores["images"] > 0 and "CIDEr" in scores["before"] and "CIDEr" in scores["after"]
    history = bundle.manifest.training["history"]
    assert history[-1]["train_loss"] < history[1]["train_loss"]  # it learned the folder
    assert bundle.manifest.training["new_words"] == ["purple"]
    assert "PASS" in bundle.manifest.training["parity"]
    decoder = decoder_from_bundle(out)[0]  # a fine-tuned bundle is again a starting point
    assert decoder.cfg.vocab_size == len(bundle.vocab)


def test_too_few_captioned_photos_is_one_line_and_exit_2(tiny_bundle: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "photos"
    data.mkdir()
    shutil.copyfile(Path(__file__).parent / "synthetic.py", data / "notes.txt")
    from tests.synthetic import draw_shape

    draw_shape("red", "circle", np.random.default_rng(0)).save(data / "uncaptioned.jpg")
    code = main(["--from", str(tiny_bundle), "--data", str(data), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "out").exists()
    assert f"no captioned photos found in {data} (need at least {MIN_PHOTOS}" in err
    assert "Traceback" not in err


def test_failed_meteor_returns_none_and_the_process_exits() -> None:
    """The issue's "could not convert string to float: b'Error: specify Meteor stats'": the
    Java scorer is closed and the process ends instead of hanging at exit."""
    if shutil.which("java") is None:
        pytest.skip("no Java for METEOR")
    code = ("from training.metrics import meteor_score; import json; "
            "print(json.dumps(meteor_score({}, {})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0 and json.loads(done.stdout) is None
    assert "METEOR left out" in done.stderr
