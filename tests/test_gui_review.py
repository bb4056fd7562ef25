"""Issue 17 in the app: confidence on tiles and in the editor, tag chips, sorting and the Low
confidence filter, the tag-count pane. Results are handed in directly (tests/qt_helpers.py
give_result), so nothing depends on what the tiny model writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gui.models.image_list import Role, Show, Sort
from gui.models.items import Source
from tests.qt_helpers import give_result, item, open_and_wait

pytestmark = pytest.mark.gui


def _paths(window) -> list[Path]:
    return [i.path for i in window.photos.model.items() if not i.name.startswith("zz_")]


def _combo_to(combo, value: int) -> None:
    combo.setCurrentIndex(combo.findData(int(value)))


def test_confidence_on_the_editor_and_tooltip_and_nothing_when_unknown(qtbot, window, shapes: dict) -> None:
    open_and_wait(qtbot, window, [shapes["root"]], shapes["count"])
    sure, unknown = _paths(window)[:2]
    give_result(window, sure, "a red circle", confidence=0.22, tags=(("dog", 0.9),))
    give_result(window, unknown, "a blue square", confidence=None)
    page = window.page
    page.select_item(item(window, sure))
    qtbot.waitUntil(lambda: page.confidence.isVisible())
    assert "22%" in page.confidence.label.text() and "doubtful" in page.confidence.label.text()
    assert "confidence 22%" in page.proxy.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "%/word" not in page.nbest.topLevelItem(0).text(2)  # the headline is the confidence
    assert page.strip.per_word.text().endswith("%/word")  # per-word stays in the word strip
    page.select_item(item(window, unknown))
    qtbot.waitUntil(lambda: not page.confidence.isVisible())
    assert item(window, unknown).confidence is None
    # a caption the person wrote is not the model's: its number is labelled as the model's
    page.select_item(item(window, sure))
    page.use_alternative("my words")
    assert item(window, sure).confidence is None
    qtbot.waitUntil(lambda: "yours replaces it" in page.confidence.label.text())


def test_a_tag_chip_inserts_its_word_at_the_cursor_and_undo_removes_it(qtbot, window, shapes: dict) -> None:
    open_and_wait(qtbot, window, [shapes["root"]], shapes["count"])
    path = _paths(window)[0]
    photo = give_result(window, path, "a dog on grass", confidence=0.7, tags=(("dog", 0.9), ("frisbee", 0.4)))
    page = window.page
    page.select_item(photo)
    qtbot.waitUntil(lambda: page.tag_chips.isVisible() and len(page.tag_chips.buttons) == 2)
    dog, frisbee = page.tag_chips.buttons
    assert "gray" in dog.styleSheet()  # the caption says "dog" already
    page.editor.set_cursor_position(len("a dog"))
    qtbot.mouseClick(frisbee, Qt.MouseButton.LeftButton)
    assert photo.caption == "a dog frisbee on grass" and photo.source is Source.USER
    assert page.editor.toPlainText() == photo.caption
    assert page.editor.cursor_position() == len("a dog frisbee")
    window.actions_by_name["undo"].trigger()
    assert photo.caption == "a dog on grass" and photo.source is Source.MODEL
    window.actions_by_name["redo"].trigger()
    assert photo.caption == "a dog frisbee on grass"


def test_lowest_confidence_first_and_the_low_confidence_filter(qtbot, window, shapes: dict) -> None:
    open_and_wait(qtbot, window, [shapes["root"]], shapes["count"])
    paths = _paths(window)[:5]
    for path, confidence in zip(paths, (0.9, 0.1, None, 0.25, 0.6), strict=True):
        give_result(window, path, f"caption of {path.stem}", confidence=confidence)
    page, grid = window.page, window.page.grid
    _combo_to(page.sort_combo, Sort.CONFIDENCE)
    shown = page.visible_items()
    assert [i.path for i in shown[:4]] == [paths[1], paths[3], paths[4], paths[0]]
    # the person fixes the most doubtful one: it stays where it is while they work down the list
    page.select_item(shown[0])
    page.use_alternative("a caption a person fixed")
    assert page.visible_items()[0] is shown[0]
    assert page.step(1) and window.photos.current() is shown[1]
    # a click on a tile of the sorted grid: highlight and editor are that photo
    index = page.proxy.index(2, 0)
    clicked = index.data(Role.ITEM)
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=grid.visualRect(index).center())
    qtbot.wait(50)
    assert window.photos.current() is clicked and page.editor.toPlainText() == clicked.caption
    assert [i.data(Role.ITEM) for i in grid.selectionModel().selectedIndexes()] == [clicked]
    # Low confidence (threshold 0.3): the two doubtful model captions, and the current photo
    page.select_item(item(window, paths[0]))
    _combo_to(page.show_combo, Show.LOW)
    qtbot.wait(20)
    assert {i.path for i in page.visible_items()} == {paths[0], paths[3]}  # paths[1] was fixed
    page.select_item(item(window, paths[3]))
    qtbot.wait(20)
    assert [i.path for i in page.visible_items()] == [paths[3]]
    # the threshold is a setting
    page.set_low_confidence(0.65)
    assert {i.path for i in page.visible_items()} == {paths[3], paths[4]}
    assert grid.delegate.low_confidence == 0.65


def test_the_tag_pane_counts_the_listed_photos_and_a_click_filters(qtbot, window, shapes: dict) -> None:
    open_and_wait(qtbot, window, [shapes["root"]], shapes["count"])
    paths = _paths(window)[:3]
    give_result(window, paths[0], "a dog", 0.8, (("dog", 0.9), ("grass", 0.3)))
    give_result(window, paths[1], "two dogs", 0.8, (("dog", 0.7),))
    give_result(window, paths[2], "a cat", 0.8, (("cat", 0.8), ("grass", 0.5)))
    page = window.page
    qtbot.waitUntil(lambda: page.tag_pane.words() == ["dog", "grass", "cat"])
    counts = [(page.tag_pane.tree.topLevelItem(i).text(0), page.tag_pane.tree.topLevelItem(i).text(1))
              for i in range(3)]
    assert counts == [("dog", "2"), ("grass", "2"), ("cat", "1")]
    page.select_item(item(window, paths[0]))
    row = page.tag_pane.tree.topLevelItem(1)
    rect = page.tag_pane.tree.visualItemRect(row)
    qtbot.mouseClick(page.tag_pane.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.filter_edit.text() == "tag:grass"
    qtbot.wait(20)
    assert {i.path for i in page.visible_items()} == {paths[0], paths[2]}
    # the pane now counts what is listed; the active tag is marked
    qtbot.waitUntil(lambda: page.tag_pane.words() == ["grass", "cat", "dog"])
    assert page.tag_pane.tree.topLevelItem(0).text(0) == "✓ grass"
    page.toggle_tag_filter("grass")  # a second click lists everything again
    assert page.filter_edit.text() == ""
    assert len(page.visible_items()) == shapes["count"]


def test_find_replace_previews_listed_captions_and_undoes_in_one_step(qtbot, window, shapes: dict) -> None:
    open_and_wait(qtbot, window, [shapes["root"]], shapes["count"])
    paths = _paths(window)[:5]
    texts = ["a dog on grass", "a Dog runs", "a hotdog stand", "a cat", "the dog sleeps"]
    for path, text in zip(paths, texts, strict=True):
        give_result(window, path, text, 0.8, (("dog", 0.8),) if path != paths[4] else ())
    page = window.page
    page.select_item(item(window, paths[3]))
    page.filter_edit.setText("tag:dog")  # the last photo is not listed: it is left alone
    qtbot.wait(20)
    page.select_item(item(window, paths[0]))
    qtbot.wait(20)
    dialog = window.find_replace()
    qtbot.keyClicks(dialog.find_edit, "dog")
    qtbot.keyClicks(dialog.replace_edit, "puppy")
    qtbot.waitUntil(lambda: dialog.preview.topLevelItemCount() == 2)  # whole words: not "hotdog"
    rows = [dialog.preview.topLevelItem(i) for i in range(2)]
    assert [(r.text(1), r.text(2)) for r in rows] == [("a dog on grass", "a puppy on grass"),
                                                     ("a Dog runs", "a puppy runs")]
    assert "2 caption(s)" in dialog.replace_button.text()
    qtbot.mouseClick(dialog.replace_button, Qt.MouseButton.LeftButton)
    captions = [item(window, p).caption for p in paths]
    assert captions == ["a puppy on grass", "a puppy runs", "a hotdog stand", "a cat", "the dog sleeps"]
    assert page.editor.toPlainText() == "a puppy on grass"
    assert item(window, paths[1]).source is Source.USER and item(window, paths[1]).dirty
    window.actions_by_name["undo"].trigger()  # one step puts every caption back
    assert [item(window, p).caption for p in paths] == texts
    assert item(window, paths[1]).source is Source.MODEL
    window.actions_by_name["redo"].trigger()
    assert [item(window, p).caption for p in paths] == captions
    # match case, and replacing with nothing leaves no double space
    dialog = window.find_replace()
    dialog.match_case.setChecked(True)
    dialog.find_edit.setText("a")
    dialog.refresh()
    assert {c.new for c in dialog.changes} == {"puppy on grass", "puppy runs", "hotdog stand", "cat"}
    dialog.reject()


def _brightness(widget, point) -> float:
    colour = widget.grab().toImage().pixelColor(point)
    return (colour.red() + colour.green() + colour.blue()) / 3


def test_preview_zooms_to_full_size_and_the_overlay_stays_on_the_pixels(qtbot, window, tmp_path) -> None:
    import numpy as np
    from PIL import Image
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from gui.widgets.preview import Attention

    photo = tmp_path / "big" / "grey.png"
    photo.parent.mkdir()
    Image.new("RGB", (3000, 2000), (128, 128, 128)).save(photo)
    open_and_wait(qtbot, window, [photo.parent], 1)
    page, preview = window.page, window.page.preview
    page.select_item(item(window, photo))
    qtbot.waitUntil(lambda: photo in page._preview_cache, timeout=20_000)
    assert preview.scale() is None and preview.natural_size().width() == 3000
    assert preview.pixmap().width() < 3000  # the fitted copy
    # the wheel zooms in around the cursor
    centre = QPointF(preview.rect().center())
    wheel = QWheelEvent(centre, preview.mapToGlobal(centre), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(preview, wheel)
    assert preview.scale() == pytest.approx(preview.fit_scale() * 1.25)
    # 100 % at the top-left sixth of the photo: the full-size copy is loaded for it
    fitted = _fitted_rect(preview)
    preview.reset_zoom()
    anchor = QPointF(fitted.x() + fitted.width() / 6, fitted.y() + fitted.height() / 6)
    preview.zoom_to(1.0, anchor)
    assert preview.scale() == 1.0 and preview.image_rect().width() == 3000
    qtbot.waitUntil(lambda: preview.pixmap().width() == 3000, timeout=20_000)
    assert preview.scale() == 1.0  # a sharper copy does not change the view
    # what is on screen is the photo's top-left cell: its heat shows, the centre cell's does not
    corner = np.zeros((3, 3), np.float32)
    corner[0, 0] = 1.0
    middle = np.zeros((3, 3), np.float32)
    middle[1, 1] = 1.0
    preview.set_attention(Attention(corner, "dog", 0, 1))
    hot = _brightness(preview, preview.rect().center())
    preview.set_attention(Attention(middle, "dog", 0, 1))
    cold = _brightness(preview, preview.rect().center())
    assert hot > cold + 20, (hot, cold)
    # Ctrl+0 (or a double-click) goes back to fit; a new photo always starts fitted
    window.actions_by_name["preview_zoom"].trigger()
    assert preview.scale() is None
    preview.toggle_zoom()
    assert preview.scale() == 1.0
    page.select_item(None)
    assert preview.scale() is None


def _fitted_rect(preview):
    from PySide6.QtCore import QRectF

    return QRectF(preview.image_rect())


def test_video_segments_show_tags_and_doubtful_ones_are_marked(qtbot) -> None:
    from captioner.segments import Segment
    from captioner.tags import Tag
    from gui.video.model import CAPTION, DOUBTFUL_TINT, TAGS, SegmentModel

    model = SegmentModel()
    model.merge = False
    tags = (Tag("dog", 0.9), Tag("grass", 0.4))
    model.add(Segment(0, 2, "a dog on grass", -0.5, 1, confidence=0.2, tags=tags))
    model.add(Segment(2, 4, "a cat on a sofa", -0.4, 3, confidence=0.9, tags=(Tag("cat", 0.8),)))
    model.add(Segment(4, 6, "a bird", -0.4, 5))  # no calibration: nothing shown
    assert model.index(0, TAGS).data() == "dog, grass"
    assert model.index(0, CAPTION).data(Qt.ItemDataRole.BackgroundRole) == DOUBTFUL_TINT
    assert model.index(1, CAPTION).data(Qt.ItemDataRole.BackgroundRole) is None
    assert model.index(0, CAPTION).data(Qt.ItemDataRole.DecorationRole) is not None
    assert model.index(2, CAPTION).data(Qt.ItemDataRole.DecorationRole) is None
    assert "confidence 20% (doubtful)" in model.index(0, CAPTION).data(Qt.ItemDataRole.ToolTipRole)
    assert model.doubtful_count() == 1
    assert model.setData(model.index(0, CAPTION), "a puppy on grass")  # a person's caption: not marked
    assert model.doubtful_count() == 0 and model.confidence(0) is None
    model.low_confidence = 0.95
    assert model.doubtful_count() == 1
