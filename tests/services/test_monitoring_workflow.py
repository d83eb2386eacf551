"""Monitoring end to end: a version trained through the services keeps its training statistics, drift
against a file is stored, labels and drift reach the report."""

from __future__ import annotations

import pytest
from services_helpers import TINY, require_plugin

from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.feedback import FALSE_ALARM, TRUE_ANOMALY, mark_range
from turbofan_desktop.services.monitoring import (
    STATS_FILE,
    drift,
    drift_history,
    has_reference_statistics,
    reference_statistics,
)
from turbofan_desktop.services.reports import export_report
from turbofan_desktop.services.training import TrainRequest, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fd001_small):
    require_plugin("telemanom")
    ws = Workspace.open(tmp_path_factory.mktemp("monitoring_registry"))
    summary = train(
        ws,
        TrainRequest(
            plugin="telemanom", data_path=fd001_small["train"], targets=["s_2"], config=TINY["telemanom"]
        ),
    )
    assert summary.failed == 0, summary.to_dict()
    yield ws, summary.registered[0]
    ws.close()


def test_training_stores_statistics_of_the_training_split(trained, fd001_small):
    ws, version_id = trained
    record = ws.registry.get(version_id)
    assert has_reference_statistics(ws, version_id)
    assert (record.artifact_path and STATS_FILE) and ws.registry.verify_artifact(record) is None
    stats = reference_statistics(ws, version_id)
    assert stats["data_hash"] == record.lineage["data_hash"]  # the train split, as the lineage says
    assert stats["rows"] == record.lineage["num_samples"]


def test_drift_of_a_file_is_stored_and_reported(trained, fd001_small, tmp_path):
    ws, version_id = trained
    data = load_dataset(ws, fd001_small["test"])
    report = drift(ws, version_id, data)
    assert set(report.sensors) >= {"s_2", "s_11"}
    assert len(drift_history(ws, version_id)) == 1
    mark_range(ws, version_id, unit=1, start=20, end=25, label=TRUE_ANOMALY)
    mark_range(ws, version_id, unit=2, start=5, end=9, label=FALSE_ALARM, note="sensor glitch")
    html = export_report(ws, version_id, "html", tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Feedback labels" in html and "sensor glitch" in html
    assert "drift" in html
