"""The fleet dock: every engine of the open files ranked by risk, with a maintenance plan.

The assessment (:func:`turbofan_desktop.services.fleet.assess`: models run) is a job; the panel keeps its
quantiles, so the what-if controls (horizon H, the cost of a failure and of a visit) recompute the plan
with :func:`turbofan_desktop.services.fleet.plan` — numpy only — and repaint the table, the chart and
the summary at once. Risk is a colour *and* a text label in its cell. Clicking an engine (a row or its
point on the chart) emits :attr:`FleetPanel.engine_activated` so the window plots it. The Alarm column
applies the explicit rule of :mod:`turbofan_desktop.services.fleet_alarms` (shown and settable above the
table) to the cached anomaly ranges; a RUL version out of a file's scope is assessed only after the user
says Yes to the same question the main window asks for one engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QActionGroup, QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGraphicsItem,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.errors import TurbofanError
from turbofan_desktop.services import fleet as fleet_service
from turbofan_desktop.services import fleet_alarms
from turbofan_desktop.services.applicability import OutOfScopeError
from turbofan_desktop.ui.dialogs import ask_yes_no
from turbofan_desktop.ui.jobs import ProgressSink, ShouldStop, event_progress

# risk colour per action, always shown beside its text label
ACTION_COLORS = {
    fleet_service.SERVICE_NOW: QColor(214, 39, 40),
    fleet_service.PLAN: QColor(255, 160, 20),
    fleet_service.MONITOR: QColor(44, 160, 44),
}
# and a symbol per action on the chart, so the chart does not rely on colour either
ACTION_SYMBOLS = {fleet_service.SERVICE_NOW: "t", fleet_service.PLAN: "d", fleet_service.MONITOR: "o"}
ACTION_TEXT = {
    fleet_service.SERVICE_NOW: "Service now",
    fleet_service.PLAN: "Plan",
    fleet_service.MONITOR: "Monitor",
}
SORT_ROLE = Qt.ItemDataRole.UserRole
INTERVAL_ROLE = Qt.ItemDataRole.UserRole + 1
ACTION_ROLE = Qt.ItemDataRole.UserRole + 2

# the roles the model answers; every other role (font, alignment, ...) returns at once
_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.ToolTipRole,
        Qt.ItemDataRole.BackgroundRole,
        SORT_ROLE,
        INTERVAL_ROLE,
        ACTION_ROLE,
    }
)
APPLICABILITY_TEXT = {"ok": "ok", "caution": "caution", "out_of_scope": "OUT OF SCOPE"}
NEWEST_VALIDATED, PRODUCTION, NO_ANOMALIES, CHOSEN = "newest_validated", "production", "none", "chosen"
ANOMALY_MODES = {
    NEWEST_VALIDATED: "Newest validated version per sensor",
    PRODUCTION: "Production version per sensor",
    NO_ANOMALIES: "None",
    CHOSEN: "Chosen versions",
}
ANOMALY_SHORT = {NEWEST_VALIDATED: "newest validated", PRODUCTION: "production", NO_ANOMALIES: "none"}

# the decision first (unit, risk, probability), the evidence after, the file last (often one file)
COLUMNS = (
    "Unit",
    "Risk",
    "P(fail ≤ H)",
    "RUL",
    "80 % interval",
    "Visit in",
    "Anomalies",
    "Alarm",
    "Drift",
    "Applicability",
    "Last cycle",
    "True RUL",
    "File",
)
(
    C_UNIT,
    C_RISK,
    C_PFAIL,
    C_RUL,
    C_INTERVAL,
    C_VISIT,
    C_ANOM,
    C_ALARM,
    C_DRIFT,
    C_APPLIC,
    C_LAST,
    C_TRUE,
    C_FILE,
) = range(len(COLUMNS))


@dataclass(frozen=True)
class OutOfScope:
    """What the assessment job returns when the RUL version is out of scope on a file and nobody has
    accepted that yet: the service's sentence, for the question to the user."""

    message: str


def fleet_job(
    ws: Any,
    datasets: list[Any],
    rul_version: int | None,
    anomaly_versions: list[int],
    accept_out_of_scope: bool = False,
) -> Callable[[ProgressSink, ShouldStop], Any]:
    """The assessment as a job function: the service call, off the GUI thread. A refusal because the
    RUL version is out of a file's scope comes back as :class:`OutOfScope`, so the panel can ask."""

    def job(progress: ProgressSink, should_stop: ShouldStop) -> Any:
        try:
            return fleet_service.assess(
                ws,
                datasets,
                rul_version=rul_version,
                anomaly_versions=anomaly_versions,
                accept_out_of_scope=accept_out_of_scope,
                progress=event_progress(progress),
                should_stop=should_stop,
            )
        except OutOfScopeError as exc:
            return OutOfScope(str(exc))

    return job


def ask_fleet_out_of_scope(parent: QWidget, message: str) -> bool:
    """Ask whether to assess the fleet with a RUL version out of a file's scope (the service's reason
    is the dialog's text); the main window asks the same for one engine."""
    return ask_yes_no(
        parent,
        "Out of scope",
        f"{message}\n\nThe fleet's RUL, P(failure) and plan for that file would be a guess. "
        "Assess it anyway (every engine of it is marked OUT OF SCOPE)?",
    )


