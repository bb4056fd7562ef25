"""Work around PySide6 6.12 returning borrowed None/True/False, which crashes Python 3.10/3.11.

The PySide6 6.12.0 wheels are built for the stable ABI (abi3) in a way that makes every
`void` method (setText, update, QPainter.drawText, ...) return `None`, and `Signal.emit()` /
`disconnect()` return `True`/`False`, *without taking a reference*. Each call therefore takes
one reference away from the interpreter's singletons. On Python >= 3.12 those singletons are
immortal and nothing happens; on 3.10/3.11 `None` starts with a few thousand references, so a
window that paints a thumbnail grid or captions a 500-image batch soon hits zero and CPython
aborts with "Fatal Python error: none_dealloc" (or bool_dealloc).

`install()` measures whether the running PySide6 has the bug and, only then, does what
CPython 3.12 does by design: it gives the four singletons an effectively infinite reference
count (2**60; they are static objects that are never freed anyway), so the missing references
can never bring them to zero. Importing the `gui` package installs it, which covers every
panel, gui/video included. A fixed PySide6, or Python >= 3.12, is left untouched.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

IMMORTAL = 1 << 60
_SINGLETONS = (None, True, False, NotImplemented)
_installed = False


class _Probe(QObject):
    ping = Signal()


def _loses_references() -> bool:
    """Do PySide calls take references from None or True? (Runs a few harmless calls.)"""
    probe = _Probe()
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(8):
        probe.setObjectName("probe")  # void: returns None
        probe.ping.emit()  # returns True
    after = sys.getrefcount(None), sys.getrefcount(True)
    return after[0] < before[0] or after[1] < before[1]


def _immortalize(obj: object) -> None:
    """Raise ob_refcnt (the first field of every CPython object) far out of reach of zero."""
    refcount = ctypes.c_ssize_t.from_address(id(obj))
    if refcount.value < IMMORTAL:
        refcount.value += IMMORTAL


def install() -> bool:
    """Apply the workaround if this interpreter and PySide6 need it; True if applied."""
    global _installed
    if _installed:
        return False
    _installed = True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if not _loses_references():
        return False
    for obj in _SINGLETONS:
        _immortalize(obj)
    return True


def protected() -> bool:
    """For tests: are the singletons out of reach (immortal here, or by the interpreter)?"""
    return all(sys.getrefcount(obj) > IMMORTAL // 2 for obj in (None, True, False)) or (
        sys.version_info >= (3, 12))
