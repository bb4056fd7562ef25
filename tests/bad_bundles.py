"""Hostile model bundles, built at test time from a good one (issue 13).

    from tests.bad_bundles import make_hostile_bundles
    cases = make_hostile_bundles(tmp_path, tiny_bundle)   # [HostileBundle(name, path, reason)]

Every case must be refused: one line that contains `reason`, exit 2 from the CLI, the working
model kept in the app, and nothing outside the bundle folder opened. Each is a copy of the
source bundle with one thing changed; the manifest's checksums are brought up to date where
the case is about something else, so that it is that one thing that gets it refused. The
cases have the shape of the bad-input corpus's bundle cases (tests/bad_inputs.py, REFUSED
with a reason fragment), so the corpus can take them in as they are.

`outside` is a folder beside the bundles holding what a bundle must never reach: a copy of the
source's encoder (same sha256 as the manifest says) and a named pipe, which would block any
reader that opened it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
NOT_PLAIN = "is not a plain file name inside the bundle folder"
LEADS_OUT = "is a link that leads out of the bundle folder"


@dataclass(frozen=True)
class HostileBundle:
    name: str
    path: Path
    reason: str  # a fragment of the one-line message


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Builder:
    def __init__(self, root: Path, source: Path) -> None:
        self.root = root / "hostile_bundles"
        self.source = source
        self.outside = root / "outside"
        self.cases: list[HostileBundle] = []
        data = json.loads((source / MANIFEST).read_text())
        variant = data["variants"][data["default_variant"]]
        self.encoder, self.decoder = variant["encoder"], variant["decoder"]

    def copy(self, name: str) -> Path:
        return Path(shutil.copytree(self.source, self.root / name))

    def edit(self, path: Path, change: Callable[[dict], object], rehash: bool = False) -> None:
        data = json.loads((path / MANIFEST).read_text())
        change(data)
        if rehash:
            for name in data["files"]:
                if (path / name).is_file():
                    data["files"][name] = {"sha256": _sha256(path / name)}
        (path / MANIFEST).write_text(json.dumps(data))

    def manifest_case(self, name: str, change: Callable[[dict], object], reason: str) -> None:
        path = self.copy(name)
        self.edit(path, change)
        self.cases.append(HostileBundle(name, path, reason))

    def graph_case(self, name: str, graph: str, change: Callable[..., object], reason: str) -> None:
        import onnx

        path = self.copy(name)
        model = onnx.load(str(path / graph))
        change(model.graph)
        onnx.save(model, str(path / graph))
        self.edit(path, lambda d: None, rehash=True)
        self.cases.append(HostileBundle(name, path, reason))


def make_hostile_bundles(root: Path, source: Path) -> list[HostileBundle]:
    b = _Builder(root, source)
    b.outside.mkdir(parents=True)
    stolen = b.outside / "encoder.onnx"  # an outside file with exactly the sha256 listed
    shutil.copy(source / b.encoder, stolen)
    if hasattr(os, "mkfifo"):
        os.mkfifo(b.outside / "pipe")
    _outside_names(b, stolen)
    _links(b, stolen)
    _external_data(b)
    _bad_values(b)
    _bad_graphs(b)
    return b.cases


def _point_graph_at(name: str, encoder: str, digest: str) -> Callable[[dict], object]:
    def change(d: dict) -> None:
        for variant in d["variants"].values():
            if variant["encoder"] == encoder:
                variant["encoder"] = name
        d["files"][name] = {"sha256": digest}
    return change


def _outside_names(b: _Builder, stolen: Path) -> None:
    digest = _sha256(stolen)
    for case, name in [("graph_absolute_path", str(stolen)),
                       ("graph_etc_passwd", "/etc/passwd"),
                       ("graph_dot_dot", "../../../etc/hostname"),
                       ("graph_dot_dot_to_right_sha", f"../../{b.outside.name}/encoder.onnx"),
                       ("graph_absent_outside_file", "/etc/no-such-file-captioner"),
                       ("graph_backslash", "..\\..\\encoder.onnx"),
                       ("graph_pipe_outside", str(b.outside / "pipe"))]:
        b.manifest_case(case, _point_graph_at(name, b.encoder, digest), NOT_PLAIN)
    b.manifest_case("files_lists_outside_file",
                    lambda d: d["files"].update({"/etc/passwd": {"sha256": "0" * 64}}), NOT_PLAIN)
    b.manifest_case("files_lists_dot_dot", lambda d: d["files"].update(
        {"../outside/encoder.onnx": {"sha256": digest}}), NOT_PLAIN)
    b.manifest_case("tuned_top_dot_dot", lambda d: d["encoder"].update(
        {"tuned_top": {"file": "../outside/encoder.onnx", "blocks": 1}}), NOT_PLAIN)
    b.manifest_case("vocabulary_file_dot_dot",
                    lambda d: d["files"].update({"..": {"sha256": "0" * 64}}), NOT_PLAIN)


def _links(b: _Builder, stolen: Path) -> None:
    path = b.copy("graph_link_out_right_sha")  # encoder.onnx -> outside copy, same bytes
    (path / b.encoder).unlink()
    (path / b.encoder).symlink_to(stolen)
    b.cases.append(HostileBundle("graph_link_out_right_sha", path, LEADS_OUT))
    path = b.copy("graph_link_out_to_nothing")
    (path / b.encoder).unlink()
    (path / b.encoder).symlink_to(b.outside / "no-such-file")
    b.cases.append(HostileBundle("graph_link_out_to_nothing", path, LEADS_OUT))
    path = b.copy("manifest_link_out")
    shutil.copy(path / MANIFEST, b.outside / "manifest.json")
    (path / MANIFEST).unlink()
    (path / MANIFEST).symlink_to(b.outside / "manifest.json")
    b.cases.append(HostileBundle("manifest_link_out", path, LEADS_OUT))
    if hasattr(os, "mkfifo"):
        path = b.copy("vocab_is_a_pipe")
        (path / "vocab.json").unlink()
        os.mkfifo(path / "vocab.json")
        b.cases.append(HostileBundle("vocab_is_a_pipe", path, "vocab.json cannot be read"))


def _external_data(b: _Builder) -> None:
    """Encoders whose weights live in a second file that onnxruntime would open."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    for case, location in [("external_data_not_listed", "weights.bin"),
                           ("external_data_outside", "../../outside/weights.bin")]:
        path = b.copy(case)
        model = onnx.load(str(path / b.encoder))
        convert_model_to_external_data(model, all_tensors_to_one_file=True, location="weights.bin",
                                       size_threshold=0)
        onnx.save(model, str(path / b.encoder))  # writes weights.bin beside it
        if location != "weights.bin":
            model = onnx.load(str(path / b.encoder), load_external_data=False)
            for tensor in model.graph.initializer:
                for entry in tensor.external_data:
                    if entry.key == "location":
                        entry.value = location
            onnx.save(model, str(path / b.encoder))
        b.edit(path, lambda d: None, rehash=True)
        b.cases.append(HostileBundle(case, path, f"keeps tensors in {location!r}"))