class FleetTableModel(QAbstractTableModel):
    """One row per engine of an assessment; the plan columns follow :meth:`set_plan`.

    The model sorts itself with numpy (row r shows engine ``order[r]``): a proxy sorting 1,000 rows
    through Python ``data`` calls took seconds per what-if, this takes a millisecond.
    """

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.assessment: Any = None
        self.plan: Any = None
        self._rows = 0  # asked for thousands of times per repaint: kept, not recounted
        self._scale = 1.0
        self.order = np.array([], dtype=int)  # row -> engine
        self.row_of = np.array([], dtype=int)  # engine -> row
        self.sort_column, self.sort_order = -1, Qt.SortOrder.AscendingOrder
        self.alarms = np.array([], dtype=np.float64)  # per engine: the cycle its alarm fired, NaN: none
        self.alarm_rule: Any = None

    def set_alarms(self, alarms: np.ndarray, rule: Any) -> None:
        """The alarm cycle per engine (NaN: none) under ``rule``; repaints the Alarm column."""
        self.alarms, self.alarm_rule = np.asarray(alarms, dtype=np.float64), rule
        if self.rowCount():
            self.dataChanged.emit(self.index(0, C_ALARM), self.index(self.rowCount() - 1, C_ALARM))
        if self.sort_column == C_ALARM:
            self.sort(self.sort_column, self.sort_order)

    def set_assessment(self, assessment: Any, plan: Any) -> None:
        self.beginResetModel()
        self.assessment, self.plan = assessment, plan
        self._rows = len(assessment)
        upper = assessment.quantiles[:, -1] if len(assessment) else np.array([1.0])
        self._scale = float(max(np.max(upper), plan.horizon, 1.0))
        self.order = np.arange(len(assessment))
        self.row_of = np.arange(len(assessment))
        if len(self.alarms) != len(assessment):
            self.alarms = np.full(len(assessment), np.nan)
        self._static_keys = self._engine_keys(assessment)
        self.endResetModel()
        if self.sort_column >= 0:
            self.sort(self.sort_column, self.sort_order)

    def set_plan(self, plan: Any) -> None:
        self.plan = plan
        self._scale = float(max(self._scale, plan.horizon))
        if self.rowCount():
            self.dataChanged.emit(self.index(0, C_RISK), self.index(self.rowCount() - 1, C_VISIT))
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, C_PFAIL, C_PFAIL)
        if self.sort_column in (C_RISK, C_PFAIL, C_VISIT):  # the order follows the plan
            self.sort(self.sort_column, self.sort_order)

    @staticmethod
    def _engine_keys(assessment: Any) -> dict[int, np.ndarray]:
        engines = assessment.engines

        def numeric_or_text(values: list[Any]) -> np.ndarray:
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                return np.asarray(values, dtype=np.float64)
            return np.asarray([str(v) for v in values])

        return {
            C_UNIT: numeric_or_text([e.unit for e in engines]),
            C_RUL: np.array([e.rul for e in engines], dtype=np.float64),
            C_INTERVAL: np.array([e.lower for e in engines], dtype=np.float64),
            C_ANOM: np.array([len(e.anomalies) for e in engines], dtype=np.float64),
            C_DRIFT: np.array([len(e.drift) for e in engines], dtype=np.float64),
            C_APPLIC: np.array(
                [
                    ("ok", "caution", "out_of_scope").index(e.applicability) if e.applicability else -1
                    for e in engines
                ],
                dtype=np.float64,
            ),
            C_LAST: numeric_or_text([e.last_cycle for e in engines]),
            C_TRUE: np.array(
                [np.inf if e.true_rul is None else e.true_rul for e in engines], dtype=np.float64
            ),
            C_FILE: np.asarray([e.file for e in engines]),
        }

    def sort_keys(self, column: int) -> np.ndarray:
        """One key per engine for ``column`` (risk: the action's urgency, then P(fail))."""
        if column in self._static_keys:
            return self._static_keys[column]
        if column == C_PFAIL:
            return self.plan.p_fail
        if column == C_VISIT:
            return np.nan_to_num(self.plan.service_at, nan=np.inf)
        if column == C_ALARM:  # alarmed engines after the others, the earliest alarm last
            return np.where(np.isnan(self.alarms), -np.inf, -self.alarms)
        urgency = np.select(
            [self.plan.action == fleet_service.SERVICE_NOW, self.plan.action == fleet_service.PLAN],
            [2.0, 1.0],
            0.0,
        )
        return urgency * 10.0 + self.plan.p_fail

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sort_column, self.sort_order = column, order
        if self.assessment is None or column < 0 or not len(self.assessment):
            return
        keys = self.sort_keys(column)
        new = np.argsort(keys, kind="stable")
        if order == Qt.SortOrder.DescendingOrder:
            new = new[::-1]
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        engines = [int(self.order[i.row()]) for i in persistent]
        self.order = new
        self.row_of = np.empty_like(new)
        self.row_of[new] = np.arange(len(new))
        self.changePersistentIndexList(
            persistent,
            [self.index(int(self.row_of[e]), i.column()) for e, i in zip(engines, persistent, strict=True)],
        )
        self.layoutChanged.emit()

    def engine_at(self, row: int) -> int:
        return int(self.order[row])

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        if section == C_PFAIL and self.plan is not None:
            return f"P(fail ≤ {self.plan.horizon})"
        return COLUMNS[section]

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role not in _ROLES or not index.isValid() or self.assessment is None:
            return None
        row, col = int(self.order[index.row()]), index.column()
        engine = self.assessment.engines[row]
        action = self.plan.action[row]
        if role == ACTION_ROLE:
            return action
        if role == INTERVAL_ROLE:
            return (engine.lower, engine.rul, engine.upper, self._scale, self.plan.horizon, action)
        if role == Qt.ItemDataRole.BackgroundRole and col == C_RISK:
            return QBrush(ACTION_COLORS[action].lighter(150))
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, engine, action)
        if role == SORT_ROLE:
            return self.sort_keys(col)[row].item()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, col, engine, action)
        return None

    def _text(self, row: int, col: int, engine: Any, action: str) -> str:
        """The text of one cell (only that cell's text is formatted: a repaint asks for hundreds)."""
        if col == C_UNIT:
            return str(engine.unit)
        if col == C_RISK:
            at = self.plan.service_at[row]
            return ACTION_TEXT[action] + (f" (cycle {int(at)})" if action == fleet_service.PLAN else "")
        if col == C_PFAIL:
            return f"{self.plan.p_fail[row]:.0%}"
        if col == C_RUL:
            return f"{engine.rul:.0f}"
        if col == C_INTERVAL:
            return f"{engine.lower:.0f}–{engine.upper:.0f}"
        if col == C_VISIT:
            at = self.plan.service_at[row]
            if action == fleet_service.SERVICE_NOW:
                return "now"
            return f"{int(at)}" if np.isfinite(at) else "—"
        if col == C_ANOM:
            return f"⚠ {len(engine.anomalies)}" if engine.anomalies else ""
        if col == C_ALARM:
            at = self.alarms[row]
            return "" if np.isnan(at) else f"ALARM (cycle {at:.0f})"
        if col == C_DRIFT:
            return "drift" if engine.drift else ""
        if col == C_APPLIC:
            return APPLICABILITY_TEXT.get(engine.applicability, "")
        if col == C_LAST:
            return str(engine.last_cycle)
        if col == C_TRUE:
            return "" if engine.true_rul is None else f"{engine.true_rul:.0f}"
        return engine.file.replace("\\", "/").rsplit("/", 1)[-1]

    def _tooltip(self, row: int, engine: Any, action: str) -> str:
        lines = [
            f"{engine.file} unit {engine.unit} at cycle {engine.last_cycle}",
            f"RUL {engine.rul:.0f} cycles, 80 % interval {engine.lower:.0f}–{engine.upper:.0f}",
            f"P(failure within {self.plan.horizon} cycles) {self.plan.p_fail[row]:.1%}",
            f"{ACTION_TEXT[action]}: expected cost {self.plan.expected_cost[row]:.0f} "
            f"(now {self.plan.cost_now[row]:.0f}, best plan {self.plan.cost_best_plan[row]:.0f}, "
            f"monitor {self.plan.cost_monitor[row]:.0f})",
        ]
        for a in engine.anomalies[:5]:
            lines.append(f"anomaly {a['sensor']} {a['start']}–{a['end']} (score {a['score']:.2g})")
        if not np.isnan(self.alarms[row]) and self.alarm_rule is not None:
            lines.append(f"alarm at cycle {self.alarms[row]:.0f}: {self.alarm_rule.describe()}")
        if engine.drift:
            lines.append("drifted sensors in the file: " + ", ".join(engine.drift))
        if engine.applicability not in (None, "ok"):
            lines.append(
                f"applicability of the versions on its file: {APPLICABILITY_TEXT[engine.applicability]}"
            )
        return "\n".join(lines)


