"""The drift view: per-sensor drift of a dataset against a version's training data.

A table of sensors with their PSI, KS p-value, mean shift and a drift badge, and for the chosen
sensor both distributions overlaid (training CDF from the stored sketch, new data's CDF at the same
points). The check itself is ``services.monitoring.drift`` run as a job (:func:`start_drift_check`),
so the window never waits for it; the dialog opens when the job succeeds.

Opening a file runs the check in the background (:func:`start_auto_drift_check`); its result becomes
badges on the data and models panels (:func:`show_drift_badges`), and a badged sensor opens this view
(:func:`open_sensor_drift`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.ui.drift_badges import (
    DriftCheck,
    run_auto_drift,
    sensor_badges,
    show_selected_drift,
)
from turbofan_desktop.ui.views import select_rows

log = logging.getLogger(__name__)

COLUMNS = ("sensor", "PSI", "KS p", "shift (std)", "drift")
DRIFT_COLOUR = QColor(220, 80, 60)
OK_COLOUR = QColor(70, 160, 90)
TRAIN_PEN = pg.mkPen(color=(60, 110, 200), width=2)
NEW_PEN = pg.mkPen(color=(230, 130, 30), width=2)


def run_drift(workspace: Any, version_id: int, dataset: Any) -> Any:
    """Job body (worker thread): the stored drift check of ``dataset`` against the version."""
    from turbofan_desktop.services.monitoring import drift

    return drift(workspace, version_id, dataset)


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


class DriftDialog(QDialog):
    """Sensors with drift badges; both distributions of the selected sensor overlaid."""

    def __init__(self, report: Any, *, title: str = "Data drift", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("driftDialog")
        self.setWindowTitle(title)
        self.report = report
        self.names = list(report.sensors)

        self.summary = QLabel(self._summary_text())
        self.summary.setObjectName("driftSummary")
        self.summary.setWordWrap(True)

        self.table = QTableWidget(len(self.names), len(COLUMNS))
        self.table.setObjectName("driftTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self._fill_table()

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("driftPlot")
        self.plot.setBackground("w")
        self.plot.addLegend()
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("left", "share of rows at or below")
        space = getattr(report, "space", "raw")
        self.plot.setLabel(
            "bottom", "std from the regime's training mean" if space == "regime_z" else "value"
        )
        self.train_curve = self.plot.plot([], [], pen=TRAIN_PEN, name="training", stepMode=None)
        self.new_curve = self.plot.plot([], [], pen=NEW_PEN, name="this data")

        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(self.plot)
        splitter.setSizes([380, 520])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)
        self.resize(960, 520)

        self.table.itemSelectionChanged.connect(self._selection_changed)
        first = next((i for i, n in enumerate(self.names) if report.sensors[n].drift), 0)
        if self.names:
            select_rows(self.table, [first])

    def _summary_text(self) -> str:
        report = self.report
        parts = [report.summary()]
        extras = []
        if getattr(report, "age_matched", False):
            extras.append("compared age for age (rows at the same position in their unit)")
        if getattr(report, "regimes", 1) > 1:
            extras.append(f"within {report.regimes} operating regimes")
        if extras:
            parts.append("Training data " + " and ".join(extras) + ".")
        if report.missing:
            parts.append(f"Missing in this data: {', '.join(report.missing)}.")
        return " ".join(parts)

    def _fill_table(self) -> None:
        for row, name in enumerate(self.names):
            result = self.report.sensors[name]
            cells = (
                name,
                _number(result.psi, ".3f"),
                _number(result.ks_pvalue, ".2g"),
                _number(result.shift_std, "+.2f"),
                "DRIFT" if result.drift else "ok",
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == len(cells) - 1:
                    item.setForeground(QBrush(QColor("white")))
                    item.setBackground(QBrush(DRIFT_COLOUR if result.drift else OK_COLOUR))
                    item.setToolTip(result.note or ("drifted" if result.drift else "no drift"))
                self.table.setItem(row, column, item)

    def _selection_changed(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if rows:
            self.show_sensor(self.names[min(rows)])

    def show_sensor(self, name: str) -> None:
        """Overlay the training and new CDFs of ``name`` (steps at the sketch points)."""
        result = self.report.sensors[name]
        points = np.asarray(result.points, dtype=float)
        self.plot.setTitle(
            f"{name}: PSI {_number(result.psi, '.3f')}, KS p {_number(result.ks_pvalue, '.2g')}"
        )
        if points.size == 0:
            self.train_curve.setData([], [])
            self.new_curve.setData([], [])
            return
        self.train_curve.setData(points, np.asarray(result.train_cdf, dtype=float))
        new = np.asarray(result.new_cdf, dtype=float)
        self.new_curve.setData(points[: new.size], new)

    def select_sensor(self, name: str) -> bool:
        """Select ``name``'s row (its CDFs are drawn); False when the report has no such sensor."""
        if name not in self.names:
            return False
        select_rows(self.table, [self.names.index(name)])
        self.show_sensor(name)
        return True

    def drifted_rows(self) -> list[str]:
        """Sensors whose badge says DRIFT (for tests and callers)."""
        return [n for r, n in enumerate(self.names) if self.table.item(r, len(COLUMNS) - 1).text() == "DRIFT"]


