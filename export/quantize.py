"""Quantized twins of a bundle's graphs: static int8 (QDQ) encoder, dynamic int8 decoder step.

    python -m export.quantize BUNDLE_DIR --calibration-images DIR_OR_FILES... [--max-images 200]
    python -m export.quantize models/default \
        --calibration-images ../shared/data/flickr8k/Flickr_8k.trainImages.txt

- encoder.int8.onnx: the CNN backbone quantized statically (QDQ, int8 weights per channel,
  uint8 activations) with ranges calibrated on real photos run through the same
  `captioner.images.preprocess` the app uses. Dynamic int8 ruins conv nets (activation ranges
  recomputed per tensor, per call, badly); static calibration keeps them. The small head after
  the backbone (feature projection, attention keys, h0/c0) stays fp32: it is cheap and its
  outputs feed every decoding step.
- decoder_step.int8.onnx: MatMul/Gemm weights int8, activations quantized on the fly per call
  (`quantize_dynamic`). That suits an LSTM step whose cost is its weight matrices.

Variants added to the manifest (the fp32 pair stays):
    int8          encoder.int8.onnx + decoder_step.int8.onnx
    int8-decoder  encoder.onnx      + decoder_step.int8.onnx
    int8-encoder  encoder.int8.onnx + decoder_step.onnx

This module does graph work only: it checks that every variant loads and captions like fp32
on the calibration photos, and reports agreement. Choosing the default variant by measured
speed and test-set quality is `python -m training.select_variant` (export must not import
training). Calibrate on training photos, never on the test split.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioner.bundle import Manifest, Variant, load_bundle, write_manifest
from captioner.images import InputSpec, is_image_path, load_image, preprocess

ENCODER_INT8 = "encoder.int8.onnx"
DECODER_INT8 = "decoder_step.int8.onnx"
QUANTIZED_VARIANTS = {
    "int8": (ENCODER_INT8, DECODER_INT8),
    "int8-decoder": ("encoder.onnx", DECODER_INT8),
    "int8-encoder": (ENCODER_INT8, "decoder_step.onnx"),
}
BACKBONE_PREFIX = "/backbone/"  # node names torch.onnx gives the EncoderGraph's backbone
MIN_CALIBRATION_IMAGES = 8


@dataclass(frozen=True)
class QuantizeConfig:
    max_images: int = 200  # calibration photos used (more: slower, rarely better)
    batch: int = 8
    method: str = "minmax"  # minmax | entropy | percentile
    per_channel: bool = True
    quantize_head: bool = False  # also quantize the fp32 head after the backbone
    # The first convolutions lose the most to int8 (every later layer inherits their error)
    # and are among the cheapest to keep in fp32. On EfficientNet-Lite2 (stem + blocks 0-2 =
    # 9 convolutions) the relative feature error fell 0.18 -> 0.12 and the val-split CIDEr
    # loss against fp32 from 1.4 to 0.45 points; see docs/performance.md.
    fp32_first_convs: int = 9
    fp32_last_convs: int = 0


def expand_image_paths(items: Sequence[Path | str]) -> list[Path]:
    """Files as given, folders as their image files (sorted, not recursive), and .txt lists
    (one image per line, e.g. Flickr_8k.trainImages.txt) as the files they name, relative
    to the list's folder or, failing that, its images/ subfolder."""
    out: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            out.extend(sorted(p for p in item.iterdir() if p.is_file() and is_image_path(p)))
        elif item.is_file() and item.suffix.lower() == ".txt":
            names = [line.strip() for line in item.read_text(encoding="utf-8").splitlines()]
            for name in filter(None, names):
                near = item.parent / name
                out.append(near if near.is_file() else item.parent / "images" / name)
        elif item.is_file():
            out.append(item)
        else:
            raise FileNotFoundError(f"calibration image or folder not found: {item}")
    return out


def evenly(paths: list[Path], n: int) -> list[Path]:
    """n paths spread over the whole list (folders are often sorted by subject)."""
    if len(paths) <= n:
        return paths
    idx = np.linspace(0, len(paths) - 1, n).round().astype(int)
    return [paths[i] for i in idx]


