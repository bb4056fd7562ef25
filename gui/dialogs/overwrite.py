"""The overwrite prompt: a caption file that exists is never replaced without asking.

Two dialogs. When a save batch meets several existing files, the batch question comes first:
overwrite them all, keep them all, or decide for each. Deciding for each shows the file's
current text beside the new one, with "do the same for the rest" to stop asking half-way.
The safe answer (keep) is the default button; Esc cancels the whole save.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

T = TypeVar("T")


class Choice(Enum):
    OVERWRITE = "overwrite"
    KEEP = "keep"
    EACH = "decide for each"
    CANCEL = "cancel"


class _ChoiceDialog(QDialog):
    """A dialog whose buttons each close it with a Choice."""

    def __init__(self, parent: QWidget | None, title: str) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("overwriteDialog")
        self.choice = Choice.CANCEL
        self.buttons = QDialogButtonBox()
        self._default: QPushButton | None = None

    def add_choice(
        self, text: str, choice: Choice, role: QDialogButtonBox.ButtonRole, default: bool = False
    ) -> QPushButton:
        """A button for `choice`. Only the `default` one answers Enter: no button becomes the
        default by taking the focus (autoDefault), so Enter can never pick Overwrite."""
        button = self.buttons.addButton(text, role)
        button.setObjectName(choice.value.replace(" ", "_"))
        button.setAutoDefault(False)
        button.clicked.connect(lambda _=False, c=choice: self._finish(c))
        if default:
            button.setDefault(True)
            self._default = button
        return button

    def showEvent(self, event: QShowEvent) -> None:
        """The focus starts on the safe answer (set here: focus given before showing is lost)."""
        super().showEvent(event)
        if self._default is not None:
            self._default.setFocus()

    def _finish(self, choice: Choice) -> None:
        self.choice = choice
        self.accept() if choice is not Choice.CANCEL else self.reject()

    def ask(self) -> Choice:
        self.exec()
        return self.choice


class BatchChoiceDialog(_ChoiceDialog):
    """'N files already hold text': overwrite all / keep all / decide for each / cancel."""

    def __init__(self, parent: QWidget | None, title: str, headline: str, names: list[str]) -> None:
        super().__init__(parent, title)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(headline))
        listing = QLabel("\n".join(names[:8]) + (f"\n… and {len(names) - 8} more" if len(names) > 8 else ""))
        listing.setStyleSheet("color: palette(mid); margin-left: 12px;")
        layout.addWidget(listing)
        self.add_choice("Overwrite all", Choice.OVERWRITE, QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_choice("Keep existing", Choice.KEEP, QDialogButtonBox.ButtonRole.AcceptRole, default=True)
        self.add_choice("Decide for each…", Choice.EACH, QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_choice("Cancel", Choice.CANCEL, QDialogButtonBox.ButtonRole.RejectRole)
        layout.addWidget(self.buttons)


class BatchOverwriteDialog(BatchChoiceDialog):
    """'12 images already have caption files'."""

    def __init__(self, parent: QWidget | None, images: list[Path]) -> None:
        super().__init__(
            parent, "Caption files exist",
            f"<b>{len(images)} of the images already have a caption file.</b><br>"
            "What should happen to those files?",
            [p.with_suffix(".txt").name for p in images],
        )


class ChoicePolicy(Generic[T]):
    """The answer to "replace what is already there?" for one batch: asked at most once per
    batch, or once per file when the person chose to decide for each. `fixed` answers
    without asking. Subclasses say how to ask (`ask_batch`, `ask_file`)."""

    def __init__(self, parent: QWidget | None, fixed: Choice | None = None) -> None:
        self.parent, self.mode = parent, fixed
        self._asked = fixed is not None

    def begin(self, conflicts: list[T]) -> bool:
        """Ask the batch question when several exist; False if the person cancelled."""
        if self._asked or len(conflicts) < 2:
            return True
        self._asked = True
        choice = self.ask_batch(conflicts)
        if choice is Choice.CANCEL:
            return False
        self.mode = choice
        return True

    def decide(self, image: Path, existing: Any, new: str, remaining: int) -> Choice:
        if self.mode in (Choice.OVERWRITE, Choice.KEEP):
            return self.mode
        choice, remember = self.ask_file(image, existing, new, remaining)
        if remember and choice in (Choice.OVERWRITE, Choice.KEEP):
            self.mode = choice
        return choice

    def ask_batch(self, conflicts: list[T]) -> Choice:
        raise NotImplementedError

    def ask_file(self, image: Path, existing: Any, new: str, remaining: int) -> tuple[Choice, bool]:
        raise NotImplementedError


@dataclass(frozen=True)
class FileQuestion:
    """The words of a per-file question; caption files and alt text each have their own."""

    title: str = "Replace caption file?"
    headline: str = ""  # rich text; defaults to "<b>NAME.txt</b> already exists in FOLDER."
    existing_label: str = "In the file:"
    remember: str = "Do the same for the other {remaining} file(s) in this batch"
    cancel: str = "Cancel saving"


class FileOverwriteDialog(_ChoiceDialog):
    """One file: its current caption beside the new one; optionally the same for the rest."""

    def __init__(self, parent: QWidget | None, image: Path, existing: str, new: str, remaining: int,
                 words: FileQuestion = FileQuestion()) -> None:  # noqa: B008 - frozen, shared
        super().__init__(parent, words.title)
        layout = QVBoxLayout(self)
        headline = words.headline or (f"<b>{image.with_suffix('.txt').name}</b> already exists in "
                                      f"{image.parent}.")
        layout.addWidget(QLabel(headline))
        form = QFormLayout()
        form.addRow(words.existing_label, self._text(existing))
        form.addRow("New caption:", self._text(new))
        layout.addLayout(form)
        self.remember = QCheckBox(words.remember.format(remaining=remaining))
        self.remember.setObjectName("remember")
        self.remember.setVisible(remaining > 0)
        layout.addWidget(self.remember)
        self.add_choice("Overwrite", Choice.OVERWRITE, QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_choice("Keep existing", Choice.KEEP, QDialogButtonBox.ButtonRole.AcceptRole, default=True)
        self.add_choice(words.cancel, Choice.CANCEL, QDialogButtonBox.ButtonRole.RejectRole)
        layout.addWidget(self.buttons)
        self.resize(520, self.sizeHint().height())

    @staticmethod
    def _text(text: str) -> QPlainTextEdit:
        box = QPlainTextEdit(text)
        box.setReadOnly(True)
        box.setTabChangesFocus(True)
        box.setMaximumHeight(64)
        return box

    def ask_remembering(self) -> tuple[Choice, bool]:
        choice = self.ask()
        return choice, self.remember.isVisibleTo(self) and self.remember.isChecked()
