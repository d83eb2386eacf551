"""Drift checked along with detection and on opening a file: which versions, what is stored, and the
cases that must never fail (no statistics, sensors the version lacks, no shared sensor).

The model is a stand-in (``inference.load_model`` patched): what is under test is the monitoring
around the detection, not the detector, so no torch model is trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from services_helpers import SAMPLE_DIR
from stub_versions import register_stub_version

from turbofan_desktop.cli import main
from turbofan_desktop.data import read_dataset
from turbofan_desktop.data.drift import training_statistics
from turbofan_desktop.plugins.contract import AnomalyRange, DetectionResult, UnitDetection
from turbofan_desktop.registry import TrainingProvenance
from turbofan_desktop.services import Workspace, inference
from turbofan_desktop.services.monitoring import (
    check_drift,
    drift_history,
    monitored_versions,
    with_training_statistics,
)

SHIFTED = "s_4"


@pytest.fixture(scope="module")
def fd001():
    train = read_dataset(SAMPLE_DIR / "train_FD001.txt")
    return train.subset(train.units[:20])


@pytest.fixture
def ws():
    workspace = Workspace.open()
    yield workspace
    workspace.close()


def _shifted(ds, sensor=SHIFTED, stds=3.0):
    frame = ds.frame.copy()
    frame[sensor] += stds * frame[sensor].std()
    return ds.with_frame(frame, {"step": f"test-shift {sensor}"})


def _weights(folder: Path) -> None:
    (folder / "weights.bin").write_bytes(b"stand-in")


def _register(ws, dataset, *, plugin="fake", target="s_2", stats=True, sensors=None):
    """A version with (by default) the training statistics of ``dataset`` in its artifact."""
    if stats and sensors is not None:
        provenance = TrainingProvenance(training_stats=training_statistics(dataset, sensors))
        writer = _weights
    else:
        provenance = None
        writer = with_training_statistics(_weights, dataset) if stats else _weights
    return register_stub_version(
        ws.registry,
        plugin=plugin,
        target=target,
        lineage=dataset.lineage,
        write_artifact=writer,
        provenance=provenance,
    )


class _StandInDetector:
    """Flags the first three scored steps of every unit: enough for the JSON shape."""

    target = "s_2"

    def detect(self, data, *, units=None, progress=None, should_stop=None):
        chosen = units if units is not None else data.units
        result = {}
        for unit in chosen:
            rows = data.frame[data.frame["unit"] == unit]
            time = rows[data.time_col].to_numpy()
            values = rows[self.target].to_numpy(dtype=float)
            zeros = np.zeros_like(values)
            anomaly = AnomalyRange(start=time[0], end=time[2], score=1.0, start_index=0, end_index=2)
            result[unit] = UnitDetection(unit, time, values, values, zeros, zeros, zeros, [anomaly])
        return DetectionResult(target=self.target, units=result)


@pytest.fixture
def stand_in(monkeypatch):
    spec = SimpleNamespace(name="fake", tasks=("anomaly",))
    monkeypatch.setattr(inference, "load_model", lambda ws, version_id: (spec, _StandInDetector()))


# -- check_drift: the check that never fails the work it rides along with ---------------------------
def test_identical_data_has_no_drift_and_one_shifted_sensor_is_the_only_one(ws, fd001):
    record = _register(ws, fd001)
    calm = check_drift(ws, record.id, fd001)
    assert calm is not None and calm.drifted == [] and len(calm.sensors) == 21
    moved = check_drift(ws, record.id, _shifted(fd001))
    assert moved.drifted == [SHIFTED]
    assert [h.metrics["drifted"] for h in drift_history(ws, record.id)] == [[], [SHIFTED]]


def test_version_without_statistics_gets_no_drift_and_stores_nothing(ws, fd001):
    record = _register(ws, fd001, stats=False)
    assert check_drift(ws, record.id, _shifted(fd001)) is None
    assert drift_history(ws, record.id) == []


def test_sensors_the_version_lacks_are_never_judged(ws, fd001):
    known = [s for s in fd001.sensors if s != SHIFTED]
    record = _register(ws, fd001, sensors=known)
    report = check_drift(ws, record.id, _shifted(fd001))  # the file moved a sensor the version never saw
    assert report.drifted == [] and SHIFTED not in report.sensors


def test_a_file_sharing_no_sensor_with_the_training_data_is_not_checked(ws, fd001):
    record = _register(ws, fd001, target="*")
    frame = fd001.frame.drop(columns=list(fd001.sensors))
    frame["channel_a"] = 1.0
    foreign = fd001.with_frame(frame, {"step": "other sensors"}, sensors=["channel_a"])
    assert check_drift(ws, record.id, foreign) is None
    assert drift_history(ws, record.id) == []


# -- which versions a newly opened file is checked against ----------------------------------------
def test_one_version_per_plugin_production_first_then_newest(ws, fd001):
    assert monitored_versions(ws, fd001) == []
    old_tele = _register(ws, fd001, plugin="telemanom")
    new_tele = _register(ws, fd001, plugin="telemanom")
    bare_trans = _register(ws, fd001, plugin="transformer", target="*", stats=False)
    assert monitored_versions(ws, fd001) == [new_tele.id]  # the transformer cannot be checked
    trans = _register(ws, fd001, plugin="transformer", target="*")
    assert monitored_versions(ws, fd001) == [trans.id, new_tele.id]
    ws.registry.record_validation(old_tele.id, metrics={"prediction_mse": 0.1}, data_hash="v")
    ws.registry.promote(old_tele.id, "production")
    assert monitored_versions(ws, fd001) == [trans.id, old_tele.id]
    without_target = fd001.with_frame(fd001.frame.drop(columns=["s_2"]), {"step": "drop s_2"})
    assert monitored_versions(ws, without_target) == [trans.id]  # s_2 models need s_2
    assert bare_trans.id not in monitored_versions(ws, fd001)


# -- detection with drift -------------------------------------------------------------------------
def test_detect_with_drift_checks_the_detected_units(ws, fd001, stand_in):
    record = _register(ws, fd001)
    monitored = inference.detect_with_drift(ws, record.id, _shifted(fd001), units=[1, 2])
    assert set(monitored.detection.units) == {1, 2}
    assert monitored.drift.drifted == [SHIFTED]
    assert monitored.drift.rows == int(fd001.frame["unit"].isin([1, 2]).sum())
    bare = _register(ws, fd001, stats=False)
    assert inference.detect_with_drift(ws, bare.id, fd001).drift is None  # detection still runs


def _write_cmapss(ds, path: Path) -> Path:
    columns = ["unit", ds.time_col, *ds.settings, *ds.sensors]
    np.savetxt(path, ds.frame[columns].to_numpy(dtype=float), fmt="%.6g")
    return path


def test_detect_cli_json_has_a_drift_block_and_text_names_drifted_sensors(fd001, stand_in, tmp_path, capsys):
    ws = Workspace.open()
    try:
        record = _register(ws, fd001)
        bare = _register(ws, fd001, stats=False)
    finally:
        ws.close()
    shifted = _write_cmapss(_shifted(fd001), tmp_path / "test_shifted.txt")
    assert main(["detect", str(shifted), "--version", str(record.id), "--unit", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"version_id", "target", "threshold_method", "units", "anomalies"} <= set(payload)
    assert payload["anomalies"] == 1
    block = payload["drift"]
    assert set(block["sensors"][SHIFTED]) >= {"psi", "ks_pvalue", "drift"}
    assert block["drifted"] == [SHIFTED] and block["sensors"]["s_2"]["drift"] is False

    assert main(["detect", str(shifted), "--version", str(record.id), "--unit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("drift: 1 of 21 sensors drifted") and lines[-1].count(SHIFTED) == 1

    assert main(["detect", str(shifted), "--version", str(bare.id), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["drift"] is None
    assert main(["detect", str(shifted), "--version", str(bare.id)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("drift: not checked")