def calibration_batches(paths: Sequence[Path], spec: InputSpec, cfg: QuantizeConfig
                        ) -> list[np.ndarray]:
    """Preprocessed (n,3,S,S) batches of equal size (the histogram calibrators need that)."""
    arrays = []
    for path in evenly(list(paths), cfg.max_images):
        try:
            arrays.append(preprocess(load_image(path, draft_size=spec.size), spec))
        except Exception as exc:  # a broken photo must not stop calibration
            print(f"calibration: skipping {path.name}: {exc}", file=sys.stderr)
    if len(arrays) < MIN_CALIBRATION_IMAGES:
        raise ValueError(f"static int8 needs at least {MIN_CALIBRATION_IMAGES} calibration "
                         f"photos, got {len(arrays)}")
    batch = max(1, min(cfg.batch, len(arrays)))
    usable = len(arrays) - len(arrays) % batch
    return [np.stack(arrays[i:i + batch]) for i in range(0, usable, batch)]


def _reader(batches: list[np.ndarray], input_name: str):  # -> CalibrationDataReader
    from onnxruntime.quantization import CalibrationDataReader

    class PhotoReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

        def rewind(self) -> None:
            self._it = iter(batches)

    return PhotoReader()


def fp32_nodes(model, cfg: QuantizeConfig) -> list[str]:  # model: onnx.ModelProto
    """Names of the encoder nodes left in fp32: the head after the backbone, and everything
    up to the first `cfg.fp32_first_convs` convolutions (with the activation after the last)."""
    nodes = list(model.graph.node)  # topologically sorted, as ONNX requires
    exclude: list[str] = []
    if not cfg.quantize_head and any(n.name.startswith(BACKBONE_PREFIX) for n in nodes):
        exclude = [n.name for n in nodes if not n.name.startswith(BACKBONE_PREFIX)]
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    if cfg.fp32_first_convs > 0 and convs:
        last = convs[min(cfg.fp32_first_convs, len(convs)) - 1]
        exclude += [n.name for n in nodes[: last + 1]]
        outputs = set(nodes[last].output)
        exclude += [n.name for n in nodes[last + 1:]
                    if n.op_type in ("Clip", "Relu") and outputs & set(n.input)]
    if cfg.fp32_last_convs > 0 and convs:
        first = convs[max(len(convs) - cfg.fp32_last_convs, 0)]
        exclude += [n.name for n in nodes[first:] if n.name.startswith(BACKBONE_PREFIX)]
    return exclude


def quantize_encoder(src: Path, dst: Path, batches: list[np.ndarray],
                     cfg: QuantizeConfig = QuantizeConfig()) -> None:
    """Static QDQ int8 of the encoder graph, calibrated on `batches` of preprocessed photos."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if cfg.method not in methods:
        raise ValueError(f"unknown calibration method {cfg.method!r}; choose {', '.join(methods)}")
    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=False)
        model = onnx.load(str(prepared))
        input_name = model.graph.input[0].name
        exclude = fp32_nodes(model, cfg)
        del model
        quantize_static(
            str(prepared), str(dst), _reader(batches, input_name),
            quant_format=QuantFormat.QDQ, per_channel=cfg.per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude, calibrate_method=methods[cfg.method],
            extra_options={"CalibTensorRangeSymmetric": False},
        )


def quantize_decoder(src: Path, dst: Path, cfg: QuantizeConfig = QuantizeConfig()) -> None:
    """Dynamic int8 of the decoder step's MatMul/Gemm weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"],
                     per_channel=cfg.per_channel, weight_type=QuantType.QInt8)


def add_quantized_variants(bundle_dir: Path, manifest: Manifest,
                           calibration_image_paths: Sequence[Path | str],
                           cfg: QuantizeConfig | None = None) -> list[str]:
    """Write the int8 graphs into bundle_dir and add their variants to `manifest`.

    The caller rewrites the manifest (and with it the checksums). Returns the added names.
    Raises ValueError when there are too few calibration photos for the static encoder.
    """
    cfg = cfg or QuantizeConfig()
    fp32 = manifest.variants["fp32"]
    batches = calibration_batches(expand_image_paths(calibration_image_paths),
                                  manifest.input_spec, cfg)
    for src, dst, work in ((fp32.encoder, ENCODER_INT8, "encoder"), (fp32.decoder, DECODER_INT8, "decoder")):
        partial = bundle_dir / (dst + ".partial")
        if work == "encoder":
            quantize_encoder(bundle_dir / src, partial, batches, cfg)
        else:
            quantize_decoder(bundle_dir / src, partial, cfg)
        partial.replace(bundle_dir / dst)
    halves = {"encoder.onnx": fp32.encoder, "decoder_step.onnx": fp32.decoder}
    for name, (enc, dec) in QUANTIZED_VARIANTS.items():
        manifest.variants[name] = Variant(name, halves.get(enc, enc), halves.get(dec, dec))
    manifest.training = {**manifest.training, "quantization": quantization_record(cfg, batches)}
    return list(QUANTIZED_VARIANTS)


