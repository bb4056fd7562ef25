"""The whole bad-input corpus (tests/bad_inputs.py) through the real window.

Images: the corpus folder is opened, captioned and saved twice (first keeping every existing
caption file, then overwriting) — each failure must show on its item and in the log pane, the
batch must go on, and no caption file may change without consent. Videos go through the Video
tab, bundles through "Open model bundle", which must keep the model that was working.

A root test process ignores file permissions, so there the test runs itself again in a child
process that has dropped that privilege (as the CLI corpus test does), where a read-only folder
really is read-only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from captioner.writers import read_sidecar
from tests.bad_inputs import (
    CAPTIONED,
    FAILED,
    HAND_WRITTEN,
    IGNORED,
    INCOMPLETE,
    REFUSED,
    BadCase,
    drop_permission_override,
    honours_permissions,
    make_bad_corpus,
    permissions_can_be_enforced,
    vanish,
)
from tests.qt_helpers import WINDOW_TIMEOUT, DialogAnswerer, MessageAnswerer, build_window

pytestmark = pytest.mark.gui
CHILD_ENV = "CAPTIONER_APP_CORPUS_CHILD"
ROOT = Path(__file__).resolve().parent.parent
IN_THIS_PROCESS = honours_permissions() or os.environ.get(CHILD_ENV) == "1"


@pytest.mark.skipif(IN_THIS_PROCESS, reason="the corpus test runs in this process")
@pytest.mark.skipif(not permissions_can_be_enforced(), reason="cannot drop root's file permissions")
def test_corpus_in_a_process_that_honours_permissions(tiny_bundle: Path) -> None:
    env = {**os.environ, CHILD_ENV: "1", "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         __file__],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        preexec_fn=drop_permission_override,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-12000:]
    assert "3 passed" in done.stdout, done.stdout[-2000:]


needs_own_process = pytest.mark.skipif(
    not IN_THIS_PROCESS, reason="run by test_corpus_in_a_process_that_honours_permissions")


@pytest.fixture
def corpus(tmp_path: Path, tiny_bundle: Path) -> list[BadCase]:
    return make_bad_corpus(tmp_path, bundle=tiny_bundle)


@pytest.fixture
def window(qtbot, tmp_path: Path, tiny_bundle: Path):
    win = build_window(qtbot, tmp_path / "settings.ini", tiny_bundle)
    yield win
    win.captions.shutdown()


def _of(cases: list[BadCase], kind: str) -> list[BadCase]:
    return [c for c in cases if c.kind == kind]


def _sidecars(cases: list[BadCase]) -> dict[str, bytes | None]:
    return {c.name: c.sidecar_path.read_bytes() if c.sidecar_path.is_file() else None
            for c in cases if c.expectation.outcome != IGNORED}


def _save_all(qtbot, window, answer: str) -> DialogAnswerer:
    answerer = DialogAnswerer([(answer, True)])
    window.actions_by_name["save_all"].trigger()
    qtbot.waitUntil(lambda: not window.saver.is_busy(), timeout=WINDOW_TIMEOUT)
    answerer.stop()
    return answerer


@needs_own_process
def test_every_image_case_in_the_app(qtbot, window, corpus: list[BadCase], tmp_path: Path) -> None:
    cases = _of(corpus, "image")
    listed = [c for c in cases if c.expectation.outcome != IGNORED]
    before = _sidecars(cases)
    window.open_paths([tmp_path / "images"])
    qtbot.waitUntil(lambda: not window.photos.is_scanning(), timeout=WINDOW_TIMEOUT)
    paths = {i.path for i in window.page.model.items()}
    assert paths == {c.path for c in listed}, "ignored files listed or cases missing"
    vanish(cases)  # deleted after the folder was listed, before captioning
    replacing = MessageAnswerer("Replace", prefix=True)  # the model's captions replace hand-written ones
    window.actions_by_name["caption_all_replace"].trigger()
    qtbot.waitUntil(lambda: not window.captions.is_running(), timeout=120_000)
    assert replacing.seen
    log = "\n".join(window.log_pane.lines())
    for case in listed:
        entry = window.page.model.item_for(case.path)
        exp = case.expectation
        if exp.outcome == CAPTIONED:
            assert entry.has_caption and not entry.error, (case.name, entry.error)
            if exp.caption:
                assert entry.caption == exp.caption, case.name
        else:
            assert exp.outcome == FAILED and entry.error, case.name
            assert exp.reason in entry.error, (case.name, entry.error)
            assert entry.error in log, (case.name, entry.error)
            assert "\n" not in entry.error, case.name
    assert _sidecars(cases) == before, "captioning alone changed caption files"

    _save_all(qtbot, window, "keep")  # keep every caption a person wrote
    for case in listed:
        path, exp = case.sidecar_path, case.expectation
        if exp.outcome != CAPTIONED or case.sidecar is not None:
            assert (path.read_bytes() if path.is_file() else None) == before[case.name], case.name
        elif exp.write_error:
            assert exp.write_error in window.page.model.item_for(case.path).error, case.name
        else:
            assert read_sidecar(case.path) == window.page.model.item_for(case.path).caption, case.name

    _save_all(qtbot, window, "overwrite")  # now with consent
    for case in listed:
        entry, exp = window.page.model.item_for(case.path), case.expectation
        if exp.outcome != CAPTIONED:  # a failed image never touches its caption file
            path = case.sidecar_path
            assert (path.read_bytes() if path.is_file() else None) == before[case.name], case.name
        elif exp.write_error:
            assert exp.write_error in entry.error and entry.dirty, (case.name, entry.error)
            if case.sidecar is not None:
                assert read_sidecar(case.path) == HAND_WRITTEN, case.name
        else:
            assert read_sidecar(case.path) == entry.caption and not entry.dirty, case.name
    assert window.isVisible()


@needs_own_process
def test_every_video_case_in_the_video_tab(qtbot, window, corpus: list[BadCase]) -> None:
    panel = window.video_panel
    assert panel is not None
    window.tabs.setCurrentWidget(panel)
    for case in _of(corpus, "video"):
        panel.open_video(case.path)
        qtbot.waitUntil(lambda: not panel.is_running(), timeout=60_000)
        status, rows = panel.status.text(), panel.model.rowCount()
        exp = case.expectation
        if exp.outcome == CAPTIONED:
            assert rows >= 1 and "segments" in status, (case.name, status)
        elif exp.outcome == INCOMPLETE:
            assert rows >= 1 and exp.reason in status, (case.name, status)
        else:
            assert exp.outcome == FAILED and rows == 0, (case.name, rows)
            assert "Cannot caption" in status and exp.reason in status, (case.name, status)


@needs_own_process
def test_every_bundle_case_keeps_the_working_model(qtbot, window, corpus: list[BadCase],
                                                   tiny_bundle: Path) -> None:
    working = window.models.captioner
    for case in _of(corpus, "bundle"):
        assert case.expectation.outcome == REFUSED
        window.open_bundle(case.path)
        qtbot.waitUntil(lambda: window.models.state.value != "loading", timeout=WINDOW_TIMEOUT)
        assert window.models.captioner is working and window.models.state.value == "ready", case.name
        last = window.log_pane.lines()[-1]
        assert "model not loaded" in last and case.expectation.reason in last, (case.name, last)
        assert "still using" in last, last
        assert window.settings.bundle_path() == tiny_bundle, "a refused bundle was remembered"
    assert working.name in window.model_label.text() and not window.banner.isVisible()
