"""The model bundle: the one thing that crosses from the torch side to the torch-free side.

A bundle is a folder with `manifest.json`, `vocab.json`, `encoder.onnx` and
`decoder_step.onnx` (plus optional quantized twins). Nothing is trusted before it is checked,
and nothing outside the folder is ever opened:

1. the manifest is read into typed dataclasses, every value checked for type and range;
2. every file name in it must be a plain name inside the folder (bundle_files), decided before
   anything is opened, so an error never tells whether an outside file exists;
3. every file's sha256, then the vocabulary against the manifest;
4. each ONNX graph's inputs and outputs against the names and shapes below, and its
   external-data files (which onnxruntime would open) must be listed and hashed files.

Each failure is one BundleError line naming the bundle and the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from captioner.bundle_files import (
    UnsafeName,
    check_name,
    open_regular,
    read_limited,
    resolve_inside,
    sha256_of,
    shown_name,
)
from captioner.confidence import Calibration
from captioner.errors import BundleError
from captioner.images import InputSpec
from captioner.json_fields import FieldError, Fields
from captioner.onnx_scan import GraphFacts, OnnxScanError, Port, scan_onnx
from captioner.vocab import Vocabulary

if TYPE_CHECKING:  # session.py imports this module
    from captioner.session import Provider

FORMAT = "captioner-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VOCAB = "vocab.json"
TAGS = "tags.json"  # the tag words, in the order of the encoder's "tags" output
CALIBRATION = "calibration.json"  # the fitted confidence model (captioner/confidence.py)
TUNED_TOP = "encoder_top.npz"  # the fine-tuned last encoder blocks' weights (see TunedTop)
MAX_MANIFEST_BYTES = 4 << 20
MAX_VOCAB_BYTES = 64 << 20

# -- the graphs' inputs and outputs: defined here once, for export, loading and running --------

FLOAT, INT64 = 1, 7  # ONNX element types
@dataclass(frozen=True)
class PortSpec:
    """What one input or output must be. `dims` names each axis: "batch" (any size), or a
    manifest quantity the size must equal where the graph fixes it ("size", "hidden", ...)."""

    name: str
    elem_type: int
    dims: tuple[str, ...]
    required: bool = True  # an optional output may be absent (older bundles)


@dataclass(frozen=True)
class GraphInterface:
    """A graph's inputs (exactly these) and outputs (these first, in this order)."""

    role: str
    inputs: tuple[PortSpec, ...]
    outputs: tuple[PortSpec, ...]


ENCODER_IO = GraphInterface(
    "encoder",
    inputs=(PortSpec("image", FLOAT, ("batch", "channels", "size", "size")),),
    outputs=(PortSpec("features", FLOAT, ("batch", "cells", "any")),
             PortSpec("keys", FLOAT, ("batch", "cells", "any")),
             PortSpec("h0", FLOAT, ("batch", "hidden")),
             PortSpec("c0", FLOAT, ("batch", "hidden")),
             PortSpec("tags", FLOAT, ("batch", "tags"), required=False)),
)
DECODER_IO = GraphInterface(
    "decoder",
    inputs=(PortSpec("token", INT64, ("batch",)),
            PortSpec("h", FLOAT, ("batch", "hidden")),
            PortSpec("c", FLOAT, ("batch", "hidden")),
            PortSpec("features", FLOAT, ("batch", "cells", "any")),
            PortSpec("keys", FLOAT, ("batch", "cells", "any")),
            PortSpec("tags", FLOAT, ("batch", "tags"), required=False)),
    outputs=(PortSpec("log_probs", FLOAT, ("batch", "vocab")),
             PortSpec("h_out", FLOAT, ("batch", "hidden")),
             PortSpec("c_out", FLOAT, ("batch", "hidden")),
             PortSpec("alpha", FLOAT, ("batch", "cells"))),
)
ENCODER_INPUT = ENCODER_IO.inputs[0].name
ENCODER_OUTPUTS = tuple(port.name for port in ENCODER_IO.outputs)
STEP_INPUTS = tuple(port.name for port in DECODER_IO.inputs)
STEP_OUTPUTS = tuple(port.name for port in DECODER_IO.outputs)


# the "best quality" variant (docs/quality.md): an ensemble of decoders, about half the speed.
# It runs only when asked for by name: "auto" never picks it, and no manifest may make it the
# default.
QUALITY = "quality"