def quantization_record(cfg: QuantizeConfig, batches: list[np.ndarray]) -> dict[str, str]:
    """How the int8 graphs were made, for the manifest's training record."""
    return {
        "encoder": f"static QDQ int8 ({cfg.method}, {sum(len(b) for b in batches)} photos, "
                   f"{'per channel' if cfg.per_channel else 'per tensor'})",
        "decoder": "dynamic int8 (MatMul/Gemm weights)",
    }


@dataclass
class Agreement:
    variant: str
    same_captions: float  # fraction of images captioned exactly as fp32 does (beam 3)
    feature_error: float  # relative L2 error of the encoder features against fp32 (nan where the
    # features are not fp32's own: an ensemble's carry several decoders' side by side)


def agreement(bundle_dir: Path, images: Sequence[Path], variants: Sequence[str] | None = None
              ) -> list[Agreement]:
    """How closely each variant follows fp32 on some photos (a check, not a quality score)."""
    from captioner.captioner import Captioner, CaptionOptions
    from captioner.images import preprocess_batch

    bundle = load_bundle(bundle_dir)
    names = list(variants or bundle.manifest.variants)
    spec = bundle.manifest.input_spec
    batch = preprocess_batch([load_image(p, draft_size=spec.size) for p in images], spec)
    opts = CaptionOptions(beam_size=3)
    reference = Captioner(bundle, provider="cpu", variant="fp32")
    ref_feats = reference.encoder.run(None, {"image": batch})[0]
    ref_text = [r.text for r in reference.caption_arrays(batch, opts)]
    out = []
    for name in names:
        cap = Captioner(bundle, provider="cpu", variant=name)
        feats = cap.encoder.run(None, {"image": batch})[0]
        texts = [r.text for r in cap.caption_arrays(batch, opts)]
        if not any(texts):
            raise RuntimeError(f"variant {name} writes empty captions")
        err = (float(np.linalg.norm(feats - ref_feats)) / max(float(np.linalg.norm(ref_feats)), 1e-12)
               if feats.shape == ref_feats.shape else float("nan"))
        same = float(np.mean([a == b for a, b in zip(texts, ref_text, strict=True)]))
        out.append(Agreement(name, same, err))
    return out


def add_quantize_options(parser: argparse.ArgumentParser, check_images: int, check_help: str) -> None:
    """The calibration photos, their number and method, and the photos of the check after."""
    parser.add_argument("--calibration-images", type=Path, nargs="+", required=True,
                        help="photos, folders of photos, or .txt lists of photos (training "
                             "photos, not the test split)")
    parser.add_argument("--max-images", type=int, default=QuantizeConfig.max_images)
    parser.add_argument("--method", default=QuantizeConfig.method,
                        choices=["minmax", "entropy", "percentile"])
    parser.add_argument("--check-images", type=int, default=check_images, help=check_help)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("bundle", type=Path)
    add_quantize_options(parser, 32, "photos to compare each variant with fp32 on (0: skip)")
    parser.add_argument("--default", dest="default_variant",
                        help="also make this variant the bundle's default (normally chosen by "
                             "python -m training.select_variant from measurements)")
    args = parser.parse_args(argv)
    bundle = load_bundle(args.bundle)  # checks every checksum before anything is written
    manifest = bundle.manifest
    cfg = QuantizeConfig(max_images=args.max_images, method=args.method)
    added = add_quantized_variants(args.bundle, manifest, args.calibration_images, cfg)
    if args.default_variant:
        if args.default_variant not in manifest.variants:
            parser.error(f"--default {args.default_variant}: no such variant")
        manifest.default_variant = args.default_variant
    write_manifest(args.bundle, manifest)
    load_bundle(args.bundle)  # re-verify: every file against its new checksum
    print(f"{args.bundle}: added {', '.join(added)}; default variant {manifest.default_variant}")
    if args.check_images:
        photos = evenly(expand_image_paths(args.calibration_images), args.check_images)
        for row in agreement(args.bundle, photos):
            print(f"  {row.variant:13s} same captions as fp32 {row.same_captions:6.1%}   "
                  f"feature error {row.feature_error:.3f}")


if __name__ == "__main__":
    main()
