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
from pathlib import Path

from gui.app import make_app
from gui.main_window import MainWindow
from gui.scripted import open_window, settle, wait_for_model, wait_until
from gui.settings import AppSettings

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120.0


def show_video(window: MainWindow, video: Path, out: Path) -> None:
    """The Video tab after captioning `video`, its third segment selected."""
    panel = window.video_panel
    window.tabs.setCurrentWidget(panel)
    panel.every.setValue(5.0)
    panel.open_video(video)
    wait_until(lambda: panel.model.rowCount() > 0 and not panel.is_running(), TIMEOUT_S, "the video")
    panel.table.selectRow(min(2, panel.model.rowCount() - 1))  # its frame shows beside the list
    settle()
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

    make_app([])  # the app's own QApplication setup, so the window looks as a person sees it
    if args.folder is not None:
        paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    else:
        names = (args.data / "Flickr_8k.testImages.txt").read_text().split()
        paths = [args.data / "images" / n for n in names if (args.data / "images" / n).is_file()]
    with tempfile.TemporaryDirectory() as tmp:
        window = open_window(AppSettings(), Path(tmp) / "settings.ini", (1400, 860))
        wait_for_model(window, TIMEOUT_S)
        if args.video is not None:
            show_video(window, args.video, args.out)
            return
        window.open_paths(paths[: args.photos])
        wait_until(lambda: window.page.model.rowCount() == args.photos and not window.photos.is_scanning(),
                   TIMEOUT_S, "the photos to open")
        window.actions_by_name["caption_all"].trigger()
        wait_until(lambda: not window.captions.is_running(), TIMEOUT_S, "captioning")
        items = window.page.model.items()
        chosen = next((i for i in items if i.result and args.word in i.result.words), items[0])
        window.page.select_item(chosen)
        wait_until(lambda: window.page.current_item() is chosen, TIMEOUT_S, "the chosen photo")
        if chosen.result and args.word in chosen.result.words:
            window.page.pin_word(chosen.result.words.index(args.word))
        settle()
        window.grab().save(str(args.out))
        print(f"{args.out}: {chosen.path.name}: {chosen.caption!r}")
        window.captions.shutdown()
        window.close()


if __name__ == "__main__":
    main()