class FleetFilter(QSortFilterProxyModel):
    """Text in the file or unit, and an action (None: all). Sorting is the source model's own."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.text = ""
        self.action: str | None = None
        self.setDynamicSortFilter(False)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)

    @property
    def filtering(self) -> bool:
        return bool(self.text) or self.action is not None

    def set_filter(self, text: str, action: str | None) -> None:
        self.text, self.action = text.strip().lower(), action
        self.invalidate()

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        model = self.sourceModel()
        if self.action is not None and model.index(row, 0, parent).data(ACTION_ROLE) != self.action:
            return False
        if not self.text:
            return True
        file = str(model.index(row, C_FILE, parent).data()).lower()
        unit = str(model.index(row, C_UNIT, parent).data()).lower()
        return self.text in file or self.text == unit or self.text in f"{file} {unit}"


class IntervalDelegate(QStyledItemDelegate):
    """The RUL interval as a bar in its cell: lower–upper in the risk colour, the median as a tick, the
    horizon as a dashed line, all on one scale for the fleet."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        value = index.data(INTERVAL_ROLE)
        if value is None:
            return super().paint(painter, option, index)
        lower, median, upper, scale, horizon, action = value
        rect = option.rect.adjusted(4, 5, -4, -5)
        width = max(rect.width(), 1)

        def x(v: float) -> float:
            return rect.left() + width * min(max(v, 0.0), scale) / scale

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.fillRect(rect, QColor(235, 235, 235))
        color = ACTION_COLORS.get(action, QColor(120, 120, 120))
        painter.fillRect(QRectF(x(lower), rect.top(), max(x(upper) - x(lower), 2.0), rect.height()), color)
        painter.setPen(QPen(QColor(0, 0, 0), 2))
        painter.drawLine(int(x(median)), rect.top() - 2, int(x(median)), rect.bottom() + 2)
        painter.setPen(QPen(QColor(60, 60, 60), 1, Qt.PenStyle.DashLine))
        painter.drawLine(int(x(horizon)), option.rect.top(), int(x(horizon)), option.rect.bottom())
        painter.restore()


