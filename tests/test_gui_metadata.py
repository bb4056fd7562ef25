"""The app's "Write alt text into photos", driven for real: a real window, real photos on disk.

Photos that already hold alt text show it as their caption when opened; writing asks before it
replaces alt text someone else wrote (the same questions as for caption files, answered here by
clicking the dialog's buttons from a timer), shows progress, and leaves pixels untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("exiv2")

from PIL import Image  # noqa: E402

from captioner.metadata import ALT_TEXT, DESCRIPTION, ExistingText, read_alt_text, write_alt_text  # noqa: E402
from gui.controllers.metadata import ACTION_NAME, AltTextController, AltTextRun  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.models.items import Source  # noqa: E402
from tests.qt_helpers import DialogAnswerer, MessageAnswerer, build_window
from tests.synthetic import make_shapes_folder  # noqa: E402

pytestmark = pytest.mark.gui
TIMEOUT = 30_000


def pixel_hash(path: Path) -> str:
    with Image.open(path) as img:
        return hashlib.sha256(img.tobytes()).hexdigest()


def pillow_alt_text(path: Path) -> bool:
    """Independent check: the IPTC alt-text element is in the XMP packet Pillow extracts."""
    with Image.open(path) as img:
        raw = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp") or b""
    raw = raw.encode() if isinstance(raw, str) else raw
    return b"AltTextAccessibility" in raw


@pytest.fixture
def window(qtbot, tmp_path: Path, tiny_bundle: Path) -> Iterator[MainWindow]:
    win = build_window(qtbot, tmp_path / "settings.ini", tiny_bundle)
    yield win
    win.captions.shutdown()


def controller_of(window: MainWindow) -> AltTextController:
    assert isinstance(window.photos.alt_text, AltTextController)  # installed once, by the window
    assert len([a for a in window.actions() if a.objectName() == ACTION_NAME]) == 1
    return window.photos.alt_text


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    """Shape photos as JPEG/PNG/WebP; one holds alt text, one a description, one a sidecar too."""
    shapes = make_shapes_folder(tmp_path / "src", per_class=1, seed=7, sidecars=False)
    root = tmp_path / "photos"
    root.mkdir()
    names = {"alt": "a.jpg", "described": "b.jpg", "sidecar": "c.jpg", "plain_png": "d.png",
             "plain_webp": "e.webp", "plain_jpg": "f.jpg"}
    out: dict[str, Path] = {}
    for (key, name), (src, _) in zip(names.items(), shapes, strict=False):
        with Image.open(src) as img:
            img.convert("RGB").save(root / name, quality=95)
        out[key] = root / name
    write_alt_text(out["alt"], "someone's own alt text")
    write_alt_text(out["sidecar"], "alt text under a sidecar")
    out["sidecar"].with_suffix(".txt").write_text("the sidecar caption\n")
    # b.jpg: only an XMP description, as Lightroom's "Caption" writes it
    from exiv2 import ImageFactory  # noqa: PLC0415
    image = ImageFactory.open(str(out["described"]))
    image.readMetadata()
    image.xmpData()["Xmp.dc.description"] = "lang=x-default A description from Lightroom"
    image.writeMetadata()
    del image
    out["root"] = root
    return out


def open_and_wait(qtbot, window: MainWindow, controller: AltTextController, root: Path, count: int) -> None:
    with qtbot.waitSignal(controller.embedded_read, timeout=TIMEOUT):
        window.open_paths([root])
    qtbot.waitUntil(lambda: window.page.model.rowCount() == count and not window.photos.is_scanning(),
                    timeout=TIMEOUT)


def run_write(qtbot, controller: AltTextController, items: list) -> AltTextRun:
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.write(items)
    return blocker.args[0]


def test_menu_action_and_embedded_alt_text_shown_as_caption(qtbot, window: MainWindow,
                                                           photos: dict[str, Path]) -> None:
    controller = controller_of(window)
    action = window.actions_by_name[ACTION_NAME]
    file_menu = window.menuBar().actions()[0].menu()
    assert action in file_menu.actions() and "alt text" in action.text().replace("&", "")
    assert not action.isEnabled()  # nothing opened yet

    open_and_wait(qtbot, window, controller, photos["root"], 6)
    assert action.isEnabled()
    model = window.page.model
    alt, described, sidecar = (model.item_for(photos[k]) for k in ("alt", "described", "sidecar"))
    assert alt.caption == "someone's own alt text" and not alt.dirty and alt.source is Source.ALT_TEXT
    assert described.caption == "A description from Lightroom"
    assert described.embedded == ExistingText("A description from Lightroom", DESCRIPTION)
    assert sidecar.caption == "the sidecar caption"  # a caption file wins over the embedded text
    assert model.item_for(photos["plain_png"]).caption == ""

    window.page.select_item(alt)
    assert window.page.editor.toPlainText() == "someone's own alt text"


def test_write_asks_before_replacing_and_keeps_pixels(qtbot, window: MainWindow,
                                                      photos: dict[str, Path]) -> None:
    controller = controller_of(window)
    open_and_wait(qtbot, window, controller, photos["root"], 6)
    model = window.page.model
    # the model captions everything, replacing the alt text shown as captions (asked first)
    answerer = MessageAnswerer("Replace 3")
    window.actions_by_name["caption_all_replace"].trigger()
    qtbot.waitUntil(lambda: not window.captions.is_running(), timeout=TIMEOUT)
    assert "3 caption(s)" in answerer.seen[0]
    items = {key: model.item_for(path) for key, path in photos.items() if key != "root"}
    assert all(item.caption.startswith("a ") for item in items.values()), {
        k: i.caption for k, i in items.items()}
    pixels = {key: pixel_hash(photos[key]) for key in items}

    # two photos hold someone else's text: the batch question comes first; "decide for each",
    # then keep the first and overwrite the second
    answerer = DialogAnswerer([("decide_for_each", False), ("keep", False), ("overwrite", False)])
    try:
        chosen = [items[k] for k in ("alt", "described", "plain_png", "plain_webp")]
        run = run_write(qtbot, controller, chosen)
    finally:
        answerer.stop()
    assert not answerer.answers, answerer.seen
    assert "Photos already have alt text" in answerer.seen[0] and "2 of the photos" in answerer.seen[0]
    assert "In the photo:" in answerer.seen[1] and "a.jpg" in answerer.seen[1] and "b.jpg" in answerer.seen[2]
    assert (run.written, run.kept, run.failed) == (3, 1, 0), run
    assert read_alt_text(photos["alt"]) == ExistingText("someone's own alt text", ALT_TEXT)
    for key in ("described", "plain_png", "plain_webp"):
        assert read_alt_text(photos[key]) == ExistingText(items[key].caption, ALT_TEXT), key
        assert pillow_alt_text(photos[key]), key
    assert all(pixel_hash(photos[key]) == pixels[key] for key in items)

    # alt text this app wrote itself is replaced without asking; someone else's needs "overwrite"
    window.photos.history.set_caption(items["plain_png"], "a corrected caption", Source.USER, "edit")
    answerer = DialogAnswerer([("overwrite", False)])
    try:
        run = run_write(qtbot, controller, [items["plain_png"], items["alt"]])
    finally:
        answerer.stop()
    assert len(answerer.seen) == 1 and "a.jpg" in answerer.seen[0]
    assert (run.written, run.kept) == (2, 0)
    assert read_alt_text(photos["plain_png"]).text == "a corrected caption"  # type: ignore[union-attr]
    assert read_alt_text(photos["alt"]).text == items["alt"].caption  # type: ignore[union-attr]


def test_action_writes_the_current_photo_with_progress_and_reports_problems(
        qtbot, window: MainWindow, photos: dict[str, Path], tmp_path: Path) -> None:
    controller = controller_of(window)
    bmp = photos["root"] / "g.bmp"
    with Image.open(photos["plain_jpg"]) as img:
        img.save(bmp)
    open_and_wait(qtbot, window, controller, photos["root"], 7)
    model = window.page.model
    plain, old = model.item_for(photos["plain_jpg"]), model.item_for(bmp)
    window.photos.history.set_caption(plain, "a green square", Source.USER, "edit")
    window.page.select_item(plain)
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        window.actions_by_name[ACTION_NAME].trigger()
    assert blocker.args[0].written == 1
    assert read_alt_text(photos["plain_jpg"]) == ExistingText("a green square", ALT_TEXT)
    assert "alt text written into 1 of 1" in window.statusBar().currentMessage()

    # unsupported format and a photo that cannot be written: clear lines, the rest goes on
    window.photos.history.set_caption(old, "a bitmap", Source.USER, "edit")
    locked = model.item_for(photos["plain_webp"])
    window.photos.history.set_caption(locked, "a locked photo", Source.USER, "edit")
    photos["plain_webp"].chmod(0o444)
    try:
        run = run_write(qtbot, controller, [old, locked])
    finally:
        photos["plain_webp"].chmod(0o644)
    assert (run.written, run.skipped, run.failed) == (0, 1, 1), run
    assert "read-only" in locked.error
    log = window.log_pane.toPlainText()
    assert "g.bmp: alt text can only be written into JPEG, PNG, WebP and TIFF files" in log
    assert "alt text not written: file is read-only" in log
