"""Hostile bundles (tests/bad_bundles.py): refused in one line, nothing outside them opened.

Issue 13: a manifest naming `/etc/passwd` or `../../../etc/hostname` made the tool open and
hash that file, an outside file with the right sha256 was accepted, and the messages told
whether an outside file existed; nested JSON, wrong types, std 0 and renamed or reshaped graphs
gave tracebacks or garbage captions.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.bundle import DECODER_IO, load_bundle, write_manifest
from captioner.captioner import Captioner
from captioner.errors import BundleError
from tests.bad_bundles import HostileBundle, make_hostile_bundles
from tests.synthetic import draw_shape


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> list[HostileBundle]:
    return make_hostile_bundles(tmp_path_factory.mktemp("hostile"), tiny_bundle)


def refusal(path: Path) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(path)
    return str(info.value)


def test_every_hostile_bundle_is_refused_in_one_line_naming_it(hostile: list[HostileBundle]) -> None:
    assert len(hostile) >= 35
    for case in hostile:
        message = refusal(case.path)
        assert case.reason in message, (case.name, message)
        assert f"model bundle {case.name}" in message, (case.name, message)
        assert "\n" not in message and "\x1b" not in message and len(message) < 300, message


def test_the_caption_engine_refuses_them_too(hostile: list[HostileBundle]) -> None:
    for case in hostile:
        with pytest.raises(BundleError, match="model bundle"):
            Captioner(case.path, provider="cpu")


def test_nothing_outside_the_bundle_is_opened(hostile: list[HostileBundle],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What strace showed: the outside file opened and hashed. Every open is recorded here."""
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def os_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    def py_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(file, (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", py_open)
    monkeypatch.setattr(io, "open", py_open)
    for case in hostile:
        opened.clear()
        with pytest.raises(BundleError):
            load_bundle(case.path)
        inside = os.path.realpath(case.path) + os.sep
        outside = [p for p in opened if not os.path.realpath(p).startswith(inside)]
        assert outside == [], (case.name, outside)


def test_messages_do_not_tell_whether_an_outside_file_exists(hostile: list[HostileBundle]) -> None:
    by_name = {case.name: refusal(case.path) for case in hostile}

    def same(a: str, b: str, a_text: str, b_text: str) -> None:
        assert by_name[a].replace(a, "CASE").replace(a_text, "NAME") == \
            by_name[b].replace(b, "CASE").replace(b_text, "NAME")

    same("graph_etc_passwd", "graph_absent_outside_file", "/etc/passwd", "/etc/no-such-file-captioner")
    same("graph_link_out_right_sha", "graph_link_out_to_nothing", "", "")


def test_graph_with_listed_and_hashed_external_data_loads_and_captions(tiny_bundle: Path,
                                                                       tmp_path: Path) -> None:
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "external"))
    manifest = load_bundle(bundle).manifest
    encoder = bundle / manifest.variants[manifest.default_variant].encoder
    model = onnx.load(str(encoder))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="weights.bin",
                                   size_threshold=0)
    onnx.save(model, str(encoder))
    write_manifest(bundle, manifest)  # lists and hashes weights.bin with the graphs
    assert "weights.bin" in load_bundle(bundle).manifest.files
    image = draw_shape("red", "circle", np.random.default_rng(0))
    expected = Captioner(tiny_bundle, provider="cpu").caption_images([image])[0].text
    assert Captioner(bundle, provider="cpu").caption_images([image])[0].text == expected

    with open(bundle / "weights.bin", "r+b") as fh:  # the weights changed behind the manifest
        fh.seek(100)
        fh.write(b"\x7f\x7f\x7f\x7f")
    with pytest.raises(BundleError, match="weights.bin does not match its checksum"):
        load_bundle(bundle)


def test_a_session_is_checked_against_the_names_defined_in_bundle(hostile: list[HostileBundle]
                                                                   ) -> None:
    from captioner.session import check_session, make_session

    case = next(c for c in hostile if c.name == "decoder_input_renamed")
    decoder = case.path / json.loads((case.path / "manifest.json").read_text())["variants"]["fp32"]["decoder"]
    with pytest.raises(BundleError, match="does not fit as the decoder: unexpected input 'word'"):
        make_session(decoder, ["CPUExecutionProvider"], threads=1, interface=DECODER_IO)
    session = make_session(decoder, ["CPUExecutionProvider"], threads=1)
    with pytest.raises(BundleError):
        check_session(session, decoder, DECODER_IO)


def test_cli_exits_2_with_one_line_for_each(hostile: list[HostileBundle], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from captioner.cli import main

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(photo)
    for case in hostile:
        code = main(["caption", str(photo), "--model", str(case.path), "--provider", "cpu", "--quiet"])
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2, (case.name, err)
        assert len(lines) == 1 and case.reason in lines[0], (case.name, err)
        assert out == ""
