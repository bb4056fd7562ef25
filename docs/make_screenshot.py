"""Draw docs/screenshot.png: the real window captioning Flickr8k test photos, one word's
attention pinned. Offscreen Qt, so it runs without a display:

    QT_QPA_PLATFORM=offscreen python docs/make_screenshot.py [--photos 24] [--word dog]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/flickr8k")
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--word", default="dog", help="pin the attention of this word")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/screenshot.png")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    from gui.main_window import MainWindow
    from gui.settings import AppSettings, settings_store

    names = (args.data / "Flickr_8k.testImages.txt").read_text().split()
    paths = [args.data / "images" / n for n in names if (args.data / "images" / n).is_file()]
    with tempfile.TemporaryDirectory() as tmp:
        store: QSettings = settings_store(Path(tmp) / "settings.ini")
        AppSettings().save(store)
        window = MainWindow(store)
        window.confirm_close = False
        window.resize(1400, 860)
        window.show()
        wait(app, lambda: window.model_state == "ready")
        window.open_paths(paths[: args.photos])
        wait(app, lambda: window.page.model.rowCount() == args.photos and not window._scans)
        window.actions_by_name["caption_all"].trigger()
        wait(app, lambda: not window.captions.is_running())
        items = window.page.model.items()
        chosen = next((i for i in items if i.result and args.word in i.result.words), items[0])
        window.page.select_item(chosen)
        wait(app, lambda: window.page.current_item() is chosen)
        if chosen.result and args.word in chosen.result.words:
            window.page.pin_word(chosen.result.words.index(args.word))
        deadline = time.time() + 2.0  # thumbnails and the preview arrive from loader threads
        while time.time() < deadline:
            app.processEvents()
            time.sleep(0.02)
        window.grab().save(str(args.out))
        print(f"{args.out}: {chosen.path.name}: {chosen.caption!r}")
        window.captions.shutdown()
        window.close()


if __name__ == "__main__":
    main()
