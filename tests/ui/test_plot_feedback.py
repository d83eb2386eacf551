"""Feedback in the plot: right-click a detected range to label it, Shift+drag a missed one; labels are
stored through services.feedback, drawn at once (with a legend) and judged into the KPI history."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.plugins.contract import AnomalyRange, DetectionResult, UnitDetection  # noqa: E402
from turbofan_desktop.services.feedback import (  # noqa: E402
    DETECTION_KIND,
    FALSE_ALARM,
    MISSED_ANOMALY,
    TRUE_ANOMALY,
)
from turbofan_desktop.services.monitoring import kpi_history  # noqa: E402
from turbofan_desktop.ui.feedback_view import PlotFeedback  # noqa: E402
from turbofan_desktop.ui.plot_area import PlotArea, Series  # noqa: E402

TIME = np.arange(1, 201)


def _version(workspace) -> int:
    return register_stub_version(workspace.registry).id


def _detection() -> DetectionResult:
    values = np.sin(TIME / 9.0) + 0.01 * TIME
    anomalies = [
        AnomalyRange(start=50, end=60, score=1.5, start_index=49, end_index=59),
        AnomalyRange(start=120, end=130, score=0.7, start_index=119, end_index=129),
    ]
    errors = np.abs(np.random.default_rng(0).normal(0, 0.1, len(TIME)))
    unit = UnitDetection(1, TIME, values, values, errors, errors, np.full(len(TIME), 0.3), anomalies)
    return DetectionResult("s_2", {1: unit})


class _Data:
    """Just what the feedback controller asks of a dataset."""

    file_sha256 = "file-sha"
    data_hash = "content-hash"
    time_col = "cycle"

    def unit_frame(self, unit):
        return pd.DataFrame({"cycle": TIME})


@pytest.fixture
def plotted(qtbot, workspace):
    area = PlotArea()
    qtbot.addWidget(area)
    area.resize(900, 520)
    area.show()
    qtbot.waitExposed(area)
    detection = _detection()
    area.plot_series({"s_2": [Series(1, TIME.astype(float), detection.units[1].actual)]}, time_label="cycle")
    area.show_detection(detection, 1)
    # a fixed x range: drags are placed in pixels, so the view must not re-range under them
    view = area.sensor_plot("s_2").plot.vb
    view.disableAutoRange()
    view.setXRange(0, 201, padding=0)
    qtbot.wait(50)
    errors: list = []
    feedback = PlotFeedback(workspace, area, errors.append)
    version = _version(workspace)
    feedback.detection_shown(version, detection, 1, _Data())
    return SimpleNamespace(area=area, feedback=feedback, version=version, errors=errors, ws=workspace)


def _widget_pos(area: PlotArea, x: float):
    QApplication.processEvents()
    vb = area.sensor_plot("s_2").plot.vb
    y0, y1 = vb.viewRange()[1]
    scene = vb.mapViewToScene(QPointF(x, (y0 + y1) / 2))
    return area.graphics.mapFromScene(scene)


def _shift_drag_move(viewport, pos) -> None:
    """A move with the left button and Shift held, as a user's drag sends it (QTest.mouseMove
    carries neither)."""
    local = QPointF(pos)
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        local,
        QPointF(viewport.mapToGlobal(pos)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ShiftModifier,
    )
    QApplication.sendEvent(viewport, event)


def _trigger(menu, text: str) -> None:
    action = next(a for a in menu.actions() if a.text().startswith(text))
    assert action.isEnabled(), text
    action.trigger()


def _stored(p) -> list[tuple]:
    return sorted((x.start, x.end, x.label) for x in p.ws.registry.list_feedback(p.version))


def test_right_click_on_a_detected_range_labels_it(qtbot, plotted):
    p = plotted
    with qtbot.waitSignal(p.area.region_context_requested, timeout=2000) as signal:
        QTest.mouseClick(p.area.graphics.viewport(), Qt.MouseButton.RightButton, pos=_widget_pos(p.area, 55))
    assert [(a.start, a.end) for a in signal.args[0].anomalies] == [(50, 60)]
    _trigger(p.feedback.menu, "Mark as true anomaly")
    p.feedback.menu.close()
    assert _stored(p) == [(50, 60, TRUE_ANOMALY)]
    assert p.ws.registry.list_feedback(p.version)[0].data_key == "file-sha"
    assert len(p.area.overlay_items("feedback")) == 1 and p.area.legend_names() == ["labelled true anomaly"]
    assert p.feedback.kpi_timer.isActive()  # the KPI entry follows once labelling pauses

    # relabel, label the second range, clear again: the menu reflects what is stored
    assert p.area.request_region_context("s_2", 55.0)
    menu = p.feedback.menu
    assert [a.isChecked() for a in menu.actions() if a.isCheckable()] == [True, False]
    _trigger(menu, "Mark as false alarm")
    assert _stored(p) == [(50, 60, FALSE_ALARM)]
    p.area.request_region_context("s_2", 125.0)
    _trigger(p.feedback.menu, "Mark as true anomaly")
    p.area.request_region_context("s_2", 55.0)
    _trigger(p.feedback.menu, "Clear label")
    assert _stored(p) == [(120, 130, TRUE_ANOMALY)]
    assert not p.area.request_region_context("s_2", 90.0)  # empty space: the plot's own menu instead
    assert p.errors == []


def test_shift_drag_marks_a_missed_anomaly_and_kpis_are_recorded(qtbot, plotted):
    p = plotted
    p.area.request_region_context("s_2", 55.0)
    _trigger(p.feedback.menu, "Mark as true anomaly")
    p.area.request_region_context("s_2", 125.0)
    _trigger(p.feedback.menu, "Mark as false alarm")

    viewport = p.area.graphics.viewport()
    start, end = _widget_pos(p.area, 169.6), _widget_pos(p.area, 180.4)
    with qtbot.waitSignal(p.area.range_selected, timeout=2000) as signal:
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, start)
        for step in range(1, 6):
            _shift_drag_move(viewport, start + (end - start) * step / 5)
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, end)
    QTest.keyRelease(viewport, Qt.Key.Key_Shift)  # let go of Shift: Qt keeps the last modifiers app-wide
    assert QApplication.keyboardModifiers() == Qt.KeyboardModifier.NoModifier
    assert signal.args[0] == "s_2" and signal.args[1] == pytest.approx(169.6, abs=3)  # a few pixels
    missed = [x for x in _stored(p) if x[2] == MISSED_ANOMALY]
    assert len(missed) == 1 and missed[0][0] <= 172 and missed[0][1] >= 178
    assert all(isinstance(v, int) for v in missed[0][:2])  # snapped to the unit's cycles

    # the context-menu route: a movable selection, confirmed by a right-click on it
    p.area.begin_missed_selection("s_2", 95.0)
    low, high = p.area.pending_selection()[1:]
    assert p.area.request_region_context("s_2", 95.0)
    _trigger(p.feedback.menu, "Confirm missed anomaly")
    assert p.area.pending_selection() is None
    assert any(x[2] == MISSED_ANOMALY and low <= x[0] <= 95 <= x[1] <= high for x in _stored(p))
    assert len(p.area.overlay_items("feedback")) == 4
    assert sorted(p.area.legend_names()) == [
        "labelled false alarm",
        "labelled missed anomaly",
        "labelled true anomaly",
    ]

    kpis = p.feedback.record_kpis()
    assert (kpis["true_positives"], kpis["false_positives"], kpis["false_negatives"]) == (1, 1, 2)
    entry = [e for e in kpi_history(p.ws, p.version) if e.kind == DETECTION_KIND][-1]
    assert entry.metrics["precision"] == 0.5 and entry.metrics["recall"] == pytest.approx(1 / 3)
    p.area.grab().save("/tmp/feedback_plot.png")


def test_detection_drawn_in_the_window_takes_labels_from_the_plot(main_window, workspace, open_and_wait):
    from turbofan_desktop.ui.app import sample_files
    from turbofan_desktop.ui.main_window import ShowOnPlotResult

    open_and_wait(main_window, [p for p in sample_files() if p.name == "train_FD001.txt"])
    main_window.ensure_ready()
    area = main_window.plot_area
    area.plot_dataset(main_window.current_dataset(), [1], ["s_2"])
    version = _version(workspace)
    main_window.draw_results(ShowOnPlotResult(version, ("anomaly",), detection=_detection()), 1)
    assert area.request_region_context("s_2", 125.0)
    _trigger(main_window.feedback.plot_feedback.menu, "Mark as false alarm")
    (label,) = workspace.registry.list_feedback(version)
    assert label.label == FALSE_ALARM and label.data_key == main_window.current_dataset().file_sha256
    assert len(area.overlay_items("feedback")) == 1
    main_window.draw_results(ShowOnPlotResult(version, ("anomaly",), detection=_detection()), 1)
    assert len(area.overlay_items("feedback")) == 1  # drawn again with the new detection
    # the label's KPI entry was written when the next detection replaced the judged one
    assert [e.kind for e in kpi_history(workspace, version)] == [DETECTION_KIND]
    area.request_region_context("s_2", 55.0)
    _trigger(main_window.feedback.plot_feedback.menu, "Mark as true anomaly")
    main_window.close()  # a pending KPI entry is not lost on quit
    assert [e.kind for e in kpi_history(workspace, version)] == [DETECTION_KIND] * 2


def test_the_labels_table_lists_a_missed_range_marked_on_the_plot(qtbot, plotted):
    """Issue 17: a missed range marked with Shift+drag is a row of the labelling dialog's table."""
    from turbofan_desktop.ui.feedback_view import FeedbackDialog, data_key

    p = plotted
    p.area.range_selected.emit("s_2", 169.6, 180.4)  # what a Shift+drag over 170-180 emits
    dialog = FeedbackDialog(p.ws, p.version, _detection().units[1], 1, data_key=data_key(_Data()))
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 3  # two detected ranges and the missed one
    assert dialog.windowTitle() == f"Label anomalies of {p.ws.registry.get(p.version).label}, unit 1"
    assert dialog.missed_rows() == [("170", "180", "missed anomaly (saved)")]
    dialog.add_missed(20, 30)
    assert dialog.missed_rows()[-1] == ("20", "30", "missed anomaly (to save)")
    other_unit = FeedbackDialog(p.ws, p.version, _detection().units[1], 2, data_key=data_key(_Data()))
    qtbot.addWidget(other_unit)
    assert other_unit.missed_rows() == []
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.grab().save("/tmp/i17/feedback_dialog_missed.png")