@dataclass(frozen=True)
class Variant:
    """One runnable pair of graphs, e.g. fp32 or int8."""

    name: str
    encoder: str
    decoder: str
    # the width of h and c in this variant's graphs where it is not the manifest's
    # decoder.hidden_size (an ensemble's graphs carry its decoders' states side by side)
    hidden_size: int | None = None

    def to_json(self) -> dict[str, Any]:
        extra = {} if self.hidden_size is None else {"hidden_size": self.hidden_size}
        return {"encoder": self.encoder, "decoder": self.decoder, **extra}


@dataclass(frozen=True)
class TunedTop:
    """The encoder's last blocks were fine-tuned: their weights (a numpy .npz, never pickled)
    are kept beside the graphs, which already hold them, so that training tools can rebuild
    the encoder this bundle runs (export.finetune). Captioning never reads the file."""

    file: str
    blocks: int

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "blocks": self.blocks}


@dataclass
class Manifest:
    name: str
    encoder_name: str
    input_spec: InputSpec
    grid: tuple[int, int]
    feature_dim: int
    hidden_size: int
    vocab_size: int
    max_length: int
    variants: dict[str, Variant]
    length_penalty: float = 0.7  # beam search: score = logprob / len ** this (chosen on val)
    default_variant: str = "fp32"
    # provider -> variant where the measured best differs from default_variant (the CPU's),
    # e.g. {"cuda": "fp32"}: int8 QDQ graphs gain nothing on a GPU.
    provider_variants: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    training: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    tags_file: str | None = None  # TAGS when the encoder writes tag probabilities
    calibration_file: str | None = None  # CALIBRATION when captions get a confidence
    tuned_top: TunedTop | None = None  # the encoder's fine-tuned last blocks, if any
    format_version: int = FORMAT_VERSION

    def variant_for(self, provider: Provider) -> str:
        """The variant "auto" means on this provider (CPU or CUDA); never QUALITY."""
        choice = self.provider_variants.get(provider, self.default_variant)  # equal to its value, the key
        return choice if choice in self.variants and choice != QUALITY else self.default_variant

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "name": self.name,
            "encoder": {
                "name": self.encoder_name,
                "input": self.input_spec.to_json(),
                "grid": list(self.grid),
                "feature_dim": self.feature_dim,
                **({"tuned_top": self.tuned_top.to_json()} if self.tuned_top else {}),
            },
            "decoder": {"hidden_size": self.hidden_size, "max_length": self.max_length,
                        "length_penalty": self.length_penalty},
            "vocabulary": {"file": "vocab.json", "size": self.vocab_size,
                           "special_tokens": {"pad": 0, "start": 1, "end": 2, "unk": 3}},
            "variants": {v.name: v.to_json() for v in self.variants.values()},
            "default_variant": self.default_variant,
            **({"provider_variants": dict(self.provider_variants)} if self.provider_variants else {}),
            "files": {name: {"sha256": digest} for name, digest in sorted(self.files.items())},
            **({"tags": {"file": self.tags_file}} if self.tags_file else {}),
            **({"calibration": {"file": self.calibration_file}} if self.calibration_file else {}),
            "training": self.training,
            "scores": self.scores,
        }

    @classmethod
    def from_json(cls, data: object) -> Manifest:
        """Typed reading of manifest.json; BundleError("manifest.json: <field> ...") if wrong."""
        try:
            return _read_manifest(Fields(data))
        except FieldError as exc:
            raise BundleError(f"{MANIFEST}: {exc}") from None
        except UnsafeName as exc:
            raise BundleError(f"{MANIFEST} names {exc}") from None

    def file_names(self) -> set[str]:
        """Every file the bundle needs: the vocabulary and each variant's graphs."""
        tuned = self.tuned_top.file if self.tuned_top else None
        optional = {f for f in (self.tags_file, self.calibration_file, tuned) if f}
        return {VOCAB} | optional | {f for v in self.variants.values() for f in (v.encoder, v.decoder)}


