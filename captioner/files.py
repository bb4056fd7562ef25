"""Finding images in the paths a user gives: files and folders, optionally recursive.

What a real photo folder holds and what happens to it here:

* symbolic links are followed, but a folder is entered once however many links lead to it,
  so a link loop (`holiday/again -> ..`) ends the walk instead of recursing forever;
* a link named like an image that points nowhere, or at itself, is reported;
* hidden entries (`.thumbnails/`, the `._IMG_0001.jpg` files macOS leaves on USB drives, a
  half-written `.photo.txt.tmp`) are skipped when walking a folder, as a file browser does;
* anything that is not a regular file (a pipe named `x.jpg`, a device) is never opened, since
  reading it could block forever;
* a folder that cannot be listed is reported and the walk goes on;
* the walk is a loop, not a recursion, so a tree thousands of folders deep is no different.

Paths named directly are kept whatever their extension (the loader looks at the bytes).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from captioner.images import is_image_path


@dataclass
class FoundImages:
    images: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def find_images(paths: Iterable[str | Path], recursive: bool = True) -> FoundImages:
    """Images named directly are kept whatever their extension; folders give image files.

    Each file is listed once, in the order given (folders in name order), and `problems`
    holds a one-line reason for every path that cannot be used.
    """
    found = FoundImages()
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _walk(path, recursive, found, seen_dirs, seen_files)
            continue
        problem = regular_file_problem(path)
        if problem is None:
            _add(path, found, seen_files)
        else:
            found.problems.append((path, problem))
    return found


def regular_file_problem(path: Path) -> str | None:
    """Why a path named on the command line cannot be read as a file, or None for a regular
    file. It is never opened: opening a pipe named `v.mp4` could block for ever."""
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder, not a file"
    if path.is_symlink():
        return _link_problem(path)
    if _exists(path):
        return "not a regular file (a pipe, socket or device)"
    return "no such file or folder"


def _add(path: Path, found: FoundImages, seen: set[str]) -> None:
    key = os.path.normpath(path)
    if key not in seen:
        seen.add(key)
        found.images.append(path)


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _link_problem(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself)"
        if exc.errno == errno.ENOENT:
            return "broken symbolic link (its target does not exist)"
        return f"cannot follow symbolic link: {exc.strerror}"
    return "not a regular file (a pipe, socket or device)"


def _walk(root: Path, recursive: bool, found: FoundImages, seen: set[tuple[int, int]],
          seen_files: set[str]) -> None:
    """Depth first, in name order, without recursion: a tree thousands of folders deep is
    walked like any other (Python's recursion limit is about 1,000 calls)."""
    listings = [_listing(root, found, seen)]
    while listings:
        entry = next(listings[-1], None)
        if entry is None:
            listings.pop()
            continue
        folder = _visit(entry, recursive, found, seen_files)
        if folder is not None:
            listings.append(_listing(folder, found, seen))


def _listing(folder: Path, found: FoundImages, seen: set[tuple[int, int]]) -> Iterator[os.DirEntry[str]]:
    """The visible entries of a folder in name order; none for a folder already walked or
    one that cannot be listed (which is reported)."""
    try:
        st = folder.stat()
    except OSError as exc:
        found.problems.append((folder, f"cannot open folder: {exc.strerror}"))
        return iter(())
    if (st.st_dev, st.st_ino) in seen:  # a symlink loop or a folder named twice
        return iter(())
    seen.add((st.st_dev, st.st_ino))
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        found.problems.append((folder, f"cannot list folder: {exc.strerror}"))
        return iter(())
    return iter([e for e in entries if not e.name.startswith(".")])


def _visit(entry: os.DirEntry[str], recursive: bool, found: FoundImages, seen_files: set[str]
           ) -> Path | None:
    """Take one folder entry: an image is added, a problem reported; a folder to enter is returned."""
    path = Path(entry.path)
    try:
        if entry.is_dir():
            return path if recursive else None
        if entry.is_file():
            if is_image_path(path):
                _add(path, found, seen_files)
        elif entry.is_symlink() and is_image_path(path):
            found.problems.append((path, _link_problem(path)))
    except OSError as exc:
        if is_image_path(path):
            reason = (_link_problem(path) if exc.errno == errno.ELOOP
                      else f"cannot read: {exc.strerror}")
            found.problems.append((path, reason))
    return None
