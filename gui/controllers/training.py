"""Tools ▸ "Train a model on these captions…": fine-tune the model in use on the photos of the
list whose captions a person saved, and offer the new model.

The menu item first says why it cannot start, in one message: the `train` extra (PyTorch) is
not installed (found with importlib's find_spec, which imports nothing: the app never loads
torch), no model is loaded, or too few photos have a saved caption of a person's. Otherwise
it opens the training dialog (gui/dialogs/train_dialog.py) on a plan; the run itself is a
child process (gui/training_run.py). The window wires `use_model` to the model controller's
load, so switching goes through the same path as File ▸ Open model bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from captioner.captioner import Captioner
from captioner.finetune_protocol import MIN_PHOTOS
from gui.dialogs.train_dialog import TrainDialog
from gui.models.items import ImageItem
from gui.training_run import FinetuneRun, Outcome, RunEnd, RunRequest, TrainingPlan, TrainingState

Log = Callable[[str, str], None]
TRAIN_MODULES = ("torch", "onnx")  # what `python -m export.finetune` cannot start without
INSTALL = 'pip install -e ".[train]"'  # from a checkout; a wheel: pip install "captioner[train]"
DEFAULT_MINUTES = 10.0


def missing_train_modules() -> list[str]:
    """The train extra's modules that are not installed (looked up, never imported)."""
    return [name for name in TRAIN_MODULES if find_spec(name) is None]


def saved_by_a_person(item: ImageItem) -> bool:
    """A photo to learn from: its caption file holds the caption shown, and a person wrote it
    (read from the file, or typed here and saved). A model caption that was only saved is not
    one: the model would learn its own words."""
    return item.saved is not None and item.source.human and not item.dirty and not item.unreadable


def default_output(models_dir: Path, source_name: str) -> Path:
    """A bundle folder name that is not taken yet: NAME-mine, NAME-mine-2, ..."""
    base = models_dir / f"{source_name}-mine"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


