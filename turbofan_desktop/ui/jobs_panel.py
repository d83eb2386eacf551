"""The jobs panel: one row per job with progress, epoch, ETA, a live loss curve, log lines and Cancel.

Rows read the :class:`~turbofan_desktop.ui.jobs.Job` records the manager keeps; manager signals only
mark a row dirty, and one QTimer repaints dirty rows (pyqtgraph ``setData`` on curves created once),
so a fast job cannot make the GUI thread redraw on every progress event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.ui.jobs import (
    CANCELLED,
    CANCELLING,
    DONE_STATES,
    FAILED,
    FINISHED,
    RUNNING,
    Job,
    JobManager,
)

REFRESH_MS = 200
ROW_PLOT_HEIGHT = 90
ROW_LOG_HEIGHT = 48  # until a loss curve appears beside it
LOG_LINES_SHOWN = 200
STATE_COLOURS = {
    RUNNING: "#1565c0",
    CANCELLING: "#ef6c00",
    FINISHED: "#2e7d32",
    FAILED: "#b00020",
    CANCELLED: "#6d6d6d",
}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA —"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"ETA {seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"ETA {seconds // 60} min {seconds % 60:02d} s"
    return f"ETA {seconds} s"


@runtime_checkable
class RegistersVersions(Protocol):
    """A job result that registered model versions (services' TrainSummary)."""

    registered: list[int]


def registered_versions(result: object) -> list[int]:
    """Version ids a finished job registered (a services TrainSummary's ``registered``)."""
    if isinstance(result, dict):
        registered = result.get("registered")
    elif isinstance(result, RegistersVersions):
        registered = result.registered
    else:
        return []
    try:
        return [int(v) for v in registered or []]
    except (TypeError, ValueError):
        return []


class JobRow(QFrame):
    """The widgets of one job; :meth:`refresh` copies the Job record into them."""

    def __init__(self, manager: JobManager, job_id: int, panel: JobsPanel):
        super().__init__()
        self.manager = manager
        self.job_id = job_id
        self.panel = panel
        self._shown_versions: list[int] = []
        self._log_count = 0
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName(f"job_{job_id}")

        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.state = QLabel()
        self.state.setMinimumWidth(110)
        self.state.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.epoch = QLabel()
        self.eta = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.manager.cancel(self.job_id))

        self.plot = pg.PlotWidget()
        self.plot.setFixedHeight(ROW_PLOT_HEIGHT)
        self.plot.setBackground("w")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "epoch")
        self.plot.getPlotItem().setContentsMargins(0, 0, 4, 0)
        self.plot.setLabel("left", "loss")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.addLegend(offset=(-5, 2), colCount=2, labelTextSize="8pt")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        # one curve object per series, updated with setData, never re-created
        self.train_curve = self.plot.plot(
            [], [], pen=pg.mkPen("#1565c0", width=2), symbol="o", symbolSize=4, name="train"
        )
        self.val_curve = self.plot.plot(
            [], [], pen=pg.mkPen("#ef6c00", width=2), symbol="o", symbolSize=4, name="val"
        )
        self.plot.hide()

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES_SHOWN)
        self.log.setFixedHeight(ROW_LOG_HEIGHT)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)

        self.versions = QHBoxLayout()
        self.versions.addStretch(1)

        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.state)
        header.addWidget(self.cancel_button)
        status = QHBoxLayout()
        status.addWidget(self.progress, 1)
        status.addWidget(self.epoch)
        status.addWidget(self.eta)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(header)
        layout.addLayout(status)
        body = QHBoxLayout()
        body.addWidget(self.plot, 3)
        body.addWidget(self.log, 2)
        layout.addLayout(body)
        layout.addLayout(self.versions)
        self.refresh()

    @property
    def job(self) -> Job:
        return self.manager.job(self.job_id)

    def refresh(self) -> None:
        job = self.job
        self.title.setText(job.title)
        label = job.state + (f" · {job.stage}" if job.state == RUNNING and job.stage else "")
        self.state.setText(label)
        self.state.setStyleSheet(f"color: {STATE_COLOURS.get(job.state, '#000')};")
        self.progress.setValue(int(round(job.fraction * 1000)))
        self.progress.setFormat(f"{job.fraction * 100:.0f} %")
        if job.epoch is not None:
            total = f"/{job.epochs}" if job.epochs else ""
            series = f"{job.series} · " if job.series and job.series != "*" else ""
            self.epoch.setText(f"{series}epoch {job.epoch}{total}")
        elif job.losses:
            self.epoch.setText(f"epoch {job.losses[-1].epoch}")
        else:
            self.epoch.setText("")
        self.eta.setText(
            format_eta(job.eta) if job.state in (RUNNING, CANCELLING) else f"{job.elapsed:.1f} s"
        )
        self.cancel_button.setVisible(not job.done)
        self.cancel_button.setEnabled(job.state != CANCELLING)
        self._refresh_losses(job)
        self._refresh_log(job)
        if job.state == FAILED and job.error:
            self.progress.setFormat(job.error)
            self.progress.setToolTip(job.error)
        if job.state == FINISHED:
            self._refresh_versions(job)

    def _refresh_losses(self, job: Job) -> None:
        """Curves show the series (target) trained now; a multi-target job restarts the curve per target."""
        series = job.series if job.series else (job.losses[-1].series if job.losses else "")
        points = [p for p in job.losses if p.series == series] or job.losses
        if not points:
            return
        if self.plot.isHidden():
            self.plot.show()
            self.log.setFixedHeight(ROW_PLOT_HEIGHT)
        epochs = np.array([p.epoch for p in points], dtype=float)
        train = np.array([np.nan if p.train_loss is None else p.train_loss for p in points], dtype=float)
        val = np.array([np.nan if p.val_loss is None else p.val_loss for p in points], dtype=float)
        keep = ~np.isnan(train)
        self.train_curve.setData(epochs[keep], train[keep])
        keep = ~np.isnan(val)
        self.val_curve.setData(epochs[keep], val[keep])
        step = max(1, int(np.ceil(len(epochs) / 8)))  # whole epochs on the axis
        self.plot.getAxis("bottom").setTickSpacing(step, step)

    def _refresh_log(self, job: Job) -> None:
        # append only what is new; the manager caps job.log, so re-sync when it shrank
        if len(job.log) < self._log_count:
            self.log.setPlainText("\n".join(job.log[-LOG_LINES_SHOWN:]))
        else:
            for line in job.log[self._log_count :][-LOG_LINES_SHOWN:]:
                self.log.appendPlainText(line)
        self._log_count = len(job.log)

    def _refresh_versions(self, job: Job) -> None:
        versions = registered_versions(job.result)
        if versions == self._shown_versions:
            return
        self._shown_versions = versions
        for version_id in versions:
            button = QPushButton(self.panel.version_name(version_id))
            button.setObjectName(f"version_{version_id}")
            button.setFlat(True)
            button.setStyleSheet("color: #1565c0; text-decoration: underline;")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setToolTip("Show this version in the models panel")
            button.clicked.connect(lambda _=False, v=version_id: self.panel.version_activated.emit(v))
            self.versions.insertWidget(self.versions.count() - 1, button)

    def version_buttons(self) -> list[QPushButton]:
        return [
            self.versions.itemAt(i).widget()
            for i in range(self.versions.count())
            if isinstance(self.versions.itemAt(i).widget(), QPushButton)
        ]