def _read_manifest(top: Fields) -> Manifest:
    if top.data.get("format") != FORMAT:
        raise FieldError(f"not a {FORMAT} manifest")
    version = top.data.get("format_version")
    if version != FORMAT_VERSION:
        shown = version if isinstance(version, int) else type(version).__name__
        raise FieldError(f"bundle format version {shown!r} is not supported "
                         f"(this Captioner reads version {FORMAT_VERSION})")
    enc, dec, voc = top.obj("encoder"), top.obj("decoder"), top.obj("vocabulary")
    spec = enc.obj("input")
    mean, std = spec.numbers("mean", 3, -1e3, 1e3), spec.numbers("std", 3, 0, 1e3, positive=True)
    grid = enc.integers("grid", 2, 1, 256)
    variants = {}
    for name, entry in top.obj("variants").items():
        fields = Fields(entry, f"variants.{name}")
        hidden = fields.integer("hidden_size", 1, 1 << 16) if fields.has("hidden_size") else None
        variants[name] = Variant(_variant_name(name), check_name(fields.text("encoder")),
                                 check_name(fields.text("decoder")), hidden)
    if not variants:
        raise FieldError("variants must list at least one pair of graphs")
    default = top.text("default_variant", "fp32")
    if default not in variants:
        raise FieldError(f"default_variant {shown_name(default)} is not one of the variants")
    if default == QUALITY:
        raise FieldError(f"default_variant must not be {QUALITY!r} (it runs only when asked for)")
    providers = top.obj("provider_variants", {})
    files = {}
    for name, entry in top.obj("files").items():
        digest = Fields(entry, f"files.{shown_name(name)}").text("sha256")
        if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
            raise FieldError(f"files.{shown_name(name)}.sha256 must be 64 lowercase hex digits")
        files[check_name(name)] = digest
    return Manifest(
        name=top.text("name"),
        encoder_name=enc.text("name"),
        input_spec=InputSpec(spec.integer("size", 8, 4096), (mean[0], mean[1], mean[2]),
                             (std[0], std[1], std[2])),
        grid=(grid[0], grid[1]),
        feature_dim=enc.integer("feature_dim", 1, 1 << 16),
        hidden_size=dec.integer("hidden_size", 1, 1 << 16),
        vocab_size=voc.integer("size", 4, 10_000_000),
        max_length=dec.integer("max_length", 1, 1000),
        length_penalty=dec.number("length_penalty", 0.0, 10.0, default=0.7),
        variants=variants,
        default_variant=default,
        provider_variants={_variant_name(k): providers.text(k) for k, _ in providers.items()},
        files=files,
        training=top.obj("training", {}).data,
        scores=top.obj("scores", {}).data,
        tags_file=_optional_file(top, "tags"),
        calibration_file=_optional_file(top, "calibration"),
        tuned_top=_tuned_top(enc),
    )


def _tuned_top(enc: Fields) -> TunedTop | None:
    if not enc.has("tuned_top"):
        return None
    entry = enc.obj("tuned_top")
    return TunedTop(check_name(entry.text("file")), entry.integer("blocks", 1, 1000))


def _optional_file(top: Fields, key: str) -> str | None:
    """{"<key>": {"file": NAME}} when present: a plain file name inside the bundle."""
    if key not in top.data:
        return None
    return check_name(top.obj(key).text("file"))


def _variant_name(name: str) -> str:
    if not name or len(name) > 50 or not name.isprintable():
        raise FieldError("variant names must be printable, 1 to 50 characters")
    return name


def sha256_file(path: Path) -> str:
    return sha256_of(path)


@dataclass
class Bundle:
    """A checked bundle on disk: its manifest, vocabulary and the paths of its graphs."""

    path: Path
    manifest: Manifest
    vocab: Vocabulary
    # variant -> why its graphs must not be opened (unreadable, or not the expected interface);
    # the others still run, and "auto" falls back to fp32 (see Captioner)
    unusable: dict[str, str] = field(default_factory=dict)
    tag_words: tuple[str, ...] = ()  # names of the encoder's tag outputs (empty: no tags)
    calibration: Calibration | None = None  # how captions get a confidence (None: they do not)

    def graph_paths(self, variant: str) -> tuple[Path, Path]:
        """The variant's two graphs; BundleError if they failed the checks at load."""
        if variant in self.unusable:
            raise BundleError(self.unusable[variant])
        v = self.manifest.variants[variant]
        return self.path / v.encoder, self.path / v.decoder


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read and check a bundle folder; raise BundleError saying exactly what is wrong.

    `verify` False skips the checksums (for tools that are about to rewrite them)."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"model bundle not found: {root} is not a folder")
    label = f"model bundle {root.name if root.name.isprintable() else shown_name(root.name)}"
    data = _read_json(root, MANIFEST, MAX_MANIFEST_BYTES, label)
    try:
        manifest = Manifest.from_json(data)
    except BundleError as exc:
        raise BundleError(f"{label}: {exc}") from None
    unlisted = sorted(manifest.file_names() - set(manifest.files))
    if unlisted:
        raise BundleError(f"{label}: {unlisted[0]} has no checksum in the manifest")
    for name in sorted(manifest.files):
        _check_file(root, name, manifest.files[name] if verify else None, label)
    vocab = _read_vocab(root, manifest, label)
    tag_words = _read_tag_words(root, manifest, label) if manifest.tags_file else ()
    calibration = _read_calibration(root, manifest, label) if manifest.calibration_file else None
    unusable = _check_variants(root, manifest, label)
    if len(unusable) == len(manifest.variants):
        raise BundleError(unusable.get(manifest.default_variant) or next(iter(unusable.values())))
    return Bundle(root, manifest, vocab, unusable, tag_words, calibration)