class TrainingController(QObject):
    state_changed = Signal(object)  # TrainingState
    progress = Signal(object)  # Progress
    output = Signal(str)  # a line of the run's own log
    use_model = Signal(object)  # Path: the new bundle, to load

    def __init__(self, items: Callable[[], list[ImageItem]], model: Callable[[], Captioner | None],
                 data_dir: Path, log: Log, dialog_parent: QWidget) -> None:
        super().__init__(dialog_parent)
        self.items, self.model, self.data_dir = items, model, data_dir
        self.log, self.dialog_parent = log, dialog_parent
        self.program: list[str] | None = None  # None: python -m export.finetune (tests: a fake)
        self.default_minutes = DEFAULT_MINUTES
        self.plan: TrainingPlan | None = None
        self.state = TrainingState.READY
        self.end: RunEnd | None = None
        self.out: Path | None = None  # the folder of the run started last
        self._run: FinetuneRun | None = None
        self.dialog: TrainDialog | None = None

    # --- the menu item -------------------------------------------------------------------------
    def unavailable(self) -> str:
        """Why training cannot run in this installation ("" when it can)."""
        missing = missing_train_modules()
        if not missing:
            return ""
        return (f"Training needs the train extra ({', '.join(missing)} not installed). "
                f"Install it with:  {INSTALL}")

    def open(self) -> TrainingPlan | None:
        """The menu item: say what stops it, or plan a run and show the dialog."""
        if self.plan is not None and (self.state.active or self.state is TrainingState.DONE):
            self._show()  # the run in progress, or its result
            return self.plan
        refusal = self.unavailable() or self._refusal()
        if refusal:
            self._tell(refusal)
            return None
        self.plan = self._make_plan()
        self._set_state(TrainingState.READY)
        self._show()
        return self.plan

    def _show(self) -> None:
        if self.dialog is None:
            self.dialog = TrainDialog(self, self.dialog_parent)
        self.dialog.present()

    def _refusal(self) -> str:
        if self.model() is None:
            return "No model is loaded: open the model to start from first (File ▸ Open model bundle…)."
        items = self.items()
        photos = [i for i in items if saved_by_a_person(i)]
        if len(photos) >= MIN_PHOTOS:
            return ""
        unsaved = sum(i.user_edit_pending for i in items)
        hint = f" {unsaved} caption(s) you typed are not saved yet (File ▸ Save all)." if unsaved else ""
        return (f"Training needs at least {MIN_PHOTOS} photos whose captions you saved; this list has "
                f"{len(photos)}.{hint} Correct the captions of your own photos and save them (Ctrl+S): "
                "a few hundred teach the model the most.")

    def _make_plan(self) -> TrainingPlan:
        captioner = self.model()
        assert captioner is not None
        items = self.items()
        photos = tuple(i.path for i in items if saved_by_a_person(i))
        out = default_output(self.data_dir / "models", captioner.name)
        return TrainingPlan(photos, len(items), captioner.bundle.path, captioner.name, out)

    def _tell(self, text: str) -> None:
        self.log(text, "warning")
        box = QMessageBox(QMessageBox.Icon.Information, "Train a model on these captions", text,
                          QMessageBox.StandardButton.Ok, self.dialog_parent)
        box.setObjectName("trainRefused")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # the command
        box.exec()

    # --- the run ---------------------------------------------------------------------------------
    def output_problem(self, out: Path) -> str:
        """Why the new bundle cannot go to `out` ("" when it can; an existing bundle there is a
        question for the dialog, not a problem)."""
        plan = self.plan
        captioner = self.model()
        in_use = {plan.source.resolve()} if plan else set()
        if captioner is not None:
            in_use.add(captioner.bundle.path.resolve())
        if out.resolve() in in_use:
            return f"{out} holds the model in use; choose another folder"
        if out.exists() and not out.is_dir():
            return f"{out} is a file; choose a folder"
        if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
            return f"{out} holds other files, not a model; choose a new folder"
        return ""

    def start(self, out: Path, minutes: float, replace: bool = False) -> bool:
        """Start the run into `out` (`replace`: the person agreed to replace what is there)."""
        plan = self.plan
        if plan is None or self.state.active or self.output_problem(out):
            return False
        request = RunRequest(plan.source, plan.photos, out, minutes,
                             self.data_dir / "feature-cache", replace)
        run = FinetuneRun(request, self.program, self)
        run.progress.connect(self.progress)
        run.output.connect(self.output)
        run.finished.connect(lambda end, r=run: self._on_finished(r, end))
        try:
            run.start()
        except OSError as exc:
            self._tell(f"Training could not start: {out.parent} cannot be written ({exc}).")
            return False
        self._run, self.out, self.end = run, out, None
        self.log(f"training a model on {len(plan.photos)} photo(s) from {plan.source_name}, into {out}",
                 "info")
        self._set_state(TrainingState.RUNNING)
        return True

    def cancel(self) -> None:
        if self._run is not None and self.state is TrainingState.RUNNING:
            self._set_state(TrainingState.CANCELLING)
            self._run.cancel()

    def staging(self) -> Path | None:
        """The running run's staging folder (removed when it ends)."""
        return self._run.staging if self._run is not None else None

    def _on_finished(self, run: FinetuneRun, end: RunEnd) -> None:
        if run is not self._run:
            return
        self._run, self.end = None, end
        if end.outcome is Outcome.DONE:
            self.log(f"training finished: the new model is in {self.out}", "info")
            self._set_state(TrainingState.DONE)
            self._show()  # the scores, even if the dialog was closed meanwhile
        elif end.outcome is Outcome.CANCELLED:
            self.log("training cancelled; nothing was written", "info")
            self._set_state(TrainingState.CANCELLED)
        else:
            self.log(f"training failed: {end.reason}", "error")
            self._set_state(TrainingState.FAILED)
            self._show()  # why, even if the dialog was closed meanwhile

    def use_new_model(self) -> None:
        if self.state is TrainingState.DONE and self.out is not None:
            self.use_model.emit(self.out)

    def forget(self) -> None:
        """The dialog was closed on a finished run: the next menu use plans afresh."""
        if not self.state.active:
            self.plan = None

    def _set_state(self, state: TrainingState) -> None:
        self.state = state
        self.state_changed.emit(state)

    # --- lifetime --------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.state.active

    def confirm_quit(self) -> bool:
        """Quitting stops a run in progress: asked first (Cancel keeps the app open)."""
        if not self.is_running():
            return True
        answer = QMessageBox.question(
            self.dialog_parent, "Stop training?",
            "A model is being trained. Quit and stop it? (Nothing of it is kept.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def shutdown(self) -> None:
        """Quitting: the run is killed and its staging folder removed before the app exits."""
        if self._run is not None:
            self._run.kill_now()
            self._run = None
            self._set_state(TrainingState.CANCELLED)
