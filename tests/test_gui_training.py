"""Tools ▸ Train a model on these captions (issue 20) in the real window: what the menu says
without the train extra or with too few saved captions, and a run through the dialog with a
fake fine-tune (tests/fake_finetune.py: the real command's arguments and progress lines, in a
second, no torch) for progress, cancel, failure, replacing a bundle and switching to the new
model. One slow test runs the real `python -m export.finetune` on the tiny bundle."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from captioner.finetune_protocol import Stage, read_held_out_scores
from gui.training_run import TrainingState, failure_reason
from tests.qt_helpers import MessageAnswerer, give_result, item, open_and_wait
from tests.synthetic import make_shapes_folder

pytestmark = pytest.mark.gui
TIMEOUT = 30_000
FAKE = [sys.executable, str(Path(__file__).with_name("fake_finetune.py"))]
INSTALL = 'pip install -e ".[train]"'


@pytest.fixture(autouse=True)
def _train_extra_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake needs no torch: these tests run where the train extra is not installed too."""
    monkeypatch.setattr("gui.controllers.training.find_spec", lambda name: object())


def open_photos(qtbot, window, root: Path, saved: int) -> list[Path]:
    """12 shapes, the first `saved` with a caption file (a person's), opened in the window."""
    photos = [p for p, _ in make_shapes_folder(root, per_class=1, seed=4, sidecars=False)]
    for path in photos[:saved]:
        path.with_suffix(".txt").write_text(f"my own words for {path.stem}\n")
    open_and_wait(qtbot, window, [root], len(photos))
    return photos


def edit(window, path: Path, text: str) -> None:
    window.photos.set_current(item(window, path))
    window.photos.edit(text)


