"""The app under load: open and caption 2,000 photos in the real window, and watch memory.

    python bench/gui_memory.py                    # 2,000 generated 480 px JPEGs, tiny bundle
    python bench/gui_memory.py --count 5000 --bundle models/default --passes 3

The window runs offscreen (QT_QPA_PLATFORM=offscreen unless set). Photos are coloured shapes
drawn by tests/synthetic.py, written to a temporary folder. Each pass captions everything
(batches go to the app's caption process, as they do for a person), and between passes the
grid is scrolled from top to bottom so that every thumbnail is requested. RSS (resident
memory, from /proc) is printed for the window's process and for its child processes (the
caption service) at start, after opening, at the peak of each pass and at the end.

The bundle defaults to the test suite's tiny bundle (tests/.cache, built by the first pytest
run that needs it; built here under the same lock if it is missing).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def memory() -> tuple[float, float]:
    """(window process RSS, children's RSS) in MB."""
    me = os.getpid()
    return rss_mb(me), sum(rss_mb(c) for c in children(me))


class Peak:
    """The largest RSS seen, sampled at most twice a second."""

    def __init__(self) -> None:
        self.main = self.child = self.last = 0.0

    def sample(self) -> None:
        if time.monotonic() - self.last > 0.5:
            self.last = time.monotonic()
            main_mb, child_mb = memory()
            self.main, self.child = max(self.main, main_mb), max(self.child, child_mb)


def tiny_bundle() -> Path:
    """The test suite's tiny bundle; built in a child process if missing, so that training
    (torch) never adds to this process's memory."""
    from tests.conftest import CACHE, _source_digest

    target = CACHE / f"tiny-{_source_digest()}"
    if not (target / "manifest.json").is_file():
        print("building the tiny test bundle (a few minutes)...", flush=True)
        build = f"""
import fcntl, pathlib
from tests.conftest import CACHE, build_tiny_bundle
target = pathlib.Path({str(target)!r})
CACHE.mkdir(parents=True, exist_ok=True)
with open(CACHE / "build.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (target / "manifest.json").is_file():
        build_tiny_bundle(target)
"""
        subprocess.run([sys.executable, "-c", build], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return target


def make_photos(folder: Path, count: int, size: int) -> None:
    import numpy as np

    from tests.synthetic import COLOURS, SHAPES, draw_shape

    rng = np.random.default_rng(0)
    kinds = [(c, s) for c in COLOURS for s in SHAPES]
    for i in range(count):
        colour, shape = kinds[i % len(kinds)]
        draw_shape(colour, shape, rng, size=size).save(folder / f"photo_{i:05d}.jpg", quality=88)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=480, help="photo side in pixels")
    parser.add_argument("--passes", type=int, default=2, help="caption-everything passes")
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    from captioner.session import Provider
    from gui.app import make_app
    from gui.scripted import open_window, settle, wait_for_model, wait_until
    from gui.settings import AppSettings

    bundle = args.bundle or tiny_bundle()
    app = make_app([])

    with tempfile.TemporaryDirectory(prefix="gui-memory-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        t0 = time.monotonic()
        make_photos(folder, args.count, args.size)
        print(f"{args.count} photos of {args.size}x{args.size} px written in {time.monotonic() - t0:.0f} s",
              flush=True)
        settings = AppSettings(bundle_dir=str(bundle), batch_size=args.batch_size, provider=Provider.CPU)
        window = open_window(settings, Path(tmp) / "settings.ini", (1400, 900))
        wait_for_model(window, 300)
        settle(0.1)
        gc.collect()
        rows: list[tuple[str, float, float]] = []

        def record(label: str) -> None:
            gc.collect()
            main_mb, child_mb = memory()
            rows.append((label, main_mb, child_mb))
            print(f"{label:<34} window {main_mb:7.1f} MB   caption process {child_mb:7.1f} MB", flush=True)

        record("start (window shown, model ready)")
        t0 = time.monotonic()
        window.open_paths([folder])
        model = window.page.model
        wait_until(lambda: model.rowCount() == args.count and not window.photos.is_scanning(), 300,
                   "the folder")
        print(f"opened in {time.monotonic() - t0:.1f} s", flush=True)
        record("folder opened")

        grid = window.page.grid

        def scroll_through() -> None:
            bar = grid.verticalScrollBar()
            for value in range(0, bar.maximum() + bar.pageStep(), max(1, bar.pageStep())):
                bar.setValue(value)
                settle(0.04)

        for n in range(1, args.passes + 1):
            peak = Peak()
            t0 = time.monotonic()
            window.photos.caption_all()
            wait_until(lambda: not window.captions.is_running(), 3600, "captioning", tick=peak.sample)
            took = time.monotonic() - t0
            captioned = sum(1 for item in model.items() if item.has_caption)
            print(f"pass {n}: {captioned} of {args.count} captioned in {took:.0f} s "
                  f"({args.count / took:.1f} img/s)", flush=True)
            rows.append((f"pass {n} peak", peak.main, peak.child))
            print(f"{f'pass {n} peak':<34} window {peak.main:7.1f} MB   caption process {peak.child:7.1f} MB")
            scroll_through()
            record(f"pass {n} end (after scrolling all)")
        window.shutdown()
        window.close()
        app.processEvents()
    start, end = rows[0], rows[-1]
    print(f"window RSS: {start[1]:.0f} MB at start, {end[1]:.0f} MB at the end "
          f"({end[1] - start[1]:+.0f} MB) for {args.count} photos; caption process "
          f"{start[2]:.0f} -> {end[2]:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