class FleetChart(pg.PlotWidget):
    """All engines' RUL intervals sorted by median, coloured by action, the horizon marked.

    One scatter item per action (a colour and a symbol each, named in the legend) and the intervals as
    one line item drawn in pairs: per-point brushes and an error-bar path took seconds to redraw for
    1,000 engines.
    """

    engine_clicked = Signal(int)  # engine index in the assessment

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setBackground("w")
        self.setLabel("left", "RUL (cycles)")
        self.setLabel("bottom", "engines, sorted by median RUL")
        self.showGrid(y=True, alpha=0.3)
        self.bars = pg.PlotCurveItem(pen=pg.mkPen((140, 140, 140), width=1), connect="pairs", antialias=False)
        # the intervals do not change with a what-if: repaint them from a cached pixmap
        self.bars.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        for side in ("left", "bottom"):  # nor do the axes: their tick labels are slow to redraw
            self.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.addItem(self.bars)
        self.addLegend(offset=(10, 10))
        self.points: dict[str, pg.ScatterPlotItem] = {}
        for action in fleet_service.ACTIONS:
            item = pg.ScatterPlotItem(
                size=8,
                symbol=ACTION_SYMBOLS[action],
                brush=pg.mkBrush(ACTION_COLORS[action]),
                pen=pg.mkPen("k", width=0.5),
                name=ACTION_TEXT[action],
            )
            item.sigClicked.connect(self._clicked)
            # named: the legend lists it; the bars (which hold every median) set the range, so the
            # points' hidden-point masks never enter the view's bounds
            self.addItem(item, ignoreBounds=True)
            self.points[action] = item
        self.horizon_line = pg.InfiniteLine(
            angle=0, movable=False, pen=pg.mkPen((40, 40, 40), width=1.5, style=Qt.PenStyle.DashLine)
        )
        self.horizon_label = pg.TextItem(color=(40, 40, 40), anchor=(1, 1))
        self.selected = pg.ScatterPlotItem(size=16, pen=pg.mkPen((0, 0, 0), width=2), brush=None, symbol="o")
        for extra in (self.horizon_line, self.horizon_label, self.selected):
            self.addItem(extra, ignoreBounds=extra is not self.horizon_line)
        self.order = np.array([], dtype=int)
        self._medians = np.array([])
        self._shown: dict[str, np.ndarray] = {}

    def show_fleet(self, assessment: Any, plan: Any) -> None:
        medians = np.array([e.rul for e in assessment.engines], dtype=float)
        self.order = np.argsort(medians, kind="stable")
        self._medians = medians
        x = np.repeat(np.arange(len(self.order), dtype=float), 2)
        lower = np.array([e.lower for e in assessment.engines])[self.order]
        upper = np.array([e.upper for e in assessment.engines])[self.order]
        self.bars.setData(x=x, y=np.column_stack([lower, upper]).ravel())
        # every action's item holds every engine once; a what-if only changes which are visible
        xs = np.arange(len(self.order), dtype=float)
        for item in self.points.values():
            item.setData(x=xs, y=medians[self.order], data=self.order)
        self._shown = {}
        self.update_plan(plan)
        self.selected.setData([], [])
        self.enableAutoRange()  # a new fleet: its whole range, whatever the view showed before

    def update_plan(self, plan: Any) -> None:
        """Show each engine in its action's item (colour and symbol), and the horizon. Only the
        visibility masks change: re-adding 1,000 points per item costs tens of milliseconds."""
        actions = np.asarray(plan.action)[self.order] if len(self.order) else np.array([])
        for action, item in self.points.items():
            visible = actions == action
            previous = self._shown.get(action)
            if previous is not None and np.array_equal(previous, visible):
                continue
            item.data["visible"] = visible  # the item paints, bounds and picks visible points only
            item.invalidate()
            self._shown[action] = visible
        self.horizon_line.setValue(plan.horizon)
        self.horizon_label.setText(f"H = {plan.horizon}")
        self.horizon_label.setPos(max(len(self.order) - 1, 1), plan.horizon)

    def visible_points(self, action: str) -> int:
        """How many engines the chart shows with ``action`` (for tests)."""
        return int(self.points[action].data["visible"].sum())

    def mark(self, engine: int) -> None:
        where = np.flatnonzero(self.order == engine)
        if len(where):
            self.selected.setData([float(where[0])], [float(self._medians[engine])])

    def _clicked(self, _item: Any, points: Any, *_: Any) -> None:
        if len(points):
            self.engine_clicked.emit(int(points[0].data()))


