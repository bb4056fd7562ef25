"""Finding images in the paths a user gives: files and folders, optionally recursive.

Walks folders without following symlinks into loops, and reports what it could not read
instead of stopping.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from captioner.images import is_image_path


@dataclass
class FoundImages:
    images: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def find_images(paths: Iterable[str | Path], recursive: bool = True) -> FoundImages:
    """Images named directly are kept whatever their extension; folders give image files."""
    found = FoundImages()
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _walk(path, recursive, found, seen_dirs)
        elif path.is_file():
            found.images.append(path)
        elif path.is_symlink():
            found.problems.append((path, "broken symbolic link"))
        else:
            found.problems.append((path, "no such file or folder"))
    return found


def _walk(root: Path, recursive: bool, found: FoundImages, seen: set[tuple[int, int]]) -> None:
    try:
        st = root.stat()
    except OSError as exc:
        found.problems.append((root, f"cannot open folder: {exc.strerror}"))
        return
    if (st.st_dev, st.st_ino) in seen:  # a symlink loop or a folder named twice
        return
    seen.add((st.st_dev, st.st_ino))
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        found.problems.append((root, f"cannot list folder: {exc.strerror}"))
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir():
                if recursive:
                    _walk(path, recursive, found, seen)
            elif entry.is_file() and is_image_path(path):
                found.images.append(path)
        except OSError as exc:
            found.problems.append((path, f"cannot read: {exc.strerror}"))
