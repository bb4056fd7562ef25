"""The model bundle: the one thing that crosses from the torch side to the torch-free side.

A bundle is a folder with `manifest.json`, `vocab.json`, `encoder.onnx` and
`decoder_step.onnx` (plus optional quantized twins). Nothing is trusted before it is checked:
every file's sha256, the format version, and that the vocabulary fits the decoder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captioner.errors import BundleError
from captioner.images import InputSpec
from captioner.vocab import Vocabulary

FORMAT = "captioner-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Variant:
    """One runnable pair of graphs, e.g. fp32 or int8."""

    name: str
    encoder: str
    decoder: str


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
    format_version: int = FORMAT_VERSION

    def variant_for(self, provider: str) -> str:
        """The variant "auto" means on this provider ("cpu" or "cuda")."""
        choice = self.provider_variants.get(provider, self.default_variant)
        return choice if choice in self.variants else self.default_variant

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
            },
            "decoder": {"hidden_size": self.hidden_size, "max_length": self.max_length,
                        "length_penalty": self.length_penalty},
            "vocabulary": {"file": "vocab.json", "size": self.vocab_size,
                           "special_tokens": {"pad": 0, "start": 1, "end": 2, "unk": 3}},
            "variants": {v.name: {"encoder": v.encoder, "decoder": v.decoder}
                         for v in self.variants.values()},
            "default_variant": self.default_variant,
            **({"provider_variants": dict(self.provider_variants)} if self.provider_variants else {}),
            "files": {name: {"sha256": digest} for name, digest in sorted(self.files.items())},
            "training": self.training,
            "scores": self.scores,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BundleError(f"manifest.json is not a {FORMAT} manifest")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise BundleError(
                f"bundle format version {version!r} is not supported "
                f"(this Captioner reads version {FORMAT_VERSION})"
            )
        try:
            enc, dec, voc = data["encoder"], data["decoder"], data["vocabulary"]
            variants = {n: Variant(n, v["encoder"], v["decoder"]) for n, v in data["variants"].items()}
            return cls(
                name=data["name"],
                encoder_name=enc["name"],
                input_spec=InputSpec.from_json(enc["input"]),
                grid=(int(enc["grid"][0]), int(enc["grid"][1])),
                feature_dim=int(enc["feature_dim"]),
                hidden_size=int(dec["hidden_size"]),
                vocab_size=int(voc["size"]),
                max_length=int(dec["max_length"]),
                length_penalty=float(dec.get("length_penalty", 0.7)),
                variants=variants,
                default_variant=data.get("default_variant", "fp32"),
                provider_variants={str(k): str(v) for k, v in data.get("provider_variants", {}).items()},
                files={n: f["sha256"] for n, f in data["files"].items()},
                training=data.get("training", {}),
                scores=data.get("scores", {}),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise BundleError(f"manifest.json is missing or has a bad field: {exc}") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise BundleError(f"model bundle {path.parent.name}: {path.name} cannot be read "
                          f"({exc.strerror or exc})") from None


@dataclass
class Bundle:
    """A checked bundle on disk: its manifest, vocabulary and the paths of its graphs."""

    path: Path
    manifest: Manifest
    vocab: Vocabulary

    def graph_paths(self, variant: str) -> tuple[Path, Path]:
        v = self.manifest.variants[variant]
        return self.path / v.encoder, self.path / v.decoder


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read and check a bundle folder; raise BundleError saying exactly what is wrong."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"model bundle not found: {root} is not a folder")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{root} is not a model bundle: it has no {MANIFEST}")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path} cannot be read: {exc}") from None
    manifest = Manifest.from_json(data)
    needed = {"vocab.json"} | {f for v in manifest.variants.values() for f in (v.encoder, v.decoder)}
    for name in sorted(needed | set(manifest.files)):
        if not (root / name).is_file():
            raise BundleError(f"model bundle {root.name} is missing {name}")
        if name not in manifest.files:
            raise BundleError(f"model bundle {root.name}: {name} has no checksum in the manifest")
        if verify and _checksum(root / name) != manifest.files[name]:
            raise BundleError(
                f"model bundle {root.name}: {name} does not match its checksum "
                "(the file is damaged or was replaced)"
            )
    try:
        words = json.loads((root / "vocab.json").read_text(encoding="utf-8"))
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise ValueError("it must be a list of words")
        vocab = Vocabulary(words)
    except (ValueError, OSError) as exc:
        raise BundleError(f"model bundle {root.name}: vocab.json is invalid: {exc}") from None
    if len(vocab) != manifest.vocab_size:
        raise BundleError(
            f"model bundle {root.name}: vocabulary has {len(vocab)} words "
            f"but the manifest says {manifest.vocab_size}"
        )
    if manifest.default_variant not in manifest.variants:
        raise BundleError(f"model bundle {root.name}: default variant "
                          f"{manifest.default_variant!r} is not listed")
    return Bundle(root, manifest, vocab)


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Fill in the checksums of every graph and the vocabulary, then write manifest.json
    (through a temporary file, so a reader never sees half a manifest)."""
    names = {"vocab.json"} | {f for v in manifest.variants.values() for f in (v.encoder, v.decoder)}
    manifest.files = {n: sha256_file(root / n) for n in sorted(names)}
    partial = root / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    partial.replace(root / MANIFEST)
