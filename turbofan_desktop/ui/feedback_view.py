"""Label detected anomalies: true anomaly / false alarm per detected range, plus ranges the model missed.

Two ways in, one store (``services.feedback``, a quick registry write on the UI thread, as the other
dialogs read and write the registry):

* in the plot (:class:`PlotFeedback`, attached to the plot area when a detection is drawn): right-click a
  detected range for *Mark as true anomaly* / *Mark as false alarm* / *Clear label*; Shift+drag, or
  *Mark missed anomaly here* in the plot's menu and then *Confirm*, marks a missed anomaly;
* :class:`FeedbackDialog` lists the detected ranges of one unit with a label chooser each and lets the
  user add a missed range.

Labels are drawn at once (:func:`draw_feedback`: true = green outline, false alarm = grey dashed and
hatched, missed = orange dotted fill; each with a text tag and a legend entry). Saving labels appends
the shown detection's precision / recall / F0.5 against them to the version's KPI history (debounced in
the plot: one entry per burst of labelling).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.errors import TurbofanError
from turbofan_desktop.services.feedback import (
    FALSE_ALARM,
    LABEL_TEXT,
    MISSED_ANOMALY,
    TRUE_ANOMALY,
    clear_label,
    data_key,
    label_for,
    labels_for_data,
    mark_range,
    record_detection_kpis,
    version_labels,
)
from turbofan_desktop.services.naming import version_name_of
from turbofan_desktop.services.session import Session, ShownResult, Unit
from turbofan_desktop.ui.dialogs import ErrorSink

if TYPE_CHECKING:
    from turbofan_desktop.plugins.contract import AnomalyRange, DetectionResult, UnitDetection
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.session import Dataset, LabelRecord
    from turbofan_desktop.ui.plot_area import PlotArea, RegionContext

CHOICES = ("not labelled", LABEL_TEXT[TRUE_ANOMALY], LABEL_TEXT[FALSE_ALARM])
CHOICE_LABELS = (None, TRUE_ANOMALY, FALSE_ALARM)
COLUMNS = ("from", "to", "score", "label")
KPI_DELAY_MS = 2000  # labels saved within this long of each other give one KPI entry


class FeedbackDialog(QDialog):
    """Detected ranges of one unit with a label each; missed ranges can be added."""

    def __init__(
        self,
        workspace: Workspace,
        version_id: int,
        detection: UnitDetection,
        unit: Unit,
        parent: QWidget | None = None,
        *,
        data_key: str | None = None,
    ):
        super().__init__(parent)
        self.setObjectName("feedbackDialog")
        self.data_key = data_key
        self.setWindowTitle(f"Label anomalies of {version_name_of(workspace, version_id)}, unit {unit}")
        self.workspace = workspace
        self.version_id = version_id
        self.unit = unit
        self.anomalies: list[AnomalyRange] = list(detection.anomalies or [])
        self.missed: list[tuple[float, float]] = []
        self.saved: list[int] = []
        labels = self._stored()
        # missed ranges already marked on this unit (Shift+drag on the plot, or an earlier dialog)
        self.stored_missed = [
            entry
            for entry in labels
            if entry.label == MISSED_ANOMALY
            and str(entry.unit) == str(unit)
            and (data_key is None or entry.data_key in (None, data_key))
        ]

        self.table = QTableWidget(len(self.anomalies), len(COLUMNS))
        self.table.setObjectName("feedbackTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.choosers: list[QComboBox] = []
        for row, anomaly in enumerate(self.anomalies):
            for column, text in enumerate((str(anomaly.start), str(anomaly.end), f"{anomaly.score:.3g}")):
                self.table.setItem(row, column, QTableWidgetItem(text))
            chooser = QComboBox()
            chooser.addItems(CHOICES)
            stored = label_for(labels, unit, anomaly.start, anomaly.end)
            if stored in CHOICE_LABELS:
                chooser.setCurrentIndex(CHOICE_LABELS.index(stored))
            self.table.setCellWidget(row, len(COLUMNS) - 1, chooser)
            self.choosers.append(chooser)

        for entry in self.stored_missed:
            self._add_missed_row(entry.start, entry.end, "missed anomaly (saved)")

        times = [float(a) for a in detection.time] or [0.0]
        self.missed_from = QDoubleSpinBox()
        self.missed_to = QDoubleSpinBox()
        for box in (self.missed_from, self.missed_to):
            box.setDecimals(0)
            box.setRange(min(times), max(times))
        self.missed_to.setValue(max(times))
        add = QPushButton("Add missed range")
        add.setObjectName("addMissedButton")
        add.clicked.connect(lambda: self.add_missed(self.missed_from.value(), self.missed_to.value()))
        self.missed_label = QLabel("")

        missed_row = QHBoxLayout()
        missed_row.addWidget(QLabel("Missed anomaly from"))
        missed_row.addWidget(self.missed_from)
        missed_row.addWidget(QLabel("to"))
        missed_row.addWidget(self.missed_to)
        missed_row.addWidget(add)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save_and_close)
        buttons.rejected.connect(self.reject)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        if not self.anomalies:
            layout.addWidget(
                QLabel("The model detected nothing in this unit; you can still mark a missed range.")
            )
        layout.addWidget(self.table, 1)
        layout.addLayout(missed_row)
        layout.addWidget(self.missed_label)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.resize(560, 380)

    def _stored(self) -> list[LabelRecord]:
        try:
            return version_labels(self.workspace, self.version_id)
        except TurbofanError:
            return []

    def set_label(self, row: int, label: str | None) -> None:
        self.choosers[row].setCurrentIndex(CHOICE_LABELS.index(label))

    def add_missed(self, start: float, end: float) -> None:
        start, end = sorted((float(start), float(end)))
        self.missed.append((start, end))
        self.missed_label.setText("Missed: " + ", ".join(f"{a:g}-{b:g}" for a, b in self.missed))
        self._add_missed_row(f"{start:g}", f"{end:g}", "missed anomaly (to save)")

    def _add_missed_row(self, start: object, end: object, text: str) -> None:
        """A missed range as a row of the table: the model found nothing there, so no score."""
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, value in enumerate((str(start), str(end), "—", text)):
            self.table.setItem(row, column, QTableWidgetItem(value))

    def missed_rows(self) -> list[tuple[str, str, str]]:
        """(from, to, label text) of the table's missed-range rows."""
        rows = []
        for row in range(len(self.anomalies), self.table.rowCount()):
            rows.append(tuple(self.table.item(row, c).text() for c in (0, 1, 3)))
        return rows

    def save(self) -> list[int]:
        """Write the chosen labels; returns the new label ids (unlabelled ranges are skipped)."""
        ids = []
        for anomaly, chooser in zip(self.anomalies, self.choosers, strict=True):
            label = CHOICE_LABELS[chooser.currentIndex()]
            if label is not None:
                ids.append(
                    mark_range(
                        self.workspace,
                        self.version_id,
                        unit=self.unit,
                        start=anomaly.start,
                        end=anomaly.end,
                        label=label,
                        data_key=self.data_key,
                    )
                )
        for start, end in self.missed:
            ids.append(
                mark_range(
                    self.workspace,
                    self.version_id,
                    unit=self.unit,
                    start=start,
                    end=end,
                    label=MISSED_ANOMALY,
                    data_key=self.data_key,
                )
            )
        self.missed = []
        self.saved = ids
        return ids

    def save_and_close(self) -> None:
        try:
            self.save()
        except TurbofanError as exc:
            self.error_label.setText(str(exc))
            return
        self.accept()


