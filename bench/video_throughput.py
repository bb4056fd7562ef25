"""Video captioning throughput on a generated 1080p minute: frames/second and real-time factor.

The clip is made once (H.264, 1920x1080, 25 fps, 60 s: twelve 5-second shots of panned,
textured stills, so the decoder has real work) and kept in --work, outside the repository.
Three runs are timed, each from opening the file to the last segment:

* decode: `--scenes --every 5` sampling without the model (decoding, scaling, scene scores);
* scenes+every: the same with captioning (what `captioner video FILE --scenes --every 5` does);
* every 5 s: seeking to keyframes, no scene detection.

Real-time factor = seconds of video / seconds of wall time (above 1 is faster than playback).

    python bench/video_throughput.py [--model models/default] [--seconds 60] [--work /tmp/captioner-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from captioner.captioner import Captioner  # noqa: E402
from captioner.segments import VideoCaptioning, VideoJob  # noqa: E402
from captioner.video import SamplingOptions, VideoReader  # noqa: E402
from tests.synthetic import COLOURS, SHAPES, draw_shape  # noqa: E402

FPS, SIZE, SHOT = 25, (1920, 1080), 5.0


def make_clip(path: Path, seconds: float) -> None:
    """Shots of shape stills, each panned across a noisy texture (about 1 Mbit/s)."""
    import av
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 40, (SIZE[1], SIZE[0] + 400, 3), dtype=np.uint8)
    kinds = [(c, s) for c in COLOURS for s in SHAPES]
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        n_frames = int(seconds * FPS)
        for i in range(n_frames):
            shot, k = divmod(i, int(SHOT * FPS))
            if k == 0:
                colour, shape = kinds[shot % len(kinds)]
                still = np.asarray(draw_shape(colour, shape, rng).resize((1400, 1000)), np.int16)
            canvas = texture[:, 2 * k:2 * k + SIZE[0]].astype(np.int16) + 150
            canvas[40:1040, 260 + 2 * k:1660 + 2 * k] = still
            frame = av.VideoFrame.from_ndarray(np.clip(canvas, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    os.replace(tmp, path)


def time_decode(path: Path, sampling: SamplingOptions) -> dict:
    t0 = time.perf_counter()
    with VideoReader(path, sampling) as reader:
        samples = sum(1 for _ in reader.samples())
        status, duration = reader.status, reader.info.duration or 0.0
    return _row(time.perf_counter() - t0, status.frames, samples, duration, len(status.cuts))


def time_caption(captioner: Captioner, path: Path, sampling: SamplingOptions) -> dict:
    t0 = time.perf_counter()
    with VideoCaptioning(captioner, path, VideoJob(sampling)) as run:
        segments = list(run.segments())
        status, duration, captioned = run.reader.status, run.info.duration or 0.0, run.frames_captioned
    row = _row(time.perf_counter() - t0, status.frames, captioned, duration, len(status.cuts))
    row["segments"] = len(segments)
    return row


def _row(seconds: float, frames: int, sampled: int, duration: float, cuts: int) -> dict:
    return {"wall_s": round(seconds, 2), "frames_decoded": frames,
            "decoded_fps": round(frames / seconds, 1), "frames_captioned": sampled,
            "captioned_fps": round(sampled / seconds, 2), "realtime_factor": round(duration / seconds, 2),
            "cuts": cuts}


def default_model() -> Path:
    bundle = ROOT / "models" / "default"
    if (bundle / "manifest.json").is_file():
        return bundle
    tiny = sorted((ROOT / "tests" / ".cache").glob("tiny-*/manifest.json"))
    if not tiny:
        sys.exit("no model: pass --model, or run the tests once to build the tiny bundle")
    return tiny[-1].parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/captioner-bench"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    clip = args.work / f"bench_1080p_{int(args.seconds)}s.mp4"
    if not clip.is_file():
        t0 = time.perf_counter()
        make_clip(clip, args.seconds)
        print(f"made {clip} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    model = args.model or default_model()
    captioner = Captioner(model, provider="cpu")
    both = SamplingOptions(every=SHOT, scenes=True)
    time_decode(clip, SamplingOptions(every=SHOT))  # warm the page cache and the codecs
    results = {
        "decode only (scenes+every 5, no model)": time_decode(clip, both),
        "scenes+every 5, captioned": time_caption(captioner, clip, both),
        "every 5 s (seeking), captioned": time_caption(captioner, clip, SamplingOptions(every=SHOT)),
    }
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}"
    print(f"clip: {clip.name} ({args.seconds:.0f} s, 1920x1080, {FPS} fps); model: {model.name}; {machine}")
    for name, row in results.items():
        print(f"{name:40} {row['wall_s']:6.2f} s  {row['decoded_fps']:7.1f} frames/s decoded  "
              f"{row['captioned_fps']:5.2f} sampled/s  {row['realtime_factor']:5.2f}x real time  "
              f"({row['frames_captioned']} frames sampled, {row['cuts']} cuts)")
    if args.json:
        args.json.write_text(json.dumps({"clip": clip.name, "model": model.name, "machine": machine,
                                         "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
