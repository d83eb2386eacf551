"""Labels as ground truth: detection KPIs from labels, labels scoped to their data, and labels reaching
Telemanom's threshold through the services when ``exclude_labelled`` is set."""

from __future__ import annotations

import numpy as np
import pytest
from services_helpers import TINY, require_plugin
from stub_versions import register_stub_version

from turbofan_desktop.plugins.contract import AnomalyRange, DetectionResult, UnitDetection
from turbofan_desktop.registry import LabelRecord
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.feedback import (
    DETECTION_KIND,
    FALSE_ALARM,
    MISSED_ANOMALY,
    TRUE_ANOMALY,
    clear_label,
    detection_kpis,
    f_beta,
    labels_for_data,
    mark_range,
)
from turbofan_desktop.services.monitoring import kpi_history, kpi_warning


@pytest.fixture
def ws():
    workspace = Workspace.open()
    yield workspace
    workspace.close()


def _version(ws, target: str = "s_2") -> int:
    return register_stub_version(ws.registry, target=target).id


def _detection(*ranges: tuple[int, int], unit=1) -> DetectionResult:
    zeros = np.zeros(200)
    found = [AnomalyRange(start=a, end=b, score=1.0, start_index=a, end_index=b) for a, b in ranges]
    return DetectionResult(
        "s_2", {unit: UnitDetection(unit, np.arange(200), zeros, zeros, zeros, zeros, zeros, found)}
    )


def _label(unit, start, end, label, key=None):
    return LabelRecord(
        id=0, version_id=1, unit=unit, start=start, end=end, label=label, note="", created="", data_key=key
    )


def test_detection_kpis_judge_ranges_by_overlap():
    labels = [
        _label(1, 48, 55, TRUE_ANOMALY),  # hit by 50-60
        _label(1, 100, 110, FALSE_ALARM),  # 105-108 is a false positive
        _label(1, 170, 180, MISSED_ANOMALY),  # nothing detected there: a false negative
    ]
    kpis = detection_kpis(_detection((50, 60), (105, 108), (140, 141)), labels)
    assert (kpis["true_positives"], kpis["false_positives"], kpis["false_negatives"]) == (1, 1, 1)
    assert kpis["unjudged_detections"] == 1  # 140-141 was not judged by anyone
    assert kpis["precision"] == 0.5 and kpis["recall"] == 0.5 and kpis["f0_5"] == pytest.approx(0.5)
    assert detection_kpis(_detection((50, 60), unit=2), labels) is None  # unit 2 has no labels
    assert f_beta(1.0, 0.5) == pytest.approx(1.25 * 0.5 / (0.25 + 0.5)) and f_beta(None, 1.0) is None


def test_labels_reach_only_the_data_they_were_made_on(ws):
    first, second = _version(ws), _version(ws)
    other_target = _version(ws, "s_3")
    file_a = type("D", (), {"file_sha256": "aaa", "data_hash": "ha"})()
    file_b = type("D", (), {"file_sha256": "bbb", "data_hash": "hb"})()
    mark_range(ws, first, unit=1, start=10, end=20, label=TRUE_ANOMALY, data_key="aaa")
    mark_range(ws, second, unit=1, start=10, end=20, label=FALSE_ALARM, data_key="aaa")  # relabelled later
    mark_range(ws, first, unit=1, start=30, end=40, label=MISSED_ANOMALY, data_key="bbb")
    mark_range(ws, first, unit=2, start=1, end=5, label=TRUE_ANOMALY)  # no data key: any data
    mark_range(ws, other_target, unit=1, start=1, end=9, label=TRUE_ANOMALY, data_key="aaa")
    on_a = labels_for_data(ws, second, file_a)
    assert sorted((x.unit, x.start, x.label) for x in on_a) == [
        (1, 10, FALSE_ALARM),
        (2, 1, TRUE_ANOMALY),
    ]
    assert [x.start for x in labels_for_data(ws, first, file_b)] == [30, 1]
    assert clear_label(ws, second, unit=1, start=10, end=20) == 1
    assert [x.label for x in labels_for_data(ws, second, file_a) if x.unit == 1] == [TRUE_ANOMALY]


