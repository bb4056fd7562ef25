"""--ray (issue 18): a Ray Data pipeline on a local Ray instance gives the plain CLI's records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from captioner.cli import main

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def records(path: Path) -> dict[str, dict]:
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(items) == len({r["file"] for r in items})
    return {r["file"]: r for r in items}


def test_ray_captions_equal_the_plain_cli(local_ray: None, flickr_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    photos = sorted((flickr_dir / "images").glob("*.jpg"))[:6]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    args = ["caption", *map(str, photos), str(broken), "--provider", "cpu", "--quiet",
            "--batch-size", "2"]
    assert main([*args, "--jsonl", str(tmp_path / "plain.jsonl")]) == 1
    capsys.readouterr()
    assert main([*args, "--jsonl", str(tmp_path / "ray.jsonl"), "--ray", "--actors", "2"]) == 1
    err = capsys.readouterr().err
    assert f"error: {broken}: not an image file" in err
    assert err.splitlines()[-1] == "6 captioned, 0 skipped, 1 failed"
    plain, on_ray = records(tmp_path / "plain.jsonl"), records(tmp_path / "ray.jsonl")
    assert set(plain) == set(map(str, photos))
    assert on_ray == plain  # captions, scores, confidence and tags alike
    # a rerun resumes through Ray as through the plain CLI: only the failed photo is tried again
    assert main([*args, "--jsonl", str(tmp_path / "ray.jsonl"), "--ray"]) == 1
    err = capsys.readouterr().err
    assert "6 photos already in --jsonl" in err and err.splitlines()[-1] == "0 captioned, 0 skipped, 1 failed"
