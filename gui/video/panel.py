"""The Video tab: open or drop a video, segments stream into a timeline list with thumbnails,
clicking one shows its frame, captions are edited in place, and the list exports to SRT,
WebVTT, CSV or JSON. Decoding and captioning run in a worker thread with progress and Cancel;
the preview frame is decoded in a worker too, so the GUI thread never waits on the file.

Edited captions are never dropped silently: opening another video, changing the sampling
(which runs the clip again) or quitting asks first while edits are not exported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QItemSelection, QModelIndex, QSize, Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from captioner.errors import CaptionerError
from captioner.segments import ImageCaptioner, Segment, VideoJob
from captioner.subtitles import VideoDocument, write_segments
from captioner.video import VIDEO_EXTENSIONS, SamplingOptions, VideoInfo, is_video_path
from gui.video.model import CAPTION, TAGS, THUMB, TIME, SegmentModel
from gui.video.worker import FrameWorker, VideoWorker

EXPORTS = (
    ("SRT", "srt", "SubRip subtitles (*.srt)"),
    ("WebVTT", "vtt", "WebVTT (*.vtt)"),
    ("CSV", "csv", "CSV (*.csv)"),
    ("JSON", "json", "JSON (*.json)"),
)
PREVIEW_BOX = 720
RERUN_DELAY_MS = 700  # typing "15" into "every N s" re-runs once, not twice


class VideoPanel(QWidget):
    """Constructed by the main window as VideoPanel(parent, captioner_getter); the getter gives
    the caption process when there is one (frames are captioned there, like photos), else the
    in-process captioner."""

    def __init__(self, parent: QWidget | None = None,
                 captioner_getter: Callable[[], ImageCaptioner | None] = lambda: None) -> None:
        super().__init__(parent)
        self.captioner_getter = captioner_getter
        self.model = SegmentModel(self)
        self.video: Path | None = None
        self.info: VideoInfo | None = None
        self.stopped: str | None = None
        self.worker: VideoWorker | None = None
        self.frame_worker: FrameWorker | None = None
        self.ran_with: SamplingOptions | None = None  # the sampling of the segments shown
        self._rerun = QTimer(self)
        self._rerun.setSingleShot(True)
        self._rerun.setInterval(RERUN_DELAY_MS)
        self._rerun.timeout.connect(self.rerun)
        self.setAcceptDrops(True)
        self._build()
        self._set_running(False)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._controls())
        self.status = QLabel("Open or drop a video to caption its scenes.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._table())
        splitter.addWidget(self._preview())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout.addWidget(splitter, 1)
        layout.addLayout(self._exports())

    def _controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.open_button = QPushButton("Open video…")
        self.open_button.clicked.connect(self.choose_video)
        self.every = QDoubleSpinBox()
        self.every.setRange(0.0, 3600.0)
        self.every.setDecimals(1)
        self.every.setValue(10.0)
        self.every.setSuffix(" s")
        self.every.setSpecialValueText("off")
        self.every.setToolTip("a frame every N seconds (with scenes: inside scenes longer than N)")
        self.scenes = QCheckBox("Scenes")
        self.scenes.setChecked(True)
        self.scenes.setToolTip("one segment per scene, from ffmpeg's scene-cut score")
        self.every.valueChanged.connect(lambda _v: self._rerun.start())
        self.scenes.toggled.connect(lambda _on: self._rerun.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        for widget in (self.open_button, QLabel("Every"), self.every, self.scenes, self.cancel_button):
            row.addWidget(widget)
        row.addWidget(self.progress, 1)
        return row

    def _table(self) -> QTableView:
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.table.setIconSize(QSize(96, 54))
        self.table.verticalHeader().setDefaultSectionSize(60)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(THUMB, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(THUMB, 104)
        header.setSectionResizeMode(TIME, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(TIME, self.table.fontMetrics().horizontalAdvance("00:00:00.0 – 00:00:00.0") + 24)
        header.setSectionResizeMode(CAPTION, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(TAGS, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(TAGS, 160)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.dataChanged.connect(self._on_edited)
        self.model.rowsInserted.connect(lambda *_: self._update_exports())
        return self.table

    def _preview(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        self.frame = QLabel("No segment selected")
        self.frame.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.frame.setMinimumSize(320, 180)
        self.frame_caption = QLabel("")
        self.frame_caption.setWordWrap(True)
        column.addWidget(self.frame, 1)
        column.addWidget(self.frame_caption)
        return box

    def _exports(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Export:"))
        self.export_buttons: dict[str, QPushButton] = {}
        for label, fmt, _ in EXPORTS:
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, f=fmt: self.choose_export(f))
            self.export_buttons[fmt] = button
            row.addWidget(button)
        row.addStretch(1)
        return row

    # -- running ------------------------------------------------------------------------------

    def sampling(self) -> SamplingOptions:
        every = self.every.value() or None
        return SamplingOptions(every=every, scenes=self.scenes.isChecked() or every is None)

    def choose_video(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(VIDEO_EXTENSIONS))
        name, _ = QFileDialog.getOpenFileName(self, "Open video", "", f"Videos ({patterns});;All files (*)")
        if name:
            self.open_video(Path(name))

    def open_video(self, path: Path) -> bool:
        """Start captioning `path`; False (with the reason shown) if it cannot start, or if the
        person chose to keep the edited captions of the video shown."""
        captioner = self.captioner_getter()
        if captioner is None:
            self.status.setText("No model is loaded: choose a model first.")
            return False
        if not self.confirm_discard(f"opening {Path(path).name}"):
            return False
        self._rerun.stop()
        self.cancel()  # not waited for (never block the GUI thread): its late signals are dropped
        self.model.clear()
        self.video, self.info, self.stopped = Path(path), None, None
        self.frame.setText("No segment selected")
        self.frame_caption.setText("")
        self.progress.setValue(0)
        self.status.setText(f"Reading {self.video.name}…")
        self.ran_with = self.sampling()
        job = VideoJob(self.ran_with, thumbnails=True, merge=False)  # the model merges, so rows
        self.worker = VideoWorker(captioner, self.video, job)  # appear as soon as they are captioned
        self.worker.opened.connect(self._on_opened)
        self.worker.item.connect(self._on_segment)
        self.worker.progress.connect(self._on_progress)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(self._on_finished)
        self.worker.start()
        self._set_running(True)
        return True

    def confirm_discard(self, why: str) -> bool:
        """True when no edited caption would be lost, or the person agreed to lose them
        (Keep editing is the default answer)."""
        if not self.model.edited:
            return True
        name = self.video.name if self.video else "this video"
        box = QMessageBox(QMessageBox.Icon.Warning, "Discard edited captions?",
                          f"You edited captions of {name} and have not exported them. "
                          f"Discard your edits by {why}?", QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("confirmDiscard")
        discard = box.addButton("Discard edits", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep editing", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.exec()
        return box.clickedButton() is discard

    def rerun(self) -> None:
        """The sampling changed: caption the clip again with it (after asking, if edited)."""
        if self.video is None or self.is_running() or self.sampling() == self.ran_with:
            return
        if not self.confirm_discard("captioning the clip again with the new sampling"):
            self._show_sampling(self.ran_with)  # the controls say what the list shows
            return
        self.model.edited = False
        self.open_video(self.video)

    def _show_sampling(self, sampling: SamplingOptions | None) -> None:
        if sampling is None:
            return
        for widget in (self.every, self.scenes):
            widget.blockSignals(True)
        self.every.setValue(sampling.every or 0.0)
        self.scenes.setChecked(sampling.scenes)
        for widget in (self.every, self.scenes):
            widget.blockSignals(False)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def wait(self, ms: int = 10_000) -> None:
        """Block until the run's thread ends (switching videos, shutdown, tests)."""
        if self.worker is not None and self.worker.is_running():
            self.worker.wait(ms)

    def shutdown(self) -> None:
        self._rerun.stop()
        self.cancel()
        self.wait()
        if self.frame_worker is not None:
            self.frame_worker.wait()

    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def _set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        for widget in (self.every, self.scenes):
            widget.setEnabled(not running)
        self._update_exports(running)

    def _update_exports(self, running: bool | None = None) -> None:
        running = self.is_running() if running is None else running
        for button in self.export_buttons.values():
            button.setEnabled(self.model.rowCount() > 0 and not running)

    def _current(self) -> bool:
        """Signals of a run replaced by a newer one may still be queued: drop them."""
        return self.worker is not None and self.sender() is self.worker

    def _on_segment(self, seg: Segment) -> None:
        if self._current():
            self.model.add(seg)

    def _on_opened(self, info: VideoInfo) -> None:
        if not self._current():
            return
        self.info = info
        size = f"{info.width}x{info.height}"
        length = f"{info.duration:.1f} s" if info.duration else "unknown length"
        self.status.setText(f"{self.video.name if self.video else ''}: {size}, {length} — captioning…")

    def _on_progress(self, done_ms: int, total_ms: int) -> None:
        if not self._current():
            return
        if total_ms > 0:
            self.progress.setValue(int(1000 * min(1.0, done_ms / total_ms)))
            self.progress.setFormat(f"{done_ms / 1000:.0f} / {total_ms / 1000:.0f} s")
        else:
            self.progress.setFormat(f"{done_ms / 1000:.0f} s")

    def _on_failed(self, message: str) -> None:
        if self._current():
            self.status.setText(f"Cannot caption: {message}")

    def _on_finished(self, cancelled: bool) -> None:
        if not self._current() or self.worker is None:
            return
        self._set_running(False)
        count = self.model.rowCount()
        self.stopped = self.worker.stopped
        if self.worker.error:
            return
        if cancelled:
            self.stopped = "cancelled"
            self.status.setText(f"Cancelled: {count} segments so far.")
        elif self.stopped:
            self.status.setText(
                f"{count} segments. Stopped early: {self.stopped}; what decoded is captioned."
            )
        else:
            self.progress.setValue(1000)
            doubtful = self.model.doubtful_count()
            marked = (f" {doubtful} doubtful (confidence under {self.model.low_confidence:.0%}, "
                      "tinted red): check those first." if doubtful else "")
            self.status.setText(f"{count} segments.{marked} Double-click a caption to edit it.")

    # -- preview and export -------------------------------------------------------------------

    def _selection_changed(self, selected: QItemSelection, _: QItemSelection) -> None:
        rows = {index.row() for index in selected.indexes()}
        if rows:
            self.show_segment(min(rows))

    def _on_edited(self, top: QModelIndex, bottom: QModelIndex) -> None:
        """The caption under the frame follows an edit of its row."""
        rows = self.table.selectionModel().selectedRows()
        if rows and top.row() <= rows[0].row() <= bottom.row():
            self.frame_caption.setText(self.model.segment(rows[0].row()).caption)

    def show_segment(self, row: int) -> None:
        """Show the frame the caption was made from, decoded again at preview size in a worker
        (the latest request wins)."""
        seg = self.model.segment(row)
        self.frame_caption.setText(seg.caption)
        if self.video is None:
            return
        worker = self.frame_worker = FrameWorker(self.video, seg.frame_time, PREVIEW_BOX)
        worker.item.connect(lambda image, w=worker: self._show_frame(w, image))
        worker.failed.connect(lambda text, w=worker: self._frame_failed(w, text))
        worker.start()

    def _show_frame(self, worker: FrameWorker, image: QImage) -> None:
        if worker is not self.frame_worker:
            return
        self.frame.setPixmap(
            QPixmap.fromImage(image).scaled(
                self.frame.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def _frame_failed(self, worker: FrameWorker, text: str) -> None:
        if worker is self.frame_worker:
            self.frame.setText(text)

    def choose_export(self, fmt: str) -> None:
        label, _, pattern = next(e for e in EXPORTS if e[1] == fmt)
        start = str(self.video.with_suffix(f".{fmt}")) if self.video else f"captions.{fmt}"
        name, _ = QFileDialog.getSaveFileName(self, f"Export {label}", start, pattern)
        if name:
            self.export(Path(name), fmt)

    def export(self, path: Path, fmt: str) -> bool:
        """Write the (edited) segments; the save dialog has already asked before replacing."""
        segments: list[Segment] = self.model.segments()
        doc = VideoDocument(
            str(self.video) if self.video else None, self.info.duration if self.info else None, self.stopped
        )
        try:
            write_segments(path, fmt, segments, doc, overwrite=True)
        except CaptionerError as exc:
            self.status.setText(f"Export failed: {exc}")
            return False
        self.model.edited = False
        self.status.setText(f"Exported {len(segments)} segments to {path}")
        return True

    # -- drag and drop ------------------------------------------------------------------------

    @staticmethod
    def _dropped_video(event: QDragEnterEvent | QDropEvent) -> Path | None:
        for url in event.mimeData().urls():
            if url.isLocalFile() and is_video_path(Path(url.toLocalFile())):
                return Path(url.toLocalFile())
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if self._dropped_video(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = self._dropped_video(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_video(path)
