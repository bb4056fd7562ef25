"""Shared fixtures. The tiny bundle is trained for real on synthetic shapes (no network).

It is built once per source version and kept in tests/.cache (ignored by git), so repeated
runs do not retrain; CI builds it fresh.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "tests" / ".cache"
SHARED_DATA = ROOT.parent / "shared" / "data"
TRAIN_ARGS = [
    "--dataset", "sidecar", "--encoder", "efficientnet_lite0", "--views", "1",
    "--epochs", "14", "--batch-size", "16", "--lr", "3e-3", "--embed-dim", "64",
    "--hidden-size", "128", "--attention-dim", "64", "--dropout", "0.1", "--min-count", "1",
    "--max-length", "6", "--patience", "50", "--eval-beams", "--no-progress",
    "--no-tags",  # ImageNet tags say nothing about coloured shapes; tests/test_tags.py exports a tagged model
]


BUNDLE_SOURCES = ("images.py", "vocab.py", "bundle.py", "search.py", "session.py")


def _source_digest() -> str:
    digest = hashlib.sha1(" ".join(TRAIN_ARGS).encode())
    sources = [*sorted((ROOT / "training").glob("*.py")), *sorted((ROOT / "export").glob("*.py")),
               *(ROOT / "captioner" / name for name in BUNDLE_SOURCES), ROOT / "tests" / "synthetic.py"]
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build_tiny_bundle(target: Path) -> Path:
    """Train the shapes captioner on precomputed Lite0 features and export it to `target`."""
    from tests.synthetic import make_shapes_folder
    from training.train import get_args_parser, main

    work = target.parent / (target.name + "-work")
    shutil.rmtree(work, ignore_errors=True)
    make_shapes_folder(work / "data", per_class=20, seed=1)
    args = get_args_parser().parse_args(
        [*TRAIN_ARGS, "--data", str(work / "data"), "--out", str(target),
         "--workdir", str(work / "run"), "--cache-dir", str(work / "cache")])
    main(args)
    shutil.rmtree(work, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def tiny_bundle() -> Path:
    """A real, small bundle that captions coloured shapes ("a red circle")."""
    target = CACHE / f"tiny-{_source_digest()}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:  # several pytest runs may share the cache
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "manifest.json").is_file():
            for old in CACHE.glob("tiny-*"):  # stale versions; a day's grace for parallel runs
                if time.time() - old.stat().st_mtime > 86400:
                    shutil.rmtree(old, ignore_errors=True)
            build_tiny_bundle(target)
    return target


@pytest.fixture(scope="session")
def flickr_dir() -> Path:
    path = SHARED_DATA / "flickr8k"
    if not (path / "images").is_dir():
        pytest.skip("../shared/data/flickr8k is not present")
    return path


@pytest.fixture(scope="session")
def video_dir() -> Path:
    path = SHARED_DATA / "video"
    if not path.is_dir():
        pytest.skip("../shared/data/video is not present")
    return path


# --- the app's windows (pytest-qt) --------------------------------------------------------------
@pytest.fixture
def make_window(qtbot, tiny_bundle: Path, tmp_path: Path):
    """Build windows with their own settings file; each waits until its model is ready."""
    from tests.qt_helpers import build_window

    windows: list = []

    def build(bundle: Path | None = tiny_bundle, wait: bool = True, **settings: object):
        window = build_window(qtbot, tmp_path / f"settings{len(windows)}.ini", bundle,
                              wait=wait and bundle == tiny_bundle, **settings)
        windows.append(window)
        return window

    yield build
    for window in windows:
        window.captions.shutdown()


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def shapes(tmp_path: Path) -> dict:
    """24 shapes without captions at the top, 12 with sidecars in a sub-folder, one broken file."""
    from tests.synthetic import make_shapes_folder

    root = tmp_path / "photos"
    plain = make_shapes_folder(root, per_class=2, seed=5, sidecars=False)
    nested = make_shapes_folder(root / "nested", per_class=1, seed=6, sidecars=True)
    broken = root / "zz_broken.jpg"
    broken.write_bytes(b"this is not a jpeg")
    return {"root": root, "plain": plain, "nested": nested, "broken": broken,
            "truth": dict(plain + nested), "count": len(plain) + len(nested) + 1}