def _bad_values(b: _Builder) -> None:
    def set_at(keys: str, value: object) -> Callable[[dict], object]:
        def change(d: dict) -> None:
            *parents, last = keys.split(".")
            for key in parents:
                d = d[key]
            d[last] = value
        return change

    for case, keys, value, reason in [
        ("nested_json_for_size", "encoder.input.size", {"a": [1, {"b": 2}]},
         "manifest.json: encoder.input.size must be an integer, not an object"),
        ("string_for_max_length", "decoder.max_length", "20",
         "decoder.max_length must be an integer, not a string"),
        ("bool_for_hidden_size", "decoder.hidden_size", True,
         "decoder.hidden_size must be an integer, not true/false"),
        ("std_zero", "encoder.input.std", [0.5, 0, 0.5],
         "encoder.input.std[1] must be a positive number"),
        ("mean_nested", "encoder.input.mean", [[0.5], 0.5, 0.5], "encoder.input.mean[0] must be a number"),
        ("grid_one_number", "encoder.grid", 7, "encoder.grid must be a list of 2 numbers"),
        ("negative_max_length", "decoder.max_length", -1, "decoder.max_length must be between 1"),
        ("huge_vocab_size", "vocabulary.size", 10**400, "vocabulary.size must be between"),
        ("variants_a_list", "variants", [], "variants must be an object, not a list"),
        ("variant_graph_a_number", "variants.fp32", {"encoder": 5, "decoder": "x.onnx"},
         "variants.fp32.encoder must be a string, not an integer"),
        ("files_a_string", "files", "encoder.onnx", "files must be an object, not a string"),
        ("variant_hidden_size_a_string", "variants.fp32.hidden_size", "128",
         "variants.fp32.hidden_size must be an integer, not a string"),
        ("variant_hidden_size_zero", "variants.fp32.hidden_size", 0,
         "variants.fp32.hidden_size must be between 1"),
        ("variant_hidden_size_wrong", "variants.fp32.hidden_size", 7, "the manifest says 7"),
        ("tuned_top_blocks_a_string", "encoder.tuned_top", {"file": "encoder_top.npz", "blocks": "1"},
         "encoder.tuned_top.blocks must be an integer, not a string"),
        ("default_variant_unknown", "default_variant", "nope", "default_variant 'nope' is not one"),
        ("name_with_escape", "name", "\x1b[2Jfake", "name must be a printable string"),
        ("length_penalty_nan", "decoder.length_penalty", float("nan"),
         "decoder.length_penalty must be between"),
    ]:
        b.manifest_case(case, set_at(keys, value), reason)
    b.manifest_case("checksum_nested", lambda d: d["files"].update({"vocab.json": {"sha256": ["a"]}}),
                    "sha256 must be a string, not a list")
    path = b.copy("deeply_nested_json")
    text = json.dumps(json.loads((path / MANIFEST).read_text()))
    (path / MANIFEST).write_text(text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    b.cases.append(HostileBundle("deeply_nested_json", path, "manifest.json cannot be read"))
    path = b.copy("manifest_an_array")
    (path / MANIFEST).write_text("[1, 2, 3]")
    b.cases.append(HostileBundle("manifest_an_array", path, "manifest.json: the document must be an object"))


def _bad_graphs(b: _Builder) -> None:
    def rename(old: str, new: str) -> Callable[..., object]:
        """The port and every node's use of it, so the graph itself stays valid."""
        def change(graph) -> None:  # type: ignore[no-untyped-def]
            for port in [*graph.input, *graph.output]:
                if port.name == old:
                    port.name = new
            for node in graph.node:
                node.input[:] = [new if name == old else name for name in node.input]
                node.output[:] = [new if name == old else name for name in node.output]
        return change

    def swap_outputs(graph) -> None:  # type: ignore[no-untyped-def]
        first, second = graph.output[0], graph.output[1]
        a, c = type(first)(), type(second)()
        a.CopyFrom(first)
        c.CopyFrom(second)
        graph.output[0].CopyFrom(c)
        graph.output[1].CopyFrom(a)

    def add_axis(name: str) -> Callable[..., object]:
        def change(graph) -> None:  # type: ignore[no-untyped-def]
            for port in [*graph.input, *graph.output]:
                if port.name == name:
                    port.type.tensor_type.shape.dim.add().dim_value = 5
        return change

    def resize_image(graph) -> None:  # type: ignore[no-untyped-def]
        dims = graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_value = dims[3].dim_value = 99

    b.graph_case("decoder_input_renamed", b.decoder, rename("token", "word"),
                 "unexpected input 'word'")
    b.graph_case("decoder_output_renamed", b.decoder, rename("log_probs", "logits"),
                 "output 1 must be 'log_probs'")
    b.graph_case("encoder_outputs_swapped", b.encoder, swap_outputs, "output 1 must be 'features'")
    b.graph_case("encoder_input_renamed", b.encoder, rename("image", "pixels"),
                 "unexpected input 'pixels'")
    b.graph_case("decoder_alpha_reshaped", b.decoder, add_axis("alpha"),
                 "output 'alpha' has 3 axes, expected 2")
    b.graph_case("encoder_image_resized", b.encoder, resize_image,
                 "input 'image' axis 2 is 99, the manifest says")
