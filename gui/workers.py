"""A reusable background-job base: run `work()` in its own thread, talk back with signals.

Why this shape:
- The Worker QObject stays in the GUI thread; only `work()` runs in a private QThread. Signals
  emitted from `work()` therefore reach GUI-thread slots as queued calls, in order, and
  `finished` is emitted from the GUI thread *after* every earlier signal was delivered, so a
  slot on `finished` sees the final state.
- Cancellation is cooperative (a threading.Event that `work()` polls): onnxruntime calls
  cannot be interrupted safely, so a job stops at its next item boundary.
- Running workers are kept alive by a module-level set, so a caller can start one and forget
  the reference without Python collecting it mid-run (a classic PySide crash).
- A job that raises is reported through `failed` with a one-line message; it never takes the
  app down, and `finished` still follows.

Subclass and implement `work()`; call `self.report(done, total)` for progress (throttled),
`self.emit_item(obj)` for per-item results and `self.log(text)` for log lines. The video
panel (gui/video/) builds its jobs on this class too.
"""

from __future__ import annotations

import threading
import time
import traceback

from PySide6.QtCore import QObject, QThread, Signal

_ALIVE: set[Worker] = set()


class _Thread(QThread):
    """Runs one worker's job body; nothing else."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self._worker = worker

    def run(self) -> None:
        self._worker._execute()


class Worker(QObject):
    """Base class for background jobs with progress, per-item results, cancel and errors."""

    progress = Signal(int, int)  # done, total
    item = Signal(object)  # one result; subclasses document the payload
    message = Signal(str)  # a line for the log pane
    failed = Signal(str)  # the job as a whole failed (per-item errors travel in `item`)
    finished = Signal(bool)  # True when the job was cancelled

    progress_interval_s = 0.05  # at most ~20 progress signals a second reach the GUI

    def __init__(self, name: str = "job") -> None:
        super().__init__()
        self.name = name
        self._cancel = threading.Event()
        self._thread: _Thread | None = None
        self._last_progress = 0.0
        self.started_at = 0.0
        self.ended_at = 0.0

    # --- for subclasses --------------------------------------------------------------------
    def work(self) -> None:
        """The job body; runs in the worker thread. Poll `is_cancelled()` between items."""
        raise NotImplementedError

    def report(self, done: int, total: int, force: bool = False) -> None:
        """Emit progress, throttled so a fast job cannot flood the GUI thread."""
        now = time.perf_counter()
        if force or done >= total or now - self._last_progress >= self.progress_interval_s:
            self._last_progress = now
            self.progress.emit(done, total)

    def emit_item(self, payload: object) -> None:
        self.item.emit(payload)

    def log(self, text: str) -> None:
        self.message.emit(text)

    # --- for callers -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"worker {self.name!r} was already started")
        _ALIVE.add(self)
        self.started_at = time.perf_counter()
        self._thread = _Thread(self)
        self._thread.finished.connect(self._on_thread_finished)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_running(self) -> bool:
        return self in _ALIVE

    def elapsed(self) -> float:
        end = self.ended_at or time.perf_counter()
        return max(end - self.started_at, 1e-9) if self.started_at else 0.0

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Block until the thread ends (shutdown and tests only; never from normal UI code)."""
        if self._thread is None or self not in _ALIVE:  # never started, or ended (thread deleted)
            return True
        return self._thread.wait(timeout_ms)

    # --- internals ------------------------------------------------------------------------
    def _execute(self) -> None:
        try:
            self.work()
        except Exception as exc:  # noqa: BLE001 - a job's bug must not kill the app
            traceback.print_exc()
            self.failed.emit(f"{self.name} failed: {exc.__class__.__name__}: {exc}")

    def _on_thread_finished(self) -> None:
        """GUI thread: every queued signal from the job has been delivered by now."""
        thread = self._thread
        if thread is not None:
            thread.wait()
            thread.deleteLater()
        self.ended_at = time.perf_counter()
        _ALIVE.discard(self)
        self.finished.emit(self.is_cancelled())


def running_workers() -> list[Worker]:
    return list(_ALIVE)


def cancel_all(timeout_ms: int = 5000) -> None:
    """Ask every running job to stop and wait for them (app shutdown)."""
    workers = list(_ALIVE)
    for worker in workers:
        worker.cancel()
    for worker in workers:
        worker.wait(timeout_ms)