def _float_bounds(label: LabelRecord) -> tuple[float, float] | None:
    from turbofan_desktop.ui.plot_area import as_float_time

    if label.start is None or label.end is None:
        return None
    try:
        return float(label.start), float(label.end)
    except (TypeError, ValueError):
        pass
    try:  # timestamps stored as ISO text: epoch seconds, as the plot's date axis
        start, end = as_float_time(np.array([label.start, label.end], dtype="datetime64[ns]"))
    except (TypeError, ValueError):
        return None
    return float(start), float(end)


def draw_feedback(plot_area: PlotArea, labels: list[LabelRecord], target: str, unit: Unit) -> int:
    """Draw the stored labels of ``unit`` on ``target``'s plot (replacing the labels drawn before).

    Returns the number of ranges drawn; a sensor that is not shown draws nothing.
    """
    plot_area.clear_label_overlays()
    drawn = 0
    for label in labels:
        bounds = _float_bounds(label) if str(label.unit) == str(unit) else None
        if bounds is not None and plot_area.add_label_overlay(target, label, *bounds):
            drawn += 1
    return drawn


class PlotFeedback(QObject):
    """Labels from the plot: menus on right-clicked ranges, missed ranges from Shift+drag.

    Knows the detection drawn last (version, unit, dataset); every change is written through
    ``services.feedback`` and redrawn; the KPI entry follows after a short quiet spell. ``parent``
    (the window) parents the menus, and a pending KPI entry is written before it closes.
    """

    def __init__(
        self,
        workspace: Workspace,
        area: PlotArea,
        show_error: ErrorSink,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.workspace = workspace
        self.area = area
        self.show_error = show_error
        self.parent_widget = parent
        self.version_id: int | None = None
        self.detection: DetectionResult | None = None
        self.unit: Unit | None = None
        self.dataset: Dataset | None = None
        self.menu: QMenu | None = None
        self.area.feedback_enabled = True
        self.area.region_context_requested.connect(self.on_context)
        self.area.range_selected.connect(self.on_range_selected)
        self.kpi_timer = QTimer(self)
        self.kpi_timer.setSingleShot(True)
        self.kpi_timer.setInterval(KPI_DELAY_MS)
        self.kpi_timer.timeout.connect(self.record_kpis)
        if parent is not None:
            parent.installEventFilter(self)  # a pending KPI entry is written before the window closes

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close:
            self.flush()
        return False

    # -- state ---------------------------------------------------------------------------------
    def detection_shown(
        self, version_id: int, detection: DetectionResult, unit: Unit, dataset: Dataset | None
    ) -> int:
        """A detection was drawn: label its ranges from now on; draws the stored labels."""
        self.flush()
        self.version_id, self.detection, self.unit, self.dataset = version_id, detection, unit, dataset
        self.area.feedback_enabled = True
        return self.redraw()

    def labels(self) -> list[LabelRecord]:
        if self.version_id is None:
            return []
        try:
            return labels_for_data(self.workspace, self.version_id, self.dataset)
        except TurbofanError:  # e.g. the version was deleted meanwhile: nothing to draw
            return []

    def redraw(self) -> int:
        if self.detection is None:
            return 0
        return draw_feedback(self.area, self.labels(), self.detection.target, self.unit)

    # -- menus -----------------------------------------------------------------------------------
    def on_context(self, context: RegionContext) -> None:
        self.menu = self.build_menu(context)
        if context.screen_pos is not None and not self.menu.isEmpty():
            self.menu.popup(context.screen_pos)

    def build_menu(self, context: RegionContext) -> QMenu:
        """The actions for what lies under the click (see the module text)."""
        menu = QMenu(self.parent_widget)
        menu.setObjectName("feedbackMenu")
        if context.pending is not None:
            menu.addAction("Confirm missed anomaly", self.area.confirm_pending)
            menu.addAction("Discard selection", self.area.discard_pending)
        stored = self.labels()
        for anomaly in context.anomalies:
            if len(context.anomalies) > 1 or context.pending is not None:
                menu.addSection(f"range {anomaly.start}–{anomaly.end}")
            current = label_for(stored, self.unit, anomaly.start, anomaly.end)
            for label, text in ((TRUE_ANOMALY, "Mark as true anomaly"), (FALSE_ALARM, "Mark as false alarm")):
                action = menu.addAction(
                    text, lambda a=anomaly, lb=label: self.label_range(a.start, a.end, lb)
                )
                action.setCheckable(True)
                action.setChecked(current == label)
            clear = menu.addAction("Clear label", lambda a=anomaly: self.clear_range(a.start, a.end))
            clear.setEnabled(current is not None)
        detected = {(str(a.start), str(a.end)) for a in context.anomalies}
        for entry in context.labels:
            if (str(entry.start), str(entry.end)) in detected:
                continue
            text = LABEL_TEXT.get(entry.label, entry.label)
            menu.addAction(
                f"Clear label '{text}' {entry.start}–{entry.end}",
                lambda e=entry: self.clear_range(e.start, e.end, version_id=e.version_id),
            )
        return menu

    # -- writes ------------------------------------------------------------------------------------
    def _write(self, work: Callable[[], object]) -> bool:
        try:
            work()
        except TurbofanError as exc:
            self.show_error(exc)
            return False
        self.redraw()
        self.kpi_timer.start()
        return True

    def label_range(self, start: object, end: object, label: str) -> bool:
        """Store ``label`` for [start, end] of the shown unit on the shown version."""
        return self._write(
            lambda: mark_range(
                self.workspace,
                self.version_id,
                unit=self.unit,
                start=start,
                end=end,
                label=label,
                data_key=data_key(self.dataset),
            )
        )

    def clear_range(self, start: object, end: object, *, version_id: int | None = None) -> bool:
        return self._write(
            lambda: clear_label(
                self.workspace, version_id or self.version_id, unit=self.unit, start=start, end=end
            )
        )

    def on_range_selected(self, sensor: str, start: float, end: float) -> None:
        """A dragged or confirmed range: a missed anomaly, snapped to the unit's time values."""
        if self.detection is None or sensor != self.detection.target:
            return
        snapped = self._snap(start, end)
        if snapped is None:
            self.show_error("The marked range holds no time step of this unit; drag over the data.")
            return
        self.label_range(*snapped, MISSED_ANOMALY)

    def _snap(self, start: float, end: float) -> tuple[object, object] | None:
        from turbofan_desktop.ui.plot_area import as_float_time, lookup_unit

        times = None
        if self.dataset is not None:
            try:
                times = self.dataset.unit_frame(self.unit)[self.dataset.time_col].to_numpy()
            except (KeyError, AttributeError):
                times = None
        if times is None:
            unit_detection = lookup_unit(self.detection.units, self.unit)
            times = np.asarray(unit_detection.time) if unit_detection is not None else np.zeros(0)
        inside = np.flatnonzero((as_float_time(times) >= start) & (as_float_time(times) <= end))
        if not len(inside):
            return None
        first, last = times[inside[0]], times[inside[-1]]
        plain = [v.item() if isinstance(v, np.generic) else v for v in (first, last)]
        return plain[0], plain[1]

    # -- KPIs ----------------------------------------------------------------------------------------
    def record_kpis(self) -> dict[str, Any] | None:
        """Judge the shown detection by the labels now stored (one KPI entry)."""
        self.kpi_timer.stop()
        if self.version_id is None or self.detection is None:
            return None
        try:
            return record_detection_kpis(self.workspace, self.version_id, self.detection, self.dataset)
        except TurbofanError as exc:
            self.show_error(exc)
            return None

    def flush(self) -> None:
        """Record a pending KPI entry now (before another detection replaces the shown one)."""
        if self.kpi_timer.isActive():
            self.record_kpis()


class FeedbackController:
    """Labelling the detection last drawn: in the plot (:class:`PlotFeedback`, created on first use)
    and in the :class:`FeedbackDialog` (:meth:`open`). The shown result is read from the session."""

    def __init__(
        self,
        workspace: Workspace,
        session: Session,
        plot_area: PlotArea | None,
        show_error: ErrorSink,
        parent: QWidget | None = None,
    ):
        self.workspace = workspace
        self.session = session
        self.plot_area = plot_area
        self.show_error = show_error
        self.parent = parent
        self.plot_feedback: PlotFeedback | None = None
        self.dialog: FeedbackDialog | None = None

    def attach(self) -> PlotFeedback:
        """The plot's :class:`PlotFeedback`, created on first use (needs the plot area)."""
        if self.plot_feedback is None:
            if self.plot_area is None:
                raise RuntimeError("labelling in the plot needs the plot area")
            self.plot_feedback = PlotFeedback(self.workspace, self.plot_area, self.show_error, self.parent)
        return self.plot_feedback

    def open(self) -> FeedbackDialog | None:
        """Label the ranges of the detection last drawn on the plot; the labels are drawn on the plot
        when saved."""
        from turbofan_desktop.ui.plot_area import lookup_unit

        shown = self.session.last_shown
        detection = shown.detection if shown is not None else None
        if shown is None or detection is None:
            self.show_error(
                "Show an anomaly model on the plot first (Models panel: Show on plot), then label its ranges."
            )
            return None
        unit = shown.unit
        unit_detection = lookup_unit(detection.units, unit)
        if unit_detection is None:
            self.show_error(f"The detection shown has no unit {unit}.")
            return None
        dataset = shown.dataset
        dialog = FeedbackDialog(
            self.workspace,
            shown.version_id,
            unit_detection,
            unit,
            parent=self.parent,
            data_key=data_key(dataset),
        )
        dialog.accepted.connect(lambda: self._saved(shown, detection))
        self.dialog = dialog
        dialog.show()
        return dialog

    def _saved(self, shown: ShownResult, detection: DetectionResult) -> None:
        if self.plot_area is not None:
            feedback = self.attach()
            if feedback.detection is not detection:
                feedback.detection_shown(shown.version_id, detection, shown.unit, shown.dataset)
            feedback.redraw()
            feedback.record_kpis()
        else:
            record_detection_kpis(self.workspace, shown.version_id, detection, shown.dataset)


__all__ = ["FeedbackController", "FeedbackDialog", "PlotFeedback", "draw_feedback"]
