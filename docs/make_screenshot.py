"""Draw docs/screenshot.png: the real window captioning photos (Flickr8k test, or a folder), one
word's attention pinned. Offscreen Qt, so it runs without a display:

    QT_QPA_PLATFORM=offscreen python docs/make_screenshot.py \
        --folder ../shared/data/coco_ood/images --photos 24 --word bear
    QT_QPA_PLATFORM=offscreen python docs/make_screenshot.py [--photos 24] [--word dog]
    QT_QPA_PLATFORM=offscreen python docs/make_screenshot.py \
        --video ../shared/data/video/scene_cuts_3shots.mp4 --out docs/video_tab.png
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent


def wait(app: QApplication, done, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while not done():
        if time.time() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, seconds: float = 2.0) -> None:
    """Let thumbnails and previews arrive from their loader threads."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        app.processEvents()
        time.sleep(0.02)


def show_video(app: QApplication, window, video: Path, out: Path) -> None:
    panel = window.video_panel
    window.tabs.setCurrentWidget(panel)
    panel.every.setValue(5.0)
    panel.open_video(video)
    wait(app, lambda: panel.model.rowCount() > 0 and not panel.is_running())
    panel.table.selectRow(min(2, panel.model.rowCount() - 1))  # its frame shows beside the list
    settle(app)
    window.grab().save(str(out))
    print(f"{out}: {video.name}: {panel.model.rowCount()} segments")
    window.captions.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/flickr8k")
    parser.add_argument("--folder", type=Path, help="instead of Flickr8k test: the photos of this "
                        "folder, e.g. ../shared/data/coco_ood/images")
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--word", default="dog", help="pin the attention of this word")
    parser.add_argument("--video", type=Path, help="instead: the Video tab captioning this video")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/screenshot.png")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    from gui.main_window import MainWindow
    from gui.settings import AppSettings, settings_store

    if args.folder is not None:
        paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    else:
        names = (args.data / "Flickr_8k.testImages.txt").read_text().split()
        paths = [args.data / "images" / n for n in names if (args.data / "images" / n).is_file()]
    with tempfile.TemporaryDirectory() as tmp:
        store: QSettings = settings_store(Path(tmp) / "settings.ini")
        AppSettings().save(store)
        window = MainWindow(store)
        window.confirm_close = False
        window.resize(1400, 860)
        window.show()
        wait(app, lambda: window.models.state.value == "ready")
        if args.video is not None:
            show_video(app, window, args.video, args.out)
            return
        window.open_paths(paths[: args.photos])
        wait(app, lambda: window.page.model.rowCount() == args.photos and not window.photos.is_scanning())
        window.actions_by_name["caption_all"].trigger()
        wait(app, lambda: not window.captions.is_running())
        items = window.page.model.items()
        chosen = next((i for i in items if i.result and args.word in i.result.words), items[0])
        window.page.select_item(chosen)
        wait(app, lambda: window.page.current_item() is chosen)
        if chosen.result and args.word in chosen.result.words:
            window.page.pin_word(chosen.result.words.index(args.word))
        settle(app)
        window.grab().save(str(args.out))
        print(f"{args.out}: {chosen.path.name}: {chosen.caption!r}")
        window.captions.shutdown()
        window.close()


if __name__ == "__main__":
    main()
