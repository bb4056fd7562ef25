"""Every case of the bad-input corpus (tests/bad_inputs.py) through the real CLI.

The image runs are subprocesses, so that a root test process can still meet a read-only folder
(the child drops the capability that lets root ignore permissions) and so that a crash would
show as one. Each file must get its one-line reason, the batch must go on, the summary and
exit code must count the failures, and no caption file may change without --overwrite.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.cli import main, shown
from captioner.images import load_image
from captioner.session import available_providers
from tests.bad_inputs import (
    CAPTIONED,
    FAILED,
    HAND_WRITTEN,
    IGNORED,
    INCOMPLETE,
    REFUSED,
    VANISH_ENV,
    HostileRun,
    drop_permission_override,
    exif_oriented,
    hostile_run_names,
    make_bad_corpus,
    make_hostile_run,
    permissions_can_be_enforced,
    remove_tree,
    summary_counts,
)
from tests.synthetic import draw_shape

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_END = " failed"


def run(args: list[str], env: dict[str, str] | None = None, module: str = "tests.bad_inputs"
        ) -> subprocess.CompletedProcess[bytes]:
    """The CLI in a child process that obeys file permissions even when the tests run as root."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        preexec_fn=drop_permission_override,
    )


def lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines()


def error_lines(stderr: list[str], path: Path) -> list[str]:
    return [line for line in stderr if line.startswith(f"error: {shown(path)}: ")]


@pytest.fixture(scope="module")
def bundle_env(tiny_bundle: Path) -> dict[str, str]:
    return {"CAPTIONER_MODEL": str(tiny_bundle)}


pytestmark = pytest.mark.skipif(not permissions_can_be_enforced(),
                                reason="cannot make a child process honour file permissions")


