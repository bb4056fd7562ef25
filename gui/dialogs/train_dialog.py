"""The training dialog: where the new model goes and for how long it trains, then the run's
progress with Cancel, then the held-out scores before and after with "Use the new model".

A view of gui/controllers/training.py: it reads the plan and follows the controller's state,
progress and output; every decision (what to train on, whether a folder may be used) is the
controller's. It is not modal: the app stays usable while a model trains, and closing the
dialog then only hides it (the menu item brings it back; it comes back by itself at the end).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QColor
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from captioner.finetune_protocol import HeldOutScores, Progress
from gui.training_run import TrainingState, overall_fraction

if TYPE_CHECKING:
    from gui.controllers.training import TrainingController

BAR_STEPS = 1000
LOG_LINES = 300


def metric_text(metric: str, value: float) -> str:
    """CIDEr as is (0.529), the others in percent (20.1), as docs/results.md writes them."""
    return f"{value:.3f}" if metric == "CIDEr" else f"{value * 100:.1f}"


def change_text(metric: str, before: float, after: float) -> str:
    diff = after - before
    return f"{diff:+.3f}" if metric == "CIDEr" else f"{diff * 100:+.1f}"


class TrainDialog(QDialog):
    def __init__(self, controller: TrainingController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("trainDialog")
        self.setWindowTitle("Train a model on these captions")
        self.setModal(False)
        self.resize(620, 560)
        self._build()
        controller.state_changed.connect(self._on_state)
        controller.progress.connect(self._on_progress)
        controller.output.connect(self._on_output)

    # --- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.intro = QLabel()
        self.intro.setObjectName("intro")
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.intro)
        form = QFormLayout()
        where = QHBoxLayout()
        self.out_edit = QLineEdit()
        self.out_edit.setObjectName("outFolder")
        self.choose = QPushButton("Choose…")
        self.choose.setToolTip("Pick the folder the new model's folder goes into")
        self.choose.clicked.connect(self._choose_parent)
        where.addWidget(self.out_edit, 1)
        where.addWidget(self.choose)
        form.addRow("New model folder:", where)
        self.minutes = QSpinBox()
        self.minutes.setObjectName("minutes")
        self.minutes.setRange(1, 240)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("Training stops after this long, or earlier when the held-out "
                                "photos stop improving; reading the photos and scoring add a few minutes")
        form.addRow("Train for at most:", self.minutes)
        layout.addLayout(form)
        self.bar = QProgressBar()
        self.bar.setObjectName("progress")
        self.bar.setRange(0, BAR_STEPS)
        layout.addWidget(self.bar)
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.log_view = QPlainTextEdit()
        self.log_view.setObjectName("runLog")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setPlaceholderText("The training process's own messages appear here.")
        layout.addWidget(self.log_view, 1)
        self.scores_note = QLabel()
        self.scores_note.setObjectName("scoresNote")
        self.scores_note.setWordWrap(True)
        layout.addWidget(self.scores_note)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("scores")
        self.table.setHorizontalHeaderLabels(["Score", "Before", "After", "Change"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.start_button = self._button("start", "Start training", self._start, buttons)
        self.cancel_button = self._button("cancel", "Cancel training", self.controller.cancel, buttons)
        self.use_button = self._button("use", "Use the new model", self._use, buttons)
        self.close_button = self._button("close", "Close", self.close, buttons)
        layout.addLayout(buttons)

    def _button(self, name: str, text: str, slot: Callable[[], object], row: QHBoxLayout) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(lambda _=False: slot())
        row.addWidget(button)
        return button

    # --- showing a plan ----------------------------------------------------------------------------
    def present(self) -> None:
        """Show the dialog for the controller's plan (a fresh plan resets it), on top."""
        plan = self.controller.plan
        if plan is not None and self.controller.state is TrainingState.READY:
            self.intro.setText(
                f"<b>{len(plan.photos)} of the {plan.listed} photos</b> in the list have captions you "
                f"saved. They will teach a copy of <b>{plan.source_name}</b>, the model in use; a tenth of "
                "them is held out to stop training in time and a fifth to score the model before and "
                "after. Training runs in a separate process: the app stays usable.")
            self.out_edit.setText(str(plan.out))
            self.minutes.setValue(round(self.controller.default_minutes))
            self.log_view.clear()
            self.bar.setValue(0)
        self._on_state(self.controller.state)
        self.show()
        self.raise_()
        self.activateWindow()

    def _choose_parent(self) -> None:
        current = Path(self.out_edit.text()).expanduser()
        chosen = QFileDialog.getExistingDirectory(self, "Where the new model's folder goes",
                                                  str(current.parent))
        if chosen:
            self.out_edit.setText(str(Path(chosen) / current.name))

    # --- commands ----------------------------------------------------------------------------------
    def _start(self) -> None:
        text = self.out_edit.text().strip()
        if not text:
            self._warn("Name the folder the new model goes into.")
            return
        out = Path(text).expanduser()
        problem = self.controller.output_problem(out)
        if problem:
            self._warn(problem)
            return
        replace = out.is_dir() and any(out.iterdir())
        if replace and not self._confirm_replace(out):
            return
        self.controller.start(out, float(self.minutes.value()), replace=replace)

    def _confirm_replace(self, out: Path) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, "Replace the model?",
                          f"{out} already holds a model. Replace it with the new one when training "
                          "has finished? (Until then it stays as it is.)",
                          QMessageBox.StandardButton.Cancel, self)
        replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setObjectName("confirmReplaceModel")
        box.exec()
        return box.clickedButton() is replace

    def _warn(self, text: str) -> None:
        QMessageBox.warning(self, "Train a model on these captions", text)

    def _use(self) -> None:
        self.controller.use_new_model()
        self.close()

    # --- following the controller ------------------------------------------------------------------
    def _on_state(self, state: TrainingState) -> None:
        editable = state in (TrainingState.READY, TrainingState.FAILED, TrainingState.CANCELLED)
        for widget in (self.out_edit, self.choose, self.minutes):
            widget.setEnabled(editable)
        self.start_button.setVisible(editable)
        self.start_button.setText("Start training" if state is TrainingState.READY else "Start again")
        self.cancel_button.setVisible(state.active)
        self.cancel_button.setEnabled(state is TrainingState.RUNNING)
        self.use_button.setVisible(state is TrainingState.DONE)
        self.close_button.setText("Hide" if state.active else "Close")
        self.close_button.setToolTip("Training goes on; Tools ▸ Train a model… shows it again"
                                     if state.active else "")
        done = state is TrainingState.DONE
        self.table.setVisible(done)
        self.scores_note.setVisible(done)
        end = self.controller.end
        if state is TrainingState.RUNNING:
            self.status.setText("Starting…")
            self.bar.setValue(0)
            self.log_view.clear()
        elif state is TrainingState.CANCELLING:
            self.status.setText("Stopping the training…")
        elif state is TrainingState.CANCELLED:
            self.status.setText("Cancelled; no model was written.")
        elif state is TrainingState.FAILED and end is not None:
            self.status.setText(f"Training failed: {end.reason}")
        elif done and end is not None and end.scores is not None:
            self.bar.setValue(BAR_STEPS)
            self.status.setText(f"The new model is in {self.controller.out}.")
            self._show_scores(end.scores)
        elif state is TrainingState.READY:
            self.status.setText("")

    def _on_progress(self, progress: Progress) -> None:
        self.bar.setValue(round(overall_fraction(progress) * BAR_STEPS))
        self.status.setText(progress.text)

    def _on_output(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def _show_scores(self, scores: HeldOutScores) -> None:
        verdict = {True: "The new model captions them better (CIDEr, which weighs the words that "
                         "matter most, is higher).",
                   False: "The new model is not better on them: keep the model in use, or save more "
                          "captions and train again.",
                   None: ""}[scores.better()]
        self.scores_note.setText(f"On {scores.images} of your photos held out from training (beam "
                                 f"{scores.beam}; higher is better). {verdict}")
        rows = scores.rows()
        self.table.setRowCount(len(rows))
        for row, (metric, before, after) in enumerate(rows):
            cells = (metric, metric_text(metric, before), metric_text(metric, after),
                     change_text(metric, before, after))
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if column:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 3 and after != before:
                    cell.setForeground(QColor("#1a7f37") if after > before else QColor("#c0392b"))
                self.table.setItem(row, column, cell)
        self.table.setFixedHeight(self.table.horizontalHeader().height()
                                  + sum(self.table.rowHeight(r) for r in range(len(rows))) + 4)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing hides the dialog; a finished run's plan is then forgotten."""
        self.controller.forget()
        event.accept()