class FleetPanel(QWidget):
    """Assess the open files, rank the engines, plan; what-ifs from the cached quantiles."""

    engine_activated = Signal(object, object)  # dataset, unit
    assessed = Signal()  # a new assessment is shown
    plan_changed = Signal()  # the plan was recomputed (what-if)

    def __init__(
        self,
        workspace: Any,
        jobs: Any,
        datasets: Callable[[], list[Any]],
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.workspace = workspace
        self.jobs = jobs
        self.datasets = datasets
        self.assessment: Any = None
        self.plan: Any = None
        self._assessed_datasets: list[Any] = []
        self._job: Any = None  # the running assessment's handle
        self._build()
        if jobs is not None:  # a training job may have registered a RUL version
            jobs.job_finished.connect(lambda *_: self.refresh_versions())

    # -- construction --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.version_combo = QComboBox()
        self.version_combo.setObjectName("fleetVersionCombo")
        self.version_combo.setToolTip("The RUL model version every engine is assessed with")
        # wide when there is room, but its longest entry never sets the window's minimum width
        self.version_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.version_combo.setMinimumContentsLength(22)
        # which anomaly versions run on the files: a rule per sensor, or versions the user ticks
        self.anomaly_mode = NEWEST_VALIDATED
        self.chosen_anomaly_versions: list[int] = []
        self.anomaly_button = QToolButton()
        self.anomaly_button.setObjectName("fleetAnomalyButton")
        self.anomaly_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.anomaly_button.setToolTip(
            "Which anomaly versions run on the files' sensors: recent anomalies show as badges"
        )
        self.anomaly_menu = QMenu(self.anomaly_button)
        self.anomaly_menu.aboutToShow.connect(self._fill_anomaly_menu)
        self.anomaly_button.setMenu(self.anomaly_menu)
        self._show_anomaly_choice()
        self.assess_button = QPushButton("Assess fleet")
        self.assess_button.setObjectName("fleetAssessButton")
        self.assess_button.clicked.connect(self.assess)
        self.report_button = QPushButton("Report…")
        self.report_button.setObjectName("fleetReportButton")
        self.report_button.setToolTip("Write the fleet report (plan, chart, engines, versions, data hashes)")
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(self._choose_report_path)
        self.horizon = QSpinBox()
        self.horizon.setRange(1, 1000)
        self.horizon.setValue(fleet_service.DEFAULT_HORIZON)
        self.horizon.setSuffix(" cycles")
        self.horizon.setToolTip("Planning window H: P(failure within H) and the plan look this far ahead")
        self.cost_failure = self._cost_box(fleet_service.DEFAULT_COST_FAILURE, "Cost of an unplanned failure")
        self.cost_visit = self._cost_box(fleet_service.DEFAULT_COST_VISIT, "Cost of a planned visit")
        for box in (self.horizon, self.cost_failure, self.cost_visit):
            box.valueChanged.connect(self.update_plan)
        self._build_alarm_rule()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter file or unit")
        self.filter_edit.setClearButtonEnabled(True)
        self.action_filter = QComboBox()
        self.action_filter.addItem("All engines", None)
        for action in fleet_service.ACTIONS:
            self.action_filter.addItem(ACTION_TEXT[action], action)
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.action_filter.currentIndexChanged.connect(self._apply_filter)

        top = QHBoxLayout()
        top.addWidget(QLabel("RUL version"))
        top.addWidget(self.version_combo, 1)
        top.addWidget(self.anomaly_button)
        top.addWidget(self.assess_button)
        top.addWidget(self.report_button)
        whatif = QHBoxLayout()
        whatif.addWidget(QLabel("H"))
        whatif.addWidget(self.horizon)
        whatif.addWidget(QLabel("Failure cost"))
        whatif.addWidget(self.cost_failure)
        whatif.addWidget(QLabel("Visit cost"))
        whatif.addWidget(self.cost_visit)
        whatif.addWidget(QLabel("(cycles of life)"))
        whatif.addStretch(1)
        whatif.addWidget(self.filter_edit)
        whatif.addWidget(self.action_filter)

        self.model = FleetTableModel(self)
        self.proxy = FleetFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("fleetTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setItemDelegateForColumn(C_INTERVAL, IntervalDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        self.table.setColumnWidth(C_INTERVAL, 160)
        self.table.clicked.connect(self._row_clicked)
        self.chart = FleetChart()
        self.chart.engine_clicked.connect(self.activate_engine)
        self.summary = QLabel("Open files, then assess the fleet.")
        self.summary.setObjectName("fleetSummary")
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)

        split = self.splitter = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.chart)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(whatif)
        layout.addLayout(self.alarm_row)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        self.refresh_versions()

    def _build_alarm_rule(self) -> None:
        """The fleet alarm rule's controls (services.fleet_alarms), set to its documented default."""
        rule = fleet_alarms.DEFAULT_RULE
        self.alarm_rule = rule
        self.alarm_sensors = QLineEdit(", ".join(rule.sensors))
        self.alarm_sensors.setObjectName("fleetAlarmSensors")
        self.alarm_sensors.setToolTip(
            "The sensors whose anomaly ranges count towards an alarm (comma-separated)"
        )
        self.alarm_score = QDoubleSpinBox()
        self.alarm_score.setRange(0.0, 1e6)
        self.alarm_score.setDecimals(2)
        self.alarm_score.setValue(rule.min_score)
        self.alarm_score.setToolTip("An anomaly range counts only with at least this score")
        self.alarm_agree = QSpinBox()
        self.alarm_agree.setRange(1, 99)
        self.alarm_agree.setValue(rule.min_sensors)
        self.alarm_agree.setToolTip("How many of the sensors must show such a range at the same cycle")
        self.alarm_hold = QSpinBox()
        self.alarm_hold.setRange(1, 1000)
        self.alarm_hold.setValue(rule.persistence)
        self.alarm_hold.setSuffix(" cycles")
        self.alarm_hold.setToolTip("For how many consecutive cycles the signal must hold before the alarm")
        self.alarm_text = QLabel()
        self.alarm_text.setObjectName("fleetAlarmRule")
        self.alarm_text.setMinimumWidth(10)  # a long rule is clipped in the row, whole in the tooltip
        default_tip = (
            "Default: the rule chosen on FD001's held-out validation engines by benchmarks/fleet_cmapss.py "
            "--alarms-only (Telemanom, epochs=5): 10 % false-alarm engines, median lead 54 cycles on held-out "
            "test engines. Its score threshold belongs to those versions' scores."
        )
        self._alarm_default_tip = default_tip
        self.alarm_sensors.editingFinished.connect(self.update_alarms)
        for box in (self.alarm_score, self.alarm_agree, self.alarm_hold):
            box.valueChanged.connect(self.update_alarms)
        row = self.alarm_row = QHBoxLayout()
        row.addWidget(QLabel("Alarm rule: sensors"))
        row.addWidget(self.alarm_sensors, 1)
        row.addWidget(QLabel("score ≥"))
        row.addWidget(self.alarm_score)
        row.addWidget(QLabel("agree"))
        row.addWidget(self.alarm_agree)
        row.addWidget(QLabel("held"))
        row.addWidget(self.alarm_hold)
        row.addWidget(self.alarm_text, 2)
        self._show_alarm_rule()

    def set_alarm_rule(self, rule: Any) -> None:
        """Set the controls to ``rule`` (an AlarmRule) and recompute the alarms."""
        for box in (self.alarm_score, self.alarm_agree, self.alarm_hold):
            box.blockSignals(True)
        self.alarm_sensors.setText(", ".join(rule.sensors))
        self.alarm_score.setValue(rule.min_score)
        self.alarm_agree.setValue(rule.min_sensors)
        self.alarm_hold.setValue(rule.persistence)
        for box in (self.alarm_score, self.alarm_agree, self.alarm_hold):
            box.blockSignals(False)
        self.update_alarms()

    def update_alarms(self) -> None:
        """Read the rule from its controls and recompute each engine's alarm from the cached anomaly
        ranges (no model runs); a rule that makes no sense says why and keeps the last one."""
        try:
            rule = fleet_alarms.parse_rule(
                self.alarm_sensors.text(),
                self.alarm_score.value(),
                self.alarm_agree.value(),
                self.alarm_hold.value(),
            )
        except TurbofanError as exc:
            self.alarm_text.setText(f"Alarm rule not changed: {exc}")
            self.alarm_text.setToolTip(str(exc))
            return
        self.alarm_rule = rule
        self._show_alarm_rule()
        if self.assessment is not None:
            self.model.set_alarms(fleet_alarms.fleet_alarms(self.assessment, rule), rule)
            self.table.resizeColumnToContents(C_ALARM)
            self._show_summary()

    def _show_alarm_rule(self) -> None:
        default = (
            " (default, chosen on held-out engines)" if self.alarm_rule == fleet_alarms.DEFAULT_RULE else ""
        )
        text = f"Alarm: {self.alarm_rule.describe()}{default}"
        self.alarm_text.setText(text)
        self.alarm_text.setToolTip(f"{text}\n\n{self._alarm_default_tip}")

    def _cost_box(self, value: float, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0.0, 1e7)
        box.setDecimals(0)
        box.setSingleStep(10.0)
        box.setValue(value)
        box.setToolTip(f"{tip}, in cycles of engine life (a visit also costs the life it throws away)")
        return box

    def refresh_versions(self) -> None:
        """The RUL versions in the registry (read on the GUI thread: a list of rows, no model loads)."""
        current = self.version_combo.currentData()
        self.version_combo.blockSignals(True)
        self.version_combo.clear()
        self.version_combo.addItem("Default: production version for the file, else newest", None)
        if self.workspace is None:  # a panel showing a given assessment (the benchmark)
            self.version_combo.blockSignals(False)
            return
        try:
            records = fleet_service.rul_versions(self.workspace)
        except TurbofanError:
            records = []
        for record in records:
            self.version_combo.addItem(f"{record.label} [{record.stage}]", int(record.id))
        where = self.version_combo.findData(current)
        self.version_combo.setCurrentIndex(max(where, 0))
        self.version_combo.blockSignals(False)

    # -- assessing (a job) ------------------------------------------------------------------------------
    def assess(self, accept_out_of_scope: bool = False) -> Any:
        """Start the assessment of every open file as a job; returns the job (None when nothing to do).
        A RUL version out of a file's scope is refused unless ``accept_out_of_scope``; the panel asks
        the user first (:meth:`_on_assessed`)."""
        datasets = list(self.datasets())
        if not datasets:
            self.summary.setText("Open data files first: the fleet is every unit of the open files.")
            return None
        if self.jobs is None:
            self.summary.setText("The job manager is not available, so the fleet cannot be assessed.")
            return None
        anomaly_versions = self.anomaly_versions_to_use(datasets)
        self._assessed_datasets = datasets
        self.assess_button.setEnabled(False)
        self.summary.setText(f"Assessing {len(datasets)} file(s)…")
        handle = self.jobs.submit(
            "Fleet assessment",
            fleet_job(
                self.workspace,
                datasets,
                self.version_combo.currentData(),
                anomaly_versions,
                accept_out_of_scope=accept_out_of_scope,
            ),
        )
        handle.finished.connect(self._on_assessed)
        handle.failed.connect(self._on_assess_failed)
        handle.cancelled.connect(self._on_assess_cancelled)
        self._job = handle
        return handle

    # -- which anomaly versions ---------------------------------------------------------------------------
    def set_anomaly_choice(self, mode: str, versions: list[int] | None = None) -> None:
        """``mode``: newest validated / production per sensor, none, or the ``versions`` chosen."""
        if mode not in ANOMALY_MODES:
            raise ValueError(f"unknown anomaly choice {mode!r}")
        self.anomaly_mode = mode
        if versions is not None:
            self.chosen_anomaly_versions = sorted(int(v) for v in versions)
        self._show_anomaly_choice()

    def anomaly_versions_to_use(self, datasets: list[Any]) -> list[int]:
        """The anomaly version ids the choice names for ``datasets`` (read on the GUI thread: rows of
        the registry, no model loads)."""
        if self.workspace is None or self.anomaly_mode == NO_ANOMALIES or not datasets:
            return []
        try:
            if self.anomaly_mode == CHOSEN:
                usable = {int(r.id) for r in fleet_service.anomaly_versions_for(self.workspace, datasets)}
                return [v for v in self.chosen_anomaly_versions if v in usable]
            if self.anomaly_mode == PRODUCTION:
                return fleet_service.default_anomaly_versions(self.workspace, datasets)
            return fleet_service.newest_validated_anomaly_versions(self.workspace, datasets)
        except TurbofanError:
            return []

    def _show_anomaly_choice(self) -> None:
        """The button names the choice briefly (the window's width must not grow); its tooltip fully."""
        if self.anomaly_mode == CHOSEN:
            n = len(self.chosen_anomaly_versions)
            text = f"Anomalies: {n} chosen"
            full = f"{n} chosen anomaly version{'s' if n != 1 else ''}: " + (
                ", ".join(f"#{v}" for v in self.chosen_anomaly_versions) or "none"
            )
        else:
            text = f"Anomalies: {ANOMALY_SHORT[self.anomaly_mode]}"
            full = ANOMALY_MODES[self.anomaly_mode]
        self.anomaly_button.setText(text)
        self.anomaly_button.setToolTip(
            f"Anomaly versions run on the files' sensors: {full}. Click to choose."
        )

    def _fill_anomaly_menu(self) -> None:
        """The rules, then every usable anomaly version of the open files' sensors to tick."""
        menu = self.anomaly_menu
        menu.clear()
        group = QActionGroup(menu)
        for mode, text in ANOMALY_MODES.items():
            if mode == CHOSEN:
                continue
            action = menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(self.anomaly_mode == mode)
            action.setActionGroup(group)
            action.triggered.connect(lambda _=False, m=mode: self.set_anomaly_choice(m))
        menu.addSection("Or choose versions")
        try:
            records = fleet_service.anomaly_versions_for(self.workspace, list(self.datasets()))
        except TurbofanError:
            records = []
        if not records:
            menu.addAction("No anomaly version for the open files' sensors").setEnabled(False)
        for record in records:
            checked = "validated" if record.validation_performed else "not validated"
            action = menu.addAction(f"{record.label} [{record.stage}, {checked}]")
            action.setCheckable(True)
            action.setChecked(self.anomaly_mode == CHOSEN and int(record.id) in self.chosen_anomaly_versions)
            action.toggled.connect(lambda on, v=int(record.id): self._toggle_version(v, on))

    def _toggle_version(self, version_id: int, on: bool) -> None:
        chosen = set(self.chosen_anomaly_versions) if self.anomaly_mode == CHOSEN else set()
        chosen = chosen | {version_id} if on else chosen - {version_id}
        self.set_anomaly_choice(CHOSEN, sorted(chosen))

    # -- the report (a job) -----------------------------------------------------------------------------
    def _choose_report_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Fleet report", "fleet-report.html", "HTML (*.html);;PDF (*.pdf)"
        )
        if path:
            self.export_report(path)

    def export_report(self, path: str) -> Any:
        """Write the report of the shown assessment and plan as a job; returns its handle."""
        if self.assessment is None or self.jobs is None:
            return None
        from turbofan_desktop.services.fleet_report import export_fleet_report

        workspace, assessment, plan, rule = self.workspace, self.assessment, self.plan, self.alarm_rule

        def job(progress: ProgressSink, should_stop: ShouldStop) -> Any:
            return export_fleet_report(workspace, assessment, plan, path, alarm_rule=rule)

        handle = self.jobs.submit("Fleet report", job)
        handle.finished.connect(self._on_report_written)
        handle.failed.connect(
            lambda message: self.summary.setText(f"The fleet report could not be written: {message}")
        )
        return handle

    def _on_report_written(self, path: Any) -> None:
        self.summary.setText(f"{self.summary.text().split(' — wrote ')[0]} — wrote {path}")

    def _on_assessed(self, result: Any) -> None:
        self._job = None
        self.assess_button.setEnabled(True)
        if isinstance(result, OutOfScope):
            if ask_fleet_out_of_scope(self, result.message):
                self.assess(accept_out_of_scope=True)
            else:
                self.summary.setText(f"Not assessed: {result.message}")
            return
        self.show_assessment(result)

    def _on_assess_failed(self, message: str) -> None:
        self._job = None
        self.assess_button.setEnabled(True)
        self.summary.setText(f"The fleet could not be assessed: {message}")

    def _on_assess_cancelled(self) -> None:
        self._job = None
        self.assess_button.setEnabled(True)
        self.summary.setText("Fleet assessment cancelled.")

    def show_assessment(self, assessment: Any) -> None:
        self.assessment = assessment
        plan = self._current_plan()
        if plan is None:
            plan = assessment.plan()  # the defaults, until the user's costs make sense again
        self.plan = plan
        self.model.alarms = fleet_alarms.fleet_alarms(assessment, self.alarm_rule)
        self.model.alarm_rule = self.alarm_rule
        self.model.set_assessment(assessment, plan)
        self.chart.show_fleet(assessment, plan)
        self.table.sortByColumn(C_RISK, Qt.SortOrder.DescendingOrder)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(C_INTERVAL, 160)
        self._show_summary()
        self.report_button.setEnabled(True)
        self.assessed.emit()

    # -- what-if ------------------------------------------------------------------------------------------
    def _current_plan(self) -> Any:
        try:
            return self.assessment.plan(
                self.horizon.value(), self.cost_failure.value(), self.cost_visit.value()
            )
        except TurbofanError as exc:
            self.summary.setText(str(exc))
            return None

    def update_plan(self) -> None:
        """Recompute the plan from the cached quantiles (no model runs) and repaint."""
        if self.assessment is None:
            return
        plan = self._current_plan()
        if plan is None:
            return
        self.plan = plan
        self.model.set_plan(plan)
        if self.proxy.filtering:
            self.proxy.invalidate()  # the action filter follows the plan
        self.chart.update_plan(plan)
        self._show_summary()
        self.plan_changed.emit()

    def _show_summary(self) -> None:
        counts = self.plan.counts()
        a = self.assessment
        drifted = sorted({s for f in a.files for s in f.drifted})
        text = (
            f"{len(a)} engines from {a.rul_version_label}: "
            + ", ".join(f"{n} {ACTION_TEXT[k].lower()}" for k, n in counts.items())
            + f"; expected cost {self.plan.expected_cost.sum():.0f} cycles of life over H = {self.plan.horizon}"
        )
        if drifted:
            text += f". Drift against the training data: {', '.join(drifted)}"
        if a.anomaly_versions:
            names = [a.anomaly_labels.get(v, f"#{v}") for v in a.anomaly_versions]
            text += f". Anomalies from {', '.join(names)}"
            alarmed = int(np.isfinite(self.model.alarms).sum())
            text += f"; {alarmed} engine(s) alarmed in the last {a.anomaly_window} cycles"
        else:
            text += ". No anomaly version ran"
        verdict = a.applicability()["verdict"]
        if verdict not in (None, "ok"):
            worst = [
                f"{Path(f.path).name}: {fleet_service.verdict_line(v)}"
                for f in a.files
                for v in f.applicability
                if v["verdict"] == verdict
            ]
            text += f". Applicability {APPLICABILITY_TEXT[verdict]}: {worst[0]}"
        if a.calibration is not None:
            text += f". P(fail) uses the {a.calibration.summary()}"
        self.summary.setText(text)

    def _apply_filter(self) -> None:
        self.proxy.set_filter(self.filter_edit.text(), self.action_filter.currentData())

    # -- engines -----------------------------------------------------------------------------------------
    def _row_clicked(self, index: QModelIndex) -> None:
        self.activate_engine(self.model.engine_at(self.proxy.mapToSource(index).row()))

    def activate_engine(self, engine: int) -> None:
        """Plot one engine (its row in the assessment): the window selects and draws it."""
        if self.assessment is None or not 0 <= engine < len(self.assessment):
            return
        self.chart.mark(engine)
        source = self.proxy.mapFromSource(self.model.index(int(self.model.row_of[engine]), 0))
        if source.isValid():
            self.table.selectRow(source.row())
        unit = self.assessment.engines[engine].unit
        self.engine_activated.emit(self._dataset_of(engine), unit)

    def _dataset_of(self, engine: int) -> Any:
        count = 0
        for dataset, file in zip(self._assessed_datasets, self.assessment.files, strict=False):
            count += file.units
            if engine < count:
                return dataset
        return None

    def visible_units(self) -> list[Any]:
        """The units in the table's current order (sorted and filtered), for tests and exports."""
        return [self.proxy.index(r, C_UNIT).data(SORT_ROLE) for r in range(self.proxy.rowCount())]
