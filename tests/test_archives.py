"""Large runs (issue 18): --jsonl streams and resumes, --files-from, --shard, --out-dir, and
photos whose outputs exist are skipped before they are read."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captioner.cli import main
from captioner.cli.listing import Shard, parse_shard
from tests.synthetic import make_shapes_folder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """12 photos in tmp_path/photos; the tests run from tmp_path (relative names)."""
    monkeypatch.chdir(tmp_path)
    made = make_shapes_folder(tmp_path / "photos", per_class=1, seed=7, sidecars=False)
    return sorted(Path("photos") / p.name for p, _ in made)


def caption(bundle: Path, *args: str) -> int:
    return main(["caption", "--model", str(bundle), "--provider", "cpu", "--quiet", *args])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def cli(bundle: Path, *args: str, **kw: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "captioner", "caption", "--model", str(bundle),
                             "--provider", "cpu", "--quiet", *args], env=env, **kw)  # type: ignore[call-overload]


def test_jsonl_holds_the_json_records(tiny_bundle: Path, shapes: list[Path]) -> None:
    assert caption(tiny_bundle, "photos", "--json", "all.json", "--jsonl", "all.jsonl",
                   "--alternatives") == 0
    records = json.loads(Path("all.json").read_text())
    assert lines(Path("all.jsonl")) == records
    assert {r["file"] for r in records} == set(map(str, shapes))
    assert set(records[0]) >= {"file", "caption", "score", "tags", "alternatives"}
    assert caption(tiny_bundle, "photos", "--jsonl", "plain.jsonl") == 0  # n-best only when asked
    assert all("alternatives" not in r for r in lines(Path("plain.jsonl")))


def test_rerun_resumes_and_a_torn_last_line_is_repaired(tiny_bundle: Path, shapes: list[Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = Path("run.jsonl")
    assert caption(tiny_bundle, *map(str, shapes[:5]), "--jsonl", str(out)) == 0
    first = out.read_bytes()
    out.write_bytes(first[:-30])  # killed in the middle of the 5th line
    capsys.readouterr()
    assert caption(tiny_bundle, "photos", "--jsonl", str(out)) == 0
    err = capsys.readouterr().err
    assert "the last line was cut off" in err and "4 photos already in --jsonl" in err
    records = lines(out)
    assert sorted(r["file"] for r in records) == list(map(str, shapes))  # each exactly once
    assert out.read_bytes().startswith(first[:first.rindex(b"\n", 0, len(first) - 1) + 1])
    # a tail that is a whole record without its newline is kept
    out.write_bytes(out.read_bytes()[:-1])
    assert caption(tiny_bundle, "photos", "--jsonl", str(out)) == 0
    assert sorted(r["file"] for r in lines(out)) == list(map(str, shapes))
    assert "12 photos already in --jsonl" in capsys.readouterr().err


def test_killed_run_resumes_with_every_photo_once(tiny_bundle: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    photos = [p for p, _ in make_shapes_folder(tmp_path / "many", per_class=5, seed=3, sidecars=False)]
    out = tmp_path / "run.jsonl"
    proc = cli(tiny_bundle, "many", "--jsonl", str(out), "--batch-size", "1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = out.read_bytes().count(b"\n")
    assert 3 <= done_before < len(photos), "the run should have been killed part-way"
    assert cli(tiny_bundle, "many", "--jsonl", str(out)).wait(timeout=300) == 0
    files = [r["file"] for r in lines(out)]
    assert sorted(files) == sorted(str(p.relative_to(tmp_path)) for p in photos)


def test_finished_photos_are_not_read_again(tiny_bundle: Path, shapes: list[Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """After a run, every photo is replaced by bytes no decoder takes: a rerun that opened
    one would fail it. It skips them all; --overwrite does open them (and fails)."""
    assert caption(tiny_bundle, "photos", "--sidecar", "--jsonl", "done.jsonl") == 0
    for photo in shapes:
        photo.write_bytes(b"not a photo any more")
    capsys.readouterr()
    assert caption(tiny_bundle, "photos", "--sidecar") == 0
    assert capsys.readouterr().err.splitlines()[-1] == "0 captioned, 12 skipped, 0 failed"
    assert caption(tiny_bundle, "photos", "--jsonl", "done.jsonl") == 0
    assert capsys.readouterr().err.splitlines()[-1] == "0 captioned, 0 skipped, 0 failed"
    assert caption(tiny_bundle, "photos", "--sidecar", "--overwrite") == 1
    assert capsys.readouterr().err.splitlines()[-1] == "0 captioned, 0 skipped, 12 failed"


def test_files_from_lists_stdin_and_nul(tiny_bundle: Path, shapes: list[Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    odd = Path("photos/two\nlines é.jpg")
    shapes[0].rename(odd)
    names = [odd, *shapes[1:4]]
    Path("list0").write_bytes(b"".join(os.fsencode(p) + b"\0" for p in names))
    assert caption(tiny_bundle, "--files-from", "list0", "--null", "--jsonl", "a.jsonl") == 0
    assert [r["file"] for r in lines(Path("a.jsonl"))] == list(map(str, names))
    Path("list").write_text("".join(f"{p}\r\n" for p in shapes[4:7]) + "\n" + f"{shapes[4]}\n")
    assert caption(tiny_bundle, "--files-from", "list", "--jsonl", "b.jsonl") == 0
    assert [r["file"] for r in lines(Path("b.jsonl"))] == list(map(str, shapes[4:7]))  # once each
    monkeypatch.setattr(sys, "stdin", _stdin(Path("list").read_bytes()))
    assert caption(tiny_bundle, "photos", "--files-from", "-", "--jsonl", "c.jsonl") == 0
    assert len(lines(Path("c.jsonl"))) == 12  # folder + list, each photo once
    assert caption(tiny_bundle, "--files-from", "missing") == 2


def _stdin(data: bytes) -> object:
    import io
    return io.TextIOWrapper(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]


def test_files_from_stdin_streams(tiny_bundle: Path, shapes: list[Path]) -> None:
    """The first caption comes out while the list is still open."""
    proc = cli(tiny_bundle, "--files-from", "-", "--jsonl", "-", stdin=subprocess.PIPE,
               stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{shapes[0]}\n".encode())
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())
    assert first["file"] == str(shapes[0])
    proc.stdin.write(f"{shapes[1]}\n".encode())
    proc.stdin.close()
    assert json.loads(proc.stdout.readline())["file"] == str(shapes[1])
    assert proc.wait(timeout=60) == 0


def test_shards_are_disjoint_complete_and_stable(tiny_bundle: Path, shapes: list[Path]) -> None:
    names = [f"archive/{i // 100}/IMG_{i:05d}.jpg" for i in range(9000)]
    for n in (1, 2, 3, 7):
        owners = [[k for k in range(n) if Shard(k, n).holds(name)] for name in names]
        assert all(len(o) == 1 for o in owners)  # every photo in exactly one shard
        sizes = [sum(o == [k] for o in owners) for k in range(n)]
        assert min(sizes) > 0.9 * len(names) / n
    assert [Shard(0, 2).holds(n) for n in names[:8]] == [True, False, True, True, True, False, True, False]
    assert Shard(1, 3).holds("./archive/0/IMG_00001.jpg") == Shard(1, 3).holds(names[1])
    for bad in ("2/2", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_shard(bad)
    for k in (0, 1):
        assert caption(tiny_bundle, "photos", "--shard", f"{k}/2", "--jsonl", f"s{k}.jsonl") == 0
    first, second = ({r["file"] for r in lines(Path(f"s{k}.jsonl"))} for k in (0, 1))
    assert first and second and not first & second and first | second == set(map(str, shapes))


def test_out_dir_mirrors_the_tree_and_stays_inside(tiny_bundle: Path, shapes: list[Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    nested = Path("photos/2019/june")
    nested.mkdir(parents=True)
    shapes[0].rename(nested / "a.jpg")
    assert caption(tiny_bundle, "photos", "-r", "--sidecar", "--out-dir", "caps") == 0
    assert Path("caps/photos/2019/june/a.txt").is_file()
    assert len(list(Path("caps").rglob("*.txt"))) == 12
    assert not list(Path("photos").rglob("*.txt"))  # nothing beside the photos
    # an absolute path, or one that leaves the current folder, goes by its absolute path
    os.chdir(nested)
    assert caption(tiny_bundle, str(Path("../../..") / shapes[1]), "--sidecar", "--out-dir", "out") == 0
    assert Path("out", str(tmp_path / shapes[1]).lstrip("/")).with_suffix(".txt").is_file()
    os.chdir(tmp_path)
    # a folder inside DIR that leads out of it is refused, nothing written outside
    outside = tmp_path / "outside"
    outside.mkdir()
    Path("caps2").mkdir()
    (Path("caps2") / "photos").symlink_to(outside)
    capsys.readouterr()
    assert caption(tiny_bundle, str(shapes[2]), "--sidecar", "--out-dir", "caps2") == 1
    assert "leads outside --out-dir" in capsys.readouterr().err
    assert not list(outside.iterdir())
    assert caption(tiny_bundle, "photos", "--out-dir", "caps") == 2  # --out-dir needs --sidecar
    Path("afile").write_text("x")
    assert caption(tiny_bundle, "photos", "--sidecar", "--out-dir", "afile") == 2


def test_jsonl_refuses_inputs_photos_and_a_second_writer(tiny_bundle: Path, shapes: list[Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = shapes[0].read_bytes()
    assert caption(tiny_bundle, "photos", "--jsonl", str(shapes[0]), "--overwrite") == 2
    assert shapes[0].read_bytes() == before
    assert caption(tiny_bundle, "photos", "--jsonl", "x.json", "--json", "x.json") == 2
    with open("held.jsonl", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        capsys.readouterr()
        assert caption(tiny_bundle, "photos", "--jsonl", "held.jsonl") == 2
        assert "another captioner run is writing it" in capsys.readouterr().err
    Path("list").write_text("all.jsonl\n")
    Path("all.jsonl").write_text("")
    assert caption(tiny_bundle, "--files-from", "list", "--jsonl", "all.jsonl") == 1  # not its own input
    assert caption(tiny_bundle, "--null", "photos") == 2 and caption(tiny_bundle) == 2


def test_jsonl_to_a_closed_pipe_stops_and_says_so(tiny_bundle: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_shapes_folder(tmp_path / "many", per_class=6, seed=5, sidecars=False)
    proc = cli(tiny_bundle, "many", "--jsonl", "-", "--batch-size", "1",
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    json.loads(proc.stdout.readline())
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "stopped: stdout was closed after" in err and "Traceback" not in err
    done = int(err.splitlines()[-1].split()[0])
    assert done < 72, err  # it stopped, rather than captioning all 72 for nobody
