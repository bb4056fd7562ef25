"""Entry point: `captioner-gui [PATH...]` or `python main.py [PATH...]`.

Paths given on the command line (images or folders) are opened as if dropped on the window.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui.main_window import MainWindow
from gui.settings import settings_store


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="captioner-gui", description="Caption photos with an attention model."
    )
    parser.add_argument("paths", nargs="*", type=Path, help="images or folders to open")
    parser.add_argument("--model", type=Path, help="model bundle folder (remembered for next time)")
    parser.add_argument(
        "--settings",
        type=Path,
        help="keep settings in this INI file instead of the platform's settings store",
    )
    return parser


GIL_SWITCH_S = 0.002


def make_app(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication, created once, with the names QSettings uses.

    The GIL switch interval is shortened from 5 ms: when the GUI thread wakes up (a click, a
    timer, a repaint) while a caption worker runs numpy code, it gets the GIL back sooner.
    Measured with bench/ui_heartbeat.py; the cost to captioning speed is within noise.
    """
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    sys.setswitchinterval(GIL_SWITCH_S)
    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setOrganizationName("Captioner")
    app.setApplicationName("Captioner")
    app.setApplicationDisplayName("Captioner")
    app.setStyle("Fusion")
    return app


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    app = make_app()
    store = settings_store(args.settings)
    if args.model is not None:
        store.setValue("captioning/bundle_dir", str(args.model.expanduser().resolve()))
    window = MainWindow(store)
    window.show()
    if args.paths:
        window.open_paths([p.expanduser() for p in args.paths])
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
