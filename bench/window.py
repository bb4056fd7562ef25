"""The real main window for the GUI benchmarks (bench/gui_memory.py, bench/ui_heartbeat.py)."""

from __future__ import annotations

from pathlib import Path

from gui.main_window import MainWindow
from gui.settings import AppSettings, settings_store


def open_window(settings: AppSettings, settings_file: Path, size: tuple[int, int]) -> MainWindow:
    """The window shown as a person starts it, but on its own settings file (never the user's) and
    with no close prompt, so that a benchmark can drive it and quit unattended."""
    store = settings_store(settings_file)
    settings.save(store)
    window = MainWindow(store)
    window.confirm_close = False
    window.resize(*size)
    window.show()
    return window
