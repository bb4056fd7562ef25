"""Video core: cut times and captions on videos made from known stills, unclean files, merging."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.captioner import Captioner
from captioner.errors import VideoError
from captioner.segments import (
    Segment,
    VideoCaptioning,
    VideoJob,
    caption_video,
    merge_segments,
    similar_captions,
)
from captioner.video import SamplingOptions, VideoReader, timecode
from tests.videos import shape_shots, write_audio_only, write_vfr_video, write_video

FPS = 25
FRAME = 1 / FPS
SHOTS = [("red", "circle", 2.0), ("blue", "square", 2.2), ("green", "triangle", 1.8)]
EXPECTED = [f"a {colour} {shape}" for colour, shape, _ in SHOTS]


@pytest.fixture(scope="module")
def captioner(tiny_bundle: Path) -> Captioner:
    return Captioner(tiny_bundle, provider="cpu")


@pytest.fixture(scope="module")
def three_shots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    path = tmp_path_factory.mktemp("video") / "three_shots.mp4"
    cuts = write_video(path, shape_shots(SHOTS), fps=FPS)
    return path, cuts


def test_cuts_found_within_one_frame_and_each_scene_captioned_right(
        captioner: Captioner, three_shots: tuple[Path, list[float]]) -> None:
    path, cuts = three_shots
    assert cuts == pytest.approx([2.0, 4.2])
    with VideoCaptioning(captioner, path, VideoJob(SamplingOptions(scenes=True))) as run:
        segments = list(run.segments())
        found = run.reader.status.cuts
    assert len(found) == len(cuts)
    assert all(abs(f - c) <= FRAME for f, c in zip(found, cuts, strict=True)), found
    assert [s.caption for s in segments] == EXPECTED
    bounds = [s.end for s in segments[:-1]]
    assert all(abs(b - c) <= FRAME for b, c in zip(bounds, cuts, strict=True))
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(6.0, abs=FRAME)
    for seg in segments:  # the frame is inside its segment, near the middle
        assert seg.start <= seg.frame_time < seg.end
        assert abs(seg.frame_time - (seg.start + seg.end) / 2) < 0.3 * seg.duration


def test_every_n_seconds_seeks_and_merges_repeated_captions(
        captioner: Captioner, three_shots: tuple[Path, list[float]]) -> None:
    path, _ = three_shots
    job = VideoJob(SamplingOptions(every=1.0), merge=False)
    raw, stopped = caption_video(captioner, path, job)
    assert stopped is None
    assert [(s.start, s.end) for s in raw] == [(float(k), float(k + 1)) for k in range(6)]
    assert [s.caption for s in raw] == [EXPECTED[0]] * 2 + [EXPECTED[1]] * 2 + [EXPECTED[2]] * 2
    merged, _ = caption_video(captioner, path, VideoJob(SamplingOptions(every=1.0)))
    assert [(s.start, s.end, s.caption) for s in merged] == [
        (0.0, 2.0, EXPECTED[0]), (2.0, 4.0, EXPECTED[1]), (4.0, 6.0, EXPECTED[2])]


def test_seeking_skips_decoding(three_shots: tuple[Path, list[float]]) -> None:
    path, _ = three_shots
    with VideoReader(path, SamplingOptions(every=2.0)) as reader:
        times = [s.time for s in reader.samples()]
        decoded = reader.status.frames
    assert times == pytest.approx([1.0, 3.0, 5.0], abs=FRAME)
    assert decoded < 150 * 0.8  # keyframes every second: most frames are never decoded


def test_scenes_with_every_splits_long_scenes_then_merges_them_back(
        captioner: Captioner, three_shots: tuple[Path, list[float]]) -> None:
    path, cuts = three_shots
    with VideoReader(path, SamplingOptions(every=0.8, scenes=True)) as reader:
        parts = [(s.start, s.end, s.scene) for s in reader.samples()]
    assert len(parts) >= 8 and all(end - start <= 0.8 + 1e-9 for start, end, _ in parts)
    assert [scene for *_, scene in parts] == sorted(scene for *_, scene in parts)
    segments, _ = caption_video(captioner, path, VideoJob(SamplingOptions(every=0.8, scenes=True)))
    assert [s.caption for s in segments] == EXPECTED
    assert [s.end for s in segments[:-1]] == pytest.approx(cuts, abs=FRAME)


def test_variable_frame_rate_cut_is_found_at_its_timestamp(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (first, _), (second, _) = shape_shots(SHOTS[:2])
    frames, t = [], 0.0
    while t < 5.0:
        frames.append((first if t < 2.5 else second, round(t, 3)))
        t += float(rng.choice([0.02, 0.05, 0.1, 0.3]))
    write_vfr_video(tmp_path / "vfr.mp4", frames)
    true_cut = min(t for _, t in frames if t >= 2.5)
    gap = max(b - a for (_, a), (_, b) in zip(frames, frames[1:], strict=False))
    with VideoReader(tmp_path / "vfr.mp4", SamplingOptions(scenes=True)) as reader:
        samples = list(reader.samples())
    assert reader.status.cuts == pytest.approx([true_cut], abs=0.002)
    assert len(samples) == 2 and samples[1].start == pytest.approx(true_cut, abs=0.002)
    assert samples[1].end == pytest.approx(frames[-1][1], abs=gap)


def test_rotation_metadata_turns_frames_upright(tmp_path: Path) -> None:
    still = np.zeros((160, 320, 3), np.uint8)
    still[:, :80] = 255  # white band on the left of the stored frame
    write_video(tmp_path / "rot.mp4", [(Image.fromarray(still), 1.0)], rotation=90)
    with VideoReader(tmp_path / "rot.mp4", SamplingOptions(every=0.5)) as reader:
        image = next(iter(reader.samples())).image
        info = reader.info
    assert (info.rotation, info.width, info.height) == (90, 160, 320)
    assert image.size == (160, 320)
    arr = np.asarray(image.convert("L"), dtype=float)  # turned counter-clockwise: band at the bottom
    assert arr[-60:].mean() > 200 and arr[:200].mean() < 50


def test_4k_input_is_scaled_down_in_the_decoder(tmp_path: Path) -> None:
    shots = [(img.resize((3840, 2160)), 1.0) for img, _ in shape_shots(SHOTS[:2])]
    cuts = write_video(tmp_path / "4k.mp4", shots, options={"preset": "ultrafast"})
    with VideoReader(tmp_path / "4k.mp4", SamplingOptions(scenes=True)) as reader:
        samples = list(reader.samples())
        assert reader.info.width == 3840
    assert reader.status.cuts == pytest.approx(cuts, abs=FRAME)
    assert all(max(s.image.size) <= 320 for s in samples)
    assert samples[0].image.size == (320, 180)


@pytest.mark.parametrize("name,options", [("fs.mp4", {"movflags": "faststart"}), ("cut.mkv", None)])
@pytest.mark.parametrize("sampling", [SamplingOptions(scenes=True), SamplingOptions(every=1.0)])
def test_truncated_file_gives_what_decodes_and_says_where_it_stopped(
        captioner: Captioner, tmp_path: Path, name: str, options: dict | None,
        sampling: SamplingOptions) -> None:
    path = tmp_path / name
    write_video(path, shape_shots(SHOTS), container_options=options)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * 0.6)])
    with VideoCaptioning(captioner, path, VideoJob(sampling)) as run:
        segments = list(run.segments())
        status = run.reader.status
    assert status.stopped is not None
    assert f"stopped at {timecode(status.position)} of 00:00:06.000" in status.stopped
    assert 1.0 < status.position < 5.5
    assert segments and segments[0].caption == EXPECTED[0]
    assert segments[-1].end <= status.position + FRAME


def test_truncated_mp4_without_index_is_refused(three_shots: tuple[Path, list[float]],
                                                tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    data = three_shots[0].read_bytes()
    path.write_bytes(data[:len(data) * 6 // 10])  # the index (moov) is at the end: nothing to read
    with pytest.raises(VideoError, match="cannot be opened"):
        VideoReader(path, SamplingOptions(scenes=True))


def test_files_without_video_raise_video_error(tmp_path: Path) -> None:
    write_audio_only(tmp_path / "tone.m4a")
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoError, match="audio only"):
        VideoReader(tmp_path / "tone.m4a", SamplingOptions(every=1.0))
    with pytest.raises(VideoError, match="not a video"):
        VideoReader(tmp_path / "notes.mp4", SamplingOptions(every=1.0))
    with pytest.raises(VideoError, match="not found"):
        VideoReader(tmp_path / "missing.mp4", SamplingOptions(every=1.0))
    with pytest.raises(VideoError, match="folder"):
        VideoReader(tmp_path, SamplingOptions(every=1.0))


def test_closing_the_stream_early_stops_the_decoder_thread(
        captioner: Captioner, three_shots: tuple[Path, list[float]]) -> None:
    path, _ = three_shots
    before = threading.active_count()
    with VideoCaptioning(captioner, path, VideoJob(SamplingOptions(every=0.2), batch_size=2,
                                                   merge=False)) as run:
        stream = run.segments()
        first = next(stream)
        stream.close()
    assert first.caption == EXPECTED[0]
    assert threading.active_count() == before


def test_thumbnails_are_small_jpegs(captioner: Captioner,
                                    three_shots: tuple[Path, list[float]]) -> None:
    segments, _ = caption_video(captioner, three_shots[0],
                                VideoJob(SamplingOptions(scenes=True), thumbnails=True))
    for seg in segments:
        assert seg.thumbnail is not None and seg.thumbnail[:2] == b"\xff\xd8"
        assert len(seg.thumbnail) < 20_000


def test_similar_captions() -> None:
    assert similar_captions("a red circle", "A red circle.")
    assert similar_captions("a man riding a wave on a surfboard",
                            "a man riding a wave on top of a surfboard")
    assert not similar_captions("a red circle", "a blue circle")
    assert not similar_captions("a dog runs on the grass", "a cat runs on the grass")
    assert not similar_captions("a dog", "a dog is catching a red frisbee in a park")


def test_merge_keeps_the_surer_caption_and_spans_both() -> None:
    segs = [Segment(0, 1, "a dog on the grass", -0.5, 0.5), Segment(1, 2, "a dog on grass", -0.2, 1.5),
            Segment(2, 3, "a cat", -0.1, 2.5), Segment(3, 4, "a dog on grass", -0.1, 3.5)]
    merged = merge_segments(segs)
    assert [(s.start, s.end, s.caption) for s in merged] == [
        (0, 2, "a dog on grass"), (2, 3, "a cat"), (3, 4, "a dog on grass")]


def test_sampling_options_need_a_mode() -> None:
    with pytest.raises(ValueError):
        SamplingOptions()
    with pytest.raises(ValueError):
        SamplingOptions(every=0)


def test_timecode() -> None:
    assert timecode(3723.4567) == "01:02:03.457"
    assert timecode(5.0, ",") == "00:00:05,000"


def test_a_stub_at_the_end_of_a_scene_joins_the_part_before(
        three_shots: tuple[Path, list[float]]) -> None:
    path, _ = three_shots
    with VideoReader(path, SamplingOptions(every=1.0, scenes=True)) as reader:
        parts = [(s.start, round(s.end, 3), s.scene) for s in reader.samples()]
    assert [(a, b) for a, b, scene in parts if scene == 1] == [(2.0, 3.0), (3.0, 4.2)]  # not 4.0-4.2
    with VideoReader(path, SamplingOptions(every=4.0)) as reader:  # 6 s in 4 s windows: 0-4, 4-6
        assert [(s.start, s.end) for s in reader.samples()] == [(0.0, 4.0), (4.0, 6.0)]


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="POSIX named pipes")
def test_a_named_pipe_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "v.mp4"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _open_into(fifo, outcome), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # it blocked in open(): unblock it before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("opening a named pipe blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], VideoError), outcome
    assert "not a regular file" in str(outcome[0]) and "\n" not in str(outcome[0])


def _open_into(path: Path, outcome: list[BaseException]) -> None:
    try:
        VideoReader(path, SamplingOptions(every=1.0)).close()
    except BaseException as exc:  # noqa: BLE001 - the test looks at what it was
        outcome.append(exc)
