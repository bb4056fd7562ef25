"""A Captioner in a child process, with the same `caption_files` iterator as the class itself.

Why a process: beam search runs Python and numpy code between onnxruntime calls and holds the
GIL while it does. In a GUI, a caption thread that is preempted by the OS while holding the
GIL keeps the GUI thread waiting for as long as it stays preempted: tens of milliseconds on
a busy machine. In a child process the GUI never competes for a GIL with beam search; it only
unpickles finished results. (Measured with bench/ui_heartbeat.py.)

Protocol over a duplex multiprocessing pipe, one run at a time:
    parent -> child: ("caption", paths, options, batch_size) | ("cancel",) | ("quit",)
                     ("images", [PIL image], options)                          frames of a video
    child -> parent: ("ready", name, provider value) | ("failed", reason)     once, at start
                     ("result", path, CaptionResult) | ("error", path, reason) per image, in order
                     ("done",)                                                 end of a run
                     ("captions", [CaptionResult]) | ("failed", reason)        answer to "images"
A cancel is noticed between images; the run then ends early with "done". One conversation at
a time: a run and an "images" request from another thread wait for each other. A provider
crosses the pipe as its value ("cpu"), plain text, and is a Provider again on each side.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from PIL import Image

from captioner.captioner import CaptionOptions, CaptionResult
from captioner.errors import BundleError, CaptionerError, ImageLoadError
from captioner.session import Provider, as_provider


def serve(bundle: str, provider: str, variant: str, conn: Connection, niceness: int = 0) -> None:
    """Child process main loop: load the bundle once, then caption runs until told to quit.
    `provider` is a Provider's value."""
    from captioner.captioner import Captioner

    if niceness and hasattr(os, "nice"):
        os.nice(niceness)  # before onnxruntime makes its threads: they inherit it
    try:
        captioner = Captioner(bundle, provider=provider, variant=variant)
    except CaptionerError as exc:
        conn.send(("failed", str(exc)))
        return
    conn.send(("ready", captioner.name, captioner.provider.value))
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent went away
            return
        if message[0] == "quit":
            return
        if message[0] == "images":
            try:
                conn.send(("captions", captioner.caption_images(message[1], message[2])))
            except CaptionerError as exc:
                conn.send(("failed", str(exc)))
        if message[0] == "caption" and not _run(captioner, conn, *message[1:]):
            return


def _run(captioner, conn: Connection, paths: list[str], options: CaptionOptions, batch_size: int) -> bool:
    """One run; False when the parent asked to quit meanwhile."""
    results = captioner.caption_files([Path(p) for p in paths], options, batch_size)
    keep_serving = True
    try:
        for path, result in results:
            if isinstance(result, CaptionerError):
                conn.send(("error", str(path), getattr(result, "reason", str(result))))
            else:
                conn.send(("result", str(path), result))
            if conn.poll():
                command = conn.recv()[0]
                if command in ("cancel", "quit"):
                    keep_serving = command == "cancel"
                    break
    finally:
        results.close()
    conn.send(("done",))
    return keep_serving


class CaptionService:
    """Parent side. Start it, `wait_ready()`, then iterate `caption_files` like a Captioner."""

    def __init__(self, bundle: str | Path, provider: Provider | str = Provider.AUTO, variant: str = "auto",
                 niceness: int = 0) -> None:
        wanted = as_provider(provider).value  # BundleError here for a provider that does not exist
        context = mp.get_context("spawn")  # no fork: the parent may be a multi-threaded GUI
        self._conn, child = context.Pipe(duplex=True)
        self._process = context.Process(target=serve, args=(str(bundle), wanted, variant, child, niceness),
                                        name="captioner-service", daemon=True)
        self._process.start()
        child.close()
        self._send_lock = threading.Lock()
        self._talk = threading.Lock()  # one run or request at a time (photos and video share it)
        self.name, self.provider = "", Provider.AUTO  # where it runs (CPU or CUDA) once ready

    def wait_ready(self) -> None:
        """Block until the child has loaded the bundle; raise BundleError if it could not."""
        message = self._receive()
        if message[0] == "failed":
            self.close()
            raise BundleError(message[1])
        _, self.name, provider = message
        self.provider = Provider(provider)

    def caption_files(self, paths: Iterable[Path], options: CaptionOptions | None = None,
                      batch_size: int = 16) -> Iterator[tuple[Path, CaptionResult | CaptionerError]]:
        """Same contract as Captioner.caption_files; stops early after `cancel()`."""
        with self._talk:
            yield from self._caption_files(paths, options, batch_size)

    def caption_images(self, images: list[Image.Image], options: CaptionOptions | None = None
                       ) -> list[CaptionResult]:
        """Same contract as Captioner.caption_images (the frames of a video)."""
        with self._talk:
            self._send(("images", images, options or CaptionOptions()))
            message = self._receive()
        if message[0] == "failed":
            raise CaptionerError(message[1])
        return message[1]

    def _caption_files(self, paths: Iterable[Path], options: CaptionOptions | None,
                       batch_size: int) -> Iterator[tuple[Path, CaptionResult | CaptionerError]]:
        self._send(("caption", [str(p) for p in paths], options or CaptionOptions(), batch_size))
        finished = False
        try:
            while True:
                message = self._receive()
                if message[0] == "done":
                    finished = True
                    return
                path = Path(message[1])
                yield path, message[2] if message[0] == "result" else ImageLoadError(path, message[2])
        finally:
            if not finished and self.alive():  # abandoned mid-run: stop it and drain to "done"
                self.cancel()
                while self._receive()[0] != "done":
                    pass

    def cancel(self) -> None:
        """Ask the running batch to stop after the image in hand (safe from any thread)."""
        try:
            self._send(("cancel",))
        except CaptionerError:
            pass

    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self, timeout: float = 3.0) -> None:
        try:
            self._send(("quit",))
        except CaptionerError:
            pass
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout)
        self._conn.close()

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            try:
                self._conn.send(message)
            except (OSError, ValueError) as exc:
                raise CaptionerError(f"the captioning process is gone ({exc})") from None

    def _receive(self) -> tuple:
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._process.exitcode
            raise CaptionerError(f"the captioning process stopped unexpectedly (exit code {code}, {exc!r})"
                                 ) from None