def _check_variants(root: Path, manifest: Manifest, label: str) -> dict[str, str]:
    """Each variant's graphs checked once; returns the reason per variant that failed."""
    problems: dict[tuple[str, str, int | None], str | None] = {}
    unusable = {}
    for variant in manifest.variants.values():
        for name, interface in ((variant.encoder, ENCODER_IO), (variant.decoder, DECODER_IO)):
            key = (name, interface.role, variant.hidden_size)
            if key not in problems:
                problems[key] = graph_problem(root, name, interface, manifest, label, variant)
            if problems[key]:
                unusable[variant.name] = f"{label}: {name} {problems[key]}"
                break
    return unusable


def _check_file(root: Path, name: str, digest: str | None, label: str) -> None:
    """Inside the folder, a regular file, and (when `digest` is given) the right sha256."""
    try:
        real = resolve_inside(root, name)
    except UnsafeName as exc:
        raise BundleError(f"{label}: the manifest names {exc}") from None
    try:
        if digest is None:
            os.close(open_regular(real))  # a regular file, not a pipe that would block
            return
        actual = sha256_of(real)
    except FileNotFoundError:
        raise BundleError(f"{label} is missing {name}") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BundleError(f"{label}: {name} cannot be read ({reason})") from None
    if actual != digest:
        raise BundleError(f"{label}: {name} does not match its checksum "
                          "(the file is damaged or was replaced)")


