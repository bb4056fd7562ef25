"""The Video tab driven through pytest-qt: streaming segments, preview, edits, export, cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import srt
import webvtt

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402

from captioner.captioner import Captioner  # noqa: E402
from gui.video.model import CAPTION, THUMB  # noqa: E402
from gui.video.panel import VideoPanel  # noqa: E402
from tests.qt_helpers import MessageAnswerer  # noqa: E402
from tests.videos import shape_shots, write_audio_only, write_three_shape_clip, write_video  # noqa: E402

pytestmark = pytest.mark.gui
EXPECTED = ["a red circle", "a blue square", "a green triangle"]


@pytest.fixture(scope="module")
def captioner(tiny_bundle: Path) -> Captioner:
    return Captioner(tiny_bundle, provider="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_three_shape_clip(tmp_path_factory.mktemp("gui") / "shapes.mp4")


@pytest.fixture
def panel(qtbot, captioner: Captioner):
    widget = VideoPanel(None, lambda: captioner)
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    yield widget
    widget.shutdown()


def run_to_end(qtbot, panel: VideoPanel, path: Path) -> None:
    with qtbot.waitSignal(panel.model.rowsInserted, timeout=20_000):
        assert panel.open_video(path)
    qtbot.waitUntil(lambda: not panel.is_running() and panel.cancel_button.isEnabled() is False,
                    timeout=30_000)


def test_segments_stream_in_with_thumbnails_and_times(qtbot, panel: VideoPanel, clip: Path) -> None:
    panel.every.setValue(0.0)  # scenes only
    run_to_end(qtbot, panel, clip)
    model = panel.model
    assert [model.index(r, CAPTION).data() for r in range(model.rowCount())] == EXPECTED
    assert model.index(1, 1).data().startswith("00:00:02.0")
    assert model.index(0, THUMB).data(Qt.ItemDataRole.DecorationRole).width() > 0
    assert panel.progress.value() == 1000 and "3 segments" in panel.status.text()
    assert all(button.isEnabled() for button in panel.export_buttons.values())


def test_clicking_a_segment_shows_its_frame(qtbot, panel: VideoPanel, clip: Path) -> None:
    panel.every.setValue(0.0)
    run_to_end(qtbot, panel, clip)
    panel.table.selectRow(1)  # the frame is decoded in a worker, not in the GUI thread
    qtbot.waitUntil(lambda: panel.frame.pixmap() is not None and not panel.frame.pixmap().isNull(),
                    timeout=10_000)
    pixmap = panel.frame.pixmap()
    assert pixmap.width() > 100
    image = pixmap.toImage()
    colours = {image.pixelColor(x, y).name() for x in range(0, image.width(), 8)
               for y in range(0, image.height(), 8)}
    assert any(int(c[5:7], 16) > 150 and int(c[1:3], 16) < 100 for c in colours)  # blue is there
    assert panel.frame_caption.text() == "a blue square"


def test_edited_captions_are_exported_in_all_formats(qtbot, panel: VideoPanel, clip: Path,
                                                     tmp_path: Path) -> None:
    panel.every.setValue(0.0)
    run_to_end(qtbot, panel, clip)
    assert panel.model.setData(panel.model.index(1, CAPTION), "  a blue   square on grey ")
    for fmt in ("srt", "vtt", "csv", "json"):
        assert panel.export(tmp_path / f"out.{fmt}", fmt)
    edited = ["a red circle", "a blue square on grey", "a green triangle"]
    assert [s.content for s in srt.parse((tmp_path / "out.srt").read_text())] == edited
    assert [c.text for c in webvtt.read(str(tmp_path / "out.vtt"))] == edited
    assert "a blue square on grey" in (tmp_path / "out.csv").read_text()
    doc = json.loads((tmp_path / "out.json").read_text())
    assert [s["caption"] for s in doc["segments"]] == edited and doc["complete"]


def test_cancel_stops_a_long_video(qtbot, panel: VideoPanel, tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    write_video(path, shape_shots([("red", "circle", 30.0), ("blue", "square", 30.0)]), fps=10)
    panel.every.setValue(0.2)
    panel.scenes.setChecked(False)
    with qtbot.waitSignal(panel.model.rowsInserted, timeout=20_000):
        panel.open_video(path)
    assert panel.cancel_button.isEnabled()
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10_000)
    qtbot.waitUntil(lambda: "Cancelled" in panel.status.text(), timeout=5_000)
    assert panel.model.rowCount() >= 1
    assert panel.model.segments()[-1].end < 50.0  # stopped long before the end
    assert panel.progress.value() < 1000


def test_unreadable_file_and_missing_model_are_reported(qtbot, panel: VideoPanel,
                                                        tmp_path: Path) -> None:
    write_audio_only(tmp_path / "tone.m4a")
    panel.open_video(tmp_path / "tone.m4a")
    qtbot.waitUntil(lambda: "Cannot caption" in panel.status.text(), timeout=10_000)
    assert "audio only" in panel.status.text() and panel.model.rowCount() == 0
    empty = VideoPanel(None, lambda: None)
    qtbot.addWidget(empty)
    assert not empty.open_video(tmp_path / "tone.m4a")
    assert "No model" in empty.status.text()


def test_dropping_a_video_opens_it(qtbot, panel: VideoPanel, clip: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(clip))])
    event = QDropEvent(QPointF(QPoint(10, 10)), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(panel.model.rowsInserted, timeout=20_000):
        panel.dropEvent(event)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=30_000)
    assert panel.video == clip and panel.model.rowCount() == 3


def test_rows_with_the_same_caption_grow_instead_of_repeating(qtbot, panel: VideoPanel,
                                                              clip: Path) -> None:
    panel.every.setValue(0.5)
    panel.scenes.setChecked(False)
    run_to_end(qtbot, panel, clip)
    segments = panel.model.segments()
    assert [s.caption for s in segments] == EXPECTED
    assert [s.start for s in segments] == [0.0, 2.0, 4.0]


def test_opening_another_video_mid_run_replaces_the_first(qtbot, panel: VideoPanel, clip: Path,
                                                          tmp_path: Path) -> None:
    long = tmp_path / "long.mp4"
    write_video(long, shape_shots([("yellow", "circle", 40.0)]), fps=10)
    panel.every.setValue(0.0)
    with qtbot.waitSignal(panel.model.rowsInserted, timeout=20_000):
        panel.open_video(long)
        panel.open_video(clip)
    qtbot.waitUntil(lambda: not panel.is_running() and "3 segments" in panel.status.text(),
                    timeout=30_000)
    assert [s.caption for s in panel.model.segments()] == EXPECTED


# --- issue 14, bug 4: edits are never lost without a question; the sampling re-runs the clip ------
def test_edited_captions_are_not_dropped_by_opening_another_video(qtbot, panel: VideoPanel, clip: Path,
                                                                  tmp_path: Path) -> None:
    panel.every.setValue(0.0)
    run_to_end(qtbot, panel, clip)
    assert panel.model.setData(panel.model.index(0, CAPTION), "my own words")
    other = tmp_path / "other.mp4"
    write_video(other, shape_shots([("red", "square", 2.0)]))
    answerer = MessageAnswerer("Keep editing")
    assert not panel.open_video(other)
    assert "not exported" in answerer.seen[0] and panel.video == clip
    assert panel.model.segments()[0].caption == "my own words"
    assert panel.export(tmp_path / "mine.srt", "srt")  # exported: nothing to lose any more
    run_to_end(qtbot, panel, other)
    assert panel.video == other


def test_changing_the_sampling_runs_the_clip_again_and_asks_about_edits(qtbot, panel: VideoPanel,
                                                                        clip: Path) -> None:
    panel.every.setValue(0.0)
    run_to_end(qtbot, panel, clip)
    assert len(panel.model.segments()) == 3
    with qtbot.waitSignal(panel.model.modelReset, timeout=5_000):  # a new run starts by itself
        panel.scenes.setChecked(False)
        panel.every.setValue(0.5)
    qtbot.waitUntil(lambda: not panel.is_running() and panel.model.rowCount() == 3, timeout=30_000)
    assert panel.ran_with is not None and panel.ran_with.every == 0.5 and not panel.ran_with.scenes
    # with an edit, the person is asked; keeping the edits puts the controls back
    assert panel.model.setData(panel.model.index(1, CAPTION), "my own words")
    answerer = MessageAnswerer("Keep editing")
    panel.every.setValue(2.0)
    qtbot.waitUntil(lambda: bool(answerer.seen), timeout=5_000)
    assert panel.every.value() == 0.5 and not panel.is_running()
    assert panel.model.segments()[1].caption == "my own words"
