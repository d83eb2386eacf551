"""A version's KPI history: each validation / detection metric over time, with the warning when the
latest validation is worse than at registration by more than the configured margin.

Reading the history is one small registry query, so the dialog loads it on the UI thread.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.errors import TurbofanError
from turbofan_desktop.services import models
from turbofan_desktop.services.naming import version_name_of
from turbofan_desktop.ui.dialogs import ErrorSink

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.session import MetricPoint, VersionRecord

PEN = pg.mkPen(color=(60, 110, 200), width=2)
WARNING_STYLE = "color: rgb(200, 60, 40); font-weight: bold;"


def metric_series(history: list[MetricPoint]) -> dict[str, tuple[list[int], list[float]]]:
    """``{"kind: metric": (entry numbers, values)}`` for every finite number in the history
    (the registry's KPI points: ``kind``, ``metrics``)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for number, entry in enumerate(history, start=1):
        for name, value in dict(entry.metrics or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            xs, ys = series.setdefault(f"{entry.kind or '?'}: {name}", ([], []))
            xs.append(number)
            ys.append(float(value))
    return series


class KpiDialog(QDialog):
    """Pick a metric; see its values over the version's history and the KPI warning."""

    def __init__(self, workspace: Workspace, version_id: int, parent: QWidget | None = None):
        super().__init__(parent)
        from turbofan_desktop.services.monitoring import kpi_history, kpi_warning, metric_direction

        self.setObjectName("kpiDialog")
        self.workspace = workspace
        self.version_id = version_id
        try:
            label = models.get_version(workspace, version_id).label
            self.history = kpi_history(workspace, version_id)
            self.warning = kpi_warning(workspace, version_id)
        except TurbofanError as exc:
            label, self.history, self.warning = version_name_of(workspace, version_id), [], str(exc)
        self.setWindowTitle(f"KPI history of {label}")
        self.series = metric_series(self.history)

        self.warning_label = QLabel(
            self.warning or "No KPI warning: the latest validation is within the margin."
        )
        self.warning_label.setObjectName("kpiWarning")
        self.warning_label.setWordWrap(True)
        if self.warning:
            self.warning_label.setStyleSheet(WARNING_STYLE)

        self.metric_box = QComboBox()
        self.metric_box.setObjectName("kpiMetric")
        # metrics whose better direction is known first: they are the ones the warning judges
        names = sorted(self.series, key=lambda n: (metric_direction(n.split(": ", 1)[-1]) == 0, n))
        self.metric_box.addItems(names)

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("kpiPlot")
        self.plot.setBackground("w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "history entry (oldest = 1)")
        self.curve = self.plot.plot([], [], pen=PEN, symbol="o", symbolSize=7)

        row = QHBoxLayout()
        row.addWidget(QLabel("Metric:"))
        row.addWidget(self.metric_box, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.warning_label)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        if not self.series:
            layout.addWidget(QLabel("This version has no KPI history yet: validate it to start one."))
        layout.addWidget(buttons)
        self.resize(720, 440)

        self.metric_box.currentTextChanged.connect(self.show_metric)
        if names:
            self.show_metric(names[0])

    def show_metric(self, name: str) -> None:
        xs, ys = self.series.get(name, ([], []))
        self.curve.setData(xs, ys)
        self.plot.setLabel("left", name)


class SelectedVersion(Protocol):
    """What the KPI view needs of the models panel: the version the user selected."""

    def selected_record(self) -> VersionRecord | None: ...


class KpiController:
    """Opens the KPI history of the version selected in the models panel; owns the dialog it opened."""

    def __init__(
        self,
        workspace: Workspace,
        versions: SelectedVersion,
        show_error: ErrorSink,
        parent: QWidget | None = None,
    ):
        self.workspace = workspace
        self.versions = versions
        self.show_error = show_error
        self.parent = parent
        self.dialog: KpiDialog | None = None

    def open(self) -> KpiDialog | None:
        record = self.versions.selected_record()
        if record is None:
            self.show_error("Select a model version to see its KPI history.")
            return None
        self.dialog = KpiDialog(self.workspace, record.id, parent=self.parent)
        self.dialog.show()
        return self.dialog


__all__ = ["KpiController", "KpiDialog", "SelectedVersion", "metric_series"]
