"""Monitoring services: drift against a version's training statistics, KPI history and warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from services_helpers import SAMPLE_DIR

from turbofan_desktop.cli import main
from turbofan_desktop.data import read_dataset
from turbofan_desktop.data.drift import training_statistics
from turbofan_desktop.errors import NotFoundError
from turbofan_desktop.registry import TrainingProvenance
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.monitoring import (
    STATS_FILE,
    drift,
    drift_history,
    has_reference_statistics,
    kpi_history,
    kpi_warning,
    latest_drift,
    metric_direction,
    reference_statistics,
    with_training_statistics,
)


@pytest.fixture(scope="module")
def fd001():
    train = read_dataset(SAMPLE_DIR / "train_FD001.txt")
    return {"train": train.subset(train.units[:40]), "test": read_dataset(SAMPLE_DIR / "test_FD001.txt")}


@pytest.fixture
def ws():
    workspace = Workspace.open()
    yield workspace
    workspace.close()


def _weights(folder: Path) -> None:
    (folder / "weights.bin").write_bytes(b"not a real model")


def _register(ws, dataset, *, writer=_weights, provenance=None, validation=None):
    dataset_id = ws.registry.record_dataset(dataset.lineage)
    return ws.registry.register_version(
        run_id=None,
        plugin="fake",
        target="s_11",
        dataset_id=dataset_id,
        config={},
        history=[],
        metrics=dict(validation or {}),
        validation_performed=validation is not None,
        validation_metrics=validation,
        validation_data_hash="val" if validation is not None else None,
        training_seconds=0.1,
        library_versions={},
        write_artifact=writer,
        provenance=provenance,
    )


def _shifted(ds, sensor, delta):
    frame = ds.frame.copy()
    frame[sensor] += delta
    return ds.with_frame(frame, {"step": "test-shift"})


def test_statistics_in_the_artifact_drive_drift_and_are_stored(ws, fd001):
    record = _register(ws, fd001["train"], writer=with_training_statistics(_weights, fd001["train"]))
    assert (Path(record.artifact_path) / STATS_FILE).is_file()
    assert has_reference_statistics(ws, record.id)
    assert reference_statistics(ws, record.id)["rows"] == fd001["train"].n_rows

    calm = drift(ws, record.id, fd001["test"])
    assert calm.drifted == []
    moved = drift(ws, record.id, _shifted(fd001["test"], "s_7", 3 * fd001["train"].frame["s_7"].std()))
    assert moved.drifted == ["s_7"]
    assert moved.psi_threshold == ws.settings.drift_psi_threshold

    history = drift_history(ws, record.id)
    assert [h.metrics["drifted_sensors"] for h in history] == [0, 1]
    assert latest_drift(ws, record.id).metrics["sensors"]["s_7"]["drift"] is True
    assert history[-1].data_hash == moved.data_hash
    assert kpi_history(ws, record.id) == []  # drift checks are not KPIs

    drift(ws, record.id, fd001["test"], store=False)
    assert len(drift_history(ws, record.id)) == 2


def test_thresholds_come_from_the_settings(monkeypatch, fd001):
    monkeypatch.setenv("TURBOFAN_DRIFT_PSI_THRESHOLD", "0.01")
    monkeypatch.setenv("TURBOFAN_DRIFT_KS_PVALUE", "0.5")
    strict = Workspace.open()
    try:
        stats = training_statistics(fd001["train"])
        record = _register(strict, fd001["train"], provenance=TrainingProvenance(training_stats=stats))
        report = drift(strict, record.id, fd001["test"], store=False)
        assert report.psi_threshold == 0.01 and report.ks_pvalue_threshold == 0.5
        assert len(report.drifted) > 3  # the age-matched residue counts at these thresholds
    finally:
        strict.close()


def test_version_without_statistics_is_a_clear_error(ws, fd001):
    record = _register(ws, fd001["train"])
    assert not has_reference_statistics(ws, record.id)
    with pytest.raises(NotFoundError, match="retrain it"):
        drift(ws, record.id, fd001["test"])


def test_kpi_warning_compares_latest_validation_with_registration(ws, fd001):
    record = _register(ws, fd001["train"], validation={"prediction_mse": 0.10, "units_scored": 6.0})
    assert kpi_warning(ws, record.id) is None  # one validation only
    # re-validated on the same held-out data as at registration ("val")
    ws.registry.record_validation(record.id, metrics={"prediction_mse": 0.11}, data_hash="val")
    assert kpi_warning(ws, record.id) is None  # 10 % worse, margin 20 %
    ws.registry.record_metrics(record.id, kind="detection", metrics={"precision": 0.5})
    ws.registry.record_validation(record.id, metrics={"prediction_mse": 0.15}, data_hash="val")
    warning = kpi_warning(ws, record.id)
    assert warning is not None and "prediction_mse" in warning and "50%" in warning
    assert kpi_warning(ws, record.id, margin=0.6) is None
    kinds = [h.kind for h in kpi_history(ws, record.id)]
    assert kinds == ["validation", "validation", "detection", "validation"]


def test_kpi_warning_never_compares_metrics_of_different_data(ws, fd001):
    """Issue 17: a test-file RMSE next to a held-out RMSE is no sign of decay."""
    record = _register(ws, fd001["train"], validation={"rul_rmse": 6.8})  # held-out units ("val")
    ws.registry.record_validation(record.id, metrics={"rul_rmse": 14.3}, data_hash="test-file")
    assert kpi_warning(ws, record.id) is None  # 110 % "worse", but on other data
    ws.registry.record_validation(record.id, metrics={"rul_rmse": 14.0}, data_hash="test-file")
    assert kpi_warning(ws, record.id) is None  # better than the first score on that file
    ws.registry.record_validation(record.id, metrics={"rul_rmse": 20.0}, data_hash="test-file")
    warning = kpi_warning(ws, record.id)
    assert warning is not None and "20 in the latest validation" in warning
    assert "40% worse than 14.3 in the first validation on the same data" in warning
    ws.registry.record_validation(record.id, metrics={"rul_rmse": 7.0}, data_hash="val")
    assert kpi_warning(ws, record.id) is None  # the held-out units again: 3 % worse than 6.8


def test_kpi_direction_from_metric_names(ws, fd001):
    assert metric_direction("prediction_mse") == -1
    assert metric_direction("rul_rmse") == -1
    assert metric_direction("forecast_mase_h10") == -1
    assert metric_direction("precision") == 1 and metric_direction("f0_5") == 1
    assert metric_direction("units_scored") == 0
    record = _register(ws, fd001["train"], validation={"recall": 0.8})
    ws.registry.record_validation(record.id, metrics={"recall": 0.5}, data_hash="val")
    assert "recall" in kpi_warning(ws, record.id)


def test_drift_cli_json_and_text(fd001, tmp_path, capsys):
    ws = Workspace.open()
    try:
        record = _register(ws, fd001["train"], writer=with_training_statistics(_weights, fd001["train"]))
    finally:
        ws.close()
    assert main(["drift", str(SAMPLE_DIR / "test_FD001.txt"), "--version", str(record.id), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["sensors"]["s_2"]) >= {"psi", "ks_pvalue", "drift"}
    assert payload["drifted"] == [] and payload["version_id"] == record.id
    assert main(["drift", str(SAMPLE_DIR / "test_FD001.txt"), "--version", str(record.id)]) == 0
    out = capsys.readouterr().out
    assert "s_11" in out and "No drift" in out
    assert main(["drift", str(tmp_path / "missing.txt"), "--version", str(record.id)]) == 2
    assert main(["drift", str(SAMPLE_DIR / "test_FD001.txt"), "--version", "999"]) == 2


def test_version_health_for_badges(ws, fd001):
    from turbofan_desktop.services.monitoring import version_health

    record = _register(ws, fd001["train"], writer=with_training_statistics(_weights, fd001["train"]))
    assert version_health(ws, record.id) == {"kpi_warning": None, "drift": None}
    drift(ws, record.id, _shifted(fd001["test"], "s_12", 3 * fd001["train"].frame["s_12"].std()))
    health = version_health(ws, record.id)
    assert health["drift"]["drifted"] == ["s_12"] and health["drift"]["created"]