def _read_json(root: Path, name: str, limit: int, label: str) -> object:
    try:
        real = resolve_inside(root, name)
        return json.loads(read_limited(real, limit).decode("utf-8"))
    except UnsafeName as exc:
        raise BundleError(f"{label}: {exc}") from None
    except FileNotFoundError:
        if name == MANIFEST:
            raise BundleError(f"{root} is not a model bundle: it has no {MANIFEST}") from None
        raise BundleError(f"{label} is missing {name}") from None
    except OSError as exc:
        raise BundleError(f"{label}: {name} cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8, too large, nested too deep
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise BundleError(f"{label}: {name} cannot be read: {reason[:120]}") from None


def _read_vocab(root: Path, manifest: Manifest, label: str) -> Vocabulary:
    words = _read_json(root, VOCAB, MAX_VOCAB_BYTES, label)
    try:
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise ValueError("it must be a list of words")
        vocab = Vocabulary(words)
    except ValueError as exc:
        raise BundleError(f"{label}: {VOCAB} is invalid: {exc}") from None
    if len(vocab) != manifest.vocab_size:
        raise BundleError(f"{label}: vocabulary has {len(vocab)} words "
                          f"but the manifest says {manifest.vocab_size}")
    return vocab


def graph_problem(root: Path, name: str, interface: GraphInterface, manifest: Manifest,
                  label: str, variant: Variant | None = None) -> str | None:
    """Why this graph must not be opened as `interface` (in `variant`), or None. External data
    that is not a listed, hashed file is refused outright (BundleError): a hostile bundle."""
    try:
        facts = scan_onnx(root / name)
    except (OnnxScanError, OSError) as exc:
        return f"is not a readable ONNX graph ({exc})"
    for location in sorted(facts.external):
        if location not in manifest.files:
            raise BundleError(f"{label}: {name} keeps tensors in "
                              f"{shown_name(location)}, which is not a file the manifest lists "
                              "with a checksum")
    problem = interface_problem(facts, interface, graph_sizes(manifest, variant))
    return f"does not fit as the {interface.role}: {problem}" if problem else None


def _read_tag_words(root: Path, manifest: Manifest, label: str) -> tuple[str, ...]:
    assert manifest.tags_file is not None
    words = _read_json(root, manifest.tags_file, MAX_VOCAB_BYTES, label)
    if not isinstance(words, list) or not words or not all(
            isinstance(w, str) and w.isprintable() and 0 < len(w) <= 40 for w in words):
        raise BundleError(f"{label}: {manifest.tags_file} must be a list of tag words")
    return tuple(words)


def _read_calibration(root: Path, manifest: Manifest, label: str) -> Calibration:
    assert manifest.calibration_file is not None
    data = _read_json(root, manifest.calibration_file, MAX_MANIFEST_BYTES, label)
    try:
        if not isinstance(data, dict):
            raise ValueError("it must be an object")
        return Calibration.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{label}: {manifest.calibration_file} is invalid: {str(exc)[:120]}") from None


def write_tag_words(path: Path, words: tuple[str, ...]) -> None:
    path.write_text(json.dumps(list(words)), encoding="utf-8")


def graph_sizes(manifest: Manifest, variant: Variant | None = None) -> dict[str, int]:
    """The manifest quantities a graph's fixed axes must equal (in `variant`, whose own
    hidden_size, when it has one, replaces the bundle's)."""
    hidden = variant.hidden_size if variant is not None and variant.hidden_size else manifest.hidden_size
    return {"channels": 3, "size": manifest.input_spec.size, "hidden": hidden,
            "vocab": manifest.vocab_size, "cells": manifest.grid[0] * manifest.grid[1]}


def interface_problem(facts: GraphFacts, interface: GraphInterface, sizes: dict[str, int]) -> str | None:
    """Why the scanned ports do not fit, or None. Inputs: exactly the expected ones (any order);
    outputs: the expected ones first, in order (they are read by position), extras after."""
    expected_inputs = {spec.name: spec for spec in interface.inputs}
    found_inputs = {port.name: port for port in facts.inputs}
    extras = sorted(set(found_inputs) - set(expected_inputs))
    if extras:
        return f"unexpected input {shown_name(extras[0])}"
    for spec in interface.inputs:
        if spec.name not in found_inputs:
            if spec.required:
                return f"it has no input {spec.name!r}"
            continue
        problem = _port_problem(found_inputs[spec.name], spec, sizes, "input")
        if problem:
            return problem
    for index, spec in enumerate(interface.outputs):
        if index >= len(facts.outputs) or facts.outputs[index].name != spec.name:
            if not spec.required:
                break
            return f"output {index + 1} must be {spec.name!r}"
        problem = _port_problem(facts.outputs[index], spec, sizes, "output")
        if problem:
            return problem
    return None


ELEM_NAMES = {FLOAT: "float32", INT64: "int64"}


def _port_problem(port: Port, spec: PortSpec, sizes: dict[str, int], kind: str) -> str | None:
    if port.elem_type != spec.elem_type:
        return f"{kind} {spec.name!r} must be {ELEM_NAMES[spec.elem_type]}"
    if port.dims is None:
        return None  # no declared shape: onnxruntime checks at run time
    if len(port.dims) != len(spec.dims):
        return f"{kind} {spec.name!r} has {len(port.dims)} axes, expected {len(spec.dims)}"
    for axis, (dim, meaning) in enumerate(zip(port.dims, spec.dims, strict=True)):
        want = sizes.get(meaning)
        if isinstance(dim, int) and want is not None and dim != want:
            if meaning == "vocab":
                return f"the decoder writes {dim} words but {VOCAB} has {want}"
            return f"{kind} {spec.name!r} axis {axis} is {dim}, the manifest says {want}"
    return None


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Fill in the checksums of every graph, the vocabulary, the graphs' external-data files and
    the other files already listed, then write manifest.json (through a temporary file, so a
    reader never sees half a manifest)."""
    names = manifest.file_names() | {n for n in manifest.files if (root / n).is_file()}
    for graph in {f for v in manifest.variants.values() for f in (v.encoder, v.decoder)}:
        try:
            names |= {n for n in scan_onnx(root / graph).external if (root / n).is_file()}
        except OnnxScanError:
            pass  # an unreadable graph is refused when the bundle is loaded
    manifest.files = {n: sha256_file(root / n) for n in sorted(names)}
    partial = root / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    partial.replace(root / MANIFEST)
