"""Find and replace across the listed captions: type, see every change before it is made,
replace in one step (Ctrl+Z undoes all of it)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.models.items import ImageItem
from gui.models.replace import Change, plan_replace

Apply = Callable[[list[Change], str, str], int]


class FindReplaceDialog(QDialog):
    """Works on the captions it is given (the listed ones); `apply` makes the change."""

    def __init__(self, items: list[ImageItem], apply: Apply, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Find and replace in captions")
        self.setObjectName("findReplaceDialog")
        self.items, self.apply = items, apply
        self.changes: list[Change] = []
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.find_edit = QLineEdit()
        self.find_edit.setObjectName("findText")
        self.find_edit.setPlaceholderText("a word or phrase")
        self.replace_edit = QLineEdit()
        self.replace_edit.setObjectName("replaceText")
        self.replace_edit.setPlaceholderText("(nothing: remove it)")
        form.addRow("Find:", self.find_edit)
        form.addRow("Replace with:", self.replace_edit)
        self.whole_words = QCheckBox("Whole words")
        self.whole_words.setChecked(True)
        self.match_case = QCheckBox("Match case")
        form.addRow("", self.whole_words)
        form.addRow("", self.match_case)
        layout.addLayout(form)
        captioned = sum(i.has_caption for i in items)
        self.summary = QLabel()
        self.summary.setObjectName("replaceSummary")
        scope = QLabel(f"In the {captioned} captions listed in the grid (the filter decides which):")
        layout.addWidget(scope)
        self.preview = QTreeWidget()
        self.preview.setObjectName("replacePreview")
        self.preview.setColumnCount(3)
        self.preview.setHeaderLabels(["Photo", "Caption now", "After"])
        self.preview.setRootIsDecorated(False)
        self.preview.setAlternatingRowColors(True)
        self.preview.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.preview.setColumnWidth(0, 140)
        self.preview.setColumnWidth(1, 260)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.summary)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.replace_button = QPushButton("Replace")
        self.replace_button.setObjectName("replaceAll")
        self.replace_button.setDefault(True)
        buttons.addButton(self.replace_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.rejected.connect(self.reject)
        self.replace_button.clicked.connect(self._replace)
        layout.addWidget(buttons)
        self._later = QTimer(self)  # the preview follows typing, once per pause
        self._later.setSingleShot(True)
        self._later.setInterval(120)
        self._later.timeout.connect(self.refresh)
        for edit in (self.find_edit, self.replace_edit):
            edit.textChanged.connect(lambda _t: self._later.start())
        for box in (self.whole_words, self.match_case):
            box.toggled.connect(lambda _c: self.refresh())
        self.resize(720, 460)
        self.refresh()

    def refresh(self) -> None:
        """Plan the replace and list every caption it changes."""
        self.changes = plan_replace(self.items, self.find_edit.text(), self.replace_edit.text(),
                                    self.match_case.isChecked(), self.whole_words.isChecked())
        self.preview.clear()
        for change in self.changes:
            row = QTreeWidgetItem([change.item.name, change.old, change.new])
            for column in range(3):
                row.setToolTip(column, f"{change.old}\n→ {change.new}")
            self.preview.addTopLevelItem(row)
        count = len(self.changes)
        self.replace_button.setEnabled(count > 0)
        self.replace_button.setText(f"Replace in {count} caption(s)" if count else "Replace")
        self.summary.setText("" if not self.find_edit.text().strip() else
                             f"{count} caption(s) change; one undo step (Ctrl+Z) puts them all back"
                             if count else "No listed caption has it.")

    def _replace(self) -> None:
        self._later.stop()
        self.refresh()  # what was previewed is what is replaced
        if self.changes:
            self.apply(self.changes, self.find_edit.text().strip(), self.replace_edit.text())
            self.accept()
