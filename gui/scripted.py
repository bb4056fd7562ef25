"""The window for scripts: benchmarks and documentation screenshots drive it unattended.

bench/ui_heartbeat.py, bench/gui_memory.py and docs/make_screenshot.py open the real main window
here, on a settings file of their own, and wait for it through the event loop (a QTimer checks,
nothing spins), so that waiting steals no CPU from the captioning a benchmark measures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer

from gui.controllers.model import ModelState
from gui.main_window import MainWindow
from gui.settings import AppSettings, settings_store


def open_window(settings: AppSettings, settings_file: Path, size: tuple[int, int]) -> MainWindow:
    """The window shown as a person starts it, but on its own settings file (never the user's) and
    with no close prompt, so that a script can drive it and quit unattended."""
    store = settings_store(settings_file)
    settings.save(store)
    window = MainWindow(store)
    window.confirm_close = False
    window.resize(*size)
    window.show()
    return window


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str = "the window",
               tick: Callable[[], None] | None = None, interval_ms: int = 20) -> None:
    """Run the event loop until `condition` holds, checking it (and calling `tick`, e.g. a memory
    sample) every `interval_ms`. A QTimer wakes the loop, so the wait sleeps between checks: a
    spinning loop would steal the very CPU time a benchmark measures.

    Raises TimeoutError naming `what` after `timeout_s`; an exception in `condition` or `tick`
    ends the wait and is raised here (inside a Qt slot it would only be printed).
    """
    if condition():
        return
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    met: list[bool] = []
    failed: list[Exception] = []

    def check() -> None:
        try:
            if tick is not None:
                tick()
            if condition():
                met.append(True)
                loop.quit()
            elif time.monotonic() > deadline:
                loop.quit()
        except Exception as error:  # raised again below, outside Qt
            failed.append(error)
            loop.quit()

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(check)
    timer.start()
    try:
        loop.exec()
    finally:
        timer.stop()
    if failed:
        raise failed[0]
    if not met:
        raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")


def wait_for_model(window: MainWindow, timeout_s: float) -> None:
    """Wait until the window's bundle has loaded; RuntimeError with the window's own reason when it
    could not be, since nothing a script measures or draws means anything without a model."""
    wait_until(lambda: window.models.state in (ModelState.READY, ModelState.ERROR), timeout_s, "the model")
    if window.models.state is not ModelState.READY:
        raise RuntimeError(f"the model did not load: {window.models.text}")


def settle(seconds: float = 2.0) -> None:
    """Run the event loop for `seconds`, so that what loader threads send (thumbnails, previews)
    arrives and is painted before a measurement or a screenshot."""
    loop = QEventLoop()
    QTimer.singleShot(max(0, round(seconds * 1000)), loop.quit)
    loop.exec()
