"""Is the photo app's UI thread ever blocked? A heartbeat timer during a 500-image batch.

A 10 ms QTimer runs in the GUI thread while the real window opens N real photos (thumbnails
loading), captions them all (worker thread), and a simulated person browses: every 250 ms
it moves to the next image (preview loading, n-best, word strip) and pins a word (attention
overlay). The gap between consecutive ticks is how long the UI thread could not react; the
worst gap is the figure that matters (the target is <= 100 ms).

    python bench/ui_heartbeat.py                      # 500 Flickr8k photos, best bundle found
    python bench/ui_heartbeat.py --images 200 --model models/default
    python bench/ui_heartbeat.py --baseline 20        # the idle window: the machine's own noise

Nothing is written next to the photos (auto-save is off; settings go to a temp file).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402

from gui.app import make_app  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.scripted import open_window, settle, wait_for_model, wait_until  # noqa: E402
from gui.settings import AppSettings  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "flickr8k" / "images"


def pick_bundle(given: Path | None) -> Path:
    """--model, else the trained default bundle, else the newest tiny test bundle."""
    if given is not None:
        return given
    if (ROOT / "models" / "default" / "manifest.json").is_file():
        return ROOT / "models" / "default"
    tiny = sorted((ROOT / "tests" / ".cache").glob("tiny-*/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not tiny:
        sys.exit("no bundle: pass --model, or run the GUI tests once to build the tiny bundle")
    return tiny[-1].parent


class Heartbeat:
    """Timestamps of a fast GUI-thread timer, split by phase."""

    def __init__(self, interval_ms: int) -> None:
        self.ticks: list[tuple[float, str]] = []
        self.phase = "idle"
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append((time.perf_counter(), self.phase)))

    def gaps(self, phase: str | None = None) -> np.ndarray:
        times = np.array([t for t, _ in self.ticks])
        phases = [p for _, p in self.ticks]
        gaps = np.diff(times) * 1000
        keep = [phase is None or phases[i + 1] == phase for i in range(len(gaps))]
        return gaps[np.array(keep, dtype=bool)] if len(gaps) else gaps


def browse(window: MainWindow) -> None:
    """What a person does meanwhile: next image, pin its second word."""
    window.page.step(1)
    window.page.step_word(1)
    window.page.step_word(1)


def run(args: argparse.Namespace) -> dict:
    app = make_app()
    photos = sorted(PHOTOS.glob("*.jpg"))[: args.images]
    if len(photos) < args.images:
        sys.exit(f"need {args.images} photos in {PHOTOS}, found {len(photos)}")
    bundle = pick_bundle(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        settings = AppSettings(bundle_dir=str(bundle), batch_size=args.batch_size, beam_size=args.beam)
        window = open_window(settings, Path(tmp) / "settings.ini", (1500, 920))
        wait_for_model(window, 120)
        beat = Heartbeat(args.interval_ms)
        beat.timer.start()
        if args.baseline:  # the same window doing nothing: what the machine alone costs
            beat.phase = "caption"
            settle(args.baseline)
            beat.timer.stop()
            window.close()
            gaps = beat.gaps()
            return {"gui_busy": 0.0, "process": False, "bundle": "-", "images": 0, "captioned": 0,
                    "caption_s": args.baseline, "total_s": args.baseline, "rate": 0.0,
                    "ticks": len(beat.ticks), "worst": float(gaps.max()),
                    "p99": float(np.percentile(gaps, 99)), "median": float(np.median(gaps)),
                    "worst_open": 0.0, "worst_caption": float(gaps.max())}
        browsing = QTimer()
        browsing.setInterval(250)
        browsing.timeout.connect(lambda: browse(window))
        beat.phase = "open"
        started, gui_cpu = time.perf_counter(), time.thread_time()
        window.open_paths(photos)
        wait_until(lambda: window.page.model.rowCount() == len(photos) and not window.photos.is_scanning(),
                   60, "the photos to open")
        if not args.no_browse:
            browsing.start()
        beat.phase = "caption"
        caption_start = time.perf_counter()
        window.photos.caption_all()
        wait_until(lambda: not window.captions.is_running(), 3600, "captioning")
        caption_s = time.perf_counter() - caption_start
        beat.phase = "settle"
        wait_until(lambda: window.page.thumbnails.pending() == 0, 30, "the thumbnails")
        browsing.stop()
        beat.timer.stop()
        total_s = time.perf_counter() - started
        gui_busy = (time.thread_time() - gui_cpu) / total_s
        stats = window.captions.last
        in_process = window.models.service is not None
        window.close()
    app.processEvents()
    all_gaps = beat.gaps()
    return {
        "bundle": window.models.captioner.name if window.models.captioner else "?", "images": len(photos),
        "captioned": stats.done if stats else 0, "caption_s": caption_s, "total_s": total_s,
        "rate": (stats.done / caption_s) if stats else 0.0, "ticks": len(beat.ticks),
        "worst": float(all_gaps.max()), "p99": float(np.percentile(all_gaps, 99)),
        "median": float(np.median(all_gaps)),
        "worst_open": float(beat.gaps("open").max(initial=0)),
        "worst_caption": float(beat.gaps("caption").max(initial=0)), "gui_busy": gui_busy,
        "process": in_process,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--interval-ms", type=int, default=10)
    parser.add_argument("--no-browse", action="store_true", help="caption without the simulated browsing")
    parser.add_argument("--baseline", type=float, default=0.0, metavar="SECONDS",
                        help="measure the idle window for this long instead (the machine's own noise)")
    parser.add_argument("--limit-ms", type=float, default=100.0, help="exit 1 if the worst gap is larger")
    args = parser.parse_args()
    r = run(args)
    print(f"bundle {r['bundle']}: {r['captioned']}/{r['images']} photos captioned in {r['caption_s']:.1f} s "
          f"({r['rate']:.1f} img/s, {'caption process' if r['process'] else 'caption thread'}), "
          f"{r['total_s']:.1f} s in all; the GUI thread was busy {r['gui_busy']:.0%} of it")
    print(f"heartbeat every {args.interval_ms} ms, {r['ticks']} ticks: median gap {r['median']:.1f} ms, "
          f"p99 {r['p99']:.1f} ms, worst {r['worst']:.1f} ms "
          f"(opening {r['worst_open']:.1f} ms, captioning {r['worst_caption']:.1f} ms)")
    print(f"worst gap: {r['worst']:.1f} ms ({'OK' if r['worst'] <= args.limit_ms else 'OVER'} "
          f"the {args.limit_ms:.0f} ms limit)")
    return 0 if r["worst"] <= args.limit_ms else 1


if __name__ == "__main__":
    raise SystemExit(main())
