"""Work around a PySide6 reference-count bug that crashes the app on Python 3.10/3.11.

PySide6 6.12's `SignalInstance.emit()` and `.disconnect()` return `True`/`False` without
taking a reference to them. Each call then takes a reference away from the interpreter's
bool singletons. On Python >= 3.12 the bools are immortal and nothing happens; on 3.10/3.11,
once a few thousand signals have been emitted (one 500-image batch is enough), CPython aborts
with "Fatal Python error: bool_dealloc".

`install()` measures whether the running PySide6 has the bug and only then wraps the two
methods to give back the missing reference, so a fixed PySide6 is left untouched.
Importing the `gui` package installs it, which covers every panel, including gui/video.
"""

from __future__ import annotations

import ctypes
import sys
import warnings
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, SignalInstance

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None
_installed = False


class _Probe(QObject):
    ping = Signal()


def _steals_bool(call: Callable[[], object], value: bool) -> bool:
    """Run `call` a few times; True if it lost references to `value`. The loss is repaid."""
    before = sys.getrefcount(value)
    for _ in range(4):
        call()
    lost = before - sys.getrefcount(value)
    for _ in range(max(lost, 0)):
        _incref(value)
    return lost > 0


def _returning_owned_bools(method: Callable) -> Callable:
    def fixed(self: SignalInstance, *args: object, **kwargs: object) -> object:
        result = method(self, *args, **kwargs)
        if result is True or result is False:
            _incref(result)  # the reference PySide forgot to take
        return result

    fixed.__name__, fixed.__doc__ = method.__name__, method.__doc__
    return fixed


def install() -> bool:
    """Patch emit/disconnect where (and only where) they lose references; True if patched."""
    global _installed
    if _installed or sys.version_info >= (3, 12):
        return False
    probe = _Probe()
    patched = False
    if _steals_bool(probe.ping.emit, True):
        SignalInstance.emit = _returning_owned_bools(SignalInstance.emit)  # type: ignore[method-assign]
        patched = True

    def connect_and_disconnect() -> None:
        slot = lambda: None
        probe.ping.connect(slot)
        probe.ping.disconnect(slot)

    if _steals_bool(connect_and_disconnect, True):
        SignalInstance.disconnect = _returning_owned_bools(SignalInstance.disconnect)  # type: ignore[method-assign]
        patched = True
    _installed = True
    return patched


def leaks_now() -> bool:
    """For tests: does emitting still cost `True` a reference?"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = _Probe()
        return _steals_bool(probe.ping.emit, True)
