"""Label detected anomalies: true anomaly / false alarm per detected range, plus ranges the model missed.

:class:`FeedbackDialog` lists the detected ranges of one unit with a label chooser each and lets the
user add a missed range; *Save* writes the labels through ``services.feedback``. :func:`draw_feedback`
shades the stored labels on the plot (green: true, grey: false alarm, purple: missed).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
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
    label_for,
    mark_range,
)

CHOICES = ("not labelled", LABEL_TEXT[TRUE_ANOMALY], LABEL_TEXT[FALSE_ALARM])
CHOICE_LABELS = (None, TRUE_ANOMALY, FALSE_ALARM)
COLUMNS = ("from", "to", "score", "label")
BRUSHES = {
    TRUE_ANOMALY: (60, 170, 90, 60),
    FALSE_ALARM: (120, 120, 120, 60),
    MISSED_ANOMALY: (140, 70, 200, 60),
}


class FeedbackDialog(QDialog):
    """Detected ranges of one unit with a label each; missed ranges can be added."""

    def __init__(
        self, workspace: Any, version_id: int, detection: Any, unit: Any, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setObjectName("feedbackDialog")
        self.setWindowTitle(f"Label anomalies of version {version_id}, unit {unit}")
        self.workspace = workspace
        self.version_id = version_id
        self.unit = unit
        self.anomalies = list(getattr(detection, "anomalies", []) or [])
        self.missed: list[tuple[float, float]] = []
        self.saved: list[int] = []
        labels = self._stored()

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

        times = [float(a) for a in getattr(detection, "time", [])] or [0.0]
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

    def _stored(self) -> list[dict[str, Any]]:
        try:
            return self.workspace.registry.list_feedback(self.version_id)
        except TurbofanError:
            return []

    def set_label(self, row: int, label: str | None) -> None:
        self.choosers[row].setCurrentIndex(CHOICE_LABELS.index(label))

    def add_missed(self, start: float, end: float) -> None:
        start, end = sorted((float(start), float(end)))
        self.missed.append((start, end))
        self.missed_label.setText("Missed: " + ", ".join(f"{a:g}-{b:g}" for a, b in self.missed))

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


def draw_feedback(plot_area: Any, labels: list[dict[str, Any]], target: str, unit: Any) -> int:
    """Shade the stored labels of ``unit`` on ``target``'s plot (overlay kind ``"feedback"``).

    Returns the number of ranges drawn; a sensor that is not shown draws nothing.
    """
    plot_area._clear_kind("feedback")
    entry = plot_area.sensor_plot(target)
    if entry is None:
        return 0
    drawn = 0
    for label in labels:
        if str(label["unit"]) != str(unit) or label["start"] is None or label["end"] is None:
            continue
        try:
            start, end = float(label["start"]), float(label["end"])
        except (TypeError, ValueError):
            continue  # timestamps: not drawn on a cycle axis
        region = pg.LinearRegionItem(
            values=(start, end if end > start else start + 0.5),
            movable=False,
            brush=pg.mkBrush(BRUSHES.get(label["label"], (200, 200, 0, 60))),
        )
        region.setZValue(-20)
        region.setToolTip(f"{LABEL_TEXT.get(label['label'], label['label'])} {label['start']}-{label['end']}")
        plot_area._add_overlay("feedback", entry.plot, region)
        drawn += 1
    return drawn


def open_feedback(window: Any) -> FeedbackDialog | None:
    """Label the ranges of the detection last drawn on ``window``'s plot (``window.last_plot_result``
    = (ShowOnPlotResult, unit)); the labels are drawn on the plot when saved."""
    from turbofan_desktop.ui.plot_area import lookup_unit

    shown = getattr(window, "last_plot_result", None)
    result, unit = shown if shown else (None, None)
    detection = getattr(result, "detection", None)
    if detection is None:
        window.show_error(
            "Show an anomaly model on the plot first (Models panel: Show on plot), then label its ranges."
        )
        return None
    unit_detection = lookup_unit(detection.units, unit)
    if unit_detection is None:
        window.show_error(f"The detection shown has no unit {unit}.")
        return None
    parent = window if isinstance(window, QWidget) else None
    dialog = FeedbackDialog(window.workspace, result.version_id, unit_detection, unit, parent=parent)

    def saved() -> None:
        if window.plot_area is not None:
            labels = window.workspace.registry.list_feedback(result.version_id)
            draw_feedback(window.plot_area, labels, detection.target, unit)

    dialog.accepted.connect(saved)
    window.feedback_dialog = dialog
    dialog.show()
    return dialog
