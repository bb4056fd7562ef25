"""`--out-dir DIR` with --sidecar: caption files in a copy of the photos' folder tree under DIR,
for collections that are read-only or must stay untouched.

`photos/2019/a.jpg` gets `DIR/photos/2019/a.txt`: the path as given, relative to the current
folder. A path that is absolute or leaves the current folder (`../x/a.jpg`) is placed by its
absolute path (`DIR/home/me/x/a.txt`), so `..` never climbs out of DIR. Folders are made as
needed, and a folder inside DIR that is a symbolic link leading out of DIR is refused: nothing
is ever written outside DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

from captioner.errors import WriteError


def mirrored_sidecar(image: Path, out_dir: Path) -> Path:
    """Where the caption file of `image` goes under out_dir (never outside it)."""
    absolute = os.path.abspath(image)
    relative = os.path.relpath(absolute)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        relative = absolute.lstrip(os.sep)
    return (out_dir / relative).with_suffix(".txt")


def make_folder_inside(target: Path, out_dir: Path) -> None:
    """Make target's folder one level at a time, checking each level before making the next
    in it; WriteError if one cannot be made or resolves outside out_dir (a link)."""
    root = os.path.realpath(out_dir)
    folder = out_dir
    for part in target.parent.relative_to(out_dir).parts:
        folder = folder / part
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass
        except OSError as exc:
            raise WriteError(target, f"cannot make its folder ({exc.strerror or exc})") from None
        real = os.path.realpath(folder)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            raise WriteError(target, "its folder leads outside --out-dir (a symbolic link); not written")
        if not os.path.isdir(folder):
            raise WriteError(target, "cannot write here: a file stands where its folder should be")