@pytest.mark.parametrize("overwrite", [False, True], ids=["keep", "overwrite"])
def test_every_image_case_through_the_cli(tmp_path: Path, bundle_env: dict[str, str], overwrite: bool
                                          ) -> None:
    cases = [c for c in make_bad_corpus(tmp_path, videos=False) if c.kind == "image"]
    images = tmp_path / "images"
    before = {c.name: c.sidecar_path.read_bytes() for c in cases if c.sidecar is not None}
    vanish = os.pathsep.join(str(c.path) for c in cases if c.vanishes)
    args = ["caption", "-r", str(images), "--sidecar", "--provider", "cpu", "--quiet",
            "--json", str(tmp_path / "all.json"), "--csv", str(tmp_path / "all.csv")]
    result = run(args + (["--overwrite"] if overwrite else []), env={**bundle_env, VANISH_ENV: vanish})
    out, err = lines(result.stdout), lines(result.stderr)
    assert "Traceback" not in result.stderr.decode(), result.stderr.decode()[-3000:]

    captions = dict(line.rsplit("\t", 1) for line in out)
    assert len(captions) == len(out), "one line per captioned image"
    for case in cases:
        exp, name = case.expectation, shown(case.path)
        if exp.outcome == CAPTIONED:
            assert captions.get(name), f"{case.name} was not captioned: {err}"
            if exp.caption is not None:
                assert captions[name] == exp.caption, case.name
            if exp.write_error is None:
                assert not error_lines(err, case.path), case.name
        elif exp.outcome == FAILED:
            assert name not in captions, case.name
            found = error_lines(err, case.path)
            assert len(found) == 1 and exp.reason in found[0], (case.name, found, err)
        else:
            assert exp.outcome == IGNORED
            assert not any(name in line for line in out + err), case.name

    # caption files: a person's text changes only with --overwrite, and never for a failure
    for case in cases:
        exp, side = case.expectation, case.sidecar_path
        if case.sidecar is not None:
            kept = exp.outcome == FAILED or not overwrite or exp.write_error is not None
            if kept:
                assert side.read_bytes() == before[case.name], case.name
            else:
                assert side.read_text(encoding="utf-8") == captions[shown(case.path)] + "\n", case.name
        elif exp.outcome == CAPTIONED and exp.write_error is None:
            assert side.read_text(encoding="utf-8") == captions[shown(case.path)] + "\n", case.name
        elif exp.outcome != CAPTIONED:
            assert not os.path.lexists(side), case.name
        if exp.write_error is not None and (case.sidecar is None or overwrite):
            where = [line for line in err if exp.write_error in line and case.path.stem in line]
            assert len(where) == 1, (case.name, err)
    assert (images / "pair.txt").read_text() == captions[shown(images / "pair.jpg")] + "\n"
    assert not list(images.rglob(".*.tmp")), "temporary files left behind"

    captioned, skipped, failed = summary_counts(cases, sidecar=True, overwrite=overwrite)
    assert err[-1] == f"{captioned} captioned, {skipped} skipped, {failed} failed"
    assert result.returncode == 1
    for line in err[:-1]:
        assert line.startswith(("error: ", "skipped: ")), line

    records = json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))
    assert {r["file"]: r["caption"] for r in records} == {
        str(c.path): captions[shown(c.path)] for c in cases if c.expectation.outcome == CAPTIONED}
    with open(tmp_path / "all.csv", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        rows = {row["file"]: row["caption"] for row in csv.DictReader(fh)}
    assert rows == {r["file"]: r["caption"] for r in records}


def test_alt_text_writing_does_not_stop_the_batch(tmp_path: Path, bundle_env: dict[str, str]) -> None:
    """--write-metadata over the corpus: files it cannot write into (GIF, BMP, odd names) are
    reported one by one and the rest are captioned and written; nothing ends the batch."""
    cases = [c for c in make_bad_corpus(tmp_path, videos=False) if c.kind == "image"]
    vanish = os.pathsep.join(str(c.path) for c in cases if c.vanishes)
    result = run(["caption", "-r", str(tmp_path / "images"), "--write-metadata", "--provider", "cpu",
                  "--quiet"], env={**bundle_env, VANISH_ENV: vanish})
    err = lines(result.stderr)
    assert "Traceback" not in result.stderr.decode(), result.stderr.decode()[-3000:]
    captioned, _, failed = summary_counts(cases, sidecar=False, overwrite=False)
    assert len(lines(result.stdout)) == captioned
    done, skipped, not_done = (int(w) for w in err[-1].split()[::2])
    assert (done, skipped) == (captioned, 0) and not_done >= failed, err[-1]
    for case in cases:
        if case.expectation.outcome == FAILED:
            assert len(error_lines(err, case.path)) == 1, case.name
    assert result.returncode == 1


def test_loaded_pixels_match_the_upright_reference(tmp_path: Path) -> None:
    """CMYK, 16-bit, palette, alpha, animation, pages, WebP, EXIF: each loads as it looks."""
    cases = [c for c in make_bad_corpus(tmp_path, videos=False) if c.upright is not None]
    assert len(cases) >= 12
    for case in cases:
        loaded = np.asarray(load_image(case.path), dtype=np.float64)
        reference = np.asarray(Image.open(case.upright).convert("RGB"), dtype=np.float64)
        assert loaded.shape == reference.shape, case.name
        assert np.abs(loaded - reference).mean() < 2.0, case.name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_shown_upright(tmp_path: Path, orientation: int) -> None:
    """All eight EXIF orientations, pixel for pixel (PNG keeps them exact), on a non-square
    picture so that a wrong turn cannot pass."""
    upright = draw_shape("red", "triangle", np.random.default_rng(orientation), size=96).crop((0, 0, 96, 64))
    stored, exif = exif_oriented(upright, orientation)
    path = tmp_path / f"o{orientation}.png"
    stored.save(path, exif=exif)
    assert np.array_equal(np.asarray(load_image(path)), np.asarray(upright))


def test_exif_rotated_jpeg_is_upright_and_captioned(tmp_path: Path, tiny_bundle: Path) -> None:
    from captioner.captioner import Captioner

    case = next(c for c in make_bad_corpus(tmp_path, videos=False) if c.name == "exif_rotated_jpeg")
    assert case.upright is not None
    stored = Image.open(case.path)
    assert stored.getexif()[0x0112] == 6
    loaded = load_image(case.path)
    as_stored = np.asarray(stored.convert("RGB"))
    # exactly the stored pixels turned upright, and close to the picture before the camera turned it
    assert np.array_equal(np.asarray(loaded), np.rot90(as_stored, k=-1))
    reference = np.asarray(Image.open(case.upright).convert("RGB"), dtype=np.float64)
    assert np.abs(np.asarray(loaded, dtype=np.float64) - reference).mean() < 2.0
    assert np.abs(as_stored.astype(np.float64) - reference).mean() > 10.0  # the turn matters
    result = dict(Captioner(tiny_bundle, provider="cpu").caption_files([case.path]))[case.path]
    assert result.text == "a red triangle"  # type: ignore[union-attr]


def test_every_video_case_through_the_cli(tmp_path: Path, bundle_env: dict[str, str]) -> None:
    cases = [c for c in make_bad_corpus(tmp_path) if c.kind == "video"]
    result = run(["video", *(str(c.path) for c in cases), "--every", "1", "--provider", "cpu",
                  "--quiet"], env=bundle_env, module="captioner")
    err = lines(result.stderr)
    assert "Traceback" not in result.stderr.decode(), result.stderr.decode()[-3000:]
    for case in cases:
        exp, srt = case.expectation, case.path.with_suffix(".srt")
        mine = [line for line in err if str(case.path) in line]
        if exp.outcome == FAILED:
            assert len(mine) == 1 and mine[0].startswith("error: "), (case.name, err)
            assert exp.reason in mine[0], (case.name, err)
            assert not srt.exists()
        else:
            assert "-->" in srt.read_text(), case.name
            warnings = [line for line in mine if line.startswith("warning: ")]
            if exp.outcome == INCOMPLETE:
                assert len(warnings) == 1 and exp.reason in warnings[0], (case.name, err)
            else:
                assert exp.outcome == CAPTIONED and not warnings, case.name
    n_failed = sum(c.expectation.outcome == FAILED for c in cases)
    n_incomplete = sum(c.expectation.outcome == INCOMPLETE for c in cases)
    assert err[-1].endswith(f"{n_incomplete} incomplete, {n_failed} failed"), err[-1]
    assert result.returncode == 1


def test_every_broken_bundle_is_refused_in_one_line(tmp_path: Path, tiny_bundle: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cases = [c for c in make_bad_corpus(tmp_path, bundle=tiny_bundle, videos=False) if c.kind == "bundle"]
    assert len(cases) >= 8
    image = next(c.path for c in make_bad_corpus(tmp_path / "x", videos=False) if c.name == "webp")
    for case in cases:
        assert case.expectation.outcome == REFUSED
        code = main(["caption", str(image), "--model", str(case.path), "--provider", "cpu", "--quiet"])
        out, err = capsys.readouterr()
        assert code == 2 and out == "", case.name
        assert len(err.splitlines()) == 1 and err.startswith("error: "), (case.name, err)
        assert case.expectation.reason in err, (case.name, err)


def test_paths_named_directly(tmp_path: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture[str]
                              ) -> None:
    """A missing path, a video, a pipe and a folder's loop named on the command line."""
    cases = {c.name: c for c in make_bad_corpus(tmp_path, videos=True)}
    pipe = cases["fifo_named_jpg"].path
    named = [tmp_path / "nope.jpg", cases["video_ok"].path, pipe, cases["symlink_loop_a"].path,
             cases["webp"].path, cases["webp"].path]
    code = main(["caption", *map(str, named), "--model", str(tiny_bundle), "--provider", "cpu", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.count("\t") == 1  # the WebP, once although named twice
    for path, reason in [(named[0], "no such file or folder"), (named[1], "captioner video"),
                         (pipe, "not a regular file"), (named[3], "symbolic link loop")]:
        assert sum(line.startswith(f"error: {path}: ") and reason in line for line in err.splitlines()) == 1
    assert err.splitlines()[-1] == "1 captioned, 0 skipped, 4 failed"


def test_hand_written_sidecars_survive_a_plain_run(tmp_path: Path, tiny_bundle: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Without --overwrite not one existing caption file changes, not even its permissions."""
    cases = [c for c in make_bad_corpus(tmp_path, videos=False) if c.kind == "image"]
    for case in cases:
        if case.expectation.outcome == CAPTIONED and case.sidecar is None and not case.needs_permissions:
            case.sidecar_path.write_text(HAND_WRITTEN + "\n")
    before = {p: (p.read_bytes(), p.stat().st_mode) for p in (tmp_path / "images").rglob("*.txt")}
    main(["caption", "-r", str(tmp_path / "images"), "--sidecar", "--model", str(tiny_bundle),
          "--provider", "cpu", "--quiet"])
    capsys.readouterr()
    after = {p: (p.read_bytes(), p.stat().st_mode) for p in (tmp_path / "images").rglob("*.txt")}
    new = set(after) - set(before)
    assert {before[p] == after[p] for p in before} == {True}
    assert all(after[p][0].decode().strip() != HAND_WRITTEN for p in new)


# -- hostile runs: what a careless user or an attacker types (tests/bad_inputs.py) -------------

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def run_hostile(run: HostileRun, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """`python -m captioner ARGS` in the run's folder, obeying file permissions even as root;
    with reader_gone, stdout is a pipe whose reader has left before the first line is written."""
    command = [sys.executable, "-m", "captioner", *run.argv]
    options: dict = {"cwd": run.cwd, "timeout": 120, "env": {**os.environ, "PYTHONPATH": str(ROOT), **env},
                     "preexec_fn": drop_permission_override}
    if not run.reader_gone:
        return subprocess.run(command, capture_output=True, **options)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, **options)
    finally:
        os.close(write_end)
    return subprocess.CompletedProcess(done.args, done.returncode, b"", done.stderr)


@pytest.mark.parametrize("name", hostile_run_names())
def test_hostile_run(name: str, tmp_path: Path, bundle_env: dict[str, str]) -> None:
    run = make_hostile_run(name, tmp_path)
    if name == "cuda_without_the_gpu_build" and "cuda" in available_providers():
        pytest.skip("this onnxruntime has CUDA")
    before = {path: path.read_bytes() for path in run.kept}
    try:
        result = run_hostile(run, bundle_env)
    finally:
        for tree in run.deep_trees:
            remove_tree(tree)
    out, err = result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-3000:]
    assert result.returncode == run.exit_code, err
    out_lines, err_lines = out.splitlines(), err.splitlines()
    assert not any(CONTROL.search(line) for line in out_lines + err_lines), (out, err)
    if run.says:
        assert sum(run.says in line for line in err_lines) == 1, err
    if run.one_line:
        assert len(err_lines) == 1, err
    if run.out_lines is not None:
        assert len(out_lines) == run.out_lines, out
    if run.out_fields is not None:
        assert all(len(line.split("\t")) == run.out_fields for line in out_lines), out
    assert run.prints in out, out
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path.name} was changed"
    for path in run.made:
        assert path.is_file() and path.stat().st_size > 0, (path, err)
    for path in run.absent:
        assert not os.path.lexists(path), path
    for path, fragment in run.holds:
        assert fragment in path.read_text(encoding="utf-8"), (path, fragment)
