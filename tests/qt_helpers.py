"""Helpers for the pytest-qt tests: answering the app's modal dialogs like a person would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QCheckBox, QPlainTextEdit, QPushButton, QWidget


def widget_text(widget: QWidget) -> str:
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText()
    text = getattr(widget, "text", None)
    return text() if callable(text) and isinstance(text(), str) else ""


WINDOW_TIMEOUT = 30_000


def build_window(qtbot: Any, settings_file: Path, bundle: Path | None, wait: bool = True,
                 **settings: object) -> Any:
    """The real main window with its own settings file, shown; with `wait`, once the model
    is ready. The caller shuts its caption service down (`window.captions.shutdown()`)."""
    from gui.main_window import MainWindow
    from gui.settings import AppSettings, settings_store

    store = settings_store(settings_file)
    settings.setdefault("batch_size", 4)
    values = AppSettings(bundle_dir=str(bundle) if bundle else "", **settings)  # type: ignore[arg-type]
    values.save(store)
    window = MainWindow(store)
    window.confirm_close = False
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    if wait and bundle is not None:
        qtbot.waitUntil(lambda: window.model_state == "ready", timeout=WINDOW_TIMEOUT)
    return window


class DialogAnswerer:
    """Clicks buttons of the modal overwrite dialogs as they appear, in order, and records
    what each dialog said (its title and every text on it) in `seen`."""

    def __init__(self, answers: list[tuple[str, bool]]) -> None:
        self.answers = list(answers)
        self.seen: list[str] = []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None or dialog.objectName() != "overwriteDialog" or not self.answers:
            return
        button_name, remember = self.answers.pop(0)
        texts = [widget_text(w) for w in dialog.findChildren(QWidget)]
        self.seen.append(" | ".join([dialog.windowTitle(), *texts]))
        box = dialog.findChild(QCheckBox, "remember")
        if box is not None:
            box.setChecked(remember)
        button = dialog.findChild(QPushButton, button_name)
        assert button is not None, f"no {button_name!r} button in {dialog.windowTitle()}"
        button.click()

    def done(self) -> bool:
        return not self.answers

    def stop(self) -> None:
        self.timer.stop()
