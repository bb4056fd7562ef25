"""Segment writers read back by maintained parsers, and `captioner video` end to end."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import pytest
import srt
import webvtt

from captioner.cli import main
from captioner.cli.targets import output_labels
from captioner.segments import Segment, merge_pair
from captioner.subtitles import FORMATS, render, to_csv, to_json, to_srt, to_vtt, wrap_cue
from captioner.tags import Tag
from tests.test_keywords import DOG_PHOTO, session_tagged_bundle
from tests.videos import shape_shots, write_audio_only, write_three_shape_clip, write_video

LONG = ("a man in a red shirt and a black hat is riding a brown horse along a dirt road "
        "next to a river while two dogs run behind him across the green grass")
SEGMENTS = [
    Segment(0.0, 2.0, "a red circle", -0.1, 1.0),
    Segment(2.0, 4.25, "fish & chips <b>not bold</b> --> arrow", -0.2, 3.0, scene=1),
    Segment(4.25, 3661.5, LONG, -0.3, 100.0, scene=2),
]


def _vtt(text: str) -> list[webvtt.Caption]:
    return list(webvtt.from_buffer(io.StringIO(text)))


def test_cue_wrapping_keeps_two_lines_of_42() -> None:
    assert wrap_cue("a red circle") == [("a red circle",)]
    for text in (LONG, "x" * 100, "word " * 40, "a man in a red shirt is riding a bike down a road"):
        cues = wrap_cue(text)
        assert all(1 <= len(lines) <= 2 and all(len(line) <= 42 for line in lines) for lines in cues)
        joined = " ".join(" ".join(lines) for lines in cues)
        if "x" not in text:
            assert joined.split() == text.split()  # nothing lost, nothing reordered
    two = wrap_cue("a man in a red shirt is riding a bike down a road")[0]
    assert len(two) == 2 and abs(len(two[0]) - len(two[1])) <= 8  # balanced, not greedy


def test_srt_parses_back_with_srt() -> None:
    subs = list(srt.parse(to_srt(SEGMENTS)))
    assert subs[0].start.total_seconds() == 0.0 and subs[0].end.total_seconds() == 2.0
    assert subs[0].content == "a red circle"
    assert subs[1].content == "fish & chips <b>not bold</b> -> arrow"
    long_cues = subs[2:]
    assert len(long_cues) >= 2  # the long caption is spread over cues, none over 2x42
    assert long_cues[0].start.total_seconds() == 4.25
    assert long_cues[-1].end.total_seconds() == 3661.5
    assert all(a.end == b.start for a, b in zip(long_cues, long_cues[1:], strict=False))
    assert " ".join(s.content.replace("\n", " ") for s in long_cues) == LONG
    for sub in subs:
        lines = sub.content.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines)


def test_vtt_parses_back_with_webvtt_py() -> None:
    text = to_vtt(SEGMENTS, source="clip.mp4")
    assert text.startswith("WEBVTT\n")
    captions = _vtt(text)
    assert captions[0].start == "00:00:00.000" and captions[0].end == "00:00:02.000"
    assert captions[0].text == "a red circle"
    assert "&amp;" in captions[1].raw_text and "&lt;b&gt;" in captions[1].raw_text
    assert "-->" not in captions[1].raw_text.replace("--&gt;", "")
    assert captions[-1].end == "01:01:01.500"
    for caption in captions:  # 42 characters as shown, entities decoded
        shown = [html.unescape(line) for line in caption.lines]
        assert len(shown) <= 2 and all(len(line) <= 42 for line in shown)


def test_csv_and_json_hold_every_segment() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(SEGMENTS, ["t/1.jpg", None, "t/3.jpg"]))))
    assert [r["caption"] for r in rows] == [s.caption for s in SEGMENTS]
    assert rows[2]["end_time"] == "01:01:01.500" and float(rows[1]["start"]) == 2.0
    assert rows[0]["thumbnail"] == "t/1.jpg" and rows[1]["thumbnail"] == ""
    doc = json.loads(to_json(SEGMENTS, "v.mp4", 3661.5, None, ["t/1.jpg", None, "t/3.jpg"]))
    assert doc["complete"] is True and doc["video"] == "v.mp4"
    assert [s["caption"] for s in doc["segments"]] == [s.caption for s in SEGMENTS]
    assert doc["segments"][1]["scene"] == 1 and "thumbnail" not in doc["segments"][1]
    partial = json.loads(render("json", SEGMENTS[:1], _doc_stopped()))
    assert partial["complete"] is False and "stopped at" in partial["stopped"]


def test_csv_and_json_carry_confidence_and_tags() -> None:
    tagged = [Segment(0.0, 2.0, "a dog on a bed", -0.1, 1.0, confidence=0.8125,
                      tags=(Tag("dog", 0.91), Tag("bed", 0.3))),
              Segment(2.0, 3.0, "a field", -0.4, 2.5),  # an uncalibrated model, no tags
              Segment(3.0, 4.0, "a dog", -0.4, 3.5, tags=(Tag("=cmd", 0.5),))]
    rows = list(csv.DictReader(io.StringIO(to_csv(tagged))))
    assert [(r["confidence"], r["tags"]) for r in rows] == [("0.8125", "dog; bed"), ("", ""),
                                                           ("", "'=cmd")]
    segments = json.loads(to_json(tagged))["segments"]
    assert segments[0]["confidence"] == 0.8125
    assert segments[0]["tags"] == [{"tag": "dog", "p": 0.91}, {"tag": "bed", "p": 0.3}]
    assert segments[1]["confidence"] is None and segments[1]["tags"] == []


def test_a_merged_segment_keeps_its_captions_confidence_and_both_frames_tags() -> None:
    a = Segment(0.0, 2.0, "a dog on the grass", -0.2, 1.0, confidence=0.7,
                tags=(Tag("dog", 0.6), Tag("ball", 0.25)))
    b = Segment(2.0, 4.0, "a dog on the green grass", -0.5, 3.0, confidence=0.4,
                tags=(Tag("dog", 0.9), Tag("frisbee", 0.3)))
    merged = merge_pair(a, b)
    assert (merged.start, merged.end, merged.caption, merged.confidence) == (
        0.0, 4.0, "a dog on the grass", 0.7)
    assert merged.tags == (Tag("dog", 0.9), Tag("frisbee", 0.3), Tag("ball", 0.25))


def _doc_stopped():
    from captioner.subtitles import VideoDocument
    return VideoDocument("v.mp4", 10.0, "decoding stopped at 00:00:02.000 of 00:00:10.000")


def test_empty_caption_gets_no_cue() -> None:
    segs = [Segment(0, 1, "", -1, 0.5), Segment(1, 2, "a dog", -1, 1.5)]
    assert [s.content for s in srt.parse(to_srt(segs))] == ["a dog"]
    assert [c.text for c in _vtt(to_vtt(segs))] == ["a dog"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_three_shape_clip(tmp_path_factory.mktemp("cli") / "shapes.mp4")


def test_cli_writes_all_four_formats(tiny_bundle: Path, clip: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["video", str(clip), "--scenes", "--format", "srt,vtt", "--format", "csv",
                 "--format", "json", "--out-dir", str(out), "--model", str(tiny_bundle),
                 "--thumbnails", "--progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    expected = ["a red circle", "a blue square", "a green triangle"]
    assert [line.split("\t")[3] for line in captured.out.splitlines()] == expected
    assert "[" in captured.err and "100%" in captured.err  # the bar was drawn
    assert "1 videos, 3 segments" in captured.err and "4 files written" in captured.err
    assert [s.content for s in srt.parse((out / "shapes.srt").read_text())] == expected
    assert [c.text for c in webvtt.read(str(out / "shapes.vtt"))] == expected
    rows = list(csv.DictReader((out / "shapes.csv").open()))
    assert [r["caption"] for r in rows] == expected
    assert all((out / r["thumbnail"]).is_file() for r in rows)
    doc = json.loads((out / "shapes.json").read_text())
    assert doc["complete"] and [s["caption"] for s in doc["segments"]] == expected
    assert [s["start"] for s in doc["segments"]] == pytest.approx([0.0, 2.0, 4.2], abs=0.04)


def test_cli_never_overwrites_without_flag(tiny_bundle: Path, clip: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "shapes.srt").write_text("mine\n")
    args = ["video", str(clip), "--every", "2", "--out-dir", str(tmp_path), "--model",
            str(tiny_bundle), "--quiet"]
    assert main(args) == 0
    assert (tmp_path / "shapes.srt").read_text() == "mine\n"
    assert "skipped" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert "a red circle" in (tmp_path / "shapes.srt").read_text()


def test_cli_reports_bad_files_and_goes_on(tiny_bundle: Path, clip: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    write_audio_only(tmp_path / "tone.m4a")
    code = main(["video", str(tmp_path / "tone.m4a"), str(clip), "--out-dir", str(tmp_path / "o"),
                 "--model", str(tiny_bundle), "--format", "json", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no video stream (audio only)" in err and "1 failed" in err
    assert (tmp_path / "o" / "shapes.json").is_file()
    assert main(["video", str(clip), "--format", "docx", "--model", str(tiny_bundle)]) == 2


def test_cli_on_a_truncated_file_writes_what_decoded(tiny_bundle: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.mkv"
    write_video(path, shape_shots([("red", "circle", 2.0), ("blue", "square", 4.0)]))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    code = main(["video", str(path), "--scenes", "--format", "json", "--model", str(tiny_bundle),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "warning" in err and "stopped at" in err
    doc = json.loads((tmp_path / "cut.json").read_text())
    assert doc["complete"] is False and doc["segments"][0]["caption"] == "a red circle"


# the real clips in ../shared/data/video: cut times from its README, ffmpeg's select filter
REAL_CUTS = {"scene_cuts_3shots.mp4": [5.0, 9.64, 12.6], "city_night_cc0.mp4": [4.64],
             "pedestrians_vtest.mp4": [], "box_handheld.mp4": []}


def test_real_clips_through_the_cli_into_all_formats(tiny_bundle: Path, video_dir: Path,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    clips = sorted(video_dir / name for name in REAL_CUTS)
    code = main(["video", *map(str, clips), "--scenes", "--no-merge", "--format", "all",
                 "--out-dir", str(tmp_path), "--model", str(tiny_bundle), "--quiet"])
    assert code == 0, capsys.readouterr().err
    for clip in clips:
        doc = json.loads((tmp_path / f"{clip.stem}.json").read_text())
        starts = [s["start"] for s in doc["segments"][1:]]
        assert starts == pytest.approx(REAL_CUTS[clip.name], abs=0.04), clip.name
        assert doc["complete"]
        assert len(list(srt.parse((tmp_path / f"{clip.stem}.srt").read_text()))) == len(starts) + 1
        assert len(webvtt.read(str(tmp_path / f"{clip.stem}.vtt"))) == len(starts) + 1
        assert len(list(csv.DictReader((tmp_path / f"{clip.stem}.csv").open()))) == len(starts) + 1
    assert set(FORMATS) == {"srt", "vtt", "csv", "json"}


def test_distinct_videos_get_distinct_output_names(tmp_path: Path) -> None:
    """Same names in one output folder are told apart by their folders, else their extension,
    else a number; the same command always gives the same names."""
    out = tmp_path / "out"
    a, b, own = Path("x/a/clip.mp4"), Path("x/b/clip.mp4"), Path("y/a_clip.mp4")
    assert output_labels([a, b], out) == {a: "a_clip", b: "b_clip"}
    assert output_labels([b, a], out) == {a: "a_clip", b: "b_clip"}
    assert output_labels([a, b], None) == {a: "clip", b: "clip"}  # each beside its own video
    mp4, mkv = Path("v/clip.mp4"), Path("v/CLIP.mkv")  # one name on a case-blind disk
    assert output_labels([mp4, mkv], None) == {mp4: "clip.mp4", mkv: "CLIP.mkv"}
    deep1, deep2 = Path("p/same/clip.mp4"), Path("q/same/clip.mp4")
    assert output_labels([deep1, deep2], out) == {deep1: "p_same_clip", deep2: "q_same_clip"}
    labels = output_labels([own, a, b], out)
    assert labels[own] == "a_clip" and labels[a] == "a_clip-2" and labels[b] == "b_clip"


def test_csv_text_cells_cannot_start_a_formula() -> None:
    segs = [Segment(0.0, 1.0, "=1+1", -0.5, 0.5), Segment(1.0, 2.0, "a dog", -0.5, 1.5)]
    rows = list(csv.DictReader(io.StringIO(to_csv(segs, ["-2+3_thumbs/0001.jpg", None]))))
    assert rows[0]["caption"] == "'=1+1" and rows[1]["caption"] == "a dog"
    assert rows[0]["thumbnail"] == "'-2+3_thumbs/0001.jpg" and rows[0]["score"] == "-0.5000"


def test_a_video_name_cannot_inject_cues() -> None:
    """The WebVTT NOTE holds the file name: its newlines must not end the note and start a cue."""
    hostile = "x\n\n99\n00:00:00.000 --> 00:09:00.000\nFAKE CUE\x1b[2J"
    text = to_vtt(SEGMENTS[:1], source=hostile)
    assert [c.text for c in _vtt(text)] == ["a red circle"]
    note = "NOTE captions of x 99 00:00:00.000 --&gt; 00:09:00.000 FAKE CUE [2J by captioner"
    assert text.split("\n")[2] == note


@pytest.fixture(scope="session")
def tagged_bundle(tmp_path_factory: pytest.TempPathFactory, flickr_dir: Path) -> Path:
    return session_tagged_bundle(tmp_path_factory, flickr_dir)


def test_cli_segments_carry_the_tags_of_their_frames(tagged_bundle: Path, flickr_dir: Path,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A segment's tags are those of its frame: every frame of this clip shows two dogs."""
    from PIL import Image

    with Image.open(flickr_dir / "images" / DOG_PHOTO) as img:
        dogs = img.convert("RGB").resize((320, 240))
    clip = tmp_path / "dogs.mp4"
    write_video(clip, [(dogs, 2.0)])
    code = main(["video", str(clip), "--every", "1", "--no-merge", "--format", "csv,json",
                 "--model", str(tagged_bundle), "--provider", "cpu", "--variant", "fp32", "--quiet"])
    assert code == 0, capsys.readouterr().err
    segments = json.loads((tmp_path / "dogs.json").read_text())["segments"]
    rows = list(csv.DictReader((tmp_path / "dogs.csv").open()))
    assert len(segments) == len(rows) >= 2
    for seg, row in zip(segments, rows, strict=True):
        assert seg["tags"][0]["tag"] == "dog" and seg["tags"][0]["p"] > 0.5
        assert seg["confidence"] is None and row["confidence"] == ""  # no calibration in this bundle
        assert row["tags"] == "; ".join(t["tag"] for t in seg["tags"])
