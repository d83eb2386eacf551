"""Feedback labels on detected ranges: stored per version, replaced not duplicated, precision/recall."""

from __future__ import annotations

import numpy as np
import pytest
from stub_versions import register_stub_version

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.feedback import (
    FALSE_ALARM,
    MISSED_ANOMALY,
    TRUE_ANOMALY,
    feedback_metrics,
    label_for,
    mark_range,
    report_rows,
)


@pytest.fixture
def ws():
    workspace = Workspace.open()
    yield workspace
    workspace.close()


def _version(ws) -> int:
    return register_stub_version(ws.registry).id


def test_labels_round_trip_and_give_precision_recall(ws):
    version = _version(ws)
    assert feedback_metrics(ws, version)["feedback_precision"] is None
    mark_range(ws, version, unit=np.int64(3), start=np.int64(100), end=np.int64(120), label=TRUE_ANOMALY)
    mark_range(ws, version, unit=3, start=150, end=160, label=FALSE_ALARM)
    mark_range(ws, version, unit=3, start=150, end=160, label=TRUE_ANOMALY)  # relabelled, not doubled
    mark_range(ws, version, unit=4, start=10, end=30, label=FALSE_ALARM)
    mark_range(ws, version, unit=4, start=200.0, end=210.0, label=MISSED_ANOMALY, note="seen by the operator")
    labels = ws.registry.list_feedback(version)
    assert len(labels) == 4
    assert label_for(labels, 3, 150, 160) == TRUE_ANOMALY and label_for(labels, 3, 1, 2) is None
    metrics = feedback_metrics(ws, version, record=True)
    assert metrics["feedback_precision"] == pytest.approx(2 / 3)
    assert metrics["feedback_recall"] == pytest.approx(2 / 3)
    assert ws.registry.metric_history(version)[-1].kind == "feedback"
    rows = report_rows(ws, version)
    assert ("unit 4 200.0-210.0", "missed anomaly - seen by the operator") in rows
    assert rows[-1] == ("precision / recall from labels", "0.67 / 0.67")


def test_bad_labels_are_user_errors(ws):
    version = _version(ws)
    with pytest.raises(ConfigError, match="Unknown feedback label"):
        mark_range(ws, version, unit=1, start=1, end=2, label="maybe")
    with pytest.raises(ConfigError, match="must not end"):
        mark_range(ws, version, unit=1, start=5, end=2, label=TRUE_ANOMALY)