def start_fake(qtbot, window, monkeypatch: pytest.MonkeyPatch, mode: str, record: Path | None = None):
    monkeypatch.setenv("FAKE_FINETUNE", mode)
    if record is not None:
        monkeypatch.setenv("FAKE_FINETUNE_RECORD", str(record))
    window.training.program = FAKE
    window.actions_by_name["train"].trigger()
    dialog = window.training.dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def staging_folders(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.training-*"))


def test_without_the_train_extra_the_menu_says_what_to_install(qtbot, make_window,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gui.controllers.training.find_spec",
                        lambda name: None if name == "torch" else object())
    window = make_window()
    action = window.actions_by_name["train"]
    assert INSTALL in action.toolTip() and INSTALL in action.statusTip()
    answer = MessageAnswerer("OK")
    action.trigger()
    assert answer.seen and INSTALL in answer.seen[0] and "torch" in answer.seen[0]
    assert window.training.plan is None and window.training.dialog is None


def test_too_few_saved_captions_is_one_message_with_the_count_needed(qtbot, window, tmp_path: Path) -> None:
    photos = open_photos(qtbot, window, tmp_path / "photos", saved=4)
    edit(window, photos[6], "typed but not saved")
    give_result(window, photos[7], "a caption of the model's")
    answer = MessageAnswerer("OK")
    window.actions_by_name["train"].trigger()
    assert len(answer.seen) == 1
    text = answer.seen[0]
    assert "at least 10 photos whose captions you saved" in text and "this list has 4" in text
    assert "1 caption(s) you typed are not saved yet" in text
    assert window.training.dialog is None


def test_a_run_shows_progress_then_the_scores_and_switches_to_the_new_model(
        qtbot, window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = open_photos(qtbot, window, tmp_path / "photos", saved=12)
    edit(window, photos[0], "changed, not saved yet")  # not what the caption file holds: left out
    seen: list = []
    window.training.progress.connect(seen.append)
    record = tmp_path / "handed-over.txt"
    dialog = start_fake(qtbot, window, monkeypatch, "ok", record)
    assert "11 of the 12 photos" in dialog.intro.text()
    out = Path(dialog.out_edit.text())
    assert out.parent == tmp_path / "captioner-data" / "models"  # beside the INI settings file
    dialog.start_button.click()
    qtbot.waitUntil(lambda: window.training.state is TrainingState.DONE, timeout=TIMEOUT)
    assert sorted(Path(line) for line in record.read_text().splitlines()) == sorted(photos[1:])
    assert Stage.TRAINING in {p.stage for p in seen} and dialog.bar.value() == dialog.bar.maximum()
    assert "features efficientnet_lite0: 100%" in dialog.log_view.toPlainText()  # stderr, \r split
    table = dialog.table
    rows = {table.item(r, 0).text(): [table.item(r, c).text() for c in (1, 2, 3)]
            for r in range(table.rowCount())}
    assert rows["CIDEr"] == ["0.529", "0.655", "+0.126"] and rows["BLEU-4"] == ["20.1", "24.3", "+4.2"]
    assert dialog.table.isVisible() and dialog.use_button.isVisible()
    assert "On 2 of your photos held out" in dialog.scores_note.text()
    assert "captions them better" in dialog.scores_note.text()
    assert read_held_out_scores(out) is not None
    qtbot.waitUntil(lambda: not staging_folders(out), timeout=TIMEOUT)
    dialog.use_button.click()
    qtbot.waitUntil(lambda: window.models.bundle() == out and window.models.state.value == "ready",
                    timeout=TIMEOUT)
    assert window.settings.bundle_path() == out and not dialog.isVisible()


def test_cancel_kills_the_run_and_leaves_no_bundle(qtbot, window, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    open_photos(qtbot, window, tmp_path / "photos", saved=12)
    dialog = start_fake(qtbot, window, monkeypatch, "hang")
    out = Path(dialog.out_edit.text())
    dialog.start_button.click()
    qtbot.waitUntil(lambda: "epoch 1 of 15" in dialog.status.text(), timeout=TIMEOUT)
    staging = window.training.staging()
    assert staging is not None
    qtbot.waitUntil(lambda: (staging / "bundle" / "encoder.onnx").exists(), timeout=TIMEOUT)
    assert 0 < dialog.bar.value() < dialog.bar.maximum()
    dialog.close()  # hiding the dialog does not stop the run
    assert window.training.is_running()
    window.actions_by_name["train"].trigger()  # the menu brings the running dialog back
    assert dialog.isVisible() and dialog.cancel_button.isVisible()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: window.training.state is TrainingState.CANCELLED, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not staging.exists(), timeout=TIMEOUT)
    assert not out.exists() and "Cancelled" in dialog.status.text()
    assert dialog.start_button.isVisible() and not dialog.use_button.isVisible()


def test_a_failed_run_says_why(qtbot, window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_photos(qtbot, window, tmp_path / "photos", saved=12)
    dialog = start_fake(qtbot, window, monkeypatch, "fail")
    out = Path(dialog.out_edit.text())
    dialog.start_button.click()
    qtbot.waitUntil(lambda: window.training.state is TrainingState.FAILED, timeout=TIMEOUT)
    assert "only 3 captioned photos found" in dialog.status.text()
    qtbot.waitUntil(lambda: not staging_folders(out), timeout=TIMEOUT)
    assert not out.exists()


def test_a_traceback_is_told_by_its_last_line() -> None:
    """A crash shows the error, not the stack; a one-line refusal shows itself."""
    crash = ["epoch 1 of 15: loss 2.1, val loss 2.0", "Traceback (most recent call last):",
             '  File "export/finetune.py", line 9, in main', "    finetune(cfg)",
             "RuntimeError: export refused: parity FAIL"]
    assert failure_reason(crash, 1) == "RuntimeError: export refused: parity FAIL"
    assert failure_reason(["features efficientnet_lite0: 100%", "only 3 captioned photos found"], 2) \
        == "only 3 captioned photos found"
    assert failure_reason([], 1) == "the training process stopped (exit code 1)"


def test_an_existing_bundle_is_replaced_only_when_the_person_agrees(
        qtbot, window, tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_photos(qtbot, window, tmp_path / "photos", saved=12)
    dialog = start_fake(qtbot, window, monkeypatch, "ok")
    dialog.out_edit.setText(str(tiny_bundle))  # the model in use: refused
    answer = MessageAnswerer("OK")
    dialog.start_button.click()
    assert "holds the model in use" in answer.seen[0]
    existing = tmp_path / "older-model"
    shutil.copytree(tiny_bundle, existing)
    dialog.out_edit.setText(str(existing))
    answer = MessageAnswerer("Cancel")
    dialog.start_button.click()
    assert "already holds a model" in answer.seen[0]
    assert window.training.state is TrainingState.READY and read_held_out_scores(existing) is None
    answer = MessageAnswerer("Replace")
    dialog.start_button.click()
    qtbot.waitUntil(lambda: window.training.state is TrainingState.DONE, timeout=TIMEOUT)
    assert read_held_out_scores(existing) is not None
    qtbot.waitUntil(lambda: not staging_folders(existing), timeout=TIMEOUT)


def test_quitting_during_a_run_asks_first(qtbot, window, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    open_photos(qtbot, window, tmp_path / "photos", saved=12)
    dialog = start_fake(qtbot, window, monkeypatch, "hang")
    dialog.start_button.click()
    qtbot.waitUntil(lambda: "epoch 1 of 15" in dialog.status.text(), timeout=TIMEOUT)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    assert not window.training.confirm_quit()
    staging = window.training.staging()
    window.training.shutdown()  # what quitting does: kill, and nothing left behind
    assert staging is not None and not staging.exists()


@pytest.mark.slow
def test_a_real_finetune_of_the_tiny_bundle_from_the_menu(qtbot, window, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m export.finetune` itself, on 12 shapes photos with their captions."""
    pytest.importorskip("torch")
    root = tmp_path / "photos"
    make_shapes_folder(root, per_class=1, seed=8, sidecars=True)
    open_and_wait(qtbot, window, [root], 12)
    window.training.default_minutes = 1
    window.actions_by_name["train"].trigger()
    dialog = window.training.dialog
    assert dialog is not None
    out = Path(dialog.out_edit.text())
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not window.training.is_running(), timeout=600_000)
    assert window.training.state is TrainingState.DONE, dialog.status.text()
    scores = read_held_out_scores(out)
    assert scores is not None and scores.rows() and dialog.table.rowCount() == len(scores.rows())
