"""Feedback through the GUI: label detected ranges and a missed one, stored in the registry, drawn."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.plugins.contract import AnomalyRange, UnitDetection  # noqa: E402
from turbofan_desktop.services.feedback import (  # noqa: E402
    FALSE_ALARM,
    MISSED_ANOMALY,
    TRUE_ANOMALY,
    feedback_metrics,
)
from turbofan_desktop.ui.feedback_view import FeedbackDialog, draw_feedback  # noqa: E402


def _version(workspace) -> int:
    return register_stub_version(workspace.registry).id


def _detection() -> UnitDetection:
    time = np.arange(1, 201)
    anomalies = [
        AnomalyRange(start=50, end=60, score=1.5, start_index=49, end_index=59),
        AnomalyRange(start=120, end=130, score=0.7, start_index=119, end_index=129),
    ]
    zeros = np.zeros(200)
    return UnitDetection(1, time, zeros, zeros, zeros, zeros, zeros, anomalies)


def test_feedback_round_trip_through_the_dialog(qtbot, workspace):
    version = _version(workspace)
    dialog = FeedbackDialog(workspace, version, _detection(), 1)
    qtbot.addWidget(dialog)
    dialog.set_label(0, TRUE_ANOMALY)
    dialog.set_label(1, FALSE_ALARM)
    dialog.add_missed(180, 170)
    dialog.save_and_close()
    labels = workspace.registry.list_feedback(version)
    assert sorted((x.start, x.end, x.label) for x in labels) == [
        (50, 60, TRUE_ANOMALY),
        (120, 130, FALSE_ALARM),
        (170.0, 180.0, MISSED_ANOMALY),
    ]
    metrics = feedback_metrics(workspace, version)
    assert metrics["feedback_precision"] == 0.5 and metrics["feedback_recall"] == 0.5

    reopened = FeedbackDialog(workspace, version, _detection(), 1)  # shows what is stored
    qtbot.addWidget(reopened)
    assert [c.currentText() for c in reopened.choosers] == ["true anomaly", "false alarm"]
    reopened.set_label(1, TRUE_ANOMALY)
    reopened.save()
    assert feedback_metrics(workspace, version)["feedback_precision"] == 1.0
    assert len(workspace.registry.list_feedback(version)) == 3


def test_stored_labels_are_drawn_on_the_plot(main_window, workspace, open_and_wait):
    from turbofan_desktop.ui.app import sample_files

    version = _version(workspace)
    open_and_wait(main_window, [p for p in sample_files() if p.name == "train_FD001.txt"])
    main_window.ensure_ready()
    area = main_window.plot_area
    area.plot_dataset(main_window.current_dataset(), [1], ["s_2"])
    dialog = FeedbackDialog(workspace, version, _detection(), 1)
    dialog.set_label(0, TRUE_ANOMALY)
    dialog.add_missed(150, 160)
    dialog.save()
    dialog.deleteLater()
    drawn = draw_feedback(area, workspace.registry.list_feedback(version), "s_2", 1)
    assert drawn == 2 and len(area.overlay_items("feedback")) == 2
    assert draw_feedback(area, workspace.registry.list_feedback(version), "s_99", 1) == 0
    area.clear_overlays()
    assert area.overlay_items("feedback") == []


def test_open_feedback_uses_the_detection_last_shown(qtbot, workspace):

    from turbofan_desktop.plugins.contract import DetectionResult
    from turbofan_desktop.services.session import Session, ShownResult
    from turbofan_desktop.ui.feedback_view import FeedbackController

    errors: list[str] = []
    session = Session()
    feedback = FeedbackController(workspace, session, None, errors.append)
    assert feedback.open() is None and "Show an anomaly model" in errors[0]
    version = _version(workspace)
    detection = DetectionResult(target="s_2", units={1: _detection()})
    session.last_shown = ShownResult(version, "1", detection)
    dialog = feedback.open()
    qtbot.addWidget(dialog)
    assert len(dialog.choosers) == 2
    dialog.set_label(0, FALSE_ALARM)
    dialog.save_and_close()
    assert [x.label for x in workspace.registry.list_feedback(version)] == [FALSE_ALARM]
