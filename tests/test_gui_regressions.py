"""Regression tests for issue 14: each bug the issue found, driven through the real widgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from captioner.metadata import DESCRIPTION, ExistingText
from gui.controllers.metadata import AltTextPolicy
from gui.controllers.saving import OverwritePolicy
from gui.dialogs.overwrite import Choice

pytestmark = pytest.mark.gui


def _press_enter_in_modal() -> None:
    dialog = QApplication.activeModalWidget()
    if dialog is None:
        QTimer.singleShot(20, _press_enter_in_modal)
        return
    QTest.keyClick(QApplication.focusWidget() or dialog, Qt.Key.Key_Return)


@pytest.mark.parametrize("policy", [OverwritePolicy, AltTextPolicy])
@pytest.mark.parametrize("remaining", [0, 3])
def test_enter_in_a_replace_dialog_keeps_what_is_there(qtbot, policy, remaining: int) -> None:
    """Bug 1: Enter must pick Keep, the default button, in the per-file questions."""
    existing = ExistingText("a caption someone wrote", DESCRIPTION) if policy is AltTextPolicy \
        else "a caption someone wrote"
    QTimer.singleShot(50, _press_enter_in_modal)
    choice, _remember = policy(None).ask_file(Path("/tmp/photo.jpg"), existing, "a new caption", remaining)
    assert choice is Choice.KEEP
