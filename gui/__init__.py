"""Captioner desktop app (PySide6). Built on captioner/ only; never imports torch."""

from gui.qtfix import install as _install_pyside_fix

_install_pyside_fix()  # PySide6 6.12 + Python 3.11 crash otherwise (see gui/qtfix.py)
