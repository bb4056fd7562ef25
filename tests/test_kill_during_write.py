"""A batch killed (SIGKILL) while it writes caption files leaves every file old or new, never torn.

Writes go to a hidden temporary file that takes the target's name in one rename, so whatever
moment the kill lands on, a caption file holds the text it had or the whole new caption. A
killed run can leave its hidden `.NAME.txt.XXXXXXXX.tmp` behind; it is never read as a caption.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captioner import writers
from captioner.errors import WriteError
from captioner.files import find_images
from captioner.writers import Outcome, atomic_write_text, read_sidecar, write_sidecar
from tests.synthetic import make_shapes_folder

ROOT = Path(__file__).resolve().parent.parent
CAPTION = re.compile(r"^[a-z]+( [a-z]+)*\n$")
TEMP = re.compile(r"^\..+\.txt\.[A-Za-z0-9_]+\.tmp$")

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def old_text(image: Path) -> str:
    return f"old caption of {image.stem}\n"


def check_folder(folder: Path, images: list[Path]) -> tuple[int, int]:
    """Every sidecar is its old text or a whole new caption; returns (old, new) counts."""
    old = new = 0
    for image in images:
        text = image.with_suffix(".txt").read_text(encoding="utf-8")
        if text == old_text(image):
            old += 1
        else:
            assert CAPTION.match(text), f"torn or empty caption file {image.stem}.txt: {text!r}"
            new += 1
    names = {p.name for p in folder.iterdir()}
    sidecars = {n for n in names if n.endswith(".txt") and not n.startswith(".")}
    assert sidecars == {i.with_suffix(".txt").name for i in images}
    leftovers = {n for n in names if n.startswith(".")}
    assert all(TEMP.match(n) for n in leftovers), leftovers
    assert find_images([folder]).images == sorted(images)  # temp files are never taken as input
    return old, new


def start_batch(folder: Path, bundle: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "captioner", "caption", str(folder), "--sidecar", "--overwrite",
         "--batch-size", "4", "--provider", "cpu", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CAPTIONER_MODEL": str(bundle)},
    )


def test_sigkill_mid_batch_leaves_old_or_new_captions(tmp_path: Path, tiny_bundle: Path) -> None:
    folder = tmp_path / "photos"
    images = sorted(p for p, _ in make_shapes_folder(folder, per_class=3, seed=5, sidecars=False))
    for image in images:
        image.with_suffix(".txt").write_text(old_text(image), encoding="utf-8")

    # kill before any caption, then right after the 1st, 6th, 17th and 30th caption is printed
    # (its file is being written at that moment, or about to be)
    most = 0
    for kill_after in (0, 1, 6, 17, 30):
        proc = start_batch(folder, tiny_bundle)
        assert proc.stdout is not None
        if kill_after == 0:
            time.sleep(0.3)
        else:
            for _ in range(kill_after):
                assert proc.stdout.readline(), "the batch ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode in (-signal.SIGKILL, 0)  # 0: it finished first (a loaded machine)
        old, new = check_folder(folder, images)
        assert old + new == len(images)
        most = max(most, kill_after)
        assert new >= most - 1  # every caption printed before the last one is on disk

    # a last run to the end: every file now holds the caption printed for its image
    proc = start_batch(folder, tiny_bundle)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0
    printed = dict(line.rsplit("\t", 1) for line in out.splitlines())
    assert len(printed) == len(images)
    for image in images:
        assert image.with_suffix(".txt").read_text(encoding="utf-8") == printed[str(image)] + "\n"
    check_folder(folder, images)


WRITER = """
import sys
from pathlib import Path
from captioner.writers import atomic_write_text
target, size = Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
for i in range(1, 100000):
    atomic_write_text(target, (f"{i:08d}" * (size // 8)) + "\\n")
"""


def test_sigkill_inside_a_large_write_never_tears_the_file(tmp_path: Path) -> None:
    """A writer replacing a 4 MB file in a loop, killed at 12 moments: the file is whole each time.

    The temporary files left behind show that kills did land in the middle of writes."""
    target = tmp_path / "big.txt"
    size = 4 << 20
    atomic_write_text(target, ("00000000" * (size // 8)) + "\n")
    mid_write = 0
    for delay in (0.0, 0.01, 0.02, 0.05, 0.08, 0.13, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(size)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        data = target.read_text()
        assert len(data) == size + 1 and data.endswith("\n")
        assert data[:-1] == data[:8] * (size // 8), f"torn file after a kill at {delay} s"
        temps = [p for p in tmp_path.iterdir() if p.name != "big.txt"]
        assert all(TEMP.match(p.name) for p in temps)
        mid_write += bool(temps)
        for p in temps:
            p.unlink()
    assert mid_write >= 2, "no kill landed inside a write: the test proves nothing"


# -- the writer's promises, one by one ------------------------------------------------------


def test_new_file_gets_umask_permissions_and_replacement_keeps_the_old_ones(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    write_sidecar(image, "a red circle")
    mask = os.umask(0o022)
    os.umask(mask)
    assert image.with_suffix(".txt").stat().st_mode & 0o777 == 0o666 & ~mask
    image.with_suffix(".txt").chmod(0o640)
    assert write_sidecar(image, "a blue square", overwrite=True) is Outcome.WRITTEN
    assert image.with_suffix(".txt").stat().st_mode & 0o777 == 0o640
    assert read_sidecar(image) == "a blue square"


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """The check for an existing file and the write are one step: a caption saved by someone
    else after the check (here: the check is made to miss it) is still not replaced."""
    target = tmp_path / "a.txt"
    target.write_text("saved by someone else\n")
    real_stat = os.stat
    monkeypatch.setattr(writers.os, "stat", lambda p, *a, **k: (_ for _ in ()).throw(FileNotFoundError())
                        if Path(p) == target else real_stat(p, *a, **k))
    assert atomic_write_text(target, "mine\n", overwrite=False) is False
    assert target.read_text() == "saved by someone else\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_without_hard_links_it_still_refuses_to_clobber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """FAT and exFAT memory cards have no hard links: check, then rename."""
    def no_links(*_: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(writers.os, "link", no_links)
    target = tmp_path / "a.txt"
    assert atomic_write_text(target, "first\n", overwrite=False) is True
    assert atomic_write_text(target, "second\n", overwrite=False) is False
    assert target.read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_read_only_caption_file_is_locked(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.with_suffix(".txt").write_text("final, do not touch\n")
    image.with_suffix(".txt").chmod(0o444)
    with pytest.raises(WriteError, match="read-only"):
        write_sidecar(image, "a red circle", overwrite=True)
    assert read_sidecar(image) == "final, do not touch"


def test_a_very_long_name_still_gets_its_caption(tmp_path: Path) -> None:
    image = tmp_path / ("x" * 250 + ".jpg")
    assert write_sidecar(image, "a red circle") is Outcome.WRITTEN
    assert read_sidecar(image) == "a red circle"