def test_judged_detections_enter_the_kpi_history_and_can_warn(ws):
    from turbofan_desktop.services.feedback import record_detection_kpis

    version = _version(ws)
    data = type("D", (), {"file_sha256": "aaa", "data_hash": "ha"})()
    assert record_detection_kpis(ws, version, _detection((50, 60)), data) is None  # no labels yet
    mark_range(ws, version, unit=1, start=50, end=60, label=TRUE_ANOMALY, data_key="aaa")
    mark_range(ws, version, unit=1, start=100, end=110, label=MISSED_ANOMALY, data_key="aaa")
    assert record_detection_kpis(ws, version, _detection((50, 60), (100, 101)), data)["recall"] == 1.0
    assert kpi_warning(ws, version) is None
    record_detection_kpis(ws, version, _detection((50, 60)), data)  # the later detection misses one
    entries = [e for e in kpi_history(ws, version) if e.kind == DETECTION_KIND]
    assert [e.metrics["recall"] for e in entries] == [1.0, 0.5] and entries[-1].data_hash == "aaa"
    assert "recall is 0.5 in the latest detection judged by labels" in kpi_warning(ws, version)


def test_services_pass_labels_to_telemanom_and_record_kpis(fd001_small):
    require_plugin("telemanom")
    from turbofan_desktop.services import inference
    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.services.feedback import data_key
    from turbofan_desktop.services.training import TrainRequest, train

    ws = Workspace.open()
    try:
        config = {**TINY["telemanom"], "exclude_labelled": True}
        request = TrainRequest(
            plugin="telemanom", data_path=fd001_small["train"], targets=["s_2"], config=config
        )
        summary = train(ws, request)
        assert summary.failed == 0, summary.to_dict()
        version = summary.registered[0]
        test = load_dataset(ws, fd001_small["test"])
        before = inference.detect(ws, version, test, units=[1])
        assert kpi_history(ws, version) == [] or all(
            e.kind != DETECTION_KIND for e in kpi_history(ws, version)
        )

        _spec, model = inference.load_model(ws, version)
        seen = []
        original = model.detect

        def spy(data, *, labels=None, **kwargs):
            seen.append(labels)
            return original(data, labels=labels, **kwargs)

        model.detect = spy
        times = before.units[1].time
        mark_range(
            ws, version, unit=1, start=times[0], end=times[5], label=MISSED_ANOMALY, data_key=data_key(test)
        )
        after = inference.detect(ws, version, test, units=[1])
        assert seen and [x["label"] for x in seen[0]] == [MISSED_ANOMALY]
        entry = [e for e in kpi_history(ws, version) if e.kind == DETECTION_KIND][-1]
        hit = any(r.start <= times[5] and r.end >= times[0] for r in after.units[1].anomalies)
        assert entry.metrics["recall"] == (1.0 if hit else 0.0)
    finally:
        ws.close()


def test_exporting_a_report_adds_nothing_to_the_kpi_history(fd001_small, tmp_path):
    """A report reads: its anomaly plot runs a detection on labelled data, which must not append KPIs."""
    require_plugin("telemanom")
    from turbofan_desktop.services import inference
    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.services.reports import export_report
    from turbofan_desktop.services.training import TrainRequest, train

    with Workspace.open() as ws:
        request = TrainRequest(
            plugin="telemanom", data_path=fd001_small["train"], targets=["s_2"], config=TINY["telemanom"]
        )
        version = train(ws, request).registered[0]
        test = load_dataset(ws, fd001_small["test"])
        times = inference.detect(ws, version, test, units=[1]).units[1].time
        mark_range(ws, version, unit=1, start=times[0], end=times[5], label=MISSED_ANOMALY)
        before = ws.registry.metric_history(version)
        export_report(ws, version, "html", tmp_path / "report.html", data_path=fd001_small["test"])
        assert (tmp_path / "report.html").stat().st_size > 0
        assert ws.registry.metric_history(version) == before
        inference.detect(ws, version, test, units=[1])  # the same labels do make a detection a KPI
        assert len(ws.registry.metric_history(version)) == len(before) + 1