def _when_job_ends(
    jobs: Any,
    job_id: int,
    *,
    on_finished: Callable[[Any], None],
    on_failed: Callable[[str], None] | None = None,
) -> None:
    """Call ``on_finished(result)`` or ``on_failed(message)`` once when ``job_id`` ends; a cancelled
    job calls neither. The connections are removed when the job ends, however it ends."""

    def finished(done_id: int, result: Any) -> None:
        if done_id == job_id:
            disconnect()
            on_finished(result)

    def failed(done_id: int, message: str) -> None:
        if done_id == job_id:
            disconnect()
            if on_failed is not None:
                on_failed(message)

    def cancelled(done_id: int) -> None:
        if done_id == job_id:
            disconnect()

    def disconnect() -> None:
        jobs.job_finished.disconnect(finished)
        jobs.job_failed.disconnect(failed)
        jobs.job_cancelled.disconnect(cancelled)

    jobs.job_finished.connect(finished)
    jobs.job_failed.connect(failed)
    jobs.job_cancelled.connect(cancelled)


def start_drift_check(window: Any, version_id: int | None = None) -> int | None:
    """Check the window's current dataset against a version (default: the models panel selection)
    as a job; the :class:`DriftDialog` opens when it succeeds, the error dialog when it fails."""
    dataset = window.current_dataset()
    panel = getattr(window, "models_panel", None)
    if version_id is None and panel is not None:
        record = panel.selected_record()
        version_id = record.id if record is not None else None
    if dataset is None or version_id is None:
        window.show_error("Open a data file and select a model version before checking for drift.")
        return None
    jobs = getattr(window, "jobs", None)
    if jobs is None:
        window.show_error("The job manager is not available, so drift cannot be checked.")
        return None
    job_id = jobs.submit(
        f"Drift against version {version_id}", run_drift, window.workspace, version_id, dataset
    )

    def show(result: Any) -> None:
        dialog = DriftDialog(result, title=f"Data drift against version {version_id}", parent=window)
        window.drift_dialog = dialog
        dialog.show()

    _when_job_ends(jobs, job_id, on_finished=show, on_failed=window.show_error)
    return job_id


def start_auto_drift_check(window: Any, dataset: Any) -> int | None:
    """On opening a file: check it, as a job, against the versions
    :func:`~turbofan_desktop.services.monitoring.monitored_versions` picks (at most one per model
    plugin) and show the result: badges on the data panel's sensors and the models panel's versions,
    and the verdict in the status bar. Quietly nothing when no version qualifies."""
    from turbofan_desktop.services.monitoring import monitored_versions

    jobs = getattr(window, "jobs", None)
    if jobs is None or dataset is None:
        return None
    try:
        version_ids = monitored_versions(window.workspace, dataset)
    except Exception:  # noqa: BLE001 - a background check must never break opening a file
        log.exception("choosing the versions to check a new file against failed")
        return None
    if not version_ids:
        return None
    listed = ", ".join(str(v) for v in version_ids)
    job_id = jobs.submit(
        f"Drift against version{'s' if len(version_ids) > 1 else ''} {listed}",
        run_auto_drift,
        window.workspace,
        version_ids,
        dataset,
    )
    _when_job_ends(jobs, job_id, on_finished=lambda checks: show_drift_badges(window, dataset, checks))
    return job_id


def show_drift_badges(window: Any, dataset: Any, checks: list[DriftCheck]) -> None:
    """Show a finished check of ``dataset``: the verdict in the status bar, and badges on the panels
    while that file is still open (not once it was closed or reloaded: they would describe other
    data)."""
    window.drift_checks = list(checks)
    if checks:
        window.last_drift = (checks[0].version_id, checks[0].report)
        verdicts = "; ".join(f"Drift against version {c.version_id}: {c.report.summary()}" for c in checks)
        window.statusBar().showMessage(verdicts, 20000)
    panel = window.data_panel
    index = next((i for i, loaded in enumerate(panel.loaded) if loaded.dataset is dataset), None)
    if index is None:
        return
    panel.set_drift(index, sensor_badges(checks), checks)
    show_selected_drift(window)  # the versions' badges follow the file the user looks at


def open_sensor_drift(window: Any, dataset_index: int, sensor: str) -> DriftDialog | None:
    """The drift view of one badged sensor, from the check made when its file opened: the version
    it drifted against (else the first that knows it), that sensor's distributions selected."""
    checks = [c for c in window.data_panel.drift_checks(dataset_index) if sensor in c.report.sensors]
    if not checks:
        return None
    check = next((c for c in checks if c.report.sensors[sensor].drift), checks[0])
    name = window.data_panel.loaded[dataset_index].request.path.name
    dialog = DriftDialog(check.report, title=f"Data drift of {name} against {check.label}", parent=window)
    dialog.select_sensor(sensor)
    window.drift_dialog = dialog
    dialog.show()
    return dialog
