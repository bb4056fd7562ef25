"""Helpers for the pytest-qt tests: answering the app's modal dialogs like a person would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QCheckBox, QMessageBox, QPlainTextEdit, QPushButton, QWidget


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
        qtbot.waitUntil(lambda: window.models.state.value == "ready", timeout=WINDOW_TIMEOUT)
    return window


class _ModalPoller:
    """Looks for a modal dialog every 20 ms (from the event loop a modal exec() runs)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.timer.stop()


class DialogAnswerer(_ModalPoller):
    """Clicks buttons of the modal overwrite dialogs as they appear, in order, and records
    what each dialog said (its title and every text on it) in `seen`."""

    def __init__(self, answers: list[tuple[str, bool]]) -> None:
        self.answers = list(answers)
        super().__init__()

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


def drop_files(window: Any, target: QWidget, paths: list[Path]) -> None:
    """Drop local files at the centre of `target`, delivered to the top-level QWindow."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    handle = window.windowHandle()
    assert handle is not None, "the window must be shown"
    pos = QPointF(target.mapTo(window, target.rect().center()))
    actions = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos.toPoint(), actions, mime, buttons, mods)
    QApplication.sendEvent(handle, enter)
    assert enter.isAccepted(), "the drag was refused"
    QApplication.sendEvent(handle, QDropEvent(pos, actions, mime, buttons, mods))


def open_and_wait(qtbot: Any, window: Any, paths: list[Path], count: int) -> None:
    window.open_paths(paths)
    qtbot.waitUntil(lambda: window.photos.model.rowCount() == count and not window.photos.is_scanning(),
                    timeout=WINDOW_TIMEOUT)


def caption_all_and_wait(qtbot: Any, window: Any, action: str = "caption_all") -> None:
    window.actions_by_name[action].trigger()
    qtbot.waitUntil(lambda: not window.captions.is_running(), timeout=WINDOW_TIMEOUT)


def item(window: Any, path: Path) -> Any:
    found = window.photos.model.item_for(path)
    assert found is not None, path
    return found


class MessageAnswerer(_ModalPoller):
    """Clicks a button (by its text) of the next QMessageBox that appears, recording its text.
    Keep a reference to it until the box has been answered."""

    def __init__(self, button_text: str, prefix: bool = False) -> None:
        self.button_text, self.prefix = button_text, prefix
        super().__init__()

    def _poll(self) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            return
        self.timer.stop()
        self.seen.append(box.text())
        for button in box.buttons():
            text = button.text().replace("&", "")
            if text == self.button_text or (self.prefix and text.startswith(self.button_text)):
                button.click()
                return
        raise AssertionError(f"no {self.button_text!r} button in {box.text()!r}")


def give_result(window: Any, path: Path, text: str, confidence: float | None = None,
                tags: tuple[tuple[str, float], ...] = ()) -> Any:
    """Deliver a model result for one photo as a caption run would (no model needed), with the
    confidence and tags a test wants."""
    import numpy as np

    from captioner.captioner import CaptionResult
    from captioner.tags import Tag

    words = text.split()
    attention = np.full((len(words), 3, 3), 1 / 9, dtype=np.float32)
    result = CaptionResult(text, words, -0.4, [(text, -0.4), (f"{text} again", -0.9)], attention,
                           tags=[Tag(w, p) for w, p in tags], confidence=confidence)
    window.captions._on_result((path, result))
    return item(window, path)
