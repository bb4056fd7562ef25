"""One fine-tune run in a child process: `python -m export.finetune`, its progress, its end
(and the plan and state types the training controller and dialog share).

Why a process: fine-tuning needs PyTorch, which the app never imports (tests/test_layers.py),
and minutes of CPU that must not freeze the window. QProcess reports through the event loop,
so nothing here waits: stdout's JSON lines (captioner/finetune_protocol.py) become `progress`,
stderr's lines become `output` (and the last of them a failure's reason).

Why a staging folder: the run writes its bundle into a hidden folder beside the one chosen,
which this class owns; the bundle is moved into place only once the run has succeeded (an
existing bundle there is replaced only when the caller says the person agreed), and the staging
folder is removed on cancel or failure. A half-written bundle is never left where a model is
looked for.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from captioner.finetune_protocol import (
    HeldOutScores,
    Progress,
    Stage,
    parse_progress,
    read_held_out_scores,
    write_photo_list,
)

FINETUNE = [sys.executable, "-m", "export.finetune"]  # the command, less its arguments
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # holds gui/ and export/ (checkout or site-packages)
REASON_LINES = 3  # the last stderr lines a failure is explained by
# how much of the whole run each stage spans (features and scoring take a few minutes of a run
# whose training is limited to --minutes)
STAGE_SPANS: dict[Stage, tuple[float, float]] = {
    Stage.PREPARING: (0.0, 0.02), Stage.FEATURES: (0.02, 0.1), Stage.TRAINING: (0.1, 0.8),
    Stage.SCORING_BEFORE: (0.8, 0.87), Stage.EXPORTING: (0.87, 0.93), Stage.SCORING_AFTER: (0.93, 1.0),
    Stage.DONE: (1.0, 1.0),
}


def overall_fraction(progress: Progress) -> float:
    """How far the whole run is (0-1): the stage's span, and the stage's own fraction in it."""
    low, high = STAGE_SPANS[progress.stage]
    return low + (high - low) * (progress.done or 0.0)


@dataclass(frozen=True)
class RunRequest:
    """What to fine-tune on and where the new bundle goes."""

    source: Path  # the bundle to start from
    photos: tuple[Path, ...]  # each with its NAME.txt caption file
    out: Path
    minutes: float  # training time limit
    cache_dir: Path  # image features, kept between runs
    replace: bool = False  # the person agreed to replace a bundle at `out`


@dataclass(frozen=True)
class TrainingPlan:
    """What a run from the menu would do, fixed when the menu item is chosen."""

    photos: tuple[Path, ...]  # the list's photos whose captions a person saved
    listed: int  # photos in the list
    source: Path
    source_name: str
    out: Path  # proposed; the person may pick another folder


class TrainingState(Enum):
    """Where the menu's training is; the dialog's buttons and texts follow it."""

    READY = "ready"  # planned, not started
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (TrainingState.RUNNING, TrainingState.CANCELLING)


class Outcome(Enum):
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RunEnd:
    outcome: Outcome
    scores: HeldOutScores | None = None  # DONE: from the new bundle's manifest
    reason: str = ""  # FAILED: the run's last words


def failure_reason(lines: list[str], code: int) -> str:
    """What a failed run said last: a traceback's final line (the error itself), else its last
    few lines (the run's own one-line refusals)."""
    words = [line for line in lines if line.strip() and not line.startswith(("features ", "Loaded "))]
    if any(line.startswith("Traceback (most recent call last)") for line in words):
        return words[-1]
    return "\n".join(words[-REASON_LINES:]) or f"the training process stopped (exit code {code})"


def remove_later(path: Path) -> threading.Thread:
    """Remove a folder in a thread (never in the GUI thread's time); returns the thread."""
    thread = threading.Thread(target=shutil.rmtree, args=(path,), kwargs={"ignore_errors": True},
                              name="remove-training-staging", daemon=True)
    thread.start()
    return thread


class FinetuneRun(QObject):
    """Start with `start()`; ends with exactly one `finished(RunEnd)`."""

    progress = Signal(object)  # Progress
    output = Signal(str)  # one stderr line
    finished = Signal(object)  # RunEnd

    def __init__(self, request: RunRequest, program: list[str] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self.program = list(program or FINETUNE)
        self.staging: Path | None = None
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self.tail: deque[str] = deque(maxlen=50)
        self._buffers = {"out": "", "err": ""}
        self._cancelled = False
        self._ended = False

    @property
    def bundle(self) -> Path:
        """Where the child writes the bundle (inside the staging folder)."""
        assert self.staging is not None, "not started"
        return self.staging / "bundle"

    def start(self) -> None:
        """Make the staging folder beside the output, hand the photos over, start the child.
        OSError (an output folder that cannot be made) reaches the caller."""
        out = self.request.out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.training-", dir=out.parent))
        photos = self.staging / "photos.txt"
        write_photo_list(photos, list(self.request.photos))
        env = QProcessEnvironment.systemEnvironment()
        path = env.value("PYTHONPATH")
        env.insert("PYTHONPATH", str(PACKAGE_ROOT) + (f"{os.pathsep}{path}" if path else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.setWorkingDirectory(str(self.staging))  # relative paths of the run land here
        args = [*self.program[1:], "--from", str(self.request.source), "--data", str(photos),
                "--out", str(self.bundle), "--cache-dir", str(self.request.cache_dir),
                "--minutes", f"{self.request.minutes:g}", "--progress-jsonl"]
        self.process.start(self.program[0], args)

    def cancel(self) -> None:
        """Kill the child; `finished(CANCELLED)` follows once it has gone and is cleaned up."""
        if self._ended:
            return
        self._cancelled = True
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()

    def kill_now(self) -> None:
        """App shutdown: kill the child, wait for it briefly and remove the staging folder here."""
        if self._ended:
            return
        self._cancelled = True
        self.process.kill()
        self.process.waitForFinished(3000)
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        self._ended = True

    # --- the child's output ------------------------------------------------------------------
    def _lines(self, stream: str, data: bytes) -> list[str]:
        """Complete lines so far; of a line redrawn with carriage returns (a tqdm bar), only
        what it last showed."""
        text = self._buffers[stream] + data.decode("utf-8", errors="replace")
        *lines, self._buffers[stream] = text.split("\n")
        last = (line.rstrip("\r").rsplit("\r", 1)[-1].rstrip() for line in lines)
        return [line for line in last if line]

    def _read_stdout(self) -> None:
        for line in self._lines("out", bytes(self.process.readAllStandardOutput().data())):
            found = parse_progress(line)
            if found is not None:
                self.progress.emit(found)

    def _read_stderr(self) -> None:
        for line in self._lines("err", bytes(self.process.readAllStandardError().data())):
            self.tail.append(line)
            self.output.emit(line)

    # --- the end -------------------------------------------------------------------------------
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error is QProcess.ProcessError.FailedToStart:  # no `finished` follows this one
            self._end(RunEnd(Outcome.FAILED, reason=f"could not start {self.program[0]}: "
                             f"{self.process.errorString()}"))

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        if self._cancelled:
            self._end(RunEnd(Outcome.CANCELLED))
            return
        scores = read_held_out_scores(self.bundle) if code == 0 else None
        if status is QProcess.ExitStatus.NormalExit and scores is not None:
            try:
                self._place()
            except OSError as exc:
                self._end(RunEnd(Outcome.FAILED, reason=f"the new model could not be moved to "
                                 f"{self.request.out}: {exc}"))
                return
            self._end(RunEnd(Outcome.DONE, scores))
            return
        self._end(RunEnd(Outcome.FAILED, reason=failure_reason(list(self.tail), code)))

    def _place(self) -> None:
        """Move the finished bundle to the output folder (renames on one disk: instant)."""
        out = self.request.out
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # an empty folder the person made for it
        if out.exists():
            if not self.request.replace:
                raise OSError(f"{out} appeared meanwhile; the new model is not put there")
            out.rename(self.bundle.with_name("replaced"))  # removed with the staging folder
        self.bundle.rename(out)

    def _end(self, end: RunEnd) -> None:
        if self._ended:
            return
        self._ended = True
        if self.staging is not None:
            remove_later(self.staging)
        self.finished.emit(end)

