"""Scene cut detectors compared: ffmpeg's scdet (through PyAV's filter graph, what captioner/
uses) against PySceneDetect (ContentDetector and AdaptiveDetector on its PyAV backend).

Ground truth: the cut times in ../shared/data/video/README.md, plus synthetic clips with known
cuts (distinct stills; near-identical stills where only a shape changes; a still whose
brightness ramps slowly, which has no cut). A found cut counts if it is within one frame
interval of a true one.

    python bench/video_detectors.py [--video-dir ../shared/data/video] [--json out.json]

PySceneDetect is not a dependency of captioner; install `scenedetect-headless` to run its rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from captioner.video import SamplingOptions, VideoReader  # noqa: E402
from tests.synthetic import draw_shape  # noqa: E402
from tests.videos import write_video  # noqa: E402

REAL = {"scene_cuts_3shots.mp4": [5.0, 9.64, 12.6], "city_night_cc0.mp4": [4.64],
        "pedestrians_vtest.mp4": [], "box_handheld.mp4": []}


def ffmpeg_scdet(path: Path) -> list[float]:
    with VideoReader(path, SamplingOptions(scenes=True)) as reader:
        for _ in reader.samples():
            pass
        return list(reader.status.cuts)


def pyscenedetect(detector: str) -> Callable[[Path], list[float]]:
    def run(path: Path) -> list[float]:
        from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video
        video = open_video(str(path), backend="pyav")
        manager = SceneManager()
        manager.add_detector(ContentDetector() if detector == "content" else AdaptiveDetector())
        manager.detect_scenes(video)
        return [float(scene[0].seconds) for scene in manager.get_scene_list()[1:]]
    return run


def synthetic_clips(folder: Path) -> dict[Path, tuple[list[float], float]]:
    """(path -> (true cuts, frame interval)) for three made-up cases."""
    rng = np.random.default_rng(7)
    clips: dict[Path, tuple[list[float], float]] = {}
    distinct = [(draw_shape(c, s, rng).resize((640, 360)), 1.6) for c, s in
                [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "circle")]]
    clips[folder / "distinct.mp4"] = (write_video(folder / "distinct.mp4", distinct), 0.04)
    subtle = []
    for shape in ("circle", "square", "triangle"):  # same grey background, same colour
        img = Image.new("RGB", (640, 360), (200, 200, 200))
        img.paste(draw_shape("red", shape, np.random.default_rng(1)).resize((200, 200)), (220, 80))
        subtle.append((img, 1.6))
    clips[folder / "subtle.mp4"] = (write_video(folder / "subtle.mp4", subtle), 0.04)
    ramp = folder / "fade.mp4"
    frames = [(Image.new("RGB", (640, 360), (int(20 + 200 * k / 99),) * 3), 0.04) for k in range(100)]
    write_video(ramp, frames)
    clips[ramp] = ([], 0.04)
    return clips


def score(found: list[float], truth: list[float], tolerance: float) -> tuple[int, int, int]:
    """(hits, misses, false cuts) with one-to-one matching within tolerance."""
    left = list(truth)
    hits = 0
    for t in found:
        match = next((x for x in left if abs(x - t) <= tolerance + 1e-6), None)
        if match is not None:
            left.remove(match)
            hits += 1
    return hits, len(left), len(found) - hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video-dir", type=Path, default=ROOT.parent / "shared" / "data" / "video")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--extra", action="append", default=[], metavar="FILE=T1,T2,...",
                        help="another clip and its true cut times, e.g. the 1080p bench clip")
    args = parser.parse_args()
    detectors: dict[str, Callable[[Path], list[float]]] = {"ffmpeg scdet (captioner)": ffmpeg_scdet}
    try:
        import scenedetect  # noqa: F401
        detectors["PySceneDetect content"] = pyscenedetect("content")
        detectors["PySceneDetect adaptive"] = pyscenedetect("adaptive")
    except ImportError:
        print("PySceneDetect is not installed: only scdet is measured", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = {args.video_dir / name: (cuts, 1 / 25) for name, cuts in REAL.items()
                 if (args.video_dir / name).is_file()}
        clips.update(synthetic_clips(Path(tmp)))
        for extra in args.extra:
            name, _, times = extra.partition("=")
            clips[Path(name)] = ([float(t) for t in times.split(",") if t], 1 / 25)
        for name, detect in detectors.items():
            detect(next(iter(clips)))  # warm up imports and codecs
            for path, (truth, interval) in clips.items():
                t0 = time.perf_counter()
                found = detect(path)
                seconds = time.perf_counter() - t0
                hits, misses, false = score(found, truth, interval)
                rows.append({"detector": name, "clip": path.name, "truth": truth,
                             "found": [round(t, 3) for t in found], "hits": hits, "misses": misses,
                             "false": false, "seconds": round(seconds, 3)})
    report(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def report(rows: list[dict]) -> None:
    print(f"{'detector':26} {'clip':22} {'found cuts':28} hit miss false  seconds")
    for r in rows:
        print(f"{r['detector']:26} {r['clip']:22} {str(r['found']):28} {r['hits']:3} {r['misses']:4} "
              f"{r['false']:5}  {r['seconds']:7.3f}")
    print()
    for name in dict.fromkeys(r["detector"] for r in rows):
        mine = [r for r in rows if r["detector"] == name]
        print(f"{name:26} hits {sum(r['hits'] for r in mine)}, misses {sum(r['misses'] for r in mine)}, "
              f"false {sum(r['false'] for r in mine)}, {sum(r['seconds'] for r in mine):.2f} s")


if __name__ == "__main__":
    sys.exit(main())
