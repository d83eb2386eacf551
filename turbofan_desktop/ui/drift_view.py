"""The drift view: per-sensor drift of a dataset against a version's training data.

A table of sensors with their PSI, KS p-value, mean shift and a drift badge, and for the chosen
sensor both distributions overlaid (training CDF from the stored sketch, new data's CDF at the same
points). :class:`DriftController` runs the check itself, ``services.monitoring.drift``, as a job
(:meth:`~DriftController.start_check`), so the window never waits for it; the dialog opens when the
job succeeds.

Opening a file runs the check in the background (:meth:`~DriftController.start_auto_check`); its
result becomes badges on the data and models panels (:meth:`~DriftController.show_badges`), and a
badged sensor opens this view (:meth:`~DriftController.open_sensor_drift`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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
    QStatusBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.services.naming import version_name_of
from turbofan_desktop.services.session import DriftCheck, Session
from turbofan_desktop.ui.data_panel import DataPanel
from turbofan_desktop.ui.dialogs import ErrorSink
from turbofan_desktop.ui.drift_badges import run_auto_drift, sensor_badges, version_badges
from turbofan_desktop.ui.jobs import JobHandle, JobManager
from turbofan_desktop.ui.views import select_rows

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.session import Dataset, DriftReport
    from turbofan_desktop.ui.models_panel import ModelsPanel

log = logging.getLogger(__name__)

COLUMNS = ("sensor", "PSI", "KS p", "shift (std)", "drift")
DRIFT_COLOUR = QColor(220, 80, 60)
OK_COLOUR = QColor(70, 160, 90)
TRAIN_PEN = pg.mkPen(color=(60, 110, 200), width=2)
NEW_PEN = pg.mkPen(color=(230, 130, 30), width=2)


def run_drift(workspace: Workspace, version_id: int, dataset: Dataset) -> DriftReport:
    """Job body (worker thread): the stored drift check of ``dataset`` against the version."""
    from turbofan_desktop.services.monitoring import drift

    return drift(workspace, version_id, dataset)


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


class DriftDialog(QDialog):
    """Sensors with drift badges; both distributions of the selected sensor overlaid."""

    def __init__(self, report: DriftReport, *, title: str = "Data drift", parent: QWidget | None = None):
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
        self.plot.setLabel(
            "bottom", "std from the regime's training mean" if report.space == "regime_z" else "value"
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
        if report.age_matched:
            extras.append("compared age for age (rows at the same position in their unit)")
        if report.regimes > 1:
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


class DriftController:
    """Drift checks of the session's files: the check on demand, the background check when a file
    opens, and what their results show (badges, status bar, the drift view).

    Owns the drift view it opened last (:attr:`dialog`); the checks themselves live in the
    :class:`~turbofan_desktop.services.session.Session`.
    """

    def __init__(
        self,
        workspace: Workspace,
        session: Session,
        jobs: JobManager,
        data_panel: DataPanel,
        models_panel: ModelsPanel,
        status_bar: QStatusBar,
        show_error: ErrorSink,
        parent: QWidget | None = None,
    ):
        self.workspace = workspace
        self.session = session
        self.jobs = jobs
        self.data_panel = data_panel
        self.models_panel = models_panel
        self.status_bar = status_bar
        self.show_error = show_error
        self.parent = parent
        self.dialog: DriftDialog | None = None

    def start_check(self, version_id: int | None = None) -> JobHandle | None:
        """Check the current dataset against a version (default: the models panel selection) as a
        job; the :class:`DriftDialog` opens when it succeeds, the error dialog when it fails."""
        dataset = self.data_panel.current_dataset()
        if version_id is None:
            record = self.models_panel.selected_record()
            version_id = record.id if record is not None else None
        if dataset is None or version_id is None:
            self.show_error("Open a data file and select a model version before checking for drift.")
            return None
        workspace, checked = self.workspace, version_id
        name = version_name_of(workspace, version_id)
        handle = self.jobs.submit(
            f"Drift against {name}",
            lambda progress, should_stop: run_drift(workspace, checked, dataset),
        )

        def show(report: DriftReport) -> None:
            self._show_dialog(DriftDialog(report, title=f"Data drift against {name}", parent=self.parent))

        handle.finished.connect(show)
        handle.failed.connect(self.show_error)
        return handle

    def start_auto_check(self, dataset: Dataset | None) -> JobHandle | None:
        """On opening a file: check it, as a job, against the versions
        :func:`~turbofan_desktop.services.monitoring.monitored_versions` picks (at most one per model
        plugin) and show the result (:meth:`show_badges`). Quietly nothing when no version qualifies."""
        from turbofan_desktop.services.monitoring import monitored_versions

        if dataset is None:
            return None
        try:
            version_ids = monitored_versions(self.workspace, dataset)
        except Exception:  # noqa: BLE001 - a background check must never break opening a file
            log.exception("choosing the versions to check a new file against failed")
            return None
        if not version_ids:
            return None
        workspace = self.workspace
        listed = ", ".join(version_name_of(workspace, v) for v in version_ids)
        handle = self.jobs.submit(
            f"Drift against {listed}",
            lambda progress, should_stop: run_auto_drift(
                workspace, version_ids, dataset, should_stop=should_stop
            ),
            background=True,
        )
        handle.finished.connect(lambda checks: self.show_badges(dataset, checks))
        return handle

    def show_badges(self, dataset: Dataset, checks: list[DriftCheck]) -> None:
        """Show a finished check of ``dataset``: the verdict in the status bar, and badges on the
        panels while that file is still open (not once it was closed or reloaded: they would describe
        other data)."""
        self.session.record_drift(checks)
        if checks:
            verdicts = "; ".join(
                f"Drift against {version_name_of(self.workspace, c.version_id)}: {c.report.summary()}"
                for c in checks
            )
            self.status_bar.showMessage(verdicts, 20000)
        index = self.session.index_of(dataset)
        if index is None:
            return
        self.data_panel.set_drift(index, sensor_badges(checks), checks)
        self.show_selected()  # the versions' badges follow the file the user looks at

    def show_selected(self) -> None:
        """Badge the models panel's versions for the file selected in the data panel (blank when that
        file has not been checked): the version badges always describe the data the user looks at."""
        index = self.data_panel.selection().dataset_index
        if index is None or not 0 <= index < len(self.session.files):
            self.models_panel.set_drift_badges({})
            return
        name = self.session.file(index).request.path.name
        self.models_panel.set_drift_badges(version_badges(self.session.file_drift(index), name))

    def open_sensor_drift(self, dataset_index: int, sensor: str) -> DriftDialog | None:
        """The drift view of one badged sensor, from the check made when its file opened: the version
        it drifted against (else the first that knows it), that sensor's distributions selected."""
        checks = [c for c in self.session.file_drift(dataset_index) if sensor in c.report.sensors]
        if not checks:
            return None
        check = next((c for c in checks if c.report.sensors[sensor].drift), checks[0])
        name = self.session.file(dataset_index).request.path.name
        dialog = DriftDialog(
            check.report, title=f"Data drift of {name} against {check.label}", parent=self.parent
        )
        dialog.select_sensor(sensor)
        self._show_dialog(dialog)
        return dialog

    def _show_dialog(self, dialog: DriftDialog) -> None:
        self.dialog = dialog
        dialog.show()


__all__ = ["DriftController", "DriftDialog", "run_drift"]
