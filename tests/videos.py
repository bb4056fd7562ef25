"""Test videos made on the spot with PyAV: shots of known stills with known cut times.

Nothing here is committed as a binary; every test writes its own small file in tmp_path.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tests.synthetic import draw_shape


def shape_shots(specs: Sequence[tuple[str, str, float]], seed: int = 3
                ) -> list[tuple[Image.Image, float]]:
    """[(colour, shape, seconds)] -> [(still, seconds)] drawn by the tests' shape painter."""
    rng = np.random.default_rng(seed)
    return [(draw_shape(colour, shape, rng), seconds) for colour, shape, seconds in specs]


def write_video(path: Path, shots: Sequence[tuple[Image.Image, float]], fps: int = 25,
                codec: str = "libx264", size: tuple[int, int] | None = None, gop: int = 25,
                rotation: int | None = None, options: dict[str, str] | None = None,
                container_options: dict[str, str] | None = None) -> list[float]:
    """Encode the shots one after the other at a constant rate; returns the cut times."""
    times, cuts, t = [], [], 0
    for image, seconds in shots:
        n = round(seconds * fps)
        times.append((image, n))
        t += n
        cuts.append(t / fps)
    frames = ((image, i) for image, n in times for i in range(n))
    timed = ((image, Fraction(k, fps)) for k, (image, _) in enumerate(frames))
    _encode(path, timed, Fraction(fps), codec, size or shots[0][0].size, gop, rotation, options,
            container_options)
    return cuts[:-1]


def write_three_shape_clip(path: Path) -> Path:
    """The red circle, blue square, green triangle clip: the video tests expect these three captions."""
    write_video(path, shape_shots([("red", "circle", 2.0), ("blue", "square", 2.2),
                                   ("green", "triangle", 1.8)]))
    return path


def write_vfr_video(path: Path, frames: Sequence[tuple[Image.Image, float]]) -> None:
    """Frames at the given times (seconds, any spacing): a variable-frame-rate file."""
    timed = ((image, Fraction(t).limit_denominator(1000)) for image, t in frames)
    _encode(path, timed, Fraction(30), "libx264", frames[0][0].size, 30, None,
            {"vsync": "vfr"}, None, time_base=Fraction(1, 1000))


def _encode(path: Path, timed, rate: Fraction, codec: str, size: tuple[int, int], gop: int,
            rotation: int | None, options: dict[str, str] | None,
            container_options: dict[str, str] | None, time_base: Fraction | None = None) -> None:
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, options={"g": str(gop), **(options or {})})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if time_base is not None:
            stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        base = time_base or Fraction(1) / rate
        for image, t in timed:
            frame = av.VideoFrame.from_image(image.convert("RGB").resize(size))
            frame.pts = int(round(t / base))
            frame.time_base = base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_audio_only(path: Path, seconds: float = 1.0) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        samples = int(44100 * seconds)
        tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 44100)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = tone[start:start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
