"""Quantized variants: int8 graphs that load, still caption the shapes right, and are picked
(or refused) the way the manifest says."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from captioner.bundle import load_bundle, write_manifest
from captioner.captioner import Captioner, CaptionOptions
from captioner.errors import BundleError
from export.quantize import QUANTIZED_VARIANTS, QuantizeConfig, calibration_batches, expand_image_paths
from export.quantize import main as quantize_main
from tests.synthetic import COLOURS, SHAPES, make_shapes_folder
from training.select_variant import VariantScore, choose


@pytest.fixture(scope="module")
def quantized_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quantized")
    bundle = root / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    calibration = root / "calibration"
    make_shapes_folder(calibration, per_class=2, seed=5, sidecars=False)
    quantize_main([str(bundle), "--calibration-images", str(calibration), "--check-images", "0"])
    return bundle


def test_variants_are_added_and_checksummed(quantized_bundle: Path) -> None:
    bundle = load_bundle(quantized_bundle)  # verifies every checksum, the int8 files included
    manifest = bundle.manifest
    assert set(QUANTIZED_VARIANTS) <= set(manifest.variants)
    assert manifest.variants["int8"].encoder == "encoder.int8.onnx"
    assert manifest.variants["int8-decoder"].encoder == manifest.variants["fp32"].encoder
    assert {"encoder.int8.onnx", "decoder_step.int8.onnx"} <= set(manifest.files)
    assert manifest.default_variant == "fp32"  # quantize never chooses; measurements do
    assert "static QDQ int8" in manifest.training["quantization"]["encoder"]
    for name in ("encoder.int8.onnx", "decoder_step.int8.onnx"):  # int8 graphs are smaller
        assert (quantized_bundle / name).stat().st_size < 0.6 * (
            quantized_bundle / name.replace(".int8", "")).stat().st_size


@pytest.mark.parametrize("variant", sorted(QUANTIZED_VARIANTS))
def test_quantized_variants_still_name_colour_and_shape(quantized_bundle: Path, tmp_path: Path,
                                                       variant: str) -> None:
    held_back = make_shapes_folder(tmp_path, per_class=2, seed=99, sidecars=False)
    captioner = Captioner(quantized_bundle, provider="cpu", variant=variant)
    assert captioner.variant == variant
    results = dict(captioner.caption_files([p for p, _ in held_back], CaptionOptions(beam_size=3)))
    right = sum(results[path].text == caption for path, caption in held_back)
    assert right >= 0.8 * len(held_back), [(p.name, results[p].text) for p, _ in held_back]
    assert {w for r in results.values() for w in r.words if w in COLOURS} == set(COLOURS)
    assert {w for r in results.values() for w in r.words if w in SHAPES} == set(SHAPES)


def test_auto_takes_the_measured_default_per_provider(quantized_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(quantized_bundle, copy)
    manifest = load_bundle(copy).manifest
    manifest.default_variant = "int8"
    manifest.provider_variants = {"cuda": "fp32"}
    write_manifest(copy, manifest)
    reread = load_bundle(copy).manifest
    assert reread.variant_for("cpu") == "int8" and reread.variant_for("cuda") == "fp32"
    assert json.loads((copy / "manifest.json").read_text())["provider_variants"] == {"cuda": "fp32"}
    assert Captioner(copy, provider="cpu").variant == "int8"
    assert Captioner(copy, provider="cpu", variant="fp32").variant == "fp32"  # a user can force it


def test_auto_falls_back_to_fp32_when_int8_cannot_run(quantized_bundle: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(quantized_bundle, copy)
    (copy / "decoder_step.int8.onnx").write_bytes(b"not an onnx graph")
    manifest = load_bundle(copy, verify=False).manifest
    manifest.default_variant = "int8"
    write_manifest(copy, manifest)  # checksums match: only onnxruntime can tell
    with caplog.at_level(logging.WARNING):
        captioner = Captioner(copy, provider="cpu")
    assert captioner.variant == "fp32"
    assert "using fp32" in caplog.text
    with pytest.raises(BundleError):
        Captioner(copy, provider="cpu", variant="int8")  # asked for by name: no silent swap


def test_too_few_calibration_photos_are_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    photos = [p for p, _ in make_shapes_folder(tmp_path, per_class=1, seed=3, sidecars=False)][:3]
    spec = load_bundle(tiny_bundle).manifest.input_spec
    with pytest.raises(ValueError, match="at least"):
        calibration_batches(photos, spec, QuantizeConfig())


def test_choose_takes_the_fastest_variant_that_keeps_quality() -> None:
    scores = [
        VariantScore("fp32", "cpu", 1000, 30.0, bleu4=21.5, cider=55.9),
        VariantScore("int8", "cpu", 1000, 80.0, bleu4=20.9, cider=54.7),  # 0.6 BLEU-4 down
        VariantScore("int8-decoder", "cpu", 1000, 45.0, bleu4=21.6, cider=56.1),
        VariantScore("int8-encoder", "cpu", 1000, 60.0, bleu4=21.1, cider=52.0),  # CIDEr down
    ]
    assert choose(scores) == "int8-decoder"
    assert [s.keeps_quality for s in scores] == [True, False, True, False]
    assert choose(scores, bleu_tolerance=1.0, cider_tolerance=5.0) == "int8"


def test_calibration_paths_from_folders_files_and_lists(tmp_path: Path) -> None:
    photos = [p for p, _ in make_shapes_folder(tmp_path / "images", per_class=1, seed=4, sidecars=False)]
    listing = tmp_path / "train.txt"
    listing.write_text("\n".join(p.name for p in photos[:3]) + "\n\n")
    assert expand_image_paths([listing]) == photos[:3]
    assert expand_image_paths([tmp_path / "images"]) == sorted(photos)
    assert expand_image_paths([photos[5]]) == [photos[5]]
    with pytest.raises(FileNotFoundError):
        expand_image_paths([tmp_path / "missing"])
