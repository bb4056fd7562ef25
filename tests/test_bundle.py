"""Bundle checks: a broken or mismatched bundle is refused with a message saying what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from captioner.bundle import load_bundle, sha256_file
from captioner.captioner import Captioner
from captioner.errors import BundleError


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def _edit_manifest(bundle: Path, change) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_good_bundle_loads(bundle_copy: Path) -> None:
    bundle = load_bundle(bundle_copy)
    assert len(bundle.vocab) == bundle.manifest.vocab_size
    assert set(bundle.manifest.files) >= {"encoder.onnx", "decoder_step.onnx", "vocab.json"}


def test_missing_file(bundle_copy: Path) -> None:
    (bundle_copy / "decoder_step.onnx").unlink()
    with pytest.raises(BundleError, match="missing decoder_step.onnx"):
        load_bundle(bundle_copy)


def test_wrong_checksum(bundle_copy: Path) -> None:
    with open(bundle_copy / "encoder.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="encoder.onnx does not match its checksum"):
        load_bundle(bundle_copy)


def test_unknown_format_version(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, lambda d: d.update(format_version=99))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        load_bundle(bundle_copy)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="has no manifest.json"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nowhere")


def test_vocabulary_that_does_not_fit_the_decoder(bundle_copy: Path) -> None:
    words = json.loads((bundle_copy / "vocab.json").read_text())
    (bundle_copy / "vocab.json").write_text(json.dumps(words + ["extra"]))

    def change(d):
        d["vocabulary"]["size"] = len(words) + 1
        d["files"]["vocab.json"]["sha256"] = sha256_file(bundle_copy / "vocab.json")

    _edit_manifest(bundle_copy, change)  # self-consistent on paper, but not with the decoder graph
    with pytest.raises(BundleError, match="decoder_step.onnx .*decoder writes .* words but vocab.json has"):
        load_bundle(bundle_copy)  # found when the graphs are read, before any session
    with pytest.raises(BundleError, match="decoder writes .* words but vocab.json has"):
        Captioner(bundle_copy, provider="cpu")


def test_length_penalty_comes_from_the_manifest_unless_asked(bundle_copy: Path) -> None:
    from captioner.captioner import CaptionOptions

    _edit_manifest(bundle_copy, lambda m: m["decoder"].__setitem__("length_penalty", 0.25))
    captioner = Captioner(bundle_copy, provider="cpu")
    assert captioner.search_config(CaptionOptions()).length_penalty == 0.25
    assert captioner.search_config(CaptionOptions(length_penalty=1.0)).length_penalty == 1.0
    _edit_manifest(bundle_copy, lambda m: m["decoder"].pop("length_penalty"))  # older bundles
    assert load_bundle(bundle_copy).manifest.length_penalty == 0.7