class JobsPanel(QWidget):
    """Every job of a :class:`JobManager`, newest at the top."""

    version_activated = Signal(int)

    def __init__(
        self,
        manager: JobManager,
        parent: QWidget | None = None,
        *,
        version_name: Callable[[int], str] | None = None,
    ):
        """``version_name`` names a registered version as a user reads it (``transformer/* v2 (#5)``,
        services.naming); without it a link reads ``version 5``."""
        super().__init__(parent)
        self.manager = manager
        self.version_name: Callable[[int], str] = version_name or (lambda version_id: f"version {version_id}")
        self.rows: dict[int, JobRow] = {}
        self._dirty: set[int] = set()

        self.summary = QLabel("No jobs yet.")
        self.show_background = QCheckBox("Show automatic jobs")
        self.show_background.setObjectName("showBackgroundJobs")
        self.show_background.setToolTip(
            "Drift checks run on opening a file and quick looks such as showing a model on the plot; "
            "hidden unless they fail"
        )
        self.show_background.toggled.connect(self._apply_filter)
        clear = QPushButton("Clear finished")
        clear.clicked.connect(self.clear_finished)
        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.show_background)
        header.addWidget(clear)

        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.addStretch(1)
        self.scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._list)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(header)
        layout.addWidget(scroll, 1)

        manager.job_added.connect(self._add_row)
        manager.job_changed.connect(self._mark_dirty)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        for job in manager.jobs():
            self._add_row(job.id)

    def _add_row(self, job_id: int) -> None:
        if job_id in self.rows:
            return
        row = JobRow(self.manager, job_id, self)
        self.rows[job_id] = row
        self._list_layout.insertWidget(0, row)
        row.setVisible(self.shows(row.job))
        self._update_summary()
        if row.isVisibleTo(self):
            # newest first: bring it into view once the layout has placed it
            QTimer.singleShot(0, self, lambda: self._reveal(job_id))

    def _reveal(self, job_id: int) -> None:
        row = self.rows.get(job_id)
        if row is not None:
            self.scroll.ensureWidgetVisible(row, 0, 0)

    def shows(self, job: Job) -> bool:
        """Whether ``job``'s card is in view: every job the user started; an automatic one when
        asked for, or when it failed (a failure is never hidden)."""
        return not job.background or self.show_background.isChecked() or job.state == FAILED

    def _apply_filter(self, *_: object) -> None:
        for row in self.rows.values():
            row.setVisible(self.shows(row.job))
        self._update_summary()

    def visible_rows(self) -> list[JobRow]:
        return [row for row in self.rows.values() if not row.isHidden()]

    def _mark_dirty(self, job_id: int) -> None:
        self._dirty.add(job_id)

    def refresh(self) -> None:
        """Repaint the rows that changed since the last tick (and running ones, for their ETA)."""
        running = {job_id for job_id, row in self.rows.items() if not row.job.done}
        for job_id in self._dirty | running:
            row = self.rows.get(job_id)
            if row is not None:
                row.refresh()
                if row.isHidden() == self.shows(row.job):  # e.g. an automatic job that failed
                    row.setVisible(self.shows(row.job))
        if self._dirty:
            self._update_summary()
        self._dirty.clear()

    def _update_summary(self) -> None:
        jobs = self.manager.jobs()
        if not jobs:
            self.summary.setText("No jobs yet.")
            return
        running = sum(1 for j in jobs if not j.done and j.state != "queued")
        queued = sum(1 for j in jobs if j.state == "queued")
        done = sum(1 for j in jobs if j.state in DONE_STATES)
        hidden = sum(1 for j in jobs if not self.shows(j))
        note = f" ({hidden} automatic hidden)" if hidden else ""
        self.summary.setText(f"{running} running, {queued} queued, {done} done{note}")

    def clear_finished(self) -> None:
        for job_id, row in list(self.rows.items()):
            if row.job.done:
                self._list_layout.removeWidget(row)
                row.deleteLater()
                del self.rows[job_id]
                self.manager.remove(job_id)
        self._update_summary()


__all__ = ["JobRow", "JobsPanel", "format_eta", "registered_versions"]
