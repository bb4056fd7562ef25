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


def _facts(inputs: list[tuple[str, int, tuple]], outputs: list[tuple[str, int, tuple]]):
    from captioner.onnx_scan import GraphFacts, Port

    return GraphFacts([Port(*p) for p in inputs], [Port(*p) for p in outputs])


SIZES = {"channels": 3, "size": 224, "hidden": 128, "vocab": 12, "cells": 49}
DECODER_PORTS = ([("token", 7, ("b",)), ("h", 1, ("b", 128)), ("c", 1, ("b", 128)),
                  ("features", 1, ("b", 49, 64)), ("keys", 1, ("b", 49, 64))],
                 [("log_probs", 1, ("b", 12)), ("h_out", 1, ("b", 128)), ("c_out", 1, ("b", 128)),
                  ("alpha", 1, ("b", 49))])


@pytest.mark.parametrize("change, problem", [
    (lambda i, o: None, None),
    (lambda i, o: i.append(("tags", 1, ("b", 30))), None),  # the optional tag input
    (lambda i, o: i.append(("extra", 1, ("b",))), "unexpected input 'extra'"),
    (lambda i, o: i.pop(0), "it has no input 'token'"),
    (lambda i, o: i.__setitem__(0, ("token", 1, ("b",))), "input 'token' must be int64"),
    (lambda i, o: i.__setitem__(1, ("h", 1, ("b", 64))), "input 'h' axis 1 is 64, the manifest says 128"),
    (lambda i, o: o.reverse(), "output 1 must be 'log_probs'"),
    (lambda i, o: o.__setitem__(3, ("alpha", 1, ("b", 7, 7))), "output 'alpha' has 3 axes, expected 2"),
    (lambda i, o: o.__setitem__(0, ("log_probs", 1, ("b", 13))), "the decoder writes 13 words"),
    (lambda i, o: o.append(("debug", 1, ("b",))), None),  # extra outputs after the known ones
])
def test_decoder_interface_is_checked_by_name_type_and_shape(change, problem) -> None:
    from captioner.bundle import DECODER_IO, interface_problem

    inputs, outputs = (list(ports) for ports in DECODER_PORTS)
    change(inputs, outputs)
    found = interface_problem(_facts(inputs, outputs), DECODER_IO, SIZES)
    assert found == problem if problem is None else problem in (found or ""), found


def test_encoder_may_add_the_tags_output_after_the_four_it_must_have() -> None:
    from captioner.bundle import ENCODER_IO, interface_problem

    inputs = [("image", 1, ("b", 3, 224, 224))]
    outputs = [("features", 1, ("b", "n", 64)), ("keys", 1, ("b", "n", 64)),
               ("h0", 1, ("b", 128)), ("c0", 1, ("b", 128))]
    assert interface_problem(_facts(inputs, outputs), ENCODER_IO, SIZES) is None
    with_tags = [*outputs, ("tags", 1, ("b", 30))]
    assert interface_problem(_facts(inputs, with_tags), ENCODER_IO, SIZES) is None
    wrong_size = [("image", 1, ("b", 3, 260, 260))]
    assert "axis 2 is 260, the manifest says 224" in (
        interface_problem(_facts(wrong_size, outputs), ENCODER_IO, SIZES) or "")


# --- a variant's own hidden_size (the ensemble of docs/quality.md) ---------------------------------
def test_old_manifests_load_unchanged_and_round_trip(bundle_copy: Path) -> None:
    from captioner.bundle import write_manifest

    before = json.loads((bundle_copy / "manifest.json").read_text())
    manifest = load_bundle(bundle_copy).manifest
    assert all(v.hidden_size is None for v in manifest.variants.values())
    write_manifest(bundle_copy, manifest)
    assert json.loads((bundle_copy / "manifest.json").read_text())["variants"] == before["variants"]


def test_a_variant_is_checked_at_its_own_hidden_size(bundle_copy: Path) -> None:
    from captioner.bundle import graph_sizes

    hidden = load_bundle(bundle_copy).manifest.hidden_size

    def add(size: int):
        return lambda d: d["variants"].update(
            wide={"encoder": "encoder.onnx", "decoder": "decoder_step.onnx", "hidden_size": size})

    _edit_manifest(bundle_copy, add(hidden))  # the same graphs, said explicitly: usable
    bundle = load_bundle(bundle_copy)
    assert not bundle.unusable and bundle.manifest.variants["wide"].hidden_size == hidden
    assert graph_sizes(bundle.manifest, bundle.manifest.variants["wide"])["hidden"] == hidden
    _edit_manifest(bundle_copy, add(2 * hidden))  # graphs narrower than the variant says
    bundle = load_bundle(bundle_copy)  # the other variants still run
    assert list(bundle.unusable) == ["wide"]
    assert f"axis 1 is {hidden}, the manifest says {2 * hidden}" in bundle.unusable["wide"]
    with pytest.raises(BundleError, match="the manifest says"):
        Captioner(bundle_copy, provider="cpu", variant="wide")


def test_quality_runs_only_when_asked_for(bundle_copy: Path) -> None:
    from captioner.bundle import QUALITY

    def add(d):
        d["variants"][QUALITY] = dict(d["variants"]["fp32"])
        d["provider_variants"] = {"cpu": QUALITY}

    _edit_manifest(bundle_copy, add)
    assert load_bundle(bundle_copy).manifest.variant_for("cpu") == "fp32"
    assert Captioner(bundle_copy, provider="cpu").variant == "fp32"
    assert Captioner(bundle_copy, provider="cpu", variant=QUALITY).variant == QUALITY
    _edit_manifest(bundle_copy, lambda d: d.update(default_variant=QUALITY))
    with pytest.raises(BundleError, match="default_variant must not be 'quality'"):
        load_bundle(bundle_copy)


def test_asking_for_a_quality_variant_the_bundle_lacks_is_one_line(bundle_copy: Path) -> None:
    with pytest.raises(BundleError) as info:
        Captioner(bundle_copy, provider="cpu", variant="quality")
    message = str(info.value)
    assert "has no 'quality' variant (it has fp32)" in message and "export.ensemble" in message
    assert "\n" not in message
